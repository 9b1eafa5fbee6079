"""LeapRec (Chairatanakul et al., AAAI 2022) on protocol A: the evidence of the issue.

    python -m benchmarks.leaprec                                   # everything (days)
    python -m benchmarks.leaprec --datasets movielens-100k         # one dataset
    python -m benchmarks.leaprec --experiments models plugins      # some experiments
    python -m benchmarks.leaprec --resume                          # continue a killed one
    python -m benchmarks.leaprec --report-only                     # tables of finished runs
    python -m benchmarks.leaprec --experiments sensitivity --only leaprec-quarter --resume
                                                                   # some runs of a plan
    python -m benchmarks.leaprec --quick                           # smoke run (minutes)
    python -m benchmarks.leaprec --periods DIR --experiments models  # periods you built

Experiments (`--experiments`, default all), each over `--seeds` (default 0 1 2; a later
invocation with other seeds trains those and keeps the report's earlier seeds in the tables):

    models       every model (mf gcn ngcf lightgcn sasrec gru4rec gnn-sa) and leaprec
                 (= leaprec+gnn-sa): test figures, sampled and full, and validation HR@10
    plugins      GCN, NGCF, LightGCN, SASRec (and GNN+SA) without and with LeapRec, and
                 Leap against FOMAML (leaprec+X vs fomaml+X, X in gnn-sa and lightgcn)
    split        leaprec's GTL / OTL sizes at roughly equal cost (gtl^2 + otl^2 ~ 128^2)
    sensitivity  leaprec's meta learning rate (the Adam of Leap's meta step: with a small
                 one and few iterations the meta-parameters barely leave their
                 initialisation), K (--inner-steps) and the time-step granularity
    figures      from leaprec's run of the first seed: its inner loss per time step and
                 iteration (the paper's Figure 7) and the drift of the popular items'
                 GTL and OTL representations over time steps (Figure 5)

For each dataset the protocol A periods are built once into RUNS_DIR/periods/<dataset>
(`pipelines.periods.build_periods`, the dataset's cut and val_months from the registry;
reused when the manifest exists), or read from --periods (e.g. `tfmeta periods build
--input my-log.csv --protocol a --cut 2024-01-01 --val-months 1 --out DIR`; runs and
report then go to runs/leaprec-periods/ unless --runs-dir / --results-dir say otherwise,
apart from the project's results). Every (option set, seed) is one run of

    python -m tfmeta.cli train --periods P --method M --seed S --out RUN_DIR [OPTIONS]

in its own subprocess, `--workers` at a time, into RUNS_DIR/<dataset>/<name>/seed-<n>:
<name> is the method plus the options that differ from the shared ones
(`leaprec`, `leaprec+lightgcn`, `leaprec-gtl121-otl40`, `leaprec-k5`, `leaprec-week`),
so a run several experiments need (the default `leaprec` of models, plugins,
sensitivity and figures; `gcn` of models and plugins) runs once. Every run uses the
driver's defaults (`tfmeta.training.ranking.RankingOptions`) except the options passed
through to every run (`--epochs`, `--iterations`, `--inner-steps`, `--embedding-dim`,
...) and the one option its experiment varies. Every run chooses its test model's budget
on validation (`--choose-budget`: the val phase trains for --epochs / --iterations,
scoring validation after each; the test phase trains for the best count; `--fixed-budget`
turns this off). Nothing is chosen on test windows: the tables show every setting, and
where a choice is discussed it is the one validation would make.

Writes benchmarks/results/leaprec.md, leaprec.json and PNGs (`leaprec-quick*` with
--quick); a later invocation keeps the (dataset, experiment) sections it did not run.
"""
import tfmeta  # first: selects Keras 2 before anything loads TensorFlow

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import math  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Optional  # noqa: E402

import numpy as np  # noqa: E402

from tfmeta.evaluation.metrics import relative_change  # noqa: E402
from tfmeta.training.ranking import DEFAULT_MODEL, RankingOptions, parse_method  # noqa: E402

from benchmarks import machine as machine_info  # noqa: E402
from benchmarks.machine import gpus_seen, machine_of  # noqa: E402
from benchmarks.periods import (build_digest, built_or_given, given_dirs,  # noqa: E402
                                given_name, where_built)
from benchmarks.reports import (ROOT, bold, code_lines, pct, pm, read_json,  # noqa: E402
                                run_code, stats, update_report, write_json)
from benchmarks.runs import launch, run_pool, run_record  # noqa: E402

DATASETS = ("yelp-a", "amazon-beauty", "movielens-100k")
SEEDS = (0, 1, 2)
EXPERIMENTS = ("models", "plugins", "split", "sensitivity", "figures")
CLAIMED = "leaprec"
MODELS = ("mf", "gcn", "ngcf", "lightgcn", "sasrec", "gru4rec", "gnn-sa", CLAIMED)
# (base model, its plug-in variants); relative changes are against the base, same seed
PLUGINS = (("gcn", ("leaprec+gcn",)),
           ("ngcf", ("leaprec+ngcf",)),
           ("lightgcn", ("leaprec+lightgcn", "fomaml+lightgcn")),
           ("sasrec", ("leaprec+sasrec",)),
           ("gnn-sa", (CLAIMED, "fomaml+gnn-sa")))
SPLITS = ((128, 0), (121, 40), (91, 91), (40, 121), (0, 128))  # (gtl_dim, otl_dim)
INNER_STEPS = (1, 5, 10, 20)
GRANULARITIES = (None, "quarter", "week")  # None: the dataset's own steps (months)
META_LEARNING_RATES = (1e-2, 1e-1, 1e-3)   # 1e-3, the default, reuses leaprec's runs
QUICK = {
    "datasets": ("movielens-100k",), "seeds": (0,),
    "models": ("mf", "lightgcn", "leaprec+mf", "fomaml+mf", CLAIMED),
    "plugins": (("mf", ("leaprec+mf", "fomaml+mf")),),
    "splits": ((23, 0), (16, 16)),      # 23^2 ~ 2 x 16^2; (16, 16) is the quick default
    "inner_steps": (1, 2), "granularities": (None, "quarter"), "meta_learning_rates": (1e-2,),
    "options": {"epochs": 2, "iterations": 1, "inner_steps": 2, "embedding_dim": 16,
                "gtl_dim": 16, "otl_dim": 16},
}
# RankingOptions fields a user may pass to every run (granularity is varied instead)
PASSED = (("epochs", int), ("batch_size", int), ("learning_rate", float),
          ("embedding_dim", int), ("meta_learning_rate", float), ("iterations", int),
          ("inner_steps", int), ("gtl_dim", int), ("otl_dim", int), ("max_len", int))
SAMPLED = ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR")
FULL = ("HR@10", "NDCG@10", "MRR")
TEST_COLUMNS = tuple(f"test/sampled/{k}" for k in SAMPLED) + tuple(f"test/full/{k}"
                                                                   for k in FULL)
HEAD = "test/sampled/HR@10"        # the headline column
NDCG = "test/sampled/NDCG@10"
VAL_HEAD = "val/sampled/HR@10"
SHIFT_GROUPS = 4                   # representation shift: at most this many item groups

RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")
RUN_OPTIONS = "benchmark-options.json"  # the options a run was started with

# What a protocol A run imports of tfmeta/ (protocol B code may change meanwhile).
PROTOCOL_A_SOURCES = (
    "tfmeta/__init__.py", "tfmeta/cli.py", "tfmeta/data/interactions.py",
    "tfmeta/data/periods.py", "tfmeta/data/schema.py", "tfmeta/data/timesteps.py",
    "tfmeta/evaluation/metrics.py", "tfmeta/evaluation/protocol_a.py",
    "tfmeta/meta/leap.py", "tfmeta/meta/leaprec.py", "tfmeta/models/__init__.py",
    "tfmeta/models/baselines.py", "tfmeta/models/gnn_sa.py", "tfmeta/models/graph.py",
    "tfmeta/models/ranking.py", "tfmeta/models/registry.py", "tfmeta/models/sequence.py",
    "tfmeta/training/ranking.py", "tfmeta/training/rundir.py")


def source_digest() -> str:
    """A short digest of PROTOCOL_A_SOURCES, the code a run about to start imports."""
    digest = hashlib.sha256()
    for path in PROTOCOL_A_SOURCES:
        digest.update(path.encode())
        with open(os.path.join(ROOT, path), "rb") as f:
            digest.update(hashlib.sha256(f.read()).digest())
    return digest.hexdigest()[:12]


def _rel(path: str) -> str:
    """A path as the report shows it: relative to the repository root."""
    return os.path.relpath(path, ROOT)


# ------------------------------------------------------------------ methods and runs

def canonical(method: str) -> str:
    """One name per option set: leaprec+gnn-sa -> leaprec, fomaml -> fomaml+gnn-sa."""
    meta, model = parse_method(method)
    if meta is None:
        return model
    if meta == "leap" and model == DEFAULT_MODEL:
        return CLAIMED
    return f"{'leaprec' if meta == 'leap' else 'fomaml'}+{model}"


@dataclasses.dataclass(frozen=True)
class Setting:
    """A row of an experiment's table: a method with some options varied."""
    label: str
    method: str
    varied: tuple = ()  # ((RankingOptions field, value), ...)


@dataclasses.dataclass
class Run:
    dataset: str
    name: str           # folder name: method + options that differ from the shared ones
    method: str
    seed: int
    options: dict       # RankingOptions overrides (shared ones included)
    out: str

    @property
    def id(self) -> str:
        return f"{self.name}/seed-{self.seed}"

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.id}"

    @property
    def metrics_path(self) -> str:
        return os.path.join(self.out, "metrics.json")

    @property
    def partial(self) -> bool:
        return os.path.exists(os.path.join(self.out, "progress.json"))

    def expected_options(self) -> dict:
        return dataclasses.asdict(RankingOptions(method=self.method, seed=self.seed,
                                                 **self.options))


def run_name(method: str, diff: dict) -> str:
    parts = [method]
    if "gtl_dim" in diff or "otl_dim" in diff:
        parts.append(f"gtl{diff['gtl_dim']}-otl{diff['otl_dim']}")
    if "inner_steps" in diff:
        parts.append(f"k{diff['inner_steps']}")
    if "granularity" in diff:
        parts.append(diff["granularity"] or "dataset-steps")
    parts += [f"{k.replace('_', '-')}{v}" for k, v in sorted(diff.items())
              if k not in ("gtl_dim", "otl_dim", "inner_steps", "granularity")]
    return "-".join(parts)


def make_run(dataset: str, setting: Setting, seed: int, shared: dict, runs_dir: str) -> Run:
    effective = _effective(shared)
    varied = dict(setting.varied)
    diff = {k: v for k, v in varied.items() if v != effective[k]}
    if "gtl_dim" in diff or "otl_dim" in diff:  # both sizes name the split
        diff.update({k: varied.get(k, effective[k]) for k in ("gtl_dim", "otl_dim")})
    name = run_name(setting.method, diff)
    return Run(dataset, name, setting.method, seed, {**shared, **diff},
               os.path.join(runs_dir, dataset, name, f"seed-{seed}"))


