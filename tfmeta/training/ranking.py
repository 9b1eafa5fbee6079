"""The protocol A driver: train a ranking method, score the val and test windows.

    metrics = train_ranking("runs/periods-a", "runs/leaprec", RankingOptions("leaprec"))

PROTOCOLS.md A.3: the validation figures come from a model trained on the train
window, the test figures from a model trained on train + val with the same options.
Each phase runs `epochs` passes over its interactions (a plain model: Adam + BPR with
uniform negatives) or `iterations` walks over its time steps (LeapRec / FOMAML plug-ins,
`tfmeta.meta.leaprec`). METHOD names: a model (`mf`, `gcn`, `ngcf`, `lightgcn`,
`sasrec`, `gru4rec`, `gnn-sa`), `leaprec` (= `leaprec+gnn-sa`), `leaprec+MODEL`,
`fomaml+MODEL`.

A run directory holds `metrics.json`, `progress.json`, checkpoints (one per phase,
saved after every epoch / iteration: `--resume` continues from there and ends with the
metrics of an uninterrupted run) and TensorBoard scalars (loss per epoch, and per
time step for the meta methods).

Under a `tf.distribute.Strategy` (`distribution`, see `tfmeta.distribute`) each phase's
models and training state are created in its scope and every minibatch is split across
the replicas; the chief writes RUN_DIR.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Optional

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from tfmeta import distribute, optimizers, threads
from tfmeta.data import interactions as inter
from tfmeta.data.periods import PeriodDataset
from tfmeta.evaluation.protocol_a import evaluate
from tfmeta.meta import leaprec
from tfmeta.models.dropout import lacks_draw_counters
from tfmeta.progress import Progress
from tfmeta.training.rundir import (EXPORT_ADVICE, check_same_periods, open_run_dir,
                                    run_identity, start_progress, write_json)

PHASES = (("val", ("train",)), ("test", ("train", "val")))
META = {"leaprec": "leap", "fomaml": "fomaml"}
DEFAULT_MODEL = "gnn-sa"
REPRESENTED_ITEMS = 200  # popular items whose representations the last iteration records
BUDGET_METRIC = "HR@10"  # sampled, on the validation window: what choose_budget maximises


@dataclasses.dataclass
class RankingOptions:
    method: str = "leaprec"
    seed: int = 0
    embedding_dim: int = 64        # plain models
    gtl_dim: int = 64              # LeapRec: GTL embedding size (0 turns it off)
    otl_dim: int = 64              # LeapRec: OTL embedding size (0 turns it off)
    learning_rate: float = 1e-3    # Adam: plain training and inner steps
    meta_learning_rate: float = 1e-3
    batch_size: int = 1024
    epochs: int = 20               # plain models: passes over the phase's interactions
    iterations: int = 10           # meta methods: walks over the phase's time steps
    inner_steps: int = 10          # meta methods: K per time step
    max_len: int = 50
    granularity: Optional[str] = None  # None: the dataset's time steps
    # PROTOCOLS.md A.3 "epochs are chosen on validation": score the validation window
    # after every epoch / iteration of the val phase, and train the test phase for the
    # count that scored best (BUDGET_METRIC; ties: the fewest).
    choose_budget: bool = False
    # The model's own constructor arguments (e.g. {"num_layers": 3, "dropout": 0.5};
    # see tfmeta.models), the same for GTL and OTL.
    model_options: dict = dataclasses.field(default_factory=dict)
    # Plain models' optimizer: adam, or lazy-adam (tfmeta.optimizers: updates only the
    # embedding rows a batch reads). LeapRec's inner steps use Adam on dense gradients.
    optimizer: str = "adam"


def parse_method(method: str) -> tuple:
    """METHOD -> (meta: None | 'leap' | 'fomaml', model name)."""
    from tfmeta.models import MODELS
    meta, _, model = method.partition("+")
    if meta in META:
        model = model or DEFAULT_MODEL
        meta = META[meta]
    else:
        meta, model = None, method
    if model not in MODELS:
        from tfmeta.training.incremental import METHODS as CTR_METHODS
        hint = (f". {method} is an incremental CTR method of protocol B: train it on periods "
                "built with `tfmeta periods build --protocol b`" if method in CTR_METHODS
                else "")
        raise ValueError(f"unknown protocol A method {method!r}: use one of "
                         f"{', '.join(sorted(MODELS))}, leaprec, leaprec+MODEL or "
                         "fomaml+MODEL" + hint)
    return meta, model


def _batches(part: inter.Interactions, index: np.ndarray) -> dict:
    return {"user": tf.constant(part.users[index]), "item": tf.constant(part.items[index]),
            "history": tf.constant(part.history[index])}


def time_step_batches(part: inter.Interactions, step: int, count: int, size: int,
                      rng: np.random.Generator) -> list:
    """`count` minibatches of `size` drawn without replacement from time step `step`'s
    interactions: a meta method's inner steps. A step with fewer interactions than
    `size` gives all of them, shuffled, in each minibatch (a full-batch step; drawing
    `size` with replacement would repeat each row and cost a full minibatch)."""
    rows = np.flatnonzero(part.step == step)
    return [_batches(part, rng.choice(rows, min(size, len(rows)), replace=False))
            for _ in range(count)]


def plain_step(scorer, optimizer, batch) -> tf.Tensor:
    """One optimizer step on the global mean BPR loss of a batch (negatives attached):
    how plain models train, with no meta bookkeeping."""
    variables = scorer.trainable_variables
    with tf.GradientTape() as tape:
        loss = distribute.global_mean(leaprec.bpr_example_losses(scorer, batch))
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss



def build_models(options: RankingOptions, data: PeriodDataset, seed: int) -> dict:
    """The method's models, untrained: {"gtl": ..., "otl": ...} (those of size > 0) for
    the meta methods, {"model": ...} for a plain one; sized by the data's vocabularies."""
    import inspect
    from tfmeta.models import MODELS, make_model
    meta, model_name = parse_method(options.method)
    sizes = len(data.vocabulary("users")), len(data.vocabulary("items"))
    accepted = set(inspect.signature(MODELS[model_name].__init__).parameters) - {
        "self", "num_users", "num_items", "embedding_dim", "max_len", "seed", "kwargs"}
    unknown = set(options.model_options) - accepted
    if unknown:
        raise ValueError(f"model {model_name} has no option {', '.join(sorted(unknown))}; "
                         f"its model_options: {', '.join(sorted(accepted)) or 'none'}")

    def build(dim, offset):
        return make_model(model_name, *sizes, embedding_dim=dim, max_len=options.max_len,
                          seed=seed + offset, **options.model_options)
    if not meta:
        return {"model": build(options.embedding_dim, 1)}
    return {name: build(dim, offset) for name, dim, offset in
            (("gtl", options.gtl_dim, 1), ("otl", options.otl_dim, 2)) if dim > 0}


