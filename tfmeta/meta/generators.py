"""The meta model-generators of ASMG (Peng, Pan, Zhang, Zeng, RecSys 2021).

ASMG ("Learning an Adaptive Meta Model-Generator for Incrementally Updating
Recommender Systems") keeps the snapshots theta_1, ..., theta_t of a base model's
parameters, one per period, and learns a *generator* that reads that sequence and
produces the parameters to serve in period t + 1. A generator here knows nothing
about the base model beyond a list of `ParamSpec` (the shape of each variable, in the
order of ``model.trainable_variables``, and whether it is an embedding table); a
snapshot is a list of tensors with those shapes.

`CoordinateGRUGenerator` (ASMG's GRU generator)
    Every scalar coordinate of the parameters is a time series x_1, ..., x_t, and a
    small GRU (hidden size H) reads it one period at a time::

        z  = sigmoid(W_z x + U_z h + b_z)            update gate
        r  = sigmoid(W_r x + U_r h + b_r)            reset gate
        n  = tanh(W_n x + r * (U_n h) + b_n)         candidate
        h' = (1 - z) * n + z * h
        y  = x + h' . v + c                          generated coordinate

    Parameter sharing. A coordinate of an ordinary (non-embedding) variable of shape S
    has its *own* GRU: W is S + [3, H], U is S + [3, H, H], b is S + [3, H], v is
    S + [H] and c is S (gate order z, r, n along the axis of size 3). Embedding
    tables [rows, dim] would make that proportional to the number of ids, so their GRU
    parameters are per embedding *dimension* and shared by all ids: W [dim, 3, H],
    U [dim, 3, H, H], b [dim, 3, H], v [dim, H], c [dim]; the generator's size does
    not depend on the number of rows, while the hidden state is still per id and
    dimension, [rows, dim, H] (S + [H] for the other variables). Rows are therefore
    independent: a step may hold any subset of a table's rows (with the same rows of
    the state), which is how ASMG trains on only the rows a batch reads.

    Read-out and initialisation (a tfmeta choice). The paper's read-out is linear on
    the hidden state, y = h . v + c. tfmeta adds a skip connection from the current
    input, y = x + h . v + c, which is still linear on h (plus the input), so that the
    generator can start at "serve the latest parameters": c starts at 0 and v at small
    random values (normal, stddev ``readout_stddev``, 1e-3 by default), so the initial
    output is within about H * 1e-3 of x_t, and gradients reach W, U and b from the
    first step (with v exactly 0 they would not). W is uniform in
    +-sqrt(6 / (1 + H)) (Glorot for a 1 -> H map), U normal with stddev 1/sqrt(H)
    (the scale of an orthogonal matrix), b zeros.

    Everything is vectorised over coordinates: a step is a handful of broadcasting
    ops and one einsum per variable, whatever its size (the Python loops run over the
    variables and over the k time steps only).

`LinearGenerator` (ASMG-Linear)
    A learned convex combination of the last k snapshots, one set of weights per
    variable: output = sum_l alpha_l theta_{s - l}, alpha = softmax(logits) over the
    lags l = 0 (most recent), ..., k - 1, initialised to put ``recent_weight`` (0.9)
    on the most recent snapshot. It has no state.

Call convention (both generators)
    ``outputs, final_state = generator(sequence, state)``, where ``sequence`` is a
    list over k >= 1 steps of snapshots (lists of tensors, one per variable) and
    ``state`` comes from ``initial_state()`` or a previous call. ``outputs[s]`` is
    what the generator produces after reading steps 1..s + 1 of the sequence;
    ``outputs[-1]`` is what a model would serve next.

    ``generator(sequence, state, padding=p)`` treats the first p steps (a Python int or
    a scalar int tensor) as empty: the GRU carries its state through them unchanged and
    the linear combination gives them weight 0, so the real steps' outputs are exactly
    those of the sequence without them. That lets one traced graph serve every window
    length up to the sequence's (ASMG's window before it holds k models).

State continuation over truncated sequences
    ``final_state`` is the GRU's hidden state after the last step. Training on a long
    history uses truncated sequences: run steps 1..3, keep the returned state (stop
    gradients through it if wanted), then run steps 4..6 from it. With unchanged
    weights this gives exactly the outputs of running 1..6 at once, and at serving
    time only the latest snapshot and the state need to be kept. `LinearGenerator`
    returns its (empty) state unchanged; over a truncated sequence its first outputs
    only combine the snapshots of that sequence (softmax renormalised over the lags
    available).

Both work inside ``tf.function``, on any device, and never leave the graph.
"""
from __future__ import annotations

