"""The LeapRec benchmark's tables and claims, from the records of finished runs.

A run's record is its `metrics.json` (`tfmeta train`); `figures_row` turns a setting's
runs (one per seed) into a table row (mean ± std per metric, budget, training loss,
validation curve), and the summaries test the issue's claims on the tables: LeapRec
beats every baseline (`summarize_models`), the plug-in improves every base model and
Leap beats FOMAML (`summarize_plugins`), the GTL / OTL split (`summarize_split`) and
the sensitivities (`summarize_sensitivity`).
"""
import dataclasses
import math
from typing import Optional

import numpy as np

from tfmeta.evaluation.metrics import relative_change
from tfmeta.training.ranking import DEFAULT_MODEL, RankingOptions, parse_method

from benchmarks.reports import stats

CLAIMED = "leaprec"
SAMPLED = ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR")
FULL = ("HR@10", "NDCG@10", "MRR")
TEST_COLUMNS = tuple(f"test/sampled/{k}" for k in SAMPLED) + tuple(f"test/full/{k}"
                                                                   for k in FULL)
HEAD = "test/sampled/HR@10"        # the headline column
NDCG = "test/sampled/NDCG@10"
VAL_HEAD = "val/sampled/HR@10"
SHIFT_GROUPS = 4                   # representation shift: at most this many item groups



def option_flags(options: dict) -> list:
    out = []
    for key, value in options.items():
        flag = f"--{key.replace('_', '-')}"
        if isinstance(value, bool):  # switches (choose_budget)
            out += [flag] if value else []
        elif value is not None:
            out += [flag, str(value)]
    return out


def chosen_budget(metrics: dict) -> Optional[int]:
    """The epochs / iterations the run's test model trained for."""
    return len(metrics["training"]["test"]["losses"])


def budget_cap(metrics: dict) -> Optional[int]:
    """The epochs / iterations the val phase trained for, scoring validation after each,
    when the run chose its test budget on validation (None: a fixed budget)."""
    return len(metrics["budget"]["curve"]) if "budget" in metrics else None


def at_cap(metrics: dict) -> Optional[bool]:
    """Did validation choose the val phase's last epoch / iteration (its curve may still
    have been rising: the cap, not the method, limited the run)? None: fixed budget."""
    cap = budget_cap(metrics)
    return None if cap is None else chosen_budget(metrics) == cap


def last_loss(metrics: dict) -> float:
    """The training loss of the test model's last epoch / iteration (mean over time
    steps for meta-learning runs, whose losses are per time step)."""
    return float(np.mean(metrics["training"]["test"]["losses"][-1]))


def _get(metrics: dict, column: str):
    window, kind, key = column.split("/")
    return metrics[window][kind][key]


def column_mean(row: dict, column: str):
    return row["columns"][column]["mean"]


def figures_row(results: list) -> dict:
    """Mean ± std over seeds of every metric of a setting's runs."""
    ms = [r["metrics"] for r in results]
    columns = {c: stats(_get(m, c) for m in ms)
               for c in TEST_COLUMNS + tuple(f"val/sampled/{k}" for k in SAMPLED)
               + tuple(f"val/full/{k}" for k in FULL)}
    processes = [r["process"] for r in results if r["process"].get("cpu_seconds")]
    return {"seeds": [r["seed"] for r in results], "runs": [r["id"] for r in results],
            "columns": columns,
            "seconds": stats(m["seconds"] for m in ms),
            "budget": stats(chosen_budget(m) for m in ms),
            "at_cap": [sum(bool(at_cap(m)) for m in ms), sum(at_cap(m) is not None for m in ms)],
            "last_loss": stats(last_loss(m) for m in ms),
            "cpu_seconds": stats(p["cpu_seconds"] for p in processes),
            "time_steps": len(ms[0]["training"]["test"]["time_steps"]) if ms else None,
            "val_curve": val_curve(ms),
            "by_seed": {r["seed"]: {c: _get(r["metrics"], c) for c in columns}
                        for r in results}}


