"""The contract of protocol A recommenders (LeapRec's model and the ranking baselines).

    model = LightGCN(num_users=943, num_items=1682, embedding_dim=64)
    model.set_graph(user_rows, item_rows)            # the training interactions
    scores = model({"user": users, "history": history, "items": items})   # [B, C]
    loss = bpr_loss(model({"user": u, "history": h, "items": tf.stack([pos, neg], 1)}))

Rows, not strings. Users are numbered 1..num_users and items 1..num_items in the order
of the period dataset's vocabularies (rank r -> row r + 1); 0 is padding: an empty
history slot, an unknown id. Mapping raw ids to rows is the job of the data side and
of the serving signatures, so models stay plain numeric Keras models.

One embedding table holds users and items (LeapRec's choice, convenient for graph
models): node 0 is padding, nodes 1..U the users, U + 1..U + I the items
(`user_nodes`, `item_nodes` translate rows to nodes).

A subclass changes what it needs of three steps, the TFRS way (one override point
each):

- `node_representations(training)`: the [1 + U + I, d] table every lookup reads
  (default: the raw embeddings; graph models propagate them over the graph);
- `encode_users(users, history, nodes, training)`: the query vector of each user
  (default: the user's node; sequential models read the history);
- scoring is the dot product of that query with the candidate items' nodes.

`history` is [B, L] item rows, oldest first, 0 = padding wherever it stands; a model
reads at most its `max_len` most recent items. Inputs: `user` [B] int, `history`
[B, L] int, `items` [B, C] int; output [B, C] float32 scores.
"""
from __future__ import annotations

from typing import Optional

import tensorflow as tf


def bpr_losses(scores: tf.Tensor) -> tf.Tensor:
    """Bayesian personalised ranking per example: scores [B, 1 + n], the positive
    first; [B], the mean of -log sigmoid(positive - negative) over the n negatives."""
    scores = tf.convert_to_tensor(scores)
    return -tf.reduce_mean(tf.math.log_sigmoid(scores[:, :1] - scores[:, 1:]), axis=1)


def bpr_loss(scores: tf.Tensor) -> tf.Tensor:
    """The mean of `bpr_losses` over the batch."""
    return tf.reduce_mean(bpr_losses(scores))


def offset_seed(seed: Optional[int], offset: int) -> Optional[int]:
    """seed + offset, None when seed is None: each layer of a seeded model gets its own
    offset, so that no two of its kernels start equal nor two dropouts draw alike."""
    return None if seed is None else seed + offset


def glorot(seed: Optional[int], offset: int = 0) -> tf.keras.initializers.Initializer:
    """Glorot-uniform initialiser seeded with offset_seed(seed, offset)."""
    return tf.keras.initializers.GlorotUniform(seed=offset_seed(seed, offset))


def most_recent(history: tf.Tensor, max_len: int) -> tf.Tensor:
    """[B, max_len] item rows: the most recent max_len non-padding entries of each
    history, oldest first, left-padded with 0 (so the latest item is always last)."""
    history = tf.convert_to_tensor(history)
    history = tf.cast(history, tf.int64)
    present = history > 0
    # Stable sort that moves padding first and keeps the items' order.
    order = tf.argsort(tf.cast(present, tf.int32), axis=1, stable=True)
    packed = tf.gather(history, order, batch_dims=1)
    width = tf.shape(packed)[1]
    packed = tf.pad(packed, [[0, 0], [tf.maximum(max_len - width, 0), 0]])
    return packed[:, -max_len:]


