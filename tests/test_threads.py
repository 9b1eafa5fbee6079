"""--threads: a run's TensorFlow thread pools, set before TensorFlow runs anything."""
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from tfmeta import threads

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_run_trains_with_the_threads_it_was_given_and_records_them(movielens_periods_a,
                                                                       tmp_path):
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "tfmeta.cli", "train", "--periods",
                    movielens_periods_a, "--method", "mf", "--epochs", "1", "--out",
                    str(out), "--threads", "1"], cwd=REPO, check=True, capture_output=True)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["threads"] == {"intra_op": 1, "inter_op": 1}
    assert metrics["test"]["sampled"]["HR@10"] > 0


def test_pools_cannot_change_once_tensorflow_has_run_an_op():
    tf.constant(1.0) + 1.0  # this test process has run ops already; make sure
    threads.limit(None)  # the defaults: nothing to change
    current = threads.describe()["intra_op"]
    with pytest.raises(RuntimeError, match="new process"):
        threads.limit(current + 1)
    with pytest.raises(ValueError, match="at least 1"):
        threads.limit(0)


def test_the_threads_benchmark_times_each_setting(movielens_periods_a, tmp_path):
    from benchmarks import threads as benchmark
    assert benchmark.main(["--quick", "--periods", movielens_periods_a,
                           "--results-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "threads-quick.json").read_text())
    summary = report["workloads"]["mf"]
    assert list(summary) == ["alone", "pair", "pair-1"]
    assert summary["alone"]["vs_alone"] == 1.0
    for setting, (runs, _) in benchmark.SETTINGS.items():
        (measured,) = report["measured"]["mf"][setting]
        assert len(measured["processes"]) == runs and summary[setting]["makespan"] > 0
    assert "| pair-1 | 2 | 1 |" in (tmp_path / "threads-quick.md").read_text()
    capped = report["measured"]["mf"]["pair-1"][0]["processes"]
    assert [p["threads"] for p in capped] == [{"intra_op": 1, "inter_op": 1}] * 2
    assert 0 <= report["figure_spread"]["mf"] < 1e-3  # the pools barely move a figure


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
