"""Data-parallel training under a `tf.distribute.Strategy`, the same code on one device.

Every training loop of tfmeta (the incremental driver and its update methods, the ASMG
generator, SML's transfer, LeapRec / FOMAML and the ranking baselines) runs under the
strategy its driver is given, as Keras does: models, optimizers and every strategy
state are created under `strategy.scope()`, where each training object records the
strategy (`tf.distribute.get_strategy()`) for its steps. Without one, TF's default
strategy makes all of this a no-op.

What makes a distributed run equal to a single-process one:

- Each *global* batch (the batch size a user sets) is split across the replicas
  (`distribute_dataset`, `distribute_batch`), so the sequence of global batches, and
  anything sampled for them in cross-replica code (negatives), is the same whatever the
  number of replicas.
- A replica's loss is its examples' loss *sum* divided by the global example count
  (`global_mean`), so summing over replicas gives the global mean and its gradient even
  when the last batch splits unevenly (a replica may even get no example).
- Two step shapes. `run`: the replicas each apply the optimizer, which all-reduces
  their gradients first (Keras' replica-context `apply_gradients`); for plain training.
  `loss_and_gradients`: the global loss and gradient, summed across replicas and handed
  back to cross-replica code; for meta updates that need the whole gradient before they
  touch any state (Leap's trajectory terms use the global step, the generators' chain
  rule the global probe gradient). The state they then update is mirrored: every
  replica and worker applies the same update to the same values.

Multi-worker runs (`MultiWorkerMirroredStrategy`, TF_CONFIG): every worker runs the same
program on the same input; each keeps its replicas' slices of every global batch
(auto-shard policy DATA). Only the chief writes the run directory; the other workers
keep their own checkpoints (needed to resume) under `RUN_DIR/workers/<task>/`.
"""
from __future__ import annotations

import os
from typing import Callable, Optional, Sequence, Union

import tensorflow as tf

from tfmeta.choices import STRATEGIES
SUM = tf.distribute.ReduceOp.SUM


def from_name(name: Union[str, tf.distribute.Strategy, None]) -> tf.distribute.Strategy:
    """A strategy from its command-line name (a strategy object passes through):

        default       TF's default strategy (one device, no distribution)
        mirrored      MirroredStrategy over this machine's GPUs (or its CPU)
        multi-worker  MultiWorkerMirroredStrategy over the cluster in TF_CONFIG
    """
    if isinstance(name, tf.distribute.Strategy):
        return name
    if name in (None, "default"):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("--distribute multi-worker needs TF_CONFIG (the cluster and this "
                             "worker's task); see README, 'Training on several workers'")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown distribution strategy {name!r}; choose from "
                     f"{', '.join(STRATEGIES)}")


def _cluster(strategy: tf.distribute.Strategy) -> dict:
    """{job: tasks} of a multi-worker cluster (the strategy's resolver, from TF_CONFIG);
    {} for single-process strategies."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return {}
    return resolver.cluster_spec().as_dict()


def task(strategy: tf.distribute.Strategy) -> tuple:
    """(task type, task id) of this process in a multi-worker cluster; (None, None) for
    single-process strategies."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return None, None
    return resolver.task_type, resolver.task_id


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the process that writes results: the only process, the `chief` task, or
    worker 0 of a cluster without one."""
    task_type, task_id = task(strategy)
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in _cluster(strategy)


def run_directory(strategy: tf.distribute.Strategy, out: str) -> str:
    """Where this process writes a run: `out` on the chief, RUN_DIR/workers/<task>-<id>
    on the other workers (their checkpoints; their results are the chief's)."""
    if is_chief(strategy):
        return out
    task_type, task_id = task(strategy)
    return os.path.join(out, "workers", f"{task_type}-{task_id}")


def global_mean(values: tf.Tensor) -> tf.Tensor:
    """In replica context: this replica's part of the global mean of per-example
    `values` (its sum over the global count). Summed over replicas it is the mean."""
    values = tf.reshape(tf.convert_to_tensor(values), [-1])
    count = tf.cast(tf.size(values), values.dtype)
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        count = context.all_reduce(SUM, count)
    return tf.math.divide_no_nan(tf.reduce_sum(values), count)


def run(strategy: tf.distribute.Strategy, fn: Callable, *args):
    """`fn(*args)` on every replica (args: distributed values), its results summed over
    replicas. Call it inside a tf.function."""
    return strategy.reduce(SUM, strategy.run(fn, args), axis=None)


def loss_and_gradients(strategy: tf.distribute.Strategy, loss_fn: Callable,
                       variables: Sequence[tf.Variable], *args) -> tuple:
    """(global mean loss, its gradients w.r.t. `variables`) over a distributed batch, in
    cross-replica context. `loss_fn(*args)` returns per-example losses on a replica's
    slice. Gradients keep their kind: embedding lookups stay `tf.IndexedSlices`."""
    def local(*replica_args):
        with tf.GradientTape() as tape:
            loss = global_mean(loss_fn(*replica_args))
        grads = [tf.zeros_like(v) if g is None else g
                 for g, v in zip(tape.gradient(loss, variables), variables)]
        # Summed here, in replica context: unlike Strategy.reduce, this also sums
        # IndexedSlices across workers (as Keras optimizers do).
        return tf.distribute.get_replica_context().all_reduce(SUM, (loss, grads))
    summed = strategy.run(local, args)
    return tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0], summed)


def distribute_dataset(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset):
    """The dataset's global batches split across the replicas (each worker reads the
    whole input and keeps its replicas' slices: the same global batches as one process)."""
    if strategy.num_replicas_in_sync == 1 and task(strategy)[0] is None:
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def distribute_batch(strategy: tf.distribute.Strategy, batch: dict) -> dict:
    """An in-memory global batch split into contiguous slices, one per replica."""
    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return batch

    def slice_of(context):
        part = context.replica_id_in_sync_group
        return {key: _part(value, part, replicas) for key, value in batch.items()}
    return strategy.experimental_distribute_values_from_function(slice_of)


def _part(value, part: int, parts: int):
    """Slice `part` of `parts` of a tensor's rows, sizes as even as possible."""
    value = tf.convert_to_tensor(value)
    n = tf.shape(value, out_type=tf.int64)[0]
    start, stop = n * part // parts, n * (part + 1) // parts
    return value[start:stop]


def describe(strategy: Optional[tf.distribute.Strategy] = None) -> dict:
    """What metrics.json records of the strategy a run trained under."""
    strategy = strategy or tf.distribute.get_strategy()
    cluster = _cluster(strategy)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        name = "multi-worker"
    elif isinstance(strategy, tf.distribute.MirroredStrategy):
        name = "mirrored"
    elif not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
        name = "default"
    else:
        name = type(strategy).__name__
    return {"strategy": name,
            "replicas": int(strategy.num_replicas_in_sync),
            "workers": sum(len(cluster.get(job, ())) for job in ("chief", "worker"))
            if cluster else 1}
