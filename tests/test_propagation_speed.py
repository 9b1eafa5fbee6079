"""benchmarks.propagation_speed --quick times a graph model's training step with CSR
and with COO propagation side by side and checks that both compute the same loss and
gradients (tiny: a smoke test)."""
import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)

import json

import pytest

from benchmarks import propagation_speed


@pytest.fixture(scope="module")
def report(movielens_periods_a, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    argv = ["--quick", "--dataset", "movielens-100k", "--periods", movielens_periods_a,
            "--models", "lightgcn", "gnn-sa", "--results-dir", str(results)]
    assert propagation_speed.main(argv) == 0
    markdown = (results / "propagation_speed-quick.md").read_text()
    return json.loads((results / "propagation_speed-quick.json").read_text()), markdown


def test_both_propagations_are_timed_side_by_side_and_agree(report):
    data, markdown = report
    assert list(data["models"]) == ["lightgcn", "gnn-sa"]
    for row in data["models"].values():
        assert row["agree"] and row["max_relative_difference"] <= propagation_speed.TOLERANCE
        assert row["loss"] > 0
        for kind in propagation_speed.IMPLEMENTATIONS:
            assert len(row["seconds"][kind]["wall"]) == data["repeats"] == 1
            assert row["median_seconds"][kind]["cpu"] > 0
        for clock in ("wall", "cpu"):
            assert row["ratio"][clock] == pytest.approx(
                row["median_seconds"]["coo"][clock] / row["median_seconds"]["csr"][clock])
    assert data["graph"]["edges"] == 2 * data["graph"]["interactions"]
    assert "| lightgcn |" in markdown and "| gnn-sa |" in markdown


def test_the_coo_propagation_is_the_one_patched_in():
    from tfmeta.models import baselines, graph
    with propagation_speed.propagation("coo"):
        assert graph.propagate is baselines.propagate is propagation_speed.coo_propagate
    assert graph.propagate is not propagation_speed.coo_propagate


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
