"""A tuned run of one method per family on movielens-100k: the issue-6 evidence.

    python -m benchmarks.tuning            # both searches (~30 min on 2 busy cores)
    python -m benchmarks.tuning --quick    # tiny spaces and budgets (~3 min)

Each search is `tfmeta.tuning.tune` (KerasTuner; objective on validation only, the
best configuration retrained and scored on test once) in RUNS_DIR/<method>
(default runs/tuning, git-ignored; resumable: run the same command again):

- protocol A: leaprec+mf (LeapRec over BPR-MF), random search over the LeapRec grid
  (GTL / OTL sizes, learning rate, meta learning rate, K, time steps), 6 trials;
- protocol B: asmg-gru-multi, Bayesian optimisation over the ASMG paper's grid (k
  {1..6}, hidden size {4, 8, 12, 16}, generator learning rate {1e-2, 1e-3, 1e-4}),
  6 trials, with the base-model budget benchmarks/asmg.py chose on validation for
  movielens-100k (1 epoch per period, 3 pre-training epochs).

Writes benchmarks/results/tuning.md (each search's trials and its final figures),
tuning.json (the searches' tuning.json, paths made relative) and tuning-report.html
(`tfmeta report` of the searches: the page a user gets).
"""
import tfmeta  # noqa: F401  (first: selects Keras 2 before anything loads TensorFlow)

import argparse
import datetime
import os
import shlex
import sys
import time

from benchmarks import machine as machine_info
from benchmarks.machine import gpus_seen
from benchmarks.periods import build_once
from benchmarks.reports import RESULTS_DIR, ROOT, portable

DATASET = "movielens-100k"
SEARCHES = (  # protocol, method, tuner, trials, space (None: the paper's grid), fixed
    ("a", "leaprec+mf", "random", 6, None, {}),
    ("b", "asmg-gru-multi", "bayesian", 6, None, {"epochs": 1, "pretrain_epochs": 3}),
)
QUICK = (
    ("a", "mf", "random", 2, {"learning_rate": [1e-2, 1e-3]}, {"epochs": 2}),
    ("b", "iu", "hyperband", 3, {"learning_rate": [1e-2, 1e-3]}, {}),
)


def trials_table(result: dict) -> list:
    name = result["objective"]["name"]
    out = [f"| trial | status | {name} | s | values |", "|---|---|---:|---:|---|"]
    best = result["best"]["trial"]
    for t in result["trials"]:
        values = ", ".join(f"{k} {v}" for k, v in t["values"].items()
                           if not k.startswith("tuner/") or k == "tuner/epochs")
        score = "—" if t["objective"] is None else f"{t['objective']:.4f}"
        mark = "**" if t["trial"] == best else ""
        out.append(f"| {mark}{t['trial']}{mark} | {t['status']} | {mark}{score}{mark} | "
                   f"{t['seconds'] or 0:.0f} | {values} |")
    return out


def render(results: list, command: str, started: str, machine: dict, quick: bool) -> str:
    out = ["# Tuning: one method per family on movielens-100k (KerasTuner)", "",
           f"- Date: {started}", f"- Command: `{command}` (from the repository root)",
           *machine_info.header_lines(machine, gpus_seen()),
           "- Objective on validation only (protocol A: sampled HR@10 of the train-window "
           "model; B: mean AUC of periods 22-24, updates through period 23); the best "
           "configuration is then retrained the protocol's way and scored on test once.",
           "- The page a user gets from these searches: "
           "[tuning-report.html](tuning-report.html) (`tfmeta report`)."]
    if quick:
        out.append("- **Quick run**: tiny spaces and budgets, a smoke test, not evidence.")
    for r in results:
        final = r["final"]
        figure = (f"test HR@10 {final['test']['sampled']['HR@10']:.4f} (full HR@10 "
                  f"{final['test']['full']['HR@10']:.4f})" if r["protocol"] == "a" else
                  f"test AUC {final['test']['auc']:.4f}, LogLoss {final['test']['logloss']:.4f}")
        best = {k: v for k, v in r["best"]["values"].items() if not k.startswith("tuner/")}
        out += ["", f"## {r['method']} (protocol {r['protocol'].upper()}, {r['tuner']}, "
                f"{len(r['trials'])} trials)", "",
                f"Space: `{r['space']}`; every trial also `{r['fixed']}`.", "",
                *trials_table(r), "",
                f"Best (bold): {best}, {r['objective']['name']} "
                f"{r['best']['objective']:.4f}. Retrained on the protocol's training data "
                f"and scored once on test: {figure}, {final['seconds']:.0f} s."]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tuning",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs-dir", default=None)
    parser.add_argument("--results-dir", default=RESULTS_DIR)
    args = parser.parse_args(argv)
    from tfmeta.report import write_report
    from tfmeta.tuning import tune
    command = shlex.join(["python", "-m", "benchmarks.tuning",
                          *(sys.argv[1:] if argv is None else argv)])
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    runs_dir = os.path.abspath(args.runs_dir or os.path.join(
        ROOT, "runs", "tuning-quick" if args.quick else "tuning"))
    prefix = "tuning-quick" if args.quick else "tuning"
    results, folders = [], []
    for protocol, method, tuner, trials, space, fixed in (QUICK if args.quick else SEARCHES):
        periods, _, _ = build_once(DATASET, protocol, os.path.join(runs_dir, protocol))
        out = os.path.join(runs_dir, method)
        print(f"tuning {method} ({tuner}, {trials} trials) into {out} ...", flush=True)
        tick = time.perf_counter()
        result = tune(periods, method, out, tuner=tuner, max_trials=trials, space=space,
                      fixed=fixed, max_budget=2 if args.quick else None)
        result["wall_seconds"] = time.perf_counter() - tick
        results.append(portable(result))
        folders.append(out)
    machine = machine_info.describe(["tensorflow", "tf-keras", "keras-tuner", "numpy"])
    machine_info.write_results(
        args.results_dir, prefix, {"benchmark": "tuning", "date": started, "command": command,
                                   "machine": machine, "searches": results},
        render(results, command, started, machine, args.quick))
    cwd = os.getcwd()
    os.chdir(ROOT)  # the page names runs relative to the repository
    try:
        write_report([os.path.relpath(p, ROOT) for p in folders],
                     os.path.join(args.results_dir, f"{prefix}-report.html"))
    finally:
        os.chdir(cwd)
    print(f"wrote {args.results_dir}/{prefix}.md, .json, -report.html")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
