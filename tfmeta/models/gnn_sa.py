"""GnnSaRecommender: the recommender of LeapRec (Chairatanakul et al., AAAI 2022).

    model = GnnSaRecommender(num_users=943, num_items=1682, embedding_dim=64)
    model.set_graph(user_rows, item_rows)
    scores = model({"user": users, "history": history, "items": items})   # [B, C]

A GNN over the user-item graph followed by self-attention (SA) over the user's recent
items. The authors published no code; the choices the paper leaves open are marked
(choice) below.

1. One embedding table E^(0) [1 + U + I, d] for users and items (the base class's
   `embeddings`; node 0 = padding).
2. GCN, num_layers layers (default 2), all of width d (tfmeta.models.graph):

       h'_m = tanh(W_self h_m + b + sum_{n in N(m)} W_nbr h_n / sqrt(|N(m)| |N(n)|))

   (choice) tanh as the nonlinearity, after every layer including the last (it
   bounds the representations, hence the scores); (choice) dropout `gcn_dropout`
   (0.2) on every layer's output during training; no residual or layer
   concatenation: the last layer's output H replaces the embeddings for everything
   below. Without edges each layer is tanh(W_self h + b).
3. SA over the user's history: its `max_len` most recent items (`most_recent`, oldest
   first), looked up in H, with the user's own row of H appended as the LAST token:
   T = max_len + 1 tokens. (choice) No positional embeddings and no sqrt(d) input
   scaling; no input dropout beyond the GCN's. num_blocks (default 2, as SASRec's) pre-normalised
   SASRec blocks (tfmeta.models.sequence.SelfAttentionBlock: multi-head attention
   with num_heads (default 1) heads, causal mask, padding keys ignored; two-layer
   ReLU feed-forward net d -> d -> d; residual connections, dropout `dropout`
   (0.2) and LayerNorm around both), then a final LayerNorm.
4. query = the SA output at the user token (the last position), which by the causal
   mask attends to the user and every history item; score(u, i) = query . H[i].
   With an empty history the query depends on the user token alone.
   Note: without positions, one block's output at the last token is a function of
   the SET of history items (attention over keys is order-free, and the causal mask
   hides nothing from the last position); the order of the history only matters
   from the second block on, through the causal mask of the first. (choice) Hence
   the default of 2 blocks: with num_blocks=1 GnnSa would be order-agnostic within
   the max_len window (which items fall in the window still depends on recency).

Trainable variables (num_layers = L, num_blocks = K): `embeddings`; per GCN layer
W_self, b, W_nbr (3); per block the attention's query/key/value/output kernels and
biases (8), two LayerNorms (4) and the feed-forward net (4); the final LayerNorm (2):
1 + 3 L + 16 K + 2 in all (41 by default). Nothing positional.
"""
from __future__ import annotations

from typing import Optional

import tensorflow as tf

from tfmeta.models.graph import GraphConvolutionNetwork, model_adjacency
from tfmeta.models.ranking import RankingModel, most_recent
from tfmeta.models.sequence import SelfAttentionEncoder


class GnnSaRecommender(RankingModel):
    """LeapRec's GNN + self-attention recommender (see the module docstring).

    Args:
        num_users, num_items, embedding_dim, max_len, seed: as RankingModel.
        num_layers: GCN layers.
        num_blocks, num_heads: self-attention blocks and heads (embedding_dim must be
            a multiple of num_heads).
        gcn_dropout: dropout on each GCN layer's output.
        dropout: dropout of the self-attention blocks.
        activation: the GCN nonlinearity (a Keras activation name).
    """

    uses_graph = True
    uses_history = True

    def __init__(self, num_users: int, num_items: int, embedding_dim: int = 64,
                 max_len: int = 50, num_layers: int = 2, num_blocks: int = 2,
                 num_heads: int = 1, gcn_dropout: float = 0.2, dropout: float = 0.2,
                 activation: str = "tanh", seed: Optional[int] = None, **kwargs):
        super().__init__(num_users, num_items, embedding_dim, max_len, seed, **kwargs)
        self.num_layers, self.num_blocks, self.num_heads = (
            int(num_layers), int(num_blocks), int(num_heads))
        self.gcn_dropout, self.dropout, self.activation = (
            float(gcn_dropout), float(dropout), activation)
        self.gcn = GraphConvolutionNetwork(
            self.embedding_dim, self.num_layers, activation, self.gcn_dropout,
            None if seed is None else seed + 1000, name="gcn")
        self.encoder = SelfAttentionEncoder(
            self.embedding_dim, self.num_blocks, self.num_heads, self.dropout,
            None if seed is None else seed + 2000, name="self_attention")
        self.build_variables()

    def node_representations(self, training: bool = False) -> tf.Tensor:
        adjacency = model_adjacency(self)
        return self.gcn(adjacency, tf.convert_to_tensor(self.embeddings), training=training)

    def encode_users(self, users, history, nodes, training: bool = False) -> tf.Tensor:
        recent = most_recent(history, self.max_len)                      # [B, L]
        items = tf.gather(nodes, self.item_nodes(recent))                # [B, L, d]
        user = tf.gather(nodes, self.user_nodes(users))[:, None, :]      # [B, 1, d]
        tokens = tf.concat([items, user], axis=1)
        mask = tf.concat([recent > 0, tf.ones_like(recent[:, :1], tf.bool)], axis=1)
        return self.encoder(tokens, mask, training=training, last_only=True)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_layers": self.num_layers,
                "num_blocks": self.num_blocks, "num_heads": self.num_heads,
                "gcn_dropout": self.gcn_dropout, "dropout": self.dropout,
                "activation": self.activation}
