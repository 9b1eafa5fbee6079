"""Leap and FOMAML trajectory meta-gradients (tfmeta.meta.leap)."""
from tfmeta.meta import leap  # first: tfmeta selects Keras 2 before TensorFlow loads

import numpy as np
import pytest
import tensorflow as tf

METHODS = ["leap", "fomaml"]


def _variables(arrays) -> list:
    return [tf.Variable(np.asarray(a, np.float32)) for a in arrays]


def _sgd(learning_rate, variables):
    optimizer = tf.keras.optimizers.SGD(learning_rate)
    optimizer.build(variables)
    return optimizer


def _values(variables) -> list:
    return [tf.convert_to_tensor(v).numpy() for v in variables]


def _loss_and_grads(loss_fn, theta, densify=False):
    with tf.GradientTape() as tape:
        loss = loss_fn()
    grads = tape.gradient(loss, theta)
    return loss, [tf.convert_to_tensor(g) for g in grads] if densify else grads


def _run_steps(meta, theta, loss_fn, optimizer, steps, densify=False):
    """The module's documented inner loop, from theta's current value."""
    loss, grads = _loss_and_grads(loss_fn, theta, densify)
    for _ in range(steps):
        before = [tf.identity(v) for v in theta]
        optimizer.apply_gradients(zip(grads, theta))
        loss_next, grads_next = _loss_and_grads(loss_fn, theta, densify)
        meta.observe_step(before, theta, loss, loss_next, grads, grads_next)
        loss, grads = loss_next, grads_next


def _run_task(meta, theta, loss_fn, optimizer, steps, densify=False):
    meta.begin_task(theta)
    _run_steps(meta, theta, loss_fn, optimizer, steps, densify)


def _quadratic(theta, curvatures, centres):
    """L = sum 0.5 * h * (theta - c)^2 over all variables."""
    return lambda: tf.add_n([0.5 * tf.reduce_sum(h * tf.square(t - c))
                             for t, h, c in zip(theta, curvatures, centres)])


def _towards(targets, theta):
    return _quadratic(theta, [1.0] * len(theta), targets)


# ------------------------------------------------------------------ Leap formula


def _leap_reference(path, losses, grads, joint_norm=True, stabilise=True):
    """sum_k -(dtheta + dL grad_k) / sqrt(dL^2 + |dtheta|^2), in numpy."""
    total = [np.zeros_like(x) for x in path[0]]
    for k in range(len(path) - 1):
        steps = [a - b for a, b in zip(path[k + 1], path[k])]
        d_loss = losses[k + 1] - losses[k]
        if stabilise:
            d_loss = -abs(d_loss)
        squares = [np.sum(s ** 2) for s in steps]
        norms = [np.sqrt(d_loss ** 2 + (sum(squares) if joint_norm else q)) for q in squares]
        total = [t - (s + d_loss * g) / n for t, s, g, n in zip(total, steps, grads[k], norms)]
    return total


def test_leap_matches_the_formula_computed_by_hand():
    curvatures = [np.array([1.0, 2.5]), np.array([0.5, 2.4, 1.0])]
    centres = [np.array([0.0, 0.5]), np.array([1.0, 0.0, -1.0])]
    start = [np.array([3.0, 1.5]), np.array([2.0, 0.6, 0.0])]
    learning_rate = 0.9

    # The trajectory of two SGD steps, in numpy.
    path, losses, grads = [start], [], []
    for k in range(3):
        theta = path[-1]
        losses.append(sum(0.5 * np.sum(h * (t - c) ** 2)
                          for t, h, c in zip(theta, curvatures, centres)))
        grads.append([h * (t - c) for t, h, c in zip(theta, curvatures, centres)])
        if k < 2:
            path.append([t - learning_rate * g for t, g in zip(theta, grads[-1])])
    assert losses[1] < losses[0] and losses[2] > losses[1]  # the second step goes up
    expected = _leap_reference(path, losses, grads)

    phi = _variables(start)
    theta = _variables(start)
    meta = leap.make("leap", phi, tf.keras.optimizers.SGD(1.0))
    loss_fn = _quadratic(theta, [c.astype(np.float32) for c in curvatures],
                         [c.astype(np.float32) for c in centres])
    _run_task(meta, theta, loss_fn, _sgd(learning_rate, theta), steps=2)

    got = _values(meta.accumulated)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    # The check can tell a per-variable norm and an unstabilised dL apart.
    for wrong in (_leap_reference(path, losses, grads, joint_norm=False),
                  _leap_reference(path, losses, grads, stabilise=False)):
        assert max(np.max(np.abs(g - w)) for g, w in zip(got, wrong)) > 1e-3