def val_curve(ms: list) -> Optional[list]:
    """Validation HR@10 after each epoch / iteration of the val phase, mean over the runs
    (over the units every run has); None without `--choose-budget` curves."""
    curves = [[p["HR@10"] for p in m["budget"]["curve"]] for m in ms if "budget" in m]
    if not curves or len(curves) < len(ms):
        return None
    n = min(len(c) for c in curves)
    return np.mean([c[:n] for c in curves], axis=0).tolist()


def still_rising(curve: Optional[list], last: int = 3) -> Optional[float]:
    """How much a validation curve rose over its last `last` units (None: too short)."""
    return curve[-1] - curve[-1 - last] if curve and len(curve) > last else None


def best_per_column(table: dict, columns) -> dict:
    best = {}
    for column in columns:
        values = {m: column_mean(row, column) for m, row in table.items()
                  if column_mean(row, column) is not None}
        if values:
            target = max(values.values())
            best[column] = sorted(m for m, v in values.items() if v == target)
    return best


def _rel_change(row: dict, ref: dict, column: str) -> dict:
    """relative_change(setting, reference) on the same seed, mean ± std over seeds."""
    mine, theirs = row["by_seed"], ref["by_seed"]
    return stats(relative_change(mine[s][column], theirs[s][column])
                 for s in mine if s in theirs and theirs[s][column])


def _seed_wins(row: dict, ref: dict, column: str) -> list:
    common = [s for s in row["by_seed"] if s in ref["by_seed"]]
    return [sum(row["by_seed"][s][column] > ref["by_seed"][s][column] for s in common),
            len(common)]


def _verdict(wins: int, total: int) -> str:
    if not total:
        return "not evaluated"
    return "supported" if wins == total else "partly supported" if wins else "not supported"


def summarize_models(table: dict) -> dict:
    """LeapRec beats every baseline? Per test metric, against the best plain model."""
    best = best_per_column(table, TEST_COLUMNS + (VAL_HEAD,))
    baselines = [m for m in table if parse_method(m)[0] is None]
    if CLAIMED not in table or not baselines:
        return {"best": best, "claim": {"verdict": "not evaluated",
                                        "why": f"needs {CLAIMED} and a plain model"}}
    mine = table[CLAIMED]
    per_metric = {}
    for c in TEST_COLUMNS:
        rival = max(baselines, key=lambda m: column_mean(table[m], c))
        per_metric[c] = {"leaprec": column_mean(mine, c), "best_baseline": rival,
                         "baseline": column_mean(table[rival], c),
                         "beats": column_mean(mine, c) > column_mean(table[rival], c)}
    wins = sum(v["beats"] for v in per_metric.values())
    rival = per_metric[HEAD]["best_baseline"]
    stds = [s for s in (mine["columns"][HEAD]["std"], table[rival]["columns"][HEAD]["std"])
            if s]
    noise = max(stds) if stds else None
    gap = per_metric[HEAD]["leaprec"] - per_metric[HEAD]["baseline"]

    def order(column):
        return sorted(table, key=lambda m: -column_mean(table[m], column))
    claim = {
        "verdict": _verdict(wins, len(TEST_COLUMNS)), "baselines": baselines,
        "per_metric": per_metric, "metrics_won": [wins, len(TEST_COLUMNS)],
        "strongest_baseline": rival, "hr10_gap": gap, "seed_std_hr10": noise,
        "gap_within_seed_noise": (abs(gap) <= noise) if noise is not None else None,
        "seeds_beating_strongest_baseline": _seed_wins(mine, table[rival], HEAD),
        "rank_hr10": [order(HEAD).index(CLAIMED) + 1, len(table)],
        "rank_full_hr10": [order("test/full/HR@10").index(CLAIMED) + 1, len(table)],
        "order_sampled_hr10": order(HEAD), "order_full_hr10": order("test/full/HR@10"),
        "seeds": len(mine["seeds"]),
    }
    if DEFAULT_MODEL in table and rival != DEFAULT_MODEL:
        # LeapRec trains DEFAULT_MODEL: how much of the gap is that model (trained
        # plainly, it is below the rival too), how much LeapRec's training of it
        own = column_mean(table[DEFAULT_MODEL], HEAD)
        claim["gap_split"] = {"model": DEFAULT_MODEL,
                              "model_gap": own - column_mean(table[rival], HEAD),
                              "training_gap": column_mean(mine, HEAD) - own}
    return {"best": best, "claim": claim}


