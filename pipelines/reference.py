"""A plain, single-process pandas implementation of PROTOCOLS.md.

It writes the same directory as the Beam pipeline (one file per step instead of shards)
and exists for two reasons: the tests check the Beam output against it, and the
throughput benchmark measures Beam against it. It shares with the pipeline only what
must be shared for identical output (line parsing, the seeded samplers, the example
encoder, the manifest) and computes every ordering, window, period, history and warm set
its own way, with pandas.
"""
from __future__ import annotations

import json
import posixpath
import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from pipelines import manifest, output
from pipelines.options import BuildOptions, ResolvedBuild, resolve
from tfmeta.data import negatives, readers, schema

_COLUMNS = list(readers.Interaction._fields)


def read_frame(build: ResolvedBuild):
    """All input files -> (DataFrame of parsed rows, rejections, rows_in)."""
    frames, rejected, rows_in = [], [], 0
    for index, path in enumerate(build.paths):
        good, bad, n = readers.read_file(path, build.row_format, file_index=index)
        frames.append(pd.DataFrame(good, columns=_COLUMNS))
        rejected += bad
        rows_in += n
    return pd.concat(frames, ignore_index=True), rejected, rows_in


def step_names(frame: pd.DataFrame, build: ResolvedBuild) -> pd.Series:
    """Each (sorted) row's step: '<window>-<label>' (protocol A) or 'period-NNN' (B)."""
    o = build.options
    if build.granularity == "count":
        number = np.concatenate([np.full(len(part), i + 1) for i, part in
                                 enumerate(np.array_split(np.arange(len(frame)), o.periods))])
        if o.protocol == "b":
            return pd.Series([f"period-{n:03d}" for n in number], index=frame.index)
        labels = pd.Series([f"p{n:04d}" for n in number], index=frame.index)
    else:
        when = pd.to_datetime(frame["ts"], unit="s", utc=True)
        if build.granularity == "day":
            labels = when.dt.strftime("%Y-%m-%d")
        elif build.granularity == "week":
            labels = (when.dt.normalize() - pd.to_timedelta(when.dt.day_of_week, unit="D")
                      ).dt.strftime("%Y-%m-%d")
        elif build.granularity == "month":
            labels = when.dt.strftime("%Y-%m")
        else:
            labels = when.dt.year.astype(str) + "-Q" + when.dt.quarter.astype(str)
    w = build.windows
    window = np.where(frame["ts"] < w.val_start, "train",
                      np.where(frame["ts"] < w.test_start, "val", "test"))
    return pd.Series(window, index=frame.index) + "-" + labels


def _ranking_records(frame, build, items, item_first_ts, stats):
    """Protocol A candidates per window: {window: [(record, csv row)]}."""
    o, w = build.options, build.windows
    out = {"val": [], "test": []}
    warm = {name: int(np.searchsorted(item_first_ts, w.start(name), side="left"))
            for name in out}
    rank = {item: i for i, item in enumerate(items)}
    groups = frame.groupby("user", sort=False)
    for user, rows in tqdm(groups, desc="ranking instances", leave=False, disable=None):
        ts = rows["ts"].to_numpy()
        item = rows["item"].tolist()
        seq = rows["seq"].to_numpy()
        user_items = set(item)
        for name in out:
            rng = negatives.user_rng(o.seed, f"a/{name}", user)
            end = w.test_start if name == "val" else np.iinfo(np.int64).max
            inside = np.flatnonzero((ts >= w.start(name)) & (ts < end))
            for i in inside:
                if ts[0] >= w.start(name):
                    manifest.bump(stats, f"excluded_cold_user/{name}")
                    continue
                if rank[item[i]] >= warm[name]:
                    manifest.bump(stats, f"excluded_cold_item/{name}")
                    continue
                before = int(np.searchsorted(ts, ts[i], side="left"))
                history = item[max(0, before - o.max_len):before]
                negs = negatives.sample_many(rng, items, warm[name], o.negatives, user_items)
                manifest.bump(stats, f"instances/{name}")
                if len(negs) < o.negatives:
                    manifest.bump(stats, f"short_lists/{name}")
                out[name].append((
                    schema.candidate_example(user, int(ts[i]), int(seq[i]), item[i], negs,
                                             history),
                    [user, int(ts[i]), item[i], *negs]))
    return out


