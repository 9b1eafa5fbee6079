"""ASMG, Table 1 and Figure 3: every protocol B method over several seeds, against IU.

    python -m benchmarks.asmg                                 # movielens-100k and yelp-a
    python -m benchmarks.asmg --datasets movielens-100k       # one dataset (~20 min)
    python -m benchmarks.asmg --resume                        # continue a killed benchmark
    python -m benchmarks.asmg --quick                         # smoke run (~1 min)
    python -m benchmarks.asmg --periods DIR --budget 1,3      # periods you built

For each dataset the protocol B periods are built once into RUNS_DIR/periods/<dataset>
(`pipelines.periods.build_periods`; reused when its manifest exists), or read from
--periods (e.g. `tfmeta periods build --input my-log.csv --protocol b --out DIR`; runs
and report then go to runs/asmg-periods/ unless --runs-dir / --results-dir say
otherwise, apart from the project's results). Then every
(method, seed) pair is one run of

    sys.executable -m tfmeta.cli train --periods P --method M --seed S --out RUN_DIR

in its own subprocess, `--workers` of them at a time, each with the method's defaults.
One thing is chosen, on validation periods only: the base model's training budget
(`--epochs`, passes over each period, and `--pretrain-epochs`, over periods 1-10),
shared by every method. IU with seed 0 is run over BUDGET_GRID and the budget with the
best mean validation AUC (scored periods 22-24) is used for all methods and seeds
(`--budget E,P` fixes it instead). The benchmark reads every run's metrics.json and
writes

    benchmarks/results/asmg.md                          the table, the claim, timing
    benchmarks/results/asmg.json                        raw figures and every run's metrics
    benchmarks/results/asmg-per-period-<dataset>.png    test AUC per period (Figure 3)

(`asmg-quick*` with --quick). A later invocation on other datasets adds its datasets
to asmg.json / asmg.md and keeps the ones it did not run; a dataset run again is
replaced. Runs live in RUNS_DIR/<dataset>/e<E>-p<P>/<method>/seed-<n> (the budget
search's in RUNS_DIR/<dataset>/budget/...); with --resume a run whose
metrics.json exists is reused, and one that was killed part-way is continued with
`tfmeta train --resume` (which ends with the metrics of an uninterrupted run).
"""
import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Optional  # noqa: E402

import numpy as np  # noqa: E402

from tfmeta.evaluation.metrics import relative_change  # noqa: E402
from tfmeta.training.rundir import periods_digest  # noqa: E402

from benchmarks import machine as machine_info  # noqa: E402
from benchmarks.machine import gpus_seen, machine_of  # noqa: E402
from benchmarks.drivers import (add_run_arguments, exit_code,  # noqa: E402
                                resolve_run_arguments)
from benchmarks.periods import (built_or_given, read_another_build,  # noqa: E402
                               report_read_this_build, where_built)
from benchmarks.reports import (ROOT, bold, code_lines, pct, pm, portable,  # noqa: E402
                                process_cells, pyplot, read_json, run_marks, save_png,
                                stats, update_report)
from benchmarks.runs import folder_gone, launch, run_pool, run_record  # noqa: E402

DATASETS = ("movielens-100k", "yelp-a")
SEEDS = (0, 1, 2)
QUICK = {"datasets": ("movielens-100k",), "methods": ("iu", "asmg-gru-multi"), "seeds": (0,)}
REFERENCE = "iu"                 # relative changes are against incremental update
CLAIMED = "asmg-gru-multi"       # the method the paper's Table 1 puts first
FULL = "asmg-gru-full"           # its variant over the whole model history
PAPER_AUC_GAIN = (0.009, 0.014)  # ASMG-GRU-multi over IU, relative test AUC, per dataset
PAPER_META_RATIO = (6.5, 7.0)    # generator training time, full / multi, last period
TIMING_PERIOD = 31               # per_period entry of the update on period 30
FIRST_SCORED = 12
VALIDATION = (22, 23, 24)        # PROTOCOLS.md B.4 (scored periods i + 1)
TEST = tuple(range(25, 32))
BUDGET_GRID = tuple((e, p) for e in (1, 2, 3) for p in (1, 3, 5))  # (epochs, pretrain)
BUDGET_SEED = 0

RUNS_DIR = os.path.join(ROOT, "runs", "asmg")


# ------------------------------------------------------------------ machine and sources

def machine() -> dict:
    return machine_info.describe(["tensorflow", "tf-keras", "numpy", "matplotlib"])


# What a protocol B run imports of tfmeta/ (the rest, e.g. protocol A, may change
# while a benchmark runs without touching its results).
PROTOCOL_B_SOURCES = (
    "tfmeta/__init__.py", "tfmeta/cli.py", "tfmeta/data/periods.py", "tfmeta/data/schema.py",
    "tfmeta/evaluation/metrics.py", "tfmeta/meta/asmg.py", "tfmeta/meta/generators.py",
    "tfmeta/meta/incremental.py", "tfmeta/meta/sml.py", "tfmeta/meta/spmf.py",
    "tfmeta/models/embedding_mlp.py", "tfmeta/training/incremental.py",
    "tfmeta/training/rundir.py")


def source_digest() -> str:
    """A short digest of PROTOCOL_B_SOURCES: the code a run about to start will import.
    Others edit the library while benchmarks run; runs of one table should agree."""
    digest = hashlib.sha256()
    for path in PROTOCOL_B_SOURCES:
        digest.update(path.encode())
        with open(os.path.join(ROOT, path), "rb") as f:
            digest.update(hashlib.sha256(f.read()).digest())
    return digest.hexdigest()[:12]


# ------------------------------------------------------------------ periods and runs

