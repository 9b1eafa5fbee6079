"""Graph layers of the protocol A graph recommenders (GCN, GnnSa, NGCF, LightGCN), on TF-GNN.

    graph = interaction_graph(model.edge_sources, model.edge_targets, model.num_nodes)
    smoothed = propagate(graph, embeddings)        # [N, d]: sum_n norm(m, n) e_n
    gcn = GraphConvolutionNetwork(units=64, num_layers=2)
    nodes = gcn(graph, embeddings, training=True)
    adjacency = model_adjacency(model)             # A_hat prepared once for every layer
    nodes = gcn(adjacency, embeddings, training=True)

The graph is one `tfgnn.GraphTensor` with a node set "nodes" (every node of the
model's table, padding included) and an edge set "interactions" from `edge_sources`
to `edge_targets`. It is rebuilt from the edge variables on every call, so a graph of
another size needs no retracing. Propagation multiplies the node states by the
normalised adjacency, built from the GraphTensor's adjacency and WEIGHT
(`normalized_adjacency`) and handed to TF's CSR sparse matrix ops: O(E d) time and
O(E + N d) memory, never a dense [N, N] matrix. Preparing A_hat (degrees, row order,
CSR conversion) is `prepare`; a model does it once per forward pass
(`model_adjacency`) and hands the prepared `Adjacency` to every layer, which also
accept a GraphTensor and then prepare it themselves. A model's graph is symmetric
(`set_graph` stores both directions) and stored in A_hat's row order, so its A_hat
is its own transpose and needs no sort: on Amazon Beauty this made a GNN+SA training
step on a small batch about 1.4x cheaper (benchmarks/results/adjacency_speed.md).
(Why not TF-GNN's
`broadcast_node_to_edges` + `pool_edges_to_node`: they materialise an [E, d] message
tensor, and autodiff keeps several; at a million interactions those were most of a
LeapRec step's memory, and a sparse-dense matmul, whose gradient is another one with
the transpose, needs none. benchmarks/scaling.py measures the memory,
benchmarks/propagation_speed.py CSR against COO `tf.sparse.sparse_dense_matmul`.)

Normalisation (GCN, Kipf & Welling 2017, as used by NGCF and LightGCN): the message
along edge n -> m is weighted by norm(m, n) = 1 / sqrt(|N(m)| |N(n)|), where |N(v)| is
v's degree, counted as the number of edges arriving at v (`set_graph` stores both
directions, so this is v's number of neighbours). A degree of 0 is taken as 1 (such a
node receives no message anyway). A pair given twice to `set_graph` is a double edge
(weight 2 in the adjacency matrix), its degree counted twice: the matrix is
D^-1/2 A D^-1/2 of the interaction counts. No self loops are added: the layers that
want the node's own state (GCN, NGCF) have a separate self term.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import tensorflow as tf
import tensorflow_gnn as tfgnn

from tfmeta.models.dropout import CheckpointedDropout
from tfmeta.models.ranking import glorot, offset_seed

NODES = "nodes"
EDGES = "interactions"
WEIGHT = "weight"  # the edge feature holding norm(target, source)


def interaction_graph(sources, targets, num_nodes: int) -> tfgnn.GraphTensor:
    """The GraphTensor of edges sources[e] -> targets[e] (node ids in 0..num_nodes-1),
    with the symmetric normalisation of each edge as the edge feature WEIGHT."""
    sources = tf.cast(tf.reshape(sources, [-1]), tf.int64)
    targets = tf.cast(tf.reshape(targets, [-1]), tf.int64)
    graph = tfgnn.GraphTensor.from_pieces(
        node_sets={NODES: tfgnn.NodeSet.from_fields(
            sizes=tf.constant([num_nodes], tf.int64), features={})},
        edge_sets={EDGES: tfgnn.EdgeSet.from_fields(
            sizes=tf.reshape(tf.size(sources, out_type=tf.int64), [1]),
            adjacency=tfgnn.Adjacency.from_indices((NODES, sources), (NODES, targets)),
            features={})})
    degree = tf.cast(tfgnn.node_degree(graph, EDGES, tfgnn.TARGET), tf.float32)
    inverse_root = tf.math.rsqrt(tf.maximum(degree, 1.0))
    weight = (tfgnn.broadcast_node_to_edges(graph, EDGES, tfgnn.SOURCE,
                                            feature_value=inverse_root)
              * tfgnn.broadcast_node_to_edges(graph, EDGES, tfgnn.TARGET,
                                              feature_value=inverse_root))
    return graph.replace_features(edge_sets={EDGES: {WEIGHT: weight}})


def normalized_adjacency(graph: tfgnn.GraphTensor) -> tf.SparseTensor:
    """A_hat = D^-1/2 A D^-1/2 as an [N, N] SparseTensor: entry (m, n) = norm(m, n) for
    every edge n -> m (a pair given twice is two entries, which the matmul sums)."""
    edges = graph.edge_sets[EDGES]
    num_nodes = tf.cast(graph.node_sets[NODES].total_size, tf.int64)
    indices = tf.stack([edges.adjacency.target, edges.adjacency.source], axis=1)
    return tf.SparseTensor(indices, edges[WEIGHT], tf.stack([num_nodes, num_nodes]))


class Adjacency(NamedTuple):
    """A_hat ready for `propagate`: TF CSR sparse matrices (variant tensors) of A_hat
    for the product and of its transpose for the gradient (the same tensor when the
    graph is symmetric), and the GraphTensor they come from. Built inside the function
    that uses it, by `prepare`."""
    graph: tfgnn.GraphTensor
    matrix: tf.Tensor
    transposed: tf.Tensor


def prepare(graph: tfgnn.GraphTensor, symmetric: bool = False) -> Adjacency:
    """A_hat of `graph` as an Adjacency. symmetric=True promises that every edge
    n -> m has its m -> n (as `RankingModel.set_graph` stores them): A_hat is then its
    own transpose (norm(m, n) = norm(n, m)) and one CSR matrix serves both."""
    adjacency = _row_ordered(normalized_adjacency(graph))
    matrix = _csr(adjacency)
    if symmetric:
        return Adjacency(graph, matrix, matrix)
    # tf.sparse.transpose returns its result in row order already.
    return Adjacency(graph, matrix, _csr(tf.sparse.transpose(adjacency)))


def model_adjacency(model) -> Adjacency:
    """The prepared A_hat of a RankingModel's graph (its `edge_sources` /
    `edge_targets`, both directions of every pair: symmetric)."""
    return prepare(interaction_graph(model.edge_sources, model.edge_targets,
                                     model.num_nodes), symmetric=True)


def propagate(graph, values: tf.Tensor) -> tf.Tensor:
    """[N, d] -> [N, d]: row m is sum over edges n -> m of norm(m, n) * values[n]
    (A_hat @ values with A_hat = D^-1/2 A D^-1/2); 0 for a node without edges.
    `graph`: an Adjacency, or a GraphTensor (prepared here, as a possibly asymmetric
    graph: prepare it once with `prepare` when several products use it).

    A_hat goes to TF's CSR sparse matrix ops (kernels on CPU and GPU): 2.14x faster per
    LightGCN step on yelp-a than tf.sparse.sparse_dense_matmul (whose gradient scatters
    through the adjoint). Their own gradient is not deterministic, so the gradient is
    the product with A_hat's transpose, and deterministic. The edge weights get no
    gradient: they are the fixed normalisation."""
    adjacency = graph if isinstance(graph, Adjacency) else prepare(graph)
    return _csr_matmul(adjacency.matrix, adjacency.transposed, values)


def _row_ordered(sparse: tf.SparseTensor) -> tf.SparseTensor:
    """`sparse` in row-major order, sorted only if it is not in that order already
    (a check in O(E) instead of a sort: `set_graph` stores a model's edges in order;
    graphs from elsewhere, or checkpoints from before it did, are sorted here)."""
    keys = sparse.indices[:, 0] * sparse.dense_shape[1] + sparse.indices[:, 1]
    ordered = tf.reduce_all(keys[1:] >= keys[:-1])
    return tf.cond(ordered, lambda: sparse, lambda: tf.sparse.reorder(sparse))


def _csr(sparse: tf.SparseTensor) -> tf.Tensor:
    """A row-ordered SparseTensor as a CSR sparse matrix (a variant tensor)."""
    return tf.raw_ops.SparseTensorToCSRSparseMatrix(
        indices=sparse.indices, values=sparse.values, dense_shape=sparse.dense_shape)


@tf.custom_gradient
def _csr_matmul(matrix: tf.Tensor, transposed: tf.Tensor, values: tf.Tensor):
    def gradient(upstream):
        return None, None, tf.raw_ops.SparseMatrixMatMul(a=transposed, b=upstream)
    return tf.raw_ops.SparseMatrixMatMul(a=matrix, b=values), gradient


class GraphConvolution(tf.keras.layers.Layer):
    """One GCN layer with a separate self transform (shared by GCN and GnnSa):

        h'_m = act(W_self h_m + b + sum_{n in N(m)} norm(m, n) W_nbr h_n),

    then dropout on h' during training. W_self has the bias, W_nbr none (one bias is
    enough). A node without edges gets act(W_self h_m + b).
    """

    def __init__(self, units: int, activation: str = "tanh", dropout: float = 0.0,
                 seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.activation_name, self.rate, self.seed = (
            int(units), activation, float(dropout), seed)
        self.self_transform = tf.keras.layers.Dense(
            self.units, kernel_initializer=glorot(seed, 0), name="self_transform")
        self.neighbor_transform = tf.keras.layers.Dense(
            self.units, use_bias=False, kernel_initializer=glorot(seed, 1),
            name="neighbor_transform")
        self.activation = tf.keras.activations.get(activation)
        self.dropout = CheckpointedDropout(self.rate, offset_seed(seed, 2))

    def call(self, graph, values: tf.Tensor, training: bool = False):
        """graph: a GraphTensor or a prepared Adjacency (`propagate`)."""
        # Transform first, then propagate: the same sum, and W_nbr runs once per node.
        neighbors = propagate(graph, self.neighbor_transform(values))
        out = self.activation(self.self_transform(values) + neighbors)
        return self.dropout(out, training=training)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units,
                "activation": self.activation_name, "dropout": self.rate, "seed": self.seed}


class GraphConvolutionNetwork(tf.keras.layers.Layer):
    """num_layers GraphConvolution layers of `units` each; returns the last one's output."""

    def __init__(self, units: int, num_layers: int = 2, activation: str = "tanh",
                 dropout: float = 0.0, seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        if num_layers < 1:
            raise ValueError("num_layers must be >= 1")
        self.units, self.num_layers = int(units), int(num_layers)
        self.activation_name, self.rate, self.seed = activation, float(dropout), seed
        self.convolutions = [
            GraphConvolution(self.units, activation, self.rate,
                             None if seed is None else seed + 10 * i, name=f"gcn_{i + 1}")
            for i in range(self.num_layers)]

    def call(self, graph, values: tf.Tensor, training: bool = False):
        if not isinstance(graph, Adjacency):
            graph = prepare(graph)  # once for every layer
        for convolution in self.convolutions:
            values = convolution(graph, values, training=training)
        return values

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "num_layers": self.num_layers,
                "activation": self.activation_name, "dropout": self.rate, "seed": self.seed}


