"""LeapRec on small time steps: the inner steps' minibatches as the driver draws them
now (a step with fewer interactions than the batch size gives all of them, commit
47f4e45) against a full batch drawn with replacement (before), side by side.

    python -m benchmarks.small_steps                 # amazon-beauty, ~6 min
    python -m benchmarks.small_steps --quick         # smoke run (2 steps, tiny models)

Amazon Beauty's train window has 126 monthly time steps, 97 of them with fewer than
1,024 interactions (many with a handful), and each step costs K = 10 inner steps
whatever its size. On the dataset's protocol A train window (built once under
RUNS_DIR/periods, as benchmarks.leaprec does, or --periods), the driver's val-phase
LeapRec learner (`tfmeta.training.ranking.Phase`, its defaults: GTL + OTL gnn-sa of 64
dims, K = 10, batches of 1,024) runs `time_step` on the graph of the steps <= t:

- on --small-steps of the small time steps, spread over their sizes (quantiles of the
  interaction count), once with each batching, interleaved now, before, now, ...;
- on --big-steps of the others, whose batches the change leaves as they were (timed
  once each, to complete the estimate).

Only `time_step` is timed (wall and process CPU), after an untimed warm-up step of each
kind (tracing). Per time step the two medians and their ratio; the estimated training
seconds of one iteration over all the time steps, now and before (the sampled steps'
mean times the number of steps of their kind), and its ratio.

Results: benchmarks/results/small_steps.{md,json} (small_steps-quick.* with --quick).
"""
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.leaprec_speed import Data, Stopwatch  # noqa: E402

from benchmarks.reports import RESULTS_DIR, ROOT  # noqa: E402
RUNS_DIR = os.path.join("runs", "leaprec")
DATASET = "amazon-beauty"
SEED = 0
BATCHINGS = ("now", "before")
FULL = {"small_steps": 6, "big_steps": 2, "options": {}}
QUICK = {"small_steps": 2, "big_steps": 1,
         "options": {"gtl_dim": 8, "otl_dim": 8, "inner_steps": 2, "batch_size": 128}}


def batches_before(part, step: int, count: int, size: int, rng) -> list:
    """The driver's inner-step batches before 47f4e45: `size` rows, with replacement
    when the step has fewer."""
    from tfmeta.training.ranking import _batches
    rows = np.flatnonzero(part.step == step)
    return [_batches(part, rng.choice(rows, size, replace=len(rows) < size))
            for _ in range(count)]


def draw(phase, step: int, batching: str, rng) -> list:
    from tfmeta.training.ranking import time_step_batches
    o = phase.options
    make = time_step_batches if batching == "now" else batches_before
    return make(phase.part, step, o.inner_steps + 1, o.batch_size, rng)


def timed_step(phase, step: int, batches: list) -> dict:
    """`time_step` on the graph of the steps <= `step`; its wall and CPU seconds."""
    part, watch = phase.part, Stopwatch()
    upto = part.step <= step
    phase.scorer.set_graph(part.users[upto], part.items[upto])
    with watch:
        phase.learner.time_step(batches)
    return watch.figures()


def spread(steps: np.ndarray, sizes: np.ndarray, n: int) -> list:
    """n of `steps` at evenly spaced quantiles of their sizes (fewer if they repeat)."""
    if not len(steps) or n < 1:
        return []
    order = steps[np.argsort(sizes[steps], kind="stable")]
    return sorted({int(order[i]) for i in np.linspace(0, len(order) - 1, n).round().astype(int)})


