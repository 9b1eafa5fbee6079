"""The period datasets benchmarks read: a registered dataset's build under
RUNS_DIR/periods, made the first time a benchmark needs it and reused after."""
from __future__ import annotations

import os
import sys
import time

from benchmarks.reports import read_json


def build_once(dataset: str, protocol: str, runs_dir: str) -> tuple:
    """(folder, manifest, build seconds or None) of a dataset's periods under
    RUNS_DIR/periods, built the first time only."""
    from tfmeta.data.periods import MANIFEST
    out = os.path.join(runs_dir, "periods", dataset)
    path = os.path.join(out, MANIFEST)
    built_seconds = None
    if not os.path.exists(path):
        from pipelines.options import BuildOptions
        from pipelines.periods import build_periods
        print(f"building protocol {protocol.upper()} periods of {dataset} into {out} ...",
              file=sys.stderr, flush=True)
        started = time.perf_counter()
        # A folder without a manifest is not a finished build (builds publish atomically).
        build_periods(BuildOptions(input=dataset, protocol=protocol, out=out,
                                   overwrite=os.path.exists(out)))
        built_seconds = time.perf_counter() - started
    manifest = read_json(path)
    if manifest.get("protocol") != protocol or manifest.get("dataset") != dataset:
        raise SystemExit(f"{out} holds protocol {manifest.get('protocol')} periods of "
                         f"{manifest.get('dataset')}, not protocol {protocol} of {dataset}; "
                         "remove it or choose another --runs-dir")
    return out, manifest, built_seconds


def given_or_built(dataset: str, protocol: str, given, runs_dir: str) -> str:
    """The periods folder a benchmark reads: `given` (its --periods) when set, else the
    dataset's build under RUNS_DIR/periods (`build_once`)."""
    return given or build_once(dataset, protocol, runs_dir)[0]
