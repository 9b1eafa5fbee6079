"""benchmarks.leaprec_budget: its report from a real (small) grid search's curves."""
import tfmeta  # noqa: F401

import pytest

from benchmarks import leaprec_budget as bench
from benchmarks import machine as machine_info
from tfmeta.tuning import tune


@pytest.fixture(scope="module")
def periods_a(build_once, movielens_100k):
    return build_once("beam", input="movielens-100k", protocol="a")


def test_the_report_shows_every_trials_curve_and_the_best_ones_test(periods_a, tmp_path):
    out = tmp_path / "search"
    result = tune(periods_a, "mf", str(out), tuner="grid", max_trials=2,
                  space={"learning_rate": [1e-2, 1e-3]},
                  fixed={"epochs": 2, "batch_size": 2048, "choose_budget": True})
    curves = bench.curves(str(out), result)
    assert [values for values, _ in curves] == [{"learning_rate": 1e-2},
                                                {"learning_rate": 1e-3}]
    assert all(len(curve) == 2 for _, curve in curves)
    # The objective is the figure after the last epoch, the curve's last point.
    assert [c[-1] for _, c in curves] == [t["objective"] for t in result["trials"]]
    searches = [{"method": "leaprec+mf", "result": result, "curves": curves,
                 "reference": bench.reference("leaprec+mf")}]
    bench.plot(searches, str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    text = bench.render(searches, "cmd", "today", machine_info.describe(["numpy"]))
    for values, curve in curves:
        peak = max(range(2), key=lambda i: (curve[i], -i))
        assert f"| {bench.label(values)} | {curve[peak]:.4f} ({peak + 1}) |" in text
    assert f"HR@10 {result['final']['test']['sampled']['HR@10']:.4f}" in text
    assert "Reference (`mf/seed-0`" in text


if __name__ == "__main__":  # Bazel's py_test runs the file as a script
    raise SystemExit(pytest.main([__file__]))
