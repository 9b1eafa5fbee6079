"""Graph propagation speed: the graph models' training step with A_hat @ X on TF's CSR
sparse matrix ops (now) against tf.sparse.sparse_dense_matmul (before), side by side.

    python -m benchmarks.propagation_speed                    # yelp-a, ~5 min
    python -m benchmarks.propagation_speed --dataset movielens-100k --quick   # smoke run

Every graph model (gcn, ngcf, lightgcn, gnn-sa: LeapRec's) propagates the whole
interaction graph in every training step, forward and backward, so this product is
most of a step on a real graph. For the dataset's protocol A train window (built once
under RUNS_DIR/periods, as benchmarks.leaprec does, or --periods), each model at the
driver's defaults (seed 0) computes the BPR loss of one batch of --batch-size
interactions with uniform negatives and its gradient, in training mode (dropout on), in
a `tf.function`, op determinism on as in `tfmeta train`: the part the propagation
changes (the optimizer's update does not). Each implementation is traced
and warmed untimed, then timed --repeats times, interleaved CSR, COO, CSR, ... on the
same batch. Wall and process CPU medians, the ratio COO / CSR; the two losses and
gradients without dropout must agree to float rounding (1e-4, relative to the loss and
to the largest gradient entry) or the benchmark exits 1.

Results: benchmarks/results/propagation_speed.{md,json} (-quick with --quick).
"""
import os
import sys
import time
from contextlib import contextmanager
from unittest import mock

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.reports import RESULTS_DIR, ROOT  # noqa: E402
RUNS_DIR = os.path.join("runs", "leaprec")   # where benchmarks/leaprec.py builds its periods
DATASET = "yelp-a"
MODELS = ("lightgcn", "gcn", "ngcf", "gnn-sa")
IMPLEMENTATIONS = ("csr", "coo")
SEED, WINDOWS, TOLERANCE = 0, ("train",), 1e-4
SETTINGS = {"full": {"repeats": 5, "models": MODELS}, "quick": {"repeats": 1,
                                                                "models": ("lightgcn",)}}


def coo_propagate(graph, values):
    """The propagation as tfmeta computed it before: COO sparse-dense matmul, TF's
    gradient."""
    import tensorflow as tf
    from tfmeta.models.graph import Adjacency, normalized_adjacency
    if isinstance(graph, Adjacency):   # models prepare A_hat once; COO needs the graph
        graph = graph.graph
    return tf.sparse.sparse_dense_matmul(normalized_adjacency(graph), values)


@contextmanager
def propagation(kind: str):
    """The graph models with the given propagation ("csr": tfmeta's own)."""
    if kind == "csr":
        yield
        return
    with mock.patch("tfmeta.models.graph.propagate", coo_propagate), \
            mock.patch("tfmeta.models.baselines.propagate", coo_propagate):
        yield


class Step:
    """One model's BPR loss and gradient on one batch, in a tf.function per
    implementation (traced inside its `propagation`, so each keeps its own graph;
    `implementations`: kind -> the context manager its function is traced in)."""

    def __init__(self, model_name: str, data, part, batch_size: int,
                 implementations=None):
        self.implementations = implementations or propagation
        import tensorflow as tf
        from tfmeta.meta import leaprec
        from tfmeta.training.ranking import RankingOptions, build_models
        options = RankingOptions(model_name, seed=SEED)
        tf.keras.utils.set_random_seed(SEED)  # dropout's draws, as the driver's Phase
        self.scorer = leaprec.Scorer(list(build_models(options, data, SEED).values()))
        self.scorer.set_graph(part.users, part.items)
        rows = np.random.default_rng(SEED).choice(len(part), batch_size, replace=False)
        negatives = leaprec.Negatives(part.warm_items(), SEED)
        self.batch = negatives.attach({"user": tf.constant(part.users[rows]),
                                       "item": tf.constant(part.items[rows]),
                                       "history": tf.constant(part.history[rows])})
        self.functions = {}

    def run(self, kind: str, training: bool = True) -> tuple:
        """((loss, *gradients), wall s, CPU s); training=False: without dropout, for
        comparing the two implementations (dropout draws differ from call to call)."""
        import tensorflow as tf
        from tfmeta.models.ranking import bpr_loss
        if (kind, training) not in self.functions:
            @tf.function
            def loss_and_gradient(batch):
                items = tf.stack([batch["item"], batch["negative"]], axis=1)
                with tf.GradientTape() as tape:
                    loss = bpr_loss(self.scorer(batch["user"], batch["history"], items,
                                                training=training))
                return loss, tape.gradient(loss, self.scorer.trainable_variables)
            self.functions[kind, training] = loss_and_gradient
        with self.implementations(kind):
            wall, cpu = time.perf_counter(), time.process_time()
            loss, gradients = self.functions[kind, training](self.batch)
            values = [float(loss)] + [np.asarray(tf.convert_to_tensor(g)) for g in gradients]
            return values, time.perf_counter() - wall, time.process_time() - cpu


