"""Benchmark runs as subprocesses: one `tfmeta` command measured and logged, and a pool
that runs many of them a few at a time behind one progress bar.

A run is any object with `out` (its folder), `metrics_path` (the metrics.json its
command writes when it finishes) and `label` (how messages name it).
"""
from __future__ import annotations

import concurrent.futures
import datetime
import os
import shlex
import sys
from typing import Callable, Sequence

from tqdm.auto import tqdm

from benchmarks import machine as machine_info
from benchmarks.reports import ROOT, read_json, write_json
from tfmeta.progress import Progress

RUN_RECORD = "benchmark-run.json"   # process figures of a run, beside its metrics.json


def folder_gone(record: dict) -> dict:
    """A finished run's report record, reused after its run folder is gone (runs/ is
    git-ignored: a new machine, a cleaned checkout), marked so in its process record."""
    return dict(record, process=dict(record["process"], folder_gone=True))


def launch(run, args: Sequence[str], **fields) -> dict:
    """Runs `python *args` from the repository root, its output appended to the run's
    train.log; returns its record: the command, `fields`, the CPU model, the load before,
    the start time and `machine.run_measured`'s figures. The record is also written beside a
    finished run's metrics.json (RUN_RECORD)."""
    os.makedirs(run.out, exist_ok=True)
    record = {"command": shlex.join(["python", *args]), **fields,
              "cpu_model": machine_info.cpu_model(),  # sessions may run on other machines
              "loadavg_before": list(os.getloadavg()),
              "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
                  timespec="seconds")}
    with open(os.path.join(run.out, "train.log"), "a", encoding="utf-8") as log:
        log.write(f"$ {record['command']}\n")
        log.flush()
        record.update(machine_info.run_measured([sys.executable, *args], ROOT, log))
    if finished(run, record):
        write_json(os.path.join(run.out, RUN_RECORD), record)
    return record


def finished(run, record: dict) -> bool:
    return record["returncode"] == 0 and os.path.exists(run.metrics_path)


def run_record(run) -> dict:
    """The RUN_RECORD of a finished run ({} for runs from before benchmarks kept one)."""
    path = os.path.join(run.out, RUN_RECORD)
    return read_json(path) if os.path.exists(path) else {}


def run_pool(todo: Sequence, start: Callable[[object], dict],
             done: Callable[[object, dict], str], *, total: int, reused: int,
             workers: int, desc: str, note: str = "") -> list:
    """Calls `start(run)` (which launches it and returns its record) for each of `todo`,
    `workers` at a time, behind a progress bar over `total` runs of which `reused` need
    no training (`note`: more on those); for each run that finished, `done(run, record)`
    gives the bar's text. Returns the runs that failed, each named on stderr."""
    print(f"{desc}: {total} runs ({reused} reused{note}), {workers} at a time",
          file=sys.stderr, flush=True)
    bar = Progress(total=total, initial=reused, desc=desc, unit="run", dynamic_ncols=True)
    failed = []
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = {pool.submit(start, run): run for run in todo}
        for future in concurrent.futures.as_completed(futures):
            run = futures[future]
            record = future.result()
            if finished(run, record):
                bar.set_postfix_str(done(run, record))
            else:
                failed.append(run)
                tqdm.write(f"FAILED: {run.label} (exit {record['returncode']}); see "
                           f"{os.path.join(run.out, 'train.log')}", file=sys.stderr)
            bar.update(1)
    bar.close()
    return failed
