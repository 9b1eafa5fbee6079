"""Tests of tfmeta.models.embedding_mlp: the ASMG base CTR model (EmbeddingMLP)."""
import tfmeta  # noqa: F401  (first: selects Keras 2)

import math

import numpy as np
import pytest
import tensorflow as tf

from tfmeta.data.periods import PeriodDataset
from tfmeta.models.embedding_mlp import EmbeddingMLP, bce_loss

USERS = ["u0", "u1", "u2", "u3", "u4"]
ITEMS = ["a", "b", "c", "d", "e", "f"]
CATEGORIES = ["x", "y", "z"]
ITEM_CATEGORIES = {"a": ["x"], "b": ["x", "y"], "c": ["z"], "nope": ["x"]}


def batch(users, items, histories, labels=None):
    width = max(1, max(len(h) for h in histories))
    features = {"user": tf.constant(users), "item": tf.constant(items),
                "history": tf.constant([list(h) + [""] * (width - len(h))
                                        for h in histories])}
    if labels is not None:
        features["label"] = tf.constant(labels, tf.int64)
    return features


def ids(variables):
    return [id(v) for v in variables]


@pytest.fixture
def model():
    return EmbeddingMLP(USERS, ITEMS, seed=1)


@pytest.fixture
def cat_model():
    return EmbeddingMLP(USERS, ITEMS, categories=CATEGORIES,
                        item_categories=ITEM_CATEGORIES, seed=1)


def test_shapes_and_variables(model, cat_model):
    out = model(batch(["u0", "u1", "zz"], ["a", "b", "q"], [["a", "b"], [], ["c"]]))
    assert out.shape == (3,) and out.dtype == tf.float32
    proba = model.predict_proba(batch(["u0"], ["a"], [["b"]]))
    assert proba.shape == (1,) and 0 < float(proba[0]) < 1
    assert [tuple(t.shape) for t in model.embedding_tables] == [(6, 8), (7, 8)]
    assert [tuple(v.shape) for v in model.dense_variables] == [
        (24, 20), (20,), (20, 10), (10,), (10, 1), (1,)]
    assert ids(model.embedding_tables + model.dense_variables) == ids(model.trainable_variables)
    assert [tuple(t.shape) for t in cat_model.embedding_tables] == [(6, 8), (7, 8), (4, 8)]
    assert tuple(cat_model.dense_variables[0].shape) == (8 + 16 + 16, 20)
    assert ids(cat_model.embedding_tables + cat_model.dense_variables) == ids(
        cat_model.trainable_variables)
    assert all(not v.trainable for v in cat_model.non_trainable_variables)
    wide = EmbeddingMLP(USERS, ITEMS, embedding_dim=4, hidden_units=(16, 8, 4))
    assert [tuple(v.shape) for v in wide.dense_variables][::2] == [
        (12, 16), (16, 8), (8, 4), (4, 1)]


def test_rows_oov_and_set_known(model):
    assert model.lookup("users", ["u0", "u4", "zz", ""]).numpy().tolist() == [1, 5, 0, 0]
    assert model.lookup("items", [["f", "", "a"]]).numpy().tolist() == [[6, 0, 1]]
    model.set_known(2, 3)
    assert model.lookup("users", ["u0", "u1", "u2", "u4"]).numpy().tolist() == [1, 2, 0, 0]
    assert model.lookup("items", ["a", "c", "d", "f"]).numpy().tolist() == [1, 3, 0, 0]
    # Later ids behave exactly like a never-seen id.
    f = batch(["u3", "zz"], ["e", "qq"], [["d", "a"], ["zz", "a"]])
    out = model(f).numpy()
    assert out[0] == pytest.approx(out[1], abs=1e-7)
    model.set_known(None, None)
    assert model.lookup("items", ["f"]).numpy().tolist() == [6]
    with pytest.raises(ValueError):
        model.set_known(6, 1)
    with pytest.raises(ValueError):
        model.lookup("categories", ["x"])


def test_unknown_rows_get_zero_gradient(model):
    model.set_known(2, 3)
    f = batch(USERS + ["zz"], ITEMS, [["d", "e", "a"], ["f"], ["b"], [], ["c", "f"], ["a"]],
              labels=[1, 0, 1, 0, 1, 0])
    with tf.GradientTape() as tape:
        loss = bce_loss(model(f, training=True), f["label"])
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None for g in grads)
    user_grad, item_grad = (tf.convert_to_tensor(g).numpy() for g in grads[:2])
    # rows 1..known are known, rows > known are reserved for later ids.
    assert np.all(user_grad[3:] == 0) and np.all(item_grad[4:] == 0)
    assert np.all(np.abs(user_grad[:3]).sum(axis=1) > 0)
    assert np.all(np.abs(item_grad[:4]).sum(axis=1) > 0)
    before = [t.numpy() for t in model.embedding_tables]
    tf.keras.optimizers.SGD(0.5).apply_gradients(zip(grads, model.trainable_variables))
    after = [t.numpy() for t in model.embedding_tables]
    np.testing.assert_array_equal(before[0][3:], after[0][3:])
    np.testing.assert_array_equal(before[1][4:], after[1][4:])
    assert not np.array_equal(before[1][:4], after[1][:4])