def plan(experiments: list, plan_options: dict) -> dict:
    """{experiment: [Setting]}; the settings of each experiment, before seeds."""
    p = plan_options
    out = {}
    if "models" in experiments:
        out["models"] = [Setting(m, m) for m in p["models"]]
    if "plugins" in experiments:
        out["plugins"] = [Setting(m, m) for base, variants in p["plugins"]
                          for m in (base, *variants)]
    if "split" in experiments:
        out["split"] = [Setting(f"GTL {g} / OTL {o}", CLAIMED,
                                (("gtl_dim", g), ("otl_dim", o))) for g, o in p["splits"]]
    if "sensitivity" in experiments:
        # K and granularity first: the issue's sensitivity; runs start in this order
        out["sensitivity"] = (
            [Setting(f"K = {k}", CLAIMED, (("inner_steps", k),)) for k in p["inner_steps"]]
            + [Setting(f"granularity {g or 'month (dataset steps)'}", CLAIMED,
                       (("granularity", g),)) for g in p["granularities"]]
            + [Setting(f"meta lr = {lr:g}", CLAIMED, (("meta_learning_rate", lr),))
               for lr in p["meta_learning_rates"]])
    if "figures" in experiments:
        out["figures"] = [Setting(CLAIMED, CLAIMED)]
    return out


def ensure_periods(dataset: str, runs_dir: str, given: Optional[str] = None) -> dict:
    """The protocol A periods of a dataset, built once (or `given`, --periods); returns
    path and summary."""
    out, manifest, built_seconds = built_or_given(dataset, "a", runs_dir, given)
    steps = {}
    for p in manifest.get("periods", []):
        steps.setdefault(p.get("window"), []).append(p.get("label") or p.get("name"))
    # The interactions of each of the test models' time steps at the build's own
    # granularity: how many examples a meta-learner's minibatches draw (passes_over_data).
    step_rows = {p["name"]: p["rows"] for p in manifest.get("periods", [])
                 if p.get("window") in ("train", "val") and "rows" in p}
    return {"path": out, "built_seconds": built_seconds, "given": bool(given),
            "builder": manifest.get("builder"),
            "rows_out": manifest.get("rows_out"), "windows": manifest.get("windows"),
            "step_rows": step_rows or None,
            "window_bounds": manifest.get("window_bounds"), "steps": steps,
            "granularity": manifest.get("granularity"),
            "instances": manifest.get("instances"), "excluded": manifest.get("excluded"),
            "vocab": manifest.get("vocab", {}).get("sizes")}


def _flags(options: dict) -> list:
    out = []
    for key, value in options.items():
        flag = f"--{key.replace('_', '-')}"
        if isinstance(value, bool):  # switches (choose_budget)
            out += [flag] if value else []
        elif value is not None:
            out += [flag, str(value)]
    return out


def chosen_budget(metrics: dict) -> Optional[int]:
    """The epochs / iterations the run's test model trained for."""
    return len(metrics["training"]["test"]["losses"])


def budget_cap(metrics: dict) -> Optional[int]:
    """The epochs / iterations the val phase trained for, scoring validation after each,
    when the run chose its test budget on validation (None: a fixed budget)."""
    return len(metrics["budget"]["curve"]) if "budget" in metrics else None


def at_cap(metrics: dict) -> Optional[bool]:
    """Did validation choose the val phase's last epoch / iteration (its curve may still
    have been rising: the cap, not the method, limited the run)? None: fixed budget."""
    cap = budget_cap(metrics)
    return None if cap is None else chosen_budget(metrics) == cap


def last_loss(metrics: dict) -> float:
    """The training loss of the test model's last epoch / iteration (mean over time
    steps for meta-learning runs, whose losses are per time step)."""
    return float(np.mean(metrics["training"]["test"]["losses"][-1]))


def options_differ(recorded: dict, expected: dict) -> dict:
    """{option: recorded value} where a run's options differ from the expected ones;
    options a run predates (added to RankingOptions since) count as their defaults."""
    defaults = dataclasses.asdict(RankingOptions())
    return {k: recorded.get(k, defaults.get(k)) for k in set(expected) | set(recorded)
            if recorded.get(k, defaults.get(k)) != expected.get(k)}


def under_way(run: Run) -> Optional[dict]:
    """How far a run that was killed, or is training now, has got (its progress.json):
    its phase, the epochs / iterations done (of the cap, in the val phase) and its
    seconds so far; None when it has not started."""
    path = os.path.join(run.out, "progress.json")
    if not os.path.exists(path):
        return None
    progress = read_json(path)
    phases = progress.get("phases") or {}
    phase = list(phases)[-1] if phases else "val"
    options = _effective(run.options)
    unit, cap = (("iterations", options["iterations"]) if parse_method(run.method)[0]
                 else ("epochs", options["epochs"]))
    return {"phase": phase, "done": len(phases.get(phase, {}).get("losses", [])),
            "cap": cap if phase == "val" else None, "unit": unit,
            "seconds": float(progress.get("seconds", 0))}


def under_way_text(u: dict) -> str:
    """e.g. "val phase, 5 of 10 iterations, 4,544 s"."""
    of = f" of {u['cap']}" if u["cap"] else ""
    return f"{u['phase']} phase, {u['done']}{of} {u['unit']}, {u['seconds']:,.0f} s"


def check_partial(run: Run) -> None:
    """A killed run is continued only with the options it was started with."""
    path = os.path.join(run.out, RUN_OPTIONS)
    if run.partial and os.path.exists(path) and options_differ(read_json(path),
                                                                run.expected_options()):
        raise SystemExit(f"{run.out} holds a killed run with other options than "
                         f"{run.id} needs; remove it or choose another --runs-dir")


def train(run: Run, periods: str, workers: int, command: str,
          threads: Optional[int] = None) -> dict:
    """One `tfmeta train` in a subprocess (`threads`: its --threads); returns its
    process figures."""
    args = ["-m", "tfmeta.cli", "train", "--periods", _rel(periods), "--method", run.method,
            "--out", _rel(run.out), "--seed", str(run.seed), *_flags(run.options),
            *_flags({"threads": threads})]
    resumed = run.partial
    if resumed:
        args.append("--resume")
    check_partial(run)
    os.makedirs(run.out, exist_ok=True)
    write_json(os.path.join(run.out, RUN_OPTIONS), run.expected_options())
    return launch(run, args, benchmark_command=command, resumed=resumed,
                  source=source_digest(), workers=workers, threads=threads)


def _mismatch(run: Run, metrics: dict, periods: str) -> dict:
    """{field: recorded value} where a run's metrics are not those of `run` on `periods`."""
    # The periods folder says which data it was: a --periods build of a file has no
    # registered dataset name.
    expected = {"protocol": "a", "method": run.method, "seed": run.seed}
    wrong = {k: metrics.get(k) for k, v in expected.items() if metrics.get(k) != v}
    if os.path.abspath(os.path.join(ROOT, metrics.get("periods") or "")) != \
            os.path.abspath(periods):
        wrong["periods"] = metrics.get("periods")
    elif "periods_digest" in metrics and metrics["periods_digest"] != \
            build_digest(periods):
        wrong["periods_digest"] = metrics["periods_digest"]  # rebuilt since it ran
    differ = options_differ(metrics.get("options") or {}, run.expected_options())
    if differ:
        wrong["options"] = differ
    return wrong


def load_run(run: Run, periods: str, record: Optional[dict] = None) -> dict:
    metrics = read_json(run.metrics_path)
    wrong = _mismatch(run, metrics, periods)
    if wrong:
        raise SystemExit(f"{run.metrics_path} does not belong to {run.id} on {periods}: "
                         f"{wrong}; remove the run folder or choose another --runs-dir")
    metrics = dict(metrics, periods=_rel(metrics["periods"]))
    if record is None:
        record = run_record(run)
    return {"id": run.id, "name": run.name, "method": run.method, "seed": run.seed,
            "options": run.options, "run_dir": _rel(run.out), "process": record,
            "metrics": metrics}


def from_report(runs: list, recorded: dict, periods: str) -> dict:
    """{id: run} of the finished runs the report holds whose folder is gone (runs/
    cleaned, or the report made on another machine): their figures are kept rather than
    trained again. A folder that exists, finished or killed, is the run's own record."""
    kept = {}
    for run in runs:
        old = recorded.get(run.id)
        if old is not None and not os.path.exists(run.out) and \
                not _mismatch(run, old["metrics"], periods):
            kept[run.id] = dict(old, process=dict(old["process"], folder_gone=True))
    return kept


def run_all(runs: list, periods: str, workers: int, desc: str, command: str,
            recorded: Optional[dict] = None, train_missing: bool = True,
            only: Optional[set] = None, seeds: Optional[set] = None,
            threads: Optional[int] = None) -> tuple:
    """Runs what has no metrics.json yet (nor a record in the report, `recorded`, whose
    folder is gone), `workers` at a time, unless not `train_missing`; with `only`, the
    runs of those names alone; with `seeds`, of those seeds alone; `threads`: each run's
    --threads; ({id: run}, [failed], {ids reused})."""
    done = {r.id: load_run(r, periods) for r in runs if os.path.exists(r.metrics_path)}
    kept = from_report([r for r in runs if r.id not in done], recorded or {}, periods)
    done.update(kept)
    reused = set(done)
    todo = [r for r in runs if r.id not in done and (only is None or r.name in only)
            and (seeds is None or r.seed in seeds)] if train_missing else []
    for run in todo:  # before any run starts
        check_partial(run)
    gone = f", {len(kept)} of them from the report: their folders are gone" if kept else ""

    def finished(run: Run, record: dict) -> str:
        done[run.id] = load_run(run, periods, record)
        m = done[run.id]["metrics"]
        return f"{run.id}: val HR@10 {m['val']['sampled']['HR@10']:.4f} ({m['seconds']:.0f} s)"

    failed = run_pool(todo, lambda run: train(run, periods, workers, command, threads),
                      finished, total=len(runs), reused=len(done), workers=workers,
                      desc=desc, note=gone)
    return done, failed, reused


# ------------------------------------------------------------------ summaries

def _get(metrics: dict, column: str):
    window, kind, key = column.split("/")
    return metrics[window][kind][key]


def _mean(row: dict, column: str):
    return row["columns"][column]["mean"]


