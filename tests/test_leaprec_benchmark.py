"""benchmarks/leaprec.py: its report bookkeeping, and a short run end to end (the benchmark
itself runs for hours)."""
import json
import os

import pytest

from benchmarks import leaprec, leaprec_report, leaprec_tables

SAMPLED = ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR")
FULL = ("HR@10", "NDCG@10", "MRR")


def run(method: str, seed: int, hr10: float) -> dict:
    """A run record as load_run returns it, every metric = hr10."""
    figures = {"sampled": {k: hr10 for k in SAMPLED}, "full": {k: hr10 for k in FULL}}
    return {"id": f"{method}/seed-{seed}", "name": method, "method": method, "seed": seed,
            "options": {}, "run_dir": f"runs/{method}/seed-{seed}", "process": {},
            "metrics": {"val": figures, "test": figures, "seconds": 1.0,
                        "training": {"test": {"losses": [[0.5]], "time_steps": ["t1"]}}}}


def models_record(runs: dict, figures_dir) -> dict:
    settings = [{"label": m, "method": m, "varied": {},
                 "runs": [f"{m}/seed-{s}" for s in (0, 1)]} for m in ("mf", "leaprec")]
    record = {"run_ids": [i for s in settings for i in s["runs"]], "settings": settings}
    return leaprec.tabulate("models", record, runs, "d", False, str(figures_dir), "leaprec")


def test_a_kept_table_follows_the_run_another_experiment_replaced(tmp_path):
    old = {r["id"]: r for r in (run("mf", 0, 0.5), run("mf", 1, 0.5),
                                run("leaprec", 0, 0.4), run("leaprec", 1, 0.4))}
    section = {"experiments": {"models": models_record(old, tmp_path)}, "runs": old}
    assert section["experiments"]["models"]["table"]["leaprec"]["columns"][
        leaprec_tables.HEAD]["mean"] == pytest.approx(0.4)

    # A later invocation runs only an experiment that shares leaprec/seed-0 and gets 0.6.
    again = {"leaprec/seed-0": run("leaprec", 0, 0.6)}
    other = {"run_ids": ["leaprec/seed-0"], "settings": [
        {"label": "leaprec", "method": "leaprec", "varied": {}, "runs": ["leaprec/seed-0"]}],
        "table": {}}
    merged = leaprec.merge_section(section, {"split": other}, again, "d", False,
                                   str(tmp_path), "leaprec")
    models = merged["experiments"]["models"]
    assert models["table"]["leaprec"]["columns"][leaprec_tables.HEAD]["mean"] == pytest.approx(0.5)
    assert models["table"]["mf"]["columns"][leaprec_tables.HEAD]["mean"] == pytest.approx(0.5)
    assert merged["runs"]["leaprec/seed-0"]["metrics"]["test"]["sampled"]["HR@10"] == 0.6
    assert list(merged["experiments"]) == ["models", "split"]  # EXPERIMENTS order


def test_kept_tables_whose_runs_did_not_change_are_left_as_they_are(tmp_path):
    runs = {r["id"]: r for r in (run("mf", 0, 0.5), run("mf", 1, 0.5),
                                 run("leaprec", 0, 0.4), run("leaprec", 1, 0.4))}
    kept = dict(models_record(runs, tmp_path), date="then")
    merged = leaprec.merge_section({"experiments": {"models": kept}, "runs": runs}, {}, {},
                                   "d", False, str(tmp_path), "leaprec")
    assert merged["experiments"]["models"] is kept
    # ... nor when a run comes back from the report's own record (its folder gone)
    back = {"leaprec/seed-0": dict(runs["leaprec/seed-0"], process={"folder_gone": True})}
    merged = leaprec.merge_section({"experiments": {"models": kept}, "runs": runs}, {}, back,
                                   "d", False, str(tmp_path), "leaprec")
    assert merged["experiments"]["models"] is kept