def ensure_periods(dataset: str, runs_dir: str, given: Optional[str] = None) -> dict:
    """The protocol B periods of a dataset, built once (or `given`, --periods); returns
    path and summary."""
    out, manifest, built_seconds = built_or_given(dataset, "b", runs_dir, given)
    return {"path": out, "built_seconds": built_seconds, "given": bool(given),
            "rows_out": manifest.get("rows_out"),
            "periods": len(manifest.get("periods", [])),
            "rows_per_period": [p.get("rows") for p in manifest.get("periods", [])],
            "positives": sum(p.get("positives") or 0 for p in manifest.get("periods", [])),
            "vocab": manifest.get("vocab", {}).get("sizes"), "digest": periods_digest(manifest)}


@dataclasses.dataclass
class Run:
    dataset: str
    method: str
    seed: int
    out: str
    budget: tuple = (1, 1)  # (epochs, pretrain_epochs) of the base model

    @property
    def metrics_path(self) -> str:
        return os.path.join(self.out, "metrics.json")

    @property
    def partial(self) -> bool:
        return os.path.exists(os.path.join(self.out, "progress.json"))

    @property
    def name(self) -> str:
        return f"{self.dataset}/{budget_name(self.budget)}/{self.method}/seed-{self.seed}"

    label = name


def train(run: Run, periods: str, workers: int) -> dict:
    """One `tfmeta train` in a subprocess; returns its process figures."""
    args = ["-m", "tfmeta.cli", "train", "--periods", periods, "--method", run.method,
            "--out", run.out, "--seed", str(run.seed),
            "--epochs", str(run.budget[0]), "--pretrain-epochs", str(run.budget[1])]
    resumed = run.partial
    if resumed:
        args.append("--resume")
    return launch(run, args, resumed=resumed, source=source_digest(), workers=workers)


def _mismatch(run: Run, metrics: dict, periods: str, same_build: bool = False) -> dict:
    """{field: recorded value} where a run's metrics are not those of `run` on `periods`;
    `same_build`: known to have read the build there now (the report says so)."""
    # The periods folder says which data it was: a --periods build of a file has no
    # registered dataset name. The report holds it relative to the repository.
    expected = {"method": run.method, "seed": run.seed}
    wrong = {k: metrics.get(k) for k, v in expected.items() if metrics.get(k) != v}
    if os.path.abspath(os.path.join(ROOT, metrics.get("periods") or "")) != \
            os.path.abspath(periods):
        wrong["periods"] = metrics.get("periods")
    elif not same_build and read_another_build(metrics, periods):
        wrong["periods_digest"] = metrics["periods_digest"]  # rebuilt since it ran
    budget = tuple(metrics.get("options", {}).get(k, 1) for k in ("epochs", "pretrain_epochs"))
    if budget != tuple(run.budget):
        wrong["epochs, pretrain_epochs"] = budget
    return wrong


def load_run(run: Run, periods: str, record: Optional[dict] = None) -> dict:
    metrics = read_json(run.metrics_path)
    wrong = _mismatch(run, metrics, periods)
    if wrong:
        raise SystemExit(f"{run.metrics_path} does not belong to {run.name} on {periods}: "
                         f"{wrong}; remove the run folder or choose another --runs-dir")
    if record is None:
        record = run_record(run)
    return portable({"dataset": run.dataset, "method": run.method, "seed": run.seed,
                     "run_dir": os.path.relpath(run.out, ROOT), "process": record,
                     "metrics": metrics})


def from_report(runs: list, recorded: list, periods: str, same_build: bool) -> dict:
    """{name: run} of the finished runs the report holds (`recorded`, a section's runs)
    whose folder is gone (runs/ cleaned, or a new machine), when the report's runs read
    the build of `periods` there now: kept rather than trained again. A folder that
    exists, finished or killed, is the run's own record."""
    if not same_build:
        return {}
    by_dir = {r["run_dir"]: r for r in recorded}
    kept = {}
    for run in runs:
        old = by_dir.get(os.path.relpath(run.out, ROOT))
        if old is not None and not os.path.exists(run.out) and \
                not _mismatch(run, old["metrics"], periods, same_build):
            kept[run.name] = folder_gone(old)
    return kept


def run_all(runs: list, periods: str, workers: int, desc: str,
            kept: Optional[dict] = None) -> tuple:
    """Runs what has no metrics.json yet nor a record in `kept` ({name: run} from the
    report, from_report), `workers` at a time; ({name: run}, [failed])."""
    done = {r.name: load_run(r, periods) for r in runs if os.path.exists(r.metrics_path)}
    done.update(kept or {})  # from_report keeps only runs whose folder is gone

    def finished(run: Run, record: dict) -> str:
        done[run.name] = load_run(run, periods, record)
        m = done[run.name]["metrics"]
        return f"{run.method} s{run.seed}: val AUC {m['val']['auc']:.4f} ({m['seconds']:.0f} s)"

    failed = run_pool([r for r in runs if r.name not in done],
                      lambda run: train(run, periods, workers), finished,
                      total=len(runs), reused=len(done), workers=workers, desc=desc)
    return done, failed


def budget_name(budget: tuple) -> str:
    return f"e{budget[0]}-p{budget[1]}"


