"""Runs sharing a machine: TensorFlow's thread pools per run (`tfmeta train --threads`).

    python -m benchmarks.threads                  # movielens-100k, ~20 min
    python -m benchmarks.threads --repeats 2      # each setting twice, interleaved
    python -m benchmarks.threads --quick          # smoke run (BPR-MF, 1 epoch)

benchmarks.leaprec trains `--workers` runs at a time, each a `tfmeta train` process
with TensorFlow's default pools: one intra-op and one inter-op thread per core. Two runs
on two cores thus keep up to eight threads busy. Is that slower than giving each run a
share of the cores, or than running them one after the other? For each workload (a
`tfmeta train` command on MovieLens-100K's protocol A periods), the settings

    alone    one run, default pools             (benchmarks.leaprec --workers 1)
    pair     two runs at once, default pools    (--workers 2, as the benchmark ran)
    pair-1   two runs at once, --threads 1 each (--workers 2 --threads 1)

run in turn, repeated `--repeats` times (alone, pair, pair-1, alone, ...: each sees the
same drift of the machine). Each setting is timed from starting its processes to the
end of the last one (imports, data, training and scoring: all a benchmark run pays).
Throughput is runs per hour. The ratios against `alone` say what running two at once
gains over one after the other, with and without the cap. The two runs of a pair have
seeds 0 and 1, like two seeds of the benchmark; the report gives the largest
difference in a seed's test figures across the settings.

Results: benchmarks/results/threads.{md,json} (threads-quick.* with --quick).
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from benchmarks import machine

from benchmarks.reports import RESULTS_DIR, ROOT  # noqa: E402
RUNS_DIR = os.path.join("runs", "leaprec")
DATASET = "movielens-100k"
# name -> `tfmeta train` flags: the models and meta-learner of the benchmark's costly
# runs, cut to a budget that keeps each run to a few minutes.
WORKLOADS = {
    "gnn-sa": ["--method", "gnn-sa", "--epochs", "1"],
    "leaprec": ["--method", "leaprec", "--iterations", "1", "--inner-steps", "2"],
}
QUICK = {"mf": ["--method", "mf", "--epochs", "1"]}
# name -> (runs at once, --threads or None)
SETTINGS = {"alone": (1, None), "pair": (2, None), "pair-1": (2, 1)}


def run_setting(flags: list, setting: str, periods: str, work_dir: str) -> dict:
    """The setting's runs, started together; their process figures and the makespan."""
    runs, threads = SETTINGS[setting]

    def one(seed: int) -> dict:
        out = tempfile.mkdtemp(prefix=f"{setting}-{seed}-", dir=work_dir)
        command = [sys.executable, "-m", "tfmeta.cli", "train", "--periods", periods,
                   "--out", os.path.join(out, "run"), "--seed", str(seed), *flags,
                   *(["--threads", str(threads)] if threads else [])]
        with open(os.path.join(out, "train.log"), "w") as log:
            figures = machine.run_measured(command, ROOT, log)
        if figures["returncode"] != 0:
            raise SystemExit(f"{' '.join(command)} failed; see {out}/train.log")
        with open(os.path.join(out, "run", "metrics.json")) as f:
            metrics = json.load(f)
        shutil.rmtree(out)
        return {**figures, "seed": seed, "threads": metrics["threads"],
                "test": metrics["test"]["sampled"]}

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(runs) as pool:
        processes = list(pool.map(one, range(runs)))
    return {"makespan": time.perf_counter() - started, "processes": processes}


def summarize(rows: dict) -> dict:
    """{setting: {"runs", "makespan" (median s), "runs_per_hour", "cpu_per_run" (median
    s), "vs_alone" (throughput ratio)}} from {setting: [run_setting result, ...]}."""
    out = {}
    for setting, results in rows.items():
        runs = SETTINGS[setting][0]
        makespan = float(np.median([r["makespan"] for r in results]))
        cpu = [p["cpu_seconds"] for r in results for p in r["processes"]]
        out[setting] = {"runs": runs, "threads": SETTINGS[setting][1],
                        "makespan": makespan, "runs_per_hour": runs * 3600 / makespan,
                        "cpu_per_run": float(np.median(cpu))}
    for setting in out:
        out[setting]["vs_alone"] = out[setting]["runs_per_hour"] / out["alone"]["runs_per_hour"]
    return out


