"""Dropout speed: the models' training step with tfmeta's CheckpointedDropout (stateless
masks from a checkpointed draw counter, now) against Keras' Dropout (a stateful
RandomUniform op, before), side by side.

    python -m benchmarks.dropout_speed                       # yelp-a, ~3 min
    python -m benchmarks.dropout_speed --dataset movielens-100k --quick   # smoke run

Every model with dropout (gnn-sa: LeapRec's, sasrec, gru4rec, gcn, ngcf) draws a mask
for its node states or tokens in every training step. For the dataset's protocol A train
window (built once under RUNS_DIR/periods, as benchmarks.leaprec does, or --periods),
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
import time
from contextlib import ExitStack
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")
RUNS_DIR = os.path.join("runs", "leaprec")   # where benchmarks/leaprec.py builds its periods
DATASET = "yelp-a"
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


def parse_args(argv):
    import argparse
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.dropout_speed",
        description="The models' training step with CheckpointedDropout against Keras' "
                    "Dropout.")
    parser.add_argument("--dataset", default=DATASET, help=f"default {DATASET}")
    parser.add_argument("--periods", default=None,
                        help="an existing protocol A build of --dataset (default: built "
                             "once under RUNS_DIR/periods)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=None,
                        help=f"default {' '.join(MODELS)} (--quick: sasrec)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed pairs per model (default 5, --quick 1)")
    parser.add_argument("--batch-size", type=int, default=1024,
                        help="interactions per batch (default 1024, the driver's)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run; results get a dropout_speed-quick prefix")
    parser.add_argument("--runs-dir", default=RUNS_DIR,
                        help=f"where the periods are built (default {RUNS_DIR})")
    parser.add_argument("--results-dir", default=RESULTS_DIR,
                        help="where the .md and .json go (default benchmarks/results)")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


def main(argv=None) -> int:
    import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)
    import tensorflow as tf

    from benchmarks import machine as machine_info
    from benchmarks.asmg import given_or_built
    from benchmarks.propagation_speed import Step
    from tfmeta.data import interactions as inter
    from tfmeta.data.periods import PeriodDataset
    args = parse_args(argv)
    settings = SETTINGS["quick" if args.quick else "full"]
    models = tuple(args.models or settings["models"])
    repeats = args.repeats or settings["repeats"]
    argv = sys.argv[1:] if argv is None else list(argv)
    tf.config.experimental.enable_op_determinism()  # as train_ranking
    started = time.perf_counter()
    periods = given_or_built(args.dataset, "a", args.periods,
                             os.path.join(ROOT, args.runs_dir))
    data = PeriodDataset(periods)
    part = inter.load(data, ("train",), 50)
    report = machine_info.timing_report(
        "dropout_speed", argv, ["tensorflow", "tf-keras", "tensorflow-gnn", "numpy"],
        quick=args.quick, repeats=repeats, dataset=data.manifest.get("dataset", args.dataset),
        batch_size=min(args.batch_size, len(part)), models={},
        periods=os.path.relpath(os.path.abspath(periods), ROOT))
    for name in models:
        print(f"{name}: CheckpointedDropout against Keras' Dropout ...", file=sys.stderr,
              flush=True)
        steps = {}
        for kind in IMPLEMENTATIONS:
            with dropout(kind):
                steps[kind] = Step(name, data, part, report["batch_size"])
        report["models"][name] = compare(steps, repeats)
    machine_info.finish(args.results_dir,
                        "dropout_speed-quick" if args.quick else "dropout_speed",
                        report, render_markdown, started)
    disagree = [n for n, row in report["models"].items() if not row["agree"]]
    if disagree:
        print(f"the two dropouts' models disagree without dropout on {', '.join(disagree)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