def select_budget(dataset: str, periods: str, runs_dir: str, workers: int,
                  kept: Optional[list] = None) -> dict:
    """The base model's (epochs, pretrain_epochs) with the best validation AUC of IU
    (seed BUDGET_SEED) over BUDGET_GRID. Test periods are never looked at. `kept`: the
    report's grid, whose points stand for runs whose folder is gone (the report's runs
    read the build there now)."""
    runs = [Run(dataset, REFERENCE, BUDGET_SEED,
                os.path.join(runs_dir, dataset, "budget", budget_name(b),
                             f"seed-{BUDGET_SEED}"), b) for b in BUDGET_GRID]
    recorded = {g["run_dir"]: g for g in kept or ()}
    points = {r.name: dict(recorded[d], folder_gone=True) for r in runs
              if (d := os.path.relpath(r.out, ROOT)) in recorded and not os.path.exists(r.out)}
    if points:
        print(f"{dataset} budget search: {len(points)} of {len(runs)} grid points from the "
              "report: their folders are gone", file=sys.stderr, flush=True)
    done, failed = run_all([r for r in runs if r.name not in points], periods, workers,
                           f"{dataset} budget search")
    if failed:
        raise SystemExit(f"the budget search failed: {', '.join(r.name for r in failed)}; "
                         "see their train.log and rerun (finished runs are reused)")
    for run in runs:
        if run.name in done:
            m = done[run.name]["metrics"]
            points[run.name] = {
                "epochs": run.budget[0], "pretrain_epochs": run.budget[1],
                "val_auc": m["val"]["auc"], "val_logloss": m["val"]["logloss"],
                "seconds": m["seconds"], "run_dir": os.path.relpath(run.out, ROOT)}
    grid = [points[r.name] for r in runs]
    best = max(grid, key=lambda g: g["val_auc"])
    return {"criterion": f"mean validation AUC (scored periods {VALIDATION[0]}-"
                         f"{VALIDATION[-1]}) of {REFERENCE}, seed {BUDGET_SEED}",
            "grid": grid, "chosen": [best["epochs"], best["pretrain_epochs"]]}


# ------------------------------------------------------------------ summaries

def _per_period(metrics: dict) -> dict:
    return {r["period"]: r for r in metrics["per_period"]}


def summarize(runs: list, methods: list) -> dict:
    """Per method: Table 1 figures, per-period means and timing (one dataset)."""
    by = {}
    for r in runs:
        by.setdefault(r["method"], {})[r["seed"]] = r["metrics"]
    methods = [m for m in methods if m in by]
    iu = by.get(REFERENCE, {})
    periods = sorted({p for r in runs for p in _per_period(r["metrics"])})
    table, per_period, timing = {}, {}, {}
    for m in methods:
        seeds = sorted(by[m])
        common = [s for s in seeds if s in iu]
        runs_m = [by[m][s] for s in seeds]
        row = {
            "seeds": seeds,
            "test_auc": stats(x["test"]["auc"] for x in runs_m),
            "test_logloss": stats(x["test"]["logloss"] for x in runs_m),
            "val_auc": stats(x["val"]["auc"] for x in runs_m),
            "val_logloss": stats(x["val"]["logloss"] for x in runs_m),
            "rel_test_auc": stats(relative_change(by[m][s]["test"]["auc"],
                                                  iu[s]["test"]["auc"]) for s in common),
            "rel_test_logloss": stats(relative_change(by[m][s]["test"]["logloss"],
                                                      iu[s]["test"]["logloss"])
                                      for s in common),
            "seconds": stats(x["seconds"] for x in runs_m),
        }
        iu_seconds = stats(iu[s]["seconds"] for s in common)["mean"]
        row["seconds_over_iu"] = (np.mean([by[m][s]["seconds"] for s in common]) / iu_seconds
                                  if common and iu_seconds else None)
        table[m] = row

        pp = [_per_period(x) for x in runs_m]
        per_period[m] = {
            "periods": periods,
            "auc": [stats(p[q]["auc"] for p in pp if q in p)["mean"] for q in periods],
            "logloss": [stats(p[q]["logloss"] for p in pp if q in p)["mean"] for q in periods],
            # the same seed's IU on the same period, averaged over seeds
            "auc_minus_iu": [stats(_per_period(by[m][s])[q]["auc"]
                                   - _per_period(iu[s])[q]["auc"]
                                   for s in common if q in _per_period(by[m][s])
                                   and q in _per_period(iu[s]))["mean"] for q in periods],
        }

        update = [float(np.mean([r["update_seconds"] for r in x["per_period"]]))
                  for x in runs_m]
        meta = [float(np.mean([r["meta_seconds"] for r in x["per_period"]])) for x in runs_m]
        meta_last = [p[TIMING_PERIOD]["meta_seconds"] for p in pp if TIMING_PERIOD in p]
        update_last = [p[TIMING_PERIOD]["update_seconds"] for p in pp if TIMING_PERIOD in p]
        trace = [float(sum(r.get("trace_seconds", 0.0) for r in x["per_period"]))
                 for x in runs_m]
        timing[m] = {"update_seconds_mean": stats(update),
                     "trace_seconds_run": stats(trace),
                     "meta_seconds_mean": stats(meta),
                     "update_seconds_last": stats(update_last),
                     "meta_seconds_last": stats(meta_last)}
    if REFERENCE in timing:
        ref = timing[REFERENCE]["update_seconds_mean"]["mean"]
        for m in timing:
            timing[m]["update_over_iu"] = (timing[m]["update_seconds_mean"]["mean"] / ref
                                           if ref else None)
    ratio = None
    if FULL in timing and CLAIMED in timing:
        full, multi = by[FULL], by[CLAIMED]
        paired = [_per_period(full[s])[TIMING_PERIOD]["meta_seconds"]
                  / _per_period(multi[s])[TIMING_PERIOD]["meta_seconds"]
                  for s in sorted(set(full) & set(multi))
                  if _per_period(multi[s]).get(TIMING_PERIOD, {}).get("meta_seconds")]
        ratio = {"of_means": (timing[FULL]["meta_seconds_last"]["mean"]
                              / timing[CLAIMED]["meta_seconds_last"]["mean"]
                              if timing[CLAIMED]["meta_seconds_last"]["mean"] else None),
                 "per_seed": stats(paired),
                 "update_of_means": (timing[FULL]["update_seconds_last"]["mean"]
                                     / timing[CLAIMED]["update_seconds_last"]["mean"])}
    return {"methods": methods, "table": table, "best": best_per_column(table),
            "per_period": per_period, "timing": timing, "full_over_multi_meta": ratio}


# column -> (key in the table row, True if higher is better)
COLUMNS = {"test_auc": True, "test_logloss": False, "rel_test_auc": True,
           "rel_test_logloss": False, "val_auc": True, "seconds": False}


