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


def _check(*args, workers: int = 0) -> list:
    """Runs tests/replicas_check.py ARGS in one process, or in `workers` processes of a
    localhost cluster; the stdout of each."""
    return _processes([sys.executable, os.path.join(ROOT, "tests", "replicas_check.py"),
                       *map(str, args)], workers)


# The default run takes the plain update (iu), replay (spmf) and the protocol A loops
# (plain epoch, LeapRec and FOMAML iterations); the ASMG generator's distributed path is
# test_two_workers_train_like_one_process's. --long runs every method, SML's transfer
# included (MirroredStrategy traces slowly: 4 minutes on 2 cores).
EACH_PATH = ("iu", "spmf", "mf", "leaprec+lightgcn", "fomaml+mf")
EVERY_METHOD = ("iu", "bu-3", "incctr", "spmf", "sml", "asmg-gru-multi", "asmg-linear",
                "mf", "leaprec+lightgcn", "fomaml+mf")


@pytest.mark.parametrize("methods", [EACH_PATH, pytest.param(EVERY_METHOD,
                                                             marks=pytest.mark.long)],
                         ids=["each-code-path", "every-method"])
def test_two_replicas_train_like_one(tmp_path, small_periods, ranking_periods, methods):
    """Update methods under MirroredStrategy over two logical CPUs, against the default
    strategy."""
    output = _check("mirrored", small_periods, ranking_periods, tmp_path, *methods)[0]
    differences = json.loads(output.strip().splitlines()[-1])
    assert set(differences) == set(methods)
    for method, difference in differences.items():
        limit = SML_TOLERANCE if method == "sml" else TOLERANCE
        assert difference <= limit, (method, difference)


def test_two_workers_train_like_one_process(tmp_path, small_periods, ranking_periods):
    """Embedding&MLP periods with the ASMG generator, then one LeapRec(+LightGCN)
    iteration, in 2 worker processes (MultiWorkerMirroredStrategy, TF_CONFIG on
    loopback ports): the chief's parameters equal a single process's within 1e-5."""
    _check("default", small_periods, ranking_periods, tmp_path / "one", tmp_path / "one.npz")
    _check("multi-worker", small_periods, ranking_periods, tmp_path / "two",
           tmp_path / "two.npz", workers=2)
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert len(one.files) == len(two.files) > 10
    for key in one.files:
        np.testing.assert_allclose(two[key], one[key], atol=TOLERANCE, err_msg=key)


def _free_ports(n: int) -> list:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _processes(command: list, workers: int) -> list:
    """Runs `command` in one process, or in `workers` processes of a localhost cluster
    (TF_CONFIG on loopback ports); the output of each, all having exited with 0."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    configs = [None]
    if workers:
        cluster = {"worker": [f"localhost:{p}" for p in _free_ports(workers)]}
        configs = [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
                   for i in range(workers)]
    processes = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True,
                                  env=dict(env, TF_CONFIG=c) if c else env)
                 for c in configs]
    try:
        outputs = [p.communicate(timeout=900) for p in processes]
    finally:
        for p in processes:
            p.kill()
    for p, (_, errors) in zip(processes, outputs):
        assert p.returncode == 0, errors[-3000:]
    return [out for out, _ in outputs]


def _train(args: list, out, workers: int = 0) -> dict:
    """`tfmeta train ARGS --out OUT` (with `--distribute multi-worker` in a cluster of
    `workers`); the chief's metrics.json."""
    command = [sys.executable, "-m", "tfmeta.cli", "train", *args, "--out", str(out)]
    _processes(command + (["--distribute", "multi-worker"] if workers else []), workers)
    with open(os.path.join(out, "metrics.json")) as f:
        return json.load(f)


def test_the_command_trains_on_two_workers(tmp_path, ranking_periods):
    """`tfmeta train --distribute multi-worker` in 2 processes, one LeapRec iteration
    per phase: the chief writes the run (figures within 1e-4 of a single process's,
    losses within 1e-5); the other worker keeps its checkpoints aside."""
    args = ["--periods", ranking_periods, "--method", "leaprec+mf", "--iterations", "1",
            "--inner-steps", "2", "--gtl-dim", "16", "--otl-dim", "8", "--batch-size", "300"]
    one = _train(args, tmp_path / "one")
    two = _train(args, tmp_path / "two", workers=2)
    assert two["distribution"] == {"strategy": "multi-worker", "replicas": 2, "workers": 2}
    assert one["distribution"] == {"strategy": "default", "replicas": 1, "workers": 1}
    for phase in ("val", "test"):
        np.testing.assert_allclose(two["training"][phase]["losses"],
                                   one["training"][phase]["losses"], atol=1e-5)
        for kind in ("sampled", "full"):
            for metric, value in one[phase][kind].items():
                assert two[phase][kind][metric] == pytest.approx(value, abs=1e-4), metric
    assert (tmp_path / "two" / "workers" / "worker-1" / "test" / "checkpoints").is_dir()
    assert not (tmp_path / "two" / "workers" / "worker-0").exists()


if __name__ == "__main__":  # Bazel's py_test runs the file as a script
    raise SystemExit(pytest.main([__file__]))
