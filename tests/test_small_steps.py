"""benchmarks.small_steps --quick times LeapRec's time steps that have fewer interactions
than a batch with both batchings side by side (tiny: a smoke test)."""
import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)

import json

import numpy as np
import pytest

from benchmarks import small_steps


@pytest.fixture(scope="module")
def report(movielens_periods_a, tmp_path_factory):
    # MovieLens-100K's monthly steps hold 6,704 to 23,980 interactions: with batches of
    # 12,000, three are small.
    results = tmp_path_factory.mktemp("results")
    argv = ["--quick", "--dataset", "movielens-100k", "--periods", movielens_periods_a,
            "--batch-size", "12000", "--small-steps", "2", "--results-dir", str(results)]
    assert small_steps.main(argv) == 0
    markdown = (results / "small_steps-quick.md").read_text()
    return json.loads((results / "small_steps-quick.json").read_text()), markdown


def test_small_steps_are_timed_with_both_batchings_and_big_ones_once(report):
    data, markdown = report
    result = data["result"]
    assert (result["small_time_steps"], result["big_time_steps"]) == (3, 2)
    small = [r for r in result["rows"] if r["small"]]
    big = [r for r in result["rows"] if not r["small"]]
    assert len(small) == 2 and len(big) == 1
    for row in small:
        assert row["batch_rows"] == {"now": row["interactions"], "before": 12000}
        assert row["now"]["cpu_seconds"] > 0 and row["before"]["cpu_seconds"] > 0
    assert big[0]["interactions"] >= 12000 and big[0]["before"] == big[0]["now"]
    estimate = result["iteration_estimate_seconds"]
    for batching in small_steps.BATCHINGS:
        expected = (3 * np.mean([r[batching]["wall_seconds"] for r in small])
                    + 2 * big[0][batching]["wall_seconds"])
        assert estimate[batching]["wall"] == pytest.approx(expected)
    assert result["iteration_ratio"]["wall"] == pytest.approx(
        estimate["before"]["wall"] / estimate["now"]["wall"])
    assert "| train-1997-09 | 6,704 | 6,704 / 12,000 |" in markdown


def test_spread_picks_steps_across_their_sizes():
    sizes = np.array([50, 1, 7, 3, 900, 20])
    steps = np.array([0, 1, 2, 3, 5])           # step 4 is a big one
    assert small_steps.spread(steps, sizes, 3) == [0, 1, 2]   # sizes 1, 7 and 50
    assert small_steps.spread(steps, sizes, 9) == [0, 1, 2, 3, 5]
    assert small_steps.spread(steps[:0], sizes, 3) == []


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
