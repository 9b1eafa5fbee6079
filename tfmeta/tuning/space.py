"""Search spaces: the papers' grids as defaults, or the user's own.

A space is {option: values}: a list is a choice (KerasTuner `hp.Choice`), a dict
{"min", "max"[, "step"][, "sampling": "log"]} a range (`hp.Int` when min and max are
integers, else `hp.Float`). Options are the driver's (tfmeta.training.ranking.
RankingOptions, tfmeta.training.incremental.IncrementalOptions) plus two shorthands:
`gtl_otl` ("121/40": LeapRec's GTL and OTL sizes together) and, for the batch update,
`method` (bu-3, bu-5, bu-7: its window). `granularity` "dataset" means the dataset's
own time steps.
"""
from __future__ import annotations

import json
from typing import Optional

# LeapRec paper (sec. 5.1, Table 4) and ASMG paper (sec. 5.1.4) grids.
RANKING_PLAIN = {"embedding_dim": [64, 128], "learning_rate": [1e-3, 1e-4]}
# The models' own knobs, where the model has them (its constructor's arguments).
MODEL_GRID = {"dropout": [0.0, 0.2, 0.5], "num_layers": {"min": 1, "max": 4},  # GNN layers
              "num_blocks": [1, 2]}                                             # SA layers
DROPOUTS = ("dropout", "gcn_dropout", "message_dropout")  # one search value sets them all
RANKING_META = {"gtl_otl": ["64/64", "128/0", "121/40", "91/91", "40/121", "0/128"],
                "learning_rate": [1e-3, 1e-4], "meta_learning_rate": [1e-2, 1e-3, 1e-4],
                "inner_steps": [1, 5, 10, 20], "granularity": ["dataset", "quarter", "week"]}
ASMG = {"k": {"min": 1, "max": 6}, "meta_learning_rate": [1e-2, 1e-3, 1e-4]}
ASMG_GRU = {**ASMG, "hidden_size": [4, 8, 12, 16]}
BASELINES = {"iu": {"learning_rate": [1e-2, 1e-3, 1e-4]},
             "bu": {"method": ["bu-3", "bu-5", "bu-7"], "learning_rate": [1e-2, 1e-3, 1e-4]},
             "incctr": {"incctr_lambda": [0.1, 0.3, 0.5, 1.0],
                        "learning_rate": [1e-2, 1e-3, 1e-4]},
             "spmf": {"spmf_capacity": [2_500, 5_000, 10_000, 20_000],
                      "learning_rate": [1e-2, 1e-3, 1e-4]},
             "sml": {"meta_learning_rate": [1e-2, 1e-3, 1e-4]}}


def model_arguments(method: str, protocol: str) -> set:
    """The constructor arguments of a protocol A method's model (empty for B)."""
    if protocol != "a":
        return set()
    import inspect
    from tfmeta.models import MODELS
    from tfmeta.training.ranking import parse_method
    return set(inspect.signature(MODELS[parse_method(method)[1]].__init__).parameters)


def default_space(method: str, protocol: str) -> dict:
    """The papers' grid for a method of protocol "a" or "b"."""
    if protocol == "a":
        from tfmeta.training.ranking import parse_method
        meta = parse_method(method)[0] is not None
        accepted = model_arguments(method, protocol)
        knobs = {k: v for k, v in MODEL_GRID.items()
                 if k in accepted or (k == "dropout" and accepted & set(DROPOUTS))}
        return {**(RANKING_META if meta else RANKING_PLAIN), **knobs}
    if method.startswith("asmg-gru"):
        return dict(ASMG_GRU)
    if method.startswith("asmg"):
        return dict(ASMG)
    return dict(BASELINES["bu" if method.startswith("bu-") else method])


def load_space(path: Optional[str]) -> Optional[dict]:
    """A user's space from a JSON file (None: no file)."""
    if path is None:
        return None
    with open(path) as f:
        space = json.load(f)
    if not isinstance(space, dict) or not space:
        raise ValueError(f"{path}: a search space is a JSON object {{option: values}}")
    return space


def declare(hp, space: dict) -> dict:
    """Declares each option of space on KerasTuner's `hp`; returns their values."""
    values = {}
    for name, spec in space.items():
        if isinstance(spec, list):
            if not spec:
                raise ValueError(f"search space: {name} has no values")
            values[name] = hp.Choice(name, spec)
        elif isinstance(spec, dict) and {"min", "max"} <= set(spec):
            kind = hp.Int if all(isinstance(spec[k], int) for k in ("min", "max")) else hp.Float
            extra = {k: spec[k] for k in ("step", "sampling") if k in spec}
            values[name] = kind(name, spec["min"], spec["max"], **extra)
        else:
            raise ValueError(f"search space: {name} must be a list of values or "
                             "{\"min\": ..., \"max\": ...}")
    return values


def to_options(values: dict, model_args: set = frozenset()) -> dict:
    """Search values -> driver options (expands the shorthands; the model's own
    arguments, `model_args`, go into model_options)."""
    options = dict(values)
    model_options = {}
    if "dropout" in options and model_args & set(DROPOUTS):
        value = options.pop("dropout")
        model_options.update({k: value for k in DROPOUTS if k in model_args})
    for name in [k for k in options if k in model_args and k != "embedding_dim"
                 and k != "max_len"]:
        model_options[name] = options.pop(name)
    if model_options:
        options["model_options"] = model_options
    if "gtl_otl" in options:
        gtl, _, otl = str(options.pop("gtl_otl")).partition("/")
        options.update(gtl_dim=int(gtl), otl_dim=int(otl))
    if options.get("granularity") == "dataset":
        options["granularity"] = None
    return options
