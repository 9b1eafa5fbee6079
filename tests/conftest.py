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


def decoded_records(paths) -> list:
    """Every record of TFRecord files, decoded to canonical JSON strings, sorted."""
    import json

    import tensorflow as tf

    from tfmeta.data import schema
    return sorted(json.dumps(schema.decode(r.numpy()), sort_keys=True)
                  for r in tf.data.TFRecordDataset(list(paths)))


@pytest.fixture(scope="session")
def build_once(tmp_path_factory):
    """build_once(builder, **options) -> output dir; each distinct build runs once per
    session ('beam' = the Beam pipeline in process, 'reference' = plain pandas)."""
    from pipelines.options import BuildOptions
    from pipelines.periods import build_periods
    from pipelines.reference import build_reference
    done = {}

    def build(builder: str, **options) -> str:
        key = (builder, tuple(sorted(options.items())))
        if key not in done:
            out = str(tmp_path_factory.mktemp(builder) / "periods")
            options.setdefault("overwrite", False)
            run = build_periods if builder == "beam" else build_reference
            run(BuildOptions(out=out, **options))
            done[key] = out
        return done[key]

    return build


@pytest.fixture(scope="session")
def small_periods(tmp_path_factory):
    """31 protocol B periods of a small implicit log in which each user favours the items
    of one residue class, so that a model has something to learn."""
    import csv
    import random

    from pipelines.options import BuildOptions
    from pipelines.reference import build_reference
    root = tmp_path_factory.mktemp("small")
    rng = random.Random(0)
    with open(root / "log.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["user", "item", "ts"])
        for row in range(31 * 300):
            user = rng.randrange(200)
            item = rng.randrange(100) * 3 + user % 3 if rng.random() < 0.8 else rng.randrange(300)
            writer.writerow([f"u{user}", f"i{item}", 1_600_000_000 + row * 60])
    out = str(root / "periods")
    build_reference(BuildOptions(input=str(root / "log.csv"), out=out, protocol="b"))
    return out


def strategy_for(periods: str, method: str, seed: int = 0):
    """(model, strategy, source) of a protocol B method on a period dataset, seeded."""
    import tensorflow as tf

    from tfmeta.data.periods import PeriodDataset
    from tfmeta.models.embedding_mlp import EmbeddingMLP
    from tfmeta.training.incremental import IncrementalOptions, Periods, make_strategy
    tf.keras.utils.set_random_seed(seed)
    data = PeriodDataset(periods)
    model = EmbeddingMLP.from_period_dataset(data, seed=seed)
    return model, make_strategy(model, IncrementalOptions(method=method, seed=seed)), \
        Periods(data, 128, seed)


def values(variables) -> list:
    """Variables or tensors as numpy arrays."""
    import tensorflow as tf
    return [tf.convert_to_tensor(v).numpy() for v in variables]