def test_plugin_table_counts_gradient_steps_and_runs_at_the_budget_cap():
    base, plug = run("gcn", 0, 0.4), run("leaprec+gcn", 0, 0.5)
    base["metrics"]["training"]["test"]["losses"] = [0.6, 0.3]             # 2 epochs
    base["metrics"]["budget"] = {"curve": [{"HR@10": 0.3}] * 5}  # of 5
    plug["metrics"]["training"]["test"] = {"losses": [[0.7, 0.6, 0.5]] * 3,  # 3 iterations
                                           "time_steps": ["a", "b", "c"]}
    plug["metrics"]["budget"] = {"curve": [{"HR@10": 0.3}] * 3}  # of 3: at cap
    runs = {r["id"]: r for r in (base, plug)}
    settings = [{"label": m, "method": m, "varied": {}, "runs": [f"{m}/seed-0"]}
                for m in ("gcn", "leaprec+gcn")]
    record = leaprec.tabulate("plugins", {"run_ids": list(runs), "settings": settings,
                                          "seeds": [0], "options": {"inner_steps": 4,
                                                                    "batch_size": 10}},
                              runs, "d", False, "unused", "leaprec")
    table = record["table"]
    assert table["leaprec+gcn"]["at_cap"] == [1, 1] and table["gcn"]["at_cap"] == [0, 1]
    assert table["gcn"]["last_loss"]["mean"] == pytest.approx(0.3)
    assert table["leaprec+gcn"]["last_loss"]["mean"] == pytest.approx(0.6)
    options = leaprec_tables.effective_options(record["options"])
    assert leaprec_tables.gradient_steps(table["leaprec+gcn"], "leaprec+gcn", options, 95) == 36
    assert leaprec_tables.gradient_steps(table["gcn"], "gcn", options, 95) == 20  # 2 x ceil(9.5)
    # steps a, b, c draw 4 x (10 + 5 + 10) = 100 per iteration: 3 x 100 / 95 passes
    text = "\n".join(leaprec_report.render_plugins(
        {"periods": {"windows": {"train": 90, "val": 5},
                     "step_rows": {"a": 80, "b": 5, "c": 10}}}, record))
    assert "| 36 | 3.2 |" in text and "| 20 | 2.0 |" in text
    assert ("Training: 3.2 passes over the data against the base's 2.0; 180% of the base's "
            "gradient steps") in text
    assert "validation chose the last of its" in text


def test_models_table_shows_the_budget_cap_and_gradient_steps_of_leaprec_and_its_rival(
        tmp_path):
    runs = {}
    for seed in (0, 1):
        mf, leap = run("mf", seed, 0.5), run("leaprec", seed, 0.4)
        mf["metrics"]["training"]["test"]["losses"] = [0.6, 0.5, 0.4]     # 3 epochs
        mf["metrics"]["budget"] = {"curve": [{"HR@10": 0.3}] * 4}  # of 4
        leap["metrics"]["training"]["test"] = {"losses": [[0.7, 0.6]] * 2,  # 2 iterations
                                               "time_steps": ["a", "b"]}
        leap["metrics"]["budget"] = {"curve": [{"HR@10": 0.3}] * 2}  # of 2: at cap
        runs.update({mf["id"]: mf, leap["id"]: leap})
    record = models_record(runs, tmp_path)
    record.update(seeds=[0, 1], options={"inner_steps": 4, "batch_size": 10})
    # time step a holds 90 interactions (K 4 minibatches of 10 draw 40), b 5 (4 x 5 = 20)
    text = "\n".join(leaprec_report.render_models(
        {"periods": {"windows": {"train": 90, "val": 5}, "step_rows": {"a": 90, "b": 5}}},
        record))
    # 3 epochs x ceil(95 / 10) steps, 3 passes; last loss 0.4
    assert "| 3.0 ± 0.0 (0 of 2) | 30 | 3.0 | 0.400 ± 0.000 |" in text
    # 2 iterations x 2 steps x K 4; 2 x 60 / 95 passes; last loss mean(0.7, 0.6)
    assert "| 2.0 ± 0.0 (2 of 2) | 16 | 1.3 | 0.650 ± 0.000 |" in text
    assert ("- Training: leaprec's test models drew 1.3 examples per train + validation "
            "interaction against mf's 3.0, in 53% of mf's gradient steps (16 against 30); "
            "they ended at a train loss of 0.650 ± 0.000 against 0.400 ± 0.000; "
            "validation chose the last of its") in text
    assert "2 time steps hold 5 to 90 interactions, median 48" in text
    # its 2 iterations: the second walk (2 time steps x K 4) starts from 1 meta step
    assert ("So a test model is the meta-parameters after 1.0 meta steps plus the last "
            "iteration's 8 inner steps (2 time steps x K = 4), against mf's 30 steps") in text
    # ... and the bar chart of every model beside the table
    assert "![test HR@10 of every model](leaprec-models-d.png)" in text
    assert (tmp_path / "leaprec-models-d.png").stat().st_size > 0


