"""What machine and software a benchmark ran on, for the header of its report."""
from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Sequence

import tfmeta


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _version(package: str):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def describe(packages: Sequence[str]) -> dict:
    """CPU, cores, memory, platform, and the versions of `packages` (keys with '-'
    turned into '_', e.g. 'tf-keras' -> 'tf_keras')."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = None
    info = {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_bytes": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    info.update({p.replace("-", "_"): _version(p) for p in packages})
    info["tfmeta"] = tfmeta.__version__
    return info
