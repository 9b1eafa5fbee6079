"""The `tfmeta` command, as a user runs it."""
import json
import os
import subprocess
import sys

import pytest

from tfmeta import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, check=True):
    return subprocess.run([sys.executable, "-m", "tfmeta.cli", *args], cwd=REPO,
                          capture_output=True, text=True, check=check)


def test_datasets_list_shows_every_dataset_and_its_terms(capsys):
    assert cli.main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("movielens-100k", "movielens-1m", "yelp-a", "amazon-beauty"):
        assert name in out
    assert "terms:" in out
    assert cli.main(["datasets", "list", "--json"]) == 0
    assert {d["name"] for d in json.loads(capsys.readouterr().out)} >= {"yelp-a"}


def test_periods_build_and_show_from_the_console_script(tmp_path, movielens_100k):
    out = tmp_path / "b"
    result = run("periods", "build", "--input", "movielens-100k", "--protocol", "b",
                 "--out", str(out))
    assert "protocol B" in result.stdout and "period-031" in result.stdout
    shown = run("periods", "show", str(out), "--json")
    assert json.loads(shown.stdout)["rows_in"] == 100_000
    again = run("periods", "build", "--input", "movielens-100k", "--protocol", "b",
                "--out", str(out), check=False)
    assert again.returncode == 2 and "--overwrite" in again.stderr


@pytest.mark.parametrize("args,message", [
    (["--input", "no-such-file.csv", "--protocol", "a"], "no-such-file.csv"),
    (["--input", "movielens-100k", "--protocol", "a", "--granularity", "count",
      "--periods", "0"], "--periods"),
    # an unquoted glob, expanded by the shell: Beam would drop the other files silently
    (["--input", "logs/a.csv", "logs/b.csv", "--protocol", "b"],
     "unexpected argument(s) logs/b.csv"),
])
def test_bad_requests_get_a_clear_message(tmp_path, capsys, args, message):
    assert cli.main(["periods", "build", "--out", str(tmp_path / "x"), *args]) == 2
    assert message in capsys.readouterr().err


def test_train_on_protocol_a_periods(build_once, movielens_100k, tmp_path, capsys):
    periods = build_once("beam", input="movielens-100k", protocol="a")
    out = tmp_path / "run"
    assert cli.main(["train", "--periods", periods, "--method", "leaprec+mf", "--out",
                     str(out), "--iterations", "1", "--inner-steps", "2", "--gtl-dim", "8",
                     "--otl-dim", "8", "--learning-rate", "0.01", "--choose-budget"]) == 0
    printed = capsys.readouterr().out
    assert "test: HR@10" in printed and "metrics.json" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"] == "a" and metrics["options"]["inner_steps"] == 2
    assert metrics["options"]["choose_budget"] and metrics["budget"]["chosen"] == 1
    assert metrics["budget"]["unit"] == "iteration"
    assert metrics["options"]["epochs"] == 20  # protocol A's default, not B's
    assert cli.main(["train", "--periods", periods, "--method", "iu", "--out",
                     str(tmp_path / "bad")]) == 2
    assert "unknown protocol A method 'iu'" in (err := capsys.readouterr().err)
    assert "iu is an incremental CTR method of protocol B" in err
    assert cli.main(["train", "--periods", periods, "--method", "mf", "--out",
                     str(tmp_path / "bad2"), "--model-options", '{"num_layers": 2}']) == 2
    assert "model mf has no option num_layers" in capsys.readouterr().err


def test_csv_without_the_named_columns(tmp_path, capsys):
    log = tmp_path / "log.csv"
    log.write_text("uid,iid,time\n1,2,3\n")
    assert cli.main(["periods", "build", "--input", str(log), "--protocol", "b",
                     "--out", str(tmp_path / "x")]) == 2
    assert "--columns" in capsys.readouterr().err
    assert cli.main(["periods", "build", "--input", str(log), "--protocol", "b",
                     "--periods", "1", "--columns", "user=uid,item=iid,ts=time",
                     "--out", str(tmp_path / "x")]) == 0


if __name__ == "__main__":  # Bazel's py_test runs the file as a script
    raise SystemExit(pytest.main([__file__]))
