"""A run directory's bookkeeping, shared by the protocol drivers."""
from __future__ import annotations

import json
import os

PROGRESS = "progress.json"


def open_run_dir(out: str, resume: bool) -> str:
    """Creates `out` for a new run, or accepts it for --resume; returns the progress
    file's path. A finished or killed run is never overwritten by accident."""
    progress_path = os.path.join(out, PROGRESS)
    if os.path.exists(progress_path) and not resume:
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it "
                              "or choose another --out")
    os.makedirs(out, exist_ok=True)
    return progress_path


def write_json(path: str, value) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2)
    os.replace(tmp, path)  # never a half-written file where a reader looks