def load_trained(run_dir: str, periods_dir: Optional[str] = None) -> tuple:
    """(Scorer, PeriodDataset, RankingOptions) of a finished run's test-phase model: the
    one trained on train + validation, with its graph (those windows' interactions) set.
    periods_dir: where the run's periods are now (default: where they were)."""
    path = os.path.join(run_dir, "metrics.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: {run_dir} is not a finished protocol A "
                                "run (train it, or finish it with --resume)")
    with open(path) as f:
        metrics = json.load(f)
    options = RankingOptions(**metrics["options"])
    data = PeriodDataset(periods_dir or metrics["periods"])
    check_same_periods(metrics, data, run_dir, EXPORT_ADVICE)
    scorer = leaprec.Scorer(list(build_models(options, data, options.seed).values()))
    checkpoint = tf.train.Checkpoint(models=scorer.models)
    latest = tf.train.latest_checkpoint(os.path.join(run_dir, "test", "checkpoints"))
    status = checkpoint.restore(latest).expect_partial()
    if lacks_draw_counters(latest, scorer.models):
        # An older run's: only its dropout draw counters are missing, and scoring
        # draws no masks.
        status.assert_nontrivial_match()
    else:
        status.assert_existing_objects_matched()
    part = inter.load(data, dict(PHASES)["test"], options.max_len, options.granularity)
    scorer.set_graph(part.users, part.items)
    return scorer, data, options


