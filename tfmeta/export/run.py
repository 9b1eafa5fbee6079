"""`tfmeta export`: a trained run directory -> a new version under an export root.

    version_dir = export_run("runs/leaprec", "saved_models/leaprec", keep=5)

Protocol A runs export their test-phase model (trained on train + validation;
tfmeta.export.ranking), protocol B runs the model their method served after the last
completed period, or after `period` (tfmeta.export.ctr). See tfmeta.export.versions for
the version layout, models.config and atomicity. Each version also holds, beside the
SavedModel, its TF Serving warmup requests (tfmeta.export.warmup) and ABOUT_FILE, the run
it came from: method, seed, options, the code that trained it and its figures.
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
from typing import Optional

import tensorflow as tf

from tfmeta import __version__
from tfmeta.export import versions
from tfmeta.export.warmup import write_warmup
from tfmeta.training.rundir import read_record

SAVE_OPTIONS = tf.saved_model.SaveOptions(experimental_custom_gradients=False)


ABOUT_FILE = os.path.join("assets.extra", "tfmeta.json")
# What an export says about its run: the keys of metrics.json (progress.json for a
# protocol B run still training) that tell which model this is and how it scored.
ABOUT_KEYS = ("protocol", "dataset", "periods_digest", "method", "seed", "options", "code",
              "val", "test")


def save_server(server: tf.Module, path: str, about: Optional[dict] = None) -> None:
    """The SavedModel, its TF Serving warmup requests (tfmeta.export.warmup) and, given
    `about`, ABOUT_FILE: the tfmeta version, the export's time and `about` (the run)."""
    tf.saved_model.save(server, path, signatures=server.signatures(), options=SAVE_OPTIONS)
    write_warmup(path, server.warmup_inputs())
    if about is not None:
        exported = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        with tf.io.gfile.GFile(os.path.join(path, ABOUT_FILE), "w") as f:
            json.dump({"tfmeta": __version__, "exported": exported, **about}, f, indent=2)


def describe_run(run_dir: str, period: Optional[int] = None) -> dict:
    """ABOUT_FILE's account of a run: where it is, ABOUT_KEYS of its record and, for
    protocol B, the period whose served model is exported."""
    return describe_record(read_record(run_dir), run_dir, period)


def describe_record(record: dict, run_dir: str, period: Optional[int] = None) -> dict:
    """describe_run of a record in hand (a driver exporting as it trains)."""
    about = {"run_dir": os.path.abspath(run_dir), "protocol": _protocol(record),
             **{k: record[k] for k in ABOUT_KEYS if k in record}}
    if about["protocol"] == "b":
        from tfmeta.training.incremental import served_period
        about["period"] = served_period(run_dir, period)
    return about


def _protocol(record: dict) -> str:
    """metrics.json says; a progress.json of protocol B has per-period rows."""
    return record.get("protocol") or ("b" if "per_period" in record else "a")


def build_server(run_dir: str, assets_dir: str, periods_dir: Optional[str] = None,
                 top_k: int = 100, period: Optional[int] = None) -> tf.Module:
    """The exportable module of a run (vocabulary files are written to assets_dir)."""
    if _protocol(read_record(run_dir)) == "a":
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
                  name: Optional[str] = None, server_base_path: Optional[str] = None,
                  about: Optional[dict] = None) -> str:
    """build(assets_dir) -> a server module, published as the next version under
    export_root (tfmeta.export.versions) with `about` its run (save_server); returns
    the version's directory."""
    work = tempfile.mkdtemp(prefix="tfmeta-export-")
    try:
        server = build(work)
        version = versions.publish(export_root, lambda tmp: save_server(server, tmp, about),
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
                         export_root, keep, name, server_base_path,
                         about=describe_run(run_dir, period))
