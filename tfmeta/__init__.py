"""tfmeta: recommender systems that keep up with time.

Importing tfmeta selects Keras 2 (tf-keras) for TensorFlow, because
TensorFlow Recommenders and TensorFlow GNN refuse Keras 3. The choice is made through
TF_USE_LEGACY_KERAS, which TensorFlow reads the first time `tf.keras` is touched; if
that already happened with Keras 3, we fail here instead of deep inside TFRS.
"""
import os
import sys

__version__ = "0.1.0"

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def _check_keras_version() -> None:
    if os.environ.get("TF_USE_LEGACY_KERAS") not in ("1", "true", "True"):
        raise ImportError(
            "tfmeta needs Keras 2 (tf-keras) but TF_USE_LEGACY_KERAS is set to "
            f"{os.environ['TF_USE_LEGACY_KERAS']!r}. Unset it or set it to 1 before "
            "starting Python.")
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return  # tf.keras will resolve to tf_keras when first touched.
    keras_module = getattr(tf.keras, "__name__", "")
    if not keras_module.startswith("tf_keras"):
        raise ImportError(
            "tf.keras was already resolved to Keras 3 before tfmeta was imported, and "
            "TFRS / TF-GNN need Keras 2. Import tfmeta before touching tf.keras, or start "
            "Python with TF_USE_LEGACY_KERAS=1 set in the environment.")


_check_keras_version()
