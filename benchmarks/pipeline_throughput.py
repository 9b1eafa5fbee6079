"""Throughput of the Beam period pipeline against the plain pandas reference.

    python -m benchmarks.pipeline_throughput               # movielens-100k and -1m
    python -m benchmarks.pipeline_throughput --repeats 3   # median of 3, order alternating
    python -m benchmarks.pipeline_throughput --quick       # movielens-100k only (smoke test)

Builds protocol B periods from each dataset twice, once with
`pipelines.periods.build_periods(..., runner="in-process")` and once with
`pipelines.reference.build_reference`, each into a fresh temporary directory that is
deleted afterwards. Every build runs in its own freshly spawned Python process, so that
its peak RSS is its own (not memory the previous build left in the allocator) and no
build pays for imports or warm-up the other one already did: TensorFlow, Beam, pandas
and the dataset checksum are loaded before the clock starts, and the clock covers
exactly the `build_*` call (resolve, read, compute, write, manifest, publish).

Per build it records wall seconds, rows/s (rows_in / wall seconds), CPU seconds of the
process, and peak RSS sampled by a background thread with psutil (the process and any
children it starts). It checks that both builds of a dataset produced the same manifest
(period names, rows and positives per period, row and vocabulary totals) and exits with
an error if not. Results: benchmarks/results/pipeline_throughput.{md,json}
(`-quick` suffix with --quick).
"""
import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import concurrent.futures  # noqa: E402
import datetime  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import resource  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import psutil  # noqa: E402

from benchmarks import machine as machine_info  # noqa: E402

# Registered datasets measured, smallest first, with their row counts (registry.py).
DATASETS = {"movielens-100k": 100_000, "movielens-1m": 1_000_209}
QUICK_DATASETS = ("movielens-100k",)
IMPLEMENTATIONS = {"beam": "build_periods(runner='in-process')",
                   "reference": "build_reference (pandas)"}
PROTOCOL = "b"
TARGET = "movielens-1m"         # the dataset the goals are stated for

# Goals of the issue, and how they are judged here.
GOAL_RATIO = 2.0                # Beam wall time within 2x of the plain reference
GOAL_SECONDS = 90.0             # Beam build of movielens-1m under 90 s on 2 cores
# "Cost grows linearly with rows": with two sizes, linear growth means the seconds per
# million rows at 1M are not above those at 100K; fixed start-up cost makes the ratio
# fall below 1. This benchmark's tolerance for noise: at most 1.25.
GOAL_GROWTH = 1.25

SAMPLE_SECONDS = 0.05
from benchmarks.reports import RESULTS_DIR  # noqa: E402
MIB = 1 << 20


# ------------------------------------------------------------------ in the child process

def measure_build(implementation: str, dataset: str) -> dict:
    """One build in this (fresh) process; returns its figures and manifest summary."""
    # Everything either build imports, loaded before the clock starts.
    import apache_beam  # noqa: F401
    import pandas  # noqa: F401
    import tensorflow as tf
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner  # noqa: F401

    from pipelines.options import BuildOptions
    from pipelines.periods import build_periods
    from pipelines.reference import build_reference
    from tfmeta.data import registry

    registry.fetch(dataset)  # checks (and caches) the sha256; reads the file into page cache
    tmp = tempfile.mkdtemp(prefix=f"tfmeta-bench-{implementation}-")
    options = BuildOptions(input=dataset, out=os.path.join(tmp, "periods"), protocol=PROTOCOL)
    process = psutil.Process()
    try:
        load_before = os.getloadavg()
        cpu_before = machine_info.cpu_seconds(process)
        with machine_info.PeakRss(SAMPLE_SECONDS) as rss:
            started = time.perf_counter()
            if implementation == "beam":
                result = build_periods(options, runner="in-process")
            elif implementation == "reference":
                result = build_reference(options)
            else:
                raise ValueError(f"unknown implementation {implementation!r}")
            seconds = time.perf_counter() - started
        cpu = machine_info.cpu_seconds(process) - cpu_before
        load_after = os.getloadavg()
        periods = [{"name": p["name"], "rows": p["rows"], "positives": p.get("positives"),
                    "bytes": sum(os.path.getsize(os.path.join(options.out, f))
                                 for f in p["files"]),
                    "files": len(p["files"])}
                   for p in result["periods"]]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "implementation": implementation,
        "builder": result["builder"],
        "dataset": dataset,
        "protocol": PROTOCOL,
        "rows_in": result["rows_in"],
        "rows_out": result["rows_out"],
        "rows_rejected": result["rows_rejected"],
        "vocab": result["vocab"]["sizes"],
        "seconds": seconds,
        "manifest_seconds": result["seconds"],
        "rows_per_second": result["rows_in"] / seconds,
        "cpu_seconds": cpu,
        "peak_rss_bytes": rss.peak,
        "baseline_rss_bytes": rss.baseline,
        "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "rss_samples": rss.samples,
        "loadavg_before": list(load_before),
        "loadavg_after": list(load_after),
        "output_bytes": sum(p["bytes"] for p in periods),
        "periods": periods,
        "gpus": len(tf.config.list_physical_devices("GPU")),
    }