class Phase:
    """Training on some windows and scoring the next one, resumable."""

    def __init__(self, data: PeriodDataset, name: str, windows: tuple, options: RankingOptions,
                 out: str, timelines: inter.UserTimelines, columns: Optional[dict] = None,
                 units: Optional[int] = None,
                 distribution: Optional[tf.distribute.Strategy] = None):
        self.data, self.name, self.options, self.timelines = data, name, options, timelines
        self.out = os.path.join(out, name)
        self.part = inter.load(data, windows, options.max_len, options.granularity, columns)
        if not len(self.part):
            raise ValueError(f"no interactions in the {'+'.join(windows)} window(s) of "
                             f"{data.directory}")
        self.meta = parse_method(options.method)[0]
        seed = options.seed * 1000 + (0 if name == "val" else 500)
        tf.keras.utils.set_random_seed(seed)
        self.distribution = distribution or tf.distribute.get_strategy()
        with self.distribution.scope():
            self.negatives = leaprec.Negatives(self.part.warm_items(), seed)
            models = build_models(options, data, seed)
            if self.meta:
                self.learner = leaprec.LeapRec(models.get("gtl"), models.get("otl"),
                                               self.negatives, self.meta,
                                               options.learning_rate,
                                               options.meta_learning_rate)
                self.scorer = self.learner.scorer
                items = self.learner.checkpoint_items()
                self.units = options.iterations if units is None else units
            else:
                self.scorer = leaprec.Scorer(list(models.values()))
                self.optimizer = optimizers.make(options.optimizer, options.learning_rate)
                self.optimizer.build(self.scorer.trainable_variables)
                self._train_step = tf.function(
                    lambda batch: distribute.run(self.distribution, self._plain_step, batch),
                    reduce_retracing=True)
                items = {"optimizer": self.optimizer, "negatives": self.negatives.generator}
                self.units = options.epochs if units is None else units
            self.done = tf.Variable(0, dtype=tf.int64)
        self.checkpoint = tf.train.Checkpoint(
            models=self.scorer.models, done=self.done, **items)
        self.manager = tf.train.CheckpointManager(self.checkpoint,
                                                  os.path.join(self.out, "checkpoints"), 1)
        self.writer = tf.summary.create_file_writer(os.path.join(out, "tensorboard", name))

    # -- training
    def restore(self) -> None:
        latest = self.manager.latest_checkpoint
        if not latest:
            return
        if lacks_draw_counters(latest, self.scorer.models):
            raise ValueError(
                f"{latest} was written by a tfmeta from before dropout masks were "
                "checkpointed (commit d338699), so a resumed run cannot draw the masks the "
                "interrupted one would have. Train it again from the start (delete "
                f"{os.path.dirname(self.out)} or give another --out); a finished older "
                "run can still be exported.")
        self.checkpoint.restore(latest).assert_existing_objects_matched()

    def train(self, losses: list, curve: Optional[list] = None) -> None:
        """Runs the remaining epochs / iterations; appends each one's losses and, with a
        `curve`, its validation figures (`score_curve`)."""
        part = self.part
        done = int(self.done.numpy())
        bar = Progress(range(done, self.units), desc=f"{self.options.method} {self.name}",
                       unit="iteration" if self.meta else "epoch", initial=done,
                       total=self.units)
        if not self.meta:  # plain models train on the whole graph throughout
            self.scorer.set_graph(part.users, part.items)
        for unit in bar:
            rng = np.random.default_rng([self.options.seed, unit, self.name == "test"])
            if self.meta:
                loss = self._iteration(rng)
                mean = float(np.mean(loss))
            else:
                mean = loss = self._epoch(rng)
            losses.append(loss)
            with self.writer.as_default(step=unit + 1):
                tf.summary.scalar("train/loss", mean)
                if self.meta:
                    for label, value in zip(part.step_labels, loss):
                        tf.summary.scalar(f"train/loss_time_step/{label}", value)
            self.done.assign(unit + 1)
            figures = {"loss": f"{mean:.4f}"}
            if curve is not None:
                self.score_curve(curve)
                figures[f"val {BUDGET_METRIC}"] = f"{curve[-1][BUDGET_METRIC]:.4f}"
            bar.set_postfix(figures)
            # The caller records the unit's progress before the checkpoint holds it: a
            # run killed in between redoes the unit, and never lacks a unit's record.
            yield unit
            self.manager.save()

    def _epoch(self, rng) -> float:
        order = rng.permutation(len(self.part))
        size = self.options.batch_size
        losses = [float(self._train_step(distribute.distribute_batch(
            self.distribution, self.negatives.attach(_batches(self.part, order[s:s + size])))))
            for s in range(0, len(order), size)]
        return float(np.mean(losses))

    def _plain_step(self, batch):
        return plain_step(self.scorer, self.optimizer, batch)

    def _iteration(self, rng) -> list:
        """One walk over the time steps in order; the mean inner loss of each. The last
        iteration also records the popular items' representations after every step."""
        part = self.part
        record = int(self.done.numpy()) == self.units - 1
        self.learner.begin_iteration()
        losses, shots = [], []
        items = self.popular_items() if record else None
        # An iteration can take minutes (126 monthly steps on Amazon Beauty): its own bar.
        for step in tqdm(range(part.num_steps), desc="time steps", unit="step",
                         leave=False, disable=None):
            losses.append(self.time_step(step, rng))
            if record:
                shots.append(self._item_representations(items))
        self.learner.end_iteration()
        if record:
            self._save_representations(items, shots)
        return losses

    def time_step(self, step: int, rng) -> float:
        """Time step `step` of an iteration (between the learner's begin_iteration and
        end_iteration): the graph of time steps <= t, then the K inner steps; its mean
        inner loss."""
        part = self.part
        upto = part.step <= step
        self.scorer.set_graph(part.users[upto], part.items[upto])
        return self.learner.time_step(time_step_batches(
            part, step, self.options.inner_steps + 1, self.options.batch_size, rng))

    def popular_items(self) -> np.ndarray:
        """The REPRESENTED_ITEMS items with the most interactions in the phase."""
        counts = np.bincount(self.part.items)
        return np.argsort(-counts, kind="stable")[:min(REPRESENTED_ITEMS,
                                                       np.count_nonzero(counts))]

    def _item_representations(self, items: np.ndarray) -> dict:
        return {name: tf.gather(model.node_representations(training=False),
                                model.item_nodes(items)).numpy()
                for name, model in self.learner.parts.items()}

    def _save_representations(self, items: np.ndarray, shots: list) -> None:
        """RUN_DIR/<phase>/representations.npz: per GTL / OTL part [steps, items, d]
        after each time step of the last iteration, with the items' rows and their
        interactions per time step (Figure 5 of the LeapRec paper)."""
        counts = np.stack([np.bincount(self.part.items[self.part.step == t],
                                       minlength=int(items.max()) + 1)[items]
                           for t in range(self.part.num_steps)])
        arrays = {name: np.stack([shot[name] for shot in shots]) for name in shots[0]}
        os.makedirs(self.out, exist_ok=True)
        path = os.path.join(self.out, "representations.npz")
        with open(f"{path}.tmp", "wb") as f:
            np.savez_compressed(f, items=items, counts=counts,
                                time_steps=np.array(self.part.step_labels), **arrays)
        os.replace(f"{path}.tmp", path)

    # -- scoring
    def evaluate(self, full_ranking: bool = True) -> dict:
        self.scorer.set_graph(self.part.users, self.part.items)
        return evaluate(self.scorer.frozen(), self.data, self.name, self.timelines,
                        self.part.warm_items(), full_ranking=full_ranking)

    def score_curve(self, curve: list) -> None:
        """Appends the sampled validation figures of the model as it is now."""
        curve.append(self.evaluate(full_ranking=False)["sampled"])
        with self.writer.as_default(step=len(curve)):
            for key, value in curve[-1].items():
                tf.summary.scalar(f"val/sampled/{key}", value)


