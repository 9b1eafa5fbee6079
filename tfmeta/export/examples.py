"""Parsing serialized tf.Example strings for the `predict_examples` signatures (and
writing them, for requests made in Python: `serialize`).

Each signature input may arrive under its own name (`user_id`, `item_id`, `history`,
`item_ids`) or under the period schema's (`user`, `item`; tfmeta.data.schema), so the
examples of a period's TFRecords score as they are. Missing features parse as '' (an
unknown id) or an empty list; lists are padded with ''.
"""
from __future__ import annotations

import tensorflow as tf

SCHEMA_NAMES = {"user_id": "user", "item_id": "item"}


def parse(serialized: tf.Tensor, scalars: tuple, lists: tuple) -> dict:
    """{name: [B] string} for scalars, {name: [B, L] string, '' padded} for lists."""
    spec = {}
    for name in scalars:
        spec[name] = tf.io.FixedLenFeature([], tf.string, default_value="")
        if name in SCHEMA_NAMES:
            spec[SCHEMA_NAMES[name]] = tf.io.FixedLenFeature([], tf.string, default_value="")
    for name in lists:
        spec[name] = tf.io.VarLenFeature(tf.string)
    parsed = tf.io.parse_example(serialized, spec)
    out = {}
    for name in scalars:
        value = parsed[name]
        if name in SCHEMA_NAMES:
            value = tf.where(tf.equal(value, ""), parsed[SCHEMA_NAMES[name]], value)
        out[name] = value
    for name in lists:
        out[name] = tf.sparse.to_dense(parsed[name], default_value="")
    return out


def serialize(inputs: dict) -> list:
    """parse's inverse: {name: B strings, or B lists of strings} -> B serialized
    tf.Examples. '' list entries (padding) are left out, as parse pads them back."""
    count = len(next(iter(inputs.values())))
    out = []
    for row in range(count):
        features = {}
        for name, values in inputs.items():
            value = values[row]
            entries = [value] if isinstance(value, (str, bytes)) else \
                [v for v in value if v not in ("", b"")]
            features[name] = tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[v.encode() if isinstance(v, str) else v for v in entries]))
        out.append(tf.train.Example(features=tf.train.Features(feature=features))
                   .SerializeToString())
    return out
