"""`import tfmeta` selects Keras 2 for TFRS / TF-GNN, or says clearly why it cannot."""
import os
import subprocess
import sys


def python(code, **env):
    environment = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    environment.update(env, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment)


def test_import_selects_keras_2_for_tfrs_and_tfgnn():
    result = python("import tfmeta, tensorflow as tf, tensorflow_recommenders, "
                    "tensorflow_gnn; print(tf.keras.__name__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("tf_keras")


def test_keras_3_already_resolved_is_a_clear_error():
    result = python("import tensorflow as tf; tf.keras.layers; import tfmeta")
    assert result.returncode != 0
    assert "already resolved to Keras 3" in result.stderr
    assert "TF_USE_LEGACY_KERAS=1" in result.stderr


def test_legacy_keras_explicitly_disabled_is_a_clear_error():
    result = python("import tfmeta", TF_USE_LEGACY_KERAS="0")
    assert result.returncode != 0 and "needs Keras 2" in result.stderr


if __name__ == "__main__":  # Bazel's py_test runs the file as a script
    import pytest
    raise SystemExit(pytest.main([__file__]))
