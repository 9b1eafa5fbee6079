"""The LeapRec benchmark's PNG figures: every model's test HR@10 and validation curves,
LeapRec against K, time-step granularity and meta learning rate, and from one LeapRec
run the paper's Figures 7 (training loss per time step) and 5 (representation shift of
popular items in GTL and OTL)."""
import os
from typing import Optional

import numpy as np

from tfmeta.training.ranking import DEFAULT_MODEL, parse_method

from benchmarks.leaprec_tables import (CLAIMED, HEAD, VAL_HEAD, column_mean, loss_summary,
                                       representation_shift)
from benchmarks.reports import ROOT, pyplot, save_png


def summarize_figures(results: list, figures_dir: str, prefix: str, dataset: str,
                      kept: Optional[dict] = None) -> dict:
    """Figures 7 and 5 of the first run. `kept`: the report's earlier summary, whose
    representation shift stands when the run's folder, and its representations with it,
    is gone (its plot stays as it was made)."""
    if not results:
        return {"available": False, "why": f"the {CLAIMED} run failed"}
    result = results[0]
    out = {"available": True, "run": result["id"], "seed": result["seed"],
           "loss": loss_summary(result["metrics"]), "shift": None,
           "loss_png": f"{prefix}-loss-per-time-step-{dataset}.png",
           "shift_png": f"{prefix}-representation-shift-{dataset}.png"}
    plot_loss(out["loss"], dataset, result["seed"], os.path.join(figures_dir, out["loss_png"]))
    path = os.path.join(ROOT, result["run_dir"], "test", "representations.npz")
    if os.path.exists(path):
        out["shift"] = representation_shift(path)
        plot_shift(out["shift"], dataset, result["seed"],
                   os.path.join(figures_dir, out["shift_png"]))
    elif kept and kept.get("run") == result["id"]:
        out["shift"] = kept.get("shift")
    return out


def _step_ticks(ax, labels: list) -> None:
    every = max(1, len(labels) // 12)
    ax.set_xticks(range(0, len(labels), every))
    ax.set_xticklabels(labels[::every], rotation=45, ha="right", fontsize=8)


def plot_loss(loss: dict, dataset: str, seed: int, path: str) -> None:
    plt = pyplot()
    losses = np.asarray(loss["losses"])
    fig, ax = plt.subplots(figsize=(9, 5))
    cmap = plt.get_cmap("viridis")
    n = len(losses)
    for i, row in enumerate(losses):
        ax.plot(range(len(row)), row, marker="o", ms=3, lw=1.4,
                color=cmap(i / max(1, n - 1)), label=f"iteration {i + 1}")
    if n > 1:
        bar = fig.colorbar(plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(1, n)), ax=ax)
        bar.set_label("iteration")
    else:
        ax.legend(fontsize=8)
    _step_ticks(ax, loss["time_steps"])
    ax.set_xlabel("time step (train + validation windows, the test phase)")
    ax.set_ylabel("mean inner BPR loss")
    ax.set_title(f"{dataset}: LeapRec training loss per time step, seed {seed}")
    ax.grid(alpha=0.3)
    save_png(fig, path)


def plot_shift(shift: dict, dataset: str, seed: int, path: str) -> None:
    plt = pyplot()
    parts = shift["parts"]
    fig, axes = plt.subplots(1, max(1, len(parts)), figsize=(6 * max(1, len(parts)), 4.6),
                             squeeze=False)
    colors = plt.get_cmap("plasma")
    for ax, (part, figures) in zip(axes[0], parts.items()):
        for n, (group, curve) in enumerate(zip(shift["groups"], figures["groups"])):
            ax.plot(range(len(curve)), curve, marker="o", ms=3,
                    color=colors(n / max(1, len(shift["groups"]))),
                    label=f"{group['label']} ({group['items']} items)")
        ax.plot(range(len(figures["all"])), figures["all"], color="black", lw=1, ls="--",
                label="all")
        _step_ticks(ax, shift["time_steps"])
        ax.set_title(f"{part.upper()}")
        ax.set_ylabel("mean cosine distance to the first time step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{dataset}: drift of the {shift['items']} most popular items' "
                 f"representations (LeapRec, last iteration, seed {seed})", fontsize=10)
    save_png(fig, path)


