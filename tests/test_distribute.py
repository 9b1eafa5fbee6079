"""tf.distribute: several replicas, and several worker processes, train like one."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfmeta import distribute

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Largest parameter difference allowed between a 2-replica and a 1-replica run: float32
# summation order only. SML's is larger: its transfer module's gradients have
# coordinates near zero, where Adam turns a 1e-12 difference into a full step.
TOLERANCE = 1e-5
SML_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def ranking_periods(build_once, movielens_100k):
    return build_once("beam", input="movielens-100k", protocol="a")


def test_global_mean_of_the_default_strategy_is_the_mean():
    values = tf.constant([1.0, 2.0, 6.0])
    assert float(distribute.global_mean(values)) == pytest.approx(3.0)
    assert float(distribute.global_mean(tf.zeros([0]))) == 0.0  # an empty slice


def test_strategies_by_name(monkeypatch):
    assert distribute.from_name("default") is tf.distribute.get_strategy()
    assert distribute.is_chief(distribute.from_name(None))
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.from_name("multi-worker")
    with pytest.raises(ValueError, match="mirrored"):
        distribute.from_name("tpu")


def test_two_replicas_train_like_one(tmp_path, small_periods, ranking_periods):
    """Every protocol B update method and the protocol A loops (plain epoch, LeapRec
    and FOMAML iterations) under MirroredStrategy over two logical CPUs, against the
    default strategy (tests/replicas_check.py, in its own process)."""
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "replicas_check.py"), small_periods,
         ranking_periods, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    differences = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(differences) >= {"iu", "bu-3", "incctr", "spmf", "sml", "asmg-gru-multi",
                                "asmg-linear", "mf", "leaprec+lightgcn", "fomaml+mf"}
    for method, difference in differences.items():
        limit = SML_TOLERANCE if method == "sml" else TOLERANCE
        assert difference <= limit, (method, difference)


def _free_ports(n: int) -> list:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _train(args: list, out, workers: int = 0) -> dict:
    """`tfmeta train ARGS --out OUT` in one process, or in `workers` processes of a
    localhost cluster (TF_CONFIG on loopback ports); the chief's metrics.json."""
    command = [sys.executable, "-m", "tfmeta.cli", "train", *args, "--out", str(out)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if not workers:
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True,
                       timeout=900)
    else:
        cluster = {"worker": [f"localhost:{p}" for p in _free_ports(workers)]}
        processes = [subprocess.Popen(
            command + ["--distribute", "multi-worker"], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
            env=dict(env, TF_CONFIG=json.dumps({"cluster": cluster,
                                                "task": {"type": "worker", "index": i}})))
            for i in range(workers)]
        try:
            outputs = [p.communicate(timeout=900)[0] for p in processes]
        finally:
            for p in processes:
                p.kill()
        for p, output in zip(processes, outputs):
            assert p.returncode == 0, output[-3000:]
    with open(os.path.join(out, "metrics.json")) as f:
        return json.load(f)


def test_two_workers_train_an_asmg_run_like_one_process(tmp_path, small_periods):
    """Embedding&MLP periods with the ASMG generator across 2 worker processes: the
    chief's per-period AUC / LogLoss equal a single process's within 1e-4."""
    args = ["--periods", small_periods, "--method", "asmg-gru-multi", "--seed", "2",
            "--batch-size", "100"]
    one = _train(args, tmp_path / "one")
    two = _train(args, tmp_path / "two", workers=2)
    assert two["distribution"] == {"strategy": "multi-worker",
                                   "replicas": 2, "workers": 2}
    assert [r["period"] for r in two["per_period"]] == [r["period"] for r in one["per_period"]]
    for key in ("auc", "logloss"):
        np.testing.assert_allclose([r[key] for r in two["per_period"]],
                                   [r[key] for r in one["per_period"]], atol=1e-4)
    # Only the chief writes the run; the other worker keeps its checkpoints aside.
    assert (tmp_path / "two" / "workers" / "worker-1" / "checkpoints").is_dir()
    assert not (tmp_path / "two" / "workers" / "worker-0").exists()


def test_two_workers_train_a_leaprec_iteration_like_one_process(tmp_path, ranking_periods):
    """One LeapRec iteration per phase across 2 worker processes: the chief's figures
    equal a single process's within 1e-4 (its losses within 1e-5)."""
    args = ["--periods", ranking_periods, "--method", "leaprec+mf", "--iterations", "1",
            "--inner-steps", "2", "--gtl-dim", "16", "--otl-dim", "8", "--batch-size", "300"]
    one = _train(args, tmp_path / "one")
    two = _train(args, tmp_path / "two", workers=2)
    assert two["distribution"]["workers"] == 2
    assert one["distribution"] == {"strategy": "default", "replicas": 1, "workers": 1}
    for phase in ("val", "test"):
        np.testing.assert_allclose(two["training"][phase]["losses"],
                                   one["training"][phase]["losses"], atol=1e-5)
        for kind in ("sampled", "full"):
            for metric, value in one[phase][kind].items():
                assert two[phase][kind][metric] == pytest.approx(value, abs=1e-4), metric