class BiInteractionConvolution(tf.keras.layers.Layer):
    """One NGCF embedding-propagation layer (Wang et al., SIGIR 2019, eq. 7):

        s_m  = sum_{n in N(m)} norm(m, n) e_n
        e'_m = LeakyReLU(W1 (e_m + s_m) + b1 + W2 (s_m * e_m) + b2),

    LeakyReLU slope 0.2 (the authors' code, tf.nn.leaky_relu), then message dropout
    on e' during training (the authors' code drops the layer output).
    """

    def __init__(self, units: int, message_dropout: float = 0.0,
                 seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.rate, self.seed = int(units), float(message_dropout), seed
        self.sum_transform = tf.keras.layers.Dense(
            self.units, kernel_initializer=glorot(seed, 0), name="sum_transform")
        self.product_transform = tf.keras.layers.Dense(
            self.units, kernel_initializer=glorot(seed, 1), name="product_transform")
        self.dropout = CheckpointedDropout(self.rate, offset_seed(seed, 2))

    def call(self, graph, values: tf.Tensor, training: bool = False):
        """graph: a GraphTensor or a prepared Adjacency (`propagate`)."""
        smoothed = propagate(graph, values)
        out = tf.nn.leaky_relu(self.sum_transform(values + smoothed)
                               + self.product_transform(smoothed * values), alpha=0.2)
        return self.dropout(out, training=training)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "message_dropout": self.rate,
                "seed": self.seed}
