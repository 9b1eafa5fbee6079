"""Protocol A interactions in memory: rows, histories strictly before t, time steps."""
import tfmeta  # noqa: F401

import numpy as np
import pytest

from tfmeta.data import interactions as inter
from tfmeta.data.periods import PeriodDataset


def test_histories_hold_the_items_strictly_before_each_row():
    users = np.array([1, 2, 1, 1, 2, 1])
    items = np.array([10, 20, 11, 12, 21, 13])
    ts = np.array([1, 1, 2, 2, 3, 4])  # user 1 has two rows at ts 2
    h = inter.histories(users, items, ts, max_len=2)
    np.testing.assert_array_equal(h, [[0, 0], [0, 0], [0, 10], [0, 10], [0, 20],
                                      [11, 12]])


def test_histories_of_some_rows_and_of_a_selection_equal_the_full_matrix():
    rng = np.random.default_rng(0)
    users, items = rng.integers(1, 30, 500), rng.integers(1, 90, 500)
    ts = np.sort(rng.integers(0, 60, 500))  # many equal timestamps per user
    full = inter.histories(users, items, ts, max_len=4)
    lazy = inter.Histories(users, items, ts, max_len=4)
    rows = rng.integers(0, 500, 64)
    np.testing.assert_array_equal(lazy[rows], full[rows])
    keep = rng.random(500) < 0.3
    np.testing.assert_array_equal(lazy.select(keep)[np.arange(keep.sum())], full[keep])
    for row in rows:  # each against its definition
        past = items[(users == users[row]) & (ts < ts[row])][-4:]
        np.testing.assert_array_equal(full[row], np.r_[np.zeros(4 - len(past)), past])


def test_user_timelines_answer_items_before_t():
    timelines = inter.UserTimelines(np.array([1, 1, 2, 1]), np.array([5, 6, 7, 8]),
                                    np.array([10, 20, 15, 30]))
    np.testing.assert_array_equal(timelines.before(1, 20), [5])
    np.testing.assert_array_equal(timelines.before(1, 31), [5, 6, 8])
    assert len(timelines.before(3, 100)) == 0  # a user never seen
    mask = timelines.mask(np.array([1, 2]), np.array([21, 15]), 9)
    assert mask[0].nonzero()[0].tolist() == [5, 6] and not mask[1].any()


@pytest.fixture(scope="module")
def periods_a(build_once, movielens_100k):
    return build_once("beam", input="movielens-100k", protocol="a")


def test_load_matches_the_manifest(periods_a):
    data = PeriodDataset(periods_a)
    part = inter.load(data, ("train",), max_len=50)
    assert len(part) == data.manifest["windows"]["train"]
    assert part.step_labels == [p["name"] for p in data.select(window="train")]
    assert np.all(np.diff(part.ts) >= 0) and np.all(np.diff(part.step) >= 0)
    assert part.users.min() >= 1 and part.items.min() >= 1  # every id is in the vocabulary
    # The history of a row never contains an item of the row's own time or later.
    history = part.history[np.arange(len(part))]
    row = int(np.flatnonzero(history[:, -1] > 0)[-1])
    user_rows = np.flatnonzero((part.users == part.users[row]) & (part.ts < part.ts[row]))
    assert history[row, -1] == part.items[user_rows[-1]]
    np.testing.assert_array_equal(part.history[[row, 0]], history[[row, 0]])
    quarters = inter.load(data, ("train",), max_len=50, granularity="quarter")
    assert quarters.num_steps < part.num_steps and len(quarters) == len(part)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