def test_models_claim_says_which_curves_were_still_rising_and_splits_the_gap(tmp_path):
    curves = {"mf": [0.50, 0.60, 0.61, 0.61, 0.61],       # flat by the cap
              "gnn-sa": [0.40, 0.45, 0.50, 0.52, 0.53],
              "leaprec": [0.20, 0.25, 0.30, 0.35, 0.40]}  # still rising at the cap
    test_hr10 = {"mf": 0.6, "gnn-sa": 0.5, "leaprec": 0.45}
    runs = {}
    for method, curve in curves.items():
        for seed, shift in ((0, 0.01), (1, -0.01)):       # the seeds' mean is the curve
            r = run(method, seed, test_hr10[method])
            r["metrics"]["budget"] = {"curve": [{"HR@10": v + shift} for v in curve]}
            runs[r["id"]] = r
    settings = [{"label": m, "method": m, "varied": {},
                 "runs": [f"{m}/seed-{s}" for s in (0, 1)]} for m in curves]
    record = leaprec.tabulate("models", {"run_ids": list(runs), "settings": settings},
                              runs, "d", False, str(tmp_path), "leaprec")
    assert record["table"]["leaprec"]["val_curve"] == pytest.approx(curves["leaprec"])
    split = record["summary"]["claim"]["gap_split"]
    assert split["model_gap"] == pytest.approx(-0.1)      # gnn-sa plainly against mf
    assert split["training_gap"] == pytest.approx(-0.05)  # leaprec against gnn-sa plainly
    record.update(seeds=[0, 1], options={"inner_steps": 2, "batch_size": 9})
    # each iteration draws 2 x (9 + 9) of the 90 train interactions: 5 x 0.4 = 2 passes
    text = "\n".join(leaprec_report.render_models(
        {"periods": {"windows": {"train": 90, "val": 5},
                     "train_step_rows": {"a": 45, "b": 45}}}, record))
    assert ("leaprec's HR@10 rose by +0.1500 over its last 3 iterations, mf's by +0.0100 "
            "over its last 3 epochs") in text
    assert ("At equal data (the val phase, mean over seeds): leaprec's validation HR@10 "
            "after its 5 iterations, which drew 2.0 passes over the train window, was "
            "0.4000; mf had 0.6000 after 2 epochs; gnn-sa, trained plainly, had 0.4500 "
            "after 2 epochs.") in text
    # K = 10 draws 10 passes, more than the plain curves' 5 epochs: their last, said so
    point = leaprec_tables.at_equal_data(
        record["table"], "leaprec", "mf", leaprec_tables.effective_options(
            {"inner_steps": 10, "batch_size": 9}), {"a": 45, "b": 45}, 90)
    assert point == pytest.approx({"iterations": 5, "passes": 10.0, "hr10": 0.4,
                                   "epoch": 5, "plain_hr10": 0.61})
    assert ("Of the HR@10 gap to mf (-0.1500), -0.1000 lies between mf and the model "
            "leaprec trains, gnn-sa, trained plainly, and -0.0500 between") in text
    assert "![validation HR@10 while training](leaprec-curves-d.png)" in text
    assert (tmp_path / "leaprec-curves-d.png").stat().st_size > 0


