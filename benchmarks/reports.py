"""Benchmark reports: one JSON of per-dataset sections, and the markdown rendered from it.

Several invocations may update one report at once (e.g. one per dataset, each for hours):
each merges its sections into the report as it is on disk at that moment, under a lock,
so that one invocation's write does not overwrite what another wrote since it started.
"""
from __future__ import annotations

import fcntl
import json
import os
from typing import Callable


def read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path: str, value) -> None:
    """Atomic: a reader sees the old file or the new one, never half of one."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def write_text(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def update_report(json_path: str, md_path: str, benchmark: str,
                  update: Callable[[dict], None], render: Callable[[dict], str]) -> dict:
    """Read the report at `json_path` as it is now (or start an empty one), let `update`
    change it in place, write it and its markdown `render(report)`; returns the report.
    An exclusive lock on `json_path + '.lock'` serialises concurrent invocations."""
    with open(f"{json_path}.lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        report = (read_json(json_path) if os.path.exists(json_path)
                  else {"benchmark": benchmark, "datasets": {}})
        update(report)
        write_json(json_path, report)
        write_text(md_path, render(report) + "\n")
    return report
