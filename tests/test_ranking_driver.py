"""The protocol A driver: plain models, LeapRec / FOMAML plug-ins, metrics.json, resume."""
import tfmeta  # noqa: F401

import dataclasses
import json

import numpy as np
import pytest

from conftest import rebuilt
from tfmeta.training import ranking, rundir
from tfmeta.training.ranking import RankingOptions, train_ranking

SAMPLED = {"HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR"}
FULL = {"HR@10", "NDCG@10", "MRR"}
SMALL = dict(embedding_dim=16, gtl_dim=16, otl_dim=16, batch_size=512, learning_rate=1e-2)
# For tests about checkpoints, not learning: a GCN epoch of 17 steps instead of 131.
FEW_STEPS = dict(SMALL, batch_size=4096)


@pytest.fixture(scope="module")
def periods_a(build_once, movielens_100k):
    return build_once("beam", input="movielens-100k", protocol="a")


def test_metrics_json_has_the_keys_other_tools_read(periods_a, tmp_path):
    out = tmp_path / "mf"
    metrics = train_ranking(periods_a, str(out), RankingOptions("mf", epochs=3, **SMALL))
    assert metrics == json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"] == "a" and metrics["dataset"] == "movielens-100k"
    assert metrics["method"] == "mf" and metrics["seed"] == 0 and metrics["seconds"] > 0
    for window in ("val", "test"):
        figures = metrics[window]
        assert set(figures["sampled"]) == SAMPLED and set(figures["full"]) == FULL
        assert figures["instances"] > 0 and set(figures["excluded"]) == {"cold_user",
                                                                          "cold_item"}
        # Better than chance (HR@10 of a random ranking of 100 candidates is 0.1).
        assert figures["sampled"]["HR@10"] > 0.2
        assert figures["full"]["HR@10"] <= figures["sampled"]["HR@10"]
    (code,) = metrics["code"]  # the library code that trained the run
    assert code["digest"] == rundir.code_version()["digest"] and code["modules"] > 10
    assert len(metrics["training"]["val"]["losses"]) == 3
    assert metrics["training"]["val"]["losses"][-1] < metrics["training"]["val"]["losses"][0]


@pytest.mark.parametrize("method", ["leaprec+mf", "fomaml+mf"])
def test_meta_methods_walk_the_time_steps(periods_a, tmp_path, method):
    options = RankingOptions(method, iterations=2, inner_steps=3, **SMALL)
    metrics = train_ranking(periods_a, str(tmp_path / "run"), options)
    losses = metrics["training"]["test"]["losses"]
    steps = metrics["training"]["test"]["time_steps"]
    assert len(losses) == 2 and all(len(row) == len(steps) for row in losses)
    assert steps[-1].startswith("val-")  # the test phase trains on train + val
    assert metrics["test"]["sampled"]["HR@10"] > 0.1
    # The last iteration recorded the popular items' GTL and OTL representations.
    shots = np.load(tmp_path / "run" / "test" / "representations.npz")
    assert shots["gtl"].shape == shots["otl"].shape == (len(steps), 200, 16)
    assert shots["counts"].shape == (len(steps), 200) and shots["counts"].sum() > 0
    assert not np.allclose(shots["gtl"][0], shots["gtl"][-1])


def _learner(periods, **sizes):
    from tfmeta.data.interactions import UserTimelines
    from tfmeta.data.periods import PeriodDataset
    options = RankingOptions("leaprec+mf", iterations=1, inner_steps=2,
                             **{**SMALL, **sizes})
    return ranking.Phase(PeriodDataset(periods), "val", ("train",), options,
                         "/tmp/unused-phase",
                         UserTimelines(np.array([1]), np.array([1]), np.array([0])))


def test_inner_step_batches_are_distinct_rows_and_a_small_step_gives_all_of_them():
    from tfmeta.data.interactions import Histories, Interactions
    users = items = np.arange(1, 14)
    ts = np.arange(13)
    part = Interactions(users, items, ts, np.repeat([0, 1], [3, 10]), ["early", "late"],
                        Histories(users, items, ts, 5))
    rng = np.random.default_rng(0)
    small = ranking.time_step_batches(part, 0, 4, 8, rng)
    assert [sorted(b["item"].numpy()) for b in small] == [[1, 2, 3]] * 4
    for batch in ranking.time_step_batches(part, 1, 4, 8, rng):
        rows = batch["item"].numpy()
        assert len(set(rows)) == 8 and set(rows) <= set(range(4, 14))