def test_passes_over_the_data_count_what_a_meta_learners_minibatches_draw():
    options = leaprec_tables.effective_options({"inner_steps": 10, "batch_size": 100})
    row = {"budget": {"mean": 2.0}}
    sizes = {"big": 2000, "small": 40}  # K x 100 of 2,000; K x all 40 (a full-batch step)
    assert leaprec_tables.passes_over_data(row, "leaprec", options, sizes, 2040) == pytest.approx(
        2 * (1000 + 400) / 2040)
    assert leaprec_tables.passes_over_data(row, "mf", options, sizes, 2040) == 2.0  # an epoch each
    # the sizes are the build's time steps: unknown under another granularity, or unrecorded
    weekly = leaprec_tables.effective_options({"granularity": "week"})
    assert leaprec_tables.passes_over_data(row, "leaprec", weekly, sizes, 2040) is None
    assert leaprec_tables.passes_over_data(row, "leaprec", options, None, 2040) is None


def recorded_run(run_: "leaprec.Run", periods: str, **options) -> dict:
    """The report's record of a finished run (as load_run made it)."""
    record = run(run_.method, run_.seed, 0.5)
    record["metrics"].update(
        protocol="a", method=run_.method, seed=run_.seed, dataset=run_.dataset,
        periods=leaprec._rel(periods), options={**run_.expected_options(), **options})
    record["process"] = {"benchmark_command": "earlier"}
    return record


def test_finished_runs_whose_folder_is_gone_are_taken_from_the_report(tmp_path):
    periods = str(tmp_path / "periods")
    gone, there, changed = (
        leaprec.Run("d", m, m, 1, {"choose_budget": True}, str(tmp_path / m / "seed-1"))
        for m in ("gcn", "ngcf", "lightgcn"))
    (tmp_path / "ngcf" / "seed-1").mkdir(parents=True)  # a killed re-run: its own record
    recorded = {gone.id: recorded_run(gone, periods), there.id: recorded_run(there, periods),
                changed.id: recorded_run(changed, periods, learning_rate=0.5)}

    kept = leaprec.from_report([gone, there, changed], recorded, periods)
    assert list(kept) == [gone.id]
    assert kept[gone.id]["process"]["folder_gone"]
    assert kept[gone.id]["metrics"] == recorded[gone.id]["metrics"]
    # ... and not when the report's run was scored on other periods
    assert not leaprec.from_report([gone], recorded, str(tmp_path / "other"))
    assert "folder gone" in leaprec_report._run_row(kept[gone.id])


def test_figures_of_a_run_whose_folder_is_gone_keep_its_representation_shift(tmp_path):
    # Figure 5 reads the run folder's representations.npz; the report keeps its summary.
    gone = dict(run("leaprec", 0, 0.4), process={"folder_gone": True})
    record = {"run_ids": [gone["id"]],
              "settings": [{"label": "leaprec", "method": "leaprec", "varied": {},
                            "runs": [gone["id"]]}]}
    shift = {"time_steps": ["t1"], "parts": {"gtl": {"early": [0.0]}}}
    previous = dict(record, summary={"available": True, "run": gone["id"], "shift": shift})
    tabulated = leaprec.tabulate("figures", dict(record), {gone["id"]: gone}, "d", False,
                                 str(tmp_path), "leaprec", previous)
    assert tabulated["summary"]["shift"] == shift
    assert tabulated["summary"]["loss"]["losses"] == [[0.5]]  # from the record's metrics
    assert not (tmp_path / "leaprec-representation-shift-d.png").exists()  # kept as made
    # ... but not another run's
    other = dict(previous, summary=dict(previous["summary"], run="leaprec/seed-1"))
    assert leaprec.tabulate("figures", dict(record), {gone["id"]: gone}, "d", False,
                            str(tmp_path), "leaprec", other)["summary"]["shift"] is None


