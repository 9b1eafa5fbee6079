"""`tfmeta report RUN_DIR... --out FILE.html`: a page a person can read.

    write_report(["runs/asmg", "runs/tune-lightgcn", "benchmarks/results"], "report.html")

Inputs, found under each path given (searched recursively): run directories
(metrics.json), searches (tuning.json, `tfmeta tune`) and benchmark results folders
(*.md with their PNGs, `benchmarks/results`). The page holds, per protocol and dataset,
the metric table (mean ± std over seeds, the relative change against a reference
method on the same seed: IU for protocol B, `reference` or the first method for A),
seconds per run, the per-period (B) or per-epoch / per-iteration (A) plots, each
search's history (its trials and a plot of their objective), each benchmark's own
report, and every run's options, code (metrics.json `code`) and data manifest.
Self-contained: styles inline, images embedded as data URIs; a small script records
what the browser rendered in `<body data-rendered>` (tables, images decoded), which the
tests read back from a headless Chromium.
"""
from __future__ import annotations

import base64
import datetime
import html
import io
import json
import os
import re
from typing import Iterable, Optional

import numpy as np

from tfmeta.evaluation.metrics import relative_change

COLUMNS = {  # protocol: (label, path in metrics.json, higher is better)
    "a": [("test HR@10", "test/sampled/HR@10", True), ("test NDCG@10", "test/sampled/NDCG@10", True),
          ("test MRR", "test/sampled/MRR", True), ("test full HR@10", "test/full/HR@10", True),
          ("val HR@10", "val/sampled/HR@10", True)],
    "b": [("test AUC", "test/auc", True), ("test LogLoss", "test/logloss", False),
          ("val AUC", "val/auc", True)],
}
HEADLINE = {"a": "test/sampled/HR@10", "b": "test/auc"}
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{background:#f0f3f7} .best{font-weight:bold} img{max-width:100%}
details{margin:.3em 0} pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}
.note{color:#555;font-size:13px}
"""
CHECK = """<script>
window.addEventListener('load', function () {
  var images = Array.from(document.images);
  document.body.dataset.rendered = JSON.stringify({
    tables: document.querySelectorAll('table').length,
    images: images.length,
    decoded: images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length});
});
</script>"""


def _read(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def collect(paths: Iterable[str]) -> dict:
    """{"runs": [...], "tunings": [...], "results": [...]} found under the paths."""
    found = {"runs": [], "tunings": [], "results": []}
    for root in paths:
        if not os.path.exists(root):
            raise FileNotFoundError(f"{root} does not exist: give run directories, "
                                    "tfmeta tune folders or a benchmark results folder")
        for directory, subdirs, files in os.walk(root):
            subdirs.sort()
            if "metrics.json" in files:
                metrics = _read(os.path.join(directory, "metrics.json"))
                if "protocol" in metrics and "test" in metrics:  # tuning trials have none
                    found["runs"].append({"dir": directory, "metrics": metrics})
            if "tuning.json" in files:
                found["tunings"].append({"dir": directory,
                                         "tuning": _read(os.path.join(directory, "tuning.json"))})
            found["results"] += [{"dir": directory, "name": f} for f in sorted(files)
                                 if f.endswith(".md") and not f.startswith("README")
                                 and "metrics.json" not in files]
    if not any(found.values()):
        raise ValueError(f"nothing to report under {', '.join(paths)}: no metrics.json, "
                         "tuning.json or benchmark .md found")
    return found


def _get(metrics: dict, path: str):
    value = metrics
    for key in path.split("/"):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _stats(values) -> tuple:
    values = [float(v) for v in values if v is not None and np.isfinite(v)]
    if not values:
        return None, None
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def _pm(mean, std, digits=4) -> str:
    if mean is None:
        return "—"
    return f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _settings(run: dict) -> dict:
    return {k: v for k, v in (run["metrics"].get("options") or {}).items()
            if k not in ("seed", "method")}


def _legend(ax) -> None:
    """Below the axes: method labels can be long (options that differ)."""
    ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.22),
              frameon=False)


def _groups(runs: list) -> dict:
    """{(protocol, dataset): {label: [runs by seed]}}: one row per method and option
    set; a method run with several option sets is labelled by the options that differ."""
    out = {}
    for run in runs:
        m = run["metrics"]
        key = (m["method"], json.dumps(_settings(run), sort_keys=True))
        out.setdefault((m["protocol"], m.get("dataset") or "unnamed"), {}).setdefault(
            key, []).append(run)
    labelled = {}
    for group, rows in out.items():
        labelled[group] = {}
        for (method, settings), group_runs in rows.items():
            siblings = [json.loads(s) for (m, s) in rows if m == method]
            mine = json.loads(settings)
            differ = {k: v for k, v in mine.items()
                      if any(other.get(k) != v for other in siblings)}
            label = method + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(differ.items()))
                              + ")" if differ else "")
            labelled[group][label] = sorted(group_runs, key=lambda r: r["metrics"]["seed"])
    return labelled


def metric_table(protocol: str, methods: dict, reference: Optional[str]) -> str:
    columns = COLUMNS[protocol]
    head = HEADLINE[protocol]
    rows, means = [], {}
    for method, runs in methods.items():
        means[method] = {path: _stats(_get(r["metrics"], path) for r in runs)
                         for _, path, _ in columns}
    best = {path: (max if higher else min)(
        (m[path][0] for m in means.values() if m[path][0] is not None), default=None)
        for _, path, higher in columns}
    ref_runs = {r["metrics"]["seed"]: r for r in methods.get(reference, [])}
    for method, runs in methods.items():
        cells = [html.escape(method), str(len(runs))]
        for _, path, _ in columns:
            mean, std = means[method][path]
            bold = mean is not None and mean == best[path] and len(methods) > 1
            cells.append(f'<span class="best">{_pm(mean, std)}</span>' if bold
                         else _pm(mean, std))
        changes = [relative_change(_get(r["metrics"], head),
                                   _get(ref_runs[r["metrics"]["seed"]]["metrics"], head))
                   for r in runs if r["metrics"]["seed"] in ref_runs]
        mean, std = _stats([100 * c for c in changes])
        cells.append("—" if method == reference or mean is None else
                     f"{mean:+.2f}%" + ("" if std is None else f" ± {std:.2f}"))
        cells.append(_pm(*_stats(r["metrics"].get("seconds") for r in runs), digits=0))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = (["method", "seeds"] + [label for label, _, _ in columns]
              + [f"{head.split('/')[-1]} vs {html.escape(str(reference))}", "s per run"])
    return ("<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in header)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def curves_figure(protocol: str, dataset: str, methods: dict) -> Optional[str]:
    """Protocol B: AUC per scored period; A: the train-window model's training loss
    per epoch / iteration (and its validation curve when the budget was chosen)."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(8, 3.6))
    drawn = False
    for method, runs in methods.items():
        if protocol == "b":
            periods = sorted({p["period"] for r in runs for p in r["metrics"]["per_period"]})
            values = [np.mean([p["auc"] for r in runs for p in r["metrics"]["per_period"]
                               if p["period"] == period]) for period in periods]
            ax.plot(periods, values, marker=".", label=method)
            ax.set_xlabel("scored period"), ax.set_ylabel("AUC")
        else:
            losses = [r["metrics"].get("training", {}).get("val", {}).get("losses") for r in runs]
            losses = [[float(np.mean(x)) if isinstance(x, list) else x for x in run]
                      for run in losses if run]
            if not losses:
                continue
            width = min(len(x) for x in losses)
            ax.plot(range(1, width + 1), np.mean([x[:width] for x in losses], axis=0),
                    marker=".", label=method)
            ax.set_xlabel("epoch / iteration (train-window model)"), ax.set_ylabel("BPR loss")
        drawn = True
    if not drawn:
        plt.close(figure)
        return None
    ax.set_title(f"{dataset}: " + ("AUC per period" if protocol == "b"
                                   else "training loss"), fontsize=10)
    ax.grid(alpha=.3), _legend(ax)
    return _png(figure)


def time_steps_figure(dataset: str, methods: dict) -> Optional[str]:
    """Meta methods (protocol A): the inner loss per time step in the train-window
    model's last iteration (the LeapRec paper's Figure 7 shape), mean over seeds."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(8, 3.6))
    labels = []
    for method, runs in methods.items():
        val = [r["metrics"].get("training", {}).get("val", {}) for r in runs]
        last = [v["losses"][-1] for v in val if v.get("losses")
                and isinstance(v["losses"][-1], list)]
        if not last:
            continue
        width = min(len(x) for x in last)
        ax.plot(range(width), np.mean([x[:width] for x in last], axis=0), marker=".",
                label=method)
        labels.append(tuple(val[0].get("time_steps", [])[:width]))
    if not labels:
        plt.close(figure)
        return None
    if len(set(labels)) == 1:  # the same time steps: name them
        ax.set_xticks(range(len(labels[0])), labels[0], rotation=45, fontsize=7)
    else:
        ax.set_xlabel("time step (the methods' granularities differ)")
    ax.set_ylabel("inner BPR loss"), ax.grid(alpha=.3), _legend(ax)
    ax.set_title(f"{dataset}: loss per time step, last iteration", fontsize=10)
    return _png(figure)


def tuning_section(entry: dict) -> str:
    t = entry["tuning"]
    objective = t["objective"]["name"]
    rows = "".join(
        f"<tr><td>{html.escape(str(trial['trial']))}</td><td>{html.escape(trial['status'])}</td>"
        f"<td>{_pm(trial['objective'], None)}</td><td>{_pm(trial.get('seconds'), None, 0)}</td>"
        f"<td>{html.escape(json.dumps({k: v for k, v in trial['values'].items() if not k.startswith('tuner/')}))}</td></tr>"
        for trial in t["trials"])
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(7, 3))
    scores = [(int(trial["trial"]), trial["objective"]) for trial in t["trials"]
              if trial["objective"] is not None]
    if scores:
        xs, ys = zip(*scores)
        ax.plot(xs, ys, "o", color="#1f77b4", label="trial")
        ax.plot(xs, np.maximum.accumulate(ys), "-", color="#d62728", label="best so far")
    ax.set_xlabel("trial"), ax.set_ylabel(objective), ax.grid(alpha=.3), ax.legend(fontsize=8)
    final = t["final"]
    figure_text = (f"test HR@10 {final['test']['sampled']['HR@10']:.4f}" if t["protocol"] == "a"
                   else f"test AUC {final['test']['auc']:.4f}")
    return (f"<h3>Search: {html.escape(t['method'])} ({html.escape(t['tuner'])}, "
            f"{len(t['trials'])} trials) — {html.escape(entry['dir'])}</h3>"
            f"<p>Objective: {html.escape(t['objective']['description'])}. Best trial "
            f"{html.escape(str(t['best']['trial']))}: {objective} {t['best']['objective']:.4f} "
            f"with {html.escape(json.dumps({k: v for k, v in t['best']['values'].items() if not k.startswith('tuner/')}))}; retrained and scored once "
            f"on test: {figure_text} ({final['seconds']:.0f} s).</p>"
            f'<img alt="search history" src="{_png(figure)}">'
            "<table><thead><tr><th>trial</th><th>status</th><th>objective</th><th>s</th>"
            f"<th>values</th></tr></thead><tbody>{rows}</tbody></table>")


def results_section(entry: dict) -> str:
    import markdown
    path = os.path.join(entry["dir"], entry["name"])
    with open(path, encoding="utf-8") as f:
        body = markdown.markdown(f.read(), extensions=["tables"])

    def embed(match):
        source = html.unescape(match.group(2))
        image = os.path.join(entry["dir"], source)
        if "://" in source or source.startswith("data:") or not os.path.exists(image):
            return match.group(0)
        with open(image, "rb") as f:
            data = base64.b64encode(f.read()).decode()
        return f'{match.group(1)}data:image/png;base64,{data}"'
    body = re.sub(r'(<img[^>]*src=")([^"]+)"', embed, body)
    return f"<details open><summary><b>{html.escape(path)}</b></summary>{body}</details>"


def _manifest(metrics: dict) -> dict:
    path = metrics.get("periods")
    manifest = os.path.join(path, "manifest.json") if path else None
    if path and os.path.isabs(path) and not os.path.relpath(path).startswith(".."):
        path = os.path.relpath(path)  # no machine paths in a page that gets shared
    if not manifest or not os.path.exists(manifest):
        return {"periods": path, "manifest": "not found (periods moved?)"}
    m = _read(manifest)
    keys = ("dataset", "protocol", "rows_in", "rows_out", "windows", "granularity", "vocab",
            "instances", "excluded", "built_at", "builder")
    return {"periods": path, **{k: m[k] for k in keys if k in m}}


def render(found: dict, reference: Optional[str] = None, title: str = "tfmeta report") -> str:
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="note">Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC '
             f"from {len(found['runs'])} run(s), {len(found['tunings'])} search(es), "
             f"{len(found['results'])} benchmark report(s).</p>"]
    for (protocol, dataset), methods in sorted(_groups(found["runs"]).items()):
        ref = reference if reference in methods else ("iu" if protocol == "b" and "iu" in methods
                                                      else next(iter(methods)))
        parts.append(f"<h2>Protocol {protocol.upper()} · {html.escape(dataset)}</h2>")
        parts.append(metric_table(protocol, methods, ref))
        parts.append('<p class="note">Mean ± std over seeds; bold: the best mean per '
                     f"column; the relative change is against {html.escape(ref)} on the same "
                     "seed; s per run: each run's own clock.</p>")
        for image in (curves_figure(protocol, dataset, methods),
                      time_steps_figure(dataset, methods) if protocol == "a" else None):
            if image:
                parts.append(f'<img alt="{html.escape(dataset)} curves" src="{image}">')
        runs = "".join(
            f"<details><summary>{html.escape(r['dir'])} (seed {r['metrics']['seed']}, "
            f"{r['metrics']['seconds']:.0f} s)</summary><pre>"
            + html.escape(json.dumps({"options": r["metrics"].get("options"),
                                      "code": r["metrics"].get("code"),
                                      "data": _manifest(r["metrics"])}, indent=1))
            + "</pre></details>" for rs in methods.values() for r in rs)
        parts.append(f"<h3>Runs: options, code and data</h3>{runs}")
    if found["tunings"]:
        parts.append("<h2>Hyperparameter searches</h2>")
        parts += [tuning_section(t) for t in found["tunings"]]
    if found["results"]:
        parts.append("<h2>Benchmark reports</h2>")
        parts += [results_section(r) for r in found["results"]]
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(parts) + CHECK + "</body></html>")


def write_report(paths: Iterable[str], out: str, reference: Optional[str] = None) -> str:
    paths = list(paths)
    page = render(collect(paths), reference)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = f"{out}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, out)
    return out
