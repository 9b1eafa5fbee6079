"""Trains under one strategy and another from the same seeds (tests/test_distribute.py).

    python tests/replicas_check.py mirrored B_PERIODS A_PERIODS SCRATCH [METHOD ...]
        default strategy against MirroredStrategy over two logical CPUs, for the
        methods named (default: every method); prints {method: largest parameter
        difference} as JSON
    python tests/replicas_check.py STRATEGY B_PERIODS A_PERIODS SCRATCH OUT.npz
        (STRATEGY: default or multi-worker, TF_CONFIG set) ASMG-GRU-multi over a few
        periods and one LeapRec iteration; the chief saves the parameters to OUT.npz

Each mode runs in its own process: logical devices and collective ops must be set up
before TensorFlow starts."""
import json
import sys

import tfmeta  # noqa: F401  (Keras 2 first)
import numpy as np
import tensorflow as tf

if sys.argv[1] == "mirrored":
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)

from tfmeta import distribute  # noqa: E402
from tfmeta.data import interactions as inter  # noqa: E402
from tfmeta.data.periods import PeriodDataset  # noqa: E402
from tfmeta.models.embedding_mlp import EmbeddingMLP  # noqa: E402
from tfmeta.training import incremental, ranking  # noqa: E402

PROTOCOL_B = ("iu", "bu-3", "incctr", "spmf", "sml", "asmg-gru-multi", "asmg-linear")
PROTOCOL_A = ("mf", "leaprec+lightgcn", "fomaml+mf")


def protocol_b(periods: str, method: str, strategy) -> list:
    """Pre-train on period 1, update on 2-4: the base and the served parameters."""
    tf.keras.utils.set_random_seed(0)
    data = PeriodDataset(periods)
    with strategy.scope():
        model = EmbeddingMLP.from_period_dataset(data, seed=0)
        update = incremental.make_strategy(model, incremental.IncrementalOptions(
            method=method, spmf_capacity=300))
    source = incremental.Periods(data, 100, 0)  # 100: the last batch splits unevenly
    update.pretrain(source, [1])
    for i in (2, 3, 4):
        update.update(source, i)
    return [np.asarray(v) for v in model.trainable_variables + update.serving_weights()]


def protocol_a(periods: str, method: str, strategy, out: str) -> list:
    """One epoch / iteration of the val phase: the trained parameters and the loss."""
    data = PeriodDataset(periods)
    options = ranking.RankingOptions(method=method, embedding_dim=16, gtl_dim=16, otl_dim=8,
                                     epochs=1, iterations=1, inner_steps=2,
                                     batch_size=3000 if method == "mf" else 300)
    everything = inter.read_interactions(data, ("train", "val", "test"))
    timelines = inter.UserTimelines(everything["user"], everything["item"], everything["ts"])
    phase = ranking.Phase(data, "val", ("train",), options, out, timelines, everything,
                          distribution=strategy)
    losses = []
    for _ in phase.train(losses):
        pass
    return [np.asarray(v) for v in phase.scorer.trainable_variables] + [np.ravel(losses)]


def largest_difference(a: list, b: list) -> float:
    assert len(a) == len(b)
    return max(float(np.max(np.abs(x - y))) if x.size else 0.0 for x, y in zip(a, b))


def compare(b_periods: str, a_periods: str, scratch: str, *methods: str) -> None:
    single = tf.distribute.get_strategy()
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    methods = set(methods or PROTOCOL_B + PROTOCOL_A)
    report = {}
    for method in (m for m in PROTOCOL_B if m in methods):
        report[method] = largest_difference(protocol_b(b_periods, method, single),
                                            protocol_b(b_periods, method, mirrored))
    for method in (m for m in PROTOCOL_A if m in methods):
        report[method] = largest_difference(
            protocol_a(a_periods, method, single, f"{scratch}/{method}-1"),
            protocol_a(a_periods, method, mirrored, f"{scratch}/{method}-2"))
    print(json.dumps(report))


def save(strategy_name: str, b_periods: str, a_periods: str, scratch: str, out: str) -> None:
    strategy = distribute.from_name(strategy_name)
    scratch = distribute.run_directory(strategy, scratch)  # one checkpoint folder each
    arrays = (protocol_b(b_periods, "asmg-gru-multi", strategy)
              + protocol_a(a_periods, "leaprec+lightgcn", strategy, scratch))
    if distribute.is_chief(strategy):
        np.savez(out, *arrays)


if __name__ == "__main__":
    if sys.argv[1] == "mirrored":
        compare(*sys.argv[2:])
    else:
        save(*sys.argv[1:6])