def test_a_run_of_another_build_of_the_same_periods_folder_is_not_reused(tmp_path):
    from benchmarks.periods import build_manifest
    from tfmeta.training.rundir import periods_digest
    periods = tmp_path / "periods"
    periods.mkdir()
    built = {"protocol": "a", "created": "t1", "options": {"seed": 0}}
    (periods / "manifest.json").write_text(json.dumps(built))
    run_ = leaprec.Run("d", "mf", "mf", 0, {}, str(tmp_path / "mf" / "seed-0"))
    metrics = recorded_run(run_, str(periods))["metrics"]
    metrics["periods_digest"] = periods_digest(built)
    build_manifest.cache_clear()
    assert not leaprec._mismatch(run_, metrics, str(periods))
    # built again (another machine, say): the same build
    (periods / "manifest.json").write_text(json.dumps(dict(built, created="t2")))
    build_manifest.cache_clear()   # a later invocation, after the rebuild
    assert not leaprec._mismatch(run_, metrics, str(periods))
    # rebuilt from other options: another build
    (periods / "manifest.json").write_text(json.dumps(dict(built, options={"seed": 1})))
    build_manifest.cache_clear()
    assert leaprec._mismatch(run_, metrics, str(periods)) == {
        "periods_digest": metrics["periods_digest"]}
    # ... unless the report says its runs read this build
    assert not leaprec._mismatch(run_, metrics, str(periods), same_build=True)


def test_a_report_says_whether_its_runs_read_the_build_there_now():
    summary = {"path": "/here", "built_seconds": 3.0, "builder": "beam/in-process",
               "given": False, "digest": "c33bebb6ce8f", "rows_out": 10,
               "step_rows": {"train-2019-01": 6, "val-2019-02": 4}}
    recorded = dict(summary, path=None, dir="runs/p", built_seconds=None)
    assert leaprec.report_read_this_build(recorded, summary)
    assert not leaprec.report_read_this_build(dict(recorded, digest="38837f583793"), summary)
    assert not leaprec.report_read_this_build(None, summary)
    # a report from before sections recorded the digest: matched by what the build holds
    legacy = {k: v for k, v in recorded.items() if k != "digest"}
    assert leaprec.report_read_this_build(dict(legacy, builder="beam/dataflow"), summary)
    assert not leaprec.report_read_this_build(
        dict(legacy, step_rows={"train-2019-01": 7, "val-2019-02": 4}), summary)


def test_only_trains_the_named_runs_and_rejects_unplanned_names(tmp_path, monkeypatch,
                                                                  capsys):
    runs = [leaprec.Run("d", n, "leaprec", 0, {}, str(tmp_path / n / "seed-0"))
            for n in ("leaprec-k1", "leaprec-quarter", "leaprec-week")]
    trained = []

    def fake_train(run_, periods, workers, command, threads=None):
        trained.append(run_.name)
        return {"returncode": 1}   # no metrics.json: reported as failed, nothing loaded
    monkeypatch.setattr(leaprec, "train", fake_train)
    done, failed, _ = leaprec.run_all(runs, str(tmp_path / "periods"), 1, "d", "cmd",
                                      only={"leaprec-quarter"})
    assert trained == ["leaprec-quarter"] and [r.name for r in failed] == trained
    assert not done
    with pytest.raises(SystemExit) as stopped:
        leaprec.main(["--datasets", "movielens-100k", "--experiments", "sensitivity",
                      "--only", "leaprec-k7", "--runs-dir", str(tmp_path),
                      "--results-dir", str(tmp_path)])
    assert stopped.value.code == 2
    assert "--only leaprec-k7: not a planned run" in capsys.readouterr().err


