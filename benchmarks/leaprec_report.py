"""The LeapRec benchmark's markdown report (benchmarks/results/leaprec.md) from its JSON
record: the summary of the claims, then per dataset its periods, the code and commands
the runs used, each experiment's table and verdicts, the figures and every run."""
import dataclasses

import numpy as np

from tfmeta.training.ranking import DEFAULT_MODEL, RankingOptions, parse_method

from benchmarks import machine as machine_info
from benchmarks.leaprec_tables import (CLAIMED, HEAD, NDCG, SAMPLED, SHIFT_GROUPS,
                                       TEST_COLUMNS, VAL_HEAD, at_equal_data, best_per_column,
                                       budget_cap, chosen_budget, effective_options,
                                       gradient_steps, option_flags, passes_over_data,
                                       still_rising)
from benchmarks.machine import machine_of
from benchmarks.periods import where_built
from benchmarks.reports import bold, code_lines, pct, pm, process_cells, run_marks

def under_way_text(u: dict) -> str:
    """e.g. "val phase, 5 of 10 iterations, 4,544 s"."""
    of = f" of {u['cap']}" if u["cap"] else ""
    return f"{u['phase']} phase, {u['done']}{of} {u['unit']}, {u['seconds']:,.0f} s"


def _cell(row: dict, column: str, best: dict, key: str) -> str:
    return bold(pm(row["columns"][column]), key in best.get(column, []))


def _options_text(options: dict) -> str:
    if not options:
        return "the driver's defaults"
    return " ".join(option_flags(options))


def _defaults_text() -> str:
    d = dataclasses.asdict(RankingOptions())
    return ", ".join(f"{k} {v}" for k, v in d.items() if k not in ("method", "seed"))


def _test_examples(section: dict) -> int:
    """The interactions the test models train on (train + validation windows)."""
    windows = section["periods"]["windows"]
    return windows["train"] + windows["val"]


def _work_of(section: dict, table: dict, options: dict, examples: int) -> tuple:
    """({method: gradient steps}, {method: passes over the data}) of a table's test
    models (None where unknown)."""
    step_rows = section["periods"].get("step_rows")
    return ({m: gradient_steps(row, m, options, examples) for m, row in table.items()},
            {m: passes_over_data(row, m, options, step_rows, examples)
             for m, row in table.items()})


def _work_cells(steps: float | None, passes: float | None) -> str:
    """The gradient steps and passes over the data cells of a row."""
    return (f"{'n/a' if steps is None else f'{steps:,.0f}'} | "
            f"{'n/a' if passes is None else f'{passes:.1f}'}")


def _training_columns_note(section: dict, options: dict, examples: int) -> str:
    """What the test budget, gradient steps, passes and last loss columns count."""
    step_rows = section["periods"].get("step_rows")
    return (f"Test budget: the epochs (plain models, at most {options['epochs']}) or "
            f"iterations (meta methods, at most {options['iterations']}) the test model "
            "trained for; with `--choose-budget` (the default here) the count whose "
            "validation HR@10 was best, validation scored after each (PROTOCOLS.md A.3); "
            "\"at cap\": the runs whose validation chose the last one, so that their curve "
            "may still have been rising. Gradient steps: of the test model, "
            f"{options['inner_steps']} (K) per time step and iteration for a meta-learner, "
            f"one per minibatch of {options['batch_size']} of the {examples:,} train + "
            "validation interactions and epoch for a plain model. Passes over the data: "
            "the examples those steps drew per train + validation interaction (an epoch is "
            f"one; a meta-learner draws {options['inner_steps']} minibatches of at most "
            f"{options['batch_size']} per time step and iteration"
            + (f"; the test models' {_step_size_text(step_rows)})" if step_rows else ")")
            + ". Last train loss: the BPR loss of the test model's last epoch / iteration "
            "(mean over time steps); a meta-learner's scores are the sum of its GTL and OTL "
            "models'.")