def chosen_units(curve: list) -> int:
    """The epoch / iteration count whose validation BUDGET_METRIC is highest (the
    fewest on ties)."""
    values = [point[BUDGET_METRIC] for point in curve]
    return int(np.argmax(values)) + 1


def budget_record(state: dict, options: RankingOptions) -> dict:
    """metrics.json `budget`: the validation curve and the count the test phase used."""
    val = state["phases"]["val"]
    return {"unit": "iteration" if parse_method(options.method)[0] else "epoch",
            "metric": f"val/sampled/{BUDGET_METRIC}", "curve": val["curve"],
            "chosen": val["chosen_units"]}


def train_ranking(periods_dir: str, out: str, options: RankingOptions,
                  resume: bool = False, validation_only: bool = False,
                  distribution=None) -> dict:
    """Runs one protocol A method; returns (and writes) metrics.json. validation_only:
    the val phase alone (tuning: metrics.json then has no `test`). distribution: a
    tf.distribute.Strategy or its name (`tfmeta.distribute.STRATEGIES`); default: TF's
    default strategy (no distribution)."""
    distribution = distribute.from_name(distribution)  # first: see tfmeta.distribute
    data = PeriodDataset(periods_dir)
    if data.protocol != "a":
        raise ValueError(f"{periods_dir} holds protocol {data.protocol.upper()} periods; "
                         "ranking methods need protocol A (--protocol a)")
    parse_method(options.method)  # fail before any work
    out = distribute.run_directory(distribution, out)
    progress_path = open_run_dir(out, resume)
    tf.config.experimental.enable_op_determinism()  # resume == uninterrupted
    state = start_progress(
        progress_path, {"phases": {}, "seconds": 0.0, "options": dataclasses.asdict(options)},
        resume and os.path.exists(progress_path), "a", data, options, out)
    started = time.time() - state["seconds"]
    everything = inter.read_interactions(data, ("train", "val", "test"))
    timelines = inter.UserTimelines(everything["user"], everything["item"], everything["ts"])
    phases = PHASES[:1] if validation_only else PHASES
    for name, windows in phases:
        record = state["phases"].setdefault(name, {"losses": []})
        if "figures" in record:
            continue
        curve = record.setdefault("curve", []) if options.choose_budget and name == "val" \
            else None
        units = (state["phases"]["val"]["chosen_units"]
                 if options.choose_budget and name == "test" else None)
        phase = Phase(data, name, windows, options, out, timelines, everything, units,
                      distribution)
        phase.restore()
        del record["losses"][int(phase.done.numpy()):]  # losses of units the checkpoint holds
        if curve is not None:
            del curve[int(phase.done.numpy()):]
        for _ in phase.train(record["losses"], curve):
            state["seconds"] = time.time() - started
            write_json(progress_path, state)
        if curve is not None:
            record["chosen_units"] = chosen_units(curve)
        record["figures"] = phase.evaluate()
        record["time_steps"] = phase.part.step_labels
        state["seconds"] = time.time() - started
        write_json(progress_path, state)

    metrics = {**run_identity("a", data, options),
               "seconds": round(state["seconds"], 2),
               "val": state["phases"]["val"]["figures"],
               **({} if validation_only else {"test": state["phases"]["test"]["figures"]}),
               "training": {n: {"losses": state["phases"][n]["losses"],
                                "time_steps": state["phases"][n]["time_steps"]}
                            for n, _ in phases},
               "options": dataclasses.asdict(options), "code": state["code"],
               **({"budget": budget_record(state, options)} if options.choose_budget else {}),
               "periods": os.path.abspath(periods_dir),
               "distribution": distribute.describe(distribution),
               "threads": threads.describe()}
    write_json(os.path.join(out, "metrics.json"), metrics)
    return metrics
