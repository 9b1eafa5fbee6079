"""`tfmeta export`: a trained run directory -> a new version under an export root.

    version_dir = export_run("runs/leaprec", "saved_models/leaprec", keep=5)

Protocol A runs export their test-phase model (trained on train + validation;
tfmeta.export.ranking), protocol B runs the model their method served after the last
completed period, or after `period` (tfmeta.export.ctr). See tfmeta.export.versions for
the version layout, models.config and atomicity.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Optional

import tensorflow as tf

from tfmeta.export import versions
from tfmeta.export.warmup import write_warmup

SAVE_OPTIONS = tf.saved_model.SaveOptions(experimental_custom_gradients=False)


def save_server(server: tf.Module, path: str) -> None:
    """The SavedModel and its TF Serving warmup requests (tfmeta.export.warmup)."""
    tf.saved_model.save(server, path, signatures=server.signatures(), options=SAVE_OPTIONS)
    write_warmup(path, server.warmup_inputs())


def _protocol(run_dir: str) -> str:
    for name in ("metrics.json", "progress.json"):
        path = os.path.join(run_dir, name)
        if os.path.exists(path):
            with open(path) as f:
                content = json.load(f)
            if name == "metrics.json":
                return content["protocol"]
            return "b" if "per_period" in content else "a"
    raise FileNotFoundError(f"{run_dir} holds no metrics.json or progress.json: not a "
                            "tfmeta run directory (tfmeta train --out RUN_DIR)")


def build_server(run_dir: str, assets_dir: str, periods_dir: Optional[str] = None,
                 top_k: int = 100, period: Optional[int] = None) -> tf.Module:
    """The exportable module of a run (vocabulary files are written to assets_dir)."""
    if _protocol(run_dir) == "a":
        if period is not None:
            raise ValueError("--period applies to protocol B runs only")
        from tfmeta.export.ranking import RankingServer
        from tfmeta.training.ranking import load_trained
        scorer, data, _ = load_trained(run_dir, periods_dir)
        return RankingServer(scorer.models, data.vocabulary("users"),
                             data.vocabulary("items"), assets_dir, top_k)
    from tfmeta.export.ctr import CtrServer
    from tfmeta.training.incremental import load_served
    model = load_served(run_dir, period, periods_dir)
    return CtrServer(model, assets_dir)


def export_server(build, export_root: str, keep: Optional[int] = 5,
                  name: Optional[str] = None, server_base_path: Optional[str] = None) -> str:
    """build(assets_dir) -> a server module, published as the next version under
    export_root (tfmeta.export.versions); returns the version's directory."""
    work = tempfile.mkdtemp(prefix="tfmeta-export-")
    try:
        server = build(work)
        version = versions.publish(export_root, lambda tmp: save_server(server, tmp),
                                   keep=keep, name=name, server_base_path=server_base_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return os.path.join(export_root, str(version))


def export_run(run_dir: str, export_root: str, periods_dir: Optional[str] = None,
               top_k: int = 100, keep: Optional[int] = 5, period: Optional[int] = None,
               name: Optional[str] = None, server_base_path: Optional[str] = None) -> str:
    """Exports a run as the next version under export_root; returns its directory."""
    return export_server(lambda assets: build_server(run_dir, assets, periods_dir, top_k,
                                                     period),
                         export_root, keep, name, server_base_path)
