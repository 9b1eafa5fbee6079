"""EmbeddingMLP: the base CTR model of ASMG (Peng et al., RecSys 2021).

    model = EmbeddingMLP.from_period_dataset(data)
    for p in data.select(periods=[1]):
        model.set_known(p["users_seen"], p["items_seen"])
    logits = model(batch)                           # [B] float32
    loss = bce_loss(logits, batch["label"])

Inputs (protocol B batches): `user` string [B], `item` string [B], `history` string
[B, L] (oldest first, '' = padding; a RaggedTensor is accepted too). Other keys
(`label`, `categories`, ...) are ignored: an item's categories come from the
`item_categories` table given at construction, so history items get theirs as well.

Architecture: user embedding, item representation = [item embedding ; masked mean of
its category embeddings] (just the item embedding without categories), history
representation = masked mean of the representations of the most recent `history_len`
non-'' history items (zero when empty); concat [user, history, item] -> Dense 20 ReLU
-> Dense 10 ReLU -> Dense 1 = logit.

Embedding rows: row 0 is the single OOV row; the id of vocabulary rank r (0-based,
order of first appearance) has row r + 1. Growing vocabularies are modelled with
reserved rows: every row exists from the start, but `set_known(users, items)` makes
ids of rank >= known map to row 0, so training on a period never touches (nor gives
gradient to) the rows of ids that only appear later.

The model knows nothing about meta-learning: update strategies work on
`trainable_variables` == `embedding_tables + dense_variables`, whose shapes are fixed
at construction.
"""
from __future__ import annotations

import types
from typing import Mapping, Optional, Sequence

import tensorflow as tf

from tfmeta.data.interactions import string_lookup

KINDS = ("users", "items", "categories")


def bce_losses(logits, labels) -> tf.Tensor:
    """Sigmoid cross-entropy [B] of logits [B] against 0/1 labels (int or float)."""
    logits = tf.reshape(tf.convert_to_tensor(logits), [-1])
    labels = tf.reshape(tf.cast(labels, logits.dtype), [-1])
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


def bce_loss(logits, labels) -> tf.Tensor:
    """Mean sigmoid cross-entropy of logits [B] against 0/1 labels (int or float)."""
    return tf.reduce_mean(bce_losses(logits, labels))