def render_models(section: dict, exp: dict) -> list:
    table, s = exp["table"], exp["summary"]
    best, claim = s["best"], s["claim"]
    options, examples = effective_options(exp["options"]), _test_examples(section)
    steps_of, passes_of = _work_of(section, table, options, examples)
    cols = TEST_COLUMNS + (VAL_HEAD,)
    out = [f"### 1. Models: test window, mean ± std over {len(exp['seeds'])} seed(s)", "",
           "| method | " + " | ".join(SAMPLED) + " | full HR@10 | full NDCG@10 | full MRR "
           "| val HR@10 | test budget (at cap) | gradient steps | passes over the data "
           "| last train loss | s per run | CPU s per run |",
           "|---|" + "---:|" * (len(cols) + 6)]
    for m, row in table.items():
        budget, loss = _training_cells(row)
        steps, passes = steps_of[m], passes_of[m]
        out.append(f"| {bold(m, m == CLAIMED)} | "
                   + " | ".join(_cell(row, c, best, m) for c in cols)
                   + f" | {budget} | {_work_cells(steps, passes)} | {loss} "
                   f"| {pm(row['seconds'], '.0f')} | {pm(row['cpu_seconds'], '.0f')} |")
    out += ["", "Bold: the best mean per column. Sampled metrics rank the positive among it "
            "and 99 sampled negatives; \"full\" ranks it among every warm item the user had "
            "not touched before (PROTOCOLS.md A.7-A.8). s per run: the run's own clock "
            "(both phases: train -> validation, train + validation -> test). "
            + _training_columns_note(section, options, examples), ""]
    if exp.get("png"):
        out += [f"![test HR@10 of every model]({exp['png']})", "",
                f"Red: {CLAIMED}; orange: the {DEFAULT_MODEL} model it trains, trained "
                "plainly.", ""]
    if exp.get("curves_png"):
        out += [f"![validation HR@10 while training]({exp['curves_png']})", "",
                "Validation HR@10 after each epoch / iteration of the val phase (the curve "
                "`--choose-budget` picks the test budget from), mean over seeds: a curve "
                "still rising at its last point was stopped by the budget cap.", ""]
    out += ["**Claim: LeapRec beats every baseline.**", ""]
    if claim["verdict"] == "not evaluated":
        return out + [f"Not evaluated: {claim['why']}.", ""]
    wins, total = claim["metrics_won"]
    rival = claim["strongest_baseline"]
    lost = [c.replace("test/", "") for c, v in claim["per_metric"].items() if not v["beats"]]
    sw, sn = claim["seeds_beating_strongest_baseline"]
    out += [f"Measured: **{claim['verdict']}**: {CLAIMED} has the best mean of the "
            f"{len(claim['baselines'])} plain models ({', '.join(claim['baselines'])}) on "
            f"{wins} of {total} test metrics"
            + (f"; it loses on {', '.join(lost)}." if lost else "."),
            f"- Sampled HR@10: {CLAIMED} {pm(table[CLAIMED]['columns'][HEAD])} against "
            f"the strongest baseline {rival} {pm(table[rival]['columns'][HEAD])} (gap "
            f"{claim['hr10_gap']:+.4f}"
            + (f", {'within' if claim['gap_within_seed_noise'] else 'outside'} the seed std "
               f"{claim['seed_std_hr10']:.4f}" if claim["seed_std_hr10"] is not None else "")
            + f"; higher on {sw} of {sn} seeds).",
            f"- Rank of {CLAIMED} among the {claim['rank_hr10'][1]} methods run: "
            f"{claim['rank_hr10'][0]} by sampled HR@10, {claim['rank_full_hr10'][0]} by "
            f"full-ranking HR@10.",
            "- Order by sampled HR@10: " + " > ".join(claim["order_sampled_hr10"])
            + "; by full HR@10: " + " > ".join(claim["order_full_hr10"])
            + (" (the same)." if claim["order_sampled_hr10"] == claim["order_full_hr10"]
               else " (sampled and full ranking order the methods differently).")]
    mine, theirs = steps_of[CLAIMED], steps_of[rival]
    if mine is not None and theirs:
        capped, capped_of = table[CLAIMED]["at_cap"]
        passes = (passes_of[CLAIMED], passes_of[rival])
        steps = (f"{mine / theirs:.0%} of {rival}'s gradient steps ({mine:,.0f} against "
                 f"{theirs:,.0f})")
        # Passes lead: a meta-learner's step on a small time step draws less than a
        # minibatch, so its gradient steps alone overstate the data it saw.
        out.append(f"- Training: {CLAIMED}'s test models "
                   + (f"drew {passes[0]:.1f} examples per train + validation interaction "
                      f"against {rival}'s {passes[1]:.1f}, in {steps}"
                      if None not in passes else f"took {steps}")
                   + f"; they ended at a train loss of {pm(table[CLAIMED]['last_loss'], '.3f')}"
                   f" against {pm(table[rival]['last_loss'], '.3f')}"
                   + (f"; validation chose the last of its {options['iterations']} "
                      f"iterations on {capped} of {capped_of} seeds" if capped else "")
                   + ".")
    rises = {m: still_rising(table[m].get("val_curve")) for m in (CLAIMED, rival)}
    if None not in rises.values():
        out.append(f"- Validation while training (the val phase, mean over seeds): "
                   f"{CLAIMED}'s HR@10 rose by {rises[CLAIMED]:+.4f} over its last 3 "
                   f"iterations, {rival}'s by {rises[rival]:+.4f} over its last 3 "
                   f"{'iterations' if parse_method(rival)[0] else 'epochs'}.")
    out += _equal_data_lines(section, table, rival, options)
    out += _deployed_walk_lines(table[CLAIMED], rival, theirs, options)
    split = claim.get("gap_split")
    if split:
        out.append(f"- Of the HR@10 gap to {rival} ({claim['hr10_gap']:+.4f}), "
                   f"{split['model_gap']:+.4f} lies between {rival} and the model "
                   f"{CLAIMED} trains, {split['model']}, trained plainly, and "
                   f"{split['training_gap']:+.4f} between {split['model']} trained plainly "
                   f"and {CLAIMED}'s meta-training of it.")
    if claim["seeds"] < 2:
        out.append("- One seed only: a smoke run, not evidence either way.")
    return out + [""]


