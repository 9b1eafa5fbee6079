"""The incremental driver of protocol B (PROTOCOLS.md B.4).

Pre-train on periods 1-10; for i = 11..30, update the base model on period i starting
from model i-1, then score the parameters the method serves on period i+1. Every
period's base model is kept as a tf.train.Checkpoint (the model history); a run that is
killed resumes from its last completed period and ends with the same metrics as an
uninterrupted run with the same seed.

    RUN_DIR/metrics.json        protocol, dataset, method, seed, seconds, val, test,
                                per_period, options
    RUN_DIR/progress.json       per-period figures so far (the resume point)
    RUN_DIR/history/            the base model after each period
    RUN_DIR/serving/            the model the method served after each update period
                                (scored on the next; `tfmeta export` reads it)
    RUN_DIR/checkpoints/        model + strategy state after the last completed period
    RUN_DIR/tensorboard/        scalars per period

Under a `tf.distribute.Strategy` (`distribution`: a strategy or its name, see
`tfmeta.distribute`) the model and the method's state are created in its scope and
every period's batches are split across the replicas; the chief writes RUN_DIR.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from tfmeta import distribute, threads
from tfmeta.data.periods import PeriodDataset
from tfmeta.evaluation.metrics import CtrAccumulator
from tfmeta.meta import asmg, incremental, sml, spmf
from tfmeta.models.embedding_mlp import EmbeddingMLP
from tfmeta.progress import Progress
from tfmeta.training.rundir import (EXPORT_ADVICE, check_same_periods, open_run_dir,
                                    read_record, run_identity, start_progress, write_json)

PRETRAIN = list(range(1, 11))
UPDATES = list(range(11, 31))
VALIDATION = [22, 23, 24]  # scored periods i + 1
SERVING = "serving"
TEST = list(range(25, 32))


@dataclasses.dataclass
class IncrementalOptions:
    method: str = "iu"
    seed: int = 0
    batch_size: int = 256
    learning_rate: float = 1e-3
    epochs: int = 1               # passes over each period's data
    pretrain_epochs: int = 1      # passes over periods 1-10
    embedding_dim: int = 8
    incctr_lambda: float = 0.5
    k: int = 3                    # ASMG: models in the generator's window
    hidden_size: int = 4          # ASMG-GRU: hidden units per coordinate
    meta_learning_rate: float = 1e-3
    spmf_capacity: int = 10_000   # SPMF: examples in the reservoir
    optimizer: str = "adam"       # the base model's: adam, lazy-adam (tfmeta.optimizers)


def make_strategy(model, options: IncrementalOptions):
    """A strategy object from its METHOD name (`iu`, `bu-3`, `incctr`, ...)."""
    common = dict(learning_rate=options.learning_rate, epochs=options.epochs,
                  optimizer=options.optimizer)
    method = options.method
    if method == "iu":
        return incremental.UpdateStrategy(model, **common)
    if method.startswith("bu-") and method[3:].isdigit():
        return incremental.BatchUpdate(model, window=int(method[3:]), **common)
    if method == "incctr":
        return incremental.IncCTR(model, lambda_=options.incctr_lambda, **common)
    if method in asmg.METHODS:
        return asmg.from_method(model, method, k=options.k, hidden_size=options.hidden_size,
                                meta_learning_rate=options.meta_learning_rate, **common)
    if method == "spmf":
        return spmf.SPMF(model, capacity=options.spmf_capacity, seed=options.seed, **common)
    if method == "sml":
        return sml.SML(model, meta_learning_rate=options.meta_learning_rate,
                       seed=options.seed, **common)
    raise ValueError(f"unknown method {method!r}; protocol B methods: {', '.join(METHODS)}"
                     + other_protocol_hint(method))


def other_protocol_hint(method: str) -> str:
    """What to do when `method` is a protocol A (ranking) method: a likely slip."""
    from tfmeta.training.ranking import parse_method
    try:
        parse_method(method)
    except ValueError:
        return ""
    return (f". {method} is a ranking method of protocol A: train it on periods built with "
            "`tfmeta periods build --protocol a`")


METHODS = ("iu", "bu-3", "bu-5", "bu-7", "incctr") + asmg.METHODS + ("spmf", "sml")


class Periods:
    """tf.data of one or several periods, shuffled with a seed fixed per period so
    that a resumed run sees exactly the batches an uninterrupted one would."""

    def __init__(self, data: PeriodDataset, batch_size: int, seed: int):
        self.data, self.batch_size, self.seed = data, batch_size, seed

    def periods(self, indices: Sequence[int], shuffle: bool = True) -> tf.data.Dataset:
        seed = self.seed * 1000 + max(indices) if shuffle else None
        return self.data.dataset(periods=list(indices), batch_size=self.batch_size,
                                 shuffle=shuffle, seed=seed)


def predictor(model: tf.keras.Model):
    """The model's probabilities as one tf.function, traced once per run."""
    return tf.function(lambda batch: tf.sigmoid(model(batch, training=False)),
                       reduce_retracing=True)