def best_per_column(table: dict) -> dict:
    best = {}
    for column, higher in COLUMNS.items():
        values = {m: row[column]["mean"] for m, row in table.items()
                  if row[column]["mean"] is not None}
        if column.startswith("rel_"):
            values.pop(REFERENCE, None)  # IU's change against itself is 0 by definition
        if values:
            target = (max if higher else min)(values.values())
            best[column] = sorted(m for m, v in values.items() if v == target)
    return best


def judge_claim(summary: dict) -> dict:
    """Does ASMG-GRU-multi beat IU and every baseline in mean test AUC and LogLoss?"""
    table, pp = summary["table"], summary["per_period"]
    if CLAIMED not in table or REFERENCE not in table:
        return {"verdict": "not evaluated",
                "why": f"needs both {CLAIMED} and {REFERENCE} in --methods"}
    baselines = [m for m in table if not m.startswith("asmg-")]
    variants = [m for m in table if m.startswith("asmg-") and m != CLAIMED]
    mine = table[CLAIMED]
    auc, logloss = mine["test_auc"]["mean"], mine["test_logloss"]["mean"]
    best_auc = max(baselines, key=lambda m: table[m]["test_auc"]["mean"])
    best_ll = min(baselines, key=lambda m: table[m]["test_logloss"]["mean"])
    beats_auc = auc > table[best_auc]["test_auc"]["mean"]
    beats_ll = logloss < table[best_ll]["test_logloss"]["mean"]
    rel = mine["rel_test_auc"]["mean"]
    # Seed by seed: does multi beat the strongest baseline (by mean AUC) on that seed?
    seeds = [s for s in mine["seeds"] if s in table[best_auc]["seeds"]]
    auc_by_seed = dict(zip(mine["seeds"], mine["test_auc"]["values"]))
    rival_by_seed = dict(zip(table[best_auc]["seeds"], table[best_auc]["test_auc"]["values"]))
    seed_wins = sum(auc_by_seed[s] > rival_by_seed[s] for s in seeds)
    iu_wins = sum(v > 0 for v in mine["rel_test_auc"]["values"])
    rank_auc = 1 + sum(table[m]["test_auc"]["mean"] > auc for m in table)
    rank_ll = 1 + sum(table[m]["test_logloss"]["mean"] < logloss for m in table)
    stds = [s for s in (mine["test_auc"]["std"], table[best_auc]["test_auc"]["std"]) if s]
    noise = max(stds) if stds else None
    gap = auc - table[best_auc]["test_auc"]["mean"]
    if beats_auc and beats_ll:
        verdict = "supported"
    elif beats_auc or beats_ll:
        verdict = "partly supported"
    else:
        verdict = "not supported"

    def drivers(rival):
        """Test periods sorted by how much they contribute to multi - rival (AUC)."""
        if rival == REFERENCE:
            diffs = pp[CLAIMED]["auc_minus_iu"]
        else:
            diffs = [a - b if a is not None and b is not None else None
                     for a, b in zip(pp[CLAIMED]["auc"], pp[rival]["auc"])]
        rows = [(q, d) for q, d in zip(pp[CLAIMED]["periods"], diffs)
                if q in TEST and d is not None]
        return sorted(rows, key=lambda qd: -abs(qd[1]))

    return {
        "verdict": verdict, "baselines": baselines, "variants": variants,
        "beats_every_baseline_auc": beats_auc, "beats_every_baseline_logloss": beats_ll,
        "strongest_baseline_auc": best_auc, "strongest_baseline_logloss": best_ll,
        "auc_gap_to_strongest_baseline": gap, "seed_std_auc": noise,
        "gap_within_seed_noise": (abs(gap) <= noise) if noise is not None else None,
        "seeds_beating_strongest_baseline": [seed_wins, len(seeds)],
        "seeds_beating_iu": [iu_wins, mine["rel_test_auc"]["n"]],
        "rel_test_auc_vs_iu": rel, "rel_test_logloss_vs_iu": mine["rel_test_logloss"]["mean"],
        "paper_rel_test_auc_vs_iu": list(PAPER_AUC_GAIN),
        "within_paper_range": (PAPER_AUC_GAIN[0] <= rel <= PAPER_AUC_GAIN[1]
                               if rel is not None else None),
        "rank_test_auc": [rank_auc, len(table)], "rank_test_logloss": [rank_ll, len(table)],
        "beats_other_asmg_variants_auc": all(auc > table[m]["test_auc"]["mean"]
                                             for m in variants),
        "period_drivers_vs_iu": drivers(REFERENCE),
        "period_drivers_vs_strongest_baseline": (drivers(best_auc)
                                                 if best_auc != REFERENCE else None),
    }


# ------------------------------------------------------------------ figure

