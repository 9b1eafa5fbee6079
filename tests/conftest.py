"""Shared fixtures: real datasets, fetched or located once per test session."""
import os

# Under pytest-xdist each test process gets its share of the cores for TensorFlow's
# kernels: N processes x all cores of threads spin against each other. (Inter-op
# threads stay at TF's default: two MirroredStrategy replicas need two at once.)
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS",
                          str(max(1, (os.cpu_count() or 1) // _WORKERS)))

import tfmeta  # noqa: F401,E402  (first: selects Keras 2 before anything loads TensorFlow)

import pytest

from tfmeta.data import registry


LONG_ENV = "TFMETA_LONG_TESTS"


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true",
                     help=f"also run the long tests (marked long; or set {LONG_ENV}=1)")


def pytest_configure(config):
    config.addinivalue_line("markers", "long: a slow variant of a default test, run with "
                                       "--long")


def pytest_collection_modifyitems(config, items):
    """Long tests are opt-in: the default run stays well under 20 minutes on 2 cores."""
    if config.getoption("--long") or os.environ.get(LONG_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"long test: run with --long (or {LONG_ENV}=1)")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


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


def raw_records(paths) -> list:
    """Every serialized record of TFRecord files, sorted."""
    import tensorflow as tf
    # Read in batches: eager iteration costs ~0.4 ms per record (minutes at ML-100K).
    return sorted(r for batch in tf.data.TFRecordDataset(list(paths)).batch(4096)
                  for r in batch.numpy().tolist())


def same_records(paths, other_paths) -> None:
    """Asserts that two sets of TFRecord files hold the same records in any order: equal
    bytes, or else (another serialization of the same values) equal decoded values."""
    paths, other_paths = list(paths), list(other_paths)
    if raw_records(paths) != raw_records(other_paths):
        assert decoded_records(paths) == decoded_records(other_paths)


def decoded_records(paths) -> list:
    """Every record of TFRecord files, decoded to canonical JSON strings, sorted."""
    import json

    from tfmeta.data import schema
    return sorted(json.dumps(schema.decode(r), sort_keys=True) for r in raw_records(paths))


@pytest.fixture(scope="session")
def build_once(tmp_path_factory):
    """build_once(builder, **options) -> output dir; each distinct build runs once per
    session ('beam' = the Beam pipeline in process, 'reference' = plain pandas)."""
    import dataclasses

    from pipelines.options import BuildOptions
    from pipelines.periods import build_periods
    from pipelines.reference import build_reference
    done = {}
    defaults = {f.name: f.default for f in dataclasses.fields(BuildOptions)}

    def build(builder: str, **options) -> str:
        # Options left at their defaults do not make another build.
        key = (builder, tuple(sorted((k, v) for k, v in options.items()
                                     if defaults.get(k) != v)))
        if key not in done:
            out = str(tmp_path_factory.mktemp(builder) / "periods")
            options.setdefault("overwrite", False)
            run = build_periods if builder == "beam" else build_reference
            run(BuildOptions(out=out, **options))
            done[key] = out
        return done[key]

    return build


@pytest.fixture(scope="session")
def movielens_periods_a(build_once, movielens_100k) -> str:
    """MovieLens-100K's protocol A periods, built once by the plain reference builder
    (fast; the benchmarks' smoke tests only read them)."""
    return build_once("reference", input="movielens-100k", protocol="a")


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


def rebuilt(periods: str, tmp_path) -> str:
    """A copy of `periods` as a rebuild in place with other options would leave them:
    another seed (other negatives drawn), so another build. Its rows are left as they
    were: the manifest is what says which build a folder holds."""
    import json
    import shutil
    copy = tmp_path / "rebuilt"
    shutil.copytree(periods, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    options = dict(manifest["options"], seed=manifest["options"].get("seed", 0) + 1)
    (copy / "manifest.json").write_text(json.dumps(dict(manifest, options=options)))
    return str(copy)


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