def test_a_meta_step_moves_phi_towards_where_training_went():
    start = [np.array([0.0, 1.0]), np.array([[2.0], [-1.0]])]
    direction = [np.array([1.0, -2.0]), np.array([[0.5], [3.0]])]
    target = [s + d for s, d in zip(start, direction)]
    phi, theta = _variables(start), _variables(start)
    meta = leap.Leap(phi, tf.keras.optimizers.SGD(0.1))
    _run_task(meta, theta, _towards([t.astype(np.float32) for t in target], theta),
              _sgd(0.2, theta), steps=3)
    meta.apply()

    moved = np.concatenate([(p - s).ravel() for p, s in zip(_values(phi), start)])
    d = np.concatenate([x.ravel() for x in direction])
    assert np.dot(moved, d) / (np.linalg.norm(moved) * np.linalg.norm(d)) > 0.999
    assert np.linalg.norm(moved) > 0


@pytest.mark.parametrize("method", METHODS)
def test_apply_averages_over_tasks_and_resets(method):
    start = [np.array([0.5, -1.0]), np.array([2.0])]
    targets = [[np.array([1.0, 1.0]), np.array([0.0])],
               [np.array([-3.0, 0.0]), np.array([4.0])]]

    def run(tasks):
        phi, theta = _variables(start), _variables(start)
        meta = leap.make(method, phi, tf.keras.optimizers.SGD(0.5))
        for target in tasks:
            _run_task(meta, theta, _towards([t.astype(np.float32) for t in target], theta),
                      _sgd(0.3, theta), steps=2)
        return meta, phi

    singles = [_values(run([t])[0].accumulated) for t in targets]
    meta, phi = run(targets)
    assert int(meta.tasks) == 2
    for a, s0, s1 in zip(_values(meta.accumulated), *singles):
        np.testing.assert_allclose(a, s0 + s1, rtol=1e-5, atol=1e-6)

    meta.apply()
    for p, s, s0, s1 in zip(_values(phi), start, *singles):
        np.testing.assert_allclose(p, s - 0.5 * (s0 + s1) / 2, rtol=1e-5, atol=1e-6)
    assert int(meta.tasks) == 0
    assert all(not np.any(a) for a in _values(meta.accumulated))
    with pytest.raises(tf.errors.InvalidArgumentError):
        meta.apply()  # nothing to average


def test_a_zero_step_contributes_zero_not_nan():
    phi = _variables([np.array([1.0, 2.0]), np.array([3.0])])
    meta = leap.Leap(phi, tf.keras.optimizers.SGD(1.0))
    meta.begin_task()
    theta = _values(phi)
    grads = [tf.constant([0.5, -1.0]), tf.constant([2.0])]
    meta.observe_step(theta, theta, 1.5, 1.5, grads)
    assert all(not np.any(a) for a in _values(meta.accumulated))
    meta.apply()
    np.testing.assert_array_equal(np.concatenate(_values(phi)), [1.0, 2.0, 3.0])


