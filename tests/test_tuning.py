"""tfmeta tune: KerasTuner searches on validation only, resumable, loud on failure."""
import tfmeta  # noqa: F401

import json

import numpy as np
import pytest

from tfmeta import cli
from tfmeta.tuning import default_space, tune, tuner as tuner_module
from tfmeta.tuning.space import to_options

SPACE = {"learning_rate": [1e-2, 1e-3], "embedding_dim": [8, 16]}
FIXED = {"epochs": 1, "batch_size": 2048}


@pytest.fixture(scope="module")
def periods_a(build_once, movielens_100k):
    return build_once("beam", input="movielens-100k", protocol="a")


def test_random_search_picks_the_best_validation_trial_and_retrains_it(periods_a, tmp_path,
                                                                      capsys):
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SPACE))
    out = tmp_path / "search"
    assert cli.main(["tune", "--periods", periods_a, "--method", "mf", "--out", str(out),
                     "--max-trials", "3", "--space", str(space), "--fixed",
                     json.dumps(FIXED)]) == 0
    assert "best configuration retrained: test HR@10" in capsys.readouterr().out
    result = json.loads((out / "tuning.json").read_text())
    trials = result["trials"]
    assert len(trials) == 3 and all(t["status"] == "COMPLETED" for t in trials)
    assert len({json.dumps(t["values"], sort_keys=True) for t in trials}) == 3
    best = max(trials, key=lambda t: t["objective"])
    assert result["best"]["values"] == best["values"]
    # Trials are scored on validation only: their runs have no test figures.
    for t in trials:
        run = json.loads((out / "search" / f"trial_{t['trial']}" / "run" / "metrics.json")
                         .read_text())
        assert "test" not in run and run["val"]["sampled"]["HR@10"] == t["objective"]
        assert run["options"]["epochs"] == 1
    final = json.loads((out / "best" / "metrics.json").read_text())
    assert final["options"]["learning_rate"] == best["values"]["learning_rate"]
    assert final["val"]["sampled"]["HR@10"] == pytest.approx(best["objective"])
    assert result["final"]["test"] == final["test"]


def test_the_final_run_reuses_the_best_trials_validation_phase(periods_a, tmp_path,
                                                              monkeypatch):
    from tfmeta.training import ranking
    trained = []
    original = ranking.Phase.train

    def recorded(self, losses, curve=None):
        trained.append(self.name)
        return original(self, losses, curve)
    monkeypatch.setattr(ranking.Phase, "train", recorded)
    result = tune(periods_a, "mf", str(tmp_path), max_trials=2, space=SPACE,
                  fixed={**FIXED, "choose_budget": True, "epochs": 2})
    assert trained == ["val", "val", "test"]  # two trials, then the test phase alone
    best = json.loads((tmp_path / "search" / f"trial_{result['best']['trial']}" / "run"
                       / "metrics.json").read_text())
    final = json.loads((tmp_path / "best" / "metrics.json").read_text())
    assert final["val"] == best["val"] and final["budget"] == best["budget"]
    assert final["options"] == best["options"] and "test" in final
    assert not (tmp_path / "best.partial").exists()


def test_grid_search_tries_every_combination_once(periods_a, tmp_path):
    result = tune(periods_a, "mf", str(tmp_path), tuner="grid", max_trials=10,
                  space=SPACE, fixed=FIXED)
    tried = sorted((t["values"]["learning_rate"], t["values"]["embedding_dim"])
                   for t in result["trials"])
    assert tried == sorted((lr, d) for lr in SPACE["learning_rate"]
                           for d in SPACE["embedding_dim"])
    with pytest.raises(ValueError, match="grid search needs a finite grid: give "
                                         "learning_rate a list"):
        tune(periods_a, "mf", str(tmp_path / "range"), tuner="grid",
             space={"learning_rate": {"min": 1e-4, "max": 1e-2}}, fixed=FIXED)


