"""Protocol A evaluation speed: tfmeta's id lookups with the vocabulary held as a tensor
(now) against a Python list (before commit 96f1770), side by side in one run.

    python -m benchmarks.evaluation_speed                     # movielens-100k, yelp-a
    python -m benchmarks.evaluation_speed --datasets movielens-100k --quick   # smoke run

Why it matters: Keras tracks a layer's list attributes element by element and walks them
on every eager call, so a StringLookup built from a list of 60,000 ids spent 29 ms per
call before looking anything up; `evaluate` calls four per batch of candidates, and on
yelp-a three quarters of a run's scoring went there.

For each dataset: its protocol A periods, built once under RUNS_DIR/periods (as
benchmarks.leaprec does), or --periods; an untrained BPR-MF model (`mf` at the driver's
defaults, seed 0: scoring costs the same whatever the weights) with the train window's
graph; then `tfmeta.evaluation.protocol_a.evaluate` on the validation window, sampled
only (what --choose-budget scores after every epoch) and with full ranking (the end of a
phase). Each (mode, lookup) pair is warmed once untimed, then timed --repeats times,
interleaved tensor, list, tensor, list, ... so both see the same contention. Wall
(perf_counter) and process CPU seconds, medians, the ratio list / tensor and instances
per second. Both lookups must give the same figures, exactly, or the benchmark exits 1.

Results: benchmarks/results/evaluation_speed.{md,json} (evaluation_speed-quick.* with
--quick: one repetition; a smoke test, not evidence).
"""
import os
import sys
import time
from contextlib import contextmanager
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.reports import RESULTS_DIR, ROOT  # noqa: E402
RUNS_DIR = os.path.join("runs", "leaprec")   # where benchmarks/leaprec.py builds its periods
DATASETS = ("movielens-100k", "yelp-a")
LOOKUPS = ("tensor", "list")
MODES = {"sampled": False, "sampled + full": True}   # mode -> evaluate(full_ranking=...)
METHOD, SEED, WINDOW = "mf", 0, "val"
REPEATS = {"full": 3, "quick": 1}


def list_lookup(vocabulary):
    """The lookup as tfmeta built it before: the vocabulary as a Python list."""
    import tensorflow as tf
    return tf.keras.layers.StringLookup(vocabulary=list(vocabulary), num_oov_indices=1,
                                        mask_token=None, output_mode="int")


@contextmanager
def lookups(kind: str):
    """`evaluate` with the given lookup construction ("tensor": tfmeta's own)."""
    if kind == "tensor":
        yield
        return
    with mock.patch("tfmeta.evaluation.protocol_a.string_lookup", list_lookup):
        yield


class Evaluation:
    """One dataset's scorer and window, ready to score."""

    def __init__(self, periods: str):
        from tfmeta.data import interactions as inter
        from tfmeta.data.periods import PeriodDataset
        from tfmeta.meta import leaprec
        from tfmeta.training.ranking import PHASES, RankingOptions, build_models
        self.data = PeriodDataset(periods)
        options = RankingOptions(METHOD, seed=SEED)
        everything = inter.read_interactions(self.data, ("train", "val", "test"))
        self.timelines = inter.UserTimelines(everything["user"], everything["item"],
                                             everything["ts"])
        part = inter.load(self.data, dict(PHASES)[WINDOW], options.max_len,
                          columns=everything)
        self.scorer = leaprec.Scorer(list(build_models(options, self.data, SEED).values()))
        self.scorer.set_graph(part.users, part.items)
        self.warm_items = part.warm_items()
        self.vocabulary = {k: len(self.data.vocabulary(k)) for k in ("users", "items")}

    def run(self, kind: str, full_ranking: bool) -> tuple:
        """(figures, wall seconds, CPU seconds) of one evaluation."""
        from tfmeta.evaluation.protocol_a import evaluate
        with lookups(kind):
            wall, cpu = time.perf_counter(), time.process_time()
            figures = evaluate(self.scorer.frozen(), self.data, WINDOW, self.timelines,
                               self.warm_items, full_ranking=full_ranking)
            return figures, time.perf_counter() - wall, time.process_time() - cpu