def _masked_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Mean of values [..., N, D] over N where mask [..., N]; zeros where none is set."""
    weights = tf.cast(mask, values.dtype)
    total = tf.reduce_sum(values * weights[..., None], axis=-2)
    count = tf.reduce_sum(weights, axis=-1, keepdims=True)
    return total / tf.maximum(count, 1.0)


def _dense_strings(value) -> tf.Tensor:
    if isinstance(value, tf.RaggedTensor):
        return value.to_tensor(default_value="")
    if isinstance(value, tf.SparseTensor):
        return tf.sparse.to_dense(value, default_value="")
    return tf.convert_to_tensor(value, dtype=tf.string)


class EmbeddingMLP(tf.keras.Model):
    """The ASMG base CTR model (see the module docstring)."""

    def __init__(self, users: Sequence[str], items: Sequence[str],
                 categories: Optional[Sequence[str]] = None,
                 item_categories: Optional[Mapping[str, Sequence[str]]] = None,
                 embedding_dim: int = 8, hidden_units: Sequence[int] = (20, 10),
                 history_len: int = 30, max_item_categories: int = 8,
                 seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        if item_categories is not None and categories is None:
            raise ValueError("item_categories needs the categories vocabulary")
        if history_len < 1 or max_item_categories < 1 or embedding_dim < 1:
            raise ValueError("history_len, max_item_categories and embedding_dim must "
                             "be positive")
        # Tuples and a read-only mapping: Keras tracks list and dict attributes element by
        # element and walks them on every call (26 ms a call at 60,000 ids).
        self.users = tuple(str(u) for u in users)
        self.items = tuple(str(i) for i in items)
        if not self.users or not self.items or categories is not None and not categories:
            raise ValueError("vocabularies must not be empty")
        self.categories = None if categories is None else tuple(str(c) for c in categories)
        self.item_categories = None if item_categories is None else types.MappingProxyType({
            str(k): tuple(str(c) for c in v) for k, v in item_categories.items()})
        self.embedding_dim = int(embedding_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.history_len = int(history_len)
        self.max_item_categories = int(max_item_categories)
        self.seed = seed

        self.user_lookup = string_lookup(self.users, "user_lookup")
        self.item_lookup = string_lookup(self.items, "item_lookup")
        self.category_lookup = (None if self.categories is None
                                else string_lookup(self.categories, "category_lookup"))
        self.known_users = tf.Variable(len(self.users), dtype=tf.int64, trainable=False,
                                       name="known_users")
        self.known_items = tf.Variable(len(self.items), dtype=tf.int64, trainable=False,
                                       name="known_items")

        def init(offset):
            return tf.keras.initializers.RandomUniform(
                -0.05, 0.05, seed=None if seed is None else seed + offset)

        dim = self.embedding_dim
        self.user_embeddings = self.add_weight(
            name="user_embeddings", shape=[len(self.users) + 1, dim],
            initializer=init(0), trainable=True)
        self.item_embeddings = self.add_weight(
            name="item_embeddings", shape=[len(self.items) + 1, dim],
            initializer=init(1), trainable=True)
        self.category_embeddings = None
        self.item_category_rows = None
        if self.categories is not None:
            self.category_embeddings = self.add_weight(
                name="category_embeddings", shape=[len(self.categories) + 1, dim],
                initializer=init(2), trainable=True)
            self.item_category_rows = tf.Variable(
                self._category_table(), trainable=False, name="item_category_rows")

        self.hidden_layers = [
            tf.keras.layers.Dense(units, activation="relu", name=f"hidden_{i + 1}",
                                  kernel_initializer=tf.keras.initializers.GlorotUniform(
                                      seed=None if seed is None else seed + 10 + i))
            for i, units in enumerate(self.hidden_units)]
        self.logit_layer = tf.keras.layers.Dense(
            1, name="logit", kernel_initializer=tf.keras.initializers.GlorotUniform(
                seed=None if seed is None else seed + 9))

        # One forward pass so that every variable exists with its final shape now.
        self({"user": tf.constant([""]), "item": tf.constant([""]),
              "history": tf.constant([[""]])}, training=False)

    def _category_table(self) -> tf.Tensor:
        """[n_items + 1, max_item_categories] category rows per item row (0 = none)."""
        rows = {c: r + 1 for r, c in enumerate(self.categories)}
        table = [[0] * self.max_item_categories for _ in range(len(self.items) + 1)]
        mapping = self.item_categories or {}
        for r, item in enumerate(self.items):
            cats = [rows[c] for c in mapping.get(item, ()) if c in rows]
            cats = list(dict.fromkeys(cats))[:self.max_item_categories]
            table[r + 1][:len(cats)] = cats
        return tf.constant(table, dtype=tf.int64)

    # ------------------------------------------------------------------ vocabulary

    def set_known(self, users: Optional[int], items: Optional[int]) -> None:
        """Ids of vocabulary rank >= users / items map to the OOV row from now on
        (None = the whole vocabulary)."""
        for var, value, size, kind in ((self.known_users, users, len(self.users), "users"),
                                       (self.known_items, items, len(self.items), "items")):
            if value is None:
                value = size
            elif not tf.is_tensor(value) and not 0 <= int(value) <= size:
                raise ValueError(f"known {kind} {value} outside 0..{size}")
            var.assign(tf.cast(value, tf.int64))

    def lookup(self, kind: str, ids) -> tf.Tensor:
        """Embedding rows (int64) of string ids: 0 for OOV, '' and not-yet-known ids."""
        ids = tf.convert_to_tensor(ids, dtype=tf.string)
        if kind == "users":
            rows = self.user_lookup(ids)
            rows = tf.where(rows > self.known_users, tf.zeros_like(rows), rows)
        elif kind == "items":
            rows = self.item_lookup(ids)
            rows = tf.where(rows > self.known_items, tf.zeros_like(rows), rows)
        elif kind == "categories" and self.categories is not None:
            rows = self.category_lookup(ids)
        else:
            raise ValueError(f"kind must be one of {KINDS} (categories only when the "
                             f"model has them), not {kind!r}")
        return tf.where(tf.equal(ids, ""), tf.zeros_like(rows), rows)

    # ------------------------------------------------------------------ variables

    @property
    def embedding_tables(self) -> list:
        tables = [self.user_embeddings, self.item_embeddings]
        if self.category_embeddings is not None:
            tables.append(self.category_embeddings)
        return tables

    @property
    def dense_variables(self) -> list:
        out = []
        for layer in self.hidden_layers + [self.logit_layer]:
            out += [layer.kernel, layer.bias]
        return out

    @property
    def trainable_weights(self) -> list:
        # Keras lists sublayers' weights first; put the tables first, as documented.
        weights = super().trainable_weights
        order = {id(v): i for i, v in enumerate(self.embedding_tables + self.dense_variables)}
        return sorted(weights, key=lambda v: order.get(id(v), len(order)))

    # ------------------------------------------------------------------ forward

    def _item_repr(self, item_rows: tf.Tensor) -> tf.Tensor:
        emb = tf.gather(self.item_embeddings, item_rows)
        if self.category_embeddings is None:
            return emb
        cat_rows = tf.gather(self.item_category_rows, item_rows)  # [..., C]
        cats = tf.gather(self.category_embeddings, cat_rows)       # [..., C, D]
        return tf.concat([emb, _masked_mean(cats, cat_rows > 0)], axis=-1)

    def call(self, features, training=False):
        user = tf.reshape(tf.convert_to_tensor(features["user"], tf.string), [-1])
        item = tf.reshape(tf.convert_to_tensor(features["item"], tf.string), [-1])
        history = _dense_strings(features["history"])
        return self.logits_from_rows(self.lookup("users", user), self.lookup("items", item),
                                     self.lookup("items", history),
                                     tf.not_equal(history, ""), training=training)

    def logits_from_rows(self, user_rows, item_rows, history_rows, history_present,
                         training=False):
        """The logits of embedding rows (`lookup`'s): user [B], item [B] (or [B, C]:
        C candidates per user, logits [B, C], the user's side computed once), history
        [B, L] with history_present [B, L] False at padding (an unknown history item is
        present, with row 0). Exported models look their rows up elsewhere."""
        user_vec = tf.gather(self.user_embeddings, user_rows)
        item_vec = self._item_repr(item_rows)
        # Keep the most recent history_len present entries wherever the padding is.
        later = tf.cumsum(tf.cast(history_present, tf.int32), axis=1, reverse=True)
        mask = history_present & (later <= self.history_len)
        history_vec = _masked_mean(self._item_repr(history_rows), mask)
        context = tf.concat([user_vec, history_vec], axis=-1)
        if item_vec.shape.rank == 3:  # [B, C, D]: the same context for each candidate
            context = tf.broadcast_to(context[:, None, :], tf.concat(
                [tf.shape(item_vec)[:2], tf.shape(context)[-1:]], axis=0))
        x = tf.concat([context, item_vec], axis=-1)
        for layer in self.hidden_layers:
            x = layer(x, training=training)
        return tf.cast(tf.squeeze(self.logit_layer(x, training=training), axis=-1),
                       tf.float32)

    def predict_proba(self, features) -> tf.Tensor:
        return tf.sigmoid(self(features, training=False))

    # ------------------------------------------------------------------ config

    def get_config(self) -> dict:
        return {"name": self.name, "users": list(self.users), "items": list(self.items),
                "categories": None if self.categories is None else list(self.categories),
                "item_categories": None if self.item_categories is None else {
                    k: list(v) for k, v in self.item_categories.items()},
                "embedding_dim": self.embedding_dim,
                "hidden_units": list(self.hidden_units), "history_len": self.history_len,
                "max_item_categories": self.max_item_categories, "seed": self.seed}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)

    @classmethod
    def from_period_dataset(cls, data, **kwargs) -> "EmbeddingMLP":
        """From a built period dataset's vocabularies (tfmeta.data.periods.PeriodDataset);
        history_len defaults to the dataset's."""
        kwargs.setdefault("history_len", data.manifest.get("history_len") or 30)
        categories = (data.vocabulary("categories")
                      if data.manifest.get("has_categories") else None)
        if categories is not None:
            kwargs.setdefault("categories", categories)
        return cls(data.vocabulary("users"), data.vocabulary("items"), **kwargs)
