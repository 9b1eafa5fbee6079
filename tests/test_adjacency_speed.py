"""benchmarks.adjacency_speed --quick times a graph model's training step with A_hat
prepared once per forward pass and once per product, side by side, and checks that both
compute the same loss and gradients (tiny: a smoke test)."""
import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)

import json

import pytest

from benchmarks import adjacency_speed


def test_both_preparations_are_timed_side_by_side_and_agree(movielens_periods_a, tmp_path):
    argv = ["--quick", "--dataset", "movielens-100k", "--periods", movielens_periods_a,
            "--results-dir", str(tmp_path)]
    assert adjacency_speed.main(argv) == 0
    data = json.loads((tmp_path / "adjacency_speed-quick.json").read_text())
    row = data["models"]["gcn"]
    assert row["agree"] and list(row["batches"]) == [str(adjacency_speed.SMALL_BATCH), "1024"]
    for cell in row["batches"].values():
        assert cell["max_relative_difference"] <= adjacency_speed.TOLERANCE
        for kind in adjacency_speed.IMPLEMENTATIONS:
            assert len(cell["seconds"][kind]["wall"]) == data["repeats"] == 1
        assert cell["ratio"]["cpu"] == pytest.approx(
            cell["median_seconds"]["per-product"]["cpu"] / cell["median_seconds"]["once"]["cpu"])
    assert data["graph"]["edges"] == 2 * data["graph"]["interactions"]
    assert "| gcn | 40 |" in (tmp_path / "adjacency_speed-quick.md").read_text()


def test_the_before_arm_patches_propagate_in_every_graph_module():
    from tfmeta.models import baselines, graph
    with adjacency_speed.preparation("per-product"):
        assert graph.propagate is baselines.propagate is adjacency_speed.per_product_propagate
    assert graph.propagate is not adjacency_speed.per_product_propagate


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
