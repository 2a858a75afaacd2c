"""A quick, fair race between functions, for `fastmlp demo` and `fastmlp bench`."""
from __future__ import annotations

import time
from typing import Callable, List, Sequence, Tuple


def race(fn_a: Callable[[], object], fn_b: Callable[[], object], rows: int,
         budget: float = 0.5, rounds: int = 5) -> Tuple[float, float, float]:
    """Best seconds per row of each function and the ratio a / b (see race_all)."""
    a, b = race_all((fn_a, fn_b), rows, budget, rounds)
    return a, b, a / b


def race_all(fns: Sequence[Callable[[], object]], rows: int, budget: float = 0.5,
             rounds: int = 5) -> List[float]:
    """Best seconds per row of each function; the rounds alternate between them, so load
    from elsewhere on the machine hits all alike. `budget` is about the total seconds."""
    loops = []
    for fn in fns:
        start = time.perf_counter()
        fn()
        once = max(time.perf_counter() - start, 1e-7)
        loops.append(max(1, int(budget / (len(fns) * rounds) / once)))
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            for _ in range(loops[i]):
                fn()
            best[i] = min(best[i], (time.perf_counter() - start) / loops[i])
    return [seconds / rows for seconds in best]


def per_row(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:.2f} us/row" if us < 10 else f"{us:.1f} us/row"


def table(results: "list[Tuple[str, Tuple[float, float, float]]]") -> str:
    """Rows of (label, race result) as a small text table: numpy, fastmlp, speed-up."""
    lines = [f"  {'':<28}{'numpy':>14}{'fastmlp':>14}{'speed-up':>11}"]
    for label, (a, b, ratio) in results:
        lines.append(f"  {label:<28}{per_row(a):>14}{per_row(b):>14}{ratio:>10.1f}x")
    return "\n".join(lines)