def compare(evaluation: Evaluation, repeats: int) -> list:
    """One row per mode: both lookups' timings, their ratio, and whether they agree."""
    from benchmarks import machine as machine_info
    rows = []
    for mode, full_ranking in MODES.items():
        figures = {kind: evaluation.run(kind, full_ranking)[0] for kind in LOOKUPS}  # warm-up
        timed = machine_info.interleaved(lambda kind: evaluation.run(kind, full_ranking),
                                         LOOKUPS, repeats, mode)
        for kind, results in timed["results"].items():
            if any(got != figures[kind] for got in results):
                raise SystemExit(f"{mode}, {kind} lookups: the figures changed between "
                                 "repetitions of the same evaluation")
        median = timed["median_seconds"]
        instances = figures["tensor"]["instances"]
        rows.append({"mode": mode, "instances": instances, "seconds": timed["seconds"],
                     "median_seconds": median,
                     "ratio": machine_info.ratio(median, "list", "tensor"),
                     "instances_per_second": {k: instances / median[k]["wall"]
                                              for k in LOOKUPS},
                     "same_figures": figures["list"] == figures["tensor"],
                     "figures": figures["tensor"]})
    return rows


def render_markdown(report: dict) -> str:
    from benchmarks import machine as machine_info
    lines = [*machine_info.timing_header(report, "Protocol A evaluation speed: id lookups",
                                         "tensor, list, tensor, ..."),
             f"- What is timed: `evaluate` on the {WINDOW} window of an untrained `{METHOD}` "
             "(seed 0) with the vocabulary lookups built from a tensor (tfmeta now) or from "
             "a Python list (before 96f1770); medians of "
             f"{report['repeats']} repetition(s) after an untimed warm-up.", "",
             "| dataset | users / items | mode | instances | tensor s | list s | "
             "list / tensor (wall) | list / tensor (CPU) | tensor instances/s | "
             "same figures |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for dataset, section in report["datasets"].items():
        vocab = f"{section['vocabulary']['users']:,} / {section['vocabulary']['items']:,}"
        for row in section["rows"]:
            m = row["median_seconds"]
            lines.append(
                f"| {dataset} | {vocab} | {row['mode']} | {row['instances']:,} | "
                f"{m['tensor']['wall']:.2f} | {m['list']['wall']:.2f} | "
                f"**{row['ratio']['wall']:.1f}x** | {row['ratio']['cpu']:.1f}x | "
                f"{row['instances_per_second']['tensor']:,.0f} | "
                f"{'yes' if row['same_figures'] else '**no**'} |")
    lines += ["", "The list lookups' extra time grows with the vocabulary (the walk visits "
              "every id) and with the number of batches, not with the model."]
    return "\n".join(lines) + "\n"


def parse_args(argv):
    import argparse
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.evaluation_speed",
        description="Protocol A evaluation with tensor against list vocabulary lookups.")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), metavar="DATASET",
                        help=f"registered datasets (default {' '.join(DATASETS)})")
    parser.add_argument("--periods", default=None,
                        help="an existing protocol A build (then exactly one --datasets, "
                             "the build's)")
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"timed repetitions per pair (default {REPEATS['full']}, "
                             f"--quick {REPEATS['quick']})")
    parser.add_argument("--quick", action="store_true",
                        help="one repetition; results get an evaluation_speed-quick prefix")
    parser.add_argument("--runs-dir", default=RUNS_DIR,
                        help=f"where the periods are built (default {RUNS_DIR}, the LeapRec "
                             "benchmark's)")
    parser.add_argument("--results-dir", default=RESULTS_DIR,
                        help="where the .md and .json go (default benchmarks/results)")
    args = parser.parse_args(argv)
    if args.periods and len(args.datasets) != 1:
        parser.error("--periods is one dataset's build: give its name as the only --datasets")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


def main(argv=None) -> int:
    import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)
    from benchmarks import machine as machine_info
    from benchmarks.periods import given_or_built
    args = parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    repeats = args.repeats or REPEATS["quick" if args.quick else "full"]
    started = time.perf_counter()
    report = machine_info.timing_report("evaluation_speed", argv,
                                        ["tensorflow", "tf-keras", "numpy"],
                                        quick=args.quick, repeats=repeats, datasets={})
    for dataset in args.datasets:
        periods = given_or_built(dataset, "a", args.periods,
                                 os.path.join(ROOT, args.runs_dir))
        print(f"{dataset}: evaluating {WINDOW} with tensor and list lookups ...",
              file=sys.stderr, flush=True)
        evaluation = Evaluation(periods)
        rows = compare(evaluation, repeats)
        report["datasets"][dataset] = {"periods": os.path.relpath(os.path.abspath(periods),
                                                                  ROOT),
                                       "vocabulary": evaluation.vocabulary, "rows": rows}
    machine_info.finish(args.results_dir,
                        "evaluation_speed-quick" if args.quick else "evaluation_speed",
                        report, render_markdown, started)
    different = [f"{d}/{r['mode']}" for d, s in report["datasets"].items()
                 for r in s["rows"] if not r["same_figures"]]
    if different:
        print(f"the lookups disagree on {', '.join(different)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
