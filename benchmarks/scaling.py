"""How every cost grows with rows: pipeline, Embedding&MLP epoch, LeapRec iteration, export.

    python -m benchmarks.scaling                      # 1e5, 1e6, 1e7 synthetic rows
    python -m benchmarks.scaling --rows 1e5 1e6       # chosen sizes
    python -m benchmarks.scaling --resume             # reuse the steps already measured
    python -m benchmarks.scaling --quick              # 2e4 and 5e4 rows (smoke test)
    python -m benchmarks.scaling --steps leaprec --resume \
        --carry-over benchmarks/results/scaling.json   # re-measure one step, keep the rest

For each size, synthetic `user,item,ts` rows with yelp-a's temporal structure
(`benchmarks.synthetic`) are written to RUNS_DIR/rows-N/data.csv, then every step runs
in its own freshly started process (`python -m benchmarks.scaling --child STEP ...`,
from the repository root), so that its peak memory is its own:

    generate        the synthetic CSV (not a cost of the library; recorded for reference)
    pipeline-b      build_periods(protocol b, runner in-process): 31 equal-count periods
    pipeline-a      build_periods(protocol a, month steps, the last month test, the one
                    before it validation, --cut / --val-months from the data's span)
    epoch           one epoch of EmbeddingMLP (the protocol B driver's defaults: 8 dims,
                    batch 256, Adam 1e-3, op determinism) over all 31 periods with
                    tfmeta.meta.incremental.UpdateStrategy.fit
    epoch-lazy-adam the same epoch with `--optimizer lazy-adam` (tfmeta.optimizers.
                    LazyAdam, for tables of millions of ids); checkpoint for export
    epoch-profile   where an Embedding&MLP step's time goes (forward + backward vs the
                    optimizer's update, Adam vs SGD) on 50 batches held in memory
    leaprec         protocol A, method leaprec at the driver's defaults except
                    iterations=1: the val phase (train window) is loaded, ONE iteration
                    is timed alone (10 time steps x 11 inner batches of 1024, GTL + OTL
                    gnn-sa; it includes tracing the tf.functions), then a second walk
                    (already traced: the steady-state cost), the sampled validation
                    scoring, and full ranking up to --full-ranking-max-rows (it scores
                    every warm item per instance)
    leaprec-profile the same iteration costed from three of its time steps (where walking
                    every month takes hours): the first month (it traces), the first
                    again and the last (the largest graph), each with its inner steps;
                    per-month cost = fixed + per-interaction x the graph's interactions,
                    summed over the months, plus the trace and the meta update. Checked
                    against a full walk in the same process up to
                    --warm-iteration-max-rows; its checkpoint is exportable
    export-ctr      the trained EmbeddingMLP as a CtrServer SavedModel version
    export-leaprec  the trained LeapRec (GTL + OTL) as a RankingServer SavedModel version
                    (leaprec's checkpoint, else leaprec-profile's: the same variables)

Each child measures its timed part itself (wall, CPU seconds, peak RSS sampled every 50
ms with psutil, RSS at the start) and writes RUNS_DIR/rows-N/steps/STEP.json; the parent
adds the whole process's wall, CPU and peak RSS (wait4). With --resume, steps whose json
exists are not run again (a killed 1e7 run keeps its 1e5 and 1e6 figures).

Results: benchmarks/results/scaling.{md,json} and scaling.png (`scaling-quick.*` with
--quick): per size and cost the figures, and for each cost the exponent k of
cost ~ rows^k between consecutive sizes, the per-row cost ratio and a verdict.
"""
import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import psutil  # noqa: E402

from benchmarks import machine as machine_info, reports  # noqa: E402

REPO, RESULTS_DIR = reports.ROOT, reports.RESULTS_DIR
RUNS_DIR = os.path.join("runs", "scaling")        # relative to the repository root
DEFAULT_ROWS = (100_000, 1_000_000, 10_000_000)
QUICK_ROWS = (20_000, 50_000)
STEPS = ("generate", "pipeline-b", "pipeline-a", "epoch", "epoch-lazy-adam", "epoch-profile",
         "leaprec", "leaprec-profile", "export-ctr", "export-leaprec")
# Steps a step needs first (its inputs); a tuple among them: any one of those steps.
NEEDS = {"pipeline-b": ("generate",), "pipeline-a": ("generate",), "epoch": ("pipeline-b",),
         "epoch-lazy-adam": ("pipeline-b",),
         "epoch-profile": ("pipeline-b",), "leaprec": ("pipeline-a",),
         "leaprec-profile": ("pipeline-a",),
         "export-ctr": ("epoch-lazy-adam",),
         "export-leaprec": (("leaprec", "leaprec-profile"),)}  # either's checkpoint
SEED = 0
CTR_BATCH = 256            # IncrementalOptions.batch_size
PROFILE_BATCHES = 50
PROFILE_REPEATS = 3
FULL_RANKING_MAX_ROWS = 1_000_000
WARM_ITERATION_MAX_ROWS = 1_000_000
SAMPLE_SECONDS = 0.05
MIB = 1 << 20
# Growth tolerance: a cost is "linear or better" when k <= 1 + LINEAR_TOLERANCE.
LINEAR_TOLERANCE = 0.1

# The costs of the issue, as (key, label, step, field, unit).
COSTS = (
    ("pipeline_b_seconds", "pipeline B wall s", "pipeline-b", "seconds", "s"),
    ("pipeline_b_peak_rss", "pipeline B peak RSS MiB", "pipeline-b", "peak_rss_bytes", "B"),
    ("pipeline_a_seconds", "pipeline A wall s", "pipeline-a", "seconds", "s"),
    ("pipeline_a_peak_rss", "pipeline A peak RSS MiB", "pipeline-a", "peak_rss_bytes", "B"),
    ("epoch_seconds", "EmbeddingMLP epoch wall s", "epoch", "seconds", "s"),
    ("epoch_peak_rss", "EmbeddingMLP epoch peak RSS MiB", "epoch", "peak_rss_bytes", "B"),
    ("epoch_lazy_seconds", "EmbeddingMLP epoch (lazy-adam) wall s", "epoch-lazy-adam",
     "seconds", "s"),
    ("epoch_lazy_peak_rss", "EmbeddingMLP epoch (lazy-adam) peak RSS MiB", "epoch-lazy-adam",
     "peak_rss_bytes", "B"),
    ("leaprec_iteration_seconds", "LeapRec iteration wall s", "leaprec", "seconds", "s"),
    ("leaprec_warm_iteration_seconds", "LeapRec 2nd iteration (traced) wall s", "leaprec",
     "warm_iteration_seconds", "s"),
    ("leaprec_peak_rss", "LeapRec peak RSS MiB", "leaprec", "peak_rss_bytes", "B"),
    ("leaprec_estimated_seconds", "LeapRec iteration from 3 profiled months, estimated wall s",
     "leaprec-profile", "estimated_iteration_seconds", "s"),
    ("leaprec_profile_peak_rss", "LeapRec profiled months peak RSS MiB", "leaprec-profile",
     "peak_rss_bytes", "B"),
    # CPU seconds: steadier than wall seconds on a shared machine.
    ("pipeline_b_cpu_seconds", "pipeline B CPU s", "pipeline-b", "cpu_seconds", "s"),
    ("pipeline_a_cpu_seconds", "pipeline A CPU s", "pipeline-a", "cpu_seconds", "s"),
    ("epoch_cpu_seconds", "EmbeddingMLP epoch CPU s", "epoch", "cpu_seconds", "s"),
    ("epoch_lazy_cpu_seconds", "EmbeddingMLP epoch (lazy-adam) CPU s", "epoch-lazy-adam",
     "cpu_seconds", "s"),
    ("leaprec_iteration_cpu_seconds", "LeapRec iteration CPU s", "leaprec", "cpu_seconds",
     "s"),
    ("export_ctr_bytes", "EmbeddingMLP export bytes", "export-ctr", "export_bytes", "B"),
    ("export_leaprec_bytes", "LeapRec export bytes", "export-leaprec", "export_bytes", "B"),
)