def plot_models(table: dict, dataset: str, path: str) -> None:
    """Every model's test HR@10, sampled and full ranking, mean ± std over seeds, best
    first; LeapRec and the GNN+SA it trains stand out."""
    plt = pyplot()
    order = sorted(table, key=lambda m: column_mean(table[m], HEAD))
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(order) + 1.6), sharey=True)
    colors = [{CLAIMED: "tab:red", DEFAULT_MODEL: "tab:orange"}.get(m, "tab:gray")
              for m in order]
    for ax, column, title in ((axes[0], HEAD, "sampled (positive + 99 negatives)"),
                              (axes[1], "test/full/HR@10", "full ranking")):
        mean = [column_mean(table[m], column) for m in order]
        std = [table[m]["columns"][column]["std"] or 0.0 for m in order]
        ax.barh(range(len(order)), mean, xerr=std, color=colors, capsize=3)
        ax.set_title(f"test HR@10, {title}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(order)))
    axes[0].set_yticklabels([f"{m} ({len(table[m]['seeds'])})" for m in order])
    fig.suptitle(f"{dataset}: every model on the test window (mean ± std over the seeds "
                 "in brackets)", fontsize=10)
    save_png(fig, path)


def plot_curves(table: dict, dataset: str, path: str) -> None:
    """Each model's validation HR@10 after every epoch / iteration of its val phase, mean
    over seeds: did the budget cap stop a curve that was still rising?"""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    others = iter(["tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:pink",
                   "tab:gray", "tab:olive", "tab:cyan"] * 4)  # never LeapRec's red/orange
    for m in sorted(table, key=lambda m: -column_mean(table[m], HEAD)):
        curve = table[m].get("val_curve")
        if not curve:
            continue
        style = {CLAIMED: dict(color="tab:red", lw=2.5, marker="o"),
                 DEFAULT_MODEL: dict(color="tab:orange", lw=2, marker="s")}.get(
            m) or dict(color=next(others), lw=1.2, alpha=0.8)
        unit = "iterations" if parse_method(m)[0] else "epochs"
        ax.plot(range(1, len(curve) + 1), curve, label=f"{m} ({len(curve)} {unit})",
                markersize=4, **style)
    ax.set_xlabel("epoch (plain models) / iteration (meta-learners) of the val phase")
    ax.set_ylabel("validation HR@10 (sampled)")
    ax.set_title(f"{dataset}: validation HR@10 while training (mean over seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    save_png(fig, path)


def plot_sensitivity(table: dict, sens: dict, dataset: str, path: str) -> None:
    """LeapRec's HR@10 against each varied setting, one panel per setting that ran: K,
    time-step granularity (finest first) and the meta learning rate."""
    panels = [(sens["k"], "K (inner steps per time step)", True),
              (sens["granularity"], "time-step granularity (time steps)", False),
              (sens.get("meta_learning_rate"), "meta learning rate", True)]
    panels = [p for p in panels if p[0]]
    if not panels:
        return
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), sharey=True,
                             squeeze=False)
    for ax, (part, xlabel, log_x) in zip(axes[0], panels):
        labels = part["labels"]
        if log_x:
            x, ticks = part["values"], [f"{v:g}" for v in part["values"]]
            ax.set_xscale("log")
        else:  # categories: "granularity week" -> "week (N)"
            x = list(range(len(labels)))
            ax.set_xlim(-0.5, len(labels) - 0.5)
            ticks = [f"{label.removeprefix('granularity ').split(' (')[0]} ({n})"
                     for label, n in zip(labels, part["time_steps"])]
        for column, style, name in ((HEAD, "-o", "test HR@10 (sampled)"),
                                    (VAL_HEAD, "--s", "validation HR@10 (sampled)"),
                                    ("test/full/HR@10", ":^", "test HR@10 (full ranking)")):
            mean = [column_mean(table[lab], column) for lab in labels]
            std = [table[lab]["columns"][column]["std"] or 0.0 for lab in labels]
            ax.errorbar(x, mean, yerr=std, fmt=style, capsize=3, label=name)
        ax.set_xticks(x)
        ax.set_xticklabels(ticks)
        ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("HR@10")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{dataset}: LeapRec's sensitivity (mean ± std over seeds; the defaults "
                 "K = 10, the dataset's steps, 1e-3 are one run)", fontsize=10)
    save_png(fig, path)
