"""The README's Quick start is what CI and new users run: keep it honest."""
import json
import pathlib
import subprocess
import sys

from tfmeta import cli

ROOT = pathlib.Path(__file__).resolve().parent.parent


def readme_command(n: int) -> str:
    return subprocess.run([sys.executable, str(ROOT / ".ci" / "readme_command.py"), str(n)],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_quick_start_has_an_install_and_run_command_and_a_test_command():
    first, second = readme_command(1), readme_command(2)
    assert "pip install -e ." in first and "tfmeta quickstart" in first
    assert 'pip install -e ".[test]"' in second and "pytest" in second and "tests" in second


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "readme_command.py 2" in ci and "exit code 5" in ci


def test_quickstart_builds_both_protocols_and_prints_summaries(tmp_path, capsys,
                                                                movielens_100k):
    assert cli.main(["quickstart", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "protocol A · movielens-100k" in out and "protocol B · movielens-100k" in out
    assert "test instances: 3,715" in out and "period-031" in out
    assert "asmg-gru-multi" in out and "test AUC" in out
    assert (tmp_path / "periods-a" / "manifest.json").exists()
    assert (tmp_path / "periods-b" / "manifest.json").exists()
    metrics = json.loads((tmp_path / "run-iu" / "metrics.json").read_text())
    assert 0.6 < metrics["test"]["auc"] < 1


if __name__ == "__main__":  # Bazel's py_test runs the file as a script
    import pytest
    raise SystemExit(pytest.main([__file__]))


def test_leaprec_figures_in_the_readme_are_the_benchmarks():
    """README's "Measured" table is copied from benchmarks/results/leaprec.json by
    hand; a run tabulated since without the README following fails here."""
    names = {"BPR-MF": "mf", "GCN": "gcn", "NGCF": "ngcf", "LightGCN": "lightgcn",
             "SASRec": "sasrec", "GRU4Rec": "gru4rec", "GNN+SA, plain": "gnn-sa",
             "**LeapRec** (GNN+SA)": "leaprec"}
    report = json.loads((ROOT / "benchmarks" / "results" / "leaprec.json").read_text())
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("| model | MovieLens-100K | yelp-a | Amazon Beauty |")
    rows = {}
    for line in lines[start + 2:start + 2 + len(names)]:
        label, *cells = [c.strip() for c in line.strip("|").split("|")]
        rows[names[label]] = cells
    assert set(rows) == set(names.values())

    def cell(table, method):
        row = table.get(method)
        if row is None:
            return "not run"
        hr10, full = (row["columns"][f"test/{k}/HR@10"] for k in ("sampled", "full"))
        spread = f" ± {hr10['std']:.3f}" if len(row["seeds"]) > 1 else ""
        return f"{hr10['mean']:.3f}{spread} / {full['mean']:.3f} ({len(row['seeds'])})"
    for i, dataset in enumerate(("movielens-100k", "yelp-a", "amazon-beauty")):
        table = report["datasets"][dataset]["experiments"]["models"]["table"]
        for method, cells in rows.items():
            assert cells[i] == cell(table, method), (dataset, method)
