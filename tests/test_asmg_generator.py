"""Tests of ASMG's meta generators (tfmeta.meta.generators): weight and state shapes,
parameter sharing, state continuation over truncated sequences, the initial "serve the
latest" behaviour, gradients, training on a known dynamic, tf.function, and that the
work is vectorised over coordinates (the graph does not grow with the rows)."""
import numpy as np
import pytest
import tensorflow as tf

from tfmeta.meta.generators import CoordinateGRUGenerator, LinearGenerator, ParamSpec

H = 4
SPECS = [
    ParamSpec((50, 8), embedding=True),  # an embedding table
    ParamSpec((24, 20)),                 # a dense kernel
    ParamSpec((20,)),                    # its bias
    ParamSpec((1,)),                     # a one-unit bias
]


@pytest.fixture(autouse=True)
def _seed():
    tf.keras.utils.set_random_seed(0)


def snapshots(k, specs=SPECS, seed=0, scale=0.05):
    """k random snapshots (lists of tensors with the specs' shapes)."""
    rng = np.random.default_rng(seed)
    return [[tf.constant(rng.normal(0.0, scale, s.shape), tf.float32) for s in specs]
            for _ in range(k)]


def max_abs_diff(a, b):
    return max(float(tf.reduce_max(tf.abs(x - y))) for x, y in zip(a, b))


# ------------------------------------------------------------------ shapes


def test_weight_and_state_shapes():
    gen = CoordinateGRUGenerator(SPECS, hidden_size=H)
    gen.build()
    expected = {
        0: [(8, 3, H), (8, 3, H, H), (8, 3, H), (8, H), (8,)],          # per dimension
        1: [(24, 20, 3, H), (24, 20, 3, H, H), (24, 20, 3, H), (24, 20, H), (24, 20)],
        2: [(20, 3, H), (20, 3, H, H), (20, 3, H), (20, H), (20,)],
        3: [(1, 3, H), (1, 3, H, H), (1, 3, H), (1, H), (1,)],
    }
    weights = gen.trainable_weights
    assert len(weights) == 5 * len(SPECS)
    for i, shapes in expected.items():
        assert [tuple(w.shape) for w in weights[5 * i:5 * i + 5]] == shapes
    assert gen.num_generator_params() == sum(int(np.prod(w.shape)) for w in weights)

    state = gen.initial_state()
    assert [tuple(s.shape) for s in state] == [(50, 8, H), (24, 20, H), (20, H), (1, H)]
    assert all(float(tf.reduce_max(tf.abs(s))) == 0.0 for s in state)

    seq = snapshots(3)
    outputs, final = gen(seq, state)
    assert len(outputs) == 3
    for step in outputs:
        assert [tuple(o.shape) for o in step] == [s.shape for s in SPECS]
    assert [tuple(s.shape) for s in final] == [tuple(s.shape) for s in state]


def test_embedding_weights_do_not_depend_on_rows():
    small = CoordinateGRUGenerator([ParamSpec((10, 8), True)], hidden_size=H)
    large = CoordinateGRUGenerator([ParamSpec((1000, 8), True)], hidden_size=H)
    small.build()
    large.build()
    assert [w.shape for w in small.weights] == [w.shape for w in large.weights]
    assert small.num_generator_params() == large.num_generator_params()
    assert tuple(large.initial_state()[0].shape) == (1000, 8, H)


def test_get_config_round_trip():
    gen = CoordinateGRUGenerator(SPECS, hidden_size=3, name="g")
    clone = CoordinateGRUGenerator.from_config(gen.get_config())
    assert clone.specs == SPECS and clone.hidden_size == 3
    lin = LinearGenerator(SPECS, num_steps=4)
    clone = LinearGenerator.from_config(lin.get_config())
    assert clone.specs == SPECS and clone.num_steps == 4


