"""benchmarks.synthetic keeps the temporal structure it claims, and benchmarks.scaling
writes its report with every step for two sizes (tiny: a smoke test, not evidence)."""
import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)

import json
import os

import numpy as np
import pandas as pd
import pytest

from benchmarks import scaling, synthetic


@pytest.fixture(scope="module")
def fitted(shared_data_dir):
    return synthetic.fit_source("yelp-a", data_dir=shared_data_dir)


def _frame(fitted, rows, tmp_path, seed=0):
    path = os.path.join(tmp_path, f"rows-{rows}-{seed}.csv")
    summary = synthetic.write_csv(path, fitted, rows, seed)
    frame = pd.read_csv(path)
    assert summary["rows"] == len(frame) == rows
    return frame, path


def test_ids_grow_with_rows_and_output_is_deterministic(fitted, tmp_path):
    small, path_a = _frame(fitted, 5_000, tmp_path)
    large, _ = _frame(fitted, 20_000, tmp_path)
    for column in ("user", "item"):
        ratio = large[column].nunique() / small[column].nunique()
        assert 3.0 < ratio < 5.0, (column, ratio)  # 4x the rows: about 4x the ids
    again, path_b = _frame(fitted, 5_000, tmp_path / "again")
    with open(path_a, "rb") as a, open(path_b, "rb") as b:
        assert a.read() == b.read()
    other, _ = _frame(fitted, 5_000, tmp_path / "other", seed=1)
    assert not other.equals(small)


def test_time_span_volume_shape_and_drift(fitted, tmp_path):
    frame, _ = _frame(fitted, 20_000, tmp_path)
    assert frame["ts"].min() >= fitted.sorted_ts[0]
    assert frame["ts"].max() <= fitted.sorted_ts[-1]
    month = pd.to_datetime(frame["ts"], unit="s").dt.month
    real_month = pd.to_datetime(pd.Series(fitted.sorted_ts), unit="s").dt.month
    share = month.value_counts(normalize=True).sort_index()
    real_share = real_month.value_counts(normalize=True).sort_index()
    assert list(share.index) == list(real_share.index)
    assert np.abs(share.to_numpy() - real_share.to_numpy()).max() < 0.01
    # Items rise and fall: the most popular items of the first and of the last full
    # month are mostly different ones.
    first = frame[month == month.min()]["item"].value_counts().index[:20]
    last = frame[month == month.max() - 1]["item"].value_counts().index[:20]
    assert len(set(first) & set(last)) <= 6  # 4 here; 9 with items alive all year
    # Items are born over the span, not all at the start (yelp-a: 4.5% of the items
    # first appear in the second half of the rows, 16% after the first quarter).
    born = frame.groupby("item")["ts"].min()
    assert (born > np.quantile(fitted.sorted_ts, 0.5)).mean() > 0.03
    assert (born > np.quantile(fitted.sorted_ts, 0.25)).mean() > 0.2  # 0.11 if not


