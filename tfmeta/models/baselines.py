"""The protocol A ranking baselines, each a RankingModel trained with BPR:

    BPRMF      score = e_u . e_i                                   (Rendle et al. 2009)
    GCN        score = h_u . h_i, h = GCN over the user-item graph (Kipf & Welling 2017)
    NGCF       score = e*_u . e*_i, e* = [e^(0); ...; e^(L)]     (Wang et al. SIGIR 2019)
    LightGCN   score = e*_u . e*_i, e* = mean_l e^(l)             (He et al. SIGIR 2020)
    SASRec     score = SA(recent items + positions)[-1] . e_i     (Kang & McAuley 2018)
    GRU4Rec    score = GRU(recent items) . e_i                    (Hidasi et al. 2016)

All share the base's table `embeddings` [1 + U + I, d] (node 0 = padding); the graph
models propagate it over the graph set by `set_graph` (tfmeta.models.graph, the
normalisation norm(m, n) = 1 / sqrt(|N(m)| |N(n)|) documented there), the sequential
ones read the most recent `max_len` items of the history (tfmeta.models.sequence).
Each class docstring gives its equations and the choices the paper leaves open.
"""
from __future__ import annotations

import math
from typing import Optional

import tensorflow as tf

from tfmeta.models.dropout import CheckpointedDropout
from tfmeta.models.graph import (BiInteractionConvolution, GraphConvolutionNetwork,
                                 model_adjacency, propagate)
from tfmeta.models.ranking import RankingModel, most_recent, offset_seed
from tfmeta.models.sequence import GRUEncoder, SelfAttentionEncoder


class BPRMF(RankingModel):
    """BPR matrix factorisation: score(u, i) = e_u . e_i on the raw table."""


class GCN(RankingModel):
    """GCN recommender: the GnnSa graph network without the self-attention,

        h'_m = act(W_self h_m + b + sum_n norm(m, n) W_nbr h_n),  h^(0) = embeddings,

    num_layers layers of width d (default 2), act = tanh, dropout on every layer's
    output during training (default 0.2); score(u, i) = h_u . h_i of the last layer.
    The same layers as GnnSaRecommender (tfmeta.models.graph.GraphConvolutionNetwork).
    """

    uses_graph = True

    def __init__(self, num_users: int, num_items: int, embedding_dim: int = 64,
                 max_len: int = 50, num_layers: int = 2, dropout: float = 0.2,
                 activation: str = "tanh", seed: Optional[int] = None, **kwargs):
        super().__init__(num_users, num_items, embedding_dim, max_len, seed, **kwargs)
        self.num_layers, self.dropout, self.activation = (
            int(num_layers), float(dropout), activation)
        self.gcn = GraphConvolutionNetwork(self.embedding_dim, self.num_layers, activation,
                                           self.dropout, offset_seed(seed, 1000), name="gcn")
        self.build_variables()

    def node_representations(self, training: bool = False) -> tf.Tensor:
        adjacency = model_adjacency(self)
        return self.gcn(adjacency, tf.convert_to_tensor(self.embeddings), training=training)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_layers": self.num_layers,
                "dropout": self.dropout, "activation": self.activation}


class NGCF(RankingModel):
    """Neural graph collaborative filtering (Wang et al., SIGIR 2019):

        s_m       = sum_n norm(m, n) e^(l)_n
        e^(l+1)_m = LeakyReLU_0.2(W1 (e^(l)_m + s_m) + b1 + W2 (s_m * e^(l)_m) + b2)
        e*        = [e^(0); e^(1)/|e^(1)|; ...; e^(L)/|e^(L)|]       ([N, d (L + 1)])

    score(u, i) = e*_u . e*_i. num_layers layers of width d (default 2, the paper uses
    3); message dropout (default 0.1, the paper's) on each layer's output during
    training; no node dropout. As in the authors' code, layers 1..L are L2-normalised
    before the concatenation (layer 0, the raw embedding, is not).
    """

    uses_graph = True

    def __init__(self, num_users: int, num_items: int, embedding_dim: int = 64,
                 max_len: int = 50, num_layers: int = 2, message_dropout: float = 0.1,
                 seed: Optional[int] = None, **kwargs):
        super().__init__(num_users, num_items, embedding_dim, max_len, seed, **kwargs)
        if num_layers < 1:
            raise ValueError("num_layers must be >= 1")
        self.num_layers, self.message_dropout = int(num_layers), float(message_dropout)
        self.convolutions = [
            BiInteractionConvolution(self.embedding_dim, self.message_dropout,
                                     offset_seed(seed, 1000 + 10 * i), name=f"ngcf_{i + 1}")
            for i in range(self.num_layers)]
        self.build_variables()

    def node_representations(self, training: bool = False) -> tf.Tensor:
        adjacency = model_adjacency(self)
        values = tf.convert_to_tensor(self.embeddings)
        layers = [values]
        for convolution in self.convolutions:
            values = convolution(adjacency, values, training=training)
            layers.append(tf.math.l2_normalize(values, axis=-1))
        return tf.concat(layers, axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_layers": self.num_layers,
                "message_dropout": self.message_dropout}