def measure(data: Data, settings: dict, workdir: str) -> dict:
    from tqdm.auto import tqdm

    from tfmeta.training.ranking import RankingOptions
    options = RankingOptions("leaprec", seed=SEED, **settings["options"])
    phase = data.phase(options, workdir)
    sizes = np.bincount(phase.part.step, minlength=phase.part.num_steps)
    small = np.flatnonzero(sizes < options.batch_size)
    big = np.flatnonzero(sizes >= options.batch_size)
    if not len(small):
        raise SystemExit(f"no time step of {data.periods} has fewer than "
                         f"{options.batch_size} interactions: nothing to compare")
    picked_small = spread(small, sizes, settings["small_steps"])
    picked_big = spread(big, sizes, settings["big_steps"])
    rng = np.random.default_rng([SEED, 1])
    phase.learner.begin_iteration()
    warm = picked_small[:1] + picked_big[:1]
    warmup = {b: [timed_step(phase, s, draw(phase, s, b, rng))["wall_seconds"]
                  for s in warm] for b in BATCHINGS}
    rows = []
    for step in tqdm(picked_small + picked_big, desc="time steps", file=sys.stderr):
        kinds = BATCHINGS if step in picked_small else BATCHINGS[:1]
        row = {"step": step, "label": phase.part.step_labels[step],
               "interactions": int(sizes[step]), "small": step in picked_small,
               "batch_rows": {}}
        for batching in kinds:
            batches = draw(phase, step, batching, rng)
            row["batch_rows"][batching] = int(batches[0]["item"].shape[0])
            row[batching] = timed_step(phase, step, batches)
        if step in picked_big:  # the same batches either way
            row["before"], row["batch_rows"]["before"] = row["now"], row["batch_rows"]["now"]
        rows.append(row)
    return summarize(options, sizes, small, big, rows, warmup)


def summarize(options, sizes, small, big, rows, warmup) -> dict:
    import dataclasses

    def mean(kind_rows, batching, clock):
        return float(np.mean([r[batching][f"{clock}_seconds"] for r in kind_rows])) \
            if kind_rows else 0.0
    small_rows = [r for r in rows if r["small"]]
    big_rows = [r for r in rows if not r["small"]]
    estimate = {b: {c: len(small) * mean(small_rows, b, c) + len(big) * mean(big_rows, b, c)
                    for c in ("wall", "cpu")} for b in BATCHINGS}
    median = {b: {c: float(np.median([r[b][f"{c}_seconds"] for r in small_rows]))
                  for c in ("wall", "cpu")} for b in BATCHINGS}
    return {"options": dataclasses.asdict(options), "time_steps": len(sizes),
            "small_time_steps": len(small), "big_time_steps": len(big),
            # measure() exits before this when no step is small
            "small_interactions": {"min": int(sizes[small].min()),
                                   "median": float(np.median(sizes[small]))},
            "rows": rows, "warmup_seconds": warmup,
            "small_step_median_seconds": median,
            "small_step_ratio": {c: median["before"][c] / median["now"][c]
                                 for c in ("wall", "cpu")},
            "iteration_estimate_seconds": estimate,
            "iteration_ratio": {c: estimate["before"][c] / estimate["now"][c]
                                for c in ("wall", "cpu")}}


