"""`tfmeta tune`: KerasTuner over any tfmeta method, on validation only, resumable.

    result = tune("runs/ml100k-a", "leaprec+lightgcn", "runs/tune-leap",
                  tuner="bayesian", max_trials=12)

Every trial is a run of the method's driver on the validation window (protocol A: the
model trained on train, scored on the validation candidates, objective sampled HR@10)
or periods (protocol B: updates through period 23, objective the mean AUC of periods
22-24), in OUT/search/trial_<id>/run. Then the best configuration is trained once
more, the protocol's way, and scored on the test window or periods: OUT/best (protocol
A starts it from the best trial's run, which is its val phase, and trains the test
phase only).
OUT/tuning.json holds every trial (values, objective, status, seconds), the best and
its final metrics.

KerasTuner's BaseTuner with `run_trial` overridden: no Keras model passes through
KerasTuner (1.4.8 rejects tf-keras models in `search`). A killed search resumes where
it stopped (the oracle's state in OUT/search; a trial's run continues from its last
completed epoch, iteration or period); a finished search answers from its state. A
trial that fails stops the search with its traceback (max_consecutive_failed_trials=1),
never silently. Hyperband varies the method's budget (epochs of plain protocol A
models, iterations of meta methods, epochs per period in protocol B) up to
`max_budget`; each of its trials trains from scratch.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from typing import Optional

import keras_tuner as kt

from tfmeta.choices import TUNERS
from tfmeta.data.periods import PeriodDataset
from tfmeta.training.rundir import write_json
from tfmeta.tuning.space import declare, default_space, model_arguments, to_options

OBJECTIVES = {"a": ("val_hr10", "validation sampled HR@10"),
              "b": ("val_auc", "validation AUC (periods 22-24)")}


def _family(protocol: str):
    """(options class, train function, objective from metrics) of a protocol."""
    if protocol == "a":
        from tfmeta.training.ranking import RankingOptions, train_ranking
        return RankingOptions, train_ranking, lambda m: m["val"]["sampled"]["HR@10"]
    from tfmeta.training.incremental import IncrementalOptions, train_incremental
    return IncrementalOptions, train_incremental, lambda m: m["val"]["auc"]


def budget_field(method: str, protocol: str) -> str:
    from tfmeta.training.ranking import parse_method
    meta = protocol == "a" and parse_method(method)[0] is not None
    return "iterations" if meta else "epochs"


class MethodTuner(kt.engine.base_tuner.BaseTuner):
    """Runs a tfmeta method per trial; the objective is its validation figure."""

    def __init__(self, oracle, periods_dir: str, protocol: str, fixed: dict, budget: str,
                 distribution=None, **kwargs):
        super().__init__(oracle=oracle, **kwargs)
        self.periods_dir, self.protocol, self.fixed, self.budget = (
            periods_dir, protocol, fixed, budget)
        self.distribution = distribution
        self.model_args = model_arguments(fixed["method"], protocol)

    def options(self, values: dict):
        """Driver options of a trial's values (KerasTuner's tuner/* values dropped,
        but Hyperband's tuner/epochs sets the budget)."""
        options_class, _, _ = _family(self.protocol)
        chosen = {k: v for k, v in values.items() if not k.startswith("tuner/")}
        if "tuner/epochs" in values:
            chosen[self.budget] = int(values["tuner/epochs"])
        return options_class(**{**self.fixed, **to_options(chosen, self.model_args)})

    def run_trial(self, trial, *args, **kwargs):
        # KerasTuner saves the tuner's state only when a trial ends: without this save a
        # search killed in its first trial would start afresh, and trial_0 would be
        # drawn again while its run directory still held the killed trial's run.
        self.save()
        _, train, objective = _family(self.protocol)
        out = os.path.join(self.get_trial_dir(trial.trial_id), "run")
        metrics = train(self.periods_dir, out, self.options(trial.hyperparameters.values),
                        resume=True, validation_only=True, distribution=self.distribution)
        return {OBJECTIVES[self.protocol][0]: float(objective(metrics))}

    # No Keras model is built, so there is nothing to save or load per trial.
    def save_model(self, trial_id, model, step=0):
        pass

    def load_model(self, trial):
        raise NotImplementedError("tfmeta trials are runs: see OUT/search/trial_<id>/run")


def _oracle(tuner: str, objective, max_trials: int, max_budget: int, seed: int, hp):
    # KerasTuner takes seed 0 for "no seed" (`seed or random.randint(...)`).
    common = dict(objective=objective, seed=seed + 1, hyperparameters=hp,
                  max_consecutive_failed_trials=1)
    if tuner == "random":
        return kt.oracles.RandomSearchOracle(max_trials=max_trials, **common)
    if tuner == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(max_trials=max_trials, **common)
    if tuner == "hyperband":
        return kt.oracles.HyperbandOracle(max_epochs=max_budget, factor=3, **common)
    if tuner == "grid":  # every combination in order, up to max_trials
        return kt.oracles.GridSearchOracle(max_trials=max_trials, **common)
    raise ValueError(f"unknown tuner {tuner!r}; choose one of {', '.join(TUNERS)}")


def _start_from_trial(trial_dir: str, final_dir: str) -> None:
    """Protocol A: the best trial's run is the final run's val phase (same options and
    seed, deterministic ops), so the final run starts as a copy of it and resumes with
    the test phase instead of training the val phase again. Copied aside, then renamed:
    a killed copy leaves no half run where the resume looks."""
    if os.path.exists(final_dir):
        return  # a resumed search: the final run is already under way (or done)
    partial = f"{final_dir}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(os.path.join(trial_dir, "run"), partial)
    os.replace(partial, final_dir)


def tune(periods_dir: str, method: str, out: str, tuner: str = "random",
         max_trials: int = 10, space: Optional[dict] = None, seed: int = 0,
         max_budget: Optional[int] = None, fixed: Optional[dict] = None,
         distribution=None) -> dict:
    """Searches `space` (default: the papers' grid, tfmeta.tuning.space) for `method`
    on the validation window / periods, then trains the best configuration and scores
    it on the test window / periods. Returns (and writes) OUT/tuning.json.
    distribution: the tf.distribute.Strategy (or its name) every trial trains under;
    one process (a MirroredStrategy over its GPUs), not a multi-worker cluster."""
    from tfmeta import distribute
    distribution = distribute.from_name(distribution)
    if distribute.task(distribution)[0] is not None:
        raise ValueError("tfmeta tune runs in one process: use --distribute mirrored, or "
                         "tune on one worker")
    protocol = PeriodDataset(periods_dir).protocol
    options_class, train, _ = _family(protocol)
    space = dict(space or default_space(method, protocol))
    fixed = {"method": method, "seed": seed, **(fixed or {})}
    unknown = set(to_options({k: v[0] if isinstance(v, list) else v.get("min")
                              for k, v in space.items()},
                             model_arguments(method, protocol))) | set(fixed)
    unknown -= {f.name for f in dataclasses.fields(options_class)}
    if unknown:
        raise ValueError(f"search space: {', '.join(sorted(unknown))} not options of "
                         f"protocol {protocol.upper()} methods ({options_class.__name__})")
    if tuner == "grid":
        continuous = [k for k, v in space.items() if isinstance(v, dict) and "step" not in v]
        if continuous:
            raise ValueError(f"grid search needs a finite grid: give {', '.join(continuous)} "
                             "a list of values or a \"step\", or use --tuner random")
    budget = budget_field(method, protocol)
    max_budget = max_budget or getattr(options_class(), budget)
    hp = kt.HyperParameters()
    declare(hp, space)
    name, description = OBJECTIVES[protocol]
    search = MethodTuner(
        _oracle(tuner, kt.Objective(name, "max"), max_trials, max_budget, seed, hp),
        periods_dir, protocol, fixed, budget, distribution, directory=out,
        project_name="search", overwrite=False)
    search.search()
    trials = []
    for trial in sorted(search.oracle.trials.values(), key=lambda t: int(t.trial_id)):
        run = os.path.join(search.get_trial_dir(trial.trial_id), "run", "metrics.json")
        seconds = json.load(open(run))["seconds"] if os.path.exists(run) else None
        trials.append({"trial": trial.trial_id, "status": trial.status,
                       "values": dict(trial.hyperparameters.values),
                       "objective": trial.score, "seconds": seconds})
    best = search.oracle.get_best_trials(1)[0]
    best_options = search.options(best.hyperparameters.values)
    if protocol == "a":
        _start_from_trial(search.get_trial_dir(best.trial_id), os.path.join(out, "best"))
    final = train(periods_dir, os.path.join(out, "best"), best_options, resume=True,
                  distribution=distribution)
    result = {"method": method, "protocol": protocol, "periods": os.path.abspath(periods_dir),
              "tuner": tuner, "objective": {"name": name, "description": description,
                                            "direction": "max"},
              "space": space, "fixed": fixed, "budget": {"field": budget, "max": max_budget},
              "trials": trials,
              "best": {"trial": best.trial_id, "values": dict(best.hyperparameters.values),
                       "objective": best.score, "options": dataclasses.asdict(best_options)},
              "final": {"run": os.path.join(out, "best"), "val": final["val"],
                        "test": final["test"], "seconds": final["seconds"]}}
    write_json(os.path.join(out, "tuning.json"), result)
    return result
