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


def string_lookup(vocabulary: Sequence[str]) -> tf.keras.layers.StringLookup:
    """Raw ids -> rows: rank r -> r + 1; unknown ids and '' -> 0."""
    return tf.keras.layers.StringLookup(vocabulary=list(vocabulary), num_oov_indices=1,
                                        mask_token=None, output_mode="int")


@dataclasses.dataclass
class Interactions:
    """Interactions sorted by (ts, seq). `step` numbers the time steps 0, 1, ... in
    time order; `history` [N, max_len] holds the user's items strictly before ts,
    oldest first, left-padded with 0."""

    users: np.ndarray
    items: np.ndarray
    ts: np.ndarray
    step: np.ndarray
    step_labels: list
    history: np.ndarray

    def __len__(self) -> int:
        return len(self.users)

    @property
    def num_steps(self) -> int:
        return len(self.step_labels)

    def select(self, mask) -> "Interactions":
        return dataclasses.replace(self, users=self.users[mask], items=self.items[mask],
                                   ts=self.ts[mask], step=self.step[mask],
                                   history=self.history[mask])

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


def step_keys(ts: np.ndarray, periods: np.ndarray, granularity: Optional[str]) -> list:
    """A sortable time-step key per row: the dataset's own period (None), or a calendar
    step of `granularity` (day, week, month, quarter)."""
    if granularity is None:
        return list(periods)
    if granularity not in timesteps.CALENDAR:
        raise ValueError(f"granularity must be one of {timesteps.CALENDAR} (or None for "
                         f"the dataset's own time steps), not {granularity!r}")
    labels = {t: timesteps.step_label(int(t), granularity) for t in np.unique(ts)}
    return [labels[t] for t in ts]


def histories(users: np.ndarray, items: np.ndarray, ts: np.ndarray,
              max_len: int) -> np.ndarray:
    """[N, max_len]: for each row (sorted by time), the same user's items strictly
    before its ts (rows of equal ts are not each other's history)."""
    out = np.zeros((len(users), max_len), np.int64)
    order = np.argsort(users, kind="stable")  # each user's rows, still in time order
    bounds = np.flatnonzero(np.diff(users[order])) + 1
    for group in np.split(order, bounds):
        if len(group) < 2:
            continue
        user_items, user_ts = items[group], ts[group]
        # First position of each row's timestamp: its history ends there.
        ends = np.searchsorted(user_ts, user_ts, side="left")
        for row, end in zip(group, ends):
            past = user_items[max(0, end - max_len):end]
            if len(past):
                out[row, max_len - len(past):] = past
    return out


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
    keys = step_keys(columns["ts"], columns["period"], granularity)
    labels = sorted(set(keys))
    index = {k: i for i, k in enumerate(labels)}
    if granularity is None:  # name the steps as the dataset does
        names = {p["index"]: p["name"] for p in data.periods}
        labels = [names[int(k)] for k in labels]
    return Interactions(users=columns["user"], items=columns["item"], ts=columns["ts"],
                        step=np.array([index[k] for k in keys], np.int64),
                        step_labels=[str(k) for k in labels],
                        history=histories(columns["user"], columns["item"], columns["ts"],
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
