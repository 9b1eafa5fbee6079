"""SPMF (reservoir replay) and SML (sequential meta-learning transfer) strategies."""
import json
import math

import numpy as np
import pytest
import tensorflow as tf

from conftest import strategy_for, values
from tfmeta.data.periods import PeriodDataset
from tfmeta.meta import sml, spmf
from tfmeta.models.embedding_mlp import EmbeddingMLP
from tfmeta.training.incremental import IncrementalOptions, train_incremental


def _stream(n, start=0):
    return np.asarray([str(k).encode() for k in range(start, start + n)], dtype=object)


def _losses(model, data, records):
    """Per-example BCE computed directly, independently of SPMF's input path."""
    features = tf.io.parse_example(tf.constant(list(records)), data.feature_spec("examples"))
    features["history"] = features["history"].to_tensor(default_value="")
    logits = model(features)
    labels = tf.cast(features["label"], tf.float32)
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits).numpy()


# ------------------------------------------------------------------------ SPMF


def test_the_reservoir_size_is_an_option(small_periods):
    from tfmeta.training.incremental import make_strategy
    model = EmbeddingMLP.from_period_dataset(PeriodDataset(small_periods), seed=0)
    strategy = make_strategy(model, IncrementalOptions(method="spmf", spmf_capacity=123))
    assert strategy.capacity == 123 and strategy.records.shape == (123,)