def test_bad_inputs_are_rejected():
    gen = CoordinateGRUGenerator(SPECS)
    with pytest.raises(ValueError, match="does not match"):
        gen([[tf.zeros((50, 9))] + snapshots(1)[0][1:]], gen.initial_state())
    with pytest.raises(ValueError, match="expected 4"):
        gen([snapshots(1)[0][:3]], gen.initial_state())
    with pytest.raises(ValueError, match="rows, dim"):
        ParamSpec.of((5,), embedding=True)


# ------------------------------------------------------------------ parameter sharing


def test_embedding_ids_share_the_gru():
    gen = CoordinateGRUGenerator(SPECS, hidden_size=H)
    gen.build()
    for w in gen.trainable_weights:  # weights far from their init, so sharing is visible
        w.assign(tf.random.normal(w.shape, stddev=0.5))
    seq = snapshots(4)
    # ids 3 and 17 of the embedding table see the same sequence and start from the same state.
    seq = [[tf.tensor_scatter_nd_update(s[0], [[17]], s[0][3:4])] + s[1:] for s in seq]
    state = gen.initial_state()
    state[0] = tf.random.normal(state[0].shape)
    state[0] = tf.tensor_scatter_nd_update(state[0], [[17]], state[0][3:4])
    outputs, final = gen(seq, state)
    for step in outputs:
        np.testing.assert_array_equal(step[0][3].numpy(), step[0][17].numpy())
    np.testing.assert_array_equal(final[0][3].numpy(), final[0][17].numpy())
    # ...and another id with a different sequence gets a different output.
    assert float(tf.reduce_max(tf.abs(outputs[-1][0][3] - outputs[-1][0][4]))) > 1e-3


def test_dense_coordinates_have_their_own_gru():
    gen = CoordinateGRUGenerator(SPECS, hidden_size=H)
    gen.build()
    for w in gen.trainable_weights:
        w.assign(tf.random.normal(w.shape, stddev=0.5))
    # Every coordinate of the kernel sees the same sequence, from the same (zero) state.
    seq = [[s[0], tf.fill((24, 20), 0.1 * (t + 1)), s[2], s[3]]
           for t, s in enumerate(snapshots(3))]
    outputs, _ = gen(seq, gen.initial_state())
    kernel = outputs[-1][1].numpy()
    assert abs(kernel[0, 0] - kernel[0, 1]) > 1e-3
    assert len(np.unique(kernel.round(6))) > 0.9 * kernel.size  # all different weights


# ------------------------------------------------------------------ state continuation


def test_truncated_sequences_continue_from_the_state():
    gen = CoordinateGRUGenerator(SPECS, hidden_size=H)
    gen.build()
    for w in gen.trainable_weights:
        w.assign(tf.random.normal(w.shape, stddev=0.5))
    seq = snapshots(6, scale=0.5)
    full, full_state = gen(seq, gen.initial_state())
    first, state = gen(seq[:3], gen.initial_state())
    second, second_state = gen(seq[3:], state)
    for a, b in zip(full, first + second):
        assert max_abs_diff(a, b) <= 1e-6
    assert max_abs_diff(full_state, second_state) <= 1e-6
    # The state matters: restarting from zeros gives different outputs at 4..6.
    restarted, _ = gen(seq[3:], gen.initial_state())
    assert max_abs_diff(restarted[0], full[3]) > 1e-3


@pytest.mark.parametrize("make", [lambda: CoordinateGRUGenerator(SPECS, hidden_size=H),
                                  lambda: LinearGenerator(SPECS, num_steps=3)],
                         ids=["gru", "linear"])
