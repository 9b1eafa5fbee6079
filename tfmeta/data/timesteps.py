"""Time steps and windows of PROTOCOLS.md, as pure functions of a timestamp.

Calendar steps (day, week, month, quarter) are UTC. Equal-count steps split rows sorted
by (ts, seq) with `numpy.array_split` semantics: with N rows and P steps, the first
N % P steps get one row more, and no row is dropped.
"""
from __future__ import annotations

import bisect
import calendar
import datetime
from typing import Optional, Sequence

CALENDAR = ("day", "week", "month", "quarter")
GRANULARITIES = CALENDAR + ("count",)
WINDOWS = ("train", "val", "test")

_UTC = datetime.timezone.utc


def parse_date(text: str) -> int:
    """An ISO date or datetime (UTC unless it says otherwise) -> epoch seconds."""
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"bad date {text!r}: use ISO-8601, e.g. 1998-02-01") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    return int(value.timestamp())


def add_months(ts: int, months: int) -> int:
    """Same day and time, `months` calendar months later (clamped to the month's end)."""
    day = datetime.datetime.fromtimestamp(ts, _UTC)
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return int(day.replace(year=year, month=month + 1, day=min(day.day, last)).timestamp())


def step_label(ts: int, granularity: str) -> str:
    """The calendar step a timestamp falls in, as a label that sorts in time order."""
    day = datetime.datetime.fromtimestamp(ts, _UTC).date()
    if granularity == "day":
        return day.isoformat()
    if granularity == "week":  # weeks start on Monday; labelled by that Monday
        return (day - datetime.timedelta(days=day.weekday())).isoformat()
    if granularity == "month":
        return f"{day.year:04d}-{day.month:02d}"
    if granularity == "quarter":
        return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
    raise ValueError(f"unknown calendar granularity {granularity!r}; choose {CALENDAR}")


class Windows:
    """train: ts < cut; val: cut <= ts < cut + val_months; test: the rest."""

    def __init__(self, cut: str, val_months: int):
        if val_months < 0:
            raise ValueError("val_months must be >= 0")
        self.cut = cut
        self.val_months = val_months
        self.val_start = parse_date(cut)
        self.test_start = add_months(self.val_start, val_months)

    def of(self, ts: int) -> str:
        if ts < self.val_start:
            return "train"
        return "val" if ts < self.test_start else "test"

    def start(self, window: str) -> Optional[int]:
        return {"train": None, "val": self.val_start, "test": self.test_start}[window]


def split_sizes(total: int, parts: int) -> list[int]:
    """Row counts of `numpy.array_split(range(total), parts)`."""
    base, extra = divmod(total, parts)
    return [base + 1 if i < extra else base for i in range(parts)]


def boundary_ranks(total: int, parts: int) -> list[int]:
    """0-based ranks of the first row of steps 2..parts."""
    ranks, start = [], 0
    for size in split_sizes(total, parts)[:-1]:
        start += size
        ranks.append(start)
    return ranks


def count_step(key: tuple, boundary_keys: Sequence[tuple]) -> int:
    """1-based equal-count step of a row with sort key (ts, seq)."""
    return bisect.bisect_right(boundary_keys, key) + 1