# ------------------------------------------------------------------ measuring (child)

class Measure:
    """Wall seconds, CPU seconds and peak RSS (process + children, sampled in a thread)
    of the code inside `with Measure() as m:`."""

    def __init__(self, interval: float = SAMPLE_SECONDS):
        self.process = psutil.Process()
        self.memory = machine_info.PeakRss(interval)

    def __enter__(self):
        self.load_before = os.getloadavg()
        self.cpu0 = machine_info.cpu_seconds(self.process)
        self.memory.__enter__()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.started
        self.memory.__exit__(*exc)
        self.peak, self.baseline = self.memory.peak, self.memory.baseline
        self.cpu_seconds = machine_info.cpu_seconds(self.process) - self.cpu0
        self.load_after = os.getloadavg()
        return False

    def figures(self) -> dict:
        return {"seconds": self.seconds, "cpu_seconds": self.cpu_seconds,
                "peak_rss_bytes": self.peak, "baseline_rss_bytes": self.baseline,
                "rss_growth_bytes": self.peak - self.baseline,
                "loadavg_before": list(self.load_before),
                "loadavg_after": list(self.load_after)}


def _dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(path) for f in files)


def _paths(size_dir: str) -> dict:
    return {"csv": os.path.join(size_dir, "data.csv"),
            "b": os.path.join(size_dir, "periods-b"),
            "a": os.path.join(size_dir, "periods-a"),
            # the lazy-adam epoch's: it runs at every size (the export holds no slots)
            "ctr_checkpoint": os.path.join(size_dir, "epoch-lazy-adam", "model"),
            "leaprec_run": os.path.join(size_dir, "leaprec"),
            "leaprec_profile_run": os.path.join(size_dir, "leaprec-profile"),
            "exports": os.path.join(size_dir, "exports"),
            "steps": os.path.join(size_dir, "steps")}


def _read_step(size_dir: str, step: str) -> dict:
    return reports.read_json(os.path.join(_paths(size_dir)["steps"], f"{step}.json"))


def _write_json(path: str, data: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    reports.write_json(path, data)


def step_generate(size_dir: str, rows: int) -> dict:
    from benchmarks import synthetic
    fitted = synthetic.fit_source()
    with Measure() as m:
        summary = synthetic.write_csv(_paths(size_dir)["csv"], fitted, rows, SEED,
                                      progress=True)
    summary["path"] = os.path.relpath(summary["path"], size_dir)
    cut, val_months = synthetic.protocol_a_windows(summary["ts_min"], summary["ts_max"])
    return {**m.figures(), **summary, "cut": cut, "val_months": val_months}


def _build(size_dir: str, protocol: str) -> dict:
    import apache_beam  # noqa: F401  (imports before the clock, as pipeline_throughput)
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner  # noqa: F401
    from pipelines.options import BuildOptions
    from pipelines.periods import build_periods
    paths = _paths(size_dir)
    generated = _read_step(size_dir, "generate")
    extra = ({"cut": generated["cut"], "val_months": generated["val_months"]}
             if protocol == "a" else {})
    options = BuildOptions(input=paths["csv"], out=paths[protocol], protocol=protocol,
                           seed=SEED, overwrite=True, **extra)
    with open(paths["csv"], "rb") as f:  # into the page cache, like a second build
        while f.read(1 << 24):
            pass
    with Measure() as m:
        manifest = build_periods(options, runner="in-process")
    out = {**m.figures(), "rows_in": manifest["rows_in"], "rows_out": manifest["rows_out"],
           "rows_per_second": manifest["rows_in"] / m.seconds,
           "vocab": manifest["vocab"]["sizes"], "periods": len(manifest["periods"]),
           "output_bytes": _dir_bytes(paths[protocol]), "options": extra}
    if protocol == "a":
        out["instances"] = manifest.get("instances")
        out["windows"] = manifest.get("windows")
    else:
        out["examples"] = sum(p["rows"] for p in manifest["periods"])
    return out


def step_pipeline_b(size_dir: str, rows: int) -> dict:
    return _build(size_dir, "b")


def step_pipeline_a(size_dir: str, rows: int) -> dict:
    return _build(size_dir, "a")


def _ctr_model(data):
    from tfmeta.models.embedding_mlp import EmbeddingMLP
    from tfmeta.training.incremental import IncrementalOptions
    return EmbeddingMLP.from_period_dataset(
        data, embedding_dim=IncrementalOptions().embedding_dim)


def _parameters(variables) -> int:
    return int(sum(int(v.shape.num_elements()) for v in variables))


def step_epoch(size_dir: str, rows: int, optimizer: str = "adam") -> dict:
    import tensorflow as tf
    from tqdm.auto import tqdm
    from tfmeta.data.periods import PeriodDataset
    from tfmeta.meta.incremental import UpdateStrategy
    from tfmeta.training.incremental import IncrementalOptions
    paths = _paths(size_dir)
    defaults = IncrementalOptions()
    tf.keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()  # as train_incremental
    data = PeriodDataset(paths["b"])
    periods = [p["index"] for p in data.periods]
    examples = sum(p["rows"] for p in data.periods)
    with Measure() as build:
        model = _ctr_model(data)
        strategy = UpdateStrategy(model, learning_rate=defaults.learning_rate, epochs=1,
                                  optimizer=optimizer)
    dataset = data.dataset(periods=periods, batch_size=CTR_BATCH, shuffle=True,
                           seed=SEED * 1000 + max(periods))
    batches = math.ceil(examples / CTR_BATCH)
    bar = tqdm(dataset, total=batches, desc=f"epoch ({optimizer}) {rows:,} rows",
               unit="batch", mininterval=20, file=sys.stderr)
    with Measure() as m:
        loss = strategy.fit(bar)
    bar.close()
    if optimizer == "lazy-adam":
        tf.train.Checkpoint(model=model).write(paths["ctr_checkpoint"])
    return {**m.figures(), "model_build": build.figures(), "loss": loss,
            "optimizer": optimizer,
            "examples": examples, "batches": batches, "batch_size": CTR_BATCH,
            "periods": len(periods),
            "parameters": _parameters(model.trainable_variables),
            "embedding_rows": {"users": int(model.user_embeddings.shape[0]),
                               "items": int(model.item_embeddings.shape[0])},
            "dense_parameters": _parameters(model.dense_variables)}


def step_epoch_profile(size_dir: str, rows: int) -> dict:
    """Per-step milliseconds (best of PROFILE_REPEATS, wall and process CPU) of the
    Embedding&MLP training step, split up: the whole step, forward + backward alone, and
    the update alone (gradients computed once), with the driver's Adam, with Keras's SGD
    (momentum 0) and with tfmeta's LazyAdam (`--optimizer lazy-adam`: it only writes
    the rows a batch touched); the update is also timed on the embedding tables alone. Plus one
    pass over the input pipeline alone (no model)."""
    import tensorflow as tf
    from tfmeta.data.periods import PeriodDataset
    from tfmeta.meta.incremental import UpdateStrategy
    from tfmeta.models.embedding_mlp import bce_loss
    from tfmeta.optimizers import LazyAdam
    paths = _paths(size_dir)
    tf.keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    data = PeriodDataset(paths["b"])
    periods = [p["index"] for p in data.periods]
    held = list(data.dataset(periods=periods, batch_size=CTR_BATCH, shuffle=True,
                             seed=SEED).take(PROFILE_BATCHES))

    def per_step(fn) -> dict:
        for batch in held[:5]:  # trace and warm up
            fn(batch)
        wall = cpu = math.inf
        for _ in range(PROFILE_REPEATS):
            w0, c0 = time.perf_counter(), time.process_time()
            for batch in held:
                out = fn(batch)
            if out is not None:
                tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)
            wall = min(wall, (time.perf_counter() - w0) / len(held))
            cpu = min(cpu, (time.process_time() - c0) / len(held))
        return {"wall": wall * 1000, "cpu": cpu * 1000}

    out = {"batches_held": len(held), "repeats": PROFILE_REPEATS, "ms_per_step": {}}
    for name, make in (("adam", lambda: tf.keras.optimizers.Adam(1e-3)),
                       ("keras_sgd", lambda: tf.keras.optimizers.SGD(1e-3)),
                       ("lazy_adam", lambda: LazyAdam(1e-3))):
        model = _ctr_model(data)
        strategy = UpdateStrategy(model)
        strategy.optimizer = make()
        strategy.optimizer.build(model.trainable_variables)
        variables = model.trainable_variables
        tables = model.embedding_tables

        def gradients(batch):
            with tf.GradientTape() as tape:
                loss = bce_loss(model(batch, training=True), batch["label"])
            return tape.gradient(loss, variables)

        step = tf.function(strategy._step, reduce_retracing=True)
        grads_fn = tf.function(gradients, reduce_retracing=True)
        fixed = grads_fn(held[0])
        apply_all = tf.function(
            lambda: strategy.optimizer.apply_gradients(zip(fixed, variables)))
        apply_tables = tf.function(
            lambda: strategy.optimizer.apply_gradients(zip(fixed[:len(tables)], tables)))
        figures = {"train_step": per_step(step), "forward_backward": per_step(grads_fn),
                   "apply_gradients": per_step(lambda _b: apply_all()),
                   "apply_gradients_tables_only": per_step(lambda _b: apply_tables())}
        out["ms_per_step"][name] = figures
        out["embedding_gradient_types"] = [type(g).__name__ for g in fixed[:len(tables)]]
    examples = sum(p["rows"] for p in data.periods)
    with Measure() as m:
        count = 0
        for batch in data.dataset(periods=periods, batch_size=CTR_BATCH, shuffle=True,
                                  seed=SEED):
            count += 1
    out["input_only"] = {**m.figures(), "batches": count, "examples": examples}
    model = _ctr_model(data)
    out["embedding_rows"] = int(model.user_embeddings.shape[0] + model.item_embeddings.shape[0])
    out["parameters"] = _parameters(model.trainable_variables)
    return out


