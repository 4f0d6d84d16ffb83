"""The one timer of the benchmarks: best wall time of a few repeats (the least disturbed by other load)."""
from __future__ import annotations

import math
import time


def best_time(fn, repeats: int, give_up_after: float = math.inf) -> tuple[float, object]:
    """(shortest wall time of `repeats` calls of fn, fn's last result); stops repeating once a call took
    longer than `give_up_after` seconds."""
    best, out = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
        if best > give_up_after:
            break
    return best, out