def test_reservoir_is_a_bounded_seeded_uniform_sample(small_periods):
    model = EmbeddingMLP.from_period_dataset(PeriodDataset(small_periods), seed=0)
    a, b, c = (spmf.SPMF(model, capacity=500, seed=s) for s in (7, 7, 8))
    sizes = [40, 700, 1, 1259, 3000]  # 5000 examples in uneven periods
    start = 0
    for n in sizes:
        for r in (a, b, c):
            r.remember(_stream(n, start))
            assert int(r.size) <= 500 and r.records.shape == (500,)
        start += n
    assert int(a.size) == 500 and int(a.seen) == 5000
    kept = np.asarray([int(x) for x in a.reservoir()])
    assert len(set(kept)) == 500 and kept.min() >= 0 and kept.max() < 5000
    # Uniform over the stream: each fifth of it holds about a fifth of the reservoir.
    counts = np.bincount(kept // 1000, minlength=5)
    assert counts.min() > 60 and counts.max() < 140, counts
    assert abs(kept.mean() - 2500) < 250
    np.testing.assert_array_equal(a.reservoir(), b.reservoir())  # seeded
    assert not np.array_equal(a.reservoir(), c.reservoir())


def test_reservoir_keeps_everything_until_full(small_periods):
    model = EmbeddingMLP.from_period_dataset(PeriodDataset(small_periods), seed=0)
    r = spmf.SPMF(model, capacity=100)
    r.remember(_stream(60))
    np.testing.assert_array_equal(r.reservoir(), _stream(60))
    r.remember(_stream(60, 60))
    kept = r.reservoir()
    assert int(r.size) == 100 and len(set(kept)) == 100 and set(kept) <= set(_stream(120))


def test_replay_takes_the_highest_loss_examples(small_periods):
    model, strategy, source = strategy_for(small_periods, "spmf")
    strategy.pretrain(source, [1, 2])
    stored = strategy.reservoir()
    assert int(strategy.size) == len(stored) == sum(
        len(spmf.SPMF.read_period(source, p)) for p in (1, 2))
    losses = _losses(model, source.data, stored)
    np.testing.assert_allclose(strategy.example_losses(source), losses, rtol=1e-5,
                               atol=1e-6)
    chosen = strategy.hardest(source, 50)
    assert len(chosen) == 50
    picked = np.isin(stored, chosen)
    assert picked.sum() == 50
    assert losses[picked].min() >= losses[~picked].max() - 1e-6
    # Within each label: the lowest probabilities of positives, highest of negatives.
    labels = tf.io.parse_example(tf.constant(list(stored)),
                                 source.data.feature_spec("examples"))["label"].numpy()
    probs = np.exp(-losses)  # the probability given to the true label
    for label in (0, 1):
        mine = labels == label
        if (picked & mine).any() and (~picked & mine).any():
            assert probs[picked & mine].max() <= probs[~picked & mine].min() + 1e-6
    assert len(strategy.hardest(source, 10 ** 6)) == len(stored)  # capped by the reservoir


def test_update_trains_on_the_period_plus_replay(small_periods):
    _, strategy, source = strategy_for(small_periods, "spmf")
    strategy.pretrain(source, range(1, 11))
    seen_before = int(strategy.seen)
    counted = []
    original = strategy.fit

    def spy(dataset, epochs=None):
        counted.append(sum(int(tf.size(b["label"])) for b in dataset))
        return original(dataset, epochs)

    strategy.fit = spy
    period = len(spmf.SPMF.read_period(source, 11))
    replay = min(math.ceil(0.5 * period), seen_before)
    loss = strategy.update(source, 11)
    assert math.isfinite(loss)
    assert counted == [period + replay] and strategy.replayed == replay > 0
    assert int(strategy.seen) == seen_before + period  # period 11 joined the stream


def test_checkpoint_restores_the_reservoir_exactly(small_periods, tmp_path):
    model, strategy, source = strategy_for(small_periods, "spmf")
    strategy.remember(_stream(12_345))
    path = tf.train.Checkpoint(model=model, **strategy.checkpoint_items()).write(
        str(tmp_path / "ckpt"))
    model2, restored, _ = strategy_for(small_periods, "spmf", seed=0)
    tf.train.Checkpoint(model=model2, **restored.checkpoint_items()).read(
        path).assert_existing_objects_matched()
    np.testing.assert_array_equal(restored.records.numpy(), strategy.records.numpy())
    assert (int(restored.size), int(restored.seen)) == (10_000, 12_345)
    for r in (strategy, restored):  # and continues exactly as the original would
        r.remember(_stream(5_000, 12_345))
    np.testing.assert_array_equal(restored.records.numpy(), strategy.records.numpy())


# ------------------------------------------------------------------------- SML


def test_transfer_starts_close_to_the_fitted_model():
    shapes = [(31, 8), (5, 3), (3,)]
    rng = np.random.default_rng(0)
    previous = [rng.normal(0, 0.3, s).astype(np.float32) for s in shapes]
    fitted = [p + rng.normal(0, 0.05, p.shape).astype(np.float32) for p in previous]
    fitted[0][:4] = previous[0][:4]  # rows the period left alone
    out = sml.Transfer(shapes)(previous, fitted)
    for o, h in zip(out, fitted):
        assert o.shape == h.shape
        np.testing.assert_allclose(o.numpy(), h, atol=2e-3)
        assert not np.array_equal(o.numpy(), h) or o.shape == (3,)
    np.testing.assert_array_equal(out[0].numpy()[:4], previous[0][:4])  # passed through


def test_transfer_gets_gradients_from_the_next_period(small_periods):
    _, strategy, source = strategy_for(small_periods, "sml")
    strategy.update(source, 11)  # stores the pair (theta_10, theta_hat_11)
    assert bool(strategy.has_pair)
    strategy.probe.set_known(int(strategy.model.known_users),
                             int(strategy.model.known_items))
    batch = next(iter(source.periods([12])))
    loss, gradients = strategy.transfer_gradients(batch)
    assert math.isfinite(float(loss))
    variables = strategy.transfer.trainable_variables
    assert len(gradients) == len(variables) == 5 * len(strategy.model.trainable_variables)
    for v, g in zip(variables, gradients):
        assert g is not None and float(tf.norm(g)) > 0, v.name
    before = values(variables)
    strategy.train_transfer(source.periods([12]))
    assert all(not np.array_equal(a, b) for a, b in zip(before, values(variables)))


def test_sml_serves_a_model_that_departs_from_iu(small_periods):
    iu_model, iu, source = strategy_for(small_periods, "iu")
    model, strategy, _ = strategy_for(small_periods, "sml")
    for s in (iu, strategy):
        s.pretrain(source, range(1, 11))
    iu.update(source, 11)
    strategy.update(source, 11)  # T as initialised: about theta_hat_11 == IU's model
    for a, b in zip(values(iu_model.trainable_variables), values(model.trainable_variables)):
        np.testing.assert_allclose(a, b, atol=5e-3)
    for i in (12, 13, 14):
        iu.update(source, i)
        strategy.update(source, i)
    for p, h in zip(values(strategy.previous), values(strategy.fitted)):
        assert p.shape == h.shape
    gaps = [np.abs(a - b).max() for a, b in zip(values(iu_model.trainable_variables),
                                               values(strategy.serving_weights()))]
    assert max(gaps) > 1e-3, gaps
    # What is served is what is carried forward: T's output.
    for a, b in zip(values(strategy.serving_weights()), values(model.trainable_variables)):
        np.testing.assert_array_equal(a, b)


def _op_count(shapes):
    transfer = sml.Transfer(shapes)
    specs = [tf.TensorSpec(s, tf.float32) for s in shapes]
    graph = tf.function(transfer.__call__).get_concrete_function(specs, specs).graph
    return len(graph.get_operations())


def test_transfer_graph_does_not_grow_with_vocabulary_rows():
    small = _op_count([(11, 8), (31, 8), (24, 20), (20,), (20, 1), (1,)])
    large = _op_count([(100_001, 8), (300_001, 8), (24, 20), (20,), (20, 1), (1,)])
    assert small == large


# ---------------------------------------------------------------------- driver


def _killed_at(monkeypatch, cls, period):
    original = cls.update

    def update(self, source, i):
        if i == period:
            raise KeyboardInterrupt("killed")
        return original(self, source, i)

    monkeypatch.setattr(cls, "update", update)
    return lambda: monkeypatch.setattr(cls, "update", original)


@pytest.mark.parametrize("method,cls", [("spmf", spmf.SPMF), ("sml", sml.SML)])
def test_driver_runs_and_resumes_the_method(tmp_path, small_periods, monkeypatch, method,
                                            cls):
    """Killed after period 12, resumed to the end: metrics.json has all 20 periods, and
    the periods after the restart match a run that was never interrupted (which is
    stopped at period 16 to keep the test short)."""
    options = IncrementalOptions(method=method, seed=2)
    restore = _killed_at(monkeypatch, cls, 13)
    with pytest.raises(KeyboardInterrupt):
        train_incremental(small_periods, str(tmp_path / "parts"), options)
    restore()
    resumed = train_incremental(small_periods, str(tmp_path / "parts"), options, resume=True)
    written = json.loads((tmp_path / "parts" / "metrics.json").read_text())
    assert written["method"] == method and written["test"] == resumed["test"]
    assert [r["period"] for r in written["per_period"]] == list(range(12, 32))
    assert all(0 <= r["auc"] <= 1 and math.isfinite(r["logloss"])
               for r in written["per_period"])

    restore = _killed_at(monkeypatch, cls, 16)
    with pytest.raises(KeyboardInterrupt):
        train_incremental(small_periods, str(tmp_path / "whole"), options)
    restore()
    whole = json.loads((tmp_path / "whole" / "progress.json").read_text())["per_period"]
    scores = lambda rows: [(r["period"], r["auc"], r["logloss"]) for r in rows]  # noqa
    assert [r["period"] for r in whole] == list(range(12, 17))
    assert scores(whole) == scores(resumed["per_period"][:5])


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