def test_a_killed_search_resumes_where_it_stopped(periods_a, tmp_path, monkeypatch):
    original = tuner_module.MethodTuner.run_trial
    calls = {"n": 0}

    def killed_in_the_second(self, trial, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return original(self, trial, *args, **kwargs)
    monkeypatch.setattr(tuner_module.MethodTuner, "run_trial", killed_in_the_second)
    with pytest.raises(KeyboardInterrupt):
        tune(periods_a, "mf", str(tmp_path), max_trials=3, space=SPACE, fixed=FIXED)
    first = json.loads((tmp_path / "search" / "trial_0" / "trial.json").read_text())
    monkeypatch.setattr(tuner_module.MethodTuner, "run_trial", original)
    result = tune(periods_a, "mf", str(tmp_path), max_trials=3, space=SPACE, fixed=FIXED)
    assert [t["trial"] for t in result["trials"]] == ["0", "1", "2"]
    assert all(t["status"] == "COMPLETED" for t in result["trials"])
    assert result["trials"][0]["values"] == first["hyperparameters"]["values"]
    assert result["trials"][0]["objective"] == first["score"]
    # A finished search answers from its state.
    monkeypatch.setattr(tuner_module.MethodTuner, "run_trial", killed_in_the_second)
    assert tune(periods_a, "mf", str(tmp_path), max_trials=3, space=SPACE,
                fixed=FIXED)["best"] == result["best"]


def test_a_search_killed_in_its_first_trial_resumes_that_trial(periods_a, tmp_path,
                                                              monkeypatch):
    from tfmeta.training import ranking
    original, seen = ranking.train_ranking, []

    def killed_once(periods, out, options, **kwargs):
        seen.append(options)
        if len(seen) == 1:
            raise KeyboardInterrupt("killed")
        return original(periods, out, options, **kwargs)
    monkeypatch.setattr(ranking, "train_ranking", killed_once)
    with pytest.raises(KeyboardInterrupt):
        tune(periods_a, "mf", str(tmp_path), max_trials=2, space=SPACE, fixed=FIXED)
    assert (tmp_path / "search" / "tuner0.json").exists()  # the state to reload
    result = tune(periods_a, "mf", str(tmp_path), max_trials=2, space=SPACE, fixed=FIXED)
    assert seen[1] == seen[0]  # the killed trial again, with its own values
    assert [t["trial"] for t in result["trials"]] == ["0", "1"]
    assert result["trials"][0]["values"] == {"learning_rate": seen[0].learning_rate,
                                             "embedding_dim": seen[0].embedding_dim}


def test_model_knobs_reach_the_model(periods_a, tmp_path):
    result = tune(periods_a, "gcn", str(tmp_path), max_trials=1,
                  space={"num_layers": [3], "dropout": [0.5]}, fixed=FIXED)
    options = result["best"]["options"]
    assert options["model_options"] == {"num_layers": 3, "dropout": 0.5}
    from tfmeta.training.ranking import load_trained
    scorer, _, _ = load_trained(str(tmp_path / "best"))
    model, = scorer.models
    assert model.num_layers == 3 and model.dropout == 0.5


def test_a_failing_trial_fails_the_search_loudly(periods_a, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("this trial is broken")
    monkeypatch.setattr(tuner_module, "_family",
                        lambda protocol: _broken_family(protocol, broken))
    with pytest.raises(RuntimeError, match="this trial is broken"):
        tune(periods_a, "mf", str(tmp_path), max_trials=2, space=SPACE, fixed=FIXED)
    with pytest.raises(ValueError, match="not options of protocol A"):
        tune(periods_a, "mf", str(tmp_path / "x"), space={"k": [1, 2]})


def _broken_family(protocol, broken):
    from tfmeta.training.ranking import RankingOptions
    return RankingOptions, broken, lambda m: 0.0


@pytest.mark.parametrize("search", ["bayesian", "hyperband"])
def test_bayesian_and_hyperband_on_protocol_b(small_periods, tmp_path, search):
    result = tune(small_periods, "incctr", str(tmp_path), tuner=search, max_trials=2,
                  space={"incctr_lambda": [0.1, 1.0], "learning_rate": [1e-2]},
                  fixed={"batch_size": 128}, max_budget=2)
    assert result["objective"]["name"] == "val_auc"
    scores = [t["objective"] for t in result["trials"] if t["status"] == "COMPLETED"]
    assert scores and result["best"]["objective"] == max(scores)
    assert 0.5 < result["final"]["test"]["auc"] <= 1 and np.isfinite(result["final"]["val"]["auc"])
    if search == "hyperband":  # the budget is the epochs per period
        epochs = {t["values"]["tuner/epochs"] for t in result["trials"]}
        assert epochs <= {1, 2} and result["budget"] == {"field": "epochs", "max": 2}


def test_default_spaces_are_the_papers_grids():
    assert default_space("mf", "a") == {"embedding_dim": [64, 128],
                                        "learning_rate": [1e-3, 1e-4]}
    assert default_space("lightgcn", "a")["num_layers"] == {"min": 1, "max": 4}
    gnn_sa = default_space("gnn-sa", "a")
    assert gnn_sa["dropout"] == [0.0, 0.2, 0.5] and gnn_sa["num_blocks"] == [1, 2]
    assert "num_blocks" not in default_space("gcn", "a") and "dropout" in default_space(
        "ngcf", "a")
    # The model's own knobs go to model_options (one dropout value sets every dropout).
    from tfmeta.tuning.space import model_arguments
    assert to_options({"dropout": 0.5, "num_layers": 3, "learning_rate": 1e-3},
                      model_arguments("leaprec", "a")) == {
        "learning_rate": 1e-3, "model_options": {"dropout": 0.5, "gcn_dropout": 0.5,
                                                 "num_layers": 3}}
    leap = default_space("leaprec+lightgcn", "a")
    assert leap["inner_steps"] == [1, 5, 10, 20] and "121/40" in leap["gtl_otl"]
    assert default_space("asmg-gru-multi", "b")["hidden_size"] == [4, 8, 12, 16]
    assert default_space("asmg-gru-multi", "b")["k"] == {"min": 1, "max": 6}
    assert default_space("bu-5", "b")["method"] == ["bu-3", "bu-5", "bu-7"]
    assert 10_000 in default_space("spmf", "b")["spmf_capacity"]
    assert to_options({"gtl_otl": "121/40", "granularity": "dataset"}) == {
        "gtl_dim": 121, "otl_dim": 40, "granularity": None}


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