def agree(a: list, b: list) -> float:
    """The larger of the two (loss, gradients)' relative loss difference and largest
    gradient difference relative to the largest gradient entry of all (a variable's
    own scale would not do: some, like a layer norm's bias here, get gradients of
    1e-10, pure rounding, whose relative differences are large either way)."""
    scale = max(max(float(np.max(np.abs(x))) for x in a[1:]), 1e-12)
    return max([abs(a[0] - b[0]) / max(abs(a[0]), 1e-12)] +
               [float(np.max(np.abs(x - y))) / scale for x, y in zip(a[1:], b[1:])])


def compare(step: Step, repeats: int) -> dict:
    from benchmarks import machine as machine_info
    for kind in IMPLEMENTATIONS:   # trace and warm up
        step.run(kind)
    exact = {kind: step.run(kind, training=False)[0] for kind in IMPLEMENTATIONS}
    timed = machine_info.interleaved(step.run, IMPLEMENTATIONS, repeats, "pairs")
    difference = agree(exact["csr"], exact["coo"])
    return {"seconds": timed["seconds"], "median_seconds": timed["median_seconds"],
            "ratio": machine_info.ratio(timed["median_seconds"], "coo", "csr"),
            "loss": exact["csr"][0], "max_relative_difference": difference,
            "agree": difference <= TOLERANCE}


def render_markdown(report: dict) -> str:
    from benchmarks import machine as machine_info
    lines = [*machine_info.timing_header(report, "Graph propagation: CSR against COO "
                                         "sparse matmul", "CSR, COO, CSR, ..."),
             graph_line(report, f"One batch of {report['batch_size']:,} with its "
                        "negatives; loss and gradient (forward and backward), medians of "
                        f"{report['repeats']} repetition(s) after an untimed warm-up."), "",
             "| model | CSR ms | COO ms | COO / CSR (wall) | COO / CSR (CPU) | "
             "max relative difference |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, row in report["models"].items():
        m = row["median_seconds"]
        lines.append(f"| {name} | {1000 * m['csr']['wall']:,.0f} | "
                     f"{1000 * m['coo']['wall']:,.0f} | **{row['ratio']['wall']:.2f}x** | "
                     f"{row['ratio']['cpu']:.2f}x | {row['max_relative_difference']:.1e}"
                     f"{'' if row['agree'] else ' (**disagree**)'} |")
    return "\n".join(lines) + "\n"


def parse_args(argv, benchmark: str = "propagation_speed",
               description: str = "The graph models' training step with CSR against COO "
                                  "propagation.",
               models=MODELS, settings=None):
    """The options of a training-step timing benchmark (this one, benchmarks.dropout_speed)
    over `models`, with `settings` = {"full" | "quick": {"repeats", "models"}}."""
    import argparse
    settings = settings or SETTINGS
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{benchmark}",
                                     description=description)
    parser.add_argument("--dataset", default=DATASET, help=f"default {DATASET}")
    parser.add_argument("--periods", default=None,
                        help="an existing protocol A build of --dataset (default: built "
                             "once under RUNS_DIR/periods)")
    parser.add_argument("--models", nargs="+", choices=models, default=None,
                        help=f"default {' '.join(settings['full']['models'])} (--quick: "
                             f"{' '.join(settings['quick']['models'])})")
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"timed pairs per model (default {settings['full']['repeats']}, "
                             f"--quick {settings['quick']['repeats']})")
    parser.add_argument("--batch-size", type=int, default=1024,
                        help="interactions per batch (default 1024, the driver's)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run; results get a {benchmark}-quick prefix")
    parser.add_argument("--runs-dir", default=RUNS_DIR,
                        help=f"where the periods are built (default {RUNS_DIR})")
    parser.add_argument("--results-dir", default=RESULTS_DIR,
                        help="where the .md and .json go (default benchmarks/results)")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be >= 1")
    chosen = settings["quick" if args.quick else "full"]
    args.models = tuple(args.models or chosen["models"])
    args.repeats = args.repeats or chosen["repeats"]
    return args


