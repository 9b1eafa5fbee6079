"""Protocol A data in memory: interactions as rows, their histories and time steps.

A protocol A period dataset stores one interaction per example (user, item, ts, seq)
in per-time-step files of the train, val and test windows, plus candidate lists for
val and test. Training needs, per interaction, the user's history strictly before it,
and the time step it belongs to; evaluation needs every user's items before any t.
This module reads them once into NumPy (rows: vocabulary rank + 1, 0 = padding).
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from tfmeta.data import timesteps
from tfmeta.data.periods import PeriodDataset


def string_lookup(vocabulary: Sequence[str],
                  name: Optional[str] = None) -> tf.keras.layers.StringLookup:
    """Raw ids -> rows: rank r -> r + 1; unknown ids and '' -> 0.

    The vocabulary goes in as a tensor: Keras tracks a Python list attribute element by
    element and walks it on every eager call (29 ms a call at 60,000 ids, 0.6 ms as a
    tensor; benchmarks/evaluation_speed.py)."""
    return tf.keras.layers.StringLookup(vocabulary=tf.constant(list(vocabulary), tf.string),
                                        num_oov_indices=1, mask_token=None, output_mode="int",
                                        name=name)


@dataclasses.dataclass
class Interactions:
    """Interactions sorted by (ts, seq). `step` numbers the time steps 0, 1, ... in
    time order; `history[rows]` gives those rows' [len(rows), max_len] items of the same
    user strictly before ts, oldest first, left-padded with 0 (`Histories`)."""

    users: np.ndarray
    items: np.ndarray
    ts: np.ndarray
    step: np.ndarray
    step_labels: list
    history: "Histories"

    def __len__(self) -> int:
        return len(self.users)

    @property
    def num_steps(self) -> int:
        return len(self.step_labels)

    def select(self, mask) -> "Interactions":
        return dataclasses.replace(self, users=self.users[mask], items=self.items[mask],
                                   ts=self.ts[mask], step=self.step[mask],
                                   history=self.history.select(mask))

    def warm_items(self) -> np.ndarray:
        return np.unique(self.items)


def read_interactions(data: PeriodDataset, windows: Sequence[str]) -> dict:
    """Columns user, item (rows), ts, seq and period (1-based index) of the windows."""
    users, items = (string_lookup(data.vocabulary(k)) for k in ("users", "items"))
    columns = {k: [] for k in ("user", "item", "ts", "seq", "period")}
    for period in data.periods:
        if period["window"] not in windows:
            continue
        for batch in data.dataset(periods=[period["index"]], batch_size=65536,
                                  shuffle=False):
            columns["user"].append(users(batch["user"]).numpy())
            columns["item"].append(items(batch["item"]).numpy())
            columns["ts"].append(batch["ts"].numpy())
            columns["seq"].append(batch["seq"].numpy())
            columns["period"].append(np.full(len(columns["ts"][-1]), period["index"]))
    out = {k: (np.concatenate(v) if v else np.zeros(0, np.int64)) for k, v in columns.items()}
    order = np.lexsort((out["seq"], out["ts"]))
    return {k: v[order] for k, v in out.items()}


def step_keys(ts: np.ndarray, periods: np.ndarray, granularity: Optional[str]) -> np.ndarray:
    """A sortable time-step key per row: the dataset's own period (None), or a calendar
    step of `granularity` (day, week, month, quarter)."""
    if granularity is None:
        return np.asarray(periods)
    if granularity not in timesteps.CALENDAR:
        raise ValueError(f"granularity must be one of {timesteps.CALENDAR} (or None for "
                         f"the dataset's own time steps), not {granularity!r}")
    unique, inverse = np.unique(ts, return_inverse=True)
    return np.array([timesteps.step_label(int(t), granularity) for t in unique])[inverse]


class Histories:
    """Every row's history, gathered when asked for: O(N) memory where the [N, max_len]
    matrix would take max_len times more (3.6 GB of int64 at 9M rows and 50 items).

    Rows are in time order. Each row keeps where its user's rows start and where the
    rows of its own timestamp start in the user-sorted order; its history is the (at
    most max_len) items in between (rows of equal ts are not each other's history).
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, ts: np.ndarray, max_len: int):
        self.max_len = int(max_len)
        n = len(users)
        order = np.argsort(users, kind="stable")  # each user's rows, still in time order
        sorted_users, sorted_ts = users[order], ts[order]
        positions = np.arange(n)
        new_user = np.ones(n, bool)
        new_user[1:] = sorted_users[1:] != sorted_users[:-1]
        new_ts = new_user.copy()
        new_ts[1:] |= sorted_ts[1:] != sorted_ts[:-1]
        self.items = items[order]
        self.start = np.empty(n, np.int64)
        self.end = np.empty(n, np.int64)
        self.start[order] = np.maximum.accumulate(np.where(new_user, positions, 0))
        self.end[order] = np.maximum.accumulate(np.where(new_ts, positions, 0))

    def __len__(self) -> int:
        return len(self.start)

    def __getitem__(self, rows) -> np.ndarray:
        """[len(rows), max_len] int64 (rows: indices or a boolean mask)."""
        start, end = self.start[rows], self.end[rows]
        columns = end[:, None] - self.max_len + np.arange(self.max_len)
        picked = self.items[np.maximum(columns, 0)] if len(self.items) else columns
        return np.where(columns >= start[:, None], picked, 0).astype(np.int64)

    def select(self, rows) -> "Histories":
        """The histories of a subset of rows (still computed from every row)."""
        subset = object.__new__(Histories)
        subset.max_len, subset.items = self.max_len, self.items
        subset.start, subset.end = self.start[rows], self.end[rows]
        return subset


