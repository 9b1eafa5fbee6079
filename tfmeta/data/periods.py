"""Reading a built period dataset back: its manifest, vocabularies and tf.data input.

    data = PeriodDataset("runs/ml100k-a")
    train = data.dataset(window="train", batch_size=1024)       # protocol A steps
    period = data.dataset(periods=[11], shuffle=False)            # protocol B period 11
    test = data.candidates("test", batch_size=256)                # ranking instances
"""
from __future__ import annotations

import json
import os
from typing import Iterable, Optional, Sequence, Union

MANIFEST = "manifest.json"


class IncompleteDataset(FileNotFoundError):
    pass


def _join(directory: str, relative: str) -> str:
    return directory.rstrip("/") + "/" + relative


class PeriodDataset:
    """A directory written by `tfmeta periods build` (see tfmeta.data.schema)."""

    def __init__(self, directory: Union[str, os.PathLike]):
        import tensorflow as tf
        self.directory = os.fspath(directory)
        path = _join(self.directory, MANIFEST)
        if not tf.io.gfile.exists(path):
            raise IncompleteDataset(
                f"{self.directory} has no {MANIFEST}: it is not a period dataset or its "
                "build did not finish. Build it with `tfmeta periods build`.")
        with tf.io.gfile.GFile(path) as f:
            self.manifest = json.load(f)

    @property
    def protocol(self) -> str:
        return self.manifest["protocol"]

    @property
    def periods(self) -> list[dict]:
        return self.manifest["periods"]

    def select(self, periods: Optional[Iterable[Union[int, str]]] = None,
               window: Optional[str] = None) -> list[dict]:
        """Period entries by 1-based index or name, and/or by window (protocol A)."""
        chosen = self.periods
        if periods is not None:
            wanted = set(periods)
            chosen = [p for p in chosen if p["index"] in wanted or p["name"] in wanted]
            found = {p["index"] for p in chosen} | {p["name"] for p in chosen}
            if wanted - found:
                raise KeyError(f"no period {sorted(map(str, wanted - found))} in "
                               f"{self.directory}; it has 1..{len(self.periods)}")
        if window is not None:
            if self.protocol != "a":
                raise ValueError("windows are a protocol A notion; select periods instead")
            chosen = [p for p in chosen if p["window"] == window]
        return chosen

    def files(self, periods=None, window=None) -> list[str]:
        return [_join(self.directory, f) for p in self.select(periods, window)
                for f in p["files"]]

    def vocabulary(self, kind: str = "items") -> list[str]:
        """Ids in order of first appearance ('users', 'items' or 'categories')."""
        import tensorflow as tf
        with tf.io.gfile.GFile(_join(self.directory, self.manifest["vocab"][kind])) as f:
            return f.read().splitlines()

    def feature_spec(self, kind: str) -> dict:
        from tfmeta.data import schema
        return schema.feature_spec(kind, self.manifest["has_rating"],
                                   self.manifest["has_categories"])

    def dataset(self, periods=None, window=None, batch_size: int = 1024,
                shuffle: bool = True, seed: Optional[int] = None,
                shuffle_buffer: int = 100_000, history_len: Optional[int] = None,
                drop_remainder: bool = False):
        """Batches of interactions (protocol A) or labelled examples (protocol B).

        Histories (protocol B) come as dense string tensors [B, history_len] padded
        with '' at the end, oldest item first, like the serving signatures.
        """
        kind = "interactions" if self.protocol == "a" else "examples"
        length = history_len or self.manifest.get("history_len")
        return read_records(self.files(periods, window), self.feature_spec(kind),
                            batch_size, shuffle, seed, shuffle_buffer, length,
                            drop_remainder)

    def candidates(self, window: str = "test", batch_size: int = 256):
        """Ranking instances of a window, in file order: positive, negatives, history."""
        if self.protocol != "a":
            raise ValueError("candidate lists exist for protocol A datasets only")
        files = [_join(self.directory, f)
                 for f in self.manifest["candidates"][window]["tfrecord"]]
        return read_records(files, self.feature_spec("candidates"), batch_size,
                            shuffle=False, history_len=self.manifest["max_len"],
                            dense={"negatives": self.manifest["options"]["negatives"]})

    def summary(self) -> str:
        return summarize(self.manifest)