# RankingOptions fields changed from the driver's defaults (tests make LeapRec tiny
# with --leaprec-option; the benchmark itself only sets iterations=1).
LEAPREC_OVERRIDES: dict = {}
WARM_MAX = [WARM_ITERATION_MAX_ROWS]


def parse_override(text: str) -> tuple:
    """'key=value' -> (key, value), the value read as JSON when it parses (numbers)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"want KEY=VALUE, not {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _leaprec_options():
    from tfmeta.training.ranking import RankingOptions
    return RankingOptions(**{"method": "leaprec", "seed": SEED, "iterations": 1,
                             **LEAPREC_OVERRIDES})


def _leaprec_phase(periods_dir: str, run_dir: str, options) -> tuple:
    """(the val phase of a fresh LeapRec run in run_dir, its PeriodDataset, the Measure
    of loading it: interactions, histories, models)."""
    import tensorflow as tf
    from tfmeta.data import interactions as inter
    from tfmeta.data.periods import PeriodDataset
    from tfmeta.training.ranking import PHASES, Phase
    shutil.rmtree(run_dir, ignore_errors=True)
    tf.config.experimental.enable_op_determinism()  # as train_ranking
    data = PeriodDataset(periods_dir)
    name, windows = PHASES[0]  # the val phase: train on the train window
    with Measure() as load:
        everything = inter.read_interactions(data, ("train", "val", "test"))
        timelines = inter.UserTimelines(everything["user"], everything["item"],
                                        everything["ts"])
        phase = Phase(data, name, windows, options, run_dir, timelines, everything)
    return phase, data, load


def _leaprec_sizes(phase) -> dict:
    return {"time_steps": phase.part.num_steps, "train_interactions": len(phase.part),
            "parameters": _parameters(phase.scorer.trainable_variables),
            "embedding_rows": int(sum(int(m.embeddings.shape[0])
                                      for m in phase.scorer.models))}


def step_leaprec(size_dir: str, rows: int, full_ranking_max_rows: int,
                 warm_iteration_max_rows: int = WARM_ITERATION_MAX_ROWS) -> dict:
    paths = _paths(size_dir)
    options = _leaprec_options()
    phase, data, load = _leaprec_phase(paths["a"], paths["leaprec_run"], options)
    losses = []
    units = phase.train(losses)
    with Measure() as m:
        next(units)  # one iteration: the generator yields once it is done
    with Measure() as save:
        for _ in units:  # the checkpoint of the iteration
            pass
    # The first iteration traces every tf.function (a fixed cost that dominates small
    # sizes); a second walk with the same code, untimed by the driver and never
    # checkpointed, shows the steady-state cost of an iteration.
    import numpy as np
    partial = os.path.join(paths["steps"], "leaprec.partial.json")
    _write_json(partial, {**m.figures(), "load": load.figures(), "loss": losses[0]})
    warm = None
    if rows <= warm_iteration_max_rows:
        with Measure() as warm:
            warm_losses = phase._iteration(np.random.default_rng([options.seed, 1, 0]))
    with Measure() as sampled:
        figures = phase.evaluate(full_ranking=False)
    out = {**m.figures(), "load": load.figures(), "checkpoint": save.figures(),
           **({"warm_iteration": warm.figures(), "warm_iteration_seconds": warm.seconds,
               "warm_loss": float(np.mean(warm_losses))} if warm else {}),
           "sampled_evaluation": {**sampled.figures(), "instances": figures["instances"]},
           "loss": losses[0], **_leaprec_sizes(phase),
           "inner_steps": options.inner_steps, "batch_size": options.batch_size,
           "sampled_HR@10": figures["sampled"].get("HR@10")}
    if rows <= full_ranking_max_rows:
        with Measure() as full:
            figures = phase.evaluate(full_ranking=True)
        out["full_evaluation"] = {**full.figures(), "instances": figures["instances"],
                                  "items": len(data.vocabulary("items"))}
    return out


def iteration_estimate(cold_first: float, warm_first: float, warm_last: float,
                       interactions_upto: list, end_seconds: float) -> dict:
    """An iteration's seconds from three measured months. Every month runs the same
    number of inner steps, so its cost is fixed + per_interaction x the interactions of
    its graph (months <= t): the line through the warm first and last months, summed
    over interactions_upto (one count per month), plus the first month's tracing (cold -
    warm) and the meta update at the end."""
    first, last = interactions_upto[0], interactions_upto[-1]
    slope = (warm_last - warm_first) / (last - first) if last > first else 0.0
    fixed = warm_first - slope * first
    walk = sum(fixed + slope * n for n in interactions_upto)
    trace = cold_first - warm_first
    return {"per_month_fixed_seconds": fixed, "per_interaction_seconds": slope,
            "trace_seconds": trace, "estimated_walk_seconds": walk,
            "estimated_iteration_seconds": trace + walk + end_seconds}


def step_leaprec_profile(size_dir: str, rows: int,
                         warm_iteration_max_rows: int = WARM_ITERATION_MAX_ROWS) -> dict:
    import numpy as np
    paths = _paths(size_dir)
    options = _leaprec_options()
    phase, _, load = _leaprec_phase(paths["a"], paths["leaprec_profile_run"], options)
    part, last = phase.part, phase.part.num_steps - 1
    counts = np.bincount(part.step, minlength=part.num_steps)
    upto = [int(n) for n in np.cumsum(counts)]
    items = phase.popular_items()  # as the timed iteration records them after each month
    rng = np.random.default_rng([options.seed, 0, 0])
    months = []
    with Measure() as whole:
        phase.learner.begin_iteration()
        for label, t in (("cold", 0), ("warm", 0), ("warm", last)):
            with Measure() as m:
                loss = phase.time_step(t, rng)
                phase._item_representations(items)
            months.append({"month": part.step_labels[t], "time_step": t, "kind": label,
                           "interactions_upto": upto[t], "loss": loss, **m.figures()})
        with Measure() as end:
            phase.learner.end_iteration()
    est = iteration_estimate(months[0]["seconds"], months[1]["seconds"],
                             months[2]["seconds"], upto, end.seconds)
    cpu = iteration_estimate(months[0]["cpu_seconds"], months[1]["cpu_seconds"],
                             months[2]["cpu_seconds"], upto, end.cpu_seconds)
    phase.done.assign(1)
    phase.manager.save()  # for export-leaprec: the same variables as an iteration's
    out = {**whole.figures(), "load": load.figures(), "months": months,
           "end_iteration": end.figures(), "interactions_upto": upto, **est,
           "estimated_iteration_cpu_seconds": cpu["estimated_iteration_seconds"],
           **_leaprec_sizes(phase), "inner_steps": options.inner_steps,
           "batch_size": options.batch_size}
    if rows <= warm_iteration_max_rows:  # the estimate against a walk of every month
        phase.done.assign(0)  # an iteration that records representations, as timed
        with Measure() as walk:
            phase._iteration(np.random.default_rng([options.seed, 1, 0]))
        out["checked_walk"] = walk.figures()
        out["estimate_over_walk"] = est["estimated_walk_seconds"] / walk.seconds
    return out


def _export(root: str, build) -> dict:
    from tfmeta.export.run import export_server
    shutil.rmtree(root, ignore_errors=True)
    with Measure() as m:
        version_dir = export_server(build, root, keep=1)
    return {**m.figures(), "export_bytes": _dir_bytes(version_dir),
            "variables_bytes": _dir_bytes(os.path.join(version_dir, "variables")),
            "assets_bytes": _dir_bytes(os.path.join(version_dir, "assets"))}


def step_export_ctr(size_dir: str, rows: int) -> dict:
    import tensorflow as tf
    from tfmeta.data.periods import PeriodDataset
    from tfmeta.export.ctr import CtrServer
    paths = _paths(size_dir)
    data = PeriodDataset(paths["b"])
    model = _ctr_model(data)
    tf.train.Checkpoint(model=model).read(paths["ctr_checkpoint"]).expect_partial()
    out = _export(os.path.join(paths["exports"], "ctr"),
                  lambda assets: CtrServer(model, assets))
    out["parameters"] = _parameters(model.trainable_variables)
    out["parameter_bytes"] = 4 * out["parameters"]
    return out


def step_export_leaprec(size_dir: str, rows: int) -> dict:
    import tensorflow as tf
    from tfmeta.data import interactions as inter
    from tfmeta.data.periods import PeriodDataset
    from tfmeta.export.ranking import RankingServer
    from tfmeta.meta import leaprec
    from tfmeta.training.ranking import build_models
    paths = _paths(size_dir)
    data = PeriodDataset(paths["a"])
    options = _leaprec_options()
    scorer = leaprec.Scorer(list(build_models(options, data, options.seed).values()))
    for step, run in (("leaprec", "leaprec_run"), ("leaprec-profile", "leaprec_profile_run")):
        latest = tf.train.latest_checkpoint(os.path.join(paths[run], "val", "checkpoints"))
        if latest:
            break
    else:
        raise FileNotFoundError(f"no LeapRec checkpoint under {size_dir}: run the leaprec "
                                "or leaprec-profile step first")
    tf.train.Checkpoint(models=scorer.models).restore(latest).expect_partial() \
        .assert_existing_objects_matched()
    train = inter.read_interactions(data, ("train",))
    scorer.set_graph(train["user"], train["item"])
    out = _export(os.path.join(paths["exports"], "leaprec"),
                  lambda assets: RankingServer(scorer.models, data.vocabulary("users"),
                                               data.vocabulary("items"), assets))
    out["parameters"] = _parameters(scorer.trainable_variables)
    out["parameter_bytes"] = 4 * out["parameters"]
    out["checkpoint_of"] = step
    return out


def run_child(step: str, size_dir: str, rows: int, full_ranking_max_rows: int) -> dict:
    """Runs one step in this process; writes and returns its json."""
    import tensorflow as tf
    functions = {"generate": step_generate, "pipeline-b": step_pipeline_b,
                 "pipeline-a": step_pipeline_a, "epoch": step_epoch,
                 "epoch-lazy-adam": functools.partial(step_epoch, optimizer="lazy-adam"),
                 "epoch-profile": step_epoch_profile,
                 "leaprec": lambda d, r: step_leaprec(d, r, full_ranking_max_rows,
                                                      WARM_MAX[0]),
                 "leaprec-profile": lambda d, r: step_leaprec_profile(d, r, WARM_MAX[0]),
                 "export-ctr": step_export_ctr, "export-leaprec": step_export_leaprec}
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    result = functions[step](size_dir, rows)
    result.update(step=step, rows=rows, started=started,
                  gpus=len(tf.config.list_physical_devices("GPU")))
    _write_json(os.path.join(_paths(size_dir)["steps"], f"{step}.json"), result)
    return result


# ------------------------------------------------------------------ the parent

def carry_over(report_path: str, sizes: list, runs_dir: str, running: list) -> list:
    """Writes the step records of an earlier report for the steps not in `running` (and
    not measured in runs_dir already); returns a note per size saying which."""
    earlier = reports.read_json(report_path)
    machine = earlier.get("machine", {}).get("cpu_model", "an unrecorded machine")
    notes = []
    for r in sizes:
        steps_dir = _paths(size_dir_of(runs_dir, r))["steps"]
        taken = []
        for step, record in sorted(earlier["results"].get(str(r), {}).items()):
            path = os.path.join(steps_dir, f"{step}.json")
            if step in running or os.path.exists(path):
                continue
            _write_json(path, {**record, "carried_over_from": {
                "report": os.path.basename(report_path), "date": earlier["date"],
                "machine": machine}})
            taken.append(step)
        if taken:
            notes.append(f"{r:,} rows: {', '.join(taken)} carried over from the report of "
                         f"{earlier['date']} on {machine} (not measured again by this "
                         "invocation)")
    return notes


def _alternatives(need) -> tuple:
    """A NEEDS entry as the steps of which one is enough."""
    return need if isinstance(need, tuple) else (need,)


def size_dir_of(runs_dir: str, rows: int) -> str:
    return os.path.join(runs_dir, f"rows-{rows}")


def run_step(step: str, size_dir: str, rows: int, full_ranking_max_rows: int,
             in_process: bool = False) -> dict:
    """Runs one step in a new process (cwd: the repository root); returns its json plus
    the process's own figures. Raises RuntimeError when it fails. in_process: in this
    process instead (tests: no isolation, peak RSS shared between steps)."""
    if in_process:
        with Measure() as m:
            result = run_child(step, size_dir, rows, full_ranking_max_rows)
        result["process"] = {"returncode": 0, "in_process": True,
                             "process_seconds": m.seconds, "cpu_seconds": m.cpu_seconds,
                             "max_rss_bytes": m.peak, "loadavg_after": m.figures()[
                                 "loadavg_after"]}
        _write_json(os.path.join(_paths(size_dir)["steps"], f"{step}.json"), result)
        return result
    os.makedirs(os.path.join(size_dir, "logs"), exist_ok=True)
    log_path = os.path.join(size_dir, "logs", f"{step}.log")
    cmd = [sys.executable, "-m", "benchmarks.scaling", "--child", step,
           "--size-dir", os.path.abspath(size_dir), "--child-rows", str(rows),
           "--full-ranking-max-rows", str(full_ranking_max_rows)]
    cmd += [f"--leaprec-option={k}={json.dumps(v)}" for k, v in LEAPREC_OVERRIDES.items()]
    cmd += ["--warm-iteration-max-rows", str(WARM_MAX[0])]
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n=== {datetime.datetime.now().isoformat(timespec='seconds')} "
                  f"{shlex.join(cmd)}\n")
        log.flush()
        process = machine_info.run_measured(cmd, REPO, log)
    if process["returncode"] != 0:
        raise RuntimeError(f"step {step} ({rows:,} rows) failed with exit code "
                           f"{process['returncode']}; see {log_path}")
    result = _read_step(size_dir, step)
    result["process"] = process
    _write_json(os.path.join(_paths(size_dir)["steps"], f"{step}.json"), result)
    return result


def growth(sizes: list, results: dict) -> list:
    """Per cost and consecutive pair of sizes: exponent, per-row ratio, verdict."""
    out = []
    for key, label, step, field, unit in COSTS:
        points = [(rows, results[rows][step][field]) for rows in sizes
                  if step in results.get(rows, {}) and results[rows][step].get(field)]
        for (r0, c0), (r1, c1) in zip(points, points[1:]):
            k = math.log(c1 / c0) / math.log(r1 / r0)
            ratio = (c1 / r1) / (c0 / r0)
            out.append({"cost": key, "label": label, "from_rows": r0, "to_rows": r1,
                        "from": c0, "to": c1, "exponent": k, "per_row_ratio": ratio,
                        "linear_or_better": k <= 1 + LINEAR_TOLERANCE})
    return out


def _fmt_cost(value, unit) -> str:
    if unit == "B" and value >= MIB:
        return f"{value / MIB:,.1f} MiB"
    if unit == "B":
        return f"{value:,.0f} B"
    return f"{value:,.1f} s" if value >= 10 else f"{value:,.2f} s"


def estimate(sizes: list, results: dict, target: int) -> dict:
    """Seconds each timed step would take at `target` rows, extrapolated from the two
    largest measured sizes with their exponent (a rough planning figure)."""
    out = {}
    for step in STEPS:
        points = [(r, results[r][step]["process"]["process_seconds"]) for r in sizes
                  if step in results.get(r, {}) and r < target]
        if len(points) < 2:
            continue
        (r0, c0), (r1, c1) = points[-2:]
        k = max(math.log(c1 / c0) / math.log(r1 / r0), 0.0)
        out[step] = c1 * (target / r1) ** k
    return out


def plot(sizes: list, results: dict, path: str) -> None:
    plt = reports.pyplot()
    groups = (("wall seconds", "wall"), ("CPU seconds", "cpu"), ("peak RSS (MiB)", "rss"),
              ("export size (MiB)", "export"))

    def kind_of(key, unit):
        if unit == "s":
            return "cpu" if "cpu" in key else "wall"
        return "rss" if "rss" in key else "export"

    fig, axes = plt.subplots(1, len(groups), figsize=(19, 5))
    for ax, (title, kind) in zip(axes, groups):
        for key, label, step, field, unit in COSTS:
            if kind_of(key, unit) != kind:
                continue
            pts = [(r, results[r][step][field]) for r in sizes
                   if step in results.get(r, {}) and results[r][step].get(field)]
            if not pts:
                continue
            xs = [p[0] for p in pts]
            ys = [p[1] / (MIB if unit == "B" else 1) for p in pts]
            ax.plot(xs, ys, marker="o", label=label)
            # slope-1 reference through the first point: linear growth
            ax.plot([xs[0], xs[-1]], [ys[0], ys[0] * xs[-1] / xs[0]], ls=":", lw=0.8,
                    color=ax.lines[-1].get_color())
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows")
        ax.set_title(f"{title} (dotted: linear)")
        ax.grid(True, which="both", lw=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    reports.save_png(fig, path)


def _wall_only(growth: list, cost: str) -> str:
    """For a wall-seconds cost whose CPU seconds grow linearly between the same sizes,
    the CPU exponents as text; '' otherwise."""
    cpu_cost = cost.replace("_seconds", "_cpu_seconds")
    if cost == cpu_cost or not cost.endswith("_seconds"):
        return ""
    wall = [g for g in growth if g["cost"] == cost and not g["linear_or_better"]]
    cpu = {(g["from_rows"], g["to_rows"]): g for g in growth if g["cost"] == cpu_cost}
    pairs = [cpu.get((g["from_rows"], g["to_rows"])) for g in wall]
    if not pairs or not all(p and p["linear_or_better"] for p in pairs):
        return ""
    return ", ".join(f"CPU k = {p['exponent']:.2f} from {p['from_rows']:,} to "
                     f"{p['to_rows']:,} rows" for p in pairs)


def explain(report: dict) -> list:
    """Where a cost is super-linear: the causes this benchmark measured (epoch-profile,
    leaprec evaluation), with their figures; other super-linear costs are flagged as not
    investigated."""
    sizes, results = report["sizes"], report["results"]
    notes = []
    bad = {g["cost"] for g in report["growth"] if not g["linear_or_better"]}
    profiled = [r for r in sizes if "epoch-profile" in results.get(r, {})
                and "lazy_adam" in results[r]["epoch-profile"]["ms_per_step"]]
    if profiled:
        def ms(r, opt, part):
            return results[r]["epoch-profile"]["ms_per_step"][opt][part]["cpu"]

        rows_txt = "; ".join(
            f"{r:,} rows ({results[r]['epoch-profile']['embedding_rows']:,} embedding rows): "
            f"forward + backward {ms(r, 'adam', 'forward_backward'):.2f} ms, update of "
            f"the embedding tables: Adam {ms(r, 'adam', 'apply_gradients_tables_only'):.2f}, "
            f"Keras SGD {ms(r, 'keras_sgd', 'apply_gradients_tables_only'):.2f}, LazyAdam "
            f"{ms(r, 'lazy_adam', 'apply_gradients_tables_only'):.2f} ms; whole step "
            f"Adam {ms(r, 'adam', 'train_step'):.2f}, LazyAdam "
            f"{ms(r, 'lazy_adam', 'train_step'):.2f} ms"
            for r in profiled)
        first, last = profiled[0], profiled[-1]
        table_growth = (results[last]["epoch-profile"]["embedding_rows"]
                        / results[first]["epoch-profile"]["embedding_rows"])

        def grew(opt, part):
            return ms(last, opt, part) / ms(first, opt, part)

        epoch = [g for g in report["growth"]
                 if g["cost"] in ("epoch_seconds", "epoch_cpu_seconds")]
        k_txt = ", ".join(f"{'CPU' if 'cpu' in g['cost'] else 'wall'} k = "
                          f"{g['exponent']:.2f} from {g['from_rows']:,} to "
                          f"{g['to_rows']:,}" for g in epoch)
        text = (f"- EmbeddingMLP epoch ({k_txt}). Measured by `epoch-profile` (CPU ms "
                f"per step, best of {PROFILE_REPEATS} passes over {PROFILE_BATCHES} "
                f"batches of {CTR_BATCH} held in memory): {rows_txt}. From {first:,} to "
                f"{last:,} rows the tables grow {table_growth:.1f}x; per step, forward + "
                f"backward grows {grew('adam', 'forward_backward'):.1f}x and LazyAdam's "
                f"update {grew('lazy_adam', 'apply_gradients_tables_only'):.1f}x (both "
                f"follow the batch), but Adam's update grows "
                f"{grew('adam', 'apply_gradients_tables_only'):.1f}x and Keras SGD's "
                f"{grew('keras_sgd', 'apply_gradients_tables_only'):.1f}x. Cause: the "
                "embedding gradients are IndexedSlices (only the batch's rows), but "
                "tf_keras 2.21's optimizers touch every row on every step: Adam's "
                "`update_step` (sparse branch) decays the whole m and v "
                "(`m.assign_add(-m * (1 - beta_1))`) and rewrites the whole variable "
                "(`variable.assign_sub((m * alpha) / (tf.sqrt(v) + epsilon_hat))`); SGD "
                "keeps a momentum slot even at momentum 0 and does `m.assign(m * "
                "momentum)` and `variable.assign_add(m)`. A step costs O(users + items), "
                "an epoch has O(rows) steps, and ids grow with rows, so the epoch is "
                "O(rows x ids) = O(rows^2) once the tables dominate the step; the input "
                "pipeline alone (`input_only` in the json) stays linear. Remedy: "
                "`--optimizer lazy-adam` (`tfmeta.optimizers.LazyAdam`: m, v and the "
                "variable updated with `scatter_*` on the batch's rows only, as TF "
                "Addons' LazyAdam did), whose update follows the batch, as measured "
                "above. It changes the update of rows absent from a batch (their moments "
                "do not decay, they do not move), so Adam stays the default and the "
                "published ASMG results stand; use lazy-adam for tables of millions of "
                "ids.")
        if {"epoch_seconds", "epoch_cpu_seconds"} & bad:
            notes.append(text)
        else:
            notes.append(text.replace("- EmbeddingMLP epoch (", "- EmbeddingMLP epoch "
                                      "(linear over these sizes, but watch the update; "))
    full = [r for r in sizes if "full_evaluation" in results.get(r, {}).get("leaprec", {})]
    if full:
        a, b = full[0], full[-1]
        fa, fb = (results[a]["leaprec"]["full_evaluation"],
                  results[b]["leaprec"]["full_evaluation"])
        measured = (f"{fa['seconds']:.1f} s at {a:,} rows ({fa['instances']:,} "
                    f"instances x {fa['items']:,} items)")
        if b != a:
            k = math.log(fb["seconds"] / fa["seconds"]) / math.log(b / a)
            measured += (f" -> {fb['seconds']:.1f} s at {b:,} rows ({fb['instances']:,} x "
                         f"{fb['items']:,}), t ~ rows^{k:.2f}")
        larger = [r for r in sizes if r > b and "pipeline-a" in results.get(r, {})]
        guess = ""
        if larger:
            r = larger[0]
            inst = results[r]["pipeline-a"]["instances"]["val"]
            items = results[r]["pipeline-a"]["vocab"]["items"]
            scale = inst * items / (fb["instances"] * fb["items"])
            guess = (f" At {r:,} rows ({inst:,} x {items:,}) that is about {scale:.0f}x the "
                     f"work of {b:,} rows (about {fb['seconds'] * scale / 60:.0f} min at the "
                     "same speed), so it was not run there.")
        notes.append(
            f"- LeapRec full-ranking evaluation (not part of the iteration; reported "
            f"apart): {measured}. PROTOCOLS.md A.8 scores every warm item for every "
            "instance (`Scorer.all_items`, and `UserTimelines.mask` builds a [batch, "
            "items] mask per batch), so it costs instances x items, both proportional to "
            "rows: quadratic in rows by the metric's definition, not a defect. Measured "
            f"up to {report['full_ranking_max_rows']:,} rows.{guess}")
    explained = {"epoch_seconds", "epoch_cpu_seconds"} if profiled else set()
    leap = [g for g in report["growth"] if g["cost"].startswith("leaprec_")
            and g["cost"].endswith("seconds")]
    if leap:
        def above_libraries(r):  # GiB of a LeapRec step's peak above its start
            step = results[r].get("leaprec") or results[r]["leaprec-profile"]
            return (step["peak_rss_bytes"] - step["load"]["baseline_rss_bytes"]) / (1 << 30)
        memory = [r for r in sizes if {"leaprec", "leaprec-profile"} & set(results[r])]
        notes.append(
            "- LeapRec iteration: "
            + ", ".join(f"{g['label']} k = {g['exponent']:.2f} ({g['from_rows']:,} -> "
                        f"{g['to_rows']:,})" for g in leap)
            + ". An iteration is a fixed number of minibatches (time steps x (K + 1) "
            "batches of 1024, each through two GCN + self-attention models), so the "
            "self-attention over 1024 x 51 tokens per batch is a cost that does not "
            "grow with rows and still weighs at these sizes (hence k below 1); the parts "
            "that grow with rows are the graph propagation (edges) and the dense "
            "per-step work on the embedding tables (Leap's trajectory terms, Adam), both "
            "O(rows) per step for a fixed step count: linear at most. Memory is linear "
            "too but large: the peak RSS above the libraries was "
            + ", ".join(f"{above_libraries(r):.1f} GiB at {r:,} rows" for r in memory)
            + ".")
    for cost in sorted(bad - explained):
        wall_only = _wall_only(report["growth"], cost)
        if wall_only:
            notes.append(f"- {cost}: super-linear in wall seconds only ({wall_only}): the "
                         "process waited for a core on the shared machine.")
            continue
        notes.append(f"- {cost}: super-linear between some sizes; not investigated by this "
                     "benchmark (see the growth table: small exponents above "
                     f"1 + {LINEAR_TOLERANCE} between small sizes are often start-up "
                     "costs shrinking or noise from the shared machine).")
    return notes


def _of(results: dict, step: str, field: str) -> str:
    """A step's integer figure for a table cell; '-' when the step did not run."""
    value = results.get(step, {}).get(field)
    return "-" if value is None else f"{value:,}"