def render_markdown(report: dict) -> str:
    from benchmarks import machine as machine_info
    r, o = report["result"], report["result"]["options"]
    lines = [*machine_info.timing_header(report, "LeapRec on small time steps: all rows "
                                         "against a full batch with replacement",
                                         "now, before, now, ..."),
             f"- Data: {report['dataset']} protocol A periods (`{report['periods']}`), the "
             f"train window: {r['time_steps']} time steps, {r['small_time_steps']} with "
             f"fewer than {o['batch_size']:,} interactions (median "
             f"{r['small_interactions']['median']:.0f}, fewest "
             f"{r['small_interactions']['min']}).",
             f"- The driver's val-phase LeapRec learner: gtl_dim {o['gtl_dim']}, otl_dim "
             f"{o['otl_dim']}, K {o['inner_steps']}, batch {o['batch_size']:,}; `time_step` "
             "(K + 1 forward / backward passes, K inner Adam steps, Leap's terms) on the "
             "graph of the steps <= t, timed alone.", "",
             "| time step | interactions | batch rows now / before | now wall s | before "
             "wall s | before / now (wall) | now CPU s | before CPU s |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for row in r["rows"]:
        n, b = row["now"], row["before"]
        ratio = (f"{b['wall_seconds'] / n['wall_seconds']:.2f}x" if row["small"]
                 else "same batches")
        rows = row["batch_rows"]
        lines.append(f"| {row['label']} | {row['interactions']:,} | {rows['now']:,} / "
                     f"{rows['before']:,} | {n['wall_seconds']:.2f} "
                     f"| {b['wall_seconds']:.2f} | {ratio} | {n['cpu_seconds']:.2f} | "
                     f"{b['cpu_seconds']:.2f} |")
    e, s = r["iteration_estimate_seconds"], r["small_step_ratio"]
    lines += ["", f"- Small time steps, median: before / now **{s['wall']:.2f}x** wall, "
              f"{s['cpu']:.2f}x CPU.",
              f"- One iteration's `time_step` seconds, estimated from these means (x "
              f"{r['small_time_steps']} small and {r['big_time_steps']} other steps): now "
              f"{e['now']['wall']:,.0f} s, before {e['before']['wall']:,.0f} s wall: "
              f"**{r['iteration_ratio']['wall']:.2f}x** (CPU {e['now']['cpu']:,.0f} against "
              f"{e['before']['cpu']:,.0f} s, {r['iteration_ratio']['cpu']:.2f}x). Scoring "
              "the validation window after an iteration is not included.",
              "- The expected loss of a small step's inner step is the same either way "
              "(the mean BPR loss over its interactions and uniform negatives); a full "
              "batch with replacement averages more negatives per interaction."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    import argparse
    import tempfile

    import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)
    import tensorflow as tf

    from benchmarks import machine as machine_info
    from benchmarks.periods import given_or_built
    parser = argparse.ArgumentParser(prog="python -m benchmarks.small_steps",
                                     description="LeapRec's inner-step batches on small "
                                                 "time steps, now against before.")
    parser.add_argument("--dataset", default=DATASET, help=f"default {DATASET}")
    parser.add_argument("--periods", default=None,
                        help="an existing protocol A build of --dataset (default: built "
                             "once under RUNS_DIR/periods)")
    parser.add_argument("--small-steps", type=int, default=None,
                        help=f"small time steps timed (default {FULL['small_steps']})")
    parser.add_argument("--big-steps", type=int, default=None,
                        help=f"other time steps timed (default {FULL['big_steps']})")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="the driver's batch size (default 1024, --quick 128): steps "
                             "with fewer interactions are the small ones")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run; results get a small_steps-quick prefix")
    parser.add_argument("--runs-dir", default=RUNS_DIR,
                        help=f"where the periods are built (default {RUNS_DIR})")
    parser.add_argument("--results-dir", default=RESULTS_DIR,
                        help="where the .md and .json go (default benchmarks/results)")
    args = parser.parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    for key in ("small_steps", "big_steps"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.batch_size is not None:
        settings["options"] = dict(settings["options"], batch_size=args.batch_size)
    if settings["small_steps"] < 1:
        parser.error("--small-steps must be >= 1")
    argv = sys.argv[1:] if argv is None else list(argv)
    tf.config.experimental.enable_op_determinism()  # as train_ranking
    started = time.perf_counter()
    periods = given_or_built(args.dataset, "a", args.periods,
                             os.path.join(ROOT, args.runs_dir))
    report = machine_info.timing_report(
        "small_steps", argv, ["tensorflow", "tf-keras", "tensorflow-gnn", "numpy"],
        quick=args.quick, settings=settings, dataset=args.dataset,
        periods=os.path.relpath(os.path.abspath(periods), ROOT))
    with tempfile.TemporaryDirectory(prefix="small-steps-") as workdir:
        report["result"] = measure(Data(periods), settings, workdir)
    machine_info.finish(args.results_dir, "small_steps-quick" if args.quick else "small_steps",
                        report, render_markdown, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