class LightGCN(RankingModel):
    """LightGCN (He et al., SIGIR 2020): propagation without transforms, nonlinearity or
    self loops, and the mean of all layers,

        e^(l+1) = A_hat e^(l)   (A_hat = D^-1/2 A D^-1/2),   e* = mean(e^(0), ..., e^(L)),

    score(u, i) = e*_u . e*_i; num_layers L (default 3, as in the paper); no dropout.
    The only trainable variable is the embedding table.
    """

    uses_graph = True

    def __init__(self, num_users: int, num_items: int, embedding_dim: int = 64,
                 max_len: int = 50, num_layers: int = 3, seed: Optional[int] = None,
                 **kwargs):
        super().__init__(num_users, num_items, embedding_dim, max_len, seed, **kwargs)
        if num_layers < 0:
            raise ValueError("num_layers must be >= 0")
        self.num_layers = int(num_layers)

    def node_representations(self, training: bool = False) -> tf.Tensor:
        adjacency = model_adjacency(self)
        values = tf.convert_to_tensor(self.embeddings)
        total = values
        for _ in range(self.num_layers):
            values = propagate(adjacency, values)
            total += values
        return total / (self.num_layers + 1.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_layers": self.num_layers}


class SASRec(RankingModel):
    """Self-attentive sequential recommendation (Kang & McAuley, ICDM 2018):

        x_t   = sqrt(d) e_{item_t} + p_t          (t = 1..max_len, left-padded, so the
                                                   most recent item has p_max_len)
        x     = Dropout(x) * mask
        query = LN(Block_K(... Block_1(x)))[-1]
        score(u, i) = query . e_i

    Learned positional embeddings p [max_len, d] (`position_embeddings`); the sqrt(d)
    scaling, the input dropout and the final LayerNorm follow the authors' code; blocks
    as tfmeta.models.sequence.SelfAttentionBlock (causal, padding keys ignored). Defaults
    from the paper: num_blocks 2, num_heads 1, dropout 0.2. The users' own embeddings
    are unused (they get no gradient); an empty history gives the same query for every
    user (the final LayerNorm's offset).
    """

    uses_history = True

    def __init__(self, num_users: int, num_items: int, embedding_dim: int = 64,
                 max_len: int = 50, num_blocks: int = 2, num_heads: int = 1,
                 dropout: float = 0.2, seed: Optional[int] = None, **kwargs):
        super().__init__(num_users, num_items, embedding_dim, max_len, seed, **kwargs)
        self.num_blocks, self.num_heads, self.dropout = (
            int(num_blocks), int(num_heads), float(dropout))
        self.position_embeddings = self.add_weight(
            name="position_embeddings", shape=[self.max_len, self.embedding_dim],
            initializer=tf.keras.initializers.RandomNormal(stddev=0.1,
                                                           seed=offset_seed(seed, 1)),
            trainable=True)
        self.input_dropout = CheckpointedDropout(self.dropout, offset_seed(seed, 3))
        self.encoder = SelfAttentionEncoder(self.embedding_dim, self.num_blocks,
                                            self.num_heads, self.dropout,
                                            offset_seed(seed, 2000), name="self_attention")
        self.build_variables()

    def encode_users(self, users, history, nodes, training: bool = False) -> tf.Tensor:
        recent = most_recent(history, self.max_len)
        tokens = (tf.gather(nodes, self.item_nodes(recent)) * math.sqrt(self.embedding_dim)
                  + self.position_embeddings[None])
        tokens = self.input_dropout(tokens, training=training)
        return self.encoder(tokens, recent > 0, training=training, last_only=True)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_blocks": self.num_blocks,
                "num_heads": self.num_heads, "dropout": self.dropout}


class GRU4Rec(RankingModel):
    """GRU4Rec (Hidasi et al., ICLR 2016) on the BPR contract:

        query = P Dropout(GRU(e_{item_1}, ..., e_{item_max_len}))   (padding skipped)
        score(u, i) = query . e_i

    One GRU layer of hidden_units (default d); P is a linear projection to d, present
    only when hidden_units != d; dropout (default 0.2) on the final hidden state
    during training. The input and output item embeddings are the same table (the
    paper uses one-hot inputs and a separate output layer); instead of session-parallel
    mini-batches with sampled ranking losses, the driver's BPR on the user's history.
    The users' own embeddings are unused; an empty history gives a zero query.
    """

    uses_history = True

    def __init__(self, num_users: int, num_items: int, embedding_dim: int = 64,
                 max_len: int = 50, hidden_units: Optional[int] = None,
                 dropout: float = 0.2, seed: Optional[int] = None, **kwargs):
        super().__init__(num_users, num_items, embedding_dim, max_len, seed, **kwargs)
        self.hidden_units = self.embedding_dim if hidden_units is None else int(hidden_units)
        self.dropout = float(dropout)
        self.encoder = GRUEncoder(self.hidden_units, self.embedding_dim, self.dropout,
                                  offset_seed(seed, 1000), name="gru_encoder")
        self.build_variables()

    def encode_users(self, users, history, nodes, training: bool = False) -> tf.Tensor:
        recent = most_recent(history, self.max_len)
        tokens = tf.gather(nodes, self.item_nodes(recent))
        return self.encoder(tokens, recent > 0, training=training)

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden_units": self.hidden_units,
                "dropout": self.dropout}
