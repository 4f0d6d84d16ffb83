"""Escape times in one dimension: the exact mean first-passage time of dx = -f'(x) dt + sqrt(2T) dW, and
Kramers' rate as its low-temperature asymptote.

Exact (Gardiner 2009, eq. 5.5.20; reflecting wall at a, absorbing point b > x0):
    tau(x0) = (1/T) int_{x0}^{b} dy int_{a}^{y} dz exp((f(y) - f(z)) / T)
Kramers (1940), Hänggi, Talkner & Borkovec 1990, eq. 4.56b: for a minimum m and a barrier top s,
    tau ~ 2 pi / sqrt(f''(m) |f''(s)|) exp((f(s) - f(m)) / T),    T -> 0.
"""
from __future__ import annotations

import math
from typing import Callable

from scipy import integrate

from ..errors import ParameterError


def mfpt_exact_1d(f: Callable[[float], float], x0: float, target: float, temperature: float,
                  wall: float = -math.inf) -> float:
    """Mean first-passage time from x0 to `target` > x0 with a reflecting wall at `wall` < x0 (-inf: none),
    by nested adaptive quadrature of the double integral (relative accuracy ~1e-10)."""
    if not temperature > 0:
        raise ParameterError(f"temperature must be positive, got {temperature!r}")
    if not wall < x0 < target:
        raise ParameterError(f"need wall < x0 < target, got wall={wall}, x0={x0}, target={target}")
    T = float(temperature)

    def inner(y: float) -> float:
        fy = f(y)
        value, _ = integrate.quad(lambda z: math.exp((fy - f(z)) / T), wall, y, epsabs=0.0, epsrel=1e-11,
                                  limit=200)
        return value

    outer, _ = integrate.quad(inner, x0, target, epsabs=0.0, epsrel=1e-10, limit=200)
    return outer / T


def kramers_time(barrier: float, curvature_min: float, curvature_saddle: float, temperature: float) -> float:
    """Kramers' mean escape time 2 pi / sqrt(f''(m) |f''(s)|) exp(barrier / T) (overdamped, 1-D)."""
    if not (temperature > 0 and curvature_min > 0 and curvature_saddle != 0):
        raise ParameterError("Kramers' formula needs T > 0, f''(minimum) > 0 and f''(saddle) != 0")
    return 2 * math.pi / math.sqrt(curvature_min * abs(curvature_saddle)) * math.exp(barrier / temperature)
