"""Finishing a period build: checks, manifest.json, and publishing the directory.

Every builder (the Beam pipeline, the plain reference) writes its counters to
`_stats.json` in the staging directory; `finish` turns them into the manifest, enforces
--max-bad-fraction, and moves the directory into place.
"""
from __future__ import annotations

import datetime
import hashlib
import json

from apache_beam.io.filesystems import FileSystems

from pipelines import output
from pipelines.options import ResolvedBuild
from tfmeta.data import readers, schema, timesteps

STATS = "_stats.json"
# Protocol B schedule (PROTOCOLS.md B.4), as 1-based period indices.
SCHEDULE_B = {"pretrain": list(range(1, 11)), "update": list(range(11, 31)),
              "val": [22, 23, 24], "test": list(range(25, 32))}


class TooManyBadRows(ValueError):
    pass


def bump(stats: dict, key: str, by: int = 1) -> None:
    """Adds to one counter of a builder's statistics."""
    stats[key] = stats.get(key, 0) + by


def check_headers(build: ResolvedBuild) -> set:
    """Fails before any work if a file is missing or lacks the needed columns; returns
    the roles (rating, categories, ...) that every input file provides."""
    return readers.input_roles(build.paths, build.row_format)


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with FileSystems.open(path, compression_type="uncompressed") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def first_rejections(staging: str, limit: int = 5) -> list[dict]:
    found = []
    for path in output.list_files(output.join(staging, "rejected"), "*.jsonl"):
        with FileSystems.open(path) as f:
            found.extend(json.loads(line) for line in f.read().decode().splitlines() if line)
    return sorted(found, key=lambda r: (r["file"], r["line"]))[:limit]


def _relative(staging: str, paths) -> list[str]:
    prefix = staging.rstrip("/") + "/"
    return [p[len(prefix):] if p.startswith(prefix) else p for p in paths]


def _step_order(name: str) -> tuple:
    window, _, label = name.partition("-")
    if window in timesteps.WINDOWS:
        return timesteps.WINDOWS.index(window), label
    return -1, name


def compose(build: ResolvedBuild, staging: str, stats: dict, builder: str,
            seconds: float) -> dict:
    o = build.options
    steps = sorted({key.split("/", 1)[1] for key in stats if key.startswith("rows/")},
                   key=_step_order)
    periods, users_seen, items_seen = [], 0, 0
    for index, step in enumerate(steps, start=1):
        users_seen += stats.get(f"new_users/{step}", 0)
        items_seen += stats.get(f"new_items/{step}", 0)
        entry = {"index": index, "name": step,
                 "start_ts": stats[f"start_ts/{step}"], "end_ts": stats[f"end_ts/{step}"],
                 "rows": stats[f"rows/{step}"],
                 "files": _relative(staging, output.list_files(
                     output.join(staging, "periods"), f"{step}-*.tfrecord")),
                 "users_seen": users_seen, "items_seen": items_seen}
        if o.protocol == "a":
            entry["window"], _, entry["label"] = step.partition("-")
        else:
            entry["positives"] = stats.get(f"positives/{step}", 0)
        periods.append(entry)

    has_categories = build.row_format.columns.categories is not None
    vocab = {"users": "vocab/users.txt", "items": "vocab/items.txt",
             "sizes": {"users": stats.get("vocab/users", 0),
                       "items": stats.get("vocab/items", 0)}}
    if has_categories:
        vocab["categories"] = "vocab/categories.txt"
    rows_in, rows_out = stats.get("rows_in", 0), stats.get("rows_out", 0)
    rejected = stats.get("rows_rejected", 0)
    result = {
        "schema_version": schema.SCHEMA_VERSION,
        "protocol": o.protocol,
        "dataset": build.dataset,
        "input": {"paths": list(build.paths),
                  "sha256": {p: sha256(p) for p in build.paths},
                  "format": build.row_format.name,
                  "columns": build.row_format.columns.roles()},
        "options": o.to_json(),
        "builder": builder,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "feedback": "explicit" if build.explicit else "implicit",
        "granularity": build.granularity,
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_rejected": rejected,
        "rows_deduplicated": stats.get("rows_parsed", 0) - rows_out,
        "rejected_files": _relative(staging, output.list_files(
            output.join(staging, "rejected"), "*.jsonl")),
        "has_rating": "rating" in check_headers(build),
        "has_categories": has_categories,
        "vocab": vocab,
        "periods": periods,
    }
    if o.protocol == "a":
        w = build.windows
        result["window_bounds"] = {"cut": w.cut, "val_months": w.val_months,
                                   "val_start": w.val_start, "test_start": w.test_start}
        result["windows"] = {name: sum(p["rows"] for p in periods if p["window"] == name)
                             for name in timesteps.WINDOWS}
        result["instances"] = {w_: stats.get(f"instances/{w_}", 0) for w_ in ("val", "test")}
        result["excluded"] = {w_: {"cold_user": stats.get(f"excluded_cold_user/{w_}", 0),
                                   "cold_item": stats.get(f"excluded_cold_item/{w_}", 0)}
                              for w_ in ("val", "test")}
        result["short_candidate_lists"] = {w_: stats.get(f"short_lists/{w_}", 0)
                                           for w_ in ("val", "test")}
        result["candidates"] = {
            w_: {"tfrecord": _relative(staging, output.list_files(
                     output.join(staging, "candidates", w_), "*.tfrecord")),
                 "csv": f"candidates/{w_}.csv"}
            for w_ in ("val", "test")}
        result["max_len"] = o.max_len
    else:
        result["history_len"] = o.history_len
        result["negatives_unavailable"] = stats.get("negatives_unavailable", 0)
        result["schedule"] = SCHEDULE_B
    return result


def check_bad_rows(result: dict, staging: str, out: str, max_fraction: float) -> None:
    rows_in, rejected = result["rows_in"], result["rows_rejected"]
    if rows_in and rejected <= max_fraction * rows_in:
        return
    failed = output.set_aside(staging, out)
    if not rows_in:
        raise TooManyBadRows(f"no rows read from {result['input']['paths']}")
    examples = "\n".join(f"  {r['file']}:{r['line']}: {r['reason']}: {r['text'][:80]!r}"
                         for r in first_rejections(failed))
    raise TooManyBadRows(
        f"{rejected} of {rows_in} rows ({rejected / rows_in:.2%}) are malformed, more than "
        f"--max-bad-fraction={max_fraction}. First bad rows:\n{examples}\n"
        f"All of them, with reasons: {output.join(failed, 'rejected')}/*.jsonl. Fix the "
        "input (or --format / --columns), or raise --max-bad-fraction.")


def finish(build: ResolvedBuild, staging: str, builder: str, seconds: float) -> dict:
    stats = output.read_json(output.join(staging, STATS))
    result = compose(build, staging, stats, builder, seconds)
    check_bad_rows(result, staging, build.options.out, build.options.max_bad_fraction)
    FileSystems.delete([output.join(staging, STATS)])
    assert result["rows_in"] == (result["rows_out"] + result["rows_rejected"]
                                 + result["rows_deduplicated"]), "row accounting broken"
    output.write_json(output.join(staging, output.MANIFEST), result)
    output.publish(staging, build.options.out, build.options.overwrite)
    return result
