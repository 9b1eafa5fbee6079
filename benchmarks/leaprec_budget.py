"""Why LeapRec trails at the driver's defaults: its learning rates and its budget, on
validation only (movielens-100k, seed 0).

    python -m benchmarks.leaprec_budget                       # both searches (~1.5 h)
    python -m benchmarks.leaprec_budget --periods runs/ml100k-a --runs-dir runs/study

At the defaults (10 iterations, meta learning rate 1e-3) LeapRec's meta-parameters take
10 Adam steps in all, so they can move about 1e-2 per coordinate from their
initialisation (std 0.1), while a plain model takes 20 epochs of steps. Two grid searches
(`tfmeta.tuning.tune`, KerasTuner, objective on validation only; the best configuration
is then trained on train + validation and scored on test once) test that explanation:

- leaprec (GNN+SA): inner learning rate {1e-3, 1e-2} x meta learning rate {1e-2, 1e-1},
  10 iterations, the grid's first three combinations (see SEARCHES);
- leaprec+mf: meta learning rate {1e-3, 1e-2, 1e-1} at 100 iterations (an MF iteration
  is cheap, so the budget can be ten times the default).

Every trial records its validation HR@10 after each iteration (`choose_budget`), so the
curves show how far each setting gets per iteration. The references (the defaults'
LeapRec and plain MF, same seed, same validation window) come from the models experiment
of benchmarks/results/leaprec.json. Writes benchmarks/results/leaprec-budget.md, .json
and leaprec-budget.png.
"""
import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)

import argparse
import datetime
import json
import os
import shlex
import sys

from benchmarks import machine as machine_info
from benchmarks.machine import gpus_seen
from benchmarks.periods import build_once
from benchmarks.reports import RESULTS_DIR, ROOT, portable, pyplot, save_png
from benchmarks.tuning import trials_table

DATASET = "movielens-100k"
SEED = 0
SEARCHES = (  # folder, method, space, options every trial uses, trials
    # The grid's first three combinations, in order: (lr 1e-2, meta lr 1e-1), the fourth,
    # did not fit the session that measured it (GNN+SA iterations are ~1.5 min each).
    ("tune-leaprec-lr", "leaprec",
     {"learning_rate": [1e-3, 1e-2], "meta_learning_rate": [1e-2, 1e-1]},
     {"choose_budget": True, "iterations": 10}, 3),
    ("tune-leaprec-mf-meta", "leaprec+mf",
     {"meta_learning_rate": [1e-3, 1e-2, 1e-1]},
     {"choose_budget": True, "iterations": 100}, 3),
)
REFERENCES = {"leaprec": "leaprec/seed-0", "leaprec+mf": "mf/seed-0"}  # in leaprec.json


def curves(search_dir: str, result: dict) -> list:
    """(values, validation HR@10 after each iteration) of every trial."""
    out = []
    for t in result["trials"]:
        path = os.path.join(search_dir, "search", f"trial_{t['trial']}", "run",
                            "metrics.json")
        with open(path) as f:
            curve = json.load(f)["budget"]["curve"]
        out.append((t["values"], [point["HR@10"] for point in curve]))
    return out


def reference(method: str) -> dict:
    """The models experiment's run of the same seed: its validation curve and figures."""
    with open(os.path.join(RESULTS_DIR, "leaprec.json")) as f:
        runs = json.load(f)["datasets"][DATASET]["runs"]
    run = runs[REFERENCES[method]]["metrics"]
    return {"run": REFERENCES[method], "options": run["options"],
            "curve": [p["HR@10"] for p in run["budget"]["curve"]],
            "val": run["val"]["sampled"]["HR@10"], "test": run["test"]["sampled"]["HR@10"],
            "test_full": run["test"]["full"]["HR@10"]}


def label(values: dict) -> str:
    names = {"learning_rate": "lr", "meta_learning_rate": "meta lr"}
    return ", ".join(f"{names.get(k, k)} {v:g}" for k, v in values.items())


def plot(searches: list, path: str) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(searches), figsize=(6 * len(searches), 4.2),
                             squeeze=False)
    for ax, s in zip(axes[0], searches):
        for values, curve in s["curves"]:
            ax.plot(range(1, len(curve) + 1), curve, marker="." if len(curve) < 30 else None,
                    label=label(values))
        ref = s["reference"]
        ax.plot(range(1, len(ref["curve"]) + 1), ref["curve"], "k--",
                label=f"{ref['run'].split('/')[0]} at the driver's defaults")
        ax.set_title(f"{s['method']} on {DATASET}, seed {SEED}")
        ax.set_xlabel("iteration (epoch for plain MF)")
        ax.set_ylabel("validation sampled HR@10")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_png(fig, path)