# ------------------------------------------------------------------ in the parent

def run_isolated(implementation: str, dataset: str) -> dict:
    """measure_build in a newly spawned process that ends with the build."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(measure_build, implementation, dataset).result()


class OutputsDisagree(AssertionError):
    pass


def check_agreement(beam: dict, reference: dict) -> dict:
    """Raises OutputsDisagree unless both manifests count the same; returns the checks."""
    def counts(run):
        return {"rows_in": run["rows_in"], "rows_out": run["rows_out"],
                "rows_rejected": run["rows_rejected"], "vocab": run["vocab"],
                "periods": [(p["name"], p["rows"], p["positives"]) for p in run["periods"]]}

    a, b = counts(beam), counts(reference)
    if a != b:
        lines = [f"{beam['dataset']}: the Beam and reference builds disagree"]
        for key in ("rows_in", "rows_out", "rows_rejected", "vocab"):
            if a[key] != b[key]:
                lines.append(f"  {key}: beam {a[key]} vs reference {b[key]}")
        names = sorted({p[0] for p in a["periods"] + b["periods"]})
        pa = {p[0]: p[1:] for p in a["periods"]}
        pb = {p[0]: p[1:] for p in b["periods"]}
        for name in names:
            if pa.get(name) != pb.get(name):
                lines.append(f"  {name} (rows, positives): beam {pa.get(name)} vs "
                             f"reference {pb.get(name)}")
        raise OutputsDisagree("\n".join(lines))
    bytes_a = [p["bytes"] for p in beam["periods"]]
    bytes_b = [p["bytes"] for p in reference["periods"]]
    return {"periods": len(a["periods"]), "rows_out": a["rows_out"],
            "rows_per_period_agree": True,
            "bytes_per_period_agree": bytes_a == bytes_b,
            "output_bytes": {"beam": sum(bytes_a), "reference": sum(bytes_b)}}


def _median(runs: list, key: str) -> float:
    return statistics.median(r[key] for r in runs)


def summarize(runs: list, datasets: list) -> dict:
    per = {}
    for dataset in datasets:
        per[dataset] = {}
        for impl in IMPLEMENTATIONS:
            mine = [r for r in runs if r["dataset"] == dataset and r["implementation"] == impl]
            seconds = _median(mine, "seconds")
            per[dataset][impl] = {
                "repeats": len(mine),
                "rows_in": mine[0]["rows_in"],
                "seconds_median": seconds,
                "seconds_all": [r["seconds"] for r in mine],
                "rows_per_second": mine[0]["rows_in"] / seconds,
                "cpu_seconds_median": _median(mine, "cpu_seconds"),
                "peak_rss_bytes_median": _median(mine, "peak_rss_bytes"),
                "peak_rss_bytes_max": max(r["peak_rss_bytes"] for r in mine),
                "baseline_rss_bytes_median": _median(mine, "baseline_rss_bytes"),
                "rss_growth_bytes_median": statistics.median(
                    r["peak_rss_bytes"] - r["baseline_rss_bytes"] for r in mine),
                "seconds_per_million_rows": seconds / (mine[0]["rows_in"] / 1e6),
            }
        beam, ref = per[dataset]["beam"], per[dataset]["reference"]
        paired = [b["seconds"] / r["seconds"] for b, r in zip(
            [x for x in runs if x["dataset"] == dataset and x["implementation"] == "beam"],
            [x for x in runs if x["dataset"] == dataset and x["implementation"] == "reference"])]
        per[dataset]["ratio_beam_over_reference"] = {
            "wall": beam["seconds_median"] / ref["seconds_median"],
            "wall_paired_median": statistics.median(paired),
            "cpu": beam["cpu_seconds_median"] / ref["cpu_seconds_median"],
            "peak_rss": beam["peak_rss_bytes_median"] / ref["peak_rss_bytes_median"],
            "rss_growth": beam["rss_growth_bytes_median"] / ref["rss_growth_bytes_median"],
        }
    growth = {}
    if len(datasets) > 1:
        small, large = datasets[0], datasets[-1]
        for impl in IMPLEMENTATIONS:
            s, m = per[small][impl], per[large][impl]
            growth[impl] = {
                "from": small, "to": large,
                "seconds_per_million_rows": {small: s["seconds_per_million_rows"],
                                             large: m["seconds_per_million_rows"]},
                "per_row_cost_ratio": m["seconds_per_million_rows"]
                / s["seconds_per_million_rows"],
                # t ~ rows^k between the two sizes; k = 1 is linear.
                "exponent": math.log(m["seconds_median"] / s["seconds_median"])
                / math.log(m["rows_in"] / s["rows_in"]),
            }
            # t = fixed + slope * rows through the two points (fixed < 0: superlinear).
            slope = (m["seconds_median"] - s["seconds_median"]) / (
                (m["rows_in"] - s["rows_in"]) / 1e6)
            growth[impl]["fit_seconds_per_million_rows"] = slope
            growth[impl]["fit_fixed_seconds"] = s["seconds_median"] - slope * s["rows_in"] / 1e6
    return {"per_dataset": per, "growth": growth}


def judge_goals(summary: dict) -> list:
    per, growth = summary["per_dataset"], summary["growth"]
    goals = []
    if TARGET in per:
        ratio = per[TARGET]["ratio_beam_over_reference"]["wall"]
        seconds = per[TARGET]["beam"]["seconds_median"]
        goals.append({"goal": f"Beam build within {GOAL_RATIO:g}x of the plain one "
                              f"({TARGET}, wall time)",
                      "measured": f"{ratio:.2f}x", "met": ratio <= GOAL_RATIO})
        goals.append({"goal": f"Beam build of {TARGET} under {GOAL_SECONDS:g} s on 2 cores",
                      "measured": f"{seconds:.1f} s", "met": seconds < GOAL_SECONDS})
    else:
        for goal in (f"Beam build within {GOAL_RATIO:g}x of the plain one ({TARGET})",
                     f"Beam build of {TARGET} under {GOAL_SECONDS:g} s on 2 cores"):
            goals.append({"goal": goal, "measured": f"not measured ({TARGET} not run)",
                          "met": None})
    if "beam" in growth:
        g = growth["beam"]
        goals.append({"goal": "Beam cost grows linearly with rows (s per million rows at "
                              f"{g['to']} / at {g['from']} <= {GOAL_GROWTH:g})",
                      "measured": f"{g['per_row_cost_ratio']:.2f} "
                                  f"(t ~ rows^{g['exponent']:.2f})",
                      "met": g["per_row_cost_ratio"] <= GOAL_GROWTH})
    else:
        goals.append({"goal": "Beam cost grows linearly with rows",
                      "measured": "not measured (one dataset size)", "met": None})
    return goals


# ------------------------------------------------------------------ machine and report

def machine() -> dict:
    return machine_info.describe(["tensorflow", "apache-beam", "pandas", "psutil"])


def _mib(n: float) -> str:
    return f"{n / MIB:,.0f}"


def _met(met) -> str:
    return {True: "**met**", False: "**missed**", None: "not evaluated"}[met]


def render_markdown(report: dict) -> str:
    m, s = report["machine"], report["summary"]
    per, growth = s["per_dataset"], s["growth"]
    gpus = report["gpus_seen_by_tensorflow"]
    out = [
        "# Pipeline throughput: Beam period build vs plain pandas reference",
        "",
        f"- Date: {report['date']}",
        f"- Command: `{report['command']}` (from the repository root)",
        *machine_info.header_lines(m, gpus),
        f"- Builds: protocol {PROTOCOL.upper()} (31 equal-count periods, explicit ratings); "
        f"Beam = `{IMPLEMENTATIONS['beam']}` (FnApiRunner, one process), reference = "
        f"`{IMPLEMENTATIONS['reference']}`; {report['repeats']} repeat(s), "
        "Beam/reference order alternating per repeat, medians reported.",
        "- Each build ran in its own freshly spawned process into a fresh temporary "
        "directory (deleted afterwards); imports and the input checksum happen before "
        "the clock starts. Peak RSS is sampled every "
        f"{SAMPLE_SECONDS * 1000:.0f} ms with psutil (process + children) and includes "
        "the imported libraries; 'RSS growth' is peak minus RSS at the start of the build.",
        "- Absolute times drift on a shared 2-core machine; compare the ratios.",
        "",
        "## Results",
        "",
        "| dataset | rows in | implementation | wall s | rows/s | CPU s | peak RSS MiB "
        "| RSS growth MiB | beam / reference (wall) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for dataset, figures in per.items():
        ratio = figures["ratio_beam_over_reference"]
        for impl in IMPLEMENTATIONS:
            f = figures[impl]
            out.append(
                f"| {dataset} | {f['rows_in']:,} | {impl} | {f['seconds_median']:.1f} "
                f"| {f['rows_per_second']:,.0f} | {f['cpu_seconds_median']:.1f} "
                f"| {_mib(f['peak_rss_bytes_median'])} | {_mib(f['rss_growth_bytes_median'])} "
                f"| {ratio['wall'] if impl == 'beam' else 1.0:.2f}x |")
    out += ["", "Ratios beam / reference:", "",
            "| dataset | wall | wall (paired median) | CPU | peak RSS | RSS growth |",
            "|---|---:|---:|---:|---:|---:|"]
    for dataset, figures in per.items():
        r = figures["ratio_beam_over_reference"]
        out.append(f"| {dataset} | {r['wall']:.2f}x | {r['wall_paired_median']:.2f}x "
                   f"| {r['cpu']:.2f}x | {r['peak_rss']:.2f}x | {r['rss_growth']:.2f}x |")
    if growth:
        any_g = next(iter(growth.values()))
        small, large = any_g["from"], any_g["to"]
        out += ["", "## Growth with rows", "",
                f"| implementation | s per million rows, {small} | s per million rows, "
                f"{large} | ratio (1 = linear) | exponent k in t ~ rows^k "
                "| line through both: fixed s + s per extra million rows |",
                "|---|---:|---:|---:|---:|---|"]
        for impl, g in growth.items():
            spm = g["seconds_per_million_rows"]
            out.append(f"| {impl} | {spm[small]:.1f} | {spm[large]:.1f} "
                       f"| {g['per_row_cost_ratio']:.2f} | {g['exponent']:.2f} "
                       f"| {g['fit_fixed_seconds']:.1f} s + "
                       f"{g['fit_seconds_per_million_rows']:.1f} s/M |")
    out += ["", "## Goals (from the issue)", "", "| goal | measured | status |",
            "|---|---|---|"]
    for g in report["goals"]:
        out.append(f"| {g['goal']} | {g['measured']} | {_met(g['met'])} |")
    notes = []
    for dataset, figures in per.items():
        ratio = figures["ratio_beam_over_reference"]["wall"]
        if dataset != TARGET and ratio > GOAL_RATIO:
            notes.append(f"- On {dataset} the Beam build is {ratio:.2f}x the reference, "
                         f"outside {GOAL_RATIO:g}x; the goal is stated for {TARGET}.")
    for impl, g in growth.items():
        if impl != "beam" and g["per_row_cost_ratio"] > GOAL_GROWTH:
            notes.append(f"- The {impl} build's cost per row grows "
                         f"{g['per_row_cost_ratio']:.2f}x from {g['from']} to {g['to']} "
                         f"(t ~ rows^{g['exponent']:.2f}): it is not linear in rows. Not "
                         "a goal, but it flatters the Beam/reference ratio at larger sizes.")
    if notes:
        out += [""] + notes
    out += ["", "## Agreement", ""]
    for dataset, checks in report["agreement"].items():
        c = checks[0]
        same_bytes = all(x["bytes_per_period_agree"] for x in checks)
        out.append(f"- {dataset}: both builds wrote {c['periods']} periods with the same rows "
                   f"and positives per period ({c['rows_out']:,} rows) in every repeat; "
                   f"TFRecord bytes per period {'identical' if same_bytes else 'DIFFER'} "
                   f"(beam {c['output_bytes']['beam']:,} B, reference "
                   f"{c['output_bytes']['reference']:,} B).")
    out += ["", "## Individual builds", "",
            "| # | dataset | implementation | wall s | CPU s | CPU/wall | peak RSS MiB "
            "| load avg (1 min) before -> after |",
            "|---:|---|---|---:|---:|---:|---:|---|"]
    for i, r in enumerate(report["runs"], start=1):
        out.append(f"| {i} | {r['dataset']} | {r['implementation']} | {r['seconds']:.1f} "
                   f"| {r['cpu_seconds']:.1f} | {r['cpu_seconds'] / r['seconds']:.2f} "
                   f"| {_mib(r['peak_rss_bytes'])} | {r['loadavg_before'][0]:.2f} -> "
                   f"{r['loadavg_after'][0]:.2f} |")
    out += ["", "CPU/wall well below 1 for these mostly single-threaded builds means the "
            "build waited for a core (other work on the machine) or for I/O.", ""]
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pipeline_throughput",
        description="Beam period pipeline vs the plain pandas reference, protocol B.")
    parser.add_argument("--repeats", type=int, default=1,
                        help="builds per implementation and dataset (median reported)")
    parser.add_argument("--quick", action="store_true",
                        help="movielens-100k only; results get a -quick suffix")
    parser.add_argument("--results-dir", default=RESULTS_DIR,
                        help="where the .md and .json go (default: benchmarks/results)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    argv = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(["python", "-m", "benchmarks.pipeline_throughput", *argv])

    datasets = list(QUICK_DATASETS if args.quick else DATASETS)
    from tfmeta.data import registry
    for dataset in datasets:
        registry.fetch(dataset)  # fail before any build if a dataset is missing

    plan = []
    for repeat in range(args.repeats):
        order = list(IMPLEMENTATIONS) if repeat % 2 == 0 else list(IMPLEMENTATIONS)[::-1]
        for dataset in datasets:
            plan += [(repeat, dataset, impl) for impl in order]

    runs, agreement = [], {}
    started = time.perf_counter()
    for i, (repeat, dataset, impl) in enumerate(plan, start=1):
        print(f"[{i}/{len(plan)}] {impl} {dataset} (repeat {repeat + 1}/{args.repeats}) ...",
              file=sys.stderr, flush=True)
        run = run_isolated(impl, dataset)
        run["repeat"] = repeat
        runs.append(run)
        print(f"[{i}/{len(plan)}] {impl} {dataset}: {run['seconds']:.1f} s, "
              f"{run['rows_per_second']:,.0f} rows/s, CPU {run['cpu_seconds']:.1f} s, "
              f"peak RSS {_mib(run['peak_rss_bytes'])} MiB", file=sys.stderr, flush=True)
        pair = [r for r in runs if r["dataset"] == dataset and r["repeat"] == repeat]
        if len(pair) == 2:
            by_impl = {r["implementation"]: r for r in pair}
            try:
                check = check_agreement(by_impl["beam"], by_impl["reference"])
            except OutputsDisagree as e:
                print(f"FAILED: {e}", file=sys.stderr, flush=True)
                return 1
            agreement.setdefault(dataset, []).append(check)
            if not check["bytes_per_period_agree"]:
                print(f"warning: {dataset}: row counts agree but TFRecord bytes per period "
                      "differ", file=sys.stderr, flush=True)

    summary = summarize(runs, datasets)
    report = {
        "benchmark": "pipeline_throughput",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "quick": args.quick,
        "repeats": args.repeats,
        "protocol": PROTOCOL,
        "implementations": IMPLEMENTATIONS,
        "machine": machine(),
        "gpus_seen_by_tensorflow": max(r["gpus"] for r in runs),
        "total_seconds": time.perf_counter() - started,
        "goals": judge_goals(summary),
        "summary": summary,
        "agreement": agreement,
        "runs": runs,
    }
    suffix = "-quick" if args.quick else ""
    md_path, json_path = machine_info.write_results(
        args.results_dir, f"pipeline_throughput{suffix}", report, render_markdown(report))
    print(f"wrote {md_path} and {json_path} ({report['total_seconds']:.0f} s in all)",
          file=sys.stderr)
    for g in report["goals"]:
        print(f"goal: {g['goal']}: {g['measured']} -> {_met(g['met']).strip('*')}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