def read_records(files: Sequence[str], spec: dict, batch_size: int, shuffle: bool = True,
                 seed: Optional[int] = None, shuffle_buffer: int = 100_000,
                 history_len: Optional[int] = None, drop_remainder: bool = False,
                 dense: Optional[dict] = None):
    """TFRecord files -> parsed, batched, prefetched dicts of tensors."""
    import tensorflow as tf
    if not files:
        raise ValueError("no files selected: check the periods / window you asked for")
    autotune = tf.data.AUTOTUNE
    names = tf.data.Dataset.from_tensor_slices(list(files))
    if shuffle:
        names = names.shuffle(len(files), seed=seed)
    # A seeded shuffle must give the same order every time (resumed training relies on
    # it); an unseeded one may take records in whatever order they arrive.
    records = names.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8),
                               num_parallel_calls=autotune,
                               deterministic=not shuffle or seed is not None)
    if shuffle:
        records = records.shuffle(shuffle_buffer, seed=seed)
    widths = dict(dense or {})
    if history_len and "history" in spec:
        widths["history"] = history_len

    def parse(batch):
        features = tf.io.parse_example(batch, spec)
        for name, width in widths.items():
            features[name] = features[name].to_tensor(default_value="", shape=[None, width])
        return features

    return (records.batch(batch_size, drop_remainder=drop_remainder)
            .map(parse, num_parallel_calls=autotune)
            .prefetch(autotune))


def _date(ts: int) -> str:
    import datetime
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d")


def summarize(manifest: dict) -> str:
    """A person-readable summary of a period dataset's manifest."""
    m = manifest
    lines = [
        f"protocol {m['protocol'].upper()} · {m.get('dataset') or m['input']['paths'][0]} · "
        f"{m['feedback']} feedback · {m['granularity']} steps · built by {m['builder']} "
        f"in {m['seconds']:.1f} s",
        f"rows: {m['rows_in']:,} in = {m['rows_out']:,} kept + {m['rows_rejected']:,} "
        f"rejected + {m['rows_deduplicated']:,} duplicates · "
        f"{m['vocab']['sizes']['users']:,} users · {m['vocab']['sizes']['items']:,} items",
    ]
    if m["protocol"] == "a":
        lines.append("windows: " + ", ".join(f"{k} {v:,} rows" for k, v in m["windows"].items())
                     + f" (cut {m['window_bounds']['cut']}, "
                       f"{m['window_bounds']['val_months']} validation month(s))")
        for w in ("val", "test"):
            ex = m["excluded"][w]
            lines.append(f"{w} instances: {m['instances'][w]:,} (excluded: {ex['cold_user']:,} "
                         f"cold-user, {ex['cold_item']:,} cold-item interactions)")
    else:
        lines.append(f"schedule: pre-train 1-10, update 11-30, validation periods "
                     f"{m['schedule']['val'][0]}-{m['schedule']['val'][-1]}, test "
                     f"{m['schedule']['test'][0]}-{m['schedule']['test'][-1]}")
    header = f"{'#':>4} {'step':<18} {'first':<10} {'last':<10} {'rows':>9}"
    header += f" {'positives':>9}" if m["protocol"] == "b" else ""
    header += f" {'users':>7} {'items':>7}"
    lines += ["", header]
    for p in m["periods"]:
        row = (f"{p['index']:>4} {p['name']:<18} {_date(p['start_ts']):<10} "
               f"{_date(p['end_ts']):<10} {p['rows']:>9,}")
        row += f" {p['positives']:>9,}" if m["protocol"] == "b" else ""
        row += f" {p['users_seen']:>7,} {p['items_seen']:>7,}"
        lines.append(row)
    return "\n".join(lines)