def summarize_plugins(table: dict, pairs) -> dict:
    """Plug-in variants against their base model; Leap against FOMAML."""
    groups, plug, leap_fomaml = [], [], []
    for base, variants in pairs:
        if base not in table:
            continue
        rows = []
        for m in (base, *variants):
            if m not in table:
                continue
            meta = parse_method(m)[0]
            rows.append({"method": m, "meta": meta, "rel": None if m == base else {
                c: _rel_change(table[m], table[base], c)
                for c in (HEAD, NDCG, "test/full/HR@10")}})
        groups.append({"base": base, "rows": rows})
        for r in rows:
            if r["meta"] == "leap":
                hr, nd = r["rel"][HEAD]["mean"], r["rel"][NDCG]["mean"]
                plug.append({"base": base, "method": r["method"], "rel_hr10": hr,
                             "rel_ndcg10": nd,
                             "improves": hr is not None and nd is not None and hr > 0 and nd > 0,
                             "seeds_improving_hr10": _seed_wins(table[r["method"]],
                                                                table[base], HEAD)})
        leap = [r["method"] for r in rows if r["meta"] == "leap"]
        fomaml = [r["method"] for r in rows if r["meta"] == "fomaml"]
        if leap and fomaml:
            a, b = table[leap[0]], table[fomaml[0]]
            leap_fomaml.append({
                "model": base, "leap": leap[0], "fomaml": fomaml[0],
                "hr10": [column_mean(a, HEAD), column_mean(b, HEAD)],
                "ndcg10": [column_mean(a, NDCG), column_mean(b, NDCG)],
                "beats": (column_mean(a, HEAD) > column_mean(b, HEAD)
                          and column_mean(a, NDCG) > column_mean(b, NDCG)),
                "seeds_beating_hr10": _seed_wins(a, b, HEAD)})
    improved = sum(p["improves"] for p in plug)
    leap_wins = sum(x["beats"] for x in leap_fomaml)
    return {"groups": groups,
            "plug_in": {"verdict": _verdict(improved, len(plug)), "per_model": plug,
                        "improved": [improved, len(plug)]},
            "leap_vs_fomaml": {"verdict": _verdict(leap_wins, len(leap_fomaml)),
                               "per_model": leap_fomaml, "wins": [leap_wins, len(leap_fomaml)]}}


def _best_by(rows: dict, column: str):
    """The label of the best mean in a column; ties name every label ("A and B (tied)")."""
    values = {k: column_mean(r, column) for k, r in rows.items()
              if column_mean(r, column) is not None}
    if not values:
        return None
    best = [k for k, v in values.items() if v == max(values.values())]
    return best[0] if len(best) == 1 else " and ".join(best) + " (tied)"


def summarize_split(table: dict, settings: list) -> dict:
    dims = {s.label: dict(s.varied) for s in settings if s.label in table}
    both = [k for k, d in dims.items() if d["gtl_dim"] > 0 and d["otl_dim"] > 0]
    single = [k for k, d in dims.items() if (d["gtl_dim"] > 0) != (d["otl_dim"] > 0)]
    out = {"dims": dims, "best_by_validation": _best_by(table, VAL_HEAD),
           "best_on_test": _best_by(table, HEAD), "both_beat_single": None}
    if both and single:
        comp = {}
        for column in (HEAD, VAL_HEAD):
            b = max(both, key=lambda k: column_mean(table[k], column))
            s = max(single, key=lambda k: column_mean(table[k], column))
            comp[column] = {"best_both": b, "best_single": s,
                            "beats": column_mean(table[b], column) > column_mean(table[s], column),
                            "ties": column_mean(table[b], column) == column_mean(table[s], column)}
        out["both_beat_single"] = comp
    return out