def split_record(rows) -> dict:
    """The split table of ((gtl_dim, otl_dim), HR@10, test iterations) rows, one seed."""
    runs, settings = {}, []
    for (g, o), hr10, iterations in rows:
        r = run(f"leaprec-gtl{g}-otl{o}", 0, hr10)
        last = [[0.5, 0.3]]  # the last iteration's loss per time step: mean 0.4
        r["metrics"]["training"]["test"]["losses"] = [[0.9, 0.7]] * (iterations - 1) + last
        r["metrics"]["budget"] = {"curve": [{"HR@10": 0.3}] * 3}
        runs[r["id"]] = r
        settings.append({"label": f"GTL {g} / OTL {o}", "method": "leaprec",
                         "varied": {"gtl_dim": g, "otl_dim": o}, "runs": [r["id"]]})
    return leaprec.tabulate("split", {"run_ids": list(runs), "settings": settings,
                                      "seeds": [0], "options": {}},
                            runs, "d", False, "unused", "leaprec")


def test_split_table_shows_each_settings_budget_and_last_loss():
    record = split_record((((8, 0), 0.4, 3), ((4, 4), 0.5, 2)))
    summary = record["summary"]
    assert summary["best_on_test"] == summary["best_by_validation"] == "GTL 4 / OTL 4"
    assert summary["both_beat_single"]["test/sampled/HR@10"]["beats"]
    text = "\n".join(leaprec_report.render_split(record))
    assert "| GTL 8 / OTL 0 | 0.4000 |" in text
    assert "| 3.0 (1 of 1) | 0.400 |" in text and "| 2.0 (0 of 1) | 0.400 |" in text
    assert "does not beat" not in text


def test_split_summary_names_a_tie_instead_of_picking_one():
    record = split_record((((8, 0), 0.5, 3), ((4, 4), 0.5, 2)))
    summary = record["summary"]
    assert summary["best_on_test"] == "GTL 8 / OTL 0 and GTL 4 / OTL 4 (tied)"
    text = "\n".join(leaprec_report.render_split(record))
    assert "GTL 4 / OTL 4, ties with the best single part, GTL 8 / OTL 0" in text
    assert "does not beat" not in text and "beats" not in text


def test_sensitivity_orders_granularity_finest_first_and_draws_every_setting(tmp_path):
    """Settings in the benchmark's order (the issue's first); the granularity rows come
    out finest first (the most time steps), the meta learning rates in increasing order,
    and one PNG draws all three."""
    rows = (("K = 1", {"inner_steps": 1}, 0.40, 6), ("K = 5", {"inner_steps": 5}, 0.45, 6),
            ("granularity month (dataset steps)", {"granularity": None}, 0.45, 6),
            ("granularity quarter", {"granularity": "quarter"}, 0.44, 3),
            ("granularity week", {"granularity": "week"}, 0.47, 26),
            ("meta lr = 0.1", {"meta_learning_rate": 0.1}, 0.42, 6),
            ("meta lr = 0.01", {"meta_learning_rate": 0.01}, 0.50, 6))
    runs, settings = {}, []
    for label, varied, hr10, steps in rows:
        r = run(label.replace(" ", ""), 0, hr10)
        r["metrics"]["training"]["test"]["time_steps"] = [f"t{i}" for i in range(steps)]
        runs[r["id"]] = r
        settings.append({"label": label, "method": "leaprec", "varied": varied,
                         "runs": [r["id"]]})
    record = leaprec.tabulate("sensitivity", {"run_ids": list(runs), "settings": settings,
                                              "seeds": [0], "options": {}},
                              runs, "d", False, str(tmp_path), "leaprec")
    g, lr = record["summary"]["granularity"], record["summary"]["meta_learning_rate"]
    assert g["labels"] == ["granularity week", "granularity month (dataset steps)",
                           "granularity quarter"] and g["time_steps"] == [26, 6, 3]
    assert g["best_on_test"] == "granularity week"
    assert lr["values"] == [0.01, 0.1] and lr["best_on_test"] == "meta lr = 0.01"
    assert record["png"] == "leaprec-sensitivity-d.png"
    assert (tmp_path / record["png"]).stat().st_size > 0
    text = "\n".join(leaprec_report.render_sensitivity(record, "d"))
    assert text.index("| granularity week |") < text.index("| granularity quarter |")
    assert f"]({record['png']})" in text


