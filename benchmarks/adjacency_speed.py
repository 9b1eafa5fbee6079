"""Adjacency preparation: the graph models' training step with A_hat prepared once per
forward pass (now) against prepared for every product (before), side by side.

    python -m benchmarks.adjacency_speed --dataset amazon-beauty    # ~5 min
    python -m benchmarks.adjacency_speed --dataset movielens-100k --quick   # smoke run

Before, every `propagate` call rebuilt A_hat's CSR matrices from the GraphTensor: a sort
of the edges into row order, and the transpose's sort, for every layer of every forward
pass. Now a model prepares A_hat once per forward pass (`tfmeta.models.graph.
model_adjacency`): `set_graph` stores the edges in row order (checked in O(E), not
sorted) and both directions (A_hat is its own transpose, one CSR matrix serves the
product and its gradient). That preparation does not depend on the batch, so it weighs
most on small batches: LeapRec's small time steps (Amazon Beauty's median monthly
step has 40 interactions, `SMALL_BATCH`) pay a whole-graph propagation per inner step.

For the dataset's protocol A train window (built once under runs/leaprec/periods, as
benchmarks.leaprec does, or --periods), each model at the driver's defaults (seed 0)
computes the BPR loss of one batch and its gradient in training mode, in a
`tf.function`, op determinism on as in `tfmeta train` (benchmarks.propagation_speed.
Step), for a batch of `SMALL_BATCH` and one of --batch-size. Each arm is traced and
warmed untimed, then timed --repeats times, interleaved now, before, now, ... on the same
batch. Wall and process CPU medians, the ratio before / now. Without dropout both arms
must compute the same loss and gradients to float rounding (1e-6 relative to the loss
and to the largest gradient entry) or the benchmark exits 1.

The "before" arm sorts edges that `set_graph` now stores already in order (the model is
shared): a sort of sorted input, no dearer and likely cheaper than before's, so its
ratio is if anything an underestimate.

Results: benchmarks/results/adjacency_speed.{md,json} (-quick with --quick).
"""
import os
import sys
from contextlib import ExitStack
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODELS = ("gnn-sa", "gcn", "ngcf", "lightgcn")
IMPLEMENTATIONS = ("once", "per-product")
SMALL_BATCH = 40   # Amazon Beauty's median monthly time step (benchmarks/results/small_steps.md)
TOLERANCE = 1e-6
SETTINGS = {"full": {"repeats": 5, "models": MODELS}, "quick": {"repeats": 1,
                                                                "models": ("gcn",)}}
USERS = ("tfmeta.models.graph", "tfmeta.models.baselines")


def per_product_propagate(graph, values):
    """The propagation as tfmeta computed it before: A_hat and its transpose sorted and
    converted to CSR in every call, from the GraphTensor."""
    import tensorflow as tf
    from tfmeta.models import graph as g
    if isinstance(graph, g.Adjacency):
        graph = graph.graph
    adjacency = tf.sparse.reorder(g.normalized_adjacency(graph))
    return g._csr_matmul(g._csr(adjacency), g._csr(tf.sparse.transpose(adjacency)), values)


def preparation(kind: str) -> ExitStack:
    """Graph models traced inside propagate as `kind` says ("once": tfmeta's own)."""
    stack = ExitStack()
    if kind == "per-product":
        for module in USERS:
            stack.enter_context(mock.patch(f"{module}.propagate", per_product_propagate))
    return stack


def compare(steps: dict, repeats: int) -> dict:
    """{batch size: timings and agreement} of one model's Steps by batch size."""
    from benchmarks import machine as machine_info
    from benchmarks.propagation_speed import agree
    rows = {}
    for size, step in steps.items():
        for kind in IMPLEMENTATIONS:   # trace and warm up
            step.run(kind)
        difference = agree(*(step.run(kind, training=False)[0] for kind in IMPLEMENTATIONS))
        timed = machine_info.interleaved(step.run, IMPLEMENTATIONS, repeats, f"batch {size}")
        rows[str(size)] = {
            "seconds": timed["seconds"], "median_seconds": timed["median_seconds"],
            "ratio": machine_info.ratio(timed["median_seconds"], "per-product", "once"),
            "max_relative_difference": difference, "agree": difference <= TOLERANCE}
    return {"batches": rows, "agree": all(r["agree"] for r in rows.values())}


def render_markdown(report: dict) -> str:
    from benchmarks import machine as machine_info
    from benchmarks.propagation_speed import graph_line
    lines = [*machine_info.timing_header(report, "Adjacency preparation: once per forward "
                                         "pass against once per product", "now, before, ..."),
             graph_line(report, "Loss and gradient (forward and backward) of one batch "
                        "with its negatives in training mode, medians of "
                        f"{report['repeats']} repetition(s) after an untimed warm-up."),
             "- Now: A_hat prepared once per forward pass, edges stored in row order, one "
             "CSR matrix for the product and its gradient. Before: sorted and converted "
             "for every product, and its transpose too.", "",
             "| model | batch | now ms | before ms | before / now (wall) | before / now "
             "(CPU) | max relative difference |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, row in report["models"].items():
        for size, cell in row["batches"].items():
            m = cell["median_seconds"]
            lines.append(
                f"| {name} | {int(size):,} | {1000 * m['once']['wall']:,.0f} | "
                f"{1000 * m['per-product']['wall']:,.0f} | **{cell['ratio']['wall']:.2f}x** "
                f"| {cell['ratio']['cpu']:.2f}x | {cell['max_relative_difference']:.1e}"
                f"{'' if cell['agree'] else ' (**disagree**)'} |")
    return "\n".join(lines) + "\n"


def measure(name: str, data, part, report: dict) -> tuple:
    """(timings at both batch sizes, scorer) of one model (`run_over_models`)."""
    from benchmarks.propagation_speed import Step
    sizes = sorted({min(SMALL_BATCH, len(part)), report["batch_size"]})
    steps = {size: Step(name, data, part, size, preparation) for size in sizes}
    return compare(steps, report["repeats"]), steps[sizes[0]].scorer


def main(argv=None) -> int:
    from benchmarks.propagation_speed import run_over_models
    return run_over_models("adjacency_speed", "The graph models' training step with A_hat "
                           "prepared once per forward pass against once per product.",
                           MODELS, SETTINGS, measure, render_markdown,
                           "the two preparations disagree", argv)


if __name__ == "__main__":
    sys.exit(main())
