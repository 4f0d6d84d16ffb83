"""How numbers are printed in summaries and tables: a measurement with as many digits as its standard error
shows, and nothing printed from non-finite values."""
from __future__ import annotations

import math

__all__ = ["estimate", "number"]


def estimate(value: float, stderr: float | None = None) -> str:
    """'value +- stderr' rounded at the second significant digit of the standard error (0.50712 +- 0.00049
    -> '0.50712 +- 0.00049', 0.443 +- 0.004 -> '0.4430 +- 0.0040'); 'n/a' for a non-finite value; the value to
    4 significant digits when there is no (finite, positive) standard error."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if stderr is None or not (math.isfinite(stderr) and stderr > 0):
        return number(value)
    digits = max(0, 1 - math.floor(math.log10(stderr)))
    return f"{value:.{digits}f} +- {stderr:.{digits}f}"


def number(value: float, digits: int = 4) -> str:
    """A value to `digits` significant digits, 'n/a' when it is not finite."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}g}"
