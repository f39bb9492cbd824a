"""The trainer's progress bar (downstream of the chain), one line on stderr.

It shows the iteration, cost of the last step, the last evaluation's loss
and accuracy on train and test, elapsed time and an estimate of the time left."""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """Redraws at most ten times a second; silent unless enabled (default: when stderr is a
    terminal)."""

    def __init__(
        self,
        total: int,
        unit: str = "it",
        enabled: bool | None = None,
        stream=None,
        width: int = 24,
    ):
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.total, self.unit, self.width = max(int(total), 0), unit, width
        self.done = 0
        self.first = 0
        self.cost = float("nan")
        self.evals = None
        self._t0 = time.perf_counter()
        self._last = 0.0
        self.note = None

    def status(self, note: str | None) -> None:
        """Show a note instead of the bar (e.g. while the network compiles); None shows the bar."""
        self.note = note
        if self.enabled:
            text = f"{note}..." if note else ""
            self.stream.write("\r" + text + "\033[K")
            self.stream.flush()

    def start(self, done: int) -> None:
        self.done = self.first = done
        self._t0 = time.perf_counter()
        self._draw(force=True)

    def update(self, done: int, cost: float) -> None:
        self.done, self.cost = done, cost
        self._draw()

    def metrics(self, train_loss, train_acc, test_loss, test_acc) -> None:
        self.evals = (train_loss, train_acc, test_loss, test_acc)
        self._draw()

    def line(self) -> str:
        frac = self.done / self.total if self.total else 1.0
        fill = int(round(frac * self.width))
        el = time.perf_counter() - self._t0
        rate = (self.done - self.first) / el if el > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        text = f"[{'#' * fill}{'.' * (self.width - fill)}] {self.done}/{self.total} {self.unit}"
        if self.evals is not None:
            tl, ta, vl, va = self.evals
            text += f"  loss {tl:.4g}/{vl:.4g}  acc {100 * ta:.1f}%/{100 * va:.1f}%"
        elif self.cost == self.cost:
            text += f"  cost {self.cost:.4g}"
        return text + f"  {_clock(el)}<{_clock(left)}"

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last < 0.1 and self.done < self.total:
            return
        self._last = now
        self.stream.write("\r" + self.line() + "\033[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