def test_empty_leading_steps_change_nothing(make):
    """A sequence whose first p steps are padding gives exactly the outputs, final state
    and gradients of the sequence without them, for every p, in one traced graph."""
    gen = make()
    gen.build()
    for w in gen.trainable_weights:
        w.assign(w + tf.random.normal(w.shape, stddev=0.3))
    seq, junk = snapshots(3, scale=0.5), snapshots(3, seed=1, scale=9.0)
    start = gen.initial_state()

    def run(sequence, padding):
        with tf.GradientTape() as tape:
            outputs, state = gen(sequence, start, padding=padding)
            loss = tf.add_n([tf.reduce_sum(tf.square(y)) for y in outputs[-1]])
        return outputs, state, tape.gradient(loss, gen.trainable_weights)

    padded = tf.function(run)
    for p in (0, 1, 2):
        outputs, state, grads = run(seq[p:], 0)
        got, got_state, got_grads = padded(junk[:p] + seq[p:], tf.constant(p))
        for a, b in zip(outputs, got[p:]):
            assert max_abs_diff(a, b) == 0.0
        assert not state or max_abs_diff(state, got_state) == 0.0
        grads, got_grads = ([tf.convert_to_tensor(g) for g in gs] for gs in (grads, got_grads))
        # Graph and eager sum the gradients in different orders: a few float32 ulps of
        # the largest gradient (about 50 here, where one ulp is 3.8e-6), not 1e-6 absolute.
        scale = max(float(tf.reduce_max(tf.abs(g))) for g in grads)
        assert max_abs_diff(grads, got_grads) <= 1e-6 * scale
    assert padded.experimental_get_tracing_count() == 1


# ------------------------------------------------------------------ initialisation, gradients


def test_initial_output_is_close_to_the_latest_input():
    gen = CoordinateGRUGenerator(SPECS, hidden_size=H)
    seq = snapshots(5, scale=0.05)
    outputs, _ = gen(seq, gen.initial_state())
    for s, step in enumerate(outputs):
        assert max_abs_diff(step, seq[s]) < 5e-3  # |h . v| <= H * |v|, v ~ N(0, 1e-3)
    # With readout_stddev=0 the generator starts at exactly "serve the latest".
    exact = CoordinateGRUGenerator(SPECS, hidden_size=H, readout_stddev=0.0)
    outputs, _ = exact(seq, exact.initial_state())
    assert max_abs_diff(outputs[-1], seq[-1]) == 0.0


def test_gradients_reach_every_generator_weight():
    gen = CoordinateGRUGenerator(SPECS, hidden_size=H)
    seq = snapshots(3)
    target = snapshots(1, seed=1)[0]
    with tf.GradientTape() as tape:
        outputs, _ = gen(seq, gen.initial_state())
        loss = tf.add_n([tf.reduce_sum((o - t) ** 2) for o, t in zip(outputs[-1], target)])
    grads = tape.gradient(loss, gen.trainable_variables)
    assert len(grads) == 5 * len(SPECS)
    for w, g in zip(gen.trainable_variables, grads):
        assert g is not None, w.name
        assert bool(tf.reduce_all(tf.math.is_finite(g))), w.name
        assert float(tf.reduce_max(tf.abs(g))) > 0.0, w.name


# ------------------------------------------------------------------ training


def trend(rng, k, specs):
    """Each coordinate (and each id) follows its own linear trend x_s = x_0 + d s; the
    target is the next value x_0 + d k, which "serve the latest" misses by d."""
    x0 = [rng.normal(0.0, 0.05, s.shape) for s in specs]
    d = [rng.normal(0.0, 0.02, s.shape) for s in specs]
    seq = [[tf.constant(a + b * s, tf.float32) for a, b in zip(x0, d)] for s in range(k)]
    target = [tf.constant(a + b * k, tf.float32) for a, b in zip(x0, d)]
    return seq, target


def mse(a, b):
    return tf.add_n([tf.reduce_mean((x - y) ** 2) for x, y in zip(a, b)])


def adam_step(gen, learning_rate):
    """A tf.function Adam step fitting the generator's last output to a target."""
    opt = tf.keras.optimizers.Adam(learning_rate)

    @tf.function
    def train_step(seq, target):
        with tf.GradientTape() as tape:
            outputs, _ = gen(seq, gen.initial_state())
            loss = mse(outputs[-1], target)
        grads = tape.gradient(loss, gen.trainable_variables)
        opt.apply_gradients(zip(grads, gen.trainable_variables))
        return loss

    return train_step


