"""Synthetic interaction logs of any size with the temporal structure of a real dataset.

    python -m benchmarks.synthetic --rows 1000000 --out runs/scaling/data/rows-1000000.csv
    python -m benchmarks.synthetic --rows 3000 --out runs/x.csv --source yelp-a --seed 1

The generator is fitted on a registered implicit-feedback dataset (default yelp-a, read
through `tfmeta.data.registry.fetch`) and writes `user,item,ts` CSV rows (UTC seconds)
that `tfmeta periods build` reads as they are (format csv, implicit feedback). What it
takes from the real data, and how:

- Time: the real timestamps' empirical distribution (its span and its per-day, hence
  per-month, volume shape). Times are drawn in "volume time" q in [0, 1] (the real
  data's CDF of time) and mapped back through its inverse, so a uniform q gives the real
  volume per day.
- Users: each synthetic user copies a random real user's (activity count, first-active
  q, last-active q): heavy-tailed activity, users active over a span, and the
  correlation between the two (active users stay longer). Rows are assigned to users in
  proportion to the copied counts; a user's rows are uniform in volume time over its
  span.
- Items: each synthetic item copies a random real item's (count, first-seen q, last-seen
  q): a birth time, a lifetime and a heavy-tailed total popularity. Its popularity over
  its life rises and falls (a Beta(2, 3) shape in the fraction of its lifetime: peak at a
  third), scaled so that its expected total matches the copied count's share. Items
  therefore rise and fall: the most popular items of the first month are not those of
  the last.
- Growth: users and items grow in proportion to rows (the real data's users / row and
  items / row), so 1e7 rows give about a million ids of each kind.

Seeded and deterministic (same source, rows and seed = same bytes). Vectorised NumPy;
rows are generated and written in chunks of time bins, so memory stays at the id
tables plus one chunk (1e7 rows: well under 1 GiB).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import sys
from typing import Optional

import numpy as np

SOURCE = "yelp-a"
# Volume-time bins: rows of one bin share the item distribution of the bin's middle.
TIME_BINS = 240
# Items' lifetimes (in volume time) are at least this, so short-lived real items still
# get a rise and a fall wider than one bin.
MIN_LIFETIME = 0.02
# Beta(A, B) popularity shape over an item's lifetime: peak at (A - 1) / (A + B - 2).
SHAPE_A, SHAPE_B = 2.0, 3.0
# Share of an item's popularity that is flat over its lifetime. Chosen on yelp-a so that
# the 20 most popular items of January and of November share about as many items as in
# the real data (5 of 20): 0 (rise and fall only) gives none in common.
BASE_SHARE = 0.5
CHUNK_ROWS = 1_000_000


@dataclasses.dataclass
class Fit:
    """What the generator takes from the real data (all arrays NumPy)."""
    source: str
    rows: int
    sorted_ts: np.ndarray        # the real timestamps, sorted: the inverse CDF of time
    user_count: np.ndarray       # per real user: interactions
    user_start: np.ndarray       # per real user: first / last interaction, volume time
    user_end: np.ndarray
    item_count: np.ndarray       # per real item: interactions
    item_start: np.ndarray       # per real item: first / last interaction, volume time
    item_end: np.ndarray

    @property
    def users_per_row(self) -> float:
        return len(self.user_count) / self.rows

    @property
    def items_per_row(self) -> float:
        return len(self.item_count) / self.rows


def read_source(path: str) -> tuple:
    """(users, items, ts) integer arrays of a `user,item,ts` CSV (ids factorised)."""
    import pandas as pd
    frame = pd.read_csv(path, dtype={"user": str, "item": str, "ts": np.int64})
    users = pd.factorize(frame["user"])[0]
    items = pd.factorize(frame["item"])[0]
    return users.astype(np.int64), items.astype(np.int64), frame["ts"].to_numpy(np.int64)


def fit(users: np.ndarray, items: np.ndarray, ts: np.ndarray, source: str = "") -> Fit:
    """Fits the generator to interactions given as integer arrays."""
    order = np.argsort(ts, kind="stable")
    sorted_ts = ts[order]
    # Volume time of each row: its rank among all rows, in [0, 1].
    q = np.empty(len(ts), np.float64)
    q[order] = np.arange(len(ts)) / max(len(ts) - 1, 1)

    def per_id(ids):
        n = int(ids.max()) + 1
        count = np.bincount(ids, minlength=n)
        start = np.full(n, np.inf)
        end = np.full(n, -np.inf)
        np.minimum.at(start, ids, q)
        np.maximum.at(end, ids, q)
        keep = count > 0
        return count[keep], start[keep], end[keep]

    uc, us, ue = per_id(users)
    ic, is_, ie = per_id(items)
    return Fit(source, len(ts), sorted_ts, uc, us, ue, ic, is_, ie)


def fit_source(source: str = SOURCE, data_dir: Optional[str] = None) -> Fit:
    from tfmeta.data import registry
    info = registry.DATASETS[source]
    if info.feedback != "implicit" or info.format != "csv":
        raise ValueError(f"{source}: the generator fits user,item,ts CSV implicit data "
                         "(yelp-a, amazon-beauty)")
    return fit(*read_source(registry.fetch(source, data_dir=data_dir)), source=source)


def time_of(fitted: Fit, q: np.ndarray) -> np.ndarray:
    """Volume time -> UTC seconds through the real data's inverse CDF of time."""
    grid = np.linspace(0.0, 1.0, len(fitted.sorted_ts))
    return np.rint(np.interp(q, grid, fitted.sorted_ts.astype(np.float64))).astype(np.int64)


