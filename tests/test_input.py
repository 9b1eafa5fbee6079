"""tf.data input from built period datasets."""
import pytest
import tensorflow as tf

from tfmeta.data.periods import IncompleteDataset, PeriodDataset


def test_protocol_b_period_batches(build_once, movielens_100k):
    data = PeriodDataset(build_once("beam", input="movielens-100k", protocol="b"))
    period = data.select([11])[0]
    batches = list(data.dataset(periods=[11], batch_size=1000, shuffle=False))
    assert sum(int(b["label"].shape[0]) for b in batches) == period["rows"]
    assert sum(int(tf.reduce_sum(b["label"])) for b in batches) == period["positives"]
    first = batches[0]
    assert first["history"].shape[1] == 30 and first["history"].dtype == tf.string
    assert first["rating"].dtype == tf.float32
    # Padding sits at the end: no real item after a '' entry.
    padded = first["history"].numpy() == b""
    assert (padded[:, :-1] <= padded[:, 1:]).all()


def test_window_selection_and_shuffle(build_once, movielens_100k):
    data = PeriodDataset(build_once("beam", input="movielens-100k", protocol="a"))
    rows = sum(int(b["user"].shape[0]) for b in data.dataset(window="train", seed=1))
    assert rows == data.manifest["windows"]["train"]
    a = next(iter(data.dataset(window="val", batch_size=64, seed=1)))["seq"].numpy()
    b = next(iter(data.dataset(window="val", batch_size=64, seed=2)))["seq"].numpy()
    assert list(a) != list(b)
    with pytest.raises(KeyError, match="no period"):
        data.select([999])


def test_candidates_are_dense(build_once, movielens_100k):
    data = PeriodDataset(build_once("beam", input="movielens-100k", protocol="a"))
    batch = next(iter(data.candidates("val", batch_size=32)))
    assert batch["negatives"].shape == (32, 99) and batch["history"].shape == (32, 50)
    assert data.vocabulary("items")[:1] and len(data.vocabulary("users")) == 943


def test_incomplete_directory_is_refused(tmp_path):
    (tmp_path / "periods").mkdir()
    with pytest.raises(IncompleteDataset, match="did not finish"):
        PeriodDataset(tmp_path)


if __name__ == "__main__":  # Bazel's py_test runs the file as a script
    raise SystemExit(pytest.main([__file__]))
