"""Versioned, atomic SavedModel directories for TF Serving.

    version = publish("saved_models/leaprec", lambda tmp: tf.saved_model.save(m, tmp),
                      keep=5)

EXPORT_ROOT/VERSION/ with VERSION an integer one above the highest there. The export is
written into a hidden temporary directory beside the versions (TF Serving only loads
all-digit names) and renamed into place, so a server never sees a half-written
version; a crashed export leaves at most a `.tmp-*` directory, removed by the next
publish. EXPORT_ROOT/models.config (TF Serving's model_config_list, text format) is
rewritten atomically after each publish, and versions beyond `keep` (the oldest) are
deleted. Paths go through tf.io.gfile, so gs:// export roots work as local ones
(there a rename is a copy: point servers at versions only after publish returns).
"""
from __future__ import annotations

import os
import re
import uuid
from typing import Callable, Optional

import tensorflow as tf

CONFIG = "models.config"
TEMPORARY = ".tmp-"


def versions(root: str) -> list:
    """The published versions under root, ascending."""
    if not tf.io.gfile.isdir(root):
        return []
    return sorted(int(name.rstrip("/")) for name in tf.io.gfile.listdir(root)
                  if re.fullmatch(r"\d+/?", name))


def model_config(name: str, base_path: str, policy: str = "latest") -> str:
    """TF Serving's model_config_list for one model (text protobuf)."""
    return ("model_config_list {\n  config {\n"
            f"    name: \"{name}\"\n    base_path: \"{base_path}\"\n"
            "    model_platform: \"tensorflow\"\n"
            f"    model_version_policy {{ {policy} {{ }} }}\n"
            "  }\n}\n")


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.{TEMPORARY}{uuid.uuid4().hex}"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def publish(root: str, write: Callable[[str], None], keep: Optional[int] = 5,
            name: Optional[str] = None, server_base_path: Optional[str] = None) -> int:
    """Calls write(tmp_dir), renames tmp_dir to root/VERSION; returns VERSION.

    name: the model name in models.config (default: root's folder name);
    server_base_path: root as the server sees it (default: root's absolute path; e.g.
    /models/NAME inside a container). keep: versions to keep (None: all)."""
    if keep is not None and keep < 1:
        raise ValueError("keep must be at least 1 (or None to keep every version)")
    tf.io.gfile.makedirs(root)
    for stale in tf.io.gfile.listdir(root):  # what a crashed export left
        if stale.startswith(TEMPORARY):
            tf.io.gfile.rmtree(os.path.join(root, stale.rstrip("/")))
    version = (versions(root) or [0])[-1] + 1
    tmp = os.path.join(root, f"{TEMPORARY}{version}-{uuid.uuid4().hex}")
    try:
        write(tmp)
        tf.io.gfile.rename(tmp, os.path.join(root, str(version)))
    except BaseException:
        if tf.io.gfile.exists(tmp):
            tf.io.gfile.rmtree(tmp)
        raise
    if keep is not None:
        for old in versions(root)[:-keep]:
            tf.io.gfile.rmtree(os.path.join(root, str(old)))
    name = name or os.path.basename(os.path.normpath(root))
    base = server_base_path or (root if "://" in root else os.path.abspath(root))
    _write_atomically(os.path.join(root, CONFIG), model_config(name, base))
    return version
