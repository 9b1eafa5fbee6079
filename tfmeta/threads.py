"""TensorFlow's thread pools for this process, for runs that share a machine.

TensorFlow gives every process an intra-op pool (threads within one op) and an inter-op
pool (ops at once), each one thread per core by default. Two runs on one machine then
run twice as many busy threads as there are cores; `--threads N` caps both pools of a
run at N, so that runs can split the cores between them instead
(benchmarks/results/threads.md measures whether that pays). The pools are fixed when
TensorFlow runs its first op, so `limit` must come before anything else.
"""
from __future__ import annotations

from typing import Optional

import tensorflow as tf


def limit(threads: Optional[int]) -> None:
    """Caps the intra-op and inter-op pools at `threads` each; None: TF's defaults."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, not {threads}")
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as e:
        raise RuntimeError(
            f"cannot set TensorFlow's thread pools to {threads}: TensorFlow has already "
            "run an op in this process. Call tfmeta.threads.limit before anything else "
            "(the command line does), or start a new process") from e


def describe() -> dict:
    """The pool sizes this process asked for (0: TF's default, one per core)."""
    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