def summarize_sensitivity(table: dict, settings: list) -> dict:
    k_rows = {s.label: dict(s.varied)["inner_steps"] for s in settings
              if dict(s.varied).get("inner_steps") is not None and s.label in table}
    # finest first: more time steps in the same span
    g_rows = sorted((s.label for s in settings if "granularity" in dict(s.varied)
                     and s.label in table), key=lambda g: -(table[g].get("time_steps") or 0))
    lr_rows = {s.label: dict(s.varied)["meta_learning_rate"] for s in settings
               if "meta_learning_rate" in dict(s.varied) and s.label in table}
    out = {"k": {}, "granularity": {}, "meta_learning_rate": {}}
    if k_rows:
        labels = sorted(k_rows, key=k_rows.get)
        hr = [column_mean(table[label], HEAD) for label in labels]
        steps = np.diff(hr)
        trend = ("rises with K" if np.all(steps > 0) else "falls with K" if np.all(steps < 0)
                 else "not monotone in K") if len(hr) > 1 else None
        secs = [table[label]["seconds"]["mean"] for label in labels]
        out["k"] = {"values": [k_rows[label] for label in labels], "labels": labels,
                    "test_hr10": hr, "val_hr10": [column_mean(table[label], VAL_HEAD)
                                                  for label in labels],
                    "trend": trend,
                    "best_by_validation": _best_by({k: table[k] for k in labels}, VAL_HEAD),
                    "best_on_test": _best_by({k: table[k] for k in labels}, HEAD),
                    "seconds_max_over_min_k": secs[-1] / secs[0] if secs[0] else None}
    if g_rows:
        sub = {k: table[k] for k in g_rows}
        out["granularity"] = {"labels": g_rows,
                              "time_steps": [table[g].get("time_steps") for g in g_rows],
                              "best_by_validation": _best_by(sub, VAL_HEAD),
                              "best_on_test": _best_by(sub, HEAD)}
    if lr_rows:
        labels = sorted(lr_rows, key=lr_rows.get)
        sub = {k: table[k] for k in labels}
        out["meta_learning_rate"] = {"labels": labels,
                                     "values": [lr_rows[label] for label in labels],
                                     "best_by_validation": _best_by(sub, VAL_HEAD),
                                     "best_on_test": _best_by(sub, HEAD)}
    return out


def loss_summary(metrics: dict) -> dict:
    """LeapRec's mean inner loss of each time step and iteration (train + val phase)."""
    training = metrics["training"]["test"]
    losses = np.asarray(training["losses"], float)  # [iterations, time steps]
    out = {"time_steps": training["time_steps"], "losses": losses.tolist(),
           "iterations": int(losses.shape[0]),
           "first_iteration_mean": float(losses[0].mean()),
           "last_iteration_mean": float(losses[-1].mean()),
           "steps_falling": None}
    if losses.shape[0] > 1:
        out["steps_falling"] = [int(np.sum(losses[-1] < losses[0])), int(losses.shape[1])]
    return out


def _cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return 1.0 - np.sum(a * b, axis=-1) / np.maximum(norms, 1e-12)