@pytest.mark.parametrize("part,restarts", [("gtl", True), ("otl", False)])
def test_gtl_restarts_every_time_step_and_otl_carries_on(periods_a, part, restarts):
    """Alone (the other's size 0), GTL given the same data twice ends where it ended
    (it restarts from its meta-parameters); OTL goes on from where it was."""
    phase = _learner(periods_a, **{"gtl_dim" if part == "otl" else "otl_dim": 0})
    learner = phase.learner
    assert list(learner.parts) == [part]
    rows = np.flatnonzero(phase.part.step == 0)
    rng = np.random.default_rng(0)
    batches = [ranking._batches(phase.part, rng.choice(rows, 64)) for _ in range(3)]
    learner.begin_iteration()
    start = [v.numpy().copy() for v in learner.phi[part]]
    negatives = learner.negatives.generator.state.numpy()
    learner.time_step(batches)
    first = [v.numpy().copy() for v in learner.theta[part]]
    learner.negatives.generator.reset(negatives)  # the same data again
    learner.time_step(batches)
    second = [v.numpy() for v in learner.theta[part]]
    same = all(np.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(first, second))
    assert same == restarts
    learner.end_iteration()  # the meta-parameters moved
    assert any(not np.allclose(a, v.numpy()) for a, v in zip(start, learner.phi[part]))


def test_resume_equals_an_uninterrupted_run(periods_a, tmp_path, monkeypatch):
    options = RankingOptions("leaprec+mf", iterations=2, inner_steps=2, **SMALL)
    whole = train_ranking(periods_a, str(tmp_path / "whole"), options)

    killed_at_call(monkeypatch, "_iteration", 2)
    with pytest.raises(KeyboardInterrupt):
        train_ranking(periods_a, str(tmp_path / "resumed"), options)
    monkeypatch.undo()
    progress = rundir.read_record(str(tmp_path / "resumed"))  # says which run it is
    identity = ("protocol", "dataset", "method", "seed", "periods_digest")
    assert {k: progress[k] for k in identity} == {k: whole[k] for k in identity}
    with pytest.raises(FileExistsError):
        train_ranking(periods_a, str(tmp_path / "resumed"), options)
    with pytest.raises(ValueError, match="another build of its periods"):
        train_ranking(rebuilt(periods_a, tmp_path), str(tmp_path / "resumed"), options,
                      resume=True)
    other = dataclasses.replace(options, meta_learning_rate=0.1)
    with pytest.raises(ValueError, match="started with other options "
                                         r"\(meta_learning_rate 0.001 -> 0.1\)"):
        train_ranking(periods_a, str(tmp_path / "resumed"), other, resume=True)
    edited = dict(rundir.code_version(), digest="0123456789ab")  # the code changed
    monkeypatch.setattr(rundir, "code_version", lambda: edited)
    resumed = train_ranking(periods_a, str(tmp_path / "resumed"), options, resume=True)
    assert_same_run(resumed, whole, ("val", "test", "training"))
    assert resumed["code"] == whole["code"] + [edited]


@pytest.mark.parametrize("method,unit", [("gcn", "_epoch"), ("leaprec+gcn", "_iteration")])
def test_a_model_with_dropout_resumes_as_if_uninterrupted(periods_a, tmp_path, monkeypatch,
                                                          method, unit):
    # Its dropout masks' draw counters are in the checkpoint (tfmeta.models.dropout).
    options = RankingOptions(method, epochs=2, iterations=2, inner_steps=2, **FEW_STEPS)
    whole = train_ranking(periods_a, str(tmp_path / "whole"), options)
    killed_at_call(monkeypatch, unit, 2)
    with pytest.raises(KeyboardInterrupt):
        train_ranking(periods_a, str(tmp_path / "resumed"), options)
    monkeypatch.undo()
    resumed = train_ranking(periods_a, str(tmp_path / "resumed"), options, resume=True)
    assert_same_run(resumed, whole, ("val", "test", "training"))


