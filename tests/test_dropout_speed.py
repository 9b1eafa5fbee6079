"""benchmarks.dropout_speed --quick times a model's training step with tfmeta's
CheckpointedDropout and with Keras' Dropout side by side (tiny: a smoke test)."""
import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)

import json

import pytest

from benchmarks import dropout_speed


def test_both_dropouts_are_timed_side_by_side_on_the_same_model(movielens_periods_a,
                                                                tmp_path):
    argv = ["--quick", "--dataset", "movielens-100k", "--periods", movielens_periods_a,
            "--results-dir", str(tmp_path)]
    assert dropout_speed.main(argv) == 0
    data = json.loads((tmp_path / "dropout_speed-quick.json").read_text())
    row = data["models"]["sasrec"]
    assert row["agree"] and row["loss"] > 0
    for kind in dropout_speed.IMPLEMENTATIONS:
        assert len(row["seconds"][kind]["wall"]) == data["repeats"] == 1
    assert row["ratio"]["wall"] == pytest.approx(
        row["median_seconds"]["keras"]["wall"] / row["median_seconds"]["checkpointed"]["wall"])
    assert "| sasrec |" in (tmp_path / "dropout_speed-quick.md").read_text()


def test_the_keras_arm_builds_keras_layers():
    import tensorflow as tf
    from tfmeta.models.dropout import CheckpointedDropout
    from tfmeta.models.sequence import SelfAttentionBlock
    with dropout_speed.dropout("keras"):
        block = SelfAttentionBlock(8, dropout=0.5, seed=0)
    assert type(block.attention_dropout) is tf.keras.layers.Dropout
    assert type(block.attention) is tf.keras.layers.MultiHeadAttention
    assert isinstance(SelfAttentionBlock(8, dropout=0.5).attention_dropout,
                      CheckpointedDropout)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