def test_heavy_tails_and_user_spans(fitted, tmp_path):
    frame, _ = _frame(fitted, 20_000, tmp_path)
    users = frame["user"].value_counts()
    items = frame["item"].value_counts()
    assert users.max() > 8 * users.median()
    assert items.max() > 10 * items.median()
    top = items.iloc[:max(1, len(items) // 100)].sum() / len(frame)
    assert top > 0.04  # the top 1% of items take several % of the rows
    span_days = frame.groupby("user")["ts"].agg(lambda t: (t.max() - t.min()) / 86400)
    active = span_days[users.reindex(span_days.index) >= 5]
    assert 60 < active.median() < 300


def test_protocol_a_windows():
    day = 86400
    jan1_2019, dec13_2019 = 1546300800, 1576252117
    assert synthetic.protocol_a_windows(jan1_2019, dec13_2019) == ("2019-11-01", 1)
    assert synthetic.protocol_a_windows(jan1_2019, jan1_2019 + 370 * day)[0] == "2019-12-01"
    with pytest.raises(ValueError):
        synthetic.protocol_a_windows(jan1_2019, jan1_2019 + 40 * day)


def test_benchmark_writes_every_step_for_two_sizes(shared_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TFMETA_DATA_DIR", shared_data_dir)
    runs, results = tmp_path / "runs", tmp_path / "results"
    tiny = ["--leaprec-option=method=leaprec+mf", "--leaprec-option=inner_steps=1",
            "--leaprec-option=gtl_dim=8", "--leaprec-option=otl_dim=8",
            "--leaprec-option=batch_size=64"]
    argv = ["--rows", "3000", "6000", "--runs-dir", str(runs), "--results-dir",
            str(results), "--in-process", *tiny]
    assert scaling.main(argv) == 0
    with open(results / "scaling.json") as f:
        report = json.load(f)
    assert report["sizes"] == [3000, 6000]
    assert report["in_process"] and report["leaprec_overrides"]["method"] == "leaprec+mf"
    for rows in ("3000", "6000"):
        steps = report["results"][rows]
        assert set(steps) == set(scaling.STEPS)
        assert steps["pipeline-b"]["rows_in"] == int(rows)
        assert steps["pipeline-b"]["periods"] == 31
        assert steps["pipeline-a"]["instances"]["val"] > 0
        assert steps["epoch"]["batches"] > 0 and steps["epoch"]["seconds"] > 0
        lazy = steps["epoch-lazy-adam"]
        assert (lazy["optimizer"], steps["epoch"]["optimizer"]) == ("lazy-adam", "adam")
        assert lazy["batches"] == steps["epoch"]["batches"] and lazy["loss"] > 0
        assert steps["leaprec"]["time_steps"] == 10  # Jan .. Oct 2019
        assert steps["export-ctr"]["export_bytes"] > steps["export-ctr"]["parameter_bytes"]
        assert steps["export-leaprec"]["export_bytes"] > 0
        assert steps["export-leaprec"]["checkpoint_of"] == "leaprec"
        months = steps["leaprec-profile"]["months"]
        assert [m["kind"] for m in months] == ["cold", "warm", "warm"]
        assert [m["time_step"] for m in months] == [0, 0, 9]
        assert steps["leaprec-profile"]["interactions_upto"][-1] == \
            steps["leaprec"]["train_interactions"]
        assert steps["leaprec-profile"]["estimated_iteration_seconds"] > 0
        assert steps["leaprec-profile"]["checked_walk"]["seconds"] > 0
        profile = steps["epoch-profile"]["ms_per_step"]
        assert set(profile) == {"adam", "keras_sgd", "lazy_adam"}
        assert all(v["cpu"] > 0 for parts in profile.values() for v in parts.values())
        assert steps["epoch-profile"]["input_only"]["batches"] == steps["epoch"]["batches"]
    costs = {g["cost"] for g in report["growth"]}
    assert costs == {key for key, *_ in scaling.COSTS}
    # Exports hold the embedding tables: more ids, more bytes.
    small, large = (report["results"][r]["export-ctr"]["export_bytes"] for r in ("3000", "6000"))
    assert large > small
    text = (results / "scaling.md").read_text()
    assert "## Growth" in text and "| 6,000 |" in text
    assert "EmbeddingMLP epoch" in text.split("## Where growth is not linear")[1]
    assert (results / "scaling.png").stat().st_size > 0
    # The runs folder is resumable: a second invocation without --resume refuses...
    with pytest.raises(SystemExit):
        scaling.main(argv)
    # ...and with it, nothing is run again.
    before = os.path.getmtime(runs / "rows-3000" / "steps" / "epoch.json")
    assert scaling.main(argv + ["--resume"]) == 0
    assert os.path.getmtime(runs / "rows-3000" / "steps" / "epoch.json") == before


def test_carry_over_writes_the_steps_not_run_again(tmp_path):
    earlier = {"date": "2026-11-25T06:42:02+00:00", "results": {"1000": {
        "epoch": {"seconds": 2.0}, "leaprec": {"seconds": 9.0}}, "5000": {}}}
    (tmp_path / "scaling.json").write_text(json.dumps(earlier))
    runs = tmp_path / "runs"
    notes = scaling.carry_over(str(tmp_path / "scaling.json"), [1000, 5000], str(runs),
                               ["leaprec"])
    steps = runs / "rows-1000" / "steps"
    assert sorted(os.listdir(steps)) == ["epoch.json"]  # leaprec is measured again
    record = json.loads((steps / "epoch.json").read_text())
    assert record["seconds"] == 2.0 and record["carried_over_from"]["date"] == earlier["date"]
    assert notes == ["1,000 rows: epoch carried over from the report of "
                     "2026-11-25T06:42:02+00:00 on an unrecorded machine (not measured "
                     "again by this invocation)"]
    # A step already measured in the runs folder is kept, not overwritten.
    (steps / "epoch.json").write_text(json.dumps({"seconds": 3.0}))
    assert scaling.carry_over(str(tmp_path / "scaling.json"), [1000], str(runs), []) == [
        "1,000 rows: leaprec carried over from the report of 2026-11-25T06:42:02+00:00 "
        "on an unrecorded machine (not measured again by this invocation)"]
    assert json.loads((steps / "epoch.json").read_text())["seconds"] == 3.0


def test_iteration_estimate_sums_a_line_through_the_warm_months():
    # warm months: 10 s at 100 interactions, 30 s at 500 -> 5 s + 0.05 s per interaction
    est = scaling.iteration_estimate(cold_first=25.0, warm_first=10.0, warm_last=30.0,
                                     interactions_upto=[100, 300, 500], end_seconds=2.0)
    assert est["per_month_fixed_seconds"] == pytest.approx(5.0)
    assert est["per_interaction_seconds"] == pytest.approx(0.05)
    assert est["trace_seconds"] == pytest.approx(15.0)
    assert est["estimated_walk_seconds"] == pytest.approx(10 + 20 + 30)
    assert est["estimated_iteration_seconds"] == pytest.approx(15 + 60 + 2)


def test_export_leaprec_needs_either_leaprec_step(tmp_path, shared_data_dir, monkeypatch):
    monkeypatch.setenv("TFMETA_DATA_DIR", shared_data_dir)
    runs = tmp_path / "runs"
    steps = runs / "rows-1000" / "steps"
    steps.mkdir(parents=True)
    argv = ["--rows", "1000", "--runs-dir", str(runs), "--results-dir",
            str(tmp_path / "results"), "--steps", "export-leaprec", "--resume",
            "--in-process"]
    assert scaling.main(argv) == 1  # neither ran: skipped, and the report says why
    report = json.loads((tmp_path / "results" / "scaling.json").read_text())
    assert report["failures"] == [
        "export-leaprec at 1,000 rows skipped: needs leaprec or leaprec-profile"]


def test_growth_verdicts():
    results = {1000: {"epoch": {"seconds": 1.0}}, 10000: {"epoch": {"seconds": 100.0}},
               100000: {"epoch": {"seconds": 900.0}}}
    rows = [g for g in scaling.growth([1000, 10000, 100000], results)
            if g["cost"] == "epoch_seconds"]
    assert [round(g["exponent"], 2) for g in rows] == [2.0, 0.95]
    assert [g["linear_or_better"] for g in rows] == [False, True]


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