def test_a_run_from_before_checkpointed_dropout_exports_but_refuses_to_resume(
        periods_a, tmp_path, monkeypatch):
    # tfmeta before d338699 used Keras' Dropout: its checkpoints hold no draw counters.
    import tensorflow as tf
    from tfmeta.models import graph

    def keras_dropout(rate, seed=None):
        return tf.keras.layers.Dropout(rate, seed=seed)
    options = RankingOptions("gcn", epochs=2, **FEW_STEPS)
    with monkeypatch.context() as old_tfmeta:
        old_tfmeta.setattr(graph, "CheckpointedDropout", keras_dropout)
        train_ranking(periods_a, str(tmp_path / "old"), options)
        want = _scores(ranking.load_trained(str(tmp_path / "old"))[0])
        killed_at_call(old_tfmeta, "_epoch", 2)
        with pytest.raises(KeyboardInterrupt):
            train_ranking(periods_a, str(tmp_path / "killed"), options)
    np.testing.assert_array_equal(_scores(ranking.load_trained(str(tmp_path / "old"))[0]),
                                  want)
    with pytest.raises(ValueError, match="before dropout masks were checkpointed"):
        train_ranking(periods_a, str(tmp_path / "killed"), options, resume=True)


def _scores(scorer) -> np.ndarray:
    """A scorer's scores of items 1..20 for users 1..3, each with a short history."""
    import tensorflow as tf
    users = tf.constant([1, 2, 3], tf.int64)
    history = tf.constant([[4, 5, 0], [6, 0, 0], [0, 0, 0]], tf.int64)
    items = tf.tile(tf.range(1, 21, dtype=tf.int64)[tf.newaxis], [3, 1])
    return scorer.frozen()(users, history, items).numpy()


def killed_at_call(monkeypatch, method: str, call: int) -> None:
    """Phase.<method> raises KeyboardInterrupt at its call-th call (a killed run)."""
    original = getattr(ranking.Phase, method)
    calls = {"n": 0}

    def killed(self, *args):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt("killed")
        return original(self, *args)
    monkeypatch.setattr(ranking.Phase, method, killed)


def assert_same_run(resumed: dict, whole: dict, keys) -> None:
    for key in keys:
        got, want = _flat(resumed[key]), _flat(whole[key])
        assert got.keys() == want.keys()
        for path, value in want.items():
            assert got[path] == (value if isinstance(value, str) else
                                 pytest.approx(value, rel=1e-5)), path


def test_choose_budget_trains_the_test_model_for_the_best_validation_count(
        periods_a, tmp_path, monkeypatch, capsys):
    options = RankingOptions("mf", epochs=4, choose_budget=True, **SMALL)
    whole = train_ranking(periods_a, str(tmp_path / "whole"), options)
    budget = whole["budget"]
    # No terminal: a log line per epoch, with its validation figure in the val phase
    log = capsys.readouterr().err
    for epoch, point in enumerate(budget["curve"], 1):
        assert f"mf val: epoch {epoch}/4, loss " in log
        assert f", val HR@10 {point['HR@10']:.4f} (" in log
    assert f"mf test: epoch {budget['chosen']}/{budget['chosen']}, loss " in log
    assert budget["unit"] == "epoch" and budget["metric"] == "val/sampled/HR@10"
    curve = budget["curve"]
    assert len(curve) == 4 and all(set(point) == SAMPLED for point in curve)
    values = [point["HR@10"] for point in curve]
    assert budget["chosen"] == values.index(max(values)) + 1
    assert len(whole["training"]["test"]["losses"]) == budget["chosen"]
    assert len(whole["training"]["val"]["losses"]) == 4
    # The val figures are those of the last epoch's model, the curve's last point.
    assert whole["val"]["sampled"] == pytest.approx(curve[-1], rel=1e-6)
    assert "budget" not in train_ranking(
        periods_a, str(tmp_path / "fixed"), RankingOptions("mf", epochs=1, **SMALL))

    # Killed while scoring the second epoch, before its progress and checkpoint: the
    # resumed run redoes that epoch and ends as the uninterrupted one.
    killed_at_call(monkeypatch, "score_curve", 2)
    with pytest.raises(KeyboardInterrupt):
        train_ranking(periods_a, str(tmp_path / "resumed"), options)
    monkeypatch.undo()
    resumed = train_ranking(periods_a, str(tmp_path / "resumed"), options, resume=True)
    assert_same_run(resumed, whole, ("val", "test", "training", "budget"))


def _flat(value, prefix="") -> dict:
    """Nested dicts and lists -> {path: number or string}."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return {prefix: value}
    out = {}
    for key, item in items:
        out.update(_flat(item, f"{prefix}/{key}"))
    return out


def test_bad_methods_and_protocols_are_refused(periods_a, small_periods, tmp_path):
    with pytest.raises(ValueError, match="leaprec\\+MODEL"):
        train_ranking(periods_a, str(tmp_path / "x"), RankingOptions("leaprec+nope"))
    with pytest.raises(ValueError, match="protocol A"):
        train_ranking(small_periods, str(tmp_path / "y"), RankingOptions("mf"))


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
