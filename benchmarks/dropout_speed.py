"""Dropout speed: the models' training step with tfmeta's CheckpointedDropout (stateless
masks from a checkpointed draw counter, now) against Keras' Dropout (a stateful
RandomUniform op, before), side by side.

    python -m benchmarks.dropout_speed                       # yelp-a, ~3 min
    python -m benchmarks.dropout_speed --dataset movielens-100k --quick   # smoke run

Every model with dropout (gnn-sa: LeapRec's, sasrec, gru4rec, gcn, ngcf) draws a mask
for its node states or tokens in every training step. For the dataset's protocol A train
window (built once under runs/leaprec/periods, as benchmarks.leaprec does, or --periods),
each model at the driver's defaults (seed 0) is built twice, with either dropout, and
computes the BPR loss of one batch of --batch-size interactions and its gradient in
training mode, in a `tf.function`, op determinism on as in `tfmeta train`
(benchmarks.propagation_speed.Step). Each is traced and warmed untimed, then timed
--repeats times, interleaved CheckpointedDropout, Keras, ... on the same batch. Wall and
process CPU medians, the ratio Keras / CheckpointedDropout. Without dropout (inference
mode) the two builds must compute the same loss (1e-6 relative) or the benchmark exits
1: the same model, only the masks' source differs.

Results: benchmarks/results/dropout_speed.{md,json} (-quick with --quick).
"""
import os
import sys
from contextlib import ExitStack
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODELS = ("gnn-sa", "sasrec", "gru4rec", "gcn", "ngcf")
IMPLEMENTATIONS = ("checkpointed", "keras")
TOLERANCE = 1e-6
SETTINGS = {"full": {"repeats": 5, "models": MODELS}, "quick": {"repeats": 1,
                                                                "models": ("sasrec",)}}
USERS = ("tfmeta.models.graph", "tfmeta.models.sequence", "tfmeta.models.baselines")


def keras_dropout(rate, seed=None, **kwargs):
    """Keras' Dropout where tfmeta builds a CheckpointedDropout (seeded by the global
    seed, as tfmeta's layers were)."""
    import tensorflow as tf
    return tf.keras.layers.Dropout(rate, **kwargs)


def keras_attention(*args, dropout_seed=None, **kwargs):
    """Keras' MultiHeadAttention, with its own Dropout on the attention weights."""
    import tensorflow as tf
    return tf.keras.layers.MultiHeadAttention(*args, **kwargs)


def dropout(kind: str) -> ExitStack:
    """Models built inside use the given dropout ("checkpointed": tfmeta's own)."""
    stack = ExitStack()
    if kind == "keras":
        for module in USERS:
            stack.enter_context(mock.patch(f"{module}.CheckpointedDropout", keras_dropout))
        stack.enter_context(mock.patch("tfmeta.models.sequence.MultiHeadAttention",
                                       keras_attention))
    return stack


def compare(steps: dict, repeats: int) -> dict:
    from benchmarks import machine as machine_info

    def run(kind):
        return steps[kind].run("csr")

    for kind in IMPLEMENTATIONS:   # trace and warm up
        run(kind)
    losses = {kind: steps[kind].run("csr", training=False)[0][0] for kind in IMPLEMENTATIONS}
    timed = machine_info.interleaved(run, IMPLEMENTATIONS, repeats, "pairs")
    difference = abs(losses["keras"] - losses["checkpointed"]) / max(
        abs(losses["checkpointed"]), 1e-12)
    return {"seconds": timed["seconds"], "median_seconds": timed["median_seconds"],
            "ratio": machine_info.ratio(timed["median_seconds"], "keras", "checkpointed"),
            "loss": losses["checkpointed"], "relative_loss_difference": difference,
            "agree": difference <= TOLERANCE}


def render_markdown(report: dict) -> str:
    from benchmarks import machine as machine_info
    lines = [*machine_info.timing_header(report, "Dropout: CheckpointedDropout against "
                                         "Keras' Dropout", "checkpointed, Keras, ..."),
             f"- Data: {report['dataset']}'s train window (`{report['periods']}`). One "
             f"batch of {report['batch_size']:,} with its negatives; loss and gradient "
             f"(forward and backward) in training mode, medians of {report['repeats']} "
             "repetition(s) after an untimed warm-up.", "",
             "| model | CheckpointedDropout ms | Keras Dropout ms | Keras / checkpointed "
             "(wall) | Keras / checkpointed (CPU) | loss without dropout, relative "
             "difference |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, row in report["models"].items():
        m = row["median_seconds"]
        lines.append(f"| {name} | {1000 * m['checkpointed']['wall']:,.0f} | "
                     f"{1000 * m['keras']['wall']:,.0f} | **{row['ratio']['wall']:.2f}x** | "
                     f"{row['ratio']['cpu']:.2f}x | {row['relative_loss_difference']:.1e}"
                     f"{'' if row['agree'] else ' (**disagree**)'} |")
    return "\n".join(lines) + "\n"


def measure(name: str, data, part, report: dict) -> tuple:
    """(timings, scorer) of one model built with either dropout (`run_over_models`)."""
    from benchmarks.propagation_speed import Step
    steps = {}
    for kind in IMPLEMENTATIONS:
        with dropout(kind):
            steps[kind] = Step(name, data, part, report["batch_size"])
    return compare(steps, report["repeats"]), steps["checkpointed"].scorer


def main(argv=None) -> int:
    from benchmarks.propagation_speed import run_over_models
    return run_over_models("dropout_speed", "The models' training step with "
                           "CheckpointedDropout against Keras' Dropout.", MODELS, SETTINGS,
                           measure, render_markdown,
                           "the two dropouts' models disagree without dropout", argv)


if __name__ == "__main__":
    sys.exit(main())