def render(searches: list, command: str, started: str, machine: dict) -> str:
    out = ["# LeapRec's learning rates and budget, on validation (movielens-100k)", "",
           f"- Date: {started}", f"- Command: `{command}` (from the repository root)",
           *machine_info.header_lines(machine, gpus_seen()),
           "- Protocol A. Every trial trains on the train window and is scored on the "
           "validation candidates after each iteration; the search's objective is the "
           "validation HR@10 after the last iteration. Only the best configuration of each "
           "search is trained on train + validation (for the iteration count validation "
           "chose) and scored on test, once.",
           "- Seed 0 only: a diagnosis, not the evidence table (benchmarks/results/"
           "leaprec.md). The grids go beyond the paper's (learning rate up to 1e-3, meta "
           "learning rate up to 1e-2) on purpose.", "",
           "![validation HR@10 per iteration](leaprec-budget.png)"]
    for s in searches:
        r, ref = s["result"], s["reference"]
        final = r["final"]
        out += ["", f"## {s['method']}: {r['tuner']} search, {len(r['trials'])} trials", "",
                f"Space: `{r['space']}`; every trial also `{r['fixed']}`.", "",
                *trials_table(r), "",
                "| trial | values | best val HR@10 (iteration) | last |",
                "|---|---|---:|---:|"]
        for t, (values, curve) in zip(r["trials"], s["curves"]):
            peak = max(range(len(curve)), key=lambda i: (curve[i], -i))
            out.append(f"| {t['trial']} | {label(values)} | {curve[peak]:.4f} ({peak + 1}) "
                       f"| {curve[-1]:.4f} |")
        shown = {k: ref["options"][k] for k in ("method", "epochs", "iterations",
                                                 "learning_rate", "meta_learning_rate")}
        out += ["", f"Reference (`{ref['run']}` of the models experiment, `{shown}`): "
                f"validation HR@10 {ref['val']:.4f} (best on its curve "
                f"{max(ref['curve']):.4f}), test HR@10 {ref['test']:.4f} (full "
                f"{ref['test_full']:.4f}).", "",
                f"Best on validation: {label(r['best']['values'])}. Trained on train + "
                f"validation and scored once on test: HR@10 "
                f"{final['test']['sampled']['HR@10']:.4f}, NDCG@10 "
                f"{final['test']['sampled']['NDCG@10']:.4f}, MRR "
                f"{final['test']['sampled']['MRR']:.4f} (full HR@10 "
                f"{final['test']['full']['HR@10']:.4f}); {final['seconds']:.0f} s."]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.leaprec_budget",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--runs-dir", default=os.path.join(ROOT, "runs", "leaprec-budget"),
                        help="searches go into RUNS_DIR/<folder> (resumable: run again)")
    parser.add_argument("--periods", help="built protocol A periods of movielens-100k "
                                          "(default: built into RUNS_DIR/a)")
    parser.add_argument("--results-dir", default=RESULTS_DIR)
    args = parser.parse_args(argv)
    from tfmeta.tuning import tune
    command = shlex.join(["python", "-m", "benchmarks.leaprec_budget",
                          *(sys.argv[1:] if argv is None else argv)])
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    periods = args.periods or build_once(DATASET, "a", os.path.join(args.runs_dir, "a"))[0]
    searches = []
    for folder, method, space, fixed, trials in SEARCHES:
        out = os.path.join(args.runs_dir, folder)
        print(f"searching {method} into {out} ...", flush=True)
        result = tune(periods, method, out, tuner="grid", max_trials=trials, space=space,
                      fixed=fixed, seed=SEED)
        searches.append({"method": method, "result": portable(result),
                         "curves": curves(out, result), "reference": reference(method)})
    machine = machine_info.describe(["tensorflow", "tf-keras", "keras-tuner", "numpy"])
    plot(searches, os.path.join(args.results_dir, "leaprec-budget.png"))
    machine_info.write_results(
        args.results_dir, "leaprec-budget",
        {"benchmark": "leaprec_budget", "date": started, "command": command,
         "machine": machine, "searches": searches},
        render(searches, command, started, machine))
    print(f"wrote {args.results_dir}/leaprec-budget.md, .json, .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
