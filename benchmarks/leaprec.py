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
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Optional  # noqa: E402

from tfmeta.training.ranking import DEFAULT_MODEL, RankingOptions, parse_method  # noqa: E402
from tfmeta.training.rundir import periods_digest  # noqa: E402

from benchmarks import machine as machine_info  # noqa: E402
from benchmarks.leaprec_plots import (plot_curves, plot_models,  # noqa: E402
                                      plot_sensitivity, summarize_figures)
from benchmarks.leaprec_report import render_markdown  # noqa: E402
from benchmarks.leaprec_tables import (CLAIMED, effective_options, figures_row,  # noqa: E402
                                       option_flags, summarize_models, summarize_plugins,
                                       summarize_sensitivity, summarize_split)
from benchmarks.machine import gpus_seen  # noqa: E402
from benchmarks.drivers import (add_run_arguments, exit_code,  # noqa: E402
                                resolve_run_arguments)
from benchmarks.periods import (built_or_given, read_another_build,  # noqa: E402
                               report_read_this_build)
from benchmarks.reports import ROOT, read_json, update_report, write_json  # noqa: E402
from benchmarks.runs import folder_gone, launch, run_pool, run_record  # noqa: E402

DATASETS = ("yelp-a", "amazon-beauty", "movielens-100k")
SEEDS = (0, 1, 2)
EXPERIMENTS = ("models", "plugins", "split", "sensitivity", "figures")
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
    effective = effective_options(shared)
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
        # K and granularity first: the sensitivity; runs start in this order
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
    # ... and of the val-phase models' (the train window's alone): at_equal_data
    train_step_rows = {p["name"]: p["rows"] for p in manifest.get("periods", [])
                       if p.get("window") == "train" and "rows" in p}
    return {"path": out, "built_seconds": built_seconds, "given": bool(given),
            "builder": manifest.get("builder"),
            "rows_out": manifest.get("rows_out"), "windows": manifest.get("windows"),
            "step_rows": step_rows or None, "train_step_rows": train_step_rows or None,
            "window_bounds": manifest.get("window_bounds"), "steps": steps,
            "granularity": manifest.get("granularity"), "digest": periods_digest(manifest),
            "instances": manifest.get("instances"), "excluded": manifest.get("excluded"),
            "vocab": manifest.get("vocab", {}).get("sizes")}


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
    options = effective_options(run.options)
    unit, cap = (("iterations", options["iterations"]) if parse_method(run.method)[0]
                 else ("epochs", options["epochs"]))
    return {"phase": phase, "done": len(phases.get(phase, {}).get("losses", [])),
            "cap": cap if phase == "val" else None, "unit": unit,
            "seconds": float(progress.get("seconds", 0))}


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
            "--out", _rel(run.out), "--seed", str(run.seed), *option_flags(run.options),
            *option_flags({"threads": threads})]
    resumed = run.partial
    if resumed:
        args.append("--resume")
    check_partial(run)
    os.makedirs(run.out, exist_ok=True)
    write_json(os.path.join(run.out, RUN_OPTIONS), run.expected_options())
    return launch(run, args, benchmark_command=command, resumed=resumed,
                  source=source_digest(), workers=workers, threads=threads)


def _mismatch(run: Run, metrics: dict, periods: str, same_build: bool = False) -> dict:
    """{field: recorded value} where a run's metrics are not those of `run` on `periods`;
    `same_build`: known to have read the build there now (the report says so)."""
    # The periods folder says which data it was: a --periods build of a file has no
    # registered dataset name.
    expected = {"protocol": "a", "method": run.method, "seed": run.seed}
    wrong = {k: metrics.get(k) for k, v in expected.items() if metrics.get(k) != v}
    if os.path.abspath(os.path.join(ROOT, metrics.get("periods") or "")) != \
            os.path.abspath(periods):
        wrong["periods"] = metrics.get("periods")
    elif not same_build and read_another_build(metrics, periods):
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