def figure_spread(rows: dict) -> float:
    """The largest difference between two runs of one seed in any test figure, across
    the settings (0: the pools' sizes did not change a run's result)."""
    by_seed = {}
    for results in rows.values():
        for result in results:
            for p in result["processes"]:
                by_seed.setdefault(p["seed"], []).append(p["test"])
    return max(max(t[k] for t in tests) - min(t[k] for t in tests)
               for tests in by_seed.values() for k in tests[0])


def render(report: dict) -> str:
    lines = machine.timing_header(report, "Runs sharing a machine: thread pools per run",
                                  "alone, pair, pair-1, alone, ...")
    lines += [f"- Data: {DATASET} protocol A periods ({report['periods']}); "
              f"{report['repeats']} repeat(s) per setting; makespan = from starting a "
              "setting's processes to the end of its last (imports, data, training, "
              "scoring).",
              "- Settings: `alone` one run with TensorFlow's default pools (one thread per "
              "core, intra- and inter-op); `pair` two runs at once with the defaults; "
              "`pair-1` two runs at once with `--threads 1` each.", ""]
    for name, summary in report["workloads"].items():
        lines += [f"## {name}: `tfmeta train {' '.join(report['flags'][name])}`", "",
                  "| setting | runs at once | --threads | makespan (s) | runs / hour | "
                  "CPU s per run | throughput vs alone |", "|---|---:|---:|---:|---:|---:|---:|"]
        for setting, s in summary.items():
            lines.append(f"| {setting} | {s['runs']} | {s['threads'] or 'default'} | "
                         f"{s['makespan']:.1f} | {s['runs_per_hour']:.1f} | "
                         f"{s['cpu_per_run']:.1f} | {s['vs_alone']:.2f}x |")
        pair, capped = summary["pair"], summary["pair-1"]
        lines += ["", f"- Two at once, default pools: {pair['vs_alone']:.2f}x the throughput "
                  f"of one after the other; with `--threads 1` each: {capped['vs_alone']:.2f}x "
                  f"(`pair-1` / `pair` = {capped['runs_per_hour'] / pair['runs_per_hour']:.2f}x).",
                  "- The largest difference between two runs of one seed in any sampled test "
                  f"figure, across the settings: {report['figure_spread'][name]:.1g}.", ""]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.threads",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=1,
                        help="times each setting runs, interleaved (default 1)")
    parser.add_argument("--workloads", nargs="+", choices=sorted(WORKLOADS), default=None,
                        help=f"default: {' '.join(WORKLOADS)}")
    parser.add_argument("--periods", default=None,
                        help=f"protocol A periods (default: {DATASET}'s, built once under "
                             f"{RUNS_DIR}/periods as benchmarks.leaprec does)")
    parser.add_argument("--quick", action="store_true", help="smoke run: BPR-MF, 1 epoch")
    parser.add_argument("--results-dir", default=RESULTS_DIR,
                        help="where the .md and .json go (default benchmarks/results)")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    started = time.perf_counter()
    workloads = QUICK if args.quick else {k: WORKLOADS[k] for k in
                                          (args.workloads or WORKLOADS)}
    periods = args.periods
    if periods is None:
        from benchmarks.leaprec import ensure_periods
        periods = ensure_periods(DATASET, RUNS_DIR)["path"]
    periods = os.path.abspath(periods)  # the runs start in ROOT
    report = machine.timing_report("threads", argv, ["tensorflow", "tfmeta"],
                                   quick=args.quick, repeats=args.repeats,
                                   periods=os.path.relpath(periods, ROOT),
                                   flags=workloads, workloads={}, measured={},
                                   figure_spread={})
    work_dir = tempfile.mkdtemp(prefix="tfmeta-threads-")
    try:
        for name, flags in workloads.items():
            def timed(setting, flags=flags):
                result = run_setting(flags, setting, periods, work_dir)
                return result, result["makespan"], sum(p["cpu_seconds"]
                                                       for p in result["processes"])
            measured = machine.interleaved(timed, list(SETTINGS), args.repeats,
                                           desc=name)["results"]
            report["measured"][name] = measured
            report["workloads"][name] = summarize(measured)
            report["figure_spread"][name] = figure_spread(measured)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    prefix = "threads-quick" if args.quick else "threads"
    machine.finish(args.results_dir, prefix, report, render, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
