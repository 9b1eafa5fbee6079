"""The command line benchmarks.asmg and benchmarks.leaprec share (benchmarks.drivers)."""
import argparse
import os

import pytest

from benchmarks import drivers
from benchmarks.reports import RESULTS_DIR, ROOT

QUICK = {"datasets": ("quick-data",), "seeds": (7,)}


def parse(argv):
    parser = argparse.ArgumentParser(prog="bench")
    drivers.add_run_arguments(parser, "bench", "a", ("d1", "d2"), (0, 1, 2))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    return drivers.resolve_run_arguments(parser, args, "bench", "a", ("d1", "d2"),
                                         (0, 1, 2), QUICK), args


def test_defaults_quick_and_given_choices():
    (datasets, seeds, prefix, runs_dir), args = parse([])
    assert (datasets, seeds, prefix) == (["d1", "d2"], [0, 1, 2], "bench")
    assert runs_dir == os.path.join(ROOT, "runs", "bench") and args.results_dir == RESULTS_DIR
    (datasets, seeds, prefix, runs_dir), _ = parse(["--quick"])
    assert (datasets, seeds, prefix) == (["quick-data"], [7], "bench-quick")
    assert runs_dir == os.path.join(ROOT, "runs", "bench-quick")
    (datasets, seeds, _, runs_dir), args = parse(["--datasets", "d2", "--seeds", "4",
                                                  "--runs-dir", "r", "--results-dir", "o"])
    assert (datasets, seeds, runs_dir, args.results_dir) == (
        ["d2"], [4], os.path.abspath("r"), "o")


@pytest.mark.parametrize("argv, message", [
    (["--periods", "p", "--datasets", "d1"], "--periods replaces --datasets"),
    (["--seeds", "1", "1"], "--seeds must be given once each"),
    (["--workers", "0"], "--workers must be >= 1"),
])
def test_contradictory_arguments_are_refused_with_what_to_do(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse(argv)
    assert message in capsys.readouterr().err


def test_failed_runs_give_exit_code_1_and_say_how_to_continue(capsys):
    assert drivers.exit_code([]) == 0
    assert drivers.exit_code(["d/mf/seed-0"]) == 1
    assert "1 run(s) failed: d/mf/seed-0; fix and rerun with --resume" in \
        capsys.readouterr().err


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