def evaluate(predict, dataset: tf.data.Dataset) -> dict:
    """AUC and LogLoss (PROTOCOLS.md B.5) of a predictor over a dataset."""
    scores = CtrAccumulator()
    for batch in dataset:
        scores.update(batch["label"].numpy(), predict(batch).numpy())
    return scores.result()


def _mean(rows, periods, key):
    values = [r[key] for r in rows if r["period"] in periods]
    return float(np.mean(values)) if values else float("nan")



def served_period(run_dir: str, period: Optional[int] = None) -> int:
    """`period` if the run served a model after it, else raises; None: the last one."""
    saved = sorted(int(n[len("period-"):-len(".index")]) for n in os.listdir(
        os.path.join(run_dir, SERVING)) if n.endswith(".index")) if os.path.isdir(
        os.path.join(run_dir, SERVING)) else []
    if not saved:
        raise FileNotFoundError(f"{run_dir}/{SERVING} holds no served model: the run has "
                                "not completed an update period (or predates serving "
                                "checkpoints: train it again)")
    period = saved[-1] if period is None else int(period)
    if period not in saved:
        raise ValueError(f"no served model after period {period} in {run_dir}; have "
                         f"periods {saved[0]}-{saved[-1]}")
    return period


def load_served(run_dir: str, period: Optional[int] = None,
                periods_dir: Optional[str] = None) -> EmbeddingMLP:
    """The model a protocol B run served after updating on `period` (default: the
    last completed one), with the ids known then."""
    record = read_record(run_dir)  # metrics.json or progress.json: options and periods
    period = served_period(run_dir, period)
    options = IncrementalOptions(**record["options"])
    data = PeriodDataset(periods_dir or record["periods"])
    check_same_periods(record, data, run_dir, EXPORT_ADVICE)
    model = EmbeddingMLP.from_period_dataset(data, embedding_dim=options.embedding_dim)
    tf.train.Checkpoint(model=model).read(
        os.path.join(run_dir, SERVING, f"period-{period:03d}")).expect_partial()
    return model


