"""Tests of the protocol A recommenders: tfmeta.models.{graph, sequence, gnn_sa,
baselines, registry} on the RankingModel contract."""
import tfmeta  # first: selects Keras 2 (checked in test_registry)

import inspect

import numpy as np
import pytest
import tensorflow as tf

from tfmeta.models.baselines import NGCF, BPRMF, LightGCN
from tfmeta.models.gnn_sa import GnnSaRecommender
from tfmeta.models.graph import (GraphConvolution, interaction_graph, model_adjacency,
                                 prepare, propagate)
from tfmeta.models.ranking import bpr_loss
from tfmeta.models.registry import MODELS, make_model

U, I, D, MAX_LEN = 7, 11, 8, 6
NAMES = sorted(MODELS)
HISTORY_MODELS = [n for n in NAMES if MODELS[n].uses_history]
GRAPH_MODELS = [n for n in NAMES if MODELS[n].uses_graph]
# Interactions (user row, item row); GRAPH_B has more edges, and other ones.
GRAPH_A = ([1, 1, 2, 3, 4, 5, 6, 7, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9])
GRAPH_B = ([1, 2, 2, 3, 3, 4, 5, 6, 7, 7, 1, 4], [3, 1, 9, 10, 11, 2, 6, 8, 8, 1, 5, 7])
BATCH = {"user": tf.constant([1, 2, 3, 4, 7], tf.int64),
         "history": tf.constant([[1, 0, 2, 3], [0, 0, 0, 4], [5, 6, 7, 8], [0, 0, 0, 0],
                                 [9, 10, 0, 11]], tf.int64),
         # positive first: the shape bpr_loss expects
         "items": tf.constant([[2, 9, 4], [3, 10, 1], [4, 11, 6], [5, 1, 2], [1, 8, 3]],
                              tf.int64)}


def new_model(name, seed=1, graph=GRAPH_A, **options):
    model = make_model(name, U, I, embedding_dim=D, max_len=MAX_LEN, seed=seed, **options)
    model.set_graph(*graph)
    return model


def scores(model, batch=BATCH, training=False):
    return model(batch, training=training).numpy()


def with_history(history):
    width = max(len(h) for h in history)
    rows = [list(h) + [0] * (width - len(h)) for h in history]
    return {"user": tf.constant([2] * len(rows), tf.int64),
            "history": tf.constant(rows, tf.int64),
            "items": tf.constant([[1, 2, 3, 11]] * len(rows), tf.int64)}


def dense_normalised_adjacency(users, items, num_users, num_nodes):
    """Numpy D^-1/2 A D^-1/2 of the symmetric user-item graph."""
    adjacency = np.zeros([num_nodes, num_nodes])
    for u, i in zip(users, items):
        adjacency[u, num_users + i] += 1
        adjacency[num_users + i, u] += 1
    degree = np.maximum(adjacency.sum(1), 1)
    return adjacency / np.sqrt(degree[:, None] * degree[None, :])


# ---------------------------------------------------------------------- every model