class RankingModel(tf.keras.Model):
    """Base of the protocol A recommenders; see the module docstring.

    Args:
        num_users, num_items: vocabulary sizes (rows 1..n; 0 is padding).
        embedding_dim: d.
        max_len: most recent history items a sequential model reads.
        seed: initialisers' seed (None: random).
    """

    uses_graph = False    # propagates over the user-item graph (needs set_graph)
    uses_history = False  # reads the user's history

    def __init__(self, num_users: int, num_items: int, embedding_dim: int = 64,
                 max_len: int = 50, seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        if min(num_users, num_items) < 1 or embedding_dim < 1 or max_len < 1:
            raise ValueError("num_users, num_items, embedding_dim and max_len must be >= 1")
        self.num_users, self.num_items = int(num_users), int(num_items)
        self.embedding_dim, self.max_len = int(embedding_dim), int(max_len)
        self.seed = seed
        self.num_nodes = 1 + self.num_users + self.num_items
        self.embeddings = self.add_weight(
            name="embeddings", shape=[self.num_nodes, self.embedding_dim],
            initializer=tf.keras.initializers.RandomNormal(stddev=0.1, seed=seed),
            trainable=True)
        # The interaction graph as edge lists of node ids (variables of any length, so
        # a new graph needs no retracing and checkpoints carry it).
        self.edge_sources = tf.Variable(tf.zeros([0], tf.int64), shape=[None],
                                        trainable=False, name="edge_sources")
        self.edge_targets = tf.Variable(tf.zeros([0], tf.int64), shape=[None],
                                        trainable=False, name="edge_targets")

    def build_variables(self) -> None:
        """One forward pass on a padding batch, so that every sublayer's variables exist
        with their final shapes (subclasses with sublayers call it at the end of
        __init__; meta-learners and `set_weights` need the full variable list)."""
        zeros = tf.zeros([1, 1], tf.int64)
        self({"user": tf.zeros([1], tf.int64), "history": zeros, "items": zeros})

    # ------------------------------------------------------------------ rows and nodes

    def user_nodes(self, users) -> tf.Tensor:
        return tf.cast(users, tf.int64)

    def item_nodes(self, items) -> tf.Tensor:
        items = tf.cast(items, tf.int64)
        return tf.where(items > 0, items + self.num_users, tf.zeros_like(items))

    def set_graph(self, user_rows, item_rows) -> None:
        """The user-item interaction graph (one edge per pair, both directions stored,
        ordered by target node, then source node)."""
        users = self.user_nodes(tf.reshape(user_rows, [-1]))
        items = self.item_nodes(tf.reshape(item_rows, [-1]))
        if users.shape[0] is not None and items.shape[0] != users.shape[0]:
            raise ValueError("user_rows and item_rows must have the same length")
        keep = (users > 0) & (items > 0)
        users, items = tf.boolean_mask(users, keep), tf.boolean_mask(items, keep)
        sources, targets = tf.concat([users, items], 0), tf.concat([items, users], 0)
        # In the row order of A_hat (row = target): propagation then needs no sort.
        order = tf.argsort(targets * self.num_nodes + sources, stable=True)
        self.edge_sources.assign(tf.gather(sources, order))
        self.edge_targets.assign(tf.gather(targets, order))

    # ------------------------------------------------------------------ override points

    def node_representations(self, training: bool = False) -> tf.Tensor:
        return tf.convert_to_tensor(self.embeddings)

    def encode_users(self, users, history, nodes, training: bool = False) -> tf.Tensor:
        return tf.gather(nodes, self.user_nodes(users))

    # ------------------------------------------------------------------ scoring

    def call(self, inputs, training: bool = False) -> tf.Tensor:
        users = tf.reshape(tf.convert_to_tensor(inputs["user"]), [-1])
        history = inputs.get("history")
        # No history: an empty one per user (history models then read nothing).
        history = (tf.zeros([tf.shape(users)[0], 0], tf.int64) if history is None
                   else tf.convert_to_tensor(history))
        if history.shape.rank != 2:
            raise ValueError(f"history must be [B, L], got shape {history.shape}")
        return self.score(users, history, inputs["items"], training=training)

    def score(self, users, history, items, training: bool = False,
              nodes: Optional[tf.Tensor] = None) -> tf.Tensor:
        """`call` on separate tensors; `nodes` = precomputed `node_representations()`
        (evaluation and export compute a graph model's propagation once)."""
        if nodes is None:
            nodes = self.node_representations(training)
        queries = self.encode_users(users, history, nodes, training)
        candidates = tf.gather(nodes, self.item_nodes(items))
        return tf.einsum("bd,bcd->bc", queries, candidates)

    def score_all_items(self, users, history, training: bool = False,
                        nodes: Optional[tf.Tensor] = None) -> tf.Tensor:
        """[B, 1 + num_items] scores of every item row (column 0 is padding)."""
        if nodes is None:
            nodes = self.node_representations(training)
        queries = self.encode_users(tf.reshape(users, [-1]), history, nodes, training)
        items = tf.concat([nodes[:1], nodes[1 + self.num_users:]], axis=0)
        return tf.matmul(queries, items, transpose_b=True)

    def get_config(self) -> dict:
        return {"num_users": self.num_users, "num_items": self.num_items,
                "embedding_dim": self.embedding_dim, "max_len": self.max_len,
                "seed": self.seed, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
