"""A one-line progress bar with rows per second, for stderr on a terminal."""
from __future__ import annotations

import math
import shutil
import time
from typing import Callable, Optional, TextIO


class Progress:
    """Drawn only once a run has lasted `delay` seconds, so quick runs stay silent, and at most
    every `interval` seconds. Its update(rows, fraction) fits fastmlp.predict_file's progress."""

    def __init__(self, stream: TextIO, enabled: bool, delay: float = 0.5,
                 interval: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.enabled = stream, enabled
        self.delay, self.interval, self.clock = delay, interval, clock
        self.start = self.last_draw = clock()
        self.rows, self.fraction, self.drawn = 0, None, False  # type: int, Optional[float], bool

    def update(self, rows: int, fraction: Optional[float] = None) -> None:
        self.rows += rows
        self.fraction = fraction
        now = self.clock()
        if (self.enabled and now - self.start >= self.delay
                and (not self.drawn or now - self.last_draw >= self.interval)):
            self._draw(now)

    def close(self) -> None:
        if self.drawn:
            self._draw(self.clock())
            self.stream.write("\n")
            self.stream.flush()

    def elapsed(self) -> float:
        return max(self.clock() - self.start, 1e-9)

    def line(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        text = f"{self.rows:,} rows  {rate(self.rows / elapsed)} rows/s"
        if self.fraction is None:
            return text
        f = min(max(self.fraction, 0.0), 1.0)
        width = 24
        filled = int(f * width)
        bar = "#" * filled + "." * (width - filled)
        eta = elapsed * (1 - f) / f if f > 0 else float("nan")
        return f"[{bar}] {f:4.0%}  {text}  ETA {_duration(eta)}"

    def _draw(self, now: float) -> None:
        columns = shutil.get_terminal_size((80, 24)).columns
        self.stream.write("\r" + self.line(now)[:columns - 1].ljust(columns - 1))
        self.stream.flush()
        self.drawn, self.last_draw = True, now


def rate(x: float) -> str:
    """'1.50M', '2.00k', '12'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.0f}"


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