def _equal_data_lines(section: dict, table: dict, rival: str, options: dict) -> list:
    """The claim's line comparing the val phase's curves at equal data, against the
    strongest baseline and the model LeapRec trains, trained plainly."""
    periods = section["periods"]
    plain = [m for m in (rival, DEFAULT_MODEL) if m in table and m != CLAIMED]
    points = {m: at_equal_data(table, CLAIMED, m, options, periods.get("train_step_rows"),
                               periods["windows"]["train"]) for m in dict.fromkeys(plain)}
    points = {m: p for m, p in points.items() if p is not None}
    if not points:
        return []
    first = next(iter(points.values()))
    return [f"- At equal data (the val phase, mean over seeds): {CLAIMED}'s validation "
            f"HR@10 after its {first['iterations']} iterations, which drew "
            f"{first['passes']:.1f} passes over the train window, was {first['hr10']:.4f}; "
            + "; ".join(f"{m}{', trained plainly,' if m == DEFAULT_MODEL else ''}"
                        f" had {p['plain_hr10']:.4f} after {p['epoch']} epoch"
                        f"{'s' if p['epoch'] > 1 else ''}"
                        + (" (its last: fewer passes)" if p["epoch"] < round(p["passes"])
                           else "") for m, p in points.items())
            + "."]


def _deployed_walk_lines(row: dict, rival: str, rival_steps: float | None,
                         options: dict) -> list:
    """Why a meta-learner's gradient steps do not add up like a plain model's: every
    iteration's walk restarts from the meta-parameters, so its test model is them plus
    one iteration's inner steps."""
    if row["budget"]["mean"] is None or not row.get("time_steps"):
        return []
    inner = row["time_steps"] * options["inner_steps"]
    return [f"- What its test models are: every iteration's walk starts again from the "
            f"meta-parameters (OTL at the first time step, GTL at every one), which take "
            f"one meta-optimizer step per iteration (learning rate "
            f"{options['meta_learning_rate']:g}, at the iteration's end). So a test model is "
            f"the meta-parameters after {row['budget']['mean'] - 1:.1f} meta steps plus the "
            f"last iteration's "
            f"{inner:,} inner steps ({row['time_steps']} time steps x K = "
            f"{options['inner_steps']})"
            + (f", against {rival}'s {rival_steps:,.0f} steps" if rival_steps else "")
            + "; the earlier iterations' inner steps reach it only through the meta steps."]