def _shape(x: np.ndarray) -> np.ndarray:
    """An item's popularity over its lifetime x in [0, 1] (0 outside), integral 1: a
    constant share BASE_SHARE plus a Beta(SHAPE_A, SHAPE_B) rise and fall."""
    from math import gamma
    norm = gamma(SHAPE_A + SHAPE_B) / (gamma(SHAPE_A) * gamma(SHAPE_B))
    inside = (x >= 0) & (x <= 1)
    xc = np.clip(x, 0, 1)
    beta = norm * xc ** (SHAPE_A - 1) * (1 - xc) ** (SHAPE_B - 1)
    return np.where(inside, BASE_SHARE + (1 - BASE_SHARE) * beta, 0.0)


@dataclasses.dataclass
class Plan:
    """The synthetic ids' parameters for one size."""
    rows: int
    user_weight: np.ndarray
    user_start: np.ndarray
    user_span: np.ndarray
    item_weight: np.ndarray      # expected-count share / lifetime (density scale)
    item_birth: np.ndarray
    item_life: np.ndarray


def plan(fitted: Fit, rows: int, seed: int = 0) -> Plan:
    rng = np.random.default_rng([seed, 1])
    n_users = max(2, int(round(rows * fitted.users_per_row)))
    n_items = max(2, int(round(rows * fitted.items_per_row)))
    u = rng.integers(0, len(fitted.user_count), n_users)
    i = rng.integers(0, len(fitted.item_count), n_items)
    # A little jitter in volume time so that copies of one real id are not identical.
    jitter_u = rng.normal(0.0, 0.01, n_users)
    jitter_i = rng.normal(0.0, 0.01, n_items)
    # A real user's first and last rows mark its span; n uniform rows cover about
    # (n - 1) / (n + 1) of the span they are drawn from, so draw from a wider one.
    count = fitted.user_count[u].astype(np.float64)
    middle = (fitted.user_start[u] + fitted.user_end[u]) / 2 + jitter_u
    half = (fitted.user_end[u] - fitted.user_start[u]) / 2 * (count + 1) / np.maximum(
        count - 1, 1)
    user_start = np.clip(middle - half, 0.0, 1.0)
    user_end = np.clip(middle + half, 0.0, 1.0)
    item_birth = fitted.item_start[i] + jitter_i
    item_life = np.maximum(fitted.item_end[i] - fitted.item_start[i], MIN_LIFETIME)
    # Expected total of an item = weight * life * integral of the shape (1): the copied
    # count, spread over its lifetime as a density in volume time.
    item_weight = fitted.item_count[i] / item_life
    return Plan(rows, fitted.user_count[u].astype(np.float64), user_start,
                np.maximum(user_end - user_start, 0.0), item_weight, item_birth, item_life)