def plot_per_period(summary: dict, dataset: str, path: str, seeds: int) -> None:
    plt = pyplot()

    pp = summary["per_period"]
    methods = summary["methods"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown",
               "tab:pink", "tab:gray", "tab:olive", "tab:cyan", "navy", "goldenrod",
               "teal", "magenta"]  # no red or black: those are IU and ASMG-GRU-multi
    others = [m for m in methods if m not in (REFERENCE, CLAIMED)]
    style = {REFERENCE: dict(color="black", lw=2.2, zorder=5),
             CLAIMED: dict(color="tab:red", lw=2.6, zorder=6)}
    for n, m in enumerate(others):
        style[m] = dict(color=palette[n % len(palette)], lw=1.2, zorder=3,
                        ls="--" if m.startswith("asmg-") else "-")
    # The lower panel is about ASMG against IU: the ASMG variants and the strongest
    # other baseline by mean test AUC (weak baselines would only stretch its scale).
    table = summary["table"]
    baselines = [m for m in others if not m.startswith("asmg-")]
    strongest = (max(baselines, key=lambda m: table[m]["test_auc"]["mean"] or -1)
                 if baselines else None)
    compared = [m for m in methods if m.startswith("asmg-") or m in (REFERENCE, strongest)]
    for m in methods:
        x = pp[m]["periods"]
        top.plot(x, pp[m]["auc"], marker="o", ms=3, label=m, **style[m])
        if REFERENCE in pp and m in compared:
            bottom.plot(x, pp[m]["auc_minus_iu"], marker="o", ms=3, **style[m])
    for ax in (top, bottom):
        ax.axvspan(VALIDATION[0] - 0.5, VALIDATION[-1] + 0.5, color="tab:blue", alpha=0.09)
        ax.axvspan(TEST[0] - 0.5, TEST[-1] + 0.5, color="tab:orange", alpha=0.10)
        ax.grid(alpha=0.3)
    bottom.axhline(0, color="black", lw=0.8)
    top.text(sum(VALIDATION) / 3, 1.0, "validation", transform=top.get_xaxis_transform(),
             ha="center", va="bottom", fontsize=9, color="tab:blue")
    top.text((TEST[0] + TEST[-1]) / 2, 1.0, "test", transform=top.get_xaxis_transform(),
             ha="center", va="bottom", fontsize=9, color="tab:orange")
    top.set_ylabel("AUC on period")
    bottom.set_ylabel("AUC - IU (same seed)")
    if strongest:
        bottom.set_title(f"ASMG variants and the strongest baseline ({strongest}) minus IU",
                         fontsize=9)
    bottom.set_xlabel("scored period (model updated on the period before)")
    bottom.set_xticks(pp[methods[0]]["periods"])
    top.set_title(f"{dataset}, protocol B: AUC per period, mean over {seeds} seed(s)",
                  pad=16)
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    save_png(fig, path)


# ------------------------------------------------------------------ report

def _ratio(value) -> str:
    return f"{value:.2f}x" if value is not None else "n/a"


def cpu_per_method(runs: list) -> dict:
    """CPU seconds of each run's process (rusage), per method, and their ratio to IU.
    Resumed runs are left out: their last process did only part of the run."""
    out = {}
    for m in dict.fromkeys(r["method"] for r in runs):
        mine = [r["process"] for r in runs if r["method"] == m
                and r["process"].get("process_seconds") and not r["process"].get("resumed")]
        out[m] = {"cpu": stats(p["cpu_seconds"] for p in mine),
                  "wall": stats(p["process_seconds"] for p in mine),
                  "cpu_over_wall": stats(p["cpu_seconds"] / p["process_seconds"]
                                         for p in mine)}
    ref = out.get(REFERENCE, {}).get("cpu", {}).get("mean")
    for m in out:
        out[m]["cpu_over_iu"] = out[m]["cpu"]["mean"] / ref if ref and out[m]["cpu"]["mean"] else None
    return out


def _yes(value) -> str:
    return {True: "yes", False: "no", None: "n/a"}[value]