def test_history_padding_is_ignored(cat_model):
    for m in (EmbeddingMLP(USERS, ITEMS, seed=2), cat_model):
        one = m(batch(["u1"], ["b"], [["a", "", ""]])).numpy()
        assert m(batch(["u1"], ["b"], [["a"]])).numpy() == pytest.approx(one, abs=1e-6)
        assert m(batch(["u1"], ["b"], [["a"] + [""] * 40])).numpy() == pytest.approx(one, abs=1e-6)
        assert m({"user": tf.constant(["u1"]), "item": tf.constant(["b"]),
                  "history": tf.ragged.constant([["a"]])}).numpy() == pytest.approx(one, abs=1e-6)
        empty = m(batch(["u1", "u1"], ["b", "b"], [["", "", ""], []])).numpy()
        assert np.all(np.isfinite(empty)) and empty[0] == pytest.approx(empty[1], abs=1e-6)
        assert abs(float(empty[0] - one[0])) > 1e-6
        # An empty history is a zero history vector.
        user = tf.gather(m.user_embeddings, [2])
        item = m._item_repr(tf.constant([2], tf.int64))
        x = tf.concat([user, tf.zeros_like(item), item], axis=-1)
        for layer in m.hidden_layers:
            x = layer(x)
        assert float(m.logit_layer(x)[0, 0]) == pytest.approx(float(empty[0]), abs=1e-6)


def test_history_keeps_most_recent():
    m = EmbeddingMLP(USERS, ITEMS, history_len=3, seed=3)
    recent = m(batch(["u0"], ["a"], [["c", "d", "e"]])).numpy()
    assert m(batch(["u0"], ["a"], [["a", "b", "c", "d", "e"]])).numpy() == pytest.approx(
        recent, abs=1e-6)
    # ...also when a long input is padded at the end.
    assert m(batch(["u0"], ["a"], [["a", "b", "c", "d", "e", "", "", ""]])).numpy() == \
        pytest.approx(recent, abs=1e-6)
    oldest = m(batch(["u0"], ["a"], [["a", "b", "c"]])).numpy()
    assert abs(float(oldest[0] - recent[0])) > 1e-6


def test_category_path(cat_model):
    assert cat_model.item_category_rows.numpy().tolist()[:5] == [
        [0] * 8, [1] + [0] * 7, [1, 2] + [0] * 6, [3] + [0] * 7, [0] * 8]
    f = batch(["u0", "u1", "u2"], ["a", "d", "d"], [["d"], ["e"], ["c"]])
    before = cat_model(f).numpy()
    # Changing category x changes the item "a" example only; z changes the one whose
    # history holds "c"; "d" and "e" have no category.
    table = cat_model.category_embeddings
    saved = table.numpy()
    table.assign(saved + np.array([[0], [1], [0], [0]], np.float32))
    moved = cat_model(f).numpy()
    assert abs(moved[0] - before[0]) > 1e-6 and moved[1:] == pytest.approx(before[1:], abs=1e-6)
    table.assign(saved + np.array([[0], [0], [0], [1]], np.float32))
    moved = cat_model(f).numpy()
    assert abs(moved[2] - before[2]) > 1e-6 and moved[:2] == pytest.approx(before[:2], abs=1e-6)
    table.assign(saved)
    # It trains: the used category rows get gradient, the unused / none rows none.
    labels = tf.constant([1, 0, 1], tf.int64)
    with tf.GradientTape() as tape:
        loss = bce_loss(cat_model(f, training=True), labels)
    grad = tf.convert_to_tensor(tape.gradient(loss, cat_model.category_embeddings)).numpy()
    assert np.abs(grad[1]).sum() > 0 and np.abs(grad[3]).sum() > 0
    assert np.all(grad[0] == 0) and np.all(grad[2] == 0)
    opt = tf.keras.optimizers.Adam(0.05)
    for _ in range(20):
        with tf.GradientTape() as tape:
            step = bce_loss(cat_model(f, training=True), labels)
        opt.apply_gradients(zip(tape.gradient(step, cat_model.trainable_variables),
                                cat_model.trainable_variables))
    assert float(step) < float(loss)
    assert not np.allclose(cat_model.category_embeddings.numpy(), saved)
    with pytest.raises(ValueError):
        EmbeddingMLP(USERS, ITEMS, item_categories=ITEM_CATEGORIES)


