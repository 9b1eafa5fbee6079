"""The period datasets benchmarks read: a registered dataset's build under
RUNS_DIR/periods, made the first time a benchmark needs it and reused after, or periods
the user built (a benchmark's --periods)."""
from __future__ import annotations

import functools
import os
import sys
import time

from typing import Optional

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


PROTOCOL_B_PERIODS = 31  # PROTOCOLS.md B: pre-train 1-10, update 11-30, score up to 31


def built_or_given(dataset: str, protocol: str, runs_dir: str,
                   given: Optional[str] = None) -> tuple:
    """(folder, manifest, build seconds or None): `given` (a benchmark's --periods), which
    must hold finished periods of `protocol`, else the dataset's `build_once`."""
    if not given:
        return build_once(dataset, protocol, runs_dir)
    return os.path.abspath(given), given_manifest(given, protocol), None


def given_or_built(dataset: str, protocol: str, given, runs_dir: str) -> str:
    """The periods folder a benchmark reads (`built_or_given`'s folder)."""
    return built_or_given(dataset, protocol, runs_dir, given)[0]


def given_manifest(periods: str, protocol: str) -> dict:
    from tfmeta.data.periods import MANIFEST
    path = os.path.join(periods, MANIFEST)
    if not os.path.exists(path):
        raise SystemExit(f"--periods {periods}: no {MANIFEST}; build periods with "
                         f"`tfmeta periods build --protocol {protocol} --out DIR` first")
    manifest = read_json(path)
    if manifest.get("protocol") != protocol:
        raise SystemExit(f"--periods {periods} holds protocol {manifest.get('protocol')} "
                         f"periods; this benchmark scores protocol {protocol.upper()} "
                         f"(build with --protocol {protocol})")
    count = len(manifest.get("periods", []))
    if protocol == "b" and count < PROTOCOL_B_PERIODS:
        raise SystemExit(f"--periods {periods} has {count} periods; protocol B scores "
                         f"periods up to {PROTOCOL_B_PERIODS} (build with --periods "
                         f"{PROTOCOL_B_PERIODS}, the default)")
    return manifest


def given_name(given: str, protocol: str) -> str:
    """How a report names periods it was given: their dataset, else the folder's name
    (a build of a file has no registered dataset name)."""
    return (given_manifest(given, protocol).get("dataset")
            or os.path.basename(os.path.abspath(given)) or "periods")


def given_dirs(benchmark: str, root: str) -> tuple:
    """(runs dir, results dir) of a benchmark run on --periods when the user names
    neither: beside each other under runs/ (git-ignored), so that a user's data never
    lands in, or replaces a section of, the committed benchmarks/results reports."""
    runs_dir = os.path.join(root, "runs", f"{benchmark}-periods")
    return runs_dir, os.path.join(runs_dir, "results")


@functools.lru_cache(maxsize=None)
def build_manifest(periods: str) -> dict:
    """The manifest of the build of `periods`, read once per invocation."""
    from tfmeta.data.periods import MANIFEST
    return read_json(os.path.join(periods, MANIFEST))


def read_another_build(metrics: dict, periods: str) -> bool:
    """Whether a run's metrics say it read another build of `periods` than the one there
    now (rebuilt since from other data or options): such a run is not reused. Runs from
    before the digest was recorded pass."""
    from tfmeta.training.rundir import is_digest_of
    digest = metrics.get("periods_digest")
    return digest is not None and not is_digest_of(digest, build_manifest(periods))


def report_read_this_build(recorded: Optional[dict], summary: dict) -> bool:
    """Whether the runs a benchmark report's dataset section holds read the build of its
    periods there now (`recorded`: the section's periods summary, `summary`: the
    benchmark's ensure_periods'). Every run a section holds read the one build it records
    (the benchmarks' load_run refuses others). Sections from before they recorded its
    digest are matched by what the build holds: the same rows in every period, window,
    candidate list and vocabulary."""
    if not recorded:
        return False
    if "digest" in recorded:
        return recorded["digest"] == summary["digest"]
    circumstances = {"built_seconds", "builder", "given", "dir", "path", "digest"}
    return all(recorded.get(k) == v for k, v in summary.items() if k not in circumstances)


def where_built(summary: dict) -> str:
    """How a report says where a benchmark's periods came from (`summary["given"]`)."""
    return "read from --periods" if summary.get("given") else "built once into"