import math
from typing import List, NamedTuple, Optional, Sequence

import tensorflow as tf

__all__ = ["ParamSpec", "CoordinateGRUGenerator", "LinearGenerator"]

NUM_GATES = 3  # z (update), r (reset), n (candidate), in this order.


class ParamSpec(NamedTuple):
    """One variable of the base model: its shape and whether it is an embedding table
    ([rows, dim], GRU parameters shared across rows)."""

    shape: tuple
    embedding: bool = False

    @classmethod
    def of(cls, shape, embedding: bool = False) -> "ParamSpec":
        shape = tuple(int(d) for d in shape)
        if embedding and len(shape) != 2:
            raise ValueError(f"an embedding table has shape [rows, dim], got {list(shape)}")
        return cls(shape, bool(embedding))


def _normalise_specs(specs) -> List[ParamSpec]:
    """ParamSpecs from ParamSpecs, (shape, embedding) pairs or get_config() dicts."""
    out = []
    for s in specs:
        if isinstance(s, dict):
            out.append(ParamSpec.of(s["shape"], s.get("embedding", False)))
        else:
            shape, embedding = s
            out.append(ParamSpec.of(shape, embedding))
    if not out:
        raise ValueError("a generator needs at least one ParamSpec")
    return out


def _specs_config(specs: Sequence[ParamSpec]) -> list:
    return [{"shape": list(s.shape), "embedding": s.embedding} for s in specs]


def _input_shape(spec: ParamSpec) -> tuple:
    """What a step may hold for a variable: any subset of an embedding table's rows (the
    GRU parameters do not depend on the row), exactly the shape otherwise."""
    return (None,) + spec.shape[1:] if spec.embedding else spec.shape


def _check_sequence(sequence, specs: Sequence[ParamSpec], dtype) -> List[List[tf.Tensor]]:
    if not isinstance(sequence, (list, tuple)) or len(sequence) < 1:
        raise ValueError("sequence must be a non-empty list over steps of lists of tensors")
    steps = []
    for step, snapshot in enumerate(sequence):
        if len(snapshot) != len(specs):
            raise ValueError(f"step {step} has {len(snapshot)} tensors, expected {len(specs)} "
                             "(one per ParamSpec)")
        tensors = []
        for i, (x, spec) in enumerate(zip(snapshot, specs)):
            x = tf.cast(tf.convert_to_tensor(x), dtype)
            shape = _input_shape(spec)
            if not x.shape.is_compatible_with(shape):
                raise ValueError(f"step {step}, variable {i}: shape {x.shape} does not match "
                                 f"its ParamSpec {list(spec.shape)}")
            tensors.append(tf.ensure_shape(x, shape))
        steps.append(tensors)
    return steps


def _no_padding(padding) -> bool:
    """True when `padding` is known to be 0 without running a graph."""
    return isinstance(padding, int) and padding <= 0


