"""Hyperparameter search with KerasTuner for every tfmeta method (tfmeta.tuning.tuner)."""
from tfmeta.tuning.space import default_space, load_space  # noqa: F401
from tfmeta.tuning.tuner import TUNERS, tune  # noqa: F401