def render_markdown(report: dict) -> str:
    sizes, results = report["sizes"], report["results"]
    out = [
        "# Scaling: cost vs rows (synthetic data with yelp-a's temporal structure)",
        "",
        f"- Date: {report['date']}",
        f"- Command: `{report['command']}` (from the repository root)",
        *machine_info.header_lines(report["machine"], report["gpus_seen_by_tensorflow"]),
        "- Load: the steps table gives each step's CPU/wall and the load average around "
        "it; where other work held the cores, wall seconds include waiting for one, so "
        "compare exponents, ratios and CPU seconds (the notes say what else ran).",
        "- Data: `benchmarks.synthetic` fitted on yelp-a (seed 0): users and items in "
        "proportion to rows, heavy-tailed activity and popularity, items born and rising "
        "and falling over the real span (2019-01-01 .. 2019-12-13), the real per-day "
        "volume. Protocol A windows: the last month is test, the one before validation.",
        "- Each step ran in its own process; figures are of the timed part (imports, "
        "data loading before it excluded) unless noted; peak RSS is sampled every 50 ms "
        "and includes the ~0.6-1 GiB of imported libraries.",
        *([f"- LeapRec options changed beyond iterations=1: {report['leaprec_overrides']}"
           " (not the driver's defaults)"] if report.get("leaprec_overrides") else []),
        *(["- Steps ran in ONE process (`--in-process`): figures are not isolated, a "
           "smoke test only."] if report.get("in_process") else []),
        "",
        "## What each cost measures",
        "",
        "- pipeline B / A: `build_periods(BuildOptions(input=data.csv, protocol=...), "
        "runner='in-process')` (FnApiRunner), the whole call.",
        f"- EmbeddingMLP epoch: `UpdateStrategy.fit` over `PeriodDataset.dataset` of all "
        f"31 protocol B periods, batch {CTR_BATCH}, Adam 1e-3, 8 dims, op determinism "
        "(the protocol B driver's defaults); the model's construction is reported apart.",
        "- LeapRec iteration: `tfmeta.training.ranking.Phase` of the val phase (train "
        "window), method leaprec at `RankingOptions` defaults except iterations=1: one "
        "walk over the training months, K=10 inner steps (11 batches of 1024) per month, "
        "GTL + OTL gnn-sa of 64 dims, the graph of months <= t rebuilt each month, plus "
        "the popular items' representations the last iteration records; the first "
        "iteration includes tracing every tf.function, so a second walk (already traced, "
        "no representations) is timed too. Loading the interactions (histories), the "
        "checkpoint and the scoring are reported apart.",
        "- LeapRec iteration from 3 profiled months (`leaprec-profile`, where a walk of "
        "every month would take hours): the same phase, the first month timed twice "
        "(cold: it traces; warm) and the last month (the largest graph) once, each with "
        "its K inner steps and representations; a month's cost is taken as fixed + "
        "per-interaction x its graph's interactions (the line through the two warm "
        "months), summed over the months, plus the tracing and the meta update. Where a "
        "full walk also ran in the same process, 'estimate / walk' checks it.",
        "- Export: `tfmeta.export.run.export_server` of a `CtrServer` / `RankingServer`; "
        "bytes on disk of the SavedModel version directory.",
        "",
        "## Sizes",
        "",
        "| rows | users | items | B examples | A train interactions | A val / test "
        "instances | EmbeddingMLP parameters | LeapRec parameters |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sizes:
        res = results.get(r, {})
        b, a = res.get("pipeline-b", {}), res.get("pipeline-a", {})
        vocab = b.get("vocab") or a.get("vocab") or {}
        inst = a.get("instances") or {}
        leap = "leaprec" if "leaprec" in res else "leaprec-profile"
        if not vocab and "generate" in res:  # generated only: the planned ids
            g = res["generate"]
            out.append(f"| {r:,} | {g['user_ids_planned']:,} (planned) "
                       f"| {g['item_ids_planned']:,} (planned) | not built | not built "
                       "| not built | - | - |")
            continue
        out.append(
            f"| {r:,} | {vocab.get('users', 0):,} | {vocab.get('items', 0):,} "
            f"| {b.get('examples', 0):,} | {_of(res, leap, 'train_interactions')} "
            f"| {inst.get('val', 0):,} / {inst.get('test', 0):,} "
            f"| {_of(res, 'epoch-lazy-adam', 'parameters')} "
            f"| {_of(res, leap, 'parameters')} |")
    out += ["", "## Costs", "",
            "| cost | " + " | ".join(f"{r:,} rows" for r in sizes) + " |",
            "|---|" + "---:|" * len(sizes)]
    for key, label, step, field, unit in COSTS:
        cells = []
        for r in sizes:
            v = results.get(r, {}).get(step, {}).get(field)
            cells.append(_fmt_cost(v, unit) if v else "not run")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    extra = (("pipeline B rows/s", "pipeline-b", lambda s: f"{s['rows_per_second']:,.0f}"),
             ("pipeline A rows/s", "pipeline-a", lambda s: f"{s['rows_per_second']:,.0f}"),
             ("pipeline B / A CPU s", "pipeline-b", None),
             ("EmbeddingMLP model construction s", "epoch",
              lambda s: f"{s['model_build']['seconds']:.1f}"),
             ("EmbeddingMLP epoch ms per batch", "epoch",
              lambda s: f"{1000 * s['seconds'] / s['batches']:.2f}"),
             ("EmbeddingMLP epoch CPU s", "epoch", lambda s: f"{s['cpu_seconds']:.1f}"),
             ("LeapRec load (read + histories) s", "leaprec",
              lambda s: f"{s['load']['seconds']:.1f}"),
             ("LeapRec iteration CPU s", "leaprec", lambda s: f"{s['cpu_seconds']:.1f}"),
             ("LeapRec sampled val scoring s", "leaprec",
              lambda s: f"{s['sampled_evaluation']['seconds']:.1f}"),
             ("LeapRec full-ranking val scoring s", "leaprec",
              lambda s: (f"{s['full_evaluation']['seconds']:.1f}"
                         if "full_evaluation" in s else "not run")),
             ("LeapRec profile: month fixed s + s per 1M graph interactions",
              "leaprec-profile", lambda s: (f"{s['per_month_fixed_seconds']:.1f} + "
                                            f"{1e6 * s['per_interaction_seconds']:.1f}")),
             ("LeapRec profile: tracing s / meta update s", "leaprec-profile",
              lambda s: f"{s['trace_seconds']:.1f} / {s['end_iteration']['seconds']:.1f}"),
             ("LeapRec profile: estimated walk / a measured walk", "leaprec-profile",
              lambda s: (f"{s['estimated_walk_seconds']:.1f} / "
                         f"{s['checked_walk']['seconds']:.1f} s = "
                         f"{s['estimate_over_walk']:.2f}" if "checked_walk" in s
                         else "no walk")),
             ("export EmbeddingMLP s / peak RSS MiB", "export-ctr",
              lambda s: f"{s['seconds']:.1f} / {s['peak_rss_bytes'] / MIB:,.0f}"),
             ("export LeapRec s / peak RSS MiB", "export-leaprec",
              lambda s: f"{s['seconds']:.1f} / {s['peak_rss_bytes'] / MIB:,.0f}"))
    out += ["", "Other figures:", "",
            "| figure | " + " | ".join(f"{r:,} rows" for r in sizes) + " |",
            "|---|" + "---:|" * len(sizes)]
    for label, step, fn in extra:
        cells = []
        for r in sizes:
            res = results.get(r, {})
            if fn is None:
                b, a = res.get("pipeline-b"), res.get("pipeline-a")
                cells.append(f"{b['cpu_seconds']:.1f} / {a['cpu_seconds']:.1f}"
                             if b and a else "not run")
            else:
                cells.append(fn(res[step]) if step in res else "not run")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out += ["", "## Growth", "",
            f"k: exponent of cost ~ rows^k between consecutive sizes; per-row ratio: cost "
            f"per row at the larger size / at the smaller (1 = linear, below 1 = fixed "
            f"costs amortised); verdict: linear or better when k <= "
            f"{1 + LINEAR_TOLERANCE:g} (tolerance for a shared machine).", "",
            "| cost | from rows | to rows | from | to | k | per-row ratio | verdict |",
            "|---|---:|---:|---:|---:|---:|---:|---|"]
    units = {key: unit for key, _, _, _, unit in COSTS}
    for g in report["growth"]:
        verdict = "linear or better" if g["linear_or_better"] else "**super-linear**"
        out.append(f"| {g['label']} | {g['from_rows']:,} | {g['to_rows']:,} "
                   f"| {_fmt_cost(g['from'], units[g['cost']])} "
                   f"| {_fmt_cost(g['to'], units[g['cost']])} | {g['exponent']:.2f} "
                   f"| {g['per_row_ratio']:.2f} | {verdict} |")
    out += ["", f"![cost vs rows]({report['plot']})", "", "## Where growth is not linear, "
            "and why", ""]
    out += report["explanations"] or ["- Every cost grew at most linearly."]
    if report.get("estimates"):
        out += ["", "## Not measured", ""]
        for rows, est in report["estimates"].items():
            out.append(f"- {int(rows):,} rows: estimated process seconds (extrapolated "
                       "from the two largest measured sizes with their exponent): "
                       + ", ".join(f"{s} {v / 60:,.0f} min" for s, v in est.items()) + ".")
    if report.get("notes"):
        out += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    out += ["", "## Steps", "",
            "| rows | step | timed wall s | timed CPU s | CPU/wall | peak RSS MiB | process "
            "wall s | process peak RSS MiB | load avg before -> after |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in sizes:
        for step in STEPS:
            s = results.get(r, {}).get(step)
            if not s:
                continue
            p = s.get("process", {})
            wall, cpu = s.get("seconds"), s.get("cpu_seconds")
            timed = (f"{wall:.1f} | {cpu:.1f} | {cpu / wall:.2f}" if wall else "- | - | -")
            peak = f"{s['peak_rss_bytes'] / MIB:,.0f}" if s.get("peak_rss_bytes") else "-"
            load = (f"{s['loadavg_before'][0]:.2f} -> {s['loadavg_after'][0]:.2f}"
                    if s.get("loadavg_before") else "-")
            out.append(f"| {r:,} | {step} | {timed} | {peak} "
                       f"| {p.get('process_seconds', 0):.1f} "
                       f"| {p.get('max_rss_bytes', 0) / MIB:,.0f} | {load} |")
    out.append("")
    return "\n".join(out)


def _rows(text: str) -> int:
    value = float(text)
    if value < 1000 or value != int(value):
        raise argparse.ArgumentTypeError(f"rows must be a whole number >= 1000, not {text}")
    return int(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=_rows, nargs="+", help="sizes (default 1e5 1e6 1e7)")
    parser.add_argument("--quick", action="store_true",
                        help=f"sizes {QUICK_ROWS}; results get a -quick suffix")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS),
                        help="steps to run (their inputs must exist or be planned)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the steps already measured in the runs folder")
    parser.add_argument("--runs-dir", default=RUNS_DIR,
                        help="data and run folders (default runs/scaling, git-ignored)")
    parser.add_argument("--results-dir", default=RESULTS_DIR)
    parser.add_argument("--full-ranking-max-rows", type=_rows, default=FULL_RANKING_MAX_ROWS,
                        help="score LeapRec's full ranking only up to this many rows")
    parser.add_argument("--leaprec-option", type=parse_override, action="append",
                        default=[], metavar="KEY=VALUE",
                        help="a RankingOptions field to change for the LeapRec steps "
                             "(tests: e.g. method=leaprec+mf inner_steps=1); the report "
                             "records them")
    parser.add_argument("--warm-iteration-max-rows", type=_rows,
                        default=WARM_ITERATION_MAX_ROWS,
                        help="time LeapRec's second (already traced) iteration, and "
                             "check leaprec-profile's estimate against a full walk, only "
                             "up to this many rows")
    parser.add_argument("--in-process", action="store_true",
                        help="run the steps in this process (tests; figures not isolated)")
    parser.add_argument("--carry-over", metavar="REPORT_JSON",
                        help="an earlier scaling.json: the steps it measured that this "
                             "invocation does not run (--steps) are taken from it, marked "
                             "as carried over (a runs folder that was lost keeps its "
                             "figures)")
    parser.add_argument("--note", action="append", default=[],
                        help="a sentence for the report's notes (repeatable)")
    parser.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--size-dir", help=argparse.SUPPRESS)
    parser.add_argument("--child-rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    WARM_MAX[0] = args.warm_iteration_max_rows
    LEAPREC_OVERRIDES.clear()
    LEAPREC_OVERRIDES.update(dict(args.leaprec_option))
    if args.child:
        run_child(args.child, args.size_dir, args.child_rows, args.full_ranking_max_rows)
        return 0

    argv = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(["python", "-m", "benchmarks.scaling", *argv])
    sizes = sorted(set(args.rows or (QUICK_ROWS if args.quick else DEFAULT_ROWS)))
    runs_dir = args.runs_dir if os.path.isabs(args.runs_dir) else os.path.join(
        REPO, args.runs_dir)
    if args.quick:
        runs_dir = runs_dir.rstrip("/") + "-quick"
    if not args.resume:
        taken = [size_dir_of(runs_dir, r) for r in sizes
                 if os.path.isdir(_paths(size_dir_of(runs_dir, r))["steps"])]
        if taken:
            parser.error(f"{', '.join(taken)} already hold measured steps: pass --resume "
                         "to reuse them, or remove the folders")
    from tfmeta.data import registry
    registry.fetch("yelp-a")  # fail early when the source data is missing

    carried = carry_over(args.carry_over, sizes, runs_dir, args.steps) if args.carry_over \
        else []

    from tqdm.auto import tqdm
    plan = []
    for r in sizes:
        for step in STEPS:
            done = os.path.exists(os.path.join(_paths(size_dir_of(runs_dir, r))["steps"],
                                               f"{step}.json"))
            if step in args.steps and not (args.resume and done):
                plan.append((r, step))
    started = time.perf_counter()
    failures = []
    bar = tqdm(plan, desc="scaling", unit="step", file=sys.stderr)
    for r, step in bar:
        d = size_dir_of(runs_dir, r)
        missing = [" or ".join(need) for need in map(_alternatives, NEEDS.get(step, ()))
                   if not any(os.path.exists(os.path.join(_paths(d)["steps"], f"{n}.json"))
                              for n in need)]
        if missing:
            failures.append(f"{step} at {r:,} rows skipped: needs {', '.join(missing)}")
            bar.write(failures[-1])
            continue
        bar.set_postfix_str(f"{r:,} rows {step}")
        try:
            s = run_step(step, d, r, args.full_ranking_max_rows, args.in_process)
        except RuntimeError as e:
            failures.append(str(e))
            bar.write(f"FAILED: {e}")
            continue
        main_figure = (f"{s['seconds']:.1f} s" if "seconds" in s else "")
        bar.write(f"{r:,} rows {step}: {main_figure}, process "
                  f"{s['process']['process_seconds']:.1f} s, peak RSS "
                  f"{s['process']['max_rss_bytes'] / MIB:,.0f} MiB")
    bar.close()

    results = {}
    for r in sizes:
        steps_dir = _paths(size_dir_of(runs_dir, r))["steps"]
        results[r] = {step: _read_step(size_dir_of(runs_dir, r), step) for step in STEPS
                      if os.path.exists(os.path.join(steps_dir, f"{step}.json"))}
    measured = [r for r in sizes if results[r]]
    suffix = "-quick" if args.quick else ""
    os.makedirs(args.results_dir, exist_ok=True)
    plot_name = f"scaling{suffix}.png"
    plot(measured, results, os.path.join(args.results_dir, plot_name))
    gpus = max((s.get("gpus", 0) for res in results.values() for s in res.values()),
               default=0)
    estimates = {}
    for r in sizes:
        missing = [s for s in STEPS if s not in results[r]]
        if missing:
            est = estimate(sizes, results, r)
            estimates[str(r)] = {s: v for s, v in est.items() if s in missing}
            profile = results[r].get("epoch-profile")
            if "epoch" in missing and profile:
                # Better than the power law for the epoch: this size's own step cost.
                batches = math.ceil(profile["input_only"]["examples"] / CTR_BATCH)
                estimates[str(r)]["epoch (batches x this size's Adam step CPU ms + "
                                  "input pipeline CPU)"] = (
                    batches * profile["ms_per_step"]["adam"]["train_step"]["cpu"] / 1000
                    + profile["input_only"]["cpu_seconds"])
    report = {
        "benchmark": "scaling",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "quick": args.quick,
        "sizes": measured,
        "runs_dir": os.path.relpath(runs_dir, REPO),
        "full_ranking_max_rows": args.full_ranking_max_rows,
        "warm_iteration_max_rows": args.warm_iteration_max_rows,
        "leaprec_overrides": dict(LEAPREC_OVERRIDES),
        "in_process": args.in_process,
        "linear_tolerance": LINEAR_TOLERANCE,
        "machine": machine_info.describe(["tensorflow", "tf-keras", "tensorflow-gnn",
                                          "apache-beam", "pandas", "numpy", "psutil"]),
        "gpus_seen_by_tensorflow": gpus,
        "seconds_this_invocation": time.perf_counter() - started,
        "plot": plot_name,
        "results": results,
        "growth": growth(measured, results),
        "estimates": {k: v for k, v in estimates.items() if v},
        "failures": failures,
        "notes": args.note + carried + [f"not completed: {f}" for f in failures],
    }
    report["explanations"] = explain(report)
    md, js = machine_info.write_results(args.results_dir, f"scaling{suffix}",
                                        _jsonable(report), render_markdown(report))
    print(f"wrote {md}, {js} and {plot_name}", file=sys.stderr)
    return 1 if failures else 0


def _jsonable(report: dict) -> dict:
    out = dict(report)
    out["results"] = {str(r): v for r, v in report["results"].items()}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