def synthetic(n=256, seed=0):
    rng = np.random.default_rng(seed)
    users = rng.choice(USERS, n)
    items = rng.choice(ITEMS, n)
    histories = [list(rng.choice(ITEMS, rng.integers(0, 5))) for _ in range(n)]
    labels = [int(i in ("a", "c", "e")) for i in items]
    return batch(list(users), list(items), histories, labels)


def test_adam_learns_item_effect():
    tf.keras.utils.set_random_seed(0)
    m = EmbeddingMLP(USERS, ITEMS, seed=4)
    f = synthetic()
    opt = tf.keras.optimizers.Adam(0.02)
    first = float(bce_loss(m(f), f["label"]))
    assert first == pytest.approx(math.log(2), abs=0.05)
    for _ in range(100):
        with tf.GradientTape() as tape:
            loss = bce_loss(m(f, training=True), f["label"])
        opt.apply_gradients(zip(tape.gradient(loss, m.trainable_variables),
                                m.trainable_variables))
    assert float(bce_loss(m(f), f["label"])) < 0.1


def test_trains_inside_tf_function():
    m = EmbeddingMLP(USERS, ITEMS, categories=CATEGORIES, item_categories=ITEM_CATEGORIES,
                     seed=5)
    opt = tf.keras.optimizers.Adam(0.02)
    opt.build(m.trainable_variables)  # slots now, so that step() traces only once
    spec = {"user": tf.TensorSpec([None], tf.string), "item": tf.TensorSpec([None], tf.string),
            "history": tf.TensorSpec([None, None], tf.string),
            "label": tf.TensorSpec([None], tf.int64)}

    @tf.function(input_signature=[spec])
    def step(features):
        with tf.GradientTape() as tape:
            loss = bce_loss(m(features, training=True), features["label"])
        opt.apply_gradients(zip(tape.gradient(loss, m.trainable_variables),
                                m.trainable_variables))
        return loss

    f = synthetic(seed=1)
    losses = [float(step(f)) for _ in range(60)]
    m.set_known(3, 4)  # a variable: no retrace needed, and the graph sees the new value
    losses.append(float(step(f)))
    assert step.experimental_get_tracing_count() == 1
    assert losses[0] > 0.5 and losses[59] < 0.3
    assert losses[-1] > losses[59]  # items e, f now look like OOV


def test_config_round_trip(cat_model):
    cat_model.set_known(3, 4)
    config = cat_model.get_config()
    assert config["hidden_units"] == [20, 10] and config["categories"] == CATEGORIES
    clone = EmbeddingMLP.from_config(config)
    assert clone.get_config() == config
    assert [tuple(v.shape) for v in clone.trainable_variables] == [
        tuple(v.shape) for v in cat_model.trainable_variables]
    clone.set_weights(cat_model.get_weights())
    assert int(clone.known_users) == 3 and int(clone.known_items) == 4
    f = synthetic(32, seed=2)
    np.testing.assert_allclose(clone(f).numpy(), cat_model(f).numpy(), rtol=1e-6, atol=1e-6)
    plain = EmbeddingMLP(USERS, ITEMS, history_len=7, embedding_dim=4, name="base")
    again = EmbeddingMLP.from_config(plain.get_config())
    assert again.name == "base" and again.history_len == 7 and again.categories is None


def test_from_period_dataset(build_once):
    data = PeriodDataset(build_once("beam", input="movielens-100k", protocol="b"))
    model = EmbeddingMLP.from_period_dataset(data, seed=0)
    sizes = data.manifest["vocab"]["sizes"]
    assert [tuple(t.shape) for t in model.embedding_tables] == [
        (sizes["users"] + 1, 8), (sizes["items"] + 1, 8)]
    assert model.history_len == data.manifest["history_len"]
    period = data.select(periods=[1])[0]
    model.set_known(period["users_seen"], period["items_seen"])
    features = next(iter(data.dataset(periods=[1], batch_size=256, seed=0)))
    # Every id of period 1 is among the first users_seen / items_seen: none is OOV.
    users = model.lookup("users", features["user"]).numpy()
    items = model.lookup("items", features["item"]).numpy()
    assert users.min() >= 1 and users.max() <= period["users_seen"]
    assert items.min() >= 1 and items.max() <= period["items_seen"]
    history = model.lookup("items", features["history"]).numpy()
    assert np.array_equal(history == 0, features["history"].numpy() == b"")
    opt = tf.keras.optimizers.Adam(0.01)
    with tf.GradientTape() as tape:
        logits = model(features, training=True)
        loss = bce_loss(logits, features["label"])
    assert logits.shape == (256,) and np.isfinite(float(loss))
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    item_grad = tf.convert_to_tensor(grads[1]).numpy()
    assert np.all(item_grad[period["items_seen"] + 1:] == 0)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