def test_training_one_more_seed_keeps_the_seeds_the_report_already_has(tmp_path,
                                                                       monkeypatch):
    runs_dir, periods = tmp_path / "runs", str(tmp_path / "periods")
    monkeypatch.setattr(leaprec, "ensure_periods", lambda dataset, runs_dir_, given: {
        "path": periods})
    trained = []

    def fake_train(run_, periods_, workers, command, threads=None):
        trained.append(run_.id)
        return {"returncode": 1}
    monkeypatch.setattr(leaprec, "train", fake_train)
    args = leaprec.argparse.Namespace(workers=1, report_only=False, only=None,
                                      source_note=None, quick=False, threads=None,
                                      periods=None)
    settings = leaprec.plan(["models", "figures"], {"models": ["gcn"]})
    shared = {"choose_budget": True}
    earlier = [leaprec.make_run("d", settings["models"][0], s, shared, str(runs_dir))
               for s in (0, 1)]
    section = {"experiments": {"models": {"seeds": [0, 1]}, "figures": {"seeds": [0]}},
               "runs": {r.id: recorded_run(r, periods) for r in earlier}}

    _, experiments, done, failed = leaprec.run_dataset(
        "d", args, settings, shared, [2], str(runs_dir), str(tmp_path), "leaprec", "cmd",
        section)
    assert trained == ["gcn/seed-2", "leaprec/seed-2"]  # models' gcn, then the figures' run
    assert experiments["models"]["seeds"] == [0, 1, 2]
    assert set(done) == {"gcn/seed-0", "gcn/seed-1"}   # from the report: folders gone
    assert experiments["models"]["failed"] == ["gcn/seed-2"]
    assert experiments["figures"]["seeds"] == [2]      # figures plot the first seed given
    merged = leaprec.merge_section(section, experiments, done, "d", False, str(tmp_path),
                                   "leaprec")
    assert {"gcn/seed-0", "gcn/seed-1"} <= set(merged["runs"])


def test_unfinished_runs_are_timed_at_the_pace_of_their_settings_finished_seeds():
    runs = {r["id"]: r for r in (run("gcn", 0, 0.5), run("gcn", 1, 0.5))}
    runs["gcn/seed-0"]["metrics"]["seconds"] = 3600.0
    runs["gcn/seed-1"]["metrics"]["seconds"] = 5400.0
    section = {"runs": runs, "experiments": {
        "models": {"unfinished": ["gcn/seed-2", "ngcf/seed-0"],
                   "under_way": {"gcn/seed-2": {"seconds": 1800.0}}},   # half an hour in
        "plugins": {"unfinished": ["gcn/seed-2"]}}}   # one run, listed twice
    text = leaprec_report.remaining_text(section)
    assert text.startswith("At the pace of their settings' finished seeds, the 1 of 2 "
                           "with one would take about 0.8 h more one after the other")
    assert text.endswith("it has had). No seed of ngcf has finished yet to time it by.")
    # ... unless one is under way in its val phase: 2 of 20 epochs in 360 s, a test phase
    # 1.5x as long (train 90, validation 45): 180 x 20 x 2.5 = 9,000 s for one run
    section["periods"] = {"windows": {"train": 90, "val": 45}}
    section["experiments"]["models"]["under_way"]["ngcf/seed-0"] = {
        "phase": "val", "done": 2, "cap": 20, "unit": "epochs", "seconds": 360.0}
    section["experiments"]["models"]["unfinished"].append("ngcf/seed-1")
    assert leaprec_report.remaining_text(section).endswith(
        "to time it by. Extrapolated from a ngcf run's val phase (2 of 20 epochs in 360 s), "
        "a ngcf run takes at most about 2.5 h, so its 2 would take about 4.9 h more.")