def test_training_learns_to_extrapolate_a_trend():
    gen = CoordinateGRUGenerator(SPECS, hidden_size=H)
    gen.build()
    train_step = adam_step(gen, 1e-2)

    rng = np.random.default_rng(0)
    for _ in range(400):  # fresh trends every step: it must infer d from the sequence
        train_step(*trend(rng, 4, SPECS))
    seq, target = trend(np.random.default_rng(12345), 4, SPECS)  # unseen trends
    outputs, _ = gen(seq, gen.initial_state())
    latest = float(mse(seq[-1], target))
    learned = float(mse(outputs[-1], target))
    assert learned / latest < 0.3, (learned, latest)


# ------------------------------------------------------------------ graph mode, vectorisation


def test_works_inside_tf_function():
    gen = CoordinateGRUGenerator(SPECS, hidden_size=H)
    seq = snapshots(3)
    eager, eager_state = gen(seq, gen.initial_state())
    graph, graph_state = tf.function(lambda s, h: gen(s, h))(seq, gen.initial_state())
    for a, b in zip(eager, graph):
        assert max_abs_diff(a, b) <= 1e-6
    assert max_abs_diff(eager_state, graph_state) <= 1e-6


def graph_op_count(rows):
    specs = [ParamSpec((rows, 8), True), ParamSpec((rows, 3)), ParamSpec((rows,))]
    gen = CoordinateGRUGenerator(specs, hidden_size=H)
    gen.build()
    signature = ([[tf.TensorSpec(s.shape, tf.float32) for s in specs]] * 3,
                 [tf.TensorSpec(s.shape + (H,), tf.float32) for s in specs])
    fn = tf.function(lambda seq, state: gen(seq, state))
    return len(fn.get_concrete_function(*signature).graph.get_operations())


def test_graph_does_not_grow_with_the_number_of_coordinates():
    # No Python loop over ids or coordinates: 10 rows and 1000 rows (of an embedding
    # table and of dense variables) trace to the same number of ops.
    small, large = graph_op_count(10), graph_op_count(1000)
    assert small == large
    assert small < 1000  # fewer ops than there are rows: none is per id


# ------------------------------------------------------------------ ASMG-Linear


def test_linear_generator_is_a_convex_combination():
    gen = LinearGenerator(SPECS, num_steps=3)
    gen.build()
    assert gen.initial_state() == []
    alpha = gen.weights_for(0).numpy()
    assert alpha[0] == pytest.approx(0.9) and alpha.sum() == pytest.approx(1.0)
    for w in gen.trainable_weights:
        w.assign(tf.random.normal(w.shape))
    seq = snapshots(5)
    outputs, state = gen(seq, [])
    assert state == [] and len(outputs) == 5
    for i in range(len(SPECS)):
        a = gen.weights_for(i).numpy()
        assert np.all(a >= 0) and a.sum() == pytest.approx(1.0, abs=1e-6)
        expected = sum(a[l] * seq[4 - l][i].numpy() for l in range(3))
        np.testing.assert_allclose(outputs[-1][i].numpy(), expected, atol=1e-6)
        stacked = np.stack([s[i].numpy() for s in seq[2:]])
        out = outputs[-1][i].numpy()
        assert np.all(out >= stacked.min(0) - 1e-6) and np.all(out <= stacked.max(0) + 1e-6)
    # The first step has one snapshot only: the weights renormalise onto it.
    assert max_abs_diff(outputs[0], seq[0]) <= 1e-6


def test_linear_generator_trains():
    gen = LinearGenerator(SPECS, num_steps=3)
    gen.build()
    train_step = adam_step(gen, 5e-2)

    def batch(seed):  # the target is the mean of the last three snapshots
        seq = snapshots(3, seed=seed)
        return seq, [sum(s[i] for s in seq) / 3.0 for i in range(len(SPECS))]

    seq, target = batch(10_000)
    before = float(mse(gen(seq, [])[0][-1], target))
    for step in range(200):
        train_step(*batch(step))
    after = float(mse(gen(seq, [])[0][-1], target))
    assert after / before < 0.05, (after, before)
    for i in range(len(SPECS)):
        np.testing.assert_allclose(gen.weights_for(i).numpy(), [1 / 3] * 3, atol=0.05)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
