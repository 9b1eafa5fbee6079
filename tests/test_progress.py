"""tfmeta.progress: a bar on a terminal, a line per finished unit in a log."""
import io

import pytest

from tfmeta.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_without_a_terminal_each_postfix_is_a_line_of_the_log(capsys):
    bar = Progress(range(2, 4), desc="mf val", unit="epoch", initial=2, total=4)
    for epoch in bar:
        bar.set_postfix({"loss": f"{0.5 / epoch:.4f}"}, hr=epoch)
    runs = Progress(total=3, desc="yelp-a", unit="run")
    runs.set_postfix_str("gcn/seed-0: val HR@10 0.5000")
    runs.update(1)
    lines = capsys.readouterr().err.splitlines()
    assert [line.rsplit(" (", 1)[0] for line in lines] == [
        "mf val: epoch 3/4, loss 0.2500, hr 2",
        "mf val: epoch 4/4, loss 0.1667, hr 3",
        "yelp-a: run 1/3, gcn/seed-0: val HR@10 0.5000"]
    assert all(line.endswith(" s)") for line in lines)  # the unit's seconds


def test_a_terminal_gets_the_bar_and_a_disabled_bar_stays_silent(capsys):
    terminal = Terminal()
    bar = Progress(range(2), desc="drawn", unit="epoch", file=terminal)
    for _ in bar:
        bar.set_postfix(loss="0.1")
    bar.close()
    assert "drawn" in terminal.getvalue() and "loss=0.1" in terminal.getvalue()
    quiet = Progress(range(2), desc="quiet", disable=True)
    for _ in quiet:
        quiet.set_postfix(loss="0.1")
    assert capsys.readouterr().err == ""


if __name__ == "__main__":  # Bazel's py_test runs the file as a script
    raise SystemExit(pytest.main([__file__]))
