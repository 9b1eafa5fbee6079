"""Benchmark reports: one JSON of per-dataset sections, and the markdown rendered from it.

Several invocations may update one report at once (e.g. one per dataset, each for hours):
each merges its sections into the report as it is on disk at that moment, under a lock,
so that one invocation's write does not overwrite what another wrote since it started.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import sys
from typing import Callable, Iterable, Optional

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository
RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")  # the committed reports


def portable(value):
    """The value with this machine's paths made relative to the repository (results
    are committed; they must not name where this checkout lives)."""
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v) for v in value]
    if isinstance(value, str):
        return value.replace(sys.executable, "python").replace(ROOT + os.sep, "")
    return value


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


def run_code(run: dict, recorded: bool = True) -> Optional[str]:
    """The library code behind a run record ({"metrics", "process"}): the digests its
    metrics.json `code` lists ("a then b" when a resumed run crossed a code change), or,
    for runs from before tfmeta recorded its code (or with recorded=False), the digest
    the benchmark took of its list of sources when it started the run."""
    code = run["metrics"].get("code") if recorded else None
    if code:
        return " then ".join(c["digest"] for c in code)
    return run["process"].get("source")


def run_marks(process: dict) -> str:
    """What a runs table says after a run's name about its process record: " (resumed)"
    for a run continued after a kill, " (folder gone)" for one taken from the report."""
    return "".join(f" ({mark})" for mark, on in (("resumed", process.get("resumed")),
                                                 ("folder gone", process.get("folder_gone")))
                   if on)


def process_cells(run: dict) -> list:
    """A runs table's process columns of a run record: process s, CPU s, CPU / wall, load
    after and the code behind it ("n/a" each for runs from before they were measured)."""
    pr = run["process"]
    if not pr.get("process_seconds"):
        return ["n/a"] * 5
    return [f"{pr['process_seconds']:.0f}", f"{pr['cpu_seconds']:.0f}",
            f"{pr['cpu_seconds'] / pr['process_seconds']:.2f}",
            f"{pr['loadavg_after'][0]:.2f}", run_code(run) or "n/a"]


def code_lines(runs: dict, sources: str, notes: Iterable[str] = ()) -> list:
    """A report's lines on the code its runs ({name: run record}) ran: one line when
    all ran the same, else a warning naming each version's runs, then `notes` (what the
    benchmark's user checked about the difference). Runs compare by the code they
    recorded when all of them did, else by the benchmark's digest of `sources`."""
    recorded = all(r["metrics"].get("code") for r in runs.values())
    what = "tfmeta modules they imported (metrics.json `code`)" if recorded else sources
    versions = {}
    for name, r in runs.items():
        code = run_code(r, recorded)
        if code:
            versions.setdefault(code, []).append(name)
    if len(versions) <= 1:
        return [f"- All runs ran the same {what} (digest {code})." for code in versions]
    return [f"- **Warning**: the runs ran {len(versions)} different versions of the {what} "
            "(the library was edited while the benchmark ran):",
            *(f"  - `{code}`: {len(names)} runs ({', '.join(names)})"
              for code, names in sorted(versions.items())),
            *(f"  - {note}" for note in notes)]


# ------------------------------------------------------------------ table cells

def stats(values) -> dict:
    """Mean, sample std (None for one value), count and the values, NaN and None left
    out."""
    values = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not values:
        return {"mean": None, "std": None, "n": 0, "values": []}
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return {"mean": float(np.mean(values)), "std": std, "n": len(values), "values": values}


def pm(summary: dict, fmt: str = ".4f") -> str:
    """A `stats` summary as "mean ± std"."""
    if summary["mean"] is None:
        return "n/a"
    if summary["std"] is None:
        return f"{summary['mean']:{fmt}}"
    return f"{summary['mean']:{fmt}} ± {summary['std']:{fmt}}"


def pct(summary: dict) -> str:
    """A `stats` summary of relative changes as "+m% ± s"."""
    if summary["mean"] is None:
        return "n/a"
    if summary["std"] is None:
        return f"{100 * summary['mean']:+.2f}%"
    return f"{100 * summary['mean']:+.2f}% ± {100 * summary['std']:.2f}"


def bold(text: str, on: bool) -> str:
    return f"**{text}**" if on else text


def pyplot():
    """matplotlib's pyplot on the Agg backend: benchmarks write PNGs, with no display."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_png(fig, path: str) -> None:
    """Lay a figure out, write it at the reports' 110 dpi and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