def render_dataset(dataset: str, section: dict, prefix: str) -> list:
    s, claim = section["summary"], section["claim"]
    table, best, timing = s["table"], s["best"], s["timing"]
    p = section["periods"]
    n_seeds = len(section["seeds"])
    budget = section.get("budget", {"epochs": 1, "pretrain_epochs": 1})
    out = [f"## {dataset}", "",
           f"- Date: {section['date']}",
           f"- Command: `{section['command']}` (from the repository root)",
           f"- Periods: {p['periods']} protocol B periods, {p['rows_out']:,} examples "
           f"({p['positives']:,} positive), {where_built(p)} `{section['periods_dir']}`.",
           f"- Runs: {len(section['methods'])} methods x seeds {section['seeds']} = "
           f"{len(section['runs'])} runs, {section['workers']} at a time "
           f"({section['reused']} reused from an earlier invocation); each method with its "
           f"defaults (`tfmeta train --method M --seed S --epochs {budget['epochs']} "
           f"--pretrain-epochs {budget['pretrain_epochs']}`).",
           ]
    search = budget.get("search")
    if search:
        out += [f"- Base-model budget, the one choice made (on validation only): "
                f"`--epochs {budget['epochs']} --pretrain-epochs {budget['pretrain_epochs']}` "
                f"had the best {search['criterion']} of the grid below, and every method "
                "and seed uses it. Test periods played no part.", "",
                "| epochs per period | pre-training epochs | val AUC | val LogLoss | s |",
                "|---:|---:|---:|---:|---:|"]
        for g in search["grid"]:
            chosen = [g["epochs"], g["pretrain_epochs"]] == search["chosen"]
            out.append(f"| {g['epochs']} | {g['pretrain_epochs']} "
                       f"| {bold(format(g['val_auc'], '.4f'), chosen)} "
                       f"| {g['val_logloss']:.4f} | {g['seconds']:.0f} |")
        out.append("")
    else:
        out.append("- Base-model budget fixed by the command (not searched).")
    for earlier in section.get("earlier", []):
        out.append(f"- Reused runs were made by `{earlier['command']}` ({earlier['date']}).")
    notes = [section["source_note"]] if section.get("source_note") else []
    out += code_lines({f"{r['method']} s{r['seed']}": r for r in section["runs"]},
                      "tfmeta/ sources", notes)
    out += ["", f"### Table 1: test periods {TEST[0]}-{TEST[-1]}, mean ± std over "
            f"{n_seeds} seed(s)", "",
            "| method | test AUC | test LogLoss | AUC vs IU | LogLoss vs IU | val AUC "
            "| s per run | s / IU |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m in s["methods"]:
        row = table[m]

        def cell(column, text):
            return bold(text, m in best.get(column, []))
        ratio = row["seconds_over_iu"]
        out.append(
            f"| {bold(m, m == CLAIMED)} | {cell('test_auc', pm(row['test_auc']))} "
            f"| {cell('test_logloss', pm(row['test_logloss']))} "
            f"| {cell('rel_test_auc', pct(row['rel_test_auc']) if m != REFERENCE else '—')} "
            f"| {cell('rel_test_logloss', pct(row['rel_test_logloss']) if m != REFERENCE else '—')} "
            f"| {cell('val_auc', pm(row['val_auc']))} "
            f"| {cell('seconds', pm(row['seconds'], '.0f'))} "
            f"| {f'{ratio:.2f}x' if ratio is not None else 'n/a'} |")
    out += ["", "Bold: the best mean in each column (highest AUC, lowest LogLoss, fastest). "
            "\"vs IU\": `relative_change(method, IU)` on the same seed, averaged over seeds "
            "(± its std); for LogLoss negative is better. s per run: the run's own clock "
            "(`metrics.json` seconds: pre-training, 20 updates and scoring), with "
            f"{section['workers']} runs sharing the machine's cores.", ""]

    out += ["### The paper's claim", "",
            f"The ASMG paper's Table 1: ASMG-GRU-multi beats IU and every baseline in mean "
            f"test AUC and LogLoss, by +{100 * PAPER_AUC_GAIN[0]:.1f}% to "
            f"+{100 * PAPER_AUC_GAIN[1]:.1f}% AUC over IU.", ""]
    if claim["verdict"] == "not evaluated":
        out += [f"Not evaluated here: {claim['why']}.", ""]
    else:
        t = table[CLAIMED]
        rival, rival_ll = claim["strongest_baseline_auc"], claim["strongest_baseline_logloss"]
        wins, n = claim["seeds_beating_strongest_baseline"]
        iu_wins, iu_n = claim["seeds_beating_iu"]
        out += [
            f"**Measured: {claim['verdict']}.**", "",
            f"- Baselines compared: {', '.join(claim['baselines'])} (the other ASMG "
            f"variants are ablations: {', '.join(claim['variants']) or 'none run'}).",
            f"- Test AUC: {CLAIMED} {pm(t['test_auc'])} vs the strongest baseline "
            f"{rival} {pm(table[rival]['test_auc'])}: "
            f"{'beats' if claim['beats_every_baseline_auc'] else 'does not beat'} it "
            f"(gap {claim['auc_gap_to_strongest_baseline']:+.4f}"
            + (f", {'within' if claim['gap_within_seed_noise'] else 'outside'} the seed std "
               f"{claim['seed_std_auc']:.4f}" if claim["seed_std_auc"] is not None else "")
            + f"; higher on {wins} of {n} seeds).",
            f"- Test LogLoss: {CLAIMED} {pm(t['test_logloss'])} vs the best baseline "
            f"{rival_ll} {pm(table[rival_ll]['test_logloss'])}: "
            f"{'beats' if claim['beats_every_baseline_logloss'] else 'does not beat'} it.",
            f"- Against IU: AUC {pct(t['rel_test_auc'])} (paper +"
            f"{100 * PAPER_AUC_GAIN[0]:.1f}% to +{100 * PAPER_AUC_GAIN[1]:.1f}%; "
            f"{'inside' if claim['within_paper_range'] else 'outside'} that range; above IU "
            f"on {iu_wins} of {iu_n} seeds), LogLoss {pct(t['rel_test_logloss'])}.",
            f"- Rank among all {claim['rank_test_auc'][1]} methods run: "
            f"{claim['rank_test_auc'][0]} in test AUC, {claim['rank_test_logloss'][0]} in "
            f"test LogLoss"
            + (f"; it {'beats' if claim['beats_other_asmg_variants_auc'] else 'does not beat'}"
               " every other ASMG variant in test AUC." if claim["variants"] else "."),
        ]
        if t["test_auc"]["n"] < 2:
            out.append("- One seed only: a smoke run, not evidence either way.")

        def fmt(rows):
            return ", ".join(f"{q} ({d:+.4f})" for q, d in rows)
        vs_iu = claim["period_drivers_vs_iu"]
        out.append(f"- Per test period, {CLAIMED} minus IU (AUC, same seed, mean over seeds; "
                   f"largest first): {fmt(vs_iu)}.")
        if claim["period_drivers_vs_strongest_baseline"]:
            out.append(f"- Per test period, {CLAIMED} minus {rival} (AUC, mean over seeds; "
                       f"largest first): {fmt(claim['period_drivers_vs_strongest_baseline'])}.")
        if claim["verdict"] != "supported":
            rows = claim["period_drivers_vs_strongest_baseline"] or vs_iu
            against = rival if claim["period_drivers_vs_strongest_baseline"] else REFERENCE
            neg = [(q, d) for q, d in rows if d < 0]
            pos = [(q, d) for q, d in rows if d > 0]
            out.append(
                f"- Where the difference comes from (figure below, lower panel): against "
                f"{against}, {CLAIMED} loses most on period(s) {fmt(neg[:3]) or 'none'}"
                f" and gains on {fmt(pos[:3]) or 'none'}; {len(neg)} of {len(rows)} test "
                "periods go against it.")
        out.append("")

    out += ["### Figure 3: AUC per period", "",
            f"![AUC per period on {dataset}]({prefix}-per-period-{dataset}.png)", "",
            f"`benchmarks/results/{prefix}-per-period-{dataset}.png`: upper panel AUC on "
            f"each scored period {FIRST_SCORED}-31 for every method (mean over seeds), "
            "lower panel the ASMG variants and the strongest baseline minus IU on the same "
            "seed; validation periods 22-24 shaded blue, test periods 25-31 orange. IU "
            "black, ASMG-GRU-multi red, other ASMG variants dashed.", ""]

    out += ["### Timing", "",
            f"Seconds per period from each run's `per_period` (mean over the 20 updates, then "
            f"over seeds). `update_seconds` covers the whole update of a period, the "
            f"generator's training included; `meta_seconds` is the generator's training "
            f"alone, without tracing its tf.function graphs (tracing: last column, "
            f"seconds per run). \"Last period\" is the update on period 30 (scored on 31), where "
            f"{FULL} feeds its generator the whole model history and the windowed "
            f"variants k = 3 models. CPU s per run (rusage of the run's process) counts "
            f"only runs that were not resumed: a resumed run's last process did part of it "
            f"(n/a when every run of a method was resumed).", "",
            "| method | update s / period | / IU | update s, last period "
            "| generator s / period | generator s, last period | CPU s per run | / IU "
            "| CPU / wall | generator tracing s / run |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    cpu = cpu_per_method(section["runs"])
    for m in s["methods"]:
        t = timing[m]
        ratio = t.get("update_over_iu")
        meta = t["meta_seconds_mean"]["mean"]
        out.append(f"| {m} | {pm(t['update_seconds_mean'], '.2f')} "
                   f"| {f'{ratio:.2f}x' if ratio is not None else 'n/a'} "
                   f"| {pm(t['update_seconds_last'], '.2f')} "
                   f"| {pm(t['meta_seconds_mean'], '.3f') if meta else '—'} "
                   f"| {pm(t['meta_seconds_last'], '.3f') if meta else '—'} "
                   f"| {pm(cpu[m]['cpu'], '.0f')} | {_ratio(cpu[m].get('cpu_over_iu'))} "
                   f"| {pm(cpu[m]['cpu_over_wall'], '.2f')} "
                   f"| {pm(t['trace_seconds_run'], '.1f') if meta else '—'} |")
    ratio = s["full_over_multi_meta"]
    out.append("")
    if ratio and ratio["of_means"]:
        per_seed = ratio["per_seed"]
        out.append(
            f"Generator training time on the last period, {FULL} / {CLAIMED}: "
            f"**{ratio['of_means']:.2f}x** (per seed "
            f"{', '.join(f'{v:.1f}x' for v in per_seed['values'])}; whole update "
            f"{ratio['update_of_means']:.2f}x); the paper measured "
            f"{PAPER_META_RATIO[0]:g}-{PAPER_META_RATIO[1]:g}x.")
    else:
        out.append(f"Generator training time {FULL} / {CLAIMED}: not measured "
                   "(run both methods).")
    if FULL in cpu and CLAIMED in cpu and cpu[CLAIMED]["cpu"]["mean"] and cpu[FULL]["cpu"]["mean"]:
        out.append("")
        out.append(
            f"CPU time is the steadier measure on a shared machine: a whole {FULL} run "
            f"took {pm(cpu[FULL]['cpu'], '.0f')} CPU s against {CLAIMED}'s "
            f"{pm(cpu[CLAIMED]['cpu'], '.0f')} "
            f"({cpu[FULL]['cpu']['mean'] / cpu[CLAIMED]['cpu']['mean']:.1f}x), while its wall "
            f"time varied {min(cpu[FULL]['wall']['values']):.0f}-"
            f"{max(cpu[FULL]['wall']['values']):.0f} s (CPU / wall "
            f"{min(cpu[FULL]['cpu_over_wall']['values']):.2f}-"
            f"{max(cpu[FULL]['cpu_over_wall']['values']):.2f}): the per-period seconds "
            "above, which are wall-clock, include time the process spent waiting.")
    cpu = [r["process"]["cpu_seconds"] / r["process"]["process_seconds"]
           for r in section["runs"] if r["process"].get("process_seconds")]
    load = [r["process"]["loadavg_after"][0] for r in section["runs"]
            if r["process"].get("loadavg_after")]
    out += ["", f"These runs shared the machine's {section['machine']['usable_cpus']} cores "
            f"with up to {section['workers']} parallel runs (and whatever else ran on it: "
            "other engineers' tests), so seconds are inflated by contention and only ratios "
            "between methods of one invocation mean much."
            + (f" CPU time / wall time per run process: median {np.median(cpu):.2f} "
               f"(range {min(cpu):.2f}-{max(cpu):.2f}); 1-minute load average at the end of "
               f"a run: median {np.median(load):.2f}, max {max(load):.2f}." if cpu else ""),
            ""]

    out += ["### Runs", "",
            "| run | test AUC | test LogLoss | val AUC | run s | process s | CPU s "
            "| CPU / wall | load after | tfmeta/ digest |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in section["runs"]:
        out.append(_run_row(r))
    out.append("")
    return out


def _run_row(r: dict) -> str:
    mt, pr = r["metrics"], r["process"]
    name = f"{r['method']} seed {r['seed']}{run_marks(pr)}"
    cells = [name, f"{mt['test']['auc']:.4f}", f"{mt['test']['logloss']:.4f}",
             f"{mt['val']['auc']:.4f}", f"{mt['seconds']:.0f}"]
    return "| " + " | ".join(cells + process_cells(r)) + " |"


def render_markdown(report: dict, prefix: str) -> str:
    sections = report["datasets"]
    m, gpus = machine_of(sections)
    out = [
        "# ASMG benchmark: incremental CTR methods on protocol B (Table 1, Figure 3)",
        "",
        *machine_info.header_lines(m, gpus),
        "- Protocol B (PROTOCOLS.md B): pre-train on periods 1-10, then for i = 11..30 "
        "update on period i and score the served model on period i+1; validation = "
        "scored periods 22-24, test = 25-31 (means over periods). Every method runs "
        "with its defaults and the base-model budget (epochs per period, pre-training "
        "epochs) chosen per dataset on validation periods with IU; nothing is chosen on "
        "test periods.",
        "- Each dataset's date and exact command are in its section (datasets may come "
        "from separate invocations).",
        "",
        "## Summary",
        "",
        "| dataset | seeds | ASMG-GRU-multi test AUC vs IU | beats every baseline (AUC / "
        "LogLoss) | paper's claim | generator time full / multi (paper 6.5-7x) |",
        "|---|---:|---:|---|---|---:|",
    ]
    for dataset, sec in sections.items():
        c, s = sec["claim"], sec["summary"]
        ratio = (s["full_over_multi_meta"] or {}).get("of_means")
        if c["verdict"] == "not evaluated":
            cells = ["n/a", "n/a", "not evaluated"]
        else:
            cells = [pct(s["table"][CLAIMED]["rel_test_auc"]),
                     f"{_yes(c['beats_every_baseline_auc'])} / "
                     f"{_yes(c['beats_every_baseline_logloss'])}",
                     f"**{c['verdict']}**"]
        out.append(f"| {dataset} | {len(sec['seeds'])} | " + " | ".join(cells)
                   + f" | {f'{ratio:.2f}x' if ratio else 'n/a'} |")
    out.append("")
    for dataset, sec in sections.items():
        out += render_dataset(dataset, sec, prefix)
    return "\n".join(out)


# ------------------------------------------------------------------ main

def _available_methods() -> tuple:
    from tfmeta.training.incremental import METHODS
    return tuple(METHODS)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.asmg",
        description="Every protocol B incremental-CTR method over seeds, against IU "
                    "(the ASMG paper's Table 1 and Figure 3).")
    add_run_arguments(parser, "asmg", "b", DATASETS, SEEDS)
    parser.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                        help="methods to run (default: all of "
                             "tfmeta.training.incremental.METHODS)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: movielens-100k, iu and asmg-gru-multi, seed 0; "
                             "results get an asmg-quick prefix")
    parser.add_argument("--budget", default=None, metavar="E,P",
                        help="base-model epochs per period and pre-training epochs for "
                             "every run (default: chosen per dataset on validation "
                             "periods, see BUDGET_GRID; --quick: 1,1)")
    args = parser.parse_args(argv)
    fixed_budget = None
    if args.budget or args.quick:
        try:
            fixed_budget = tuple(int(v) for v in (args.budget or "1,1").split(","))
        except ValueError:
            fixed_budget = ()
        if len(fixed_budget) != 2 or min(fixed_budget) < 1:
            parser.error(f"--budget takes two positive integers E,P, not {args.budget!r}")
    argv = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(["python", "-m", "benchmarks.asmg", *argv])

    available = _available_methods()
    datasets, seeds, prefix, runs_dir = resolve_run_arguments(
        parser, args, "asmg", "b", DATASETS, SEEDS, QUICK)
    methods = list(args.methods or (QUICK["methods"] if args.quick else available))
    unknown = [m for m in methods if m not in available]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; available: "
                     f"{', '.join(available)}")
    if REFERENCE not in methods:
        print(f"warning: {REFERENCE} is not in --methods: no relative changes",
              file=sys.stderr)
    if len(set(methods)) != len(methods):
        parser.error("--methods must not repeat")

    existing = [d for d in datasets if os.path.exists(os.path.join(runs_dir, d))]
    if existing and not args.resume:
        parser.error(f"runs of {', '.join(existing)} already exist under {runs_dir}; pass "
                     "--resume to reuse finished ones and continue killed ones, or choose "
                     "another --runs-dir")

    json_path = os.path.join(args.results_dir, f"{prefix}.json")
    md_path = os.path.join(args.results_dir, f"{prefix}.md")
    previous = read_json(json_path)["datasets"] if os.path.exists(json_path) else {}
    machine_info, gpus = machine(), gpus_seen()
    failed = []
    for dataset in datasets:
        periods = ensure_periods(dataset, runs_dir, args.periods)
        started = time.perf_counter()
        before = previous.get(dataset) or {}
        same_build = report_read_this_build(before.get("periods"), periods)
        search = None
        if fixed_budget:
            budget = fixed_budget
        else:
            search = select_budget(
                dataset, periods["path"], runs_dir, args.workers,
                ((before.get("budget") or {}).get("search") or {}).get("grid")
                if same_build else None)
            budget = tuple(search["chosen"])
        runs = [Run(dataset, m, s, os.path.join(runs_dir, dataset, budget_name(budget), m,
                                                f"seed-{s}"), budget)
                for s in seeds for m in methods]
        kept = from_report(runs, before.get("runs", []), periods["path"], same_build)
        reused = sum(os.path.exists(r.metrics_path) or r.name in kept for r in runs)
        done, failures = run_all(runs, periods["path"], args.workers, f"{dataset} runs",
                                 kept)
        failed += failures
        results = [done[r.name] for r in runs if r.name in done]
        if not results:
            continue
        summary = summarize(results, methods)
        ran = sorted({r["seed"] for r in results})
        earlier = []
        if reused and before:  # whose runs are reused
            earlier = list(before.get("earlier", []))
            if before.get("reused", 0) < len(before.get("runs", [])):  # it made runs
                earlier.append({"command": before["command"], "date": before["date"]})
            earlier = [e for n, e in enumerate(earlier) if e not in earlier[:n]]
        section = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "command": command, "machine": machine_info, "gpus_seen_by_tensorflow": gpus,
            "workers": args.workers, "methods": summary["methods"], "seeds": ran,
            "periods_dir": os.path.relpath(periods["path"], ROOT), "periods": portable(periods),
            "reused": reused, "earlier": earlier,
            "budget": {"epochs": budget[0], "pretrain_epochs": budget[1],
                       "search": search},
            "source_note": args.source_note,
            "failed": [r.name for r in failed if r.dataset == dataset],
            "benchmark_seconds": time.perf_counter() - started,
            "summary": summary, "claim": judge_claim(summary), "runs": results,
        }
        os.makedirs(args.results_dir, exist_ok=True)
        plot_per_period(summary, dataset,
                        os.path.join(args.results_dir, f"{prefix}-per-period-{dataset}.png"),
                        len(ran))
        # Written after every dataset, so a later dataset's failure keeps earlier results;
        # into the report as it is now, which keeps what other invocations wrote meanwhile.
        update_report(json_path, md_path, "asmg",
                      lambda report: report["datasets"].update({dataset: section}),
                      lambda report: render_markdown(report, prefix))
        claim = section["claim"]
        print(f"{dataset}: claim {claim['verdict']}; wrote {md_path}, {json_path}",
              file=sys.stderr, flush=True)
    return exit_code([r.name for r in failed])


if __name__ == "__main__":
    raise SystemExit(main())