def from_report(runs: list, recorded: dict, periods: str, same_build: bool = False) -> dict:
    """{id: run} of the finished runs the report holds whose folder is gone (runs/
    cleaned, or the report made on another machine): their figures are kept rather than
    trained again. A folder that exists, finished or killed, is the run's own record.
    `same_build`: the report's runs read the build of `periods` there now."""
    kept = {}
    for run in runs:
        old = recorded.get(run.id)
        if old is not None and not os.path.exists(run.out) and \
                not _mismatch(run, old["metrics"], periods, same_build):
            kept[run.id] = folder_gone(old)
    return kept


def run_all(runs: list, periods: str, workers: int, desc: str, command: str,
            recorded: Optional[dict] = None, train_missing: bool = True,
            only: Optional[set] = None, seeds: Optional[set] = None,
            threads: Optional[int] = None, same_build: bool = False) -> tuple:
    """Runs what has no metrics.json yet (nor a record in the report, `recorded`, whose
    folder is gone), `workers` at a time, unless not `train_missing`; with `only`, the
    runs of those names alone; with `seeds`, of those seeds alone; `threads`: each run's
    --threads; `same_build`: the report's runs read the build of `periods` there now;
    ({id: run}, [failed], {ids reused})."""
    done = {r.id: load_run(r, periods) for r in runs if os.path.exists(r.metrics_path)}
    kept = from_report([r for r in runs if r.id not in done], recorded or {}, periods,
                       same_build)
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


# ------------------------------------------------------------------ main

def tabulate(name: str, record: dict, runs: dict, dataset: str, quick: bool,
             figures_dir: str, prefix: str, previous: Optional[dict] = None) -> dict:
    """An experiment's table and summary (and plots) from the runs its settings name:
    used for the experiments just run and again for kept ones whose runs were replaced.
    `previous`: the report's earlier record of the experiment, for what only a run's
    folder had (the figures' representations) where the folder is gone."""
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
        if table:
            record["png"] = f"{prefix}-sensitivity-{dataset}.png"
            plot_sensitivity(table, record["summary"], dataset,
                             os.path.join(figures_dir, record["png"]))
    elif name == "figures":
        record["summary"] = summarize_figures([r for _, rs in settings for r in rs],
                                              figures_dir, prefix, dataset,
                                              (previous or {}).get("summary"))
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
                                   args.threads,
                                   report_read_this_build(section.get("periods"), periods))
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
                                     prefix, section.get("experiments", {}).get(name))
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
                                                    quick, figures_dir, prefix, record)
    return section


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.leaprec",
        description="The LeapRec paper's evidence on protocol A: models, plug-ins, "
                    "GTL/OTL split, sensitivity, Figures 5 and 7.")
    add_run_arguments(parser, "leaprec", "a", DATASETS, SEEDS,
                      seeds_help="; the tables also keep the seeds the report already has; "
                                 "the figures use the first")
    parser.add_argument("--experiments", nargs="+", default=None, choices=EXPERIMENTS,
                        help=f"experiments to run (default: all: {' '.join(EXPERIMENTS)})")
    parser.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                        help=f"methods of the models experiment (default: {' '.join(MODELS)})")
    parser.add_argument("--threads", type=int, default=None,
                        help="each run's TensorFlow threads per pool (tfmeta train "
                             "--threads; default: one per core; benchmarks/results/"
                             "threads.md measures it)")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: tabulate the finished runs (a partly done "
                             "benchmark's tables, with the missing runs listed)")
    parser.add_argument("--only", nargs="+", default=None, metavar="RUN",
                        help="train only the planned runs of these names (e.g. "
                             "leaprec-quarter leaprec-k5); the others are tabulated if "
                             "finished, listed as missing if not (as with --report-only)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: movielens-100k, seed 0, tiny budgets ("
                             + " ".join(option_flags(QUICK["options"])) + "), 5 models, 2 "
                             "settings per split / sensitivity; results get a "
                             "leaprec-quick prefix")
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
    datasets, seeds, prefix, runs_dir = resolve_run_arguments(
        parser, args, "leaprec", "a", DATASETS, SEEDS, QUICK)
    experiments = [e for e in EXPERIMENTS if e in (args.experiments or EXPERIMENTS)]
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
        update_report(json_path, md_path, "leaprec", update, render_markdown)
        print(f"{dataset}: wrote {md_path}, {json_path}", file=sys.stderr, flush=True)
    return exit_code(failed)


if __name__ == "__main__":
    raise SystemExit(main())