def render_plugins(section: dict, exp: dict) -> list:
    table, s = exp["table"], exp["summary"]
    options, examples = effective_options(exp["options"]), _test_examples(section)
    counts = {len(row["seeds"]) for row in table.values()}
    seeds = (f"{counts.pop()} seed(s)" if len(counts) == 1
             else f"{len(exp['seeds'])} seeds planned; the seeds column says how many ran")
    out = [f"### 2. Plug-ins: each base model without and with LeapRec; Leap vs FOMAML "
           f"({seeds})", "",
           "| base | method | seeds | test HR@10 | test NDCG@10 | full HR@10 | HR@10 vs base "
           "| NDCG@10 vs base | full HR@10 vs base | val HR@10 | test budget (at cap) "
           "| gradient steps | passes over the data | last train loss | s per run |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    steps_of, passes_of = _work_of(section, table, options, examples)
    for g in s["groups"]:
        for r in g["rows"]:
            row, rel = table[r["method"]], r["rel"]
            budget, loss = _training_cells(row)
            steps, passes = steps_of[r["method"]], passes_of[r["method"]]
            out.append(
                f"| {g['base']} | {r['method']} | {len(row['seeds'])} "
                f"| {pm(row['columns'][HEAD])} "
                f"| {pm(row['columns'][NDCG])} | {pm(row['columns']['test/full/HR@10'])} "
                + ("| — | — | — " if rel is None else
                   f"| {pct(rel[HEAD])} | {pct(rel[NDCG])} "
                   f"| {pct(rel['test/full/HR@10'])} ")
                + f"| {pm(row['columns'][VAL_HEAD])} | {budget} "
                f"| {_work_cells(steps, passes)} | {loss} | {pm(row['seconds'], '.0f')} |")
    out += ["", _training_columns_note(section, options, examples)]
    out += ["", "\"vs base\": `relative_change(variant, base)` on the same seed, mean ± std "
            "over seeds. `leaprec` is `leaprec+gnn-sa`.", ""]
    plug = s["plug_in"]
    out += ["**Claim: the LeapRec plug-in improves every base model** (both sampled HR@10 "
            "and NDCG@10 above the plain model's).", ""]
    if plug["verdict"] == "not evaluated":
        out.append("Not evaluated: no leaprec+MODEL run with its base model.")
    else:
        k, n = plug["improved"]
        out.append(f"Measured: **{plug['verdict']}**: {k} of {n} base models improve.")
        for p in plug["per_model"]:
            w, t = p["seeds_improving_hr10"]
            mine, base = table[p["method"]], table[p["base"]]
            steps, base_steps = steps_of[p["method"]], steps_of[p["base"]]
            passes, base_passes = passes_of[p["method"]], passes_of[p["base"]]
            capped, capped_of = mine["at_cap"]
            training = [f"last train loss {pm(mine['last_loss'], '.3f')} against the base's "
                        f"{pm(base['last_loss'], '.3f')}"]
            if steps is not None and base_steps:
                training.insert(0, f"{steps / base_steps:.0%} of the base's gradient steps")
            if passes is not None and base_passes:
                training.insert(0, f"{passes:.1f} passes over the data against the base's "
                                   f"{base_passes:.1f}")
            if capped:
                training.append(f"validation chose the last of its {options['iterations']} "
                                f"iterations on {capped} of {capped_of} seeds")
            out.append(f"- {p['base']} -> {p['method']}: HR@10 {100 * p['rel_hr10']:+.2f}%, "
                       f"NDCG@10 {100 * p['rel_ndcg10']:+.2f}% "
                       f"({'improves' if p['improves'] else 'does not improve'}; HR@10 "
                       f"higher on {w} of {t} seeds). Training: {'; '.join(training)}.")
    lf = s["leap_vs_fomaml"]
    out += ["", "**Claim: Leap beats first-order MAML** (the same GTL + OTL model trained "
            "with either meta-gradient; higher mean sampled HR@10 and NDCG@10).", ""]
    if lf["verdict"] == "not evaluated":
        out.append("Not evaluated: no model run with both leaprec+ and fomaml+.")
    else:
        k, n = lf["wins"]
        out.append(f"Measured: **{lf['verdict']}**: Leap wins on {k} of {n} models.")
        for x in lf["per_model"]:
            w, t = x["seeds_beating_hr10"]
            out.append(f"- {x['model']}: HR@10 {x['hr10'][0]:.4f} (Leap) vs "
                       f"{x['hr10'][1]:.4f} (FOMAML), NDCG@10 {x['ndcg10'][0]:.4f} vs "
                       f"{x['ndcg10'][1]:.4f}; Leap higher HR@10 on {w} of {t} seeds.")
    if effective_options(exp["options"])["iterations"] < 2 and lf["per_model"]:
        out.append("- With one iteration Leap and FOMAML deploy the same model: the "
                   "meta-parameters take their only step after the deployed parameters "
                   "(those after the last time step) are fixed.")
    if len(exp["seeds"]) < 2:
        out.append("- One seed only: a smoke run, not evidence either way.")
    return out + [""]


TRAINING_NOTE = ("Test budget: the iterations the test model trained for, chosen on "
                 "validation; \"at cap\": runs where validation chose the val phase's last "
                 "one. Last train loss: the test model's BPR loss in its last iteration "
                 "(mean over time steps).")


def _step_size_text(step_rows: dict) -> str:
    """How many time steps there are and how many interactions they hold."""
    sizes = sorted(step_rows.values())
    return (f"{len(sizes)} time steps hold {sizes[0]:,} to {sizes[-1]:,} interactions, "
            f"median {np.median(sizes):,.0f}")


def _training_cells(row: dict) -> list:
    """The test budget with its runs at cap, and the last train loss, of a table row."""
    capped, capped_of = row["at_cap"]
    return [f"{pm(row['budget'], '.1f')} ({capped} of {capped_of})",
            pm(row["last_loss"], ".3f")]


def _setting_table(table: dict, labels: list, extra: str = "") -> list:
    out = ["| setting | test HR@10 | test NDCG@10 | test MRR | full HR@10 | val HR@10 "
           f"| test budget (at cap) | last train loss | {extra + ' | ' if extra else ''}"
           "s per run |",
           "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if extra else "") + "---:|"]
    best = best_per_column({k: table[k] for k in labels},
                           (HEAD, NDCG, "test/sampled/MRR", "test/full/HR@10", VAL_HEAD))
    for label in labels:
        row = table[label]
        cells = [_cell(row, c, best, label) for c in
                 (HEAD, NDCG, "test/sampled/MRR", "test/full/HR@10", VAL_HEAD)]
        cells += _training_cells(row)
        if extra:
            cells.append(str(row["time_steps"]))
        out.append(f"| {label} | " + " | ".join(cells) + f" | {pm(row['seconds'], '.0f')} |")
    return out


def render_split(exp: dict) -> list:
    table, s = exp["table"], exp["summary"]
    out = [f"### 3. GTL / OTL split at roughly equal cost ({len(exp['seeds'])} seed(s))", "",
           "Embedding sizes (gtl_dim, otl_dim) chosen so that gtl^2 + otl^2 stays about "
           "the same; 0 turns a part off. " + TRAINING_NOTE, ""]
    out += _setting_table(table, list(table))
    out.append("")
    out.append(f"- Best by validation HR@10 (what tuning would pick): "
               f"{s['best_by_validation']}; best on test (reported, not chosen): "
               f"{s['best_on_test']}.")
    if s["both_beat_single"]:
        for column, c in s["both_beat_single"].items():
            window = "test" if column.startswith("test") else "validation"
            verb = ("beats" if c["beats"] else "ties with" if c.get("ties")
                    else "does not beat")
            out.append(f"- Both parts against one ({window} HR@10): the best split with "
                       f"both, {c['best_both']}, {verb} the best single part, "
                       f"{c['best_single']}.")
    return out + [""]


def render_sensitivity(exp: dict, dataset: str) -> list:
    table, s = exp["table"], exp["summary"]
    out = [f"### 4. Sensitivity ({len(exp['seeds'])} seed(s))", "", TRAINING_NOTE, ""]
    k = s["k"]
    if k:
        out += ["K, the inner steps per time step:", ""]
        out += _setting_table(table, k["labels"])
        ratio = k["seconds_max_over_min_k"]
        out += ["", f"- Test HR@10 {k['trend']}; best K by validation HR@10: "
                f"{k['best_by_validation']}, on test: {k['best_on_test']}."
                + (f" A run with K = {k['values'][-1]} took {ratio:.1f}x the seconds of "
                   f"K = {k['values'][0]}." if ratio else ""), ""]
    g = s["granularity"]
    if g:
        out += ["Time-step granularity (the dataset's own steps are calendar months; "
                "\"steps\" = time steps of the train + validation phase):", ""]
        out += _setting_table(table, g["labels"], extra="steps")
        out += ["", f"- Best by validation HR@10: {g['best_by_validation']}; on test: "
                f"{g['best_on_test']}.", ""]
    lr = s.get("meta_learning_rate")
    if lr:
        out += ["The meta learning rate (Adam on Leap's meta-gradient, one step per "
                "iteration):", ""]
        out += _setting_table(table, lr["labels"])
        out += ["", f"- Best by validation HR@10: {lr['best_by_validation']}; on test: "
                f"{lr['best_on_test']}.", ""]
    if exp.get("png"):
        out += [f"![LeapRec's HR@10 against each setting on {dataset}]({exp['png']})", ""]
    return out


def render_figures(exp: dict) -> list:
    s = exp["summary"]
    out = ["### 5. Figures", ""]
    if not s.get("available"):
        return out + [f"Not available: {s.get('why')}.", ""]
    loss = s["loss"]
    out += [f"From `{CLAIMED}` seed {s['seed']}, train + validation phase (the model "
            "scored on the test window).", "",
            f"![training loss per time step]({s['loss_png']})", "",
            f"Training loss per time step (the paper's Figure 7): the mean inner BPR loss "
            f"of each of the {len(loss['time_steps'])} time steps in each of the "
            f"{loss['iterations']} iterations (`metrics.json` `training.test.losses`). "
            f"Mean over time steps: {loss['first_iteration_mean']:.4f} in the first "
            f"iteration, {loss['last_iteration_mean']:.4f} in the last"
            + (f"; {loss['steps_falling'][0]} of {loss['steps_falling'][1]} time steps "
               "end lower than they started." if loss["steps_falling"] else
               " (one iteration: no trend to read)."), ""]
    shift = s["shift"]
    if not shift:
        return out + ["No `test/representations.npz` in the run: no representation "
                      "figure.", ""]
    parts = shift["parts"]
    out += [f"![representation shift]({s['shift_png']})", "",
            f"Representation shift (the paper's Figure 5): the {shift['items']} items with "
            "the most interactions in the phase, grouped by the time step where they were "
            "most popular, i.e. had their largest share of that step's interactions among "
            "these items (raw counts would give every item to the busiest step), the time "
            f"steps cut into at most {SHIFT_GROUPS} contiguous ranges ("
            + ", ".join(f"{g['label']}: {g['items']} items" for g in shift["groups"])
            + "); per group, the mean cosine distance of the items' representations after "
            "each time step of the last iteration to those after the first time step. The "
            "representations are the model's item node outputs (for GNN+SA after its GCN "
            "over the graph of time steps <= t), so the growing graph moves them too. GTL "
            "restarts from its meta-parameters at every time step; OTL carries on.", ""]
    out.append("- Mean distance at the last time step: "
               + ", ".join(f"{p.upper()} {v['last_step_mean']:.4f}" for p, v in parts.items())
               + (f" (OTL drifts {'more' if shift['otl_moves_more'] else 'less'} than GTL)."
                  if shift["otl_moves_more"] is not None else "."))
    return out + [""]


def _budget_cell(metrics: dict) -> str:
    """'7 / 20' (chosen on validation / the val phase's) or '20' (fixed)."""
    chosen, cap = chosen_budget(metrics), budget_cap(metrics)
    return str(chosen) if cap is None else f"{chosen} / {cap}"


def _run_row(r: dict) -> str:
    mt, pr = r["metrics"], r["process"]
    cells = [r["name"] + run_marks(pr), str(r["seed"]),
             f"{mt['test']['sampled']['HR@10']:.4f}", f"{mt['test']['full']['HR@10']:.4f}",
             f"{mt['val']['sampled']['HR@10']:.4f}", _budget_cell(mt), f"{mt['seconds']:.0f}"]
    return "| " + " | ".join(cells + process_cells(r)) + " |"


def remaining_text(section: dict) -> str:
    """How long a dataset's unfinished runs would take at the pace of the finished seeds
    of the same settings (their own clocks), for planning the rest of a benchmark."""
    ids = list(dict.fromkeys(i for e in section["experiments"].values()
                             for i in e.get("unfinished", [])))
    under_way = {i: u for e in section["experiments"].values()
                 for i, u in e.get("under_way", {}).items()}
    pace = {}
    for r in section["runs"].values():
        pace.setdefault(r["name"], []).append(r["metrics"]["seconds"])
    names = {i: i.rsplit("/seed-", 1)[0] for i in ids}
    known = [max(0.0, float(np.mean(pace[n])) - under_way.get(i, {}).get("seconds", 0.0))
             for i, n in names.items() if n in pace]
    unknown = sorted({n for n in names.values() if n not in pace})
    text = [f"At the pace of their settings' finished seeds, the {len(known)} of {len(ids)} "
            f"with one would take about {sum(known) / 3600:.1f} h more one after the other "
            "(a run under way less the seconds it has had)."] if known else []
    if unknown:
        text.append(f"No seed of {', '.join(unknown)} has finished yet to time "
                    f"{'it' if len(unknown) == 1 else 'them'} by.")
        text += _extrapolated_text(section, {i: n for i, n in names.items()
                                             if n in unknown}, under_way)
    return " ".join(text)


def _extrapolated_text(section: dict, names: dict, under_way: dict) -> list:
    """For settings with no finished seed (`names`: run id -> setting): a run's length
    extrapolated from one under way (`under_way`: run id -> its record) in its val phase,
    both phases at the cap, the test phase's units larger by the validation window's
    interactions (an upper bound: the test phase may stop earlier)."""
    windows = section.get("periods", {}).get("windows") or {}
    if not windows.get("train"):
        return []
    scale = 1 + (windows["train"] + windows.get("val", 0)) / windows["train"]
    out = []
    for name in sorted(set(names.values())):
        ids = [i for i, n in names.items() if n == name]
        val = [under_way[i] for i in ids if under_way.get(i, {}).get("phase") == "val"
               and under_way[i]["done"] and under_way[i]["cap"]]
        if not val:
            continue
        u = max(val, key=lambda v: v["done"])
        run = u["seconds"] / u["done"] * u["cap"] * scale
        left = sum(max(0.0, run - under_way.get(i, {}).get("seconds", 0.0)) for i in ids)
        out.append(f"Extrapolated from a {name} run's val phase ({u['done']} of {u['cap']} "
                   f"{u['unit']} in {u['seconds']:,.0f} s), a {name} run takes at most about "
                   f"{run / 3600:.1f} h, so its {len(ids)} would take about "
                   f"{left / 3600:.1f} h more.")
    return out


def render_dataset(dataset: str, section: dict) -> list:
    p = section["periods"]
    runs = section["runs"]
    # instances and exclusions as the runs' metrics.json report them (else the manifest)
    any_run = next(iter(runs.values()), None)
    inst = ({w: any_run["metrics"][w]["instances"] for w in ("val", "test")} if any_run
            else p.get("instances") or {})
    excluded = ({w: any_run["metrics"][w].get("excluded") or {} for w in ("val", "test")}
                if any_run else p.get("excluded") or {})
    bounds = p.get("window_bounds") or {}
    steps = p.get("steps") or {}
    out = [f"## {dataset}", "",
           f"- Periods: protocol A, cut {bounds.get('cut')}, {bounds.get('val_months')} "
           f"validation month(s); {p['rows_out']:,} interactions (train "
           f"{p['windows']['train']:,} in {len(steps.get('train', []))} "
           f"{p.get('granularity')} steps, validation {p['windows']['val']:,}, test "
           f"{p['windows']['test']:,}); {where_built(p)} `{p['dir']}`.",
           f"- Ranking instances: validation {inst.get('val')}, test {inst.get('test')}. "
           f"Excluded test interactions (PROTOCOLS.md A.4): "
           f"{excluded.get('test', {}).get('cold_user')} of cold users, "
           f"{excluded.get('test', {}).get('cold_item')} of cold items (validation: "
           f"{excluded.get('val', {}).get('cold_user')} / "
           f"{excluded.get('val', {}).get('cold_item')})."]
    counted = {(r["metrics"]["test"]["instances"],
                tuple(sorted((r["metrics"]["test"].get("excluded") or {}).items())))
               for r in runs.values()}
    if len(counted) > 1:
        out.append(f"- **Warning**: the runs scored different numbers of test instances: "
                   f"{sorted(counted)}.")
    elif counted:
        (n, _), = counted
        out.append(f"- Every run scored the same {n} test instances (`metrics.json`).")
    notes = {e.get("source_note") for e in section["experiments"].values()} - {None}
    out += code_lines(runs, "protocol A sources of tfmeta/", sorted(notes))
    makers = {}  # the benchmark invocations that made the runs (reused ones earlier)
    for r in runs.values():
        command = r["process"].get("benchmark_command")
        if command:
            makers.setdefault(command, []).append(r["process"].get("started", "")[:10])
    if set(makers) - {e["command"] for e in section["experiments"].values()}:
        out.append("- The runs were made by (reused runs come from earlier invocations): "
                   + "; ".join(f"`{c}` ({len(d)} runs, {min(d)} to {max(d)})"
                               for c, d in makers.items()) + ".")
    out += ["", "| experiment | date | command | options of every run | runs (reused) |",
            "|---|---|---|---|---:|"]
    for name, exp in section["experiments"].items():
        out.append(f"| {name} | {exp['date']} | `{exp['command']}` "
                   f"| {_options_text(exp['options'])} | {len(exp['run_ids'])} "
                   f"({exp['reused']}) |")
    failed = [f"{n}: {', '.join(e['failed'])}" for n, e in section["experiments"].items()
              if e.get("failed")]
    if failed:
        out += ["", "**Failed runs** (missing from the tables): " + "; ".join(failed) + "."]
    unfinished = [f"{n}: " + ", ".join(
                      i + (f" (under way: {under_way_text(e['under_way'][i])})"
                           if i in e.get("under_way", {}) else "") for i in e["unfinished"])
                  for n, e in section["experiments"].items() if e.get("unfinished")]
    if unfinished:
        out += ["", "**Runs not finished yet** (missing from the tables; tabulated with "
                "`--report-only`, `--resume` trains or continues them): "
                + "; ".join(unfinished) + ". " + remaining_text(section)]
    out.append("")
    exps = section["experiments"]
    for name, render in (("models", lambda e: render_models(section, e)),
                         ("plugins", lambda e: render_plugins(section, e)),
                         ("split", render_split),
                         ("sensitivity", lambda e: render_sensitivity(e, dataset)),
                         ("figures", render_figures)):
        if name in exps:
            out += render(exps[name])
    gone = sum(bool(r["process"].get("folder_gone")) for r in runs.values())
    out += ["### Runs", ""]
    if gone:
        out += [f"{gone} run(s) marked \"folder gone\" were reused by a later invocation "
                "from this report's record of the finished run: their run folders no longer "
                "existed then (runs/ is git-ignored).", ""]
    cpus = {}
    for r in runs.values():
        cpu = r["process"].get("cpu_model", "not recorded (started before benchmarks recorded it)")
        cpus[cpu] = cpus.get(cpu, 0) + 1
    out += ["CPUs of the runs' last processes (the header names the machine that wrote "
            "this report; runs of different sessions may have run on different VMs): "
            + "; ".join(f"{c}: {n}" for c, n in sorted(cpus.items())) + ".", ""]
    out += ["| run | seed | test HR@10 | test full HR@10 | val HR@10 | test budget | run s "
            "| process s | CPU s | CPU / wall | load after | tfmeta/ digest |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    out += [_run_row(r) for _, r in sorted(runs.items())]
    return out + [""]


def coverage(exp: dict) -> str:
    """How complete an experiment's table is: its rows of the planned settings, which
    have fewer seeds than the experiment's, and which have none yet."""
    seeds, table = len(exp["seeds"]), exp["table"]
    planned = [s["label"] for s in exp["settings"]]
    short = [f"{m} ({len(table[m]['seeds'])})" for m in planned
             if m in table and len(table[m]["seeds"]) < seeds]
    missing = [m for m in planned if m not in table]
    return "; ".join([f"{len(planned) - len(missing)} of {len(planned)}"]
                     + ([f"fewer seeds: {', '.join(short)}"] if short else [])
                     + ([f"none yet: {', '.join(missing)}"] if missing else []))


def render_markdown(report: dict) -> str:
    sections = report["datasets"]
    m, gpus = machine_of(sections)
    out = [
        "# LeapRec benchmark: temporal ranking on protocol A",
        "",
        *machine_info.header_lines(m, gpus),
        "- Protocol A (PROTOCOLS.md A): validation figures from a model trained on the "
        "train window, test figures from one trained on train + validation with the same "
        "options. Every run uses the driver's defaults (" + _defaults_text() + ") except "
        "the options passed to every run (each experiment's command and options below) and "
        "the option its experiment varies. No option is chosen on test windows.",
        "- Runs run `--workers` at a time on the machine's cores, which other work may "
        "share: compare ratios; the runs tables give CPU / wall and the load average.",
        "",
        "## Summary", "",
        "| dataset | seeds (models) | models in the table | LeapRec beats every baseline "
        "| plug-in improves every base | Leap beats FOMAML |",
        "|---|---:|---|---|---|---|"]
    for dataset, sec in sections.items():
        exps = sec["experiments"]
        cells = []
        if "models" in exps:
            c = exps["models"]["summary"]["claim"]
            cells += [str(len(exps["models"]["seeds"])), coverage(exps["models"]),
                      f"**{c['verdict']}**" + (f" ({c['metrics_won'][0]} of "
                                               f"{c['metrics_won'][1]} test metrics)"
                                               if "metrics_won" in c else "")]
        else:
            cells += ["—", "—", "not run"]
        if "plugins" in exps:
            s = exps["plugins"]["summary"]
            pi, lf = s["plug_in"], s["leap_vs_fomaml"]
            cells += [f"**{pi['verdict']}** ({pi['improved'][0]} of {pi['improved'][1]})",
                      f"**{lf['verdict']}** ({lf['wins'][0]} of {lf['wins'][1]})"]
        else:
            cells += ["not run", "not run"]
        out.append(f"| {dataset} | " + " | ".join(cells) + " |")
    out += ["", "Verdicts are computed from the tables below: \"supported\" when the "
            "claim holds for every metric / model compared, \"partly\" for some, \"not "
            "supported\" for none. With one seed they are a smoke test, not evidence; "
            "while models are missing or short of seeds (\"models in the table\") they "
            "compare with the models run so far.", ""]
    for dataset, sec in sections.items():
        out += render_dataset(dataset, sec)
    return "\n".join(out)
