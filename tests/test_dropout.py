"""tfmeta.models.dropout: dropout masks that a checkpoint saves and restores."""
import tfmeta  # noqa: F401  (first: selects Keras 2)

import numpy as np
import pytest
import tensorflow as tf

from tfmeta.models.dropout import CheckpointedDropout, MultiHeadAttention

X = tf.ones([64, 32])


def test_identity_unless_training_and_inverted_scaling_when_training():
    layer = CheckpointedDropout(0.25, seed=3)
    np.testing.assert_array_equal(layer(X).numpy(), X.numpy())
    assert int(layer.draws.numpy()) == 0                  # no draw outside training
    y = layer(X, training=True).numpy()
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.05
    assert int(layer.draws.numpy()) == 1
    assert not layer.trainable_weights and layer.non_trainable_weights == [layer.draws]
    with pytest.raises(ValueError, match="rate must be in"):
        CheckpointedDropout(1.0)


def test_a_restored_layer_draws_the_masks_the_uninterrupted_one_draws(tmp_path):
    layer = CheckpointedDropout(0.5, seed=11)
    step = tf.function(lambda x: layer(x, training=True))
    first = step(X).numpy()
    path = tf.train.Checkpoint(layer=layer).write(str(tmp_path / "ckpt"))
    second, third = step(X).numpy(), step(X).numpy()
    assert not np.array_equal(first, second) and not np.array_equal(second, third)

    again = CheckpointedDropout(0.5, seed=11)
    tf.train.Checkpoint(layer=again).read(path).assert_consumed()
    step_again = tf.function(lambda x: again(x, training=True))
    np.testing.assert_array_equal(step_again(X).numpy(), second)
    np.testing.assert_array_equal(step_again(X).numpy(), third)
    assert step.experimental_get_tracing_count() == 1


def test_the_seed_comes_from_the_keras_seed_when_not_given():
    tf.keras.utils.set_random_seed(5)
    a = CheckpointedDropout(0.5)(X, training=True).numpy()
    tf.keras.utils.set_random_seed(5)
    b = CheckpointedDropout(0.5)(X, training=True).numpy()
    np.testing.assert_array_equal(a, b)


def test_multi_head_attention_drops_attention_weights_with_a_checkpointed_dropout():
    attention = MultiHeadAttention(num_heads=1, key_dim=8, dropout=0.5, dropout_seed=1)
    tokens = tf.random.stateless_normal([4, 6, 8], seed=[1, 2])
    inference = attention(tokens, tokens).numpy()
    inner = attention._dropout_layer
    assert isinstance(inner, CheckpointedDropout) and inner.rate == 0.5
    assert int(inner.draws.numpy()) == 0
    trained = attention(tokens, tokens, training=True).numpy()
    assert int(inner.draws.numpy()) == 1 and not np.allclose(trained, inference)
    assert inner.draws in attention.non_trainable_weights  # so checkpoints hold it


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
