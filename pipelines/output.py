"""An output directory that appears complete or not at all.

A build writes into `<out>.partial-<id>` beside the destination, writes manifest.json
last, and renames the directory into place. Readers treat a directory without
manifest.json as incomplete. On local disks the rename is atomic; on object stores
(gs://) Beam's FileSystems copies then deletes, and manifest.json is the marker.
"""
from __future__ import annotations

import json
import posixpath
import uuid

from apache_beam.io.filesystems import FileSystems

from tfmeta.data.periods import MANIFEST  # noqa: F401  (re-exported for writers)



class OutputExists(FileExistsError):
    pass


def join(*parts: str) -> str:
    return FileSystems.join(*parts) if "://" in parts[0] else posixpath.join(*parts)


def check_destination(out: str, overwrite: bool) -> None:
    if FileSystems.exists(out) and not overwrite:
        raise OutputExists(f"{out} already exists; pass --overwrite to replace it "
                           "(it is replaced only once the new build is complete)")


def new_staging_dir(out: str) -> str:
    staging = f"{out.rstrip('/')}.partial-{uuid.uuid4().hex[:8]}"
    FileSystems.mkdirs(staging)
    return staging


def write_json(path: str, value) -> None:
    with FileSystems.create(path) as f:
        f.write(json.dumps(value, indent=2, sort_keys=False).encode() + b"\n")


def read_json(path: str):
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode())


def write_lines(path: str, lines) -> None:
    with FileSystems.create(path) as f:
        for line in lines:
            f.write(line.encode() + b"\n")


def publish(staging: str, out: str, overwrite: bool) -> None:
    """Moves a complete staging directory to `out`, replacing an old build if allowed."""
    old = None
    if FileSystems.exists(out):
        check_destination(out, overwrite)
        old = f"{out.rstrip('/')}.old-{uuid.uuid4().hex[:8]}"
        FileSystems.rename([out], [old])
    FileSystems.rename([staging], [out])
    if old:
        FileSystems.delete([old])


def set_aside(staging: str, out: str) -> str:
    """Keeps a failed build's staging directory under a name that never looks complete."""
    failed = f"{out.rstrip('/')}.failed"
    if FileSystems.exists(failed):
        FileSystems.delete([failed])
    FileSystems.rename([staging], [failed])
    return failed


def discard(staging: str) -> None:
    if FileSystems.exists(staging):
        FileSystems.delete([staging])


def list_files(directory: str, pattern: str = "*") -> list[str]:
    """Sorted file paths under `directory` matching a glob pattern."""
    result = FileSystems.match([join(directory, pattern)])[0]
    return sorted(m.path for m in result.metadata_list)
