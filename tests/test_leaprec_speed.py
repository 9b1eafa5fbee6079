"""benchmarks.leaprec_speed --quick writes both timings of each comparison, their ratio
and the verdict (tiny settings: a smoke test, not evidence). RecBole's part needs its own
virtualenv (see the benchmark's docstring): set RECBOLE_PYTHON to its interpreter to run
it here too; without it that part is skipped and the report says RecBole did not run."""
import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)

import json
import os

import pytest

from benchmarks import leaprec_speed

RECBOLE_PYTHON = os.environ.get("RECBOLE_PYTHON")


@pytest.fixture(scope="module")
def report(movielens_periods_a, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    argv = ["--quick", "--periods", movielens_periods_a, "--results-dir", str(results)]
    if RECBOLE_PYTHON:
        argv += ["--recbole-python", RECBOLE_PYTHON]
    assert leaprec_speed.main(argv) == 0
    markdown = (results / "leaprec_speed-quick.md").read_text()
    return json.loads((results / "leaprec_speed-quick.json").read_text()), markdown


def test_leap_overhead_has_both_timings_the_ratio_and_the_verdict(report):
    data, markdown = report
    assert data["quick"] and data["bound"] == leaprec_speed.BOUND
    (row,) = data["leap_overhead"]
    assert row["method"] == "leaprec" and row["repeats"] == 2
    assert row["inner_steps_per_walk"] == row["time_steps"] * row["options"]["inner_steps"]
    for side in ("leaprec", "plain"):
        for clock in ("wall", "cpu"):
            assert len(row["per_step_ms"][side][clock]) == 2
            assert row["median_ms"][side][clock] > 0
    for clock in ("wall", "cpu"):
        assert row["ratio"][clock] == pytest.approx(
            row["median_ms"]["leaprec"][clock] / row["median_ms"]["plain"][clock])
        assert row["ratio"][clock] > 0
    assert row["verdict"] == ("met" if row["ratio"]["cpu"] <= leaprec_speed.BOUND
                              else "missed")
    assert "## 1. Leap's bookkeeping" in markdown and "| leaprec | 5 x 2 |" in markdown


def test_sasrec_is_marked_not_run_without_recbole(report):
    if RECBOLE_PYTHON:
        pytest.skip("RECBOLE_PYTHON is set: RecBole ran")
    data, markdown = report
    assert data["sasrec"]["recbole"] == {"status": "not run",
                                         "reason": "no --recbole-python given"}
    assert data["sasrec"]["hyperparameters"]["num_blocks"] == 2
    assert "RecBole: **not run**" in markdown


def test_sasrec_against_recbole(report):
    if not RECBOLE_PYTHON:
        pytest.skip("set RECBOLE_PYTHON to a RecBole 1.2.1 virtualenv's python")
    sasrec = report[0]["sasrec"]
    assert sasrec["recbole"]["status"] == "run"
    assert sasrec["recbole"]["config"]["n_layers"] == sasrec["hyperparameters"]["num_blocks"]
    for side in ("tfmeta", "recbole"):
        assert len(sasrec["runs"][side]) == 2
    assert sasrec["ratio"]["wall"] > 0 and sasrec["ratio"]["cpu"] > 0


if __name__ == "__main__":  # Bazel's py_test runs the file as a script
    raise SystemExit(pytest.main([__file__]))
