"""A run directory's bookkeeping, shared by the protocol drivers."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys

from tfmeta import __version__

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


def read_record(run_dir: str) -> dict:
    """A run's record: metrics.json once it finished, else progress.json (both hold its
    options); raises for a folder that holds neither."""
    for name in ("metrics.json", PROGRESS):
        path = os.path.join(run_dir, name)
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
    raise FileNotFoundError(f"{run_dir} holds no metrics.json or progress.json: not a "
                            "tfmeta run directory (tfmeta train --out RUN_DIR)")


def run_identity(protocol: str, data, options) -> dict:
    """The keys that say which run this is, in progress.json from the start as in
    metrics.json at the end: an export of a run still training says them too."""
    return {"protocol": protocol, "dataset": data.manifest.get("dataset"),
            "method": options.method, "seed": options.seed,
            "periods_digest": periods_digest(data.manifest)}


# What a manifest says of when, where and how a build ran rather than of what it holds:
# left out of its digest, so that the same input built with the same options (again, or
# on another machine) is the same build. Beam writes the same records in another order.
_BUILD_CIRCUMSTANCES = ("created", "seconds", "builder")
_WHERE_OPTIONS = ("input", "out", "overwrite", "data_dir", "cache_dir")


def periods_digest(manifest: dict) -> str:
    """A short digest of what a period dataset holds: which build a run read. Its input's
    checksums, the build's options and what it wrote count; its paths and time do not.
    Periods rebuilt in place (`--overwrite`) from other data or options get another one."""
    content = {k: v for k, v in manifest.items() if k not in _BUILD_CIRCUMSTANCES}
    source = manifest.get("input") or {}
    content["input"] = {**{k: v for k, v in source.items() if k != "paths"},
                        "sha256": sorted((source.get("sha256") or {}).values())}
    content["options"] = {k: v for k, v in (manifest.get("options") or {}).items()
                          if k not in _WHERE_OPTIONS}
    return _digest(content)


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def is_digest_of(digest: str, manifest: dict) -> bool:
    """Whether a run's recorded `periods_digest` is that of this build (`manifest`). Runs
    recorded before the digest left the build's time out took the whole manifest's: they
    match the very build they read, where it is still there."""
    return digest in (periods_digest(manifest), _digest(manifest))


RESUME_ADVICE = ("Resume it on the periods it started on, or start a new run with another "
                 "--out")
EXPORT_ADVICE = ("Export it with the build it trained on (--periods DIR): with another "
                 "build's ids its model would serve the wrong items")


def check_same_periods(record: dict, data, run_dir: str, advice: str = RESUME_ADVICE) -> None:
    """A run's checkpoints go with the build of the periods it trained on (their rows and
    ids): resuming or exporting it with another build is refused. Runs from before the
    digest was recorded pass."""
    started, now = record.get("periods_digest"), periods_digest(data.manifest)
    if started is not None and not is_digest_of(started, data.manifest):
        raise ValueError(f"{run_dir} was trained on another build of its periods (manifest "
                         f"digest {started}, these {now}): they were rebuilt since. {advice}")


def write_json(path: str, value) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2)
    os.replace(tmp, path)  # never a half-written file where a reader looks


def check_same_options(state: dict, options, out: str) -> None:
    """A resumed run must continue with the options it was started with: the same
    checkpoints trained on with others would be a mix that no single run gives."""
    started = state.get("options")
    given = json.loads(json.dumps(dataclasses.asdict(options)))
    if started is None or started == given:
        return
    changed = ", ".join(f"{k} {started.get(k)!r} -> {given.get(k)!r}"
                        for k in sorted(set(started) | set(given))
                        if started.get(k) != given.get(k))
    raise ValueError(f"{out} was started with other options ({changed}): resume it with "
                     "the options it was started with, or choose another --out")


def code_version() -> dict:
    """The tfmeta code this process runs: a digest of the files of every tfmeta module it
    has imported. Two runs with the same digest ran the same library code, whatever was
    edited elsewhere in the tree (a list of files to hash would miss what it forgot)."""
    digest, modules = hashlib.sha256(), 0
    for name in sorted(n for n in sys.modules if n == "tfmeta" or n.startswith("tfmeta.")):
        path = getattr(sys.modules[name], "__file__", None)
        if not path:
            continue  # a namespace package has no file
        with open(path, "rb") as f:
            digest.update(name.encode() + hashlib.sha256(f.read()).digest())
        modules += 1
    return {"tfmeta": __version__, "digest": digest.hexdigest()[:12], "modules": modules}


def record_code(state: dict) -> None:
    """Lists the code now running in state["code"], once per version: a run resumed
    under other code lists every version that trained it, in order. A run killed before
    runs recorded their code starts the list with an "unrecorded" version."""
    code = state.setdefault("code", [{"digest": "unrecorded"}] if state["seconds"] else [])
    now = code_version()
    if not code or code[-1]["digest"] != now["digest"]:
        code.append(now)


def start_progress(progress_path: str, fresh: dict, resuming: bool, protocol: str, data,
                   options, out: str) -> dict:
    """A run's progress record as it starts: `fresh` for a new run; when `resuming`, the
    killed run's, refused if its options or its periods' build differ. Either way it says
    which run it is and lists the code now running."""
    state = fresh
    if resuming:
        with open(progress_path) as f:
            state = json.load(f)
        check_same_options(state, options, out)
        check_same_periods(state, data, out)
    state.update(run_identity(protocol, data, options))  # also into an older run's progress
    record_code(state)
    return state