def figures_row(results: list) -> dict:
    """Mean ± std over seeds of every metric of a setting's runs."""
    ms = [r["metrics"] for r in results]
    columns = {c: stats(_get(m, c) for m in ms)
               for c in TEST_COLUMNS + tuple(f"val/sampled/{k}" for k in SAMPLED)
               + tuple(f"val/full/{k}" for k in FULL)}
    processes = [r["process"] for r in results if r["process"].get("cpu_seconds")]
    return {"seeds": [r["seed"] for r in results], "runs": [r["id"] for r in results],
            "columns": columns,
            "seconds": stats(m["seconds"] for m in ms),
            "budget": stats(chosen_budget(m) for m in ms),
            "at_cap": [sum(bool(at_cap(m)) for m in ms), sum(at_cap(m) is not None for m in ms)],
            "last_loss": stats(last_loss(m) for m in ms),
            "cpu_seconds": stats(p["cpu_seconds"] for p in processes),
            "time_steps": len(ms[0]["training"]["test"]["time_steps"]) if ms else None,
            "val_curve": val_curve(ms),
            "by_seed": {r["seed"]: {c: _get(r["metrics"], c) for c in columns}
                        for r in results}}


def val_curve(ms: list) -> Optional[list]:
    """Validation HR@10 after each epoch / iteration of the val phase, mean over the runs
    (over the units every run has); None without `--choose-budget` curves."""
    curves = [[p["HR@10"] for p in m["budget"]["curve"]] for m in ms if "budget" in m]
    if not curves or len(curves) < len(ms):
        return None
    n = min(len(c) for c in curves)
    return np.mean([c[:n] for c in curves], axis=0).tolist()


def still_rising(curve: Optional[list], last: int = 3) -> Optional[float]:
    """How much a validation curve rose over its last `last` units (None: too short)."""
    return curve[-1] - curve[-1 - last] if curve and len(curve) > last else None


def best_per_column(table: dict, columns) -> dict:
    best = {}
    for column in columns:
        values = {m: _mean(row, column) for m, row in table.items()
                  if _mean(row, column) is not None}
        if values:
            target = max(values.values())
            best[column] = sorted(m for m, v in values.items() if v == target)
    return best


def _rel_change(row: dict, ref: dict, column: str) -> dict:
    """relative_change(setting, reference) on the same seed, mean ± std over seeds."""
    mine, theirs = row["by_seed"], ref["by_seed"]
    return stats(relative_change(mine[s][column], theirs[s][column])
                 for s in mine if s in theirs and theirs[s][column])


def _seed_wins(row: dict, ref: dict, column: str) -> list:
    common = [s for s in row["by_seed"] if s in ref["by_seed"]]
    return [sum(row["by_seed"][s][column] > ref["by_seed"][s][column] for s in common),
            len(common)]


def _verdict(wins: int, total: int) -> str:
    if not total:
        return "not evaluated"
    return "supported" if wins == total else "partly supported" if wins else "not supported"


def summarize_models(table: dict) -> dict:
    """LeapRec beats every baseline? Per test metric, against the best plain model."""
    best = best_per_column(table, TEST_COLUMNS + (VAL_HEAD,))
    baselines = [m for m in table if parse_method(m)[0] is None]
    if CLAIMED not in table or not baselines:
        return {"best": best, "claim": {"verdict": "not evaluated",
                                        "why": f"needs {CLAIMED} and a plain model"}}
    mine = table[CLAIMED]
    per_metric = {}
    for c in TEST_COLUMNS:
        rival = max(baselines, key=lambda m: _mean(table[m], c))
        per_metric[c] = {"leaprec": _mean(mine, c), "best_baseline": rival,
                         "baseline": _mean(table[rival], c),
                         "beats": _mean(mine, c) > _mean(table[rival], c)}
    wins = sum(v["beats"] for v in per_metric.values())
    rival = per_metric[HEAD]["best_baseline"]
    stds = [s for s in (mine["columns"][HEAD]["std"], table[rival]["columns"][HEAD]["std"])
            if s]
    noise = max(stds) if stds else None
    gap = per_metric[HEAD]["leaprec"] - per_metric[HEAD]["baseline"]

    def order(column):
        return sorted(table, key=lambda m: -_mean(table[m], column))
    claim = {
        "verdict": _verdict(wins, len(TEST_COLUMNS)), "baselines": baselines,
        "per_metric": per_metric, "metrics_won": [wins, len(TEST_COLUMNS)],
        "strongest_baseline": rival, "hr10_gap": gap, "seed_std_hr10": noise,
        "gap_within_seed_noise": (abs(gap) <= noise) if noise is not None else None,
        "seeds_beating_strongest_baseline": _seed_wins(mine, table[rival], HEAD),
        "rank_hr10": [order(HEAD).index(CLAIMED) + 1, len(table)],
        "rank_full_hr10": [order("test/full/HR@10").index(CLAIMED) + 1, len(table)],
        "order_sampled_hr10": order(HEAD), "order_full_hr10": order("test/full/HR@10"),
        "seeds": len(mine["seeds"]),
    }
    if DEFAULT_MODEL in table and rival != DEFAULT_MODEL:
        # LeapRec trains DEFAULT_MODEL: how much of the gap is that model (trained
        # plainly, it is below the rival too), how much LeapRec's training of it
        own = _mean(table[DEFAULT_MODEL], HEAD)
        claim["gap_split"] = {"model": DEFAULT_MODEL,
                              "model_gap": own - _mean(table[rival], HEAD),
                              "training_gap": _mean(mine, HEAD) - own}
    return {"best": best, "claim": claim}


def summarize_plugins(table: dict, pairs) -> dict:
    """Plug-in variants against their base model; Leap against FOMAML."""
    groups, plug, leap_fomaml = [], [], []
    for base, variants in pairs:
        if base not in table:
            continue
        rows = []
        for m in (base, *variants):
            if m not in table:
                continue
            meta = parse_method(m)[0]
            rows.append({"method": m, "meta": meta, "rel": None if m == base else {
                c: _rel_change(table[m], table[base], c)
                for c in (HEAD, NDCG, "test/full/HR@10")}})
        groups.append({"base": base, "rows": rows})
        for r in rows:
            if r["meta"] == "leap":
                hr, nd = r["rel"][HEAD]["mean"], r["rel"][NDCG]["mean"]
                plug.append({"base": base, "method": r["method"], "rel_hr10": hr,
                             "rel_ndcg10": nd,
                             "improves": hr is not None and nd is not None and hr > 0 and nd > 0,
                             "seeds_improving_hr10": _seed_wins(table[r["method"]],
                                                                table[base], HEAD)})
        leap = [r["method"] for r in rows if r["meta"] == "leap"]
        fomaml = [r["method"] for r in rows if r["meta"] == "fomaml"]
        if leap and fomaml:
            a, b = table[leap[0]], table[fomaml[0]]
            leap_fomaml.append({
                "model": base, "leap": leap[0], "fomaml": fomaml[0],
                "hr10": [_mean(a, HEAD), _mean(b, HEAD)],
                "ndcg10": [_mean(a, NDCG), _mean(b, NDCG)],
                "beats": _mean(a, HEAD) > _mean(b, HEAD) and _mean(a, NDCG) > _mean(b, NDCG),
                "seeds_beating_hr10": _seed_wins(a, b, HEAD)})
    improved = sum(p["improves"] for p in plug)
    leap_wins = sum(x["beats"] for x in leap_fomaml)
    return {"groups": groups,
            "plug_in": {"verdict": _verdict(improved, len(plug)), "per_model": plug,
                        "improved": [improved, len(plug)]},
            "leap_vs_fomaml": {"verdict": _verdict(leap_wins, len(leap_fomaml)),
                               "per_model": leap_fomaml, "wins": [leap_wins, len(leap_fomaml)]}}


def _best_by(rows: dict, column: str):
    """The label of the best mean in a column; ties name every label ("A and B (tied)")."""
    values = {k: _mean(r, column) for k, r in rows.items() if _mean(r, column) is not None}
    if not values:
        return None
    best = [k for k, v in values.items() if v == max(values.values())]
    return best[0] if len(best) == 1 else " and ".join(best) + " (tied)"


def summarize_split(table: dict, settings: list) -> dict:
    dims = {s.label: dict(s.varied) for s in settings if s.label in table}
    both = [k for k, d in dims.items() if d["gtl_dim"] > 0 and d["otl_dim"] > 0]
    single = [k for k, d in dims.items() if (d["gtl_dim"] > 0) != (d["otl_dim"] > 0)]
    out = {"dims": dims, "best_by_validation": _best_by(table, VAL_HEAD),
           "best_on_test": _best_by(table, HEAD), "both_beat_single": None}
    if both and single:
        comp = {}
        for column in (HEAD, VAL_HEAD):
            b = max(both, key=lambda k: _mean(table[k], column))
            s = max(single, key=lambda k: _mean(table[k], column))
            comp[column] = {"best_both": b, "best_single": s,
                            "beats": _mean(table[b], column) > _mean(table[s], column),
                            "ties": _mean(table[b], column) == _mean(table[s], column)}
        out["both_beat_single"] = comp
    return out


def summarize_sensitivity(table: dict, settings: list) -> dict:
    k_rows = {s.label: dict(s.varied)["inner_steps"] for s in settings
              if dict(s.varied).get("inner_steps") is not None and s.label in table}
    g_rows = [s.label for s in settings if "granularity" in dict(s.varied) and s.label in table]
    lr_rows = [s.label for s in sorted(settings, key=lambda s: dict(s.varied).get(
        "meta_learning_rate", 0)) if "meta_learning_rate" in dict(s.varied) and s.label in table]
    out = {"k": {}, "granularity": {}, "meta_learning_rate": {}}
    if k_rows:
        labels = sorted(k_rows, key=k_rows.get)
        hr = [_mean(table[label], HEAD) for label in labels]
        steps = np.diff(hr)
        trend = ("rises with K" if np.all(steps > 0) else "falls with K" if np.all(steps < 0)
                 else "not monotone in K") if len(hr) > 1 else None
        secs = [table[label]["seconds"]["mean"] for label in labels]
        out["k"] = {"values": [k_rows[label] for label in labels], "labels": labels,
                    "test_hr10": hr, "val_hr10": [_mean(table[label], VAL_HEAD)
                                                  for label in labels],
                    "trend": trend,
                    "best_by_validation": _best_by({k: table[k] for k in labels}, VAL_HEAD),
                    "best_on_test": _best_by({k: table[k] for k in labels}, HEAD),
                    "seconds_max_over_min_k": secs[-1] / secs[0] if secs[0] else None}
    if g_rows:
        sub = {k: table[k] for k in g_rows}
        out["granularity"] = {"labels": g_rows,
                              "best_by_validation": _best_by(sub, VAL_HEAD),
                              "best_on_test": _best_by(sub, HEAD)}
    if lr_rows:
        sub = {k: table[k] for k in lr_rows}
        out["meta_learning_rate"] = {"labels": lr_rows,
                                     "best_by_validation": _best_by(sub, VAL_HEAD),
                                     "best_on_test": _best_by(sub, HEAD)}
    return out