def test_registry():
    assert tfmeta.__version__ and tf.keras.__name__.startswith("tf_keras")
    assert NAMES == sorted(["mf", "gcn", "ngcf", "lightgcn", "sasrec", "gru4rec", "gnn-sa"])
    assert GRAPH_MODELS == ["gcn", "gnn-sa", "lightgcn", "ngcf"]
    assert HISTORY_MODELS == ["gnn-sa", "gru4rec", "sasrec"]
    assert isinstance(make_model("lightgcn", U, I, num_layers=1), LightGCN)
    from tfmeta import models
    assert models.MODELS is MODELS and models.make_model is make_model
    with pytest.raises(ValueError, match="unknown model"):
        make_model("bert4rec", U, I)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_score_all_items(name):
    model = new_model(name)
    out = scores(model)
    assert out.shape == (5, 3) and out.dtype == np.float32 and np.all(np.isfinite(out))
    every = model.score_all_items(BATCH["user"], BATCH["history"]).numpy()
    assert every.shape == (5, 1 + I)
    np.testing.assert_allclose(np.take_along_axis(every, BATCH["items"].numpy(), 1), out,
                               rtol=1e-5, atol=1e-6)
    # Without a history key every user has an empty one.
    alone = model({"user": BATCH["user"], "items": BATCH["items"]}).numpy()
    assert alone.shape == (5, 3)
    empty = dict(BATCH, history=tf.zeros([5, 3], tf.int64))
    np.testing.assert_allclose(alone, scores(model, empty), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    model = new_model(name, seed=3)
    config = model.get_config()
    arguments = set(inspect.signature(type(model).__init__).parameters) - {"self", "kwargs"}
    assert arguments <= set(config)
    clone = type(model).from_config(config)
    assert clone.get_config() == config
    assert [v.shape.as_list() for v in clone.variables] == [
        v.shape.as_list() for v in model.variables]
    clone.set_weights(model.get_weights())   # the graph travels with the weights
    np.testing.assert_array_equal(clone.edge_sources.numpy(), model.edge_sources.numpy())
    np.testing.assert_allclose(scores(clone), scores(model), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_one_adam_step_lowers_the_loss_and_reaches_every_variable(name):
    model = new_model(name, seed=5)
    before = float(bpr_loss(model(BATCH)))
    with tf.GradientTape() as tape:
        loss = bpr_loss(model(BATCH, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    for variable, grad in zip(model.trainable_variables, grads):
        assert grad is not None, variable.name
        assert float(tf.norm(tf.convert_to_tensor(grad))) > 0, variable.name
    assert all(not v.trainable for v in (model.edge_sources, model.edge_targets))
    # The descent check on the deterministic loss (dropout off on both sides).
    with tf.GradientTape() as tape:
        loss = bpr_loss(model(BATCH))
    grads = tape.gradient(loss, model.trainable_variables)
    tf.keras.optimizers.Adam(1e-3).apply_gradients(zip(grads, model.trainable_variables))
    assert float(bpr_loss(model(BATCH))) < before


@pytest.mark.parametrize("name", NAMES)
def test_tf_function_reads_a_new_graph_without_retracing(name):
    model = new_model(name, seed=2)
    optimizer = tf.keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)

    @tf.function
    def train_step(batch):
        with tf.GradientTape() as tape:
            loss = bpr_loss(model(batch, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tf.function
    def forward(batch):
        return model(batch)

    train_step(BATCH)
    first = forward(BATCH).numpy()
    model.set_graph(*GRAPH_B)
    assert model.edge_sources.shape[0] != 2 * len(GRAPH_A[0])
    train_step(BATCH)
    second = forward(BATCH).numpy()
    model.set_graph([], [])            # no edges at all
    train_step(BATCH)
    forward(BATCH)
    assert train_step.experimental_get_tracing_count() == 1
    assert forward.experimental_get_tracing_count() == 1
    if model.uses_graph:               # the traced function really reads the new graph
        model.set_graph(*GRAPH_A)
        np.testing.assert_allclose(forward(BATCH).numpy(), scores(model), rtol=1e-5,
                                   atol=1e-6)
        assert not np.allclose(first, second)


@pytest.mark.parametrize("name", NAMES)
def test_padding_anywhere_and_only_the_most_recent_items(name):
    model = new_model(name)
    a, b, c = 4, 7, 9
    out = scores(model, with_history([[0, a, 0, b], [a, b], [a, b, 0, 0, 0, 0, 0, 0],
                                      [0, 0, 0, a, b]]))
    np.testing.assert_allclose(out, np.broadcast_to(out[:1], out.shape), rtol=1e-5,
                               atol=1e-6)
    recent = list(range(1, MAX_LEN + 1))   # exactly max_len items
    longer = scores(model, with_history([recent, [c, c] + recent, [c, 0, c, 0] + recent]))
    np.testing.assert_allclose(longer, np.broadcast_to(longer[:1], longer.shape),
                               rtol=1e-5, atol=1e-6)
    if model.uses_history:
        other = scores(model, with_history([[a, b], [b, a], [a, c]]))
        assert not np.allclose(other[0], other[2])
        # Order: see test_gnn_sa_order_needs_two_blocks for GnnSa.
        assert name == "gnn-sa" or not np.allclose(other[0], other[1])


# ---------------------------------------------------------------------- graph layers

def test_gcn_normalisation_hand_computed():
    # 2 users, 2 items: u1-i1, u1-i2, u2-i1. Nodes: 0 pad, 1-2 users, 3-4 items.
    # Degrees 2, 1, 2, 1, so norm(u1, i1) = 1/2, norm(u1, i2) = norm(u2, i1) = 1/sqrt(2).
    model = BPRMF(2, 2)
    model.set_graph([1, 1, 2], [1, 2, 1])
    graph = interaction_graph(model.edge_sources, model.edge_targets, model.num_nodes)
    r = 1 / np.sqrt(2)
    expected = np.array([[0, 0, 0, 0, 0],
                         [0, 0, 0, .5, r],
                         [0, 0, 0, r, 0],
                         [0, .5, r, 0, 0],
                         [0, r, 0, 0, 0]], np.float32)
    np.testing.assert_allclose(propagate(graph, tf.eye(5)).numpy(), expected, atol=1e-6)
    layer = GraphConvolution(3, activation="tanh", dropout=0.5, seed=0)
    values = np.random.default_rng(0).normal(size=[5, 4]).astype(np.float32)
    out = layer(graph, tf.constant(values)).numpy()           # no dropout when not training
    w_self, bias = (v.numpy() for v in layer.self_transform.weights)
    w_nbr = layer.neighbor_transform.kernel.numpy()
    np.testing.assert_allclose(out, np.tanh(values @ w_self + bias + expected @ values @ w_nbr),
                               rtol=1e-5, atol=1e-6)
    dropped = layer(graph, tf.constant(values), training=True).numpy()
    assert np.any(dropped == 0) and not np.any(out == 0)
    # No edges: the self transform alone.
    empty = interaction_graph(tf.zeros([0], tf.int64), tf.zeros([0], tf.int64), 5)
    np.testing.assert_allclose(layer(empty, tf.constant(values)).numpy(),
                               np.tanh(values @ w_self + bias), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", GRAPH_MODELS)
def test_edges_in_any_order_give_the_same_scores_and_gradients(name):
    # set_graph stores edges in A_hat's row order (target, then source), so models skip
    # the sort; edges in another order (graphs from elsewhere, checkpoints from before
    # the ordering) are sorted when prepared, to the same matrix.
    model = new_model(name, graph=GRAPH_B)
    sources, targets = model.edge_sources.numpy(), model.edge_targets.numpy()
    keys = targets * model.num_nodes + sources
    assert np.all(np.diff(keys) >= 0) and len(keys) == 2 * len(GRAPH_B[0])

    def scores_and_gradients():
        with tf.GradientTape() as tape:
            out = model(BATCH)
            loss = tf.reduce_sum(out * out)
        return [out] + [tf.convert_to_tensor(g) for g in
                        tape.gradient(loss, model.trainable_variables)]

    ordered = scores_and_gradients()
    order = np.random.default_rng(0).permutation(len(keys))
    model.edge_sources.assign(sources[order])
    model.edge_targets.assign(targets[order])
    for a, b in zip(ordered, scores_and_gradients(), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)


def test_a_symmetric_graph_prepared_as_such_propagates_as_any_graph():
    model = new_model("lightgcn", graph=GRAPH_B)
    graph = interaction_graph(model.edge_sources, model.edge_targets, model.num_nodes)
    values = tf.constant(np.random.default_rng(0).normal(size=[model.num_nodes, 3]),
                         tf.float32)
    expected = dense_normalised_adjacency(*GRAPH_B, U, model.num_nodes) @ values.numpy()
    for adjacency in (model_adjacency(model), prepare(graph), graph):
        with tf.GradientTape() as tape:
            tape.watch(values)
            out = propagate(adjacency, values)
            loss = tf.reduce_sum(out * tf.range(3, dtype=tf.float32))
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)
        # The gradient is A_hat^T @ upstream, A_hat^T = A_hat here.
        upstream = np.broadcast_to(np.arange(3.0), expected.shape)
        np.testing.assert_allclose(tape.gradient(loss, values).numpy(),
                                   dense_normalised_adjacency(*GRAPH_B, U, model.num_nodes)
                                   .T @ upstream, rtol=1e-5, atol=1e-6)
    # A one-way graph is not symmetric: prepared as such, its gradient uses the transpose.
    one_way = interaction_graph(tf.constant([1, 2], tf.int64), tf.constant([3, 3], tf.int64), 4)
    with tf.GradientTape() as tape:
        tape.watch(values)
        loss = tf.reduce_sum(propagate(one_way, values[:4]))
    gradient = tape.gradient(loss, values).numpy()[:4]
    assert np.all(gradient[3] == 0) and np.all(gradient[1] > 0) and np.all(gradient[2] > 0)


def test_lightgcn_equals_dense_propagation():
    model = LightGCN(U, I, embedding_dim=D, num_layers=3, seed=0)
    model.set_graph(*GRAPH_B)
    a_hat = dense_normalised_adjacency(*GRAPH_B, U, model.num_nodes)
    e = model.embeddings.numpy().astype(np.float64)
    layers = [e, a_hat @ e, a_hat @ a_hat @ e, a_hat @ a_hat @ a_hat @ e]
    np.testing.assert_allclose(model.node_representations().numpy(), np.mean(layers, 0),
                               rtol=1e-5, atol=1e-6)
    assert [v.name for v in model.trainable_variables] == ["embeddings:0"]


def test_ngcf_equals_dense_propagation():
    model = NGCF(U, I, embedding_dim=D, num_layers=2, seed=0)
    model.set_graph(*GRAPH_A)
    a_hat = dense_normalised_adjacency(*GRAPH_A, U, model.num_nodes)
    e = model.embeddings.numpy().astype(np.float64)
    out = [e]
    for layer in model.convolutions:
        w1, b1 = (v.numpy() for v in layer.sum_transform.weights)
        w2, b2 = (v.numpy() for v in layer.product_transform.weights)
        s = a_hat @ e
        z = (e + s) @ w1 + b1 + (s * e) @ w2 + b2
        e = np.where(z > 0, z, 0.2 * z)
        out.append(e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-6))
    reps = model.node_representations().numpy()
    assert reps.shape == (model.num_nodes, 3 * D)
    np.testing.assert_allclose(reps, np.concatenate(out, 1), rtol=1e-4, atol=1e-5)


def test_sequence_baselines_variables():
    sasrec = new_model("sasrec", num_blocks=1)
    assert sasrec.position_embeddings.shape == (MAX_LEN, D)
    assert len(sasrec.trainable_variables) == 2 + 16 + 2
    gru = new_model("gru4rec", hidden_units=5)
    assert gru.encoder.projection.kernel.shape == (5, D)
    assert type(gru).from_config(gru.get_config()).encoder.projection is not None
    assert scores(gru).shape == (5, 3)
    assert new_model("gru4rec").encoder.projection is None
    # An empty history reads nothing: GRU4Rec's query is zero.
    empty = dict(BATCH, history=tf.zeros([5, 2], tf.int64))
    np.testing.assert_array_equal(scores(gru, empty), 0)


def test_self_attention_last_only_equals_the_last_position_with_its_gradients():
    from tfmeta.models.sequence import SelfAttentionEncoder
    encoder = SelfAttentionEncoder(D, num_blocks=2, num_heads=2, dropout=0.0, seed=3)
    tokens = tf.random.stateless_normal([3, 5, D], seed=[1, 2])
    mask = tf.constant([[False, False, True, True, True],   # left padding
                        [True, False, True, False, True],   # padding anywhere
                        [False] * 5])                        # nothing to read
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(tokens)
        full = encoder(tokens, mask)[:, -1]
        last = encoder(tokens, mask, last_only=True)
        full_sum, last_sum = tf.reduce_sum(full ** 2), tf.reduce_sum(last ** 2)
    np.testing.assert_allclose(last.numpy(), full.numpy(), rtol=1e-5, atol=1e-6)
    for a, b in zip(tape.gradient(last_sum, [tokens, *encoder.trainable_variables]),
                    tape.gradient(full_sum, [tokens, *encoder.trainable_variables])):
        np.testing.assert_allclose(tf.convert_to_tensor(a).numpy(),
                                   tf.convert_to_tensor(b).numpy(), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------- GnnSa

def test_gnn_sa_user_token_is_last_and_query_is_its_output():
    model = GnnSaRecommender(U, I, embedding_dim=D, max_len=MAX_LEN, seed=4)
    empty = {"user": tf.constant([3], tf.int64), "history": tf.zeros([1, 4], tf.int64),
             "items": tf.constant([[1, 2, 3]], tf.int64)}
    before = scores(model, empty)
    # No graph, no history: only the user's token can carry the change.
    model.embeddings.assign(model.embeddings + tf.one_hot(3, model.num_nodes)[:, None])
    assert not np.allclose(scores(model, empty), before)
    # The query is the encoder's output at the last token, the user's.
    model.set_graph(*GRAPH_A)
    nodes = model.node_representations()
    history = tf.constant([[0, 0, 0, 0, 5, 2]], tf.int64)
    tokens = tf.concat([tf.gather(nodes, model.item_nodes(history)),
                        tf.gather(nodes, model.user_nodes([6]))[:, None]], axis=1)
    mask = tf.constant([[False] * 4 + [True] * 3])
    query = model.encoder(tokens, mask)[:, -1]
    np.testing.assert_allclose(
        model.encode_users(tf.constant([6]), history, nodes).numpy(), query.numpy(),
        rtol=1e-5, atol=1e-6)


def test_gnn_sa_order_needs_two_blocks():
    # Without positions, one block's output at the last (user) token attends to the set
    # of history items: the order only matters from the second block on, through the
    # causal mask of the first.
    history = with_history([[4, 7, 9], [9, 4, 7]])
    one = scores(new_model("gnn-sa", num_blocks=1), history)
    np.testing.assert_allclose(one[0], one[1], rtol=1e-5, atol=1e-6)
    two = scores(new_model("gnn-sa", num_blocks=2), history)
    assert not np.allclose(two[0], two[1])


@pytest.mark.parametrize("layers, blocks", [(2, 1), (3, 2)])
def test_gnn_sa_variables_are_as_documented(layers, blocks):
    model = GnnSaRecommender(U, I, embedding_dim=D, num_layers=layers, num_blocks=blocks,
                             num_heads=2)
    names = [v.name for v in model.trainable_variables]
    assert len(names) == 1 + 3 * layers + 16 * blocks + 2
    assert sum("embeddings" in n for n in names) == 1
    assert not any("position" in n for n in names)
    assert sum("/gcn_" in n for n in names) == 3 * layers
    assert sum("/attention/" in n for n in names) == 8 * blocks
    assert model.embeddings.shape == (1 + U + I, D)


def test_gnn_sa_without_edges_uses_the_self_transform_only():
    model = GnnSaRecommender(U, I, embedding_dim=D, max_len=MAX_LEN, num_layers=2, seed=6)
    model.set_graph([], [])
    out = scores(model, BATCH)
    assert np.all(np.isfinite(out))
    values = model.embeddings.numpy()
    for layer in model.gcn.convolutions:
        w_self, bias = (v.numpy() for v in layer.self_transform.weights)
        values = np.tanh(values @ w_self + bias)
    np.testing.assert_allclose(model.node_representations().numpy(), values, rtol=1e-5,
                               atol=1e-6)


# ---------------------------------------------------------------------- learning (can fail)

def test_every_model_learns_which_cluster_a_user_likes():
    """24 users, 20 items in two clusters; user u interacts with 5 items of cluster u % 2.
    After 300 Adam steps of BPR (negatives from the other cluster), most users must score
    their cluster's items above the other cluster's on average."""
    users, items, half = 24, 20, 10
    rng = np.random.default_rng(0)
    liked = [rng.choice(half, 5, replace=False) + 1 + half * (u % 2) for u in range(users)]
    history = tf.constant(np.array(liked), tf.int64)                    # [U, 5]
    user_rows = tf.range(1, users + 1, dtype=tf.int64)
    cluster = tf.constant([u % 2 for u in range(users)], tf.int64)
    graph = (np.repeat(np.arange(1, users + 1), 5), np.concatenate(liked))
    everything = tf.tile(tf.range(1, items + 1, dtype=tf.int64)[None], [users, 1])
    in_cluster = (np.arange(items)[None] // half) == (np.arange(users)[:, None] % 2)
    failures = {}
    for name in NAMES:
        tf.keras.utils.set_random_seed(0)
        model = make_model(name, users, items, embedding_dim=16, max_len=5, seed=0)
        model.set_graph(*graph)
        optimizer = tf.keras.optimizers.Adam(1e-2)
        optimizer.build(model.trainable_variables)

        @tf.function
        def train_step():
            pick = tf.random.uniform([users], 0, 5, tf.int64)
            positive = tf.gather(history, pick, batch_dims=1)
            negative = tf.random.uniform([users], 1, half + 1, tf.int64) + half * (1 - cluster)
            batch = {"user": user_rows, "history": history,
                     "items": tf.stack([positive, negative], axis=1)}
            with tf.GradientTape() as tape:
                loss = bpr_loss(model(batch, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        for _ in range(300):
            train_step()
        s = model({"user": user_rows, "history": history, "items": everything}).numpy()
        share = np.mean(np.where(in_cluster, s, 0).sum(1) / half
                        > np.where(in_cluster, 0, s).sum(1) / half)
        if share <= 0.8:
            failures[name] = share
    assert not failures, f"share of users ranking their cluster first: {failures}"


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