def train_window(benchmark: str, args, argv: list) -> tuple:
    """(data, part, report): --dataset's protocol A periods (--periods, or built once
    under --runs-dir), the interactions of its train window, and the benchmark's timing
    report begun (dataset, periods, batch size, repeats; "models" to fill)."""
    from benchmarks import machine as machine_info
    from benchmarks.periods import given_or_built
    from tfmeta.data import interactions as inter
    from tfmeta.data.periods import PeriodDataset
    periods = given_or_built(args.dataset, "a", args.periods,
                             os.path.join(ROOT, args.runs_dir))
    data = PeriodDataset(periods)
    part = inter.load(data, WINDOWS, 50)
    report = machine_info.timing_report(
        benchmark, argv, ["tensorflow", "tf-keras", "tensorflow-gnn", "numpy"],
        quick=args.quick, repeats=args.repeats,
        dataset=data.manifest.get("dataset", args.dataset),
        batch_size=min(args.batch_size, len(part)), models={},
        periods=os.path.relpath(os.path.abspath(periods), ROOT))
    return data, part, report


def graph_line(report: dict, detail: str) -> str:
    """The report's line about the graph timed on, then `detail`."""
    g = report["graph"]
    return (f"- Graph: {report['dataset']}'s train window (`{report['periods']}`), "
            f"{g['interactions']:,} interactions ({g['edges']:,} directed edges), "
            f"{g['nodes']:,} nodes. {detail}")


def run_over_models(benchmark: str, description: str, models, settings, measure, render,
                    disagreement: str, argv=None) -> int:
    """The shared main of the training-step timing benchmarks (this one,
    benchmarks.dropout_speed, benchmarks.adjacency_speed): options (`parse_args`), the
    train window, `measure(name, data, part, report) -> (row, scorer)` per model into
    report["models"], the train graph's size, and `finish`'s report and exit status."""
    import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)
    import tensorflow as tf

    args = parse_args(argv, benchmark, description, models, settings)
    argv = sys.argv[1:] if argv is None else list(argv)
    tf.config.experimental.enable_op_determinism()  # as train_ranking
    started = time.perf_counter()
    data, part, report = train_window(benchmark, args, argv)
    for name in args.models:
        print(f"{name}: {description}", file=sys.stderr, flush=True)
        report["models"][name], scorer = measure(name, data, part, report)
    model = scorer.models[0]
    report["graph"] = {"interactions": len(part), "nodes": model.num_nodes,
                       "edges": int(tf.size(model.edge_sources))}
    return finish(benchmark, args, report, render, started, disagreement)


def measure(name: str, data, part, report: dict) -> tuple:
    """(timings, scorer) of one model (`run_over_models`)."""
    step = Step(name, data, part, report["batch_size"])
    return compare(step, report["repeats"]), step.scorer


def main(argv=None) -> int:
    return run_over_models("propagation_speed", "The graph models' training step with CSR "
                           "against COO propagation.", MODELS, SETTINGS, measure,
                           render_markdown, f"CSR and COO disagree beyond {TOLERANCE:g}",
                           argv)


def finish(benchmark: str, args, report: dict, render, started: float,
           disagreement: str) -> int:
    """Writes the report (with a -quick suffix under --quick); the exit status: 1, with
    `disagreement` and the models' names, if any model's two arms disagree."""
    from benchmarks import machine as machine_info
    machine_info.finish(args.results_dir, f"{benchmark}-quick" if args.quick else benchmark,
                        report, render, started)
    disagree = [n for n, row in report["models"].items() if not row["agree"]]
    if disagree:
        print(f"{disagreement} on {', '.join(disagree)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