def histories(users: np.ndarray, items: np.ndarray, ts: np.ndarray,
              max_len: int) -> np.ndarray:
    """[N, max_len]: for each row (sorted by time), the same user's items strictly
    before its ts (rows of equal ts are not each other's history)."""
    return Histories(users, items, ts, max_len)[np.arange(len(users))]


def load(data: PeriodDataset, windows: Sequence[str], max_len: int,
         granularity: Optional[str] = None, columns: Optional[dict] = None) -> Interactions:
    """The windows' interactions; `columns` = `read_interactions` of these windows or
    more, when already read (its rows of the windows are kept, in order)."""
    if columns is None:
        columns = read_interactions(data, windows)
    else:
        wanted = [p["index"] for p in data.periods if p["window"] in windows]
        keep = np.isin(columns["period"], wanted)
        columns = {k: v[keep] for k, v in columns.items()}
    labels, step = np.unique(step_keys(columns["ts"], columns["period"], granularity),
                             return_inverse=True)
    labels = list(labels)
    if granularity is None:  # name the steps as the dataset does
        names = {p["index"]: p["name"] for p in data.periods}
        labels = [names[int(k)] for k in labels]
    return Interactions(users=columns["user"], items=columns["item"], ts=columns["ts"],
                        step=step.astype(np.int64),
                        step_labels=[str(k) for k in labels],
                        history=Histories(columns["user"], columns["item"], columns["ts"],
                                          max_len))


class UserTimelines:
    """Every user's items in time order, to answer "which items did u touch before t"
    (the full-ranking exclusions of PROTOCOLS.md A.8)."""

    def __init__(self, users: np.ndarray, items: np.ndarray, ts: np.ndarray):
        order = np.lexsort((ts, users))
        self.users, self.items, self.ts = users[order], items[order], ts[order]
        self.starts = np.searchsorted(self.users, np.arange(self.users.max(initial=0) + 2))

    def before(self, user: int, t: int) -> np.ndarray:
        if user + 1 >= len(self.starts):
            return np.zeros(0, np.int64)
        lo, hi = self.starts[user], self.starts[user + 1]
        return self.items[lo:lo + np.searchsorted(self.ts[lo:hi], t, side="left")]

    def mask(self, users: np.ndarray, ts: np.ndarray, num_columns: int) -> np.ndarray:
        """[B, num_columns] True where the column's item was touched before t."""
        out = np.zeros((len(users), num_columns), bool)
        for b, (u, t) in enumerate(zip(users, ts)):
            out[b, self.before(int(u), int(t))] = True
        return out