def test_a_run_under_way_says_how_far_it_has_got(tmp_path):
    leap = leaprec.Run("d", "leaprec", "leaprec", 2, {"iterations": 8},
                       str(tmp_path / "leaprec" / "seed-2"))
    assert leaprec.under_way(leap) is None                    # not started
    os.makedirs(leap.out)
    progress = {"seconds": 4543.8, "phases": {"val": {"losses": [[0.5]] * 5}}}
    (tmp_path / "leaprec" / "seed-2" / "progress.json").write_text(json.dumps(progress))
    assert leaprec_report.under_way_text(leaprec.under_way(leap)) == \
        "val phase, 5 of 8 iterations, 4,544 s"
    progress["phases"]["test"] = {"losses": [0.4] * 3}
    (tmp_path / "leaprec" / "seed-2" / "progress.json").write_text(json.dumps(progress))
    assert leaprec_report.under_way_text(leaprec.under_way(leap)) == \
        "test phase, 3 iterations, 4,544 s"


def test_summary_says_which_models_are_short_of_seeds_or_missing(tmp_path):
    runs = {r["id"]: r for r in (run("mf", 0, 0.5), run("mf", 1, 0.5),
                                 run("leaprec", 0, 0.4))}
    record = dict(models_record(runs, tmp_path), seeds=[0, 1])
    record["settings"].append({"label": "gcn", "method": "gcn", "varied": {},
                               "runs": ["gcn/seed-0", "gcn/seed-1"]})
    assert leaprec_report.coverage(record) == "2 of 3; fewer seeds: leaprec (1); none yet: gcn"


def test_benchmarks_given_periods_end_to_end_and_reuses_finished_runs(
        movielens_periods_a, tmp_path, capsys):
    """Real `tfmeta train` subprocesses on periods the user built (--periods): the models
    table, the claim, and a second invocation that trains nothing."""
    results = tmp_path / "results"
    argv = ["--periods", movielens_periods_a, "--quick", "--experiments", "models",
            "--methods", "mf", "leaprec+mf", "--workers", "2",
            "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(results)]
    assert leaprec.main(argv) == 0
    report = json.loads((results / "leaprec-quick.json").read_text())
    section = report["datasets"]["movielens-100k"]   # the manifest's dataset names them
    assert set(section["runs"]) == {"mf/seed-0", "leaprec+mf/seed-0"}
    for r in section["runs"].values():
        assert 0 < r["metrics"]["test"]["sampled"]["HR@10"] <= 1
        assert r["process"]["returncode"] == 0 and r["process"]["cpu_seconds"] > 0
        assert r["process"]["cpu_model"]   # sessions may run on other machines
    table = section["experiments"]["models"]["table"]
    assert set(table) == {"mf", "leaprec+mf"}
    markdown = (results / "leaprec-quick.md").read_text()
    assert "**Claim: LeapRec beats every baseline.**" in markdown
    assert "read from --periods" in markdown
    assert "CPUs of the runs' last processes" in markdown

    assert leaprec.main([*argv, "--resume"]) == 0
    assert "2 runs (2 reused)" in capsys.readouterr().err


def test_periods_of_another_protocol_are_refused_with_what_to_do(small_periods, tmp_path):
    with pytest.raises(SystemExit, match="protocol b periods.*--protocol a"):
        leaprec.main(["--periods", small_periods, "--runs-dir", str(tmp_path),
                      "--results-dir", str(tmp_path)])


if __name__ == "__main__":  # Bazel's py_test runs the file as a script
    raise SystemExit(pytest.main([__file__]))
