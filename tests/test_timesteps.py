"""Tests of time steps and windows (tfmeta.data.timesteps), PROTOCOLS.md A.2-A.3 and B.1."""
import collections
import datetime

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfmeta.data import readers, timesteps
from tfmeta.data.timesteps import Windows

UTC = datetime.timezone.utc


def _ts(*args) -> int:
    return int(datetime.datetime(*args, tzinfo=UTC).timestamp())


# ------------------------------------------------------------ equal-count steps

@settings(max_examples=200, deadline=None)
@given(total=st.integers(0, 5000), parts=st.integers(1, 300))
def test_split_sizes_match_numpy_array_split(total, parts):
    expected = [len(a) for a in numpy.array_split(numpy.arange(total), parts)]
    assert timesteps.split_sizes(total, parts) == expected
    ranks = timesteps.boundary_ranks(total, parts)
    assert ranks == list(numpy.cumsum(expected)[:-1])
    assert len(ranks) == parts - 1


def test_split_sizes_examples():
    assert timesteps.split_sizes(10, 3) == [4, 3, 3]
    assert timesteps.split_sizes(11, 3) == [4, 4, 3]
    assert timesteps.split_sizes(2, 4) == [1, 1, 0, 0]
    assert timesteps.split_sizes(0, 2) == [0, 0]
    assert timesteps.boundary_ranks(10, 3) == [4, 7]
    assert timesteps.boundary_ranks(5, 1) == []


@st.composite
def sorted_keys(draw):
    """Unique (ts, seq) keys in sort order, with many shared timestamps."""
    n = draw(st.integers(0, 400))
    ts = sorted(draw(st.lists(st.integers(0, 20), min_size=n, max_size=n)))
    seqs = draw(st.permutations(range(n)))
    return sorted(zip(ts, seqs))


@settings(max_examples=200, deadline=None)
@given(keys=sorted_keys(), parts=st.integers(1, 40))
def test_count_step_assigns_exactly_the_split_sizes(keys, parts):
    total = len(keys)
    # The boundary rows (first rows of steps 2..P) that exist; with fewer rows than
    # steps the trailing steps are empty and have no boundary row.
    boundaries = [keys[r] for r in timesteps.boundary_ranks(total, parts) if r < total]
    steps = [timesteps.count_step(key, boundaries) for key in keys]
    assert steps == sorted(steps)
    assert all(1 <= s <= parts for s in steps)
    counts = collections.Counter(steps)
    assert [counts[i] for i in range(1, parts + 1)] == timesteps.split_sizes(total, parts)
    # Same assignment as numpy.array_split over the sorted rows.
    for i, part in enumerate(numpy.array_split(numpy.arange(total), parts)):
        assert all(steps[j] == i + 1 for j in part)


def test_count_step_boundary_row_starts_the_next_step():
    boundaries = [(10, 5), (20, 1)]
    assert timesteps.count_step((10, 4), boundaries) == 1
    assert timesteps.count_step((10, 5), boundaries) == 2
    assert timesteps.count_step((10, 6), boundaries) == 2
    assert timesteps.count_step((19, 99), boundaries) == 2
    assert timesteps.count_step((20, 1), boundaries) == 3
    assert timesteps.count_step((0, 0), []) == 1


# ------------------------------------------------------------- calendar steps

@pytest.mark.parametrize("when, granularity, label", [
    ((1998, 2, 1), "month", "1998-02"),
    ((1998, 1, 31, 23, 59, 59), "month", "1998-01"),
    ((1999, 12, 31, 23, 59, 59), "month", "1999-12"),
    ((2000, 1, 1), "month", "2000-01"),
    ((2019, 3, 31, 23, 59, 59), "quarter", "2019-Q1"),
    ((2019, 4, 1), "quarter", "2019-Q2"),
    ((2019, 9, 30), "quarter", "2019-Q3"),
    ((2019, 10, 1), "quarter", "2019-Q4"),
    ((2019, 12, 31, 23, 59, 59), "quarter", "2019-Q4"),
    ((2020, 1, 1), "quarter", "2020-Q1"),
    ((2020, 2, 29, 12), "day", "2020-02-29"),
    ((2020, 2, 29, 23, 59, 59), "day", "2020-02-29"),
    ((2020, 3, 1), "day", "2020-03-01"),
    # Weeks start on Monday and carry that Monday's date.
    ((2024, 3, 10, 23, 59, 59), "week", "2024-03-04"),   # a Sunday
    ((2024, 3, 11), "week", "2024-03-11"),               # the next Monday
    ((2024, 3, 13, 8), "week", "2024-03-11"),            # a Wednesday
    ((2020, 1, 1), "week", "2019-12-30"),                # across a year boundary
    ((2020, 1, 5, 23), "week", "2019-12-30"),            # Sunday of that week
    ((2020, 1, 6), "week", "2020-01-06"),
    ((1970, 1, 1), "week", "1969-12-29"),                # epoch was a Thursday
])
def test_step_label(when, granularity, label):
    assert timesteps.step_label(_ts(*when), granularity) == label


