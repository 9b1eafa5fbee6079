"""benchmarks/asmg.py end to end on small periods: real `tfmeta train` subprocesses, the
report, its plot, and a second invocation that reuses the finished runs."""
import json
import os
import shutil

import pytest

from benchmarks import asmg, drivers


def test_benchmarks_given_periods_and_reuses_finished_runs(small_periods, tmp_path, capsys,
                                                           monkeypatch):
    # The user's periods: runs and report under runs/asmg-periods/ of the repository
    # (here tmp_path), never in the committed benchmarks/results.
    given_dirs = drivers.given_dirs
    monkeypatch.setattr(drivers, "given_dirs", lambda benchmark, root: given_dirs(
        benchmark, str(tmp_path)))
    runs_dir = tmp_path / "runs" / "asmg-periods"
    results = runs_dir / "results"
    argv = ["--periods", small_periods, "--quick", "--budget", "1,1", "--workers", "2"]
    assert asmg.main(argv) == 0

    label = os.path.basename(os.path.normpath(small_periods))  # a file's build: no name
    report = json.loads((results / "asmg-quick.json").read_text())
    section = report["datasets"][label]
    assert section["periods"]["periods"] == 31 and section["reused"] == 0
    assert {(r["method"], r["seed"]) for r in section["runs"]} == {
        ("iu", 0), ("asmg-gru-multi", 0)}
    for run in section["runs"]:
        assert 0 < run["metrics"]["test"]["auc"] < 1
        assert run["process"]["returncode"] == 0 and run["process"]["cpu_seconds"] > 0
        assert os.path.exists(runs_dir / label / "e1-p1" / run["method"] / "seed-0" /
                              "benchmark-run.json")
    assert section["summary"]["methods"] == ["iu", "asmg-gru-multi"]
    assert section["claim"]["verdict"]
    markdown = (results / "asmg-quick.md").read_text()
    assert f"## {label}" in markdown and "asmg-gru-multi" in markdown
    assert "read from --periods" in markdown
    assert (results / f"asmg-quick-per-period-{label}.png").stat().st_size > 0

    # Again with --resume: both runs are reused, not trained again, and give the same table.
    assert asmg.main([*argv, "--resume"]) == 0
    assert "2 runs (2 reused)" in capsys.readouterr().err
    again = json.loads((results / "asmg-quick.json").read_text())["datasets"][label]
    assert again["reused"] == 2
    assert again["summary"] == section["summary"]

    # On a new machine (runs/ is git-ignored: the run folders are gone), the report's
    # finished runs of the same periods build are kept, not trained again.
    shutil.rmtree(runs_dir / label)
    assert asmg.main([*argv, "--resume"]) == 0
    assert "2 runs (2 reused)" in capsys.readouterr().err
    kept = json.loads((results / "asmg-quick.json").read_text())["datasets"][label]
    assert kept["summary"] == section["summary"]
    assert all(r["process"]["folder_gone"] for r in kept["runs"])
    assert not (runs_dir / label).exists()
    assert "(folder gone)" in (results / "asmg-quick.md").read_text()


def test_the_budget_search_keeps_the_reports_grid_where_its_runs_are_gone(tmp_path):
    runs_dir = tmp_path / "runs"
    grid = [{"epochs": e, "pretrain_epochs": p, "val_auc": 0.5 + i / 100, "val_logloss": 0.6,
             "seconds": 1.0, "run_dir": os.path.relpath(
                 runs_dir / "d" / "budget" / asmg.budget_name((e, p)) /
                 f"seed-{asmg.BUDGET_SEED}", asmg.ROOT)}
            for i, (e, p) in enumerate(asmg.BUDGET_GRID)]
    search = asmg.select_budget("d", str(tmp_path / "periods"), str(runs_dir), 1, grid)
    assert search["chosen"] == list(asmg.BUDGET_GRID[-1])  # nothing trained
    assert [g["val_auc"] for g in search["grid"]] == [g["val_auc"] for g in grid]
    assert all(g["folder_gone"] for g in search["grid"])


def test_periods_of_another_protocol_or_unbuilt_are_refused_with_what_to_do(tmp_path):
    from tfmeta.data.periods import MANIFEST
    periods = tmp_path / "periods"
    periods.mkdir()
    argv = ["--periods", str(periods), "--budget", "1,1", "--runs-dir", str(tmp_path)]
    with pytest.raises(SystemExit, match="no manifest.*tfmeta periods build --protocol b"):
        asmg.main(argv)
    (periods / MANIFEST).write_text(json.dumps({"protocol": "a", "dataset": "d"}))
    with pytest.raises(SystemExit, match="protocol a periods.*--protocol b"):
        asmg.main(argv)
    (periods / MANIFEST).write_text(json.dumps({"protocol": "b", "periods": [{}] * 20}))
    with pytest.raises(SystemExit, match="has 20 periods.*--periods 31"):
        asmg.main(argv)


def test_periods_and_datasets_together_are_refused(small_periods, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        asmg.main(["--periods", small_periods, "--datasets", "yelp-a",
                   "--runs-dir", str(tmp_path)])
    assert stopped.value.code == 2
    assert "--periods replaces --datasets" in capsys.readouterr().err


if __name__ == "__main__":  # Bazel's py_test runs the file as a script
    raise SystemExit(pytest.main([__file__]))
