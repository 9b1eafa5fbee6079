"""tfmeta.optimizers: LazyAdam updates only the rows a sparse gradient touches."""
import numpy as np
import pytest
import tensorflow as tf

from tfmeta import optimizers


def _train(optimizer_class, batches):
    """An embedding table and a dense vector after Adam-family steps on `batches` of ids."""
    tf.keras.utils.set_random_seed(0)
    table = tf.Variable(tf.random.normal([6, 3]))
    weights = tf.Variable(tf.random.normal([3]))
    optimizer = optimizer_class(0.1)
    optimizer.build([table, weights])
    for ids in batches:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(table, tf.constant(ids)) * weights) ** 2
        grads = tape.gradient(loss, [table, weights])
        assert isinstance(grads[0], tf.IndexedSlices)
        optimizer.apply_gradients(zip(grads, [table, weights]))
    return table.numpy(), weights.numpy()


@pytest.mark.parametrize("ids", [[0, 1, 2, 3, 4, 5], [0, 0, 1, 2, 3, 4, 5, 5]])
def test_a_step_that_reads_every_row_is_adams(ids):
    adam = _train(tf.keras.optimizers.Adam, [ids])
    lazy = _train(optimizers.LazyAdam, [ids])
    for a, b in zip(adam, lazy):
        np.testing.assert_allclose(b, a, atol=1e-6)


def test_rows_a_step_does_not_read_stay_put():
    first = _train(optimizers.LazyAdam, [[0, 1]])
    second = _train(optimizers.LazyAdam, [[0, 1], [2]])
    np.testing.assert_array_equal(second[0][[0, 1, 3, 4, 5]], first[0][[0, 1, 3, 4, 5]])
    assert not np.allclose(second[0][2], first[0][2])
    adam = _train(tf.keras.optimizers.Adam, [[0, 1], [2]])
    assert not np.allclose(adam[0][[0, 1]], first[0][[0, 1]])  # Adam keeps moving them


def test_optimizers_by_name():
    assert type(optimizers.make("adam", 1e-3)) is tf.keras.optimizers.Adam
    assert isinstance(optimizers.make("lazy-adam", 1e-3), optimizers.LazyAdam)
    with pytest.raises(ValueError, match="lazy-adam"):
        optimizers.make("sgd", 1e-3)


def test_the_driver_trains_with_lazy_adam(tmp_path, small_periods):
    from tfmeta.training.incremental import IncrementalOptions, train_incremental
    metrics = train_incremental(small_periods, str(tmp_path / "run"), IncrementalOptions(
        method="iu", optimizer="lazy-adam", learning_rate=0.01, epochs=3))
    assert metrics["options"]["optimizer"] == "lazy-adam"
    assert metrics["test"]["auc"] > 0.55  # it learned something


if __name__ == "__main__":  # Bazel's py_test runs the file as a script
    raise SystemExit(pytest.main([__file__]))