def test_step_labels_are_utc_not_local(monkeypatch):
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: local date would differ
    import time
    if hasattr(time, "tzset"):
        time.tzset()
    try:
        ts = _ts(2019, 12, 31, 23)
        assert timesteps.step_label(ts, "day") == "2019-12-31"
        assert timesteps.step_label(ts, "month") == "2019-12"
    finally:
        monkeypatch.undo()
        if hasattr(time, "tzset"):
            time.tzset()


@settings(max_examples=200, deadline=None)
@given(a=st.integers(0, 253402300799), b=st.integers(0, 253402300799),
       granularity=st.sampled_from(timesteps.CALENDAR))
def test_step_labels_sort_in_time_order(a, b, granularity):
    a, b = sorted((a, b))
    la, lb = timesteps.step_label(a, granularity), timesteps.step_label(b, granularity)
    assert la <= lb
    if granularity == "week":
        monday = datetime.date.fromisoformat(la)
        assert monday.weekday() == 0
        assert 0 <= (datetime.datetime.fromtimestamp(a, UTC).date() - monday).days < 7


@pytest.mark.parametrize("granularity", ["count", "year", "Month", ""])
def test_step_label_rejects_non_calendar_granularity(granularity):
    with pytest.raises(ValueError, match="calendar granularity.*month"):
        timesteps.step_label(0, granularity)


def test_every_timestamp_the_readers_accept_gets_a_step_label():
    try:
        ts = readers.parse_timestamp("1700000000000")  # 2023-11-14 in milliseconds
    except readers.BadRow:
        return  # rejected as a bad row at read time: fine
    for granularity in timesteps.CALENDAR:
        assert timesteps.step_label(ts, granularity)


# -------------------------------------------------------------------- windows

def test_movielens_windows():
    w = Windows("1998-02-01", 1)
    assert w.val_start == _ts(1998, 2, 1) == 886291200
    assert w.test_start == _ts(1998, 3, 1) == 888710400
    assert w.of(0) == "train"
    assert w.of(w.val_start - 1) == "train"
    assert w.of(w.val_start) == "val"
    assert w.of(w.test_start - 1) == "val"
    assert w.of(w.test_start) == "test"
    assert w.of(2**40) == "test"
    assert [w.start(name) for name in timesteps.WINDOWS] == [None, w.val_start, w.test_start]


def test_windows_of_the_other_datasets():
    assert Windows("2019-09-01", 2).test_start == _ts(2019, 11, 1)
    assert Windows("2014-01-01", 3).test_start == _ts(2014, 4, 1)
    assert Windows("2019-11-01", 3).test_start == _ts(2020, 2, 1)


def test_windows_without_validation_and_bad_val_months():
    w = Windows("2000-01-01", 0)
    assert w.val_start == w.test_start
    assert (w.of(w.val_start - 1), w.of(w.val_start)) == ("train", "test")
    with pytest.raises(ValueError, match="val_months"):
        Windows("2000-01-01", -1)
    with pytest.raises(ValueError, match="bad date"):
        Windows("Feb 1998", 1)


@pytest.mark.parametrize("start, months, end", [
    ((2019, 1, 31), 1, (2019, 2, 28)),
    ((2020, 1, 31), 1, (2020, 2, 29)),
    ((2000, 1, 31), 1, (2000, 2, 29)),
    ((2000, 3, 31), -1, (2000, 2, 29)),
    ((2019, 1, 31, 13, 45, 7), 1, (2019, 2, 28, 13, 45, 7)),   # keeps the time of day
    ((2019, 3, 31), 1, (2019, 4, 30)),
    ((2019, 11, 15), 2, (2020, 1, 15)),
    ((2019, 12, 31), 1, (2020, 1, 31)),
    ((2020, 1, 15), -1, (2019, 12, 15)),
    ((2020, 2, 29), 12, (2021, 2, 28)),
    ((2019, 5, 5), 0, (2019, 5, 5)),
    ((1998, 2, 1), 25, (2000, 3, 1)),
])
def test_add_months(start, months, end):
    assert timesteps.add_months(_ts(*start), months) == _ts(*end)


@pytest.mark.parametrize("text, expected", [
    ("1998-02-01", 886291200),
    ("1998-02-01T00:00:00", 886291200),
    ("1998-02-01T00:00:00Z", 886291200),
    ("1998-02-01T02:00:00+02:00", 886291200),
    ("1998-01-31T19:00:00-05:00", 886291200),
    ("1970-01-01", 0),
])
def test_parse_date(text, expected):
    assert timesteps.parse_date(text) == expected


@pytest.mark.parametrize("text", ["", "1998-13-01", "1998-02-30", "01/02/1998", "Feb 1998",
                                  "tomorrow", "1998-02-01T25:00"])
def test_parse_date_errors_clearly(text):
    with pytest.raises(ValueError) as caught:
        timesteps.parse_date(text)
    message = str(caught.value)
    assert message.startswith(f"bad date {text!r}") and "ISO-8601" in message
    assert "1998-02-01" in message  # an example of what to write


if __name__ == "__main__":  # Bazel's py_test runs the file as a script
    raise SystemExit(pytest.main([__file__]))
