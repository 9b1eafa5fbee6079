"""Raw-id lookups that ship with a SavedModel as assets.

    table = VocabularyTable(write_vocabulary(directory, "items", ids))
    rows = table.lookup(tf.constant([["a", "", "never-seen"]]))   # [[r_a + 1, 0, 0]]

Row r + 1 for the id of vocabulary rank r (tfmeta's row contract for every model);
row 0 for '' (padding) and for every unknown id. The vocabulary is a text file, one id
per line, tracked as a `tf.saved_model.Asset`: `tf.saved_model.save` copies it into
the export's assets/ and TF Serving reads it from there.
"""
from __future__ import annotations

import os
from typing import Sequence

import tensorflow as tf


def write_vocabulary(directory: str, name: str, ids: Sequence[str]) -> str:
    """Writes ids (in rank order) to directory/name.txt; returns its path."""
    ids = [str(i) for i in ids]
    bad = [i for i in ids if "\n" in i or "\r" in i or i == ""]
    if bad:
        raise ValueError(f"{name}: ids must be non-empty and hold no line breaks "
                         f"({len(bad)} do, e.g. {bad[0]!r}); clean them in the pipeline")
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name}: the vocabulary repeats ids")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{name}.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(f"{i}\n" for i in ids))
    return path


class VocabularyTable(tf.Module):
    """String id -> int64 row (rank + 1; 0 for '' and unknown ids) from an asset file."""

    def __init__(self, path: str, name: str = None):
        super().__init__(name=name)
        self.asset = tf.saved_model.Asset(path)
        initializer = tf.lookup.TextFileInitializer(
            self.asset, key_dtype=tf.string, key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            value_dtype=tf.int64, value_index=tf.lookup.TextFileIndex.LINE_NUMBER)
        self.table = tf.lookup.StaticHashTable(initializer, default_value=-1)

    def lookup(self, ids: tf.Tensor) -> tf.Tensor:
        return self.table.lookup(tf.convert_to_tensor(ids, tf.string)) + 1

    def size(self) -> tf.Tensor:
        return self.table.size()