class CoordinateGRUGenerator(tf.keras.layers.Layer):
    """ASMG's GRU meta generator: a GRU per coordinate (per dimension for embedding
    tables) over the sequence of parameter snapshots; see the module docstring.

    Args:
        specs: one `ParamSpec` per base-model variable, in the order of
            ``model.trainable_variables``.
        hidden_size: H, the GRU's hidden size.
        readout_stddev: stddev of the initial read-out weights v (0 gives an initial
            output of exactly x_t, but then no gradient reaches W, U, b at first).
    """

    def __init__(self, specs, hidden_size: int = 4, readout_stddev: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.specs = _normalise_specs(specs)
        if int(hidden_size) < 1:
            raise ValueError(f"hidden_size must be >= 1, got {hidden_size}")
        self.hidden_size = int(hidden_size)
        self.readout_stddev = float(readout_stddev)

    # ------------------------------------------------------------------ shapes

    def _param_shape(self, spec: ParamSpec) -> tuple:
        """The per-coordinate prefix of the GRU parameters' shapes."""
        return (spec.shape[1],) if spec.embedding else spec.shape

    def _state_shape(self, spec: ParamSpec) -> tuple:
        return spec.shape + (self.hidden_size,)

    def num_generator_params(self) -> int:
        """Number of trainable scalars of the generator (known before build)."""
        h = self.hidden_size
        per_coordinate = NUM_GATES * h + NUM_GATES * h * h + NUM_GATES * h + h + 1
        return sum(math.prod(self._param_shape(s)) * per_coordinate for s in self.specs)

    # ------------------------------------------------------------------ weights

    def build(self, input_shape=None):
        if self.built:
            return
        h, g = self.hidden_size, NUM_GATES
        w_limit = math.sqrt(6.0 / (1 + h))
        self.kernels, self.recurrent_kernels, self.biases = [], [], []
        self.readout_kernels, self.readout_biases = [], []
        for i, spec in enumerate(self.specs):
            p = self._param_shape(spec)
            self.kernels.append(self.add_weight(
                name=f"var{i}_kernel", shape=p + (g, h),
                initializer=tf.keras.initializers.RandomUniform(-w_limit, w_limit)))
            self.recurrent_kernels.append(self.add_weight(
                name=f"var{i}_recurrent_kernel", shape=p + (g, h, h),
                initializer=tf.keras.initializers.RandomNormal(stddev=1.0 / math.sqrt(h))))
            self.biases.append(self.add_weight(
                name=f"var{i}_bias", shape=p + (g, h), initializer="zeros"))
            self.readout_kernels.append(self.add_weight(
                name=f"var{i}_readout_kernel", shape=p + (h,),
                initializer=(tf.keras.initializers.RandomNormal(stddev=self.readout_stddev)
                             if self.readout_stddev > 0 else "zeros")))
            self.readout_biases.append(self.add_weight(
                name=f"var{i}_readout_bias", shape=p, initializer="zeros"))
        super().build(input_shape)

    def initial_state(self) -> List[tf.Tensor]:
        """Zero hidden states: [rows, dim, H] for embedding tables, S + [H] otherwise."""
        return [tf.zeros(self._state_shape(s), self.dtype) for s in self.specs]

    # ------------------------------------------------------------------ the GRU

    def _views(self, i: int):
        """Variable i's weights in the [rows, coords] view (see `_step`)."""
        spec, h, g = self.specs[i], self.hidden_size, NUM_GATES
        W, U, b = self.kernels[i], self.recurrent_kernels[i], self.biases[i]
        v, c = self.readout_kernels[i], self.readout_biases[i]
        if spec.embedding:
            return W, U, b, v, c
        n = math.prod(spec.shape)
        return (tf.reshape(W, (n, g, h)), tf.reshape(U, (n, g, h, h)), tf.reshape(b, (n, g, h)),
                tf.reshape(v, (n, h)), tf.reshape(c, (n,)))

    def _step(self, x, h_prev, weights):
        """One GRU step on a [rows, coords] view: x [R, D], h_prev [R, D, H]; the weights
        are per coordinate, [D, ...], and broadcast over the R rows (R = 1 for ordinary
        variables, whose coordinates are all in D)."""
        W, U, b, v, c = weights
        gx = x[:, :, None, None] * W + b                       # [R, D, 3, H]
        gh = tf.einsum("dgij,rdj->rdgi", U, h_prev)            # [R, D, 3, H]
        gx_z, gx_r, gx_n = tf.unstack(gx, num=NUM_GATES, axis=2)
        gh_z, gh_r, gh_n = tf.unstack(gh, num=NUM_GATES, axis=2)
        z = tf.sigmoid(gx_z + gh_z)
        r = tf.sigmoid(gx_r + gh_r)
        n = tf.tanh(gx_n + r * gh_n)
        h_new = (1.0 - z) * n + z * h_prev                     # [R, D, H]
        y = x + tf.reduce_sum(h_new * v, axis=-1) + c          # skip + linear read-out
        return y, h_new

    def call(self, sequence, state=None, padding=0):
        steps = _check_sequence(sequence, self.specs, self.dtype)
        if state is None:
            state = self.initial_state()
        if len(state) != len(self.specs):
            raise ValueError(f"state has {len(state)} tensors, expected {len(self.specs)}")
        h = self.hidden_size
        views, hidden = [], []
        for i, spec in enumerate(self.specs):
            views.append(self._views(i))
            s = tf.ensure_shape(tf.cast(state[i], self.dtype),
                                _input_shape(spec) + (self.hidden_size,))
            hidden.append(s if spec.embedding else tf.reshape(s, (1, -1, h)))
        outputs = []
        for s, snapshot in enumerate(steps):  # k is small: one Python iteration per period
            generated = []
            for i, (x, spec) in enumerate(zip(snapshot, self.specs)):
                x2 = x if spec.embedding else tf.reshape(x, (1, -1))
                y, h_new = self._step(x2, hidden[i], views[i])
                # an empty step keeps the state
                hidden[i] = h_new if _no_padding(padding) else tf.where(s >= padding, h_new,
                                                                        hidden[i])
                generated.append(y if spec.embedding else tf.reshape(y, spec.shape))
            outputs.append(generated)
        final_state = [hd if spec.embedding else tf.reshape(hd, self._state_shape(spec))
                       for hd, spec in zip(hidden, self.specs)]
        return outputs, final_state

    # ------------------------------------------------------------------ config

    def get_config(self):
        config = super().get_config()
        config.update(specs=_specs_config(self.specs), hidden_size=self.hidden_size,
                      readout_stddev=self.readout_stddev)
        return config


class LinearGenerator(tf.keras.layers.Layer):
    """ASMG-Linear: per variable, a softmax-weighted (convex) combination of the last
    ``num_steps`` snapshots; see the module docstring.

    Args:
        specs: one `ParamSpec` per base-model variable.
        num_steps: k, how many of the most recent snapshots are combined.
        recent_weight: the initial weight of the most recent snapshot (the other
            k - 1 share the rest equally).
    """

    def __init__(self, specs, num_steps: int = 3, recent_weight: float = 0.9, **kwargs):
        super().__init__(**kwargs)
        self.specs = _normalise_specs(specs)
        if int(num_steps) < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if not 0.0 < recent_weight <= 1.0 or (num_steps > 1 and recent_weight >= 1.0):
            raise ValueError(f"recent_weight must be in (0, 1) (or 1 when num_steps == 1), "
                             f"got {recent_weight}")
        self.num_steps = int(num_steps)
        self.recent_weight = float(recent_weight)

    def num_generator_params(self) -> int:
        return len(self.specs) * self.num_steps

    def _initial_logits(self) -> List[float]:
        k = self.num_steps
        if k == 1:
            return [0.0]
        rest = (1.0 - self.recent_weight) / (k - 1)
        return [math.log(self.recent_weight)] + [math.log(rest)] * (k - 1)

    def build(self, input_shape=None):
        if self.built:
            return
        init = tf.keras.initializers.Constant(self._initial_logits())
        # logits[l] weighs the snapshot l periods before the current one (l = 0: latest).
        self.logits = [self.add_weight(name=f"var{i}_logits", shape=(self.num_steps,),
                                       initializer=init) for i in range(len(self.specs))]
        super().build(input_shape)

    def initial_state(self) -> list:
        return []

    def weights_for(self, i: int, available: Optional[int] = None,
                    real: Optional[tf.Tensor] = None) -> tf.Tensor:
        """alpha of variable i over lags 0..m-1, m = min(k, available); lags where the
        bool [m] tensor `real` is False get weight 0 (the others share the softmax)."""
        m = self.num_steps if available is None else min(self.num_steps, available)
        logits = self.logits[i][:m]
        if real is not None:
            logits = tf.where(real, logits, float("-inf"))
        return tf.nn.softmax(logits)

    def call(self, sequence, state=None, padding=0):
        steps = _check_sequence(sequence, self.specs, self.dtype)
        state = [] if state is None else state
        outputs = []
        for s in range(len(steps)):
            m = min(self.num_steps, s + 1)
            real = None
            if not _no_padding(padding):
                # Lags that reach an empty step get no weight (lag 0 always counts, so an
                # empty step's own output stays finite).
                lags = tf.range(m)
                real = (lags == 0) | (s - lags >= padding)
            generated = []
            for i in range(len(self.specs)):
                alpha = self.weights_for(i, m, real)
                # lag l -> snapshot s - l; stacked [m, *shape], contracted over the lags.
                window = tf.stack([steps[s - l][i] for l in range(m)])
                generated.append(tf.tensordot(alpha, window, axes=1))
            outputs.append(generated)
        return outputs, state

    def get_config(self):
        config = super().get_config()
        config.update(specs=_specs_config(self.specs), num_steps=self.num_steps,
                      recent_weight=self.recent_weight)
        return config
