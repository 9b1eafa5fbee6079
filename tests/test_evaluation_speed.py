"""benchmarks.evaluation_speed --quick times protocol A evaluation with both vocabulary
lookups side by side and checks that they score the same (tiny: a smoke test)."""
import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)

import json

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import evaluation_speed
from tfmeta.data.interactions import string_lookup
from tfmeta.data.periods import PeriodDataset


@pytest.fixture(scope="module")
def report(movielens_periods_a, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    argv = ["--quick", "--datasets", "movielens-100k", "--periods", movielens_periods_a,
            "--results-dir", str(results)]
    assert evaluation_speed.main(argv) == 0
    markdown = (results / "evaluation_speed-quick.md").read_text()
    return json.loads((results / "evaluation_speed-quick.json").read_text()), markdown


def test_tensor_and_list_vocabularies_map_ids_to_the_same_rows():
    vocabulary = ["b", "a", "c"]
    ids = tf.constant([["a", "", "zz"], ["c", "b", "a"]])
    rows = string_lookup(vocabulary)(ids).numpy()
    assert np.array_equal(rows, [[2, 0, 0], [3, 1, 2]])
    assert np.array_equal(rows, evaluation_speed.list_lookup(vocabulary)(ids).numpy())


def test_both_lookups_are_timed_side_by_side_and_score_the_same(report, movielens_periods_a):
    data, markdown = report
    section = data["datasets"]["movielens-100k"]
    instances = PeriodDataset(movielens_periods_a).manifest["instances"]["val"]
    assert [r["mode"] for r in section["rows"]] == list(evaluation_speed.MODES)
    for row in section["rows"]:
        assert row["same_figures"]
        assert row["instances"] == instances > 0
        for kind in evaluation_speed.LOOKUPS:
            assert len(row["seconds"][kind]["wall"]) == data["repeats"] == 1
            assert row["median_seconds"][kind]["wall"] > 0
        for clock in ("wall", "cpu"):
            assert row["ratio"][clock] == pytest.approx(
                row["median_seconds"]["list"][clock] / row["median_seconds"]["tensor"][clock])
    assert ("full" in section["rows"][1]["figures"]
            and "full" not in section["rows"][0]["figures"])
    assert "| movielens-100k | 943 / 1,682 | sampled |" in markdown


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
