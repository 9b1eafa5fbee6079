"""The tf.train.Example schema of period datasets (schema version 1).

Ids are stored as the raw strings of the input data (the serving contract uses the same
strings). Histories list items oldest first, most recent last.

Protocol A, `periods/` (one interaction per example):
  user bytes, item bytes, ts int64, seq int64, [rating float], [categories bytes*]
Protocol A, `candidates/{val,test}/` (one ranking instance per example):
  user bytes, ts int64, seq int64, positive bytes, negatives bytes[<=99],
  history bytes[<=max_len] (the user's interactions strictly before ts)
Protocol B, `periods/` (one labelled example per example):
  user bytes, item bytes, ts int64, seq int64, label int64 (0/1), sampled int64 (1 for
  a sampled negative), history bytes[<=30] (positives strictly before ts),
  [rating float], [categories bytes*]

`seq` is the position of the source row in the input (file index << 40 | line), so
(ts, seq) is the protocols' sort order; a sampled negative carries its positive's seq.
"""
from __future__ import annotations

import csv
import io
from typing import Iterable, Optional

SCHEMA_VERSION = 1

_example_pb2 = None


def _pb():
    # Imported lazily: Beam workers pay TensorFlow's import once, on first use.
    global _example_pb2
    if _example_pb2 is None:
        from tensorflow.core.example import example_pb2
        _example_pb2 = example_pb2
    return _example_pb2


def _encode(values: dict) -> bytes:
    example = _pb().Example()
    feature = example.features.feature
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, str):
            feature[name].bytes_list.value.append(value.encode())
        elif isinstance(value, float):
            feature[name].float_list.value.append(value)
        elif isinstance(value, int):
            feature[name].int64_list.value.append(value)
        else:  # a sequence of strings
            feature[name].bytes_list.value.extend([v.encode() for v in value])
    return example.SerializeToString()


def interaction_example(user: str, item: str, ts: int, seq: int,
                        rating: Optional[float] = None,
                        categories: Optional[Iterable[str]] = None) -> bytes:
    return _encode({"user": user, "item": item, "ts": ts, "seq": seq,
                    "rating": rating, "categories": categories})


def candidate_example(user: str, ts: int, seq: int, positive: str,
                      negatives: Iterable[str], history: Iterable[str]) -> bytes:
    return _encode({"user": user, "ts": ts, "seq": seq, "positive": positive,
                    "negatives": list(negatives), "history": list(history)})


def labelled_example(user: str, item: str, ts: int, seq: int, label: int, sampled: int,
                     history: Iterable[str], rating: Optional[float] = None,
                     categories: Optional[Iterable[str]] = None) -> bytes:
    return _encode({"user": user, "item": item, "ts": ts, "seq": seq, "label": label,
                    "sampled": sampled, "history": list(history), "rating": rating,
                    "categories": categories})


def csv_line(values) -> str:
    """One row of the candidate CSV files (quoted where ids contain commas)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


def candidate_csv_header(negatives: int) -> str:
    """`user,timestamp,positive,neg_1..neg_N`, as in PROTOCOLS.md A.6."""
    return csv_line(["user", "timestamp", "positive"]
                    + [f"neg_{i}" for i in range(1, negatives + 1)])


def decode(record: bytes) -> dict:
    """A serialized example -> {name: value or list}, for tests and inspection."""
    example = _pb().Example.FromString(record)
    out = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        if kind == "bytes_list":
            values = [v.decode() for v in values]
        out[name] = values
    return out


def feature_spec(kind: str, has_rating: bool = False, has_categories: bool = False) -> dict:
    """tf.io feature spec of one record kind: 'interactions', 'candidates' or 'examples'."""
    import tensorflow as tf
    scalar = lambda dtype: tf.io.FixedLenFeature([], dtype)  # noqa: E731
    ragged = lambda dtype: tf.io.RaggedFeature(dtype)  # noqa: E731
    if kind == "candidates":
        return {"user": scalar(tf.string), "ts": scalar(tf.int64), "seq": scalar(tf.int64),
                "positive": scalar(tf.string), "negatives": ragged(tf.string),
                "history": ragged(tf.string)}
    spec = {"user": scalar(tf.string), "item": scalar(tf.string), "ts": scalar(tf.int64),
            "seq": scalar(tf.int64)}
    if kind == "examples":
        spec.update(label=scalar(tf.int64), sampled=scalar(tf.int64),
                    history=ragged(tf.string))
    elif kind != "interactions":
        raise ValueError(f"unknown record kind {kind!r}")
    if has_rating:
        spec["rating"] = scalar(tf.float32)
    if has_categories:
        spec["categories"] = ragged(tf.string)
    return spec
