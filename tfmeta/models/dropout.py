"""Dropout whose random stream is part of the model's state.

    dropout = CheckpointedDropout(0.2, seed=7)
    y = dropout(x, training=True)        # a new mask on every training call

Keras' Dropout draws its masks from a stateful RandomUniform op, whose place in the
random stream lives inside the op kernel, not in any variable: a checkpoint cannot
hold it, so a run resumed from one draws other masks than the uninterrupted run would
have, and ends elsewhere. `CheckpointedDropout` draws a stateless mask
(`tf.nn.experimental.stateless_dropout`) from (its seed, a draw counter) and counts the
counter up on every training call. The counter is a non-trainable variable of the
layer, so the model's checkpoint saves and restores it and a resumed run draws the
masks the uninterrupted one would have, at no measurable cost (a training step takes
0.95x to 1.05x the time it did with Keras' Dropout: benchmarks/dropout_speed.py). Without
a seed the layer takes one from Python's `random`, which
`tf.keras.utils.set_random_seed` seeds (as Keras' own layers take theirs from the
global seed). Under a distribution strategy every replica draws with the same
(seed, counter), on its own shard of the batch.

Checkpoints written by tfmeta before these counters existed (commit d338699) lack them:
`lacks_draw_counters` tells such a checkpoint apart, so that an export can restore it
(inference draws no masks) and a resume can say why it cannot be exact.
"""
from __future__ import annotations

import random
from typing import Iterable, Optional

import tensorflow as tf


class CheckpointedDropout(tf.keras.layers.Layer):
    """Inverted dropout (kept units scaled by 1 / (1 - rate)) in training, identity
    otherwise; the variable `draws` counts the masks drawn."""

    def __init__(self, rate: float, seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = random.getrandbits(31) if seed is None else int(seed)
        self.draws = self.add_weight(
            name="draws", shape=[], dtype=tf.int64, initializer="zeros", trainable=False,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    def call(self, inputs: tf.Tensor, training: bool = False) -> tf.Tensor:
        if not training or self.rate == 0.0:
            return inputs
        seed = tf.stack([tf.constant(self.seed, tf.int64), self.draws.assign_add(1)])
        return tf.nn.experimental.stateless_dropout(inputs, self.rate, seed)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class MultiHeadAttention(tf.keras.layers.MultiHeadAttention):
    """Keras' MultiHeadAttention with its dropout on the attention weights drawn by a
    CheckpointedDropout (`_build_attention` is the documented place to customise the
    attention computation's layers)."""

    def __init__(self, *args, dropout_seed: Optional[int] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.dropout_seed = dropout_seed

    def _build_attention(self, rank):
        super()._build_attention(rank)
        self._dropout_layer = CheckpointedDropout(self._dropout, self.dropout_seed,
                                                  name="attention_weights_dropout")

    def get_config(self) -> dict:
        return {**super().get_config(), "dropout_seed": self.dropout_seed}


def lacks_draw_counters(checkpoint_path: str, models: Iterable[tf.Module]) -> bool:
    """Whether these models have CheckpointedDropout layers but the checkpoint at
    checkpoint_path holds none of their draw counters (it was written by tfmeta before
    d338699, when dropout was Keras' own)."""
    has_dropout = any(isinstance(layer, CheckpointedDropout)
                      for model in models for layer in model.submodules)
    return has_dropout and not any("/draws/" in name for name, _ in
                                   tf.train.list_variables(checkpoint_path))