@pytest.mark.parametrize("method", METHODS)
def test_sparse_gradients_match_dense_ones(method):
    start = [np.arange(15, dtype=np.float32).reshape(5, 3) / 10, np.array([0.5, -0.5])]
    ids = tf.constant([1, 3, 1])  # a repeated row: its gradients must add up
    targets = tf.constant(np.linspace(-1, 1, 9, dtype=np.float32).reshape(3, 3))

    def run(densify):
        phi, theta = _variables(start), _variables(start)
        meta = leap.make(method, phi, tf.keras.optimizers.SGD(1.0))

        def loss_fn():
            rows = tf.gather(theta[0], ids)
            return (tf.reduce_sum(tf.square(rows - targets))
                    + tf.reduce_sum(tf.square(theta[1])) * tf.reduce_sum(rows))

        _, grads = _loss_and_grads(loss_fn, theta, densify)
        assert isinstance(grads[0], tf.IndexedSlices) != densify
        _run_task(meta, theta, loss_fn, _sgd(0.05, theta), steps=3, densify=densify)
        return _values(meta.accumulated)

    sparse, dense = run(densify=False), run(densify=True)
    assert np.any(sparse[0])
    for s, d in zip(sparse, dense):
        np.testing.assert_allclose(s, d, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_a_keras_inner_loop_in_tf_function_matches_eager(method):
    rng = np.random.default_rng(0)
    data = [(rng.normal(size=(4, 2)).astype(np.float32),
             rng.normal(size=(4, 3)).astype(np.float32)) for _ in range(2)]
    init = [rng.normal(size=(2, 3)), rng.normal(size=(3,))]

    def setup():
        model = tf.keras.Sequential([tf.keras.layers.Dense(3)])
        model.build((None, 2))
        phi = _variables(init)
        meta = leap.make(method, phi, tf.keras.optimizers.SGD(0.5))
        theta = model.trainable_variables
        optimizer = _sgd(0.1, theta)

        def task(x, y):
            _run_task(meta, theta, lambda: tf.reduce_mean(tf.square(model(x) - y)),
                      optimizer, steps=4)

        return meta, phi, task

    results = []
    for compile_ in (False, True):
        meta, phi, task = setup()
        task_fn = tf.function(task) if compile_ else task
        for x, y in data:
            task_fn(tf.constant(x), tf.constant(y))
        accumulated = _values(meta.accumulated)
        (tf.function(meta.apply) if compile_ else meta.apply)()
        results.append((accumulated, _values(phi)))
        assert int(meta.tasks) == 0

    (eager_sum, eager_phi), (graph_sum, graph_phi) = results
    assert np.any(eager_sum[0])
    for e, g in zip(eager_sum + eager_phi, graph_sum + graph_phi):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


def test_fomaml_uses_the_gradient_at_each_tasks_final_parameters():
    start = [np.array([0.5, -1.0]), np.array([[2.0, 1.0]])]
    targets = [[np.array([1.0, 1.0]), np.array([[0.0, 3.0]])],
               [np.array([-3.0, 0.0]), np.array([[4.0, -1.0]])]]
    phi, theta = _variables(start), _variables(start)
    meta = leap.make("fomaml", phi, tf.keras.optimizers.SGD(0.5))
    final_grads = []
    for target in targets:
        target = [t.astype(np.float32) for t in target]
        _run_task(meta, theta, _towards(target, theta), _sgd(0.3, theta), steps=3)
        final_grads.append([t - c for t, c in zip(_values(theta), target)])  # grad of L
    mean = [(a + b) / 2 for a, b in zip(*final_grads)]

    meta.apply()
    for p, s, m in zip(_values(phi), start, mean):
        np.testing.assert_allclose(p, s - 0.5 * m, rtol=1e-5, atol=1e-6)


def test_fomaml_needs_the_gradient_after_the_step():
    phi = _variables([np.array([1.0])])
    meta = leap.make("fomaml", phi, tf.keras.optimizers.SGD(1.0))
    with pytest.raises(ValueError, match="grad_after"):
        meta.observe_step(phi, phi, 0.0, 0.0, [tf.constant([1.0])])
    with pytest.raises(ValueError, match="unknown"):
        leap.make("reptile", phi, tf.keras.optimizers.SGD(1.0))


@pytest.mark.parametrize("method", METHODS)
def test_a_checkpoint_round_trips_a_half_accumulated_state(method, tmp_path):
    start = [np.array([0.5, -1.0]), np.array([2.0])]
    targets = [[np.array([1.0, 1.0]), np.array([0.0])],
               [np.array([-3.0, 0.0]), np.array([4.0])]]

    def setup():
        phi, theta = _variables(start), _variables(start)
        meta = leap.make(method, phi, tf.keras.optimizers.Adam(0.1))
        checkpoint = tf.train.Checkpoint(phi=phi, theta=theta, **meta.checkpoint_items())
        return meta, phi, theta, checkpoint

    def loss_fn(theta, k):
        return _towards([t.astype(np.float32) for t in targets[k]], theta)

    meta, phi, theta, checkpoint = setup()
    for k in range(2):  # one full meta iteration, so Adam has state
        _run_task(meta, theta, loss_fn(theta, k), _sgd(0.3, theta), steps=2)
    meta.apply()
    # Half of the next iteration: task 0, then task 1 stops after one of its 2 steps.
    _run_task(meta, theta, loss_fn(theta, 0), _sgd(0.3, theta), steps=2)
    _run_task(meta, theta, loss_fn(theta, 1), _sgd(0.3, theta), steps=1)
    path = checkpoint.write(str(tmp_path / "meta"))

    def finish(meta, phi, theta):
        _run_steps(meta, theta, loss_fn(theta, 1), _sgd(0.3, theta), steps=1)
        meta.apply()
        return _values(phi)

    restored, restored_phi, restored_theta, restored_checkpoint = setup()
    restored_checkpoint.read(path).assert_consumed()
    assert int(restored.tasks) == 2
    for a, b in zip(_values(restored.accumulated), _values(meta.accumulated)):
        np.testing.assert_array_equal(a, b)
    expected = finish(meta, phi, theta)
    got = finish(restored, restored_phi, restored_theta)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)
    assert max(np.max(np.abs(e - s)) for e, s in zip(expected, start)) > 1e-3


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