def representation_shift(path: str) -> dict:
    """The popular items grouped by the time step where they were most popular (their
    largest share of the recorded items' interactions of a step, so that steps with more
    data do not claim every item), in up to SHIFT_GROUPS contiguous ranges of time
    steps; per part (GTL, OTL) and group, the mean cosine distance of the items'
    representations after each time step to their representation after the first."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    counts, labels = arrays["counts"], [str(s) for s in arrays["time_steps"]]
    steps = counts.shape[0]
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    peak = np.argmax(share, axis=0)
    groups = []
    for block in np.array_split(np.arange(steps), min(SHIFT_GROUPS, steps)):
        members = np.flatnonzero((peak >= block[0]) & (peak <= block[-1]))
        if len(members):
            name = labels[block[0]] if len(block) == 1 else f"{labels[block[0]]} .. " \
                                                            f"{labels[block[-1]]}"
            groups.append({"label": f"peak in {name}", "steps": [int(block[0]),
                                                                 int(block[-1])],
                           "items": int(len(members)), "members": members})
    parts = {}
    for part in ("gtl", "otl"):
        if part not in arrays or not arrays[part].size:
            continue
        reps = arrays[part]  # [T, n, d]
        dist = _cosine_distance(reps, reps[:1])  # [T, n]
        parts[part] = {"all": dist.mean(axis=1).tolist(),
                       "groups": [dist[:, g["members"]].mean(axis=1).tolist()
                                  for g in groups],
                       "last_step_mean": float(dist[-1].mean())}
    for g in groups:
        del g["members"]
    return {"time_steps": labels, "items": int(counts.shape[1]), "groups": groups,
            "parts": parts,
            "otl_moves_more": (parts["otl"]["last_step_mean"] > parts["gtl"]["last_step_mean"]
                               if "otl" in parts and "gtl" in parts else None)}


def effective_options(options: dict) -> dict:
    """The RankingOptions a run with these overrides uses."""
    return {**dataclasses.asdict(RankingOptions()), **options}


def gradient_steps(row: dict, method: str, options: dict, examples: int) -> Optional[float]:
    """Mean gradient steps of a row's test models: K per time step and iteration for a
    meta-learner, one per minibatch of the `examples` and epoch for a plain model."""
    if row["budget"]["mean"] is None:
        return None
    per_unit = (row["time_steps"] * options["inner_steps"] if parse_method(method)[0]
                else math.ceil(examples / options["batch_size"]))
    return row["budget"]["mean"] * per_unit


def passes_over_data(row: dict, method: str, options: dict, step_rows: Optional[dict],
                     examples: int) -> Optional[float]:
    """Mean passes of a row's test models over the train + validation interactions: the
    examples their gradient steps drew, per interaction. A plain model's epoch is one
    pass; a meta-learner draws K minibatches of min(batch, the step's interactions) per
    time step and iteration, however many interactions the step has, so it may see a
    big step's interactions in part and a small step's many times over. None when the
    time steps' sizes are unknown (another granularity than the build's)."""
    if row["budget"]["mean"] is None:
        return None
    if not parse_method(method)[0]:
        return row["budget"]["mean"]
    per_iteration = meta_passes_per_iteration(options, step_rows, examples)
    return None if per_iteration is None else row["budget"]["mean"] * per_iteration


def meta_passes_per_iteration(options: dict, step_rows: Optional[dict],
                              examples: int) -> Optional[float]:
    """The passes over `examples` interactions one meta-learner iteration draws over time
    steps of these sizes: K minibatches of min(batch, the step's interactions) each.
    None when the sizes are unknown (another granularity than the build's)."""
    if options["granularity"] is not None or not step_rows:
        return None
    drawn = options["inner_steps"] * sum(min(options["batch_size"], n)
                                         for n in step_rows.values())
    return drawn / examples


def at_equal_data(table: dict, meta: str, plain: str, options: dict,
                  train_step_rows: Optional[dict], train_examples: int) -> Optional[dict]:
    """The val phase's curves compared at equal data: the meta-learner's validation
    HR@10 after its last iteration, and the plain model's after the epoch nearest the
    passes over the train window those iterations drew (at least one). None without
    curves or step sizes."""
    mine, theirs = table[meta].get("val_curve"), table[plain].get("val_curve")
    per_iteration = meta_passes_per_iteration(options, train_step_rows, train_examples)
    if not mine or not theirs or per_iteration is None:
        return None
    passes = len(mine) * per_iteration
    epoch = min(len(theirs), max(1, round(passes)))
    return {"iterations": len(mine), "passes": passes, "hr10": mine[-1],
            "epoch": epoch, "plain_hr10": theirs[epoch - 1]}
