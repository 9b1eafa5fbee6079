"""Sequence encoders of the protocol A sequential recommenders (SASRec, GRU4Rec, GnnSa).

    encoder = SelfAttentionEncoder(dim=64, num_blocks=1, num_heads=1, dropout=0.2)
    states = encoder(tokens, mask, training=True)     # [B, T, d]
    query = encoder(tokens, mask, last_only=True)      # [B, d] == states[:, -1], cheaper
    gru = GRUEncoder(units=64, output_dim=64)
    query = gru(tokens, mask, training=True)           # [B, d]

`tokens` is [B, T, d], oldest first; `mask` [B, T] bool, False at padding. Padding
tokens are ignored wherever they stand: attention never reads them and the GRU skips
them (carries its state over them).
"""
from __future__ import annotations

from typing import Optional

import tensorflow as tf

from tfmeta.models.dropout import CheckpointedDropout, MultiHeadAttention
from tfmeta.models.ranking import glorot, offset_seed

LAYER_NORM_EPSILON = 1e-6


class SelfAttentionBlock(tf.keras.layers.Layer):
    """One SASRec block (Kang & McAuley, ICDM 2018, sec. III-B/C), pre-normalised as in
    the paper's g(x) = x + Dropout(g(LayerNorm(x))):

        x = x + Dropout(MultiHeadAttention(LN(x), LN(x), mask))
        x = x + Dropout(W2 Dropout(ReLU(W1 LN(x) + b1)) + b2)
        x = x * mask                          (padding positions stay zero)

    The attention has num_heads heads of dim // num_heads each, dropout on its weights,
    and `attention_mask[b, i, j] = j <= i and mask[b, j]` (causal, padding keys
    ignored). The feed-forward net is d -> d -> d, as in SASRec.
    """

    def __init__(self, dim: int, num_heads: int = 1, dropout: float = 0.2,
                 seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not a multiple of num_heads {num_heads}")
        self.dim, self.num_heads, self.rate, self.seed = (
            int(dim), int(num_heads), float(dropout), seed)
        # Unseeded on purpose: Keras clones one seeded initialiser for the query, key
        # and value kernels, which would make them start equal (global seed applies).
        self.attention = MultiHeadAttention(
            num_heads=self.num_heads, key_dim=self.dim // self.num_heads,
            dropout=self.rate, dropout_seed=offset_seed(seed, 2), name="attention")
        self.attention_norm = tf.keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, name="attention_norm")
        self.feed_forward_norm = tf.keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, name="feed_forward_norm")
        self.feed_forward_inner = tf.keras.layers.Dense(
            self.dim, activation="relu", kernel_initializer=glorot(seed, 0),
            name="feed_forward_inner")
        self.feed_forward_outer = tf.keras.layers.Dense(
            self.dim, kernel_initializer=glorot(seed, 1), name="feed_forward_outer")
        self.attention_dropout = CheckpointedDropout(self.rate, offset_seed(seed, 3))
        self.inner_dropout = CheckpointedDropout(self.rate, offset_seed(seed, 4))
        self.feed_forward_dropout = CheckpointedDropout(self.rate, offset_seed(seed, 5))

    def call(self, tokens: tf.Tensor, mask: tf.Tensor, training: bool = False,
             last_only: bool = False):
        """[B, T, d] -> [B, T, d], or [B, 1, d] (the last position) with last_only:
        the same values there, with the queries and the feed-forward net of the other
        positions skipped (the last position attends to every key under the causal
        mask), about a third of a block's work when only the last output is read."""
        mask = tf.cast(mask, tf.bool)
        normed = self.attention_norm(tokens)
        if last_only:
            x, query, mask_out = tokens[:, -1:], normed[:, -1:], mask[:, -1:]
            attention_mask = mask[:, None, :]
        else:
            width = tf.shape(tokens)[1]
            causal = tf.linalg.band_part(tf.ones([width, width], tf.bool), -1, 0)
            x, query, mask_out = tokens, normed, mask
            attention_mask = causal[None] & mask[:, None, :]
        keep = tf.cast(mask_out, tokens.dtype)[..., None]
        h = self.attention(query, normed, attention_mask=attention_mask, training=training)
        x = x + self.attention_dropout(h, training=training)
        h = self.inner_dropout(self.feed_forward_inner(self.feed_forward_norm(x)),
                               training=training)
        x = x + self.feed_forward_dropout(self.feed_forward_outer(h), training=training)
        return x * keep

    def get_config(self) -> dict:
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads,
                "dropout": self.rate, "seed": self.seed}


class SelfAttentionEncoder(tf.keras.layers.Layer):
    """Padding tokens zeroed, num_blocks SelfAttentionBlocks, then a final LayerNorm (the
    SASRec code normalises the last block's output). Returns [B, T, d]; no positional
    information is added here (SASRec adds its own, GnnSa has none)."""

    def __init__(self, dim: int, num_blocks: int = 1, num_heads: int = 1,
                 dropout: float = 0.2, seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        if num_blocks < 1:
            raise ValueError("num_blocks must be >= 1")
        self.dim, self.num_blocks, self.num_heads = int(dim), int(num_blocks), int(num_heads)
        self.rate, self.seed = float(dropout), seed
        self.blocks = [
            SelfAttentionBlock(self.dim, self.num_heads, self.rate,
                               None if seed is None else seed + 10 * i, name=f"block_{i + 1}")
            for i in range(self.num_blocks)]
        self.output_norm = tf.keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, name="output_norm")

    def call(self, tokens: tf.Tensor, mask: tf.Tensor, training: bool = False,
             last_only: bool = False):
        """[B, T, d]; with last_only the last position's output alone, [B, d] (the
        recommenders' query), computed without the last block's other positions."""
        x = tokens * tf.cast(mask, tokens.dtype)[..., None]
        for i, block in enumerate(self.blocks):
            x = block(x, mask, training=training,
                      last_only=last_only and i == self.num_blocks - 1)
        x = self.output_norm(x)
        return x[:, -1] if last_only else x

    def get_config(self) -> dict:
        return {**super().get_config(), "dim": self.dim, "num_blocks": self.num_blocks,
                "num_heads": self.num_heads, "dropout": self.rate, "seed": self.seed}


class GRUEncoder(tf.keras.layers.Layer):
    """GRU4Rec's session encoder (Hidasi et al., ICLR 2016): one GRU layer of `units`
    over the non-padding tokens (Keras masking), its final hidden state, dropout on it
    during training (GRU4Rec's hidden-layer dropout), and a linear projection to
    output_dim when units != output_dim. An all-padding sequence gives zeros."""

    def __init__(self, units: int, output_dim: int, dropout: float = 0.2,
                 seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.output_dim, self.rate, self.seed = (
            int(units), int(output_dim), float(dropout), seed)
        self.gru = tf.keras.layers.GRU(
            self.units, kernel_initializer=glorot(seed, 0),
            recurrent_initializer=tf.keras.initializers.Orthogonal(
                seed=None if seed is None else seed + 1), name="gru")
        self.dropout = CheckpointedDropout(self.rate, offset_seed(seed, 3))
        self.projection = (None if self.units == self.output_dim else tf.keras.layers.Dense(
            self.output_dim, use_bias=False, kernel_initializer=glorot(seed, 2),
            name="projection"))

    def call(self, tokens: tf.Tensor, mask: tf.Tensor, training: bool = False):
        state = self.gru(tokens, mask=tf.cast(mask, tf.bool), training=training)
        state = self.dropout(state, training=training)
        return state if self.projection is None else self.projection(state)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "output_dim": self.output_dim,
                "dropout": self.rate, "seed": self.seed}