def train_incremental(periods_dir: str, out: str, options: IncrementalOptions,
                      resume: bool = False, export_to: Optional[str] = None,
                      keep: Optional[int] = 5, validation_only: bool = False,
                      distribution=None) -> dict:
    """Runs one method over protocol B periods; returns (and writes) metrics.json.
    export_to: an export root that gets each update period's served model as a new
    SavedModel version (tfmeta.export), keeping the `keep` newest. validation_only:
    stop once the validation periods are scored (tuning: `test` is then NaN).
    distribution: a tf.distribute.Strategy or its name (`tfmeta.distribute.STRATEGIES`);
    default: TF's default strategy (no distribution)."""
    distribution = distribute.from_name(distribution)  # first: see tfmeta.distribute
    data = PeriodDataset(periods_dir)
    if data.protocol != "b":
        raise ValueError(f"{periods_dir} holds protocol {data.protocol.upper()} periods; "
                         "incremental CTR methods need protocol B (--protocol b)")
    if len(data.periods) < 31:
        raise ValueError(f"protocol B needs 31 periods, {periods_dir} has {len(data.periods)}")
    chief, out = distribute.is_chief(distribution), distribute.run_directory(distribution, out)
    progress_path = open_run_dir(out, resume)
    tf.keras.utils.set_random_seed(options.seed)
    tf.config.experimental.enable_op_determinism()  # resume == uninterrupted

    with distribution.scope():
        model = EmbeddingMLP.from_period_dataset(data, embedding_dim=options.embedding_dim)
        serving_model = incremental.clone(model)
        strategy = make_strategy(model, options)
        done = tf.Variable(0, dtype=tf.int64, name="completed_period")
    predict = predictor(serving_model)
    source = Periods(data, options.batch_size, options.seed)
    checkpoint = tf.train.Checkpoint(model=model, done=done, **strategy.checkpoint_items())
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(out, "checkpoints"), 1)
    history = tf.train.Checkpoint(model=model)
    served = tf.train.Checkpoint(model=serving_model)
    resuming = bool(resume and manager.latest_checkpoint)
    if resuming:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    state = start_progress(
        progress_path, {"per_period": [], "seconds": 0.0, "options": dataclasses.asdict(options),
                        "periods": os.path.abspath(periods_dir)},
        resuming, "b", data, options, out)
    writer = tf.summary.create_file_writer(os.path.join(out, "tensorboard"))
    started = time.time() - state["seconds"]

    def known_through(i):
        entry = data.select([i])[0]
        model.set_known(entry["users_seen"], entry["items_seen"])

    def complete(i, loss, scores=None, timing=None):
        done.assign(i)
        history.write(os.path.join(out, "history", f"period-{i:03d}"))
        if scores is not None:
            state["per_period"].append({"period": i + 1, "train_loss": loss, **scores,
                                        **(timing or {})})
            with writer.as_default(step=i + 1):
                for key, value in scores.items():
                    tf.summary.scalar(f"test/{key}", value)
                tf.summary.scalar("train/loss", loss)
        state["seconds"] = time.time() - started
        manager.save()
        write_json(progress_path, state)

    if int(done.numpy()) < PRETRAIN[-1]:
        known_through(PRETRAIN[-1])
        loss = strategy.pretrain(source, PRETRAIN, options.pretrain_epochs)
        complete(PRETRAIN[-1], loss)
    last = VALIDATION[-1] - 1 if validation_only else UPDATES[-1]
    completed = int(done.numpy())
    bar = Progress([i for i in UPDATES if completed < i <= last],
                   desc=f"{options.method} updates", unit="update")
    for i in bar:
        known_through(i)
        tick = time.perf_counter()
        loss = strategy.update(source, i)
        timing = {"update_seconds": time.perf_counter() - tick,
                  "meta_seconds": getattr(strategy, "meta_seconds", 0.0),
                  "trace_seconds": getattr(strategy, "trace_seconds", 0.0)}
        incremental.copy_weights(strategy.serving_weights(), serving_model.trainable_variables)
        serving_model.set_known(*[int(v.numpy()) for v in (model.known_users, model.known_items)])
        served.write(os.path.join(out, SERVING, f"period-{i:03d}"))
        if export_to and chief:  # before the period completes: a resumed run never skips one
            from tfmeta.export import export_server
            from tfmeta.export.ctr import CtrServer
            from tfmeta.export.run import describe_record
            export_server(lambda assets: CtrServer(serving_model, assets), export_to, keep,
                          about=describe_record(state, out, period=i))
        scores = evaluate(predict, source.periods([i + 1], shuffle=False))
        bar.set_postfix(period=i + 1, auc=f"{scores['auc']:.4f}",
                        logloss=f"{scores['logloss']:.4f}")
        complete(i, loss, scores, timing)

    rows = state["per_period"]
    metrics = {
        **run_identity("b", data, options), "seconds": round(state["seconds"], 2),
        "val": {k: _mean(rows, VALIDATION, k) for k in ("auc", "logloss")},
        "test": {k: _mean(rows, TEST, k) for k in ("auc", "logloss")},
        "per_period": [{"period": r["period"], "auc": r["auc"], "logloss": r["logloss"],
                        "update_seconds": r["update_seconds"],
                        "meta_seconds": r["meta_seconds"],
                        "trace_seconds": r.get("trace_seconds", 0.0)} for r in rows],
        "options": dataclasses.asdict(options), "periods": os.path.abspath(periods_dir),
        "code": state["code"], "distribution": distribute.describe(distribution),
        "threads": threads.describe(),
    }
    write_json(os.path.join(out, "metrics.json"), metrics)
    return metrics