def loss_summary(metrics: dict) -> dict:
    """LeapRec's mean inner loss of each time step and iteration (train + val phase)."""
    training = metrics["training"]["test"]
    losses = np.asarray(training["losses"], float)  # [iterations, time steps]
    out = {"time_steps": training["time_steps"], "losses": losses.tolist(),
           "iterations": int(losses.shape[0]),
           "first_iteration_mean": float(losses[0].mean()),
           "last_iteration_mean": float(losses[-1].mean()),
           "steps_falling": None}
    if losses.shape[0] > 1:
        out["steps_falling"] = [int(np.sum(losses[-1] < losses[0])), int(losses.shape[1])]
    return out


def _cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return 1.0 - np.sum(a * b, axis=-1) / np.maximum(norms, 1e-12)


def representation_shift(path: str) -> dict:
    """The popular items grouped by the time step where they were most popular (their
    largest share of the recorded items' interactions of a step, so that steps with more
    data do not claim every item), in up to SHIFT_GROUPS contiguous ranges of time
    steps; per part (GTL, OTL) and group, the mean cosine distance of the items'
    representations after each time step to their representation after the first."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    counts, labels = arrays["counts"], [str(s) for s in arrays["time_steps"]]
    steps = counts.shape[0]
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    peak = np.argmax(share, axis=0)
    groups = []
    for block in np.array_split(np.arange(steps), min(SHIFT_GROUPS, steps)):
        members = np.flatnonzero((peak >= block[0]) & (peak <= block[-1]))
        if len(members):
            name = labels[block[0]] if len(block) == 1 else f"{labels[block[0]]} .. " \
                                                            f"{labels[block[-1]]}"
            groups.append({"label": f"peak in {name}", "steps": [int(block[0]),
                                                                 int(block[-1])],
                           "items": int(len(members)), "members": members})
    parts = {}
    for part in ("gtl", "otl"):
        if part not in arrays or not arrays[part].size:
            continue
        reps = arrays[part]  # [T, n, d]
        dist = _cosine_distance(reps, reps[:1])  # [T, n]
        parts[part] = {"all": dist.mean(axis=1).tolist(),
                       "groups": [dist[:, g["members"]].mean(axis=1).tolist()
                                  for g in groups],
                       "last_step_mean": float(dist[-1].mean())}
    for g in groups:
        del g["members"]
    return {"time_steps": labels, "items": int(counts.shape[1]), "groups": groups,
            "parts": parts,
            "otl_moves_more": (parts["otl"]["last_step_mean"] > parts["gtl"]["last_step_mean"]
                               if "otl" in parts and "gtl" in parts else None)}


def summarize_figures(results: list, figures_dir: str, prefix: str, dataset: str) -> dict:
    if not results:
        return {"available": False, "why": f"the {CLAIMED} run failed"}
    result = results[0]
    out = {"available": True, "run": result["id"], "seed": result["seed"],
           "loss": loss_summary(result["metrics"]), "shift": None,
           "loss_png": f"{prefix}-loss-per-time-step-{dataset}.png",
           "shift_png": f"{prefix}-representation-shift-{dataset}.png"}
    plot_loss(out["loss"], dataset, result["seed"], os.path.join(figures_dir, out["loss_png"]))
    path = os.path.join(ROOT, result["run_dir"], "test", "representations.npz")
    if os.path.exists(path):
        out["shift"] = representation_shift(path)
        plot_shift(out["shift"], dataset, result["seed"],
                   os.path.join(figures_dir, out["shift_png"]))
    return out


# ------------------------------------------------------------------ figures

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _step_ticks(ax, labels: list) -> None:
    every = max(1, len(labels) // 12)
    ax.set_xticks(range(0, len(labels), every))
    ax.set_xticklabels(labels[::every], rotation=45, ha="right", fontsize=8)


def plot_loss(loss: dict, dataset: str, seed: int, path: str) -> None:
    plt = _pyplot()
    losses = np.asarray(loss["losses"])
    fig, ax = plt.subplots(figsize=(9, 5))
    cmap = plt.get_cmap("viridis")
    n = len(losses)
    for i, row in enumerate(losses):
        ax.plot(range(len(row)), row, marker="o", ms=3, lw=1.4,
                color=cmap(i / max(1, n - 1)), label=f"iteration {i + 1}")
    if n > 1:
        bar = fig.colorbar(plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(1, n)), ax=ax)
        bar.set_label("iteration")
    else:
        ax.legend(fontsize=8)
    _step_ticks(ax, loss["time_steps"])
    ax.set_xlabel("time step (train + validation windows, the test phase)")
    ax.set_ylabel("mean inner BPR loss")
    ax.set_title(f"{dataset}: LeapRec training loss per time step, seed {seed}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_shift(shift: dict, dataset: str, seed: int, path: str) -> None:
    plt = _pyplot()
    parts = shift["parts"]
    fig, axes = plt.subplots(1, max(1, len(parts)), figsize=(6 * max(1, len(parts)), 4.6),
                             squeeze=False)
    colors = plt.get_cmap("plasma")
    for ax, (part, figures) in zip(axes[0], parts.items()):
        for n, (group, curve) in enumerate(zip(shift["groups"], figures["groups"])):
            ax.plot(range(len(curve)), curve, marker="o", ms=3,
                    color=colors(n / max(1, len(shift["groups"]))),
                    label=f"{group['label']} ({group['items']} items)")
        ax.plot(range(len(figures["all"])), figures["all"], color="black", lw=1, ls="--",
                label="all")
        _step_ticks(ax, shift["time_steps"])
        ax.set_title(f"{part.upper()}")
        ax.set_ylabel("mean cosine distance to the first time step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{dataset}: drift of the {shift['items']} most popular items' "
                 f"representations (LeapRec, last iteration, seed {seed})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_models(table: dict, dataset: str, path: str) -> None:
    """Every model's test HR@10, sampled and full ranking, mean ± std over seeds, best
    first; LeapRec and the GNN+SA it trains stand out."""
    plt = _pyplot()
    order = sorted(table, key=lambda m: _mean(table[m], HEAD))
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(order) + 1.6), sharey=True)
    colors = [{CLAIMED: "tab:red", DEFAULT_MODEL: "tab:orange"}.get(m, "tab:gray")
              for m in order]
    for ax, column, title in ((axes[0], HEAD, "sampled (positive + 99 negatives)"),
                              (axes[1], "test/full/HR@10", "full ranking")):
        mean = [_mean(table[m], column) for m in order]
        std = [table[m]["columns"][column]["std"] or 0.0 for m in order]
        ax.barh(range(len(order)), mean, xerr=std, color=colors, capsize=3)
        ax.set_title(f"test HR@10, {title}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(order)))
    axes[0].set_yticklabels([f"{m} ({len(table[m]['seeds'])})" for m in order])
    fig.suptitle(f"{dataset}: every model on the test window (mean ± std over the seeds "
                 "in brackets)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(table: dict, dataset: str, path: str) -> None:
    """Each model's validation HR@10 after every epoch / iteration of its val phase, mean
    over seeds: did the budget cap stop a curve that was still rising?"""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    others = iter(["tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:pink",
                   "tab:gray", "tab:olive", "tab:cyan"] * 4)  # never LeapRec's red/orange
    for m in sorted(table, key=lambda m: -_mean(table[m], HEAD)):
        curve = table[m].get("val_curve")
        if not curve:
            continue
        style = {CLAIMED: dict(color="tab:red", lw=2.5, marker="o"),
                 DEFAULT_MODEL: dict(color="tab:orange", lw=2, marker="s")}.get(
            m) or dict(color=next(others), lw=1.2, alpha=0.8)
        unit = "iterations" if parse_method(m)[0] else "epochs"
        ax.plot(range(1, len(curve) + 1), curve, label=f"{m} ({len(curve)} {unit})",
                markersize=4, **style)
    ax.set_xlabel("epoch (plain models) / iteration (meta-learners) of the val phase")
    ax.set_ylabel("validation HR@10 (sampled)")
    ax.set_title(f"{dataset}: validation HR@10 while training (mean over seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_k(table: dict, sens: dict, dataset: str, path: str) -> None:
    plt = _pyplot()
    k = sens["k"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for column, style, label in ((HEAD, "-o", "test HR@10 (sampled)"),
                                 (VAL_HEAD, "--s", "validation HR@10 (sampled)"),
                                 ("test/full/HR@10", ":^", "test HR@10 (full ranking)")):
        mean = [_mean(table[lab], column) for lab in k["labels"]]
        std = [table[lab]["columns"][column]["std"] or 0.0 for lab in k["labels"]]
        ax.errorbar(k["values"], mean, yerr=std, fmt=style, capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_xticks(k["values"])
    ax.set_xticklabels([str(v) for v in k["values"]])
    ax.set_xlabel("K (inner steps per time step)")
    ax.set_ylabel("HR@10")
    ax.set_title(f"{dataset}: LeapRec HR@10 against K (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------ report

def _cell(row: dict, column: str, best: dict, key: str) -> str:
    return bold(pm(row["columns"][column]), key in best.get(column, []))


def _options_text(options: dict) -> str:
    if not options:
        return "the driver's defaults"
    return " ".join(_flags(options))


def _effective(options: dict) -> dict:
    """The RankingOptions a run with these overrides uses."""
    return {**dataclasses.asdict(RankingOptions()), **options}


def _defaults_text() -> str:
    d = dataclasses.asdict(RankingOptions())
    return ", ".join(f"{k} {v}" for k, v in d.items() if k not in ("method", "seed"))


def _test_examples(section: dict) -> int:
    """The interactions the test models train on (train + validation windows)."""
    windows = section["periods"]["windows"]
    return windows["train"] + windows["val"]


def render_models(section: dict, exp: dict) -> list:
    table, s = exp["table"], exp["summary"]
    best, claim = s["best"], s["claim"]
    options, examples = _effective(exp["options"]), _test_examples(section)
    steps_of = {m: gradient_steps(row, m, options, examples) for m, row in table.items()}
    step_rows = section["periods"].get("step_rows")
    passes_of = {m: passes_over_data(row, m, options, step_rows, examples)
                 for m, row in table.items()}
    cols = TEST_COLUMNS + (VAL_HEAD,)
    out = [f"### 1. Models: test window, mean ± std over {len(exp['seeds'])} seed(s)", "",
           "| method | " + " | ".join(SAMPLED) + " | full HR@10 | full NDCG@10 | full MRR "
           "| val HR@10 | test budget (at cap) | gradient steps | passes over the data "
           "| last train loss | s per run | CPU s per run |",
           "|---|" + "---:|" * (len(cols) + 6)]
    for m, row in table.items():
        budget, loss = _training_cells(row)
        steps, passes = steps_of[m], passes_of[m]
        out.append(f"| {bold(m, m == CLAIMED)} | "
                   + " | ".join(_cell(row, c, best, m) for c in cols)
                   + f" | {budget} | {'n/a' if steps is None else f'{steps:,.0f}'} "
                   f"| {'n/a' if passes is None else f'{passes:.1f}'} | {loss} "
                   f"| {pm(row['seconds'], '.0f')} | {pm(row['cpu_seconds'], '.0f')} |")
    out += ["", "Bold: the best mean per column. Sampled metrics rank the positive among it "
            "and 99 sampled negatives; \"full\" ranks it among every warm item the user had "
            "not touched before (PROTOCOLS.md A.7-A.8). s per run: the run's own clock "
            "(both phases: train -> validation, train + validation -> test). Test budget: the "
            f"epochs (plain models, at most {options['epochs']}) or iterations (meta methods, "
            f"at most {options['iterations']}) the test model trained for; with "
            "`--choose-budget` (the default here) the count whose validation HR@10 was "
            "best, validation scored after each (PROTOCOLS.md A.3); \"at cap\": the runs "
            "whose validation chose the last one, so that their curve may still have been "
            "rising. Gradient steps: of the test model, "
            f"{options['inner_steps']} (K) per time step and iteration for a meta-learner, "
            f"one per minibatch of {options['batch_size']} of the {examples:,} train + "
            "validation interactions and epoch for a plain model. Passes over the data: "
            "the examples those steps drew per train + validation interaction (an epoch is "
            f"one; a meta-learner draws {options['inner_steps']} minibatches of at most "
            f"{options['batch_size']} per time step and iteration"
            + (f"; the test models' {_step_size_text(step_rows)})" if step_rows else ")")
            + ". Last train loss: the BPR loss of the test model's last epoch / iteration "
            "(mean over time steps); a meta-learner's scores are the sum of its GTL and OTL "
            "models'.", ""]
    if exp.get("png"):
        out += [f"![test HR@10 of every model]({exp['png']})", "",
                f"Red: {CLAIMED}; orange: the {DEFAULT_MODEL} model it trains, trained "
                "plainly.", ""]
    if exp.get("curves_png"):
        out += [f"![validation HR@10 while training]({exp['curves_png']})", "",
                "Validation HR@10 after each epoch / iteration of the val phase (the curve "
                "`--choose-budget` picks the test budget from), mean over seeds: a curve "
                "still rising at its last point was stopped by the budget cap.", ""]
    out += ["**Claim: LeapRec beats every baseline.**", ""]
    if claim["verdict"] == "not evaluated":
        return out + [f"Not evaluated: {claim['why']}.", ""]
    wins, total = claim["metrics_won"]
    rival = claim["strongest_baseline"]
    lost = [c.replace("test/", "") for c, v in claim["per_metric"].items() if not v["beats"]]
    sw, sn = claim["seeds_beating_strongest_baseline"]
    out += [f"Measured: **{claim['verdict']}**: {CLAIMED} has the best mean of the "
            f"{len(claim['baselines'])} plain models ({', '.join(claim['baselines'])}) on "
            f"{wins} of {total} test metrics"
            + (f"; it loses on {', '.join(lost)}." if lost else "."),
            f"- Sampled HR@10: {CLAIMED} {pm(table[CLAIMED]['columns'][HEAD])} against "
            f"the strongest baseline {rival} {pm(table[rival]['columns'][HEAD])} (gap "
            f"{claim['hr10_gap']:+.4f}"
            + (f", {'within' if claim['gap_within_seed_noise'] else 'outside'} the seed std "
               f"{claim['seed_std_hr10']:.4f}" if claim["seed_std_hr10"] is not None else "")
            + f"; higher on {sw} of {sn} seeds).",
            f"- Rank of {CLAIMED} among the {claim['rank_hr10'][1]} methods run: "
            f"{claim['rank_hr10'][0]} by sampled HR@10, {claim['rank_full_hr10'][0]} by "
            f"full-ranking HR@10.",
            "- Order by sampled HR@10: " + " > ".join(claim["order_sampled_hr10"])
            + "; by full HR@10: " + " > ".join(claim["order_full_hr10"])
            + (" (the same)." if claim["order_sampled_hr10"] == claim["order_full_hr10"]
               else " (sampled and full ranking order the methods differently).")]
    mine, theirs = steps_of[CLAIMED], steps_of[rival]
    if mine is not None and theirs:
        capped, capped_of = table[CLAIMED]["at_cap"]
        passes = (passes_of[CLAIMED], passes_of[rival])
        out.append(f"- Training: {CLAIMED}'s test models took {mine / theirs:.0%} of "
                   f"{rival}'s gradient steps ({mine:,.0f} against {theirs:,.0f})"
                   + (f", which drew {passes[0]:.1f} examples per train + validation "
                      f"interaction against {rival}'s {passes[1]:.1f}"
                      if None not in passes else "")
                   + f"; they ended at a train loss of {pm(table[CLAIMED]['last_loss'], '.3f')}"
                   f" against {pm(table[rival]['last_loss'], '.3f')}"
                   + (f"; validation chose the last of its {options['iterations']} "
                      f"iterations on {capped} of {capped_of} seeds" if capped else "")
                   + ".")
    rises = {m: still_rising(table[m].get("val_curve")) for m in (CLAIMED, rival)}
    if None not in rises.values():
        out.append(f"- Validation while training (the val phase, mean over seeds): "
                   f"{CLAIMED}'s HR@10 rose by {rises[CLAIMED]:+.4f} over its last 3 "
                   f"iterations, {rival}'s by {rises[rival]:+.4f} over its last 3 "
                   f"{'iterations' if parse_method(rival)[0] else 'epochs'}.")
    split = claim.get("gap_split")
    if split:
        out.append(f"- Of the HR@10 gap to {rival} ({claim['hr10_gap']:+.4f}), "
                   f"{split['model_gap']:+.4f} lies between {rival} and the model "
                   f"{CLAIMED} trains, {split['model']}, trained plainly, and "
                   f"{split['training_gap']:+.4f} between {split['model']} trained plainly "
                   f"and {CLAIMED}'s meta-training of it.")
    if claim["seeds"] < 2:
        out.append("- One seed only: a smoke run, not evidence either way.")
    return out + [""]


def gradient_steps(row: dict, method: str, options: dict, examples: int) -> Optional[float]:
    """Mean gradient steps of a row's test models: K per time step and iteration for a
    meta-learner, one per minibatch of the `examples` and epoch for a plain model."""
    if row["budget"]["mean"] is None:
        return None
    per_unit = (row["time_steps"] * options["inner_steps"] if parse_method(method)[0]
                else math.ceil(examples / options["batch_size"]))
    return row["budget"]["mean"] * per_unit


def passes_over_data(row: dict, method: str, options: dict, step_rows: Optional[dict],
                     examples: int) -> Optional[float]:
    """Mean passes of a row's test models over the train + validation interactions: the
    examples their gradient steps drew, per interaction. A plain model's epoch is one
    pass; a meta-learner draws K minibatches of min(batch, the step's interactions) per
    time step and iteration, however many interactions the step has, so it may see a
    big step's interactions in part and a small step's many times over. None when the
    time steps' sizes are unknown (another granularity than the build's)."""
    if row["budget"]["mean"] is None:
        return None
    if not parse_method(method)[0]:
        return row["budget"]["mean"]
    if options["granularity"] is not None or not step_rows:
        return None
    drawn = options["inner_steps"] * sum(min(options["batch_size"], n)
                                         for n in step_rows.values())
    return row["budget"]["mean"] * drawn / examples


def render_plugins(section: dict, exp: dict) -> list:
    table, s = exp["table"], exp["summary"]
    options, examples = _effective(exp["options"]), _test_examples(section)
    counts = {len(row["seeds"]) for row in table.values()}
    seeds = (f"{counts.pop()} seed(s)" if len(counts) == 1
             else f"{len(exp['seeds'])} seeds planned; the seeds column says how many ran")
    out = [f"### 2. Plug-ins: each base model without and with LeapRec; Leap vs FOMAML "
           f"({seeds})", "",
           "| base | method | seeds | test HR@10 | test NDCG@10 | full HR@10 | HR@10 vs base "
           "| NDCG@10 vs base | full HR@10 vs base | val HR@10 | test budget (at cap) "
           "| gradient steps | last train loss | s per run |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    steps_of = {m: gradient_steps(row, m, options, examples) for m, row in table.items()}
    for g in s["groups"]:
        for r in g["rows"]:
            row, rel = table[r["method"]], r["rel"]
            budget, loss = _training_cells(row)
            steps = steps_of[r["method"]]
            out.append(
                f"| {g['base']} | {r['method']} | {len(row['seeds'])} "
                f"| {pm(row['columns'][HEAD])} "
                f"| {pm(row['columns'][NDCG])} | {pm(row['columns']['test/full/HR@10'])} "
                + ("| — | — | — " if rel is None else
                   f"| {pct(rel[HEAD])} | {pct(rel[NDCG])} "
                   f"| {pct(rel['test/full/HR@10'])} ")
                + f"| {pm(row['columns'][VAL_HEAD])} | {budget} "
                f"| {'n/a' if steps is None else f'{steps:,.0f}'} "
                f"| {loss} | {pm(row['seconds'], '.0f')} |")
    out += ["", f"Test budget: the epochs (plain models, at most {options['epochs']}) or "
            f"iterations (meta-learners, at most {options['iterations']}) the test model "
            "trained for, the count whose validation HR@10 was best; \"at cap\": runs whose "
            "validation chose the val phase's last one, so their curve may still have been "
            "rising when the budget ran out. Gradient steps: of the test model, "
            f"{options['inner_steps']} (K) per time step and iteration for a meta-learner, "
            f"one per minibatch of {options['batch_size']} of the {examples:,} train + "
            "validation interactions and epoch for a plain model. Last train loss: the BPR "
            "loss of the test model's last epoch / iteration (mean over time steps); a "
            "meta-learner's scores are the sum of its GTL and OTL models'."]
    out += ["", "\"vs base\": `relative_change(variant, base)` on the same seed, mean ± std "
            "over seeds. `leaprec` is `leaprec+gnn-sa`.", ""]
    plug = s["plug_in"]
    out += ["**Claim: the LeapRec plug-in improves every base model** (both sampled HR@10 "
            "and NDCG@10 above the plain model's).", ""]
    if plug["verdict"] == "not evaluated":
        out.append("Not evaluated: no leaprec+MODEL run with its base model.")
    else:
        k, n = plug["improved"]
        out.append(f"Measured: **{plug['verdict']}**: {k} of {n} base models improve.")
        for p in plug["per_model"]:
            w, t = p["seeds_improving_hr10"]
            mine, base = table[p["method"]], table[p["base"]]
            steps, base_steps = steps_of[p["method"]], steps_of[p["base"]]
            capped, capped_of = mine["at_cap"]
            training = [f"last train loss {pm(mine['last_loss'], '.3f')} against the base's "
                        f"{pm(base['last_loss'], '.3f')}"]
            if steps is not None and base_steps:
                training.insert(0, f"{steps / base_steps:.0%} of the base's gradient steps")
            if capped:
                training.append(f"validation chose the last of its {options['iterations']} "
                                f"iterations on {capped} of {capped_of} seeds")
            out.append(f"- {p['base']} -> {p['method']}: HR@10 {100 * p['rel_hr10']:+.2f}%, "
                       f"NDCG@10 {100 * p['rel_ndcg10']:+.2f}% "
                       f"({'improves' if p['improves'] else 'does not improve'}; HR@10 "
                       f"higher on {w} of {t} seeds). Training: {'; '.join(training)}.")
    lf = s["leap_vs_fomaml"]
    out += ["", "**Claim: Leap beats first-order MAML** (the same GTL + OTL model trained "
            "with either meta-gradient; higher mean sampled HR@10 and NDCG@10).", ""]
    if lf["verdict"] == "not evaluated":
        out.append("Not evaluated: no model run with both leaprec+ and fomaml+.")
    else:
        k, n = lf["wins"]
        out.append(f"Measured: **{lf['verdict']}**: Leap wins on {k} of {n} models.")
        for x in lf["per_model"]:
            w, t = x["seeds_beating_hr10"]
            out.append(f"- {x['model']}: HR@10 {x['hr10'][0]:.4f} (Leap) vs "
                       f"{x['hr10'][1]:.4f} (FOMAML), NDCG@10 {x['ndcg10'][0]:.4f} vs "
                       f"{x['ndcg10'][1]:.4f}; Leap higher HR@10 on {w} of {t} seeds.")
    if _effective(exp["options"])["iterations"] < 2 and lf["per_model"]:
        out.append("- With one iteration Leap and FOMAML deploy the same model: the "
                   "meta-parameters take their only step after the deployed parameters "
                   "(those after the last time step) are fixed.")
    if len(exp["seeds"]) < 2:
        out.append("- One seed only: a smoke run, not evidence either way.")
    return out + [""]


TRAINING_NOTE = ("Test budget: the iterations the test model trained for, chosen on "
                 "validation; \"at cap\": runs where validation chose the val phase's last "
                 "one. Last train loss: the test model's BPR loss in its last iteration "
                 "(mean over time steps).")


def _step_size_text(step_rows: dict) -> str:
    """How many time steps there are and how many interactions they hold."""
    sizes = sorted(step_rows.values())
    return (f"{len(sizes)} time steps hold {sizes[0]:,} to {sizes[-1]:,} interactions, "
            f"median {np.median(sizes):,.0f}")


def _training_cells(row: dict) -> list:
    """The test budget with its runs at cap, and the last train loss, of a table row."""
    capped, capped_of = row["at_cap"]
    return [f"{pm(row['budget'], '.1f')} ({capped} of {capped_of})",
            pm(row["last_loss"], ".3f")]


def _setting_table(table: dict, labels: list, extra: str = "") -> list:
    out = ["| setting | test HR@10 | test NDCG@10 | test MRR | full HR@10 | val HR@10 "
           f"| test budget (at cap) | last train loss | {extra + ' | ' if extra else ''}"
           "s per run |",
           "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if extra else "") + "---:|"]
    best = best_per_column({k: table[k] for k in labels},
                           (HEAD, NDCG, "test/sampled/MRR", "test/full/HR@10", VAL_HEAD))
    for label in labels:
        row = table[label]
        cells = [_cell(row, c, best, label) for c in
                 (HEAD, NDCG, "test/sampled/MRR", "test/full/HR@10", VAL_HEAD)]
        cells += _training_cells(row)
        if extra:
            cells.append(str(row["time_steps"]))
        out.append(f"| {label} | " + " | ".join(cells) + f" | {pm(row['seconds'], '.0f')} |")
    return out


def render_split(exp: dict) -> list:
    table, s = exp["table"], exp["summary"]
    out = [f"### 3. GTL / OTL split at roughly equal cost ({len(exp['seeds'])} seed(s))", "",
           "Embedding sizes (gtl_dim, otl_dim) chosen so that gtl^2 + otl^2 stays about "
           "the same; 0 turns a part off. " + TRAINING_NOTE, ""]
    out += _setting_table(table, list(table))
    out.append("")
    out.append(f"- Best by validation HR@10 (what tuning would pick): "
               f"{s['best_by_validation']}; best on test (reported, not chosen): "
               f"{s['best_on_test']}.")
    if s["both_beat_single"]:
        for column, c in s["both_beat_single"].items():
            window = "test" if column.startswith("test") else "validation"
            verb = ("beats" if c["beats"] else "ties with" if c.get("ties")
                    else "does not beat")
            out.append(f"- Both parts against one ({window} HR@10): the best split with "
                       f"both, {c['best_both']}, {verb} the best single part, "
                       f"{c['best_single']}.")
    return out + [""]


def render_sensitivity(exp: dict, prefix: str, dataset: str) -> list:
    table, s = exp["table"], exp["summary"]
    out = [f"### 4. Sensitivity ({len(exp['seeds'])} seed(s))", "", TRAINING_NOTE, ""]
    k = s["k"]
    if k:
        out += ["K, the inner steps per time step:", ""]
        out += _setting_table(table, k["labels"])
        ratio = k["seconds_max_over_min_k"]
        out += ["", f"- Test HR@10 {k['trend']}; best K by validation HR@10: "
                f"{k['best_by_validation']}, on test: {k['best_on_test']}."
                + (f" A run with K = {k['values'][-1]} took {ratio:.1f}x the seconds of "
                   f"K = {k['values'][0]}." if ratio else ""), "",
                f"![HR@10 against K on {dataset}]({prefix}-sensitivity-k-{dataset}.png)", ""]
    g = s["granularity"]
    if g:
        out += ["Time-step granularity (the dataset's own steps are calendar months; "
                "\"steps\" = time steps of the train + validation phase):", ""]
        out += _setting_table(table, g["labels"], extra="steps")
        out += ["", f"- Best by validation HR@10: {g['best_by_validation']}; on test: "
                f"{g['best_on_test']}.", ""]
    lr = s.get("meta_learning_rate")
    if lr:
        out += ["The meta learning rate (Adam on Leap's meta-gradient, one step per "
                "iteration):", ""]
        out += _setting_table(table, lr["labels"])
        out += ["", f"- Best by validation HR@10: {lr['best_by_validation']}; on test: "
                f"{lr['best_on_test']}.", ""]
    return out


def render_figures(exp: dict) -> list:
    s = exp["summary"]
    out = ["### 5. Figures", ""]
    if not s.get("available"):
        return out + [f"Not available: {s.get('why')}.", ""]
    loss = s["loss"]
    out += [f"From `{CLAIMED}` seed {s['seed']}, train + validation phase (the model "
            "scored on the test window).", "",
            f"![training loss per time step]({s['loss_png']})", "",
            f"Training loss per time step (the paper's Figure 7): the mean inner BPR loss "
            f"of each of the {len(loss['time_steps'])} time steps in each of the "
            f"{loss['iterations']} iterations (`metrics.json` `training.test.losses`). "
            f"Mean over time steps: {loss['first_iteration_mean']:.4f} in the first "
            f"iteration, {loss['last_iteration_mean']:.4f} in the last"
            + (f"; {loss['steps_falling'][0]} of {loss['steps_falling'][1]} time steps "
               "end lower than they started." if loss["steps_falling"] else
               " (one iteration: no trend to read)."), ""]
    shift = s["shift"]
    if not shift:
        return out + ["No `test/representations.npz` in the run: no representation "
                      "figure.", ""]
    parts = shift["parts"]
    out += [f"![representation shift]({s['shift_png']})", "",
            f"Representation shift (the paper's Figure 5): the {shift['items']} items with "
            "the most interactions in the phase, grouped by the time step where they were "
            "most popular, i.e. had their largest share of that step's interactions among "
            "these items (raw counts would give every item to the busiest step), the time "
            f"steps cut into at most {SHIFT_GROUPS} contiguous ranges ("
            + ", ".join(f"{g['label']}: {g['items']} items" for g in shift["groups"])
            + "); per group, the mean cosine distance of the items' representations after "
            "each time step of the last iteration to those after the first time step. The "
            "representations are the model's item node outputs (for GNN+SA after its GCN "
            "over the graph of time steps <= t), so the growing graph moves them too. GTL "
            "restarts from its meta-parameters at every time step; OTL carries on.", ""]
    out.append("- Mean distance at the last time step: "
               + ", ".join(f"{p.upper()} {v['last_step_mean']:.4f}" for p, v in parts.items())
               + (f" (OTL drifts {'more' if shift['otl_moves_more'] else 'less'} than GTL)."
                  if shift["otl_moves_more"] is not None else "."))
    return out + [""]


def _budget_cell(metrics: dict) -> str:
    """'7 / 20' (chosen on validation / the val phase's) or '20' (fixed)."""
    chosen, cap = chosen_budget(metrics), budget_cap(metrics)
    return str(chosen) if cap is None else f"{chosen} / {cap}"


def _run_row(r: dict) -> str:
    mt, pr = r["metrics"], r["process"]
    marks = [m for m, on in (("resumed", pr.get("resumed")),
                             ("folder gone", pr.get("folder_gone"))) if on]
    cells = [r["name"] + "".join(f" ({m})" for m in marks), str(r["seed"]),
             f"{mt['test']['sampled']['HR@10']:.4f}", f"{mt['test']['full']['HR@10']:.4f}",
             f"{mt['val']['sampled']['HR@10']:.4f}", _budget_cell(mt), f"{mt['seconds']:.0f}"]
    if pr.get("process_seconds"):
        cells += [f"{pr['process_seconds']:.0f}", f"{pr['cpu_seconds']:.0f}",
                  f"{pr['cpu_seconds'] / pr['process_seconds']:.2f}",
                  f"{pr['loadavg_after'][0]:.2f}", run_code(r) or "n/a"]
    else:
        cells += ["n/a"] * 5
    return "| " + " | ".join(cells) + " |"


def remaining_text(section: dict) -> str:
    """How long a dataset's unfinished runs would take at the pace of the finished seeds
    of the same settings (their own clocks), for planning the rest of a benchmark."""
    ids = list(dict.fromkeys(i for e in section["experiments"].values()
                             for i in e.get("unfinished", [])))
    spent = {i: u["seconds"] for e in section["experiments"].values()
             for i, u in e.get("under_way", {}).items()}
    pace = {}
    for r in section["runs"].values():
        pace.setdefault(r["name"], []).append(r["metrics"]["seconds"])
    names = {i: i.rsplit("/seed-", 1)[0] for i in ids}
    known = [max(0.0, float(np.mean(pace[n])) - spent.get(i, 0.0))
             for i, n in names.items() if n in pace]
    unknown = sorted({n for n in names.values() if n not in pace})
    text = [f"At the pace of their settings' finished seeds, the {len(known)} of {len(ids)} "
            f"with one would take about {sum(known) / 3600:.1f} h more one after the other "
            "(a run under way less the seconds it has had)."] if known else []
    if unknown:
        text.append(f"No seed of {', '.join(unknown)} has finished yet to time "
                    f"{'it' if len(unknown) == 1 else 'them'} by.")
    return " ".join(text)


def render_dataset(dataset: str, section: dict, prefix: str) -> list:
    p = section["periods"]
    runs = section["runs"]
    # instances and exclusions as the runs' metrics.json report them (else the manifest)
    any_run = next(iter(runs.values()), None)
    inst = ({w: any_run["metrics"][w]["instances"] for w in ("val", "test")} if any_run
            else p.get("instances") or {})
    excluded = ({w: any_run["metrics"][w].get("excluded") or {} for w in ("val", "test")}
                if any_run else p.get("excluded") or {})
    bounds = p.get("window_bounds") or {}
    steps = p.get("steps") or {}
    out = [f"## {dataset}", "",
           f"- Periods: protocol A, cut {bounds.get('cut')}, {bounds.get('val_months')} "
           f"validation month(s); {p['rows_out']:,} interactions (train "
           f"{p['windows']['train']:,} in {len(steps.get('train', []))} "
           f"{p.get('granularity')} steps, validation {p['windows']['val']:,}, test "
           f"{p['windows']['test']:,}); {where_built(p)} `{p['dir']}`.",
           f"- Ranking instances: validation {inst.get('val')}, test {inst.get('test')}. "
           f"Excluded test interactions (PROTOCOLS.md A.4): "
           f"{excluded.get('test', {}).get('cold_user')} of cold users, "
           f"{excluded.get('test', {}).get('cold_item')} of cold items (validation: "
           f"{excluded.get('val', {}).get('cold_user')} / "
           f"{excluded.get('val', {}).get('cold_item')})."]
    counted = {(r["metrics"]["test"]["instances"],
                tuple(sorted((r["metrics"]["test"].get("excluded") or {}).items())))
               for r in runs.values()}
    if len(counted) > 1:
        out.append(f"- **Warning**: the runs scored different numbers of test instances: "
                   f"{sorted(counted)}.")
    elif counted:
        (n, _), = counted
        out.append(f"- Every run scored the same {n} test instances (`metrics.json`).")
    notes = {e.get("source_note") for e in section["experiments"].values()} - {None}
    out += code_lines(runs, "protocol A sources of tfmeta/", sorted(notes))
    makers = {}  # the benchmark invocations that made the runs (reused ones earlier)
    for r in runs.values():
        command = r["process"].get("benchmark_command")
        if command:
            makers.setdefault(command, []).append(r["process"].get("started", "")[:10])
    if set(makers) - {e["command"] for e in section["experiments"].values()}:
        out.append("- The runs were made by (reused runs come from earlier invocations): "
                   + "; ".join(f"`{c}` ({len(d)} runs, {min(d)} to {max(d)})"
                               for c, d in makers.items()) + ".")
    out += ["", "| experiment | date | command | options of every run | runs (reused) |",
            "|---|---|---|---|---:|"]
    for name, exp in section["experiments"].items():
        out.append(f"| {name} | {exp['date']} | `{exp['command']}` "
                   f"| {_options_text(exp['options'])} | {len(exp['run_ids'])} "
                   f"({exp['reused']}) |")
    failed = [f"{n}: {', '.join(e['failed'])}" for n, e in section["experiments"].items()
              if e.get("failed")]
    if failed:
        out += ["", "**Failed runs** (missing from the tables): " + "; ".join(failed) + "."]
    unfinished = [f"{n}: " + ", ".join(
                      i + (f" (under way: {under_way_text(e['under_way'][i])})"
                           if i in e.get("under_way", {}) else "") for i in e["unfinished"])
                  for n, e in section["experiments"].items() if e.get("unfinished")]
    if unfinished:
        out += ["", "**Runs not finished yet** (missing from the tables; tabulated with "
                "`--report-only`, `--resume` trains or continues them): "
                + "; ".join(unfinished) + ". " + remaining_text(section)]
    out.append("")
    exps = section["experiments"]
    for name, render in (("models", lambda e: render_models(section, e)),
                         ("plugins", lambda e: render_plugins(section, e)),
                         ("split", render_split),
                         ("sensitivity", lambda e: render_sensitivity(e, prefix, dataset)),
                         ("figures", render_figures)):
        if name in exps:
            out += render(exps[name])
    gone = sum(bool(r["process"].get("folder_gone")) for r in runs.values())
    out += ["### Runs", ""]
    if gone:
        out += [f"{gone} run(s) marked \"folder gone\" were reused by a later invocation "
                "from this report's record of the finished run: their run folders no longer "
                "existed then (runs/ is git-ignored).", ""]
    cpus = {}
    for r in runs.values():
        cpu = r["process"].get("cpu_model", "not recorded (started before benchmarks recorded it)")
        cpus[cpu] = cpus.get(cpu, 0) + 1
    out += ["CPUs of the runs' last processes (the header names the machine that wrote "
            "this report; runs of different sessions may have run on different VMs): "
            + "; ".join(f"{c}: {n}" for c, n in sorted(cpus.items())) + ".", ""]
    out += ["| run | seed | test HR@10 | test full HR@10 | val HR@10 | test budget | run s "
            "| process s | CPU s | CPU / wall | load after | tfmeta/ digest |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    out += [_run_row(r) for _, r in sorted(runs.items())]
    return out + [""]


def coverage(exp: dict) -> str:
    """How complete an experiment's table is: its rows of the planned settings, which
    have fewer seeds than the experiment's, and which have none yet."""
    seeds, table = len(exp["seeds"]), exp["table"]
    planned = [s["label"] for s in exp["settings"]]
    short = [f"{m} ({len(table[m]['seeds'])})" for m in planned
             if m in table and len(table[m]["seeds"]) < seeds]
    missing = [m for m in planned if m not in table]
    return "; ".join([f"{len(planned) - len(missing)} of {len(planned)}"]
                     + ([f"fewer seeds: {', '.join(short)}"] if short else [])
                     + ([f"none yet: {', '.join(missing)}"] if missing else []))


def render_markdown(report: dict, prefix: str) -> str:
    sections = report["datasets"]
    m, gpus = machine_of(sections)
    out = [
        "# LeapRec benchmark: temporal ranking on protocol A",
        "",
        *machine_info.header_lines(m, gpus),
        "- Protocol A (PROTOCOLS.md A): validation figures from a model trained on the "
        "train window, test figures from one trained on train + validation with the same "
        "options. Every run uses the driver's defaults (" + _defaults_text() + ") except "
        "the options passed to every run (each experiment's command and options below) and "
        "the option its experiment varies. No option is chosen on test windows.",
        "- Runs run `--workers` at a time on the machine's cores, which other work may "
        "share: compare ratios; the runs tables give CPU / wall and the load average.",
        "",
        "## Summary", "",
        "| dataset | seeds (models) | models in the table | LeapRec beats every baseline "
        "| plug-in improves every base | Leap beats FOMAML |",
        "|---|---:|---|---|---|---|"]
    for dataset, sec in sections.items():
        exps = sec["experiments"]
        cells = []
        if "models" in exps:
            c = exps["models"]["summary"]["claim"]
            cells += [str(len(exps["models"]["seeds"])), coverage(exps["models"]),
                      f"**{c['verdict']}**" + (f" ({c['metrics_won'][0]} of "
                                               f"{c['metrics_won'][1]} test metrics)"
                                               if "metrics_won" in c else "")]
        else:
            cells += ["—", "—", "not run"]
        if "plugins" in exps:
            s = exps["plugins"]["summary"]
            pi, lf = s["plug_in"], s["leap_vs_fomaml"]
            cells += [f"**{pi['verdict']}** ({pi['improved'][0]} of {pi['improved'][1]})",
                      f"**{lf['verdict']}** ({lf['wins'][0]} of {lf['wins'][1]})"]
        else:
            cells += ["not run", "not run"]
        out.append(f"| {dataset} | " + " | ".join(cells) + " |")
    out += ["", "Verdicts are computed from the tables below: \"supported\" when the "
            "claim holds for every metric / model compared, \"partly\" for some, \"not "
            "supported\" for none. With one seed they are a smoke test, not evidence; "
            "while models are missing or short of seeds (\"models in the table\") they "
            "compare with the models run so far.", ""]
    for dataset, sec in sections.items():
        out += render_dataset(dataset, sec, prefix)
    return "\n".join(out)


# ------------------------------------------------------------------ main

def tabulate(name: str, record: dict, runs: dict, dataset: str, quick: bool,
             figures_dir: str, prefix: str) -> dict:
    """An experiment's table and summary (and plots) from the runs its settings name:
    used for the experiments just run and again for kept ones whose runs were replaced."""
    settings = [(Setting(s["label"], s["method"], tuple(s["varied"].items())),
                 [runs[i] for i in s["runs"] if i in runs]) for s in record["settings"]]
    table = {setting.label: figures_row(results) for setting, results in settings if results}
    record = dict(record, table=table)
    if name == "models":
        record["summary"] = summarize_models(table)
        if table:
            record["png"] = f"{prefix}-models-{dataset}.png"
            plot_models(table, dataset, os.path.join(figures_dir, record["png"]))
            if any(row.get("val_curve") for row in table.values()):
                record["curves_png"] = f"{prefix}-curves-{dataset}.png"
                plot_curves(table, dataset, os.path.join(figures_dir, record["curves_png"]))
    elif name == "plugins":
        record["summary"] = summarize_plugins(table, QUICK["plugins"] if quick else PLUGINS)
    elif name == "split":
        record["summary"] = summarize_split(table, [s for s, _ in settings])
    elif name == "sensitivity":
        record["summary"] = summarize_sensitivity(table, [s for s, _ in settings])
        if record["summary"]["k"]:
            plot_k(table, record["summary"], dataset,
                   os.path.join(figures_dir, f"{prefix}-sensitivity-k-{dataset}.png"))
    elif name == "figures":
        record["summary"] = summarize_figures([r for _, rs in settings for r in rs],
                                              figures_dir, prefix, dataset)
    return record


def tabulated_seeds(experiment: str, seeds: list, previous: Optional[dict]) -> list:
    """The seeds an experiment's table covers: those given, plus those the report's table
    (`previous`) already had, so that training seed 2 alone keeps seeds 0 and 1 in the
    table. Figures plot one seed: the first given."""
    if experiment == "figures":
        return seeds[:1]
    return sorted(set(seeds) | set((previous or {}).get("seeds", ())))


def run_dataset(dataset: str, args, settings: dict, shared: dict, seeds: list,
                runs_dir: str, figures_dir: str, prefix: str, command: str,
                section: Optional[dict] = None) -> tuple:
    """Every experiment of one dataset: ({experiment: record}, {run id: run}, failed).
    `section`: what the report already holds for the dataset. Only the given `seeds` are
    trained; the tables also take in the seeds the report's tables had."""
    section = section or {}
    periods = ensure_periods(dataset, runs_dir, args.periods)
    planned = {}   # experiment -> [(setting, [Run])]
    unique = {}    # run id -> Run
    covered = {name: tabulated_seeds(name, seeds, section.get("experiments", {}).get(name))
               for name in settings}
    for name, rows in settings.items():
        planned[name] = []
        for setting in rows:
            runs = [make_run(dataset, setting, s, shared, runs_dir) for s in covered[name]]
            planned[name].append((setting, runs))
            for r in runs:
                unique.setdefault(r.id, r)
    done, failed, reused = run_all(list(unique.values()), periods["path"], args.workers,
                                   f"{dataset}", command, section.get("runs"),
                                   not args.report_only,
                                   set(args.only) if args.only else None, set(seeds),
                                   args.threads)
    failed_ids = {r.id for r in failed}
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    experiments = {}
    for name, rows in planned.items():
        ids = [r.id for _, runs in rows for r in runs]
        record = {"date": date, "command": command, "workers": args.workers,
                  "seeds": covered[name],
                  "options": shared, "source_note": args.source_note,
                  "settings": [{"label": s.label, "method": s.method,
                                "varied": dict(s.varied), "runs": [r.id for r in runs]}
                               for s, runs in rows],
                  "run_ids": ids, "reused": sum(i in reused for i in ids),
                  "failed": [i for i in ids if i in failed_ids],
                  "unfinished": [i for i in ids if i not in done and i not in failed_ids]}
        record["under_way"] = {i: u for i in record["unfinished"]
                               if (u := under_way(unique[i])) is not None}
        experiments[name] = tabulate(name, record, done, dataset, args.quick, figures_dir,
                                     prefix)
    periods = dict(periods, dir=_rel(periods.pop("path")))
    return periods, experiments, done, failed


def merge_section(section: Optional[dict], experiments: dict, done: dict, dataset: str,
                  quick: bool, figures_dir: str, prefix: str) -> dict:
    """A dataset's report section with this invocation's experiments and runs merged in.
    Experiments it did not run are kept; those that name a run it replaced (a run
    folder shared by experiments, run again) are tabulated again from the new run, so
    that every table agrees with the runs table. A run taken back from the report (its
    folder gone) replaces nothing: tabulating again then would lose what only the
    folder had, e.g. the figures' arrays."""
    section = section or {"experiments": {}, "runs": {}}
    replaced = {i for i, r in done.items() if not r["process"].get("folder_gone")}
    merged = {**section["experiments"], **experiments}
    section["experiments"] = {e: merged[e] for e in EXPERIMENTS if e in merged}
    keep = {i for e in section["experiments"].values() for i in e["run_ids"]}
    section["runs"] = {i: r for i, r in {**section["runs"], **done}.items() if i in keep}
    for name, record in section["experiments"].items():
        if name not in experiments and set(record["run_ids"]) & replaced:
            section["experiments"][name] = tabulate(name, record, section["runs"], dataset,
                                                    quick, figures_dir, prefix)
    return section


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.leaprec",
        description="The LeapRec paper's evidence on protocol A: models, plug-ins, "
                    "GTL/OTL split, sensitivity, Figures 5 and 7.")
    parser.add_argument("--datasets", nargs="+", default=None, metavar="DATASET",
                        help=f"registered datasets (default: {' '.join(DATASETS)})")
    parser.add_argument("--periods", default=None, metavar="DIR",
                        help="protocol A periods already built (`tfmeta periods build "
                             "--protocol a`), e.g. of your own data, instead of "
                             "--datasets; the report names them by their dataset, else "
                             "by the folder's name")
    parser.add_argument("--experiments", nargs="+", default=None, choices=EXPERIMENTS,
                        help=f"experiments to run (default: all: {' '.join(EXPERIMENTS)})")
    parser.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                        help=f"methods of the models experiment (default: {' '.join(MODELS)})")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, metavar="N",
                        help=f"seeds to train (default: {' '.join(map(str, SEEDS))}); the "
                             "tables also keep the seeds the report already has; the "
                             "figures use the first")
    parser.add_argument("--workers", type=int, default=2,
                        help="runs at a time, each in its own process (default 2)")
    parser.add_argument("--threads", type=int, default=None,
                        help="each run's TensorFlow threads per pool (tfmeta train "
                             "--threads; default: one per core; benchmarks/results/"
                             "threads.md measures it)")
    parser.add_argument("--runs-dir", default=None,
                        help="periods and run folders (default runs/leaprec, "
                             "runs/leaprec-quick with --quick, runs/leaprec-periods with "
                             "--periods; git-ignored)")
    parser.add_argument("--results-dir", default=None,
                        help="where the .md, .json and .png go (default benchmarks/results; "
                             "with --periods runs/leaprec-periods/results)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse runs whose metrics.json exists and continue killed ones")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: tabulate the finished runs (a partly done "
                             "benchmark's tables, with the missing runs listed)")
    parser.add_argument("--only", nargs="+", default=None, metavar="RUN",
                        help="train only the planned runs of these names (e.g. "
                             "leaprec-quarter leaprec-k5); the others are tabulated if "
                             "finished, listed as missing if not (as with --report-only)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: movielens-100k, seed 0, tiny budgets ("
                             + " ".join(_flags(QUICK["options"])) + "), 5 models, 2 "
                             "settings per split / sensitivity; results get a "
                             "leaprec-quick prefix")
    parser.add_argument("--source-note", default=None,
                        help="a sentence for the report when runs used different tfmeta/ "
                             "sources (e.g. what you checked about it)")
    passed = parser.add_argument_group(
        "options of every run (forwarded to tfmeta train; default: the driver's, or "
        "--quick's)")
    for name, kind in PASSED:
        passed.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None)
    passed.add_argument("--fixed-budget", action="store_true",
                        help="train every test model for --epochs / --iterations instead "
                             "of the count that scored best on validation (--choose-budget)")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(["python", "-m", "benchmarks.leaprec", *argv])

    given = {name: getattr(args, name) for name, _ in PASSED
             if getattr(args, name) is not None}
    shared = {**(QUICK["options"] if args.quick else {}), **given,
              "choose_budget": not args.fixed_budget}
    if args.periods and args.datasets:
        parser.error("--periods replaces --datasets: give one of them")
    datasets = ([given_name(args.periods, "a")] if args.periods else
                list(args.datasets or (QUICK["datasets"] if args.quick else DATASETS)))
    seeds = list(args.seeds if args.seeds is not None
                 else (QUICK["seeds"] if args.quick else SEEDS))
    experiments = [e for e in EXPERIMENTS if e in (args.experiments or EXPERIMENTS)]
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    if not seeds or len(set(seeds)) != len(seeds):
        parser.error("--seeds must be given once each")
    try:
        models = [canonical(m) for m in (args.methods or
                                         (QUICK["models"] if args.quick else MODELS))]
    except ValueError as e:
        parser.error(str(e))
    if len(set(models)) != len(models):
        parser.error("--methods must not repeat (leaprec is leaprec+gnn-sa)")
    settings = plan(experiments, {
        "models": models,
        "plugins": QUICK["plugins"] if args.quick else PLUGINS,
        "splits": QUICK["splits"] if args.quick else SPLITS,
        "inner_steps": QUICK["inner_steps"] if args.quick else INNER_STEPS,
        "granularities": QUICK["granularities"] if args.quick else GRANULARITIES,
        "meta_learning_rates": (QUICK["meta_learning_rates"] if args.quick
                                else META_LEARNING_RATES)})
    prefix = "leaprec-quick" if args.quick else "leaprec"
    # --periods: the user's data, whose runs and report stay apart from the project's
    default_runs, default_results = (given_dirs("leaprec", ROOT) if args.periods else (
        os.path.join(ROOT, "runs", "leaprec-quick" if args.quick else "leaprec"), RESULTS_DIR))
    runs_dir = os.path.abspath(args.runs_dir or default_runs)
    args.results_dir = args.results_dir or default_results
    if args.only:
        names = {make_run(d, s, 0, shared, runs_dir).name
                 for d in datasets for rows in settings.values() for s in rows}
        unknown = sorted(set(args.only) - names)
        if unknown:
            parser.error(f"--only {' '.join(unknown)}: not a planned run of these "
                         f"experiments; planned: {' '.join(sorted(names))}")
    if not (args.resume or args.report_only):
        existing = sorted({make_run(d, s, seed, shared, runs_dir).out
                           for d in datasets for rows in settings.values() for s in rows
                           for seed in seeds if os.path.exists(
                               make_run(d, s, seed, shared, runs_dir).out)})
        if existing:
            parser.error(f"{len(existing)} planned run folder(s) already exist (e.g. "
                         f"{existing[0]}); pass --resume to reuse finished ones and "
                         "continue killed ones, or choose another --runs-dir")

    os.makedirs(args.results_dir, exist_ok=True)
    json_path = os.path.join(args.results_dir, f"{prefix}.json")
    md_path = os.path.join(args.results_dir, f"{prefix}.md")
    recorded = read_json(json_path)["datasets"] if os.path.exists(json_path) else {}
    machine = machine_info.describe(["tensorflow", "tf-keras", "tensorflow-gnn", "numpy",
                                     "matplotlib"])
    gpus = gpus_seen()
    failed = []
    for dataset in datasets:
        started = time.perf_counter()
        periods, exps, done, failures = run_dataset(
            dataset, args, settings, shared, seeds, runs_dir, args.results_dir, prefix,
            command, recorded.get(dataset))
        failed += [f"{dataset}/{r.id}" for r in failures]
        seconds = time.perf_counter() - started

        def update(report):  # called at once, so the loop's current values
            section = merge_section(report["datasets"].get(dataset), exps, done, dataset,
                                    args.quick, args.results_dir, prefix)
            section.update({"periods": periods, "machine": machine,
                            "gpus_seen_by_tensorflow": gpus, "benchmark_seconds": seconds})
            report["datasets"][dataset] = section
            report["tfmeta"] = tfmeta.__version__

        # Written after every dataset, so a later dataset's failure keeps earlier results;
        # merged into the report as it is now, which keeps what other invocations (of
        # other datasets) wrote meanwhile.
        update_report(json_path, md_path, "leaprec", update,
                      lambda report: render_markdown(report, prefix))
        print(f"{dataset}: wrote {md_path}, {json_path}", file=sys.stderr, flush=True)
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}; fix and rerun with "
              "--resume", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
