"""The command line the two period-run drivers share (`benchmarks.asmg`,
`benchmarks.leaprec`): which datasets or given periods, which seeds, how many runs at a
time, where runs and results go, and how a killed benchmark continues."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from benchmarks.periods import given_dirs, given_name
from benchmarks.reports import RESULTS_DIR, ROOT


def add_run_arguments(parser: argparse.ArgumentParser, benchmark: str, protocol: str,
                      datasets: Sequence[str], seeds: Sequence[int],
                      seeds_help: str = "") -> None:
    """--datasets / --periods, --seeds, --workers, --runs-dir, --results-dir, --resume
    and --source-note, with the benchmark's defaults in their help."""
    parser.add_argument("--datasets", nargs="+", default=None, metavar="DATASET",
                        help=f"registered datasets (default: {' '.join(datasets)})")
    parser.add_argument("--periods", default=None, metavar="DIR",
                        help=f"protocol {protocol.upper()} periods already built (`tfmeta "
                             f"periods build --protocol {protocol}`), e.g. of your own "
                             "data, instead of --datasets; the report names them by their "
                             "dataset, else by the folder's name")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, metavar="N",
                        help=f"seeds (default: {' '.join(map(str, seeds))}){seeds_help}")
    parser.add_argument("--workers", type=int, default=2,
                        help="runs at a time, each in its own process (default 2)")
    parser.add_argument("--runs-dir", default=None,
                        help=f"periods and run folders (default runs/{benchmark}, "
                             f"runs/{benchmark}-quick with --quick, runs/{benchmark}-periods "
                             "with --periods; git-ignored)")
    parser.add_argument("--results-dir", default=None,
                        help="where the .md, .json and .png go (default benchmarks/results; "
                             f"with --periods runs/{benchmark}-periods/results)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse runs whose metrics.json exists and continue killed ones")
    parser.add_argument("--source-note", default=None,
                        help="a sentence for the report when runs used different tfmeta/ "
                             "sources (e.g. what you checked about it)")


def resolve_run_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace,
                          benchmark: str, protocol: str, datasets: Sequence[str],
                          seeds: Sequence[int], quick: dict) -> tuple:
    """(datasets, seeds, report prefix, runs dir) of parsed arguments, with the quick
    run's datasets and seeds under --quick; sets args.results_dir. Errors go through the
    parser, so that they print its usage."""
    if args.periods and args.datasets:
        parser.error("--periods replaces --datasets: give one of them")
    chosen = ([given_name(args.periods, protocol)] if args.periods else
              list(args.datasets or (quick["datasets"] if args.quick else datasets)))
    seeds = list(args.seeds if args.seeds is not None
                 else (quick["seeds"] if args.quick else seeds))
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    if not seeds or len(set(seeds)) != len(seeds):
        parser.error("--seeds must be given once each")
    prefix = f"{benchmark}-quick" if args.quick else benchmark
    # --periods: the user's data, whose runs and report stay apart from the project's
    default_runs, default_results = (given_dirs(benchmark, ROOT) if args.periods else
                                     (os.path.join(ROOT, "runs", prefix), RESULTS_DIR))
    args.results_dir = args.results_dir or default_results
    return chosen, seeds, prefix, os.path.abspath(args.runs_dir or default_runs)


def exit_code(failed: Sequence[str]) -> int:
    """1, with what to do, when runs failed; else 0."""
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}; fix and rerun with "
              "--resume", file=sys.stderr)
        return 1
    return 0