def _labelled_records(frame, build, items, item_first_ts, item_categories, stats):
    """Protocol B examples: [(step, record)]."""
    o = build.options
    out = []
    for user, rows in tqdm(frame.groupby("user", sort=False), desc="labelled examples",
                           leave=False, disable=None):
        rng = negatives.user_rng(o.seed, "b", user)
        ts = rows["ts"].to_numpy()
        label = (np.ones(len(rows), dtype=int) if not build.explicit
                 else (rows["rating"].to_numpy() >= o.positive_rating).astype(int))
        item, step = rows["item"].tolist(), rows["step"].tolist()
        seq, rating = rows["seq"].tolist(), rows["rating"].tolist()
        categories = rows["categories"].tolist()
        positives = [it for it, lab in zip(item, label) if lab]
        positive_count = np.cumsum(label)  # positives up to and including each row
        seen, seen_upto = set(), 0
        for i in range(len(rows)):
            first_same = int(np.searchsorted(ts, ts[i], side="left"))
            last_same = int(np.searchsorted(ts, ts[i], side="right"))
            n_before = int(positive_count[first_same - 1]) if first_same else 0
            history = positives[max(0, n_before - o.history_len):n_before]
            out.append((step[i], schema.labelled_example(
                user, item[i], int(ts[i]), seq[i], int(label[i]), 0, history,
                None if pd.isna(rating[i]) else float(rating[i]), categories[i] or None)))
            manifest.bump(stats, f"positives/{step[i]}", int(label[i]))
            if build.explicit:
                continue
            seen.update(item[seen_upto:last_same])  # the user's items up to and incl. ts
            seen_upto = max(seen_upto, last_same)
            pool = int(np.searchsorted(item_first_ts, ts[i], side="right"))
            negative = negatives.sample_one(rng, items, pool, seen)
            if negative is None:
                manifest.bump(stats, "negatives_unavailable")
                continue
            out.append((step[i], schema.labelled_example(
                user, negative, int(ts[i]), seq[i], 0, 1, history,
                categories=item_categories.get(negative))))
    return out


def _write_tfrecords(path: str, records) -> None:
    import tensorflow as tf
    tf.io.gfile.makedirs(posixpath.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)


def build_reference(options: BuildOptions) -> dict:
    """Builds the same period dataset as `pipelines.periods.build_periods`, with pandas."""
    started = time.time()
    build = resolve(options)
    output.check_destination(options.out, options.overwrite)
    manifest.check_headers(build)
    staging = output.new_staging_dir(options.out)
    try:
        _build_into(build, staging)
    except BaseException:
        output.discard(staging)
        raise
    return manifest.finish(build, staging, builder="reference/pandas",
                           seconds=time.time() - started)


def _build_into(build: ResolvedBuild, staging: str) -> None:
    o = build.options
    parsed, rejected, rows_in = read_frame(build)
    output.write_lines(output.join(staging, "rejected", "rejected-00000-of-00001.jsonl"),
                       (json.dumps(r) for r in rejected))
    frame = parsed.sort_values(["ts", "seq"], kind="stable")
    if build.dedupe:
        frame = frame.drop_duplicates(["user", "item"], keep="first")
    frame = frame.reset_index(drop=True)
    frame["step"] = step_names(frame, build)

    first_items = frame.drop_duplicates("item")
    items = first_items["item"].tolist()
    item_first_ts = first_items["ts"].to_numpy()
    first_users = frame.drop_duplicates("user")
    output.write_lines(output.join(staging, "vocab", "users.txt"), first_users["user"])
    output.write_lines(output.join(staging, "vocab", "items.txt"), items)
    item_categories = {}
    if build.row_format.columns.categories is not None:
        item_categories = {i: c for i, c in zip(items, first_items["categories"]) if c}
        output.write_lines(output.join(staging, "vocab", "categories.txt"), dict.fromkeys(
            c for i in items for c in item_categories.get(i, ())))

    stats = {"rows_in": rows_in, "rows_rejected": len(rejected), "rows_parsed": len(parsed),
             "rows_out": len(frame), "vocab/users": len(first_users), "vocab/items": len(items)}
    for kind, firsts in (("users", first_users), ("items", first_items)):
        for step, count in firsts["step"].value_counts().items():
            stats[f"new_{kind}/{step}"] = int(count)

    if o.protocol == "a":
        records = [(s, schema.interaction_example(u, i, int(t), int(q),
                                                  None if pd.isna(r) else float(r), c or None))
                   for s, u, i, t, q, r, c in zip(frame["step"], frame["user"], frame["item"],
                                                  frame["ts"], frame["seq"], frame["rating"],
                                                  frame["categories"])]
        candidates = _ranking_records(frame, build, items, item_first_ts, stats)
        for name, rows in candidates.items():
            _write_tfrecords(output.join(staging, "candidates", name,
                                         "part-00000-of-00001.tfrecord"),
                             (record for record, _ in rows))
            output.write_lines(output.join(staging, "candidates", f"{name}.csv"), [
                schema.candidate_csv_header(o.negatives),
                *(schema.csv_line(row) for _, row in rows)])
    else:
        records = _labelled_records(frame, build, items, item_first_ts, item_categories,
                                    stats)

    by_step: dict[str, list] = {}
    for step, record in records:
        by_step.setdefault(step, []).append(record)
    for step, group in by_step.items():
        _write_tfrecords(output.join(staging, "periods", f"{step}-00000-of-00001.tfrecord"),
                         group)
    # Rows per step and their time span, from the frame (sampled negatives share their
    # positive's step and timestamp, so they only add to the row count).
    spans = frame.groupby("step")["ts"].agg(["min", "max"])
    for step, span in spans.iterrows():
        stats[f"rows/{step}"] = len(by_step[step])
        stats[f"start_ts/{step}"] = int(span["min"])
        stats[f"end_ts/{step}"] = int(span["max"])
    output.write_json(output.join(staging, manifest.STATS), stats)
