"""Progress bars for long work that also speak in logs.

tqdm(disable=None) draws a bar only where stderr is a terminal, so a batch job, a
Dataflow or Kubernetes worker, or a benchmark's train.log sees nothing for hours.
`Progress` is that bar; where it draws nothing, each postfix it is given (once per
finished epoch, iteration, period or run) becomes one plain line of the log instead:

    leaprec val: iteration 9/10, loss 0.1234, val HR@10 0.2901 (712 s)
"""
import sys
import time

from tqdm.auto import tqdm


class Progress(tqdm):
    """tqdm(disable=None) that logs a line per postfix where it draws no bar. A bar
    disabled on purpose (disable=True) stays silent."""

    def __init__(self, iterable=None, desc: str = "", unit: str = "it", initial: int = 0,
                 disable=None, **kwargs):
        super().__init__(iterable, desc=desc, unit=unit, initial=initial, disable=disable,
                         **kwargs)
        self.logs = bool(self.disable) and disable is None
        # A disabled tqdm keeps neither its desc and unit nor a count: the lines keep theirs.
        self.line_desc, self.line_unit, self.lines_done = desc, unit, initial
        self.line_clock = time.monotonic()

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        if not self.logs:
            return super().set_postfix(ordered_dict, refresh, **kwargs)
        figures = {**(ordered_dict or {}), **kwargs}
        self.log_line(", ".join(f"{k} {v}" for k, v in figures.items()))

    def set_postfix_str(self, s="", refresh=True):
        if not self.logs:
            return super().set_postfix_str(s, refresh)
        self.log_line(s)

    def log_line(self, text: str) -> None:
        """One line: the unit this postfix closes, its figures, its seconds."""
        self.lines_done += 1
        now = time.monotonic()
        total = f"/{self.total}" if self.total is not None else ""
        print(f"{self.line_desc}: {self.line_unit} {self.lines_done}{total}"
              f"{', ' + text if text else ''} ({now - self.line_clock:.0f} s)",
              file=sys.stderr, flush=True)
        self.line_clock = now
