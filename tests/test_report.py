"""tfmeta report: the HTML page, its figures, and what a real browser renders of it."""
import tfmeta  # noqa: F401

import json
import os
import re
import shutil
import subprocess

import pytest

from tfmeta import cli
from tfmeta.report import collect, render

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


def write_run(root, method, seed, auc, protocol="b"):
    run = root / f"{method}-{seed}"
    run.mkdir(parents=True)
    if protocol == "b":
        metrics = {"protocol": "b", "dataset": "toy", "method": method, "seed": seed,
                   "seconds": 10.0 + seed, "val": {"auc": auc - 0.01, "logloss": 0.6},
                   "test": {"auc": auc, "logloss": 0.5},
                   "per_period": [{"period": p, "auc": auc + 0.001 * p, "logloss": 0.5}
                                  for p in range(12, 32)],
                   "options": {"method": method, "seed": seed, "epochs": 1},
                   "code": [{"tfmeta": "0.1.0", "digest": "c0de0f1b0a7d", "modules": 30}],
                   "periods": str(root / "nowhere")}
    else:
        figures = {"sampled": {"HR@1": 0.1, "HR@5": 0.3, "HR@10": auc, "NDCG@5": 0.2,
                               "NDCG@10": 0.25, "MRR": 0.2},
                   "full": {"HR@10": 0.05, "NDCG@10": 0.02, "MRR": 0.03}}
        metrics = {"protocol": "a", "dataset": "toy", "method": method, "seed": seed,
                   "seconds": 5.0, "val": figures, "test": figures,
                   "training": {"val": {"losses": [0.7, 0.6, 0.5], "time_steps": ["m1"]}},
                   "options": {"method": method, "seed": seed}, "periods": None}
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def write_tuning(root):
    folder = root / "search"
    folder.mkdir()
    trials = [{"trial": str(n), "status": "COMPLETED", "values": {"learning_rate": lr},
               "objective": score, "seconds": 3.0}
              for n, (lr, score) in enumerate([(1e-2, 0.30), (1e-3, 0.35), (1e-4, 0.20)])]
    (folder / "tuning.json").write_text(json.dumps({
        "method": "mf", "protocol": "a", "tuner": "random", "trials": trials,
        "objective": {"name": "val_hr10", "description": "validation sampled HR@10"},
        "best": {"trial": "1", "values": {"learning_rate": 1e-3}, "objective": 0.35},
        "final": {"run": "best", "seconds": 4.0,
                  "test": {"sampled": {"HR@10": 0.41}}, "val": {}}}))
    return folder


@pytest.fixture
def inputs(tmp_path):
    for seed, (iu, asmg) in enumerate([(0.70, 0.72), (0.80, 0.84)]):
        write_run(tmp_path / "runs", "iu", seed, iu)
        write_run(tmp_path / "runs", "asmg-gru-multi", seed, asmg)
    write_run(tmp_path / "runs", "mf", 0, 0.4, protocol="a")
    leap = json.loads((write_run(tmp_path / "runs", "leaprec", 0, 0.5, protocol="a")
                       / "metrics.json").read_text())
    leap["training"]["val"] = {"losses": [[0.7, 0.6], [0.5, 0.4]], "time_steps": ["m1", "m2"]}
    (tmp_path / "runs" / "leaprec-0" / "metrics.json").write_text(json.dumps(leap))
    write_tuning(tmp_path)
    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(os.path.join(os.path.dirname(__file__), "..", "benchmarks", "results",
                             "asmg-per-period-yelp-a.png"), results / "figure.png")
    (results / "bench.md").write_text("# Bench\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
                                      "![a figure](figure.png)\n")
    return tmp_path


def test_tables_relative_changes_and_embedded_figures(inputs):
    page = render(collect([str(inputs / "runs"), str(inputs / "search"),
                           str(inputs / "results")]))
    # asmg-gru-multi vs IU on the same seed: +2.86% and +5.00%, mean 3.93 ± 1.52.
    row = re.search(r"<tr><td>asmg-gru-multi</td>.*?</tr>", page).group(0)
    assert "0.7800 ± 0.0849" in row and "+3.93% ± 1.52" in row
    assert "<td>iu</td><td>2</td>" in page and "Protocol A · toy" in page
    assert "Best trial 1: val_hr10 0.3500" in page and "test HR@10 0.4100" in page
    assert "<th>a</th>" in page  # the benchmark's own Markdown table
    assert "c0de0f1b0a7d" in page  # which code trained each run
    assert 'src="figure.png"' not in page  # every image embedded
    # B curves, A losses, A loss per time step (leaprec), search, bench
    assert page.count('src="data:image/png;base64,') == 5
    with pytest.raises(ValueError, match="nothing to report"):
        collect([str(inputs / "results" / "figure.png")])


def test_report_command_writes_one_file(inputs, capsys):
    out = inputs / "report.html"
    assert cli.main(["report", str(inputs / "runs"), "--out", str(out), "--reference",
                     "asmg-gru-multi"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert "iu vs asmg-gru-multi" not in out.read_text()
    assert "auc vs asmg-gru-multi" in out.read_text()
    assert cli.main(["report", str(inputs / "missing"), "--out", str(out)]) == 2


@pytest.mark.skipif(BROWSER is None and os.environ.get("TFMETA_REQUIRE_BROWSER") != "1",
                    reason="Debian's chromium is not installed (CI installs it)")
def test_a_headless_browser_renders_every_table_and_image(inputs, tmp_path):
    assert BROWSER, "TFMETA_REQUIRE_BROWSER=1 but no chromium on PATH"
    out = tmp_path / "report.html"
    assert cli.main(["report", str(inputs / "runs"), str(inputs / "search"),
                     str(inputs / "results"), "--out", str(out)]) == 0
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([BROWSER, *flags, "--virtual-time-budget=10000", "--dump-dom",
                          out.as_uri()], capture_output=True, text=True, timeout=120).stdout
    rendered = re.search(r'data-rendered="([^"]+)"', dom)
    assert rendered, "the page's check script did not run"
    seen = json.loads(rendered.group(1).replace("&quot;", '"'))
    page = out.read_text()
    assert seen["tables"] == page.count("<table") and seen["tables"] >= 4
    assert seen["images"] == 5 and seen["decoded"] == 5
    shot = tmp_path / "shot.png"
    subprocess.run([BROWSER, *flags, "--window-size=1100,1400", f"--screenshot={shot}",
                    out.as_uri()], capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
