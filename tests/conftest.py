"""Shared fixtures: real datasets, fetched or located once per test session."""
import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)

import os

import pytest

from tfmeta.data import registry


@pytest.fixture(scope="session")
def movielens_100k() -> str:
    """Path of the real MovieLens-100K .inter file, in the default cache so it downloads
    once per machine rather than once per run."""
    return registry.fetch("movielens-100k")


@pytest.fixture(scope="session")
def shared_data_dir() -> str:
    """The data directory holding yelp-a / amazon-beauty; tests needing it skip without it."""
    path = registry.default_data_dir()
    if not os.path.isdir(path):
        pytest.skip(f"no shared data directory at {path}; set {registry.DATA_ENV} to run "
                    "tests on the Yelp / Amazon data")
    return path