def generate(fitted: Fit, rows: int, seed: int = 0, chunk_rows: int = CHUNK_ROWS,
             progress: bool = False):
    """Yields (users, items, ts) int64 chunks, in time order, `rows` rows in all."""
    p = plan(fitted, rows, seed)
    rng = np.random.default_rng([seed, 2])
    n_users = len(p.user_weight)
    # Rows per user in proportion to the copied activity counts (a multinomial draw in
    # chunks), then each row's volume time uniform over its user's span.
    cdf = np.cumsum(p.user_weight)
    cdf /= cdf[-1]
    users = np.empty(rows, np.int64)
    for s in range(0, rows, chunk_rows):
        n = min(chunk_rows, rows - s)
        users[s:s + n] = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"),
                                    n_users - 1)
    q = p.user_start[users] + rng.random(rows) * p.user_span[users]
    order = np.argsort(q, kind="stable")
    users = users[order]
    del order
    # Overlapping user spans pile rows up in the middle of the span; equalise: the k-th
    # row in time order gets volume time k / (rows - 1), so the rows follow the real
    # per-day volume exactly while every user keeps its order and (about) its span.
    q = np.linspace(0.0, 1.0, rows)
    edges = np.searchsorted(q, np.linspace(0.0, 1.0, TIME_BINS + 1)[1:-1])
    bounds = np.concatenate([[0], edges, [rows]])
    bins = range(TIME_BINS)
    if progress:
        from tqdm.auto import tqdm
        bins = tqdm(bins, desc=f"generate {rows:,} rows", unit="bin", file=sys.stderr)
    pending_u, pending_i, pending_t, pending = [], [], [], 0
    for b in bins:
        lo, hi = bounds[b], bounds[b + 1]
        if hi > lo:
            mid = (b + 0.5) / TIME_BINS
            alive = np.flatnonzero((p.item_birth <= mid) &
                                   (p.item_birth + p.item_life >= mid))
            if not len(alive):  # no item alive: fall back to the nearest births
                alive = np.argsort(np.abs(p.item_birth - mid))[:10]
                weights = np.ones(len(alive))
            else:
                weights = p.item_weight[alive] * _shape(
                    (mid - p.item_birth[alive]) / p.item_life[alive])
                if not weights.sum() > 0:
                    weights = np.ones(len(alive))
            item_cdf = np.cumsum(weights)
            item_cdf /= item_cdf[-1]
            picked = alive[np.minimum(np.searchsorted(item_cdf, rng.random(hi - lo),
                                                      side="right"), len(alive) - 1)]
            pending_u.append(users[lo:hi])
            pending_i.append(picked)
            pending_t.append(time_of(fitted, q[lo:hi]))
            pending += hi - lo
        if pending >= chunk_rows or (b == TIME_BINS - 1 and pending):
            yield (np.concatenate(pending_u), np.concatenate(pending_i),
                   np.concatenate(pending_t))
            pending_u, pending_i, pending_t, pending = [], [], [], 0


def write_csv(path: str, fitted: Fit, rows: int, seed: int = 0,
              chunk_rows: int = CHUNK_ROWS, progress: bool = False) -> dict:
    """Writes the CSV (atomically: PATH.tmp then renamed); returns its summary."""
    import pandas as pd
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    written = n_users = n_items = 0
    ts_min, ts_max = None, None
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write("user,item,ts\n")
        for u, i, t in generate(fitted, rows, seed, chunk_rows, progress):
            pd.DataFrame({"user": u, "item": i, "ts": t}).to_csv(
                f, header=False, index=False, lineterminator="\n")
            written += len(u)
            n_users = max(n_users, int(u.max()) + 1)
            n_items = max(n_items, int(i.max()) + 1)
            ts_min = int(t.min()) if ts_min is None else min(ts_min, int(t.min()))
            ts_max = int(t.max()) if ts_max is None else max(ts_max, int(t.max()))
    os.replace(tmp, path)
    return {"path": path, "rows": written, "seed": seed, "source": fitted.source,
            "user_ids_planned": int(round(rows * fitted.users_per_row)),
            "item_ids_planned": int(round(rows * fitted.items_per_row)),
            "max_user_id": n_users - 1, "max_item_id": n_items - 1,
            "ts_min": ts_min, "ts_max": ts_max, "bytes": os.path.getsize(path)}


def _month_start(ts: int) -> datetime.date:
    d = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).date()
    return d.replace(day=1)


def protocol_a_windows(ts_min: int, ts_max: int) -> tuple:
    """(cut, val_months) for protocol A: the last calendar month of the span is the
    test window, the one before it the validation window, every earlier month trains.
    Needs a span over at least three calendar months."""
    last = _month_start(ts_max)
    cut = (last.replace(year=last.year - 1, month=12) if last.month == 1
           else last.replace(month=last.month - 1))
    first = _month_start(ts_min)
    if cut <= first:
        raise ValueError("the data spans fewer than three calendar months")
    return cut.isoformat(), 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.synthetic",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=float, required=True, help="rows to write (1e6 ok)")
    parser.add_argument("--out", required=True, help="CSV to write")
    parser.add_argument("--source", default=SOURCE, help="registered dataset to fit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    summary = write_csv(args.out, fit_source(args.source), int(args.rows), args.seed,
                        progress=True)
    cut, val_months = protocol_a_windows(summary["ts_min"], summary["ts_max"])
    print(f"wrote {summary['rows']:,} rows to {summary['path']} "
          f"({summary['user_ids_planned']:,} users, {summary['item_ids_planned']:,} items "
          f"planned); protocol A: --cut {cut} --val-months {val_months}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
