"""Sampling statistics shared by the claims of the scenarios: how far a histogram of M independent samples is
from a predicted distribution, in standard units."""
from __future__ import annotations

import numpy as np

__all__ = ["pearson_z", "chi2_z", "binomial_stderr", "pearson_separation"]

MIN_EXPECTED = 5.0   # bins expecting fewer samples are pooled into one (Cochran's rule for Pearson's test)


def _cells(q: np.ndarray, samples: int) -> np.ndarray:
    """Bins kept on their own (expected count >= MIN_EXPECTED); the rest are pooled into one cell."""
    return q * samples >= MIN_EXPECTED


def _pooled(p: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return np.append(p[keep], p[~keep].sum()) if np.any(~keep) else p[keep]


def chi2_z(chi2: float, dof: int) -> float:
    """A chi^2 value with `dof` degrees of freedom as a standard normal deviate, by the Wilson–Hilferty cube-root
    transform z = ((chi2/k)^(1/3) - (1 - 2/(9k))) / sqrt(2/(9k)) (Wilson & Hilferty 1931): accurate in the
    tails where (chi2 - k)/sqrt(2k) is not (chi^2 is skewed), and free of underflow for huge chi2."""
    c = 2.0 / (9.0 * dof)
    return float((np.cbrt(chi2 / dof) - (1.0 - c)) / np.sqrt(c))


def _pearson(observed: np.ndarray, predicted: np.ndarray, samples: int) -> tuple[float, int]:
    """(M sum (o - q)^2 / q over the cells, k = cells - 1): bins of `predicted` expecting fewer than 5 of the M
    samples pooled into one cell (Cochran 1954); an observed mass where nothing is predicted is infinite."""
    q = np.clip(np.asarray(predicted, float), 0.0, None)
    q = q / max(q.sum(), 1e-300)
    keep = _cells(q, samples)
    o, qc = _pooled(np.asarray(observed, float), keep), _pooled(q, keep)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(qc > 0, (o - qc) ** 2 / np.where(qc > 0, qc, 1.0), np.where(o > 0, np.inf, 0.0))
    return float(samples * np.sum(terms)), len(qc) - 1


def pearson_z(observed: np.ndarray, predicted: np.ndarray, samples: int) -> float:
    """Pearson's chi^2 of a histogram of `samples` draws (bin fractions `observed`) against bin probabilities
    `predicted` (k = cells - 1 degrees of freedom; Pearson 1900) as a z-score (`chi2_z`): N(0, 1) under the
    prediction; a wrong prediction makes chi^2 grow like M times the squared distance. nan if non-finite."""
    if not (np.all(np.isfinite(observed)) and np.all(np.isfinite(predicted))):
        return float("nan")
    chi2, k = _pearson(observed, predicted, samples)
    return chi2_z(chi2, k) if k >= 1 else float("nan")


def pearson_separation(q_true: np.ndarray, q_other: np.ndarray, samples: int) -> float:
    """The z that `pearson_z` is expected to give against `q_other` when the samples come from `q_true`: the z of
    k + lambda, the mean of a non-central chi^2 whose non-centrality lambda = M sum (q_true - q_other)^2 /
    q_other is `_pearson` of the two distributions. Tells whether two theories can be told apart with M samples."""
    lam, k = _pearson(q_true, q_other, samples)
    return chi2_z(k + lam, k) if k >= 1 else float("nan")


def binomial_stderr(fraction: float, samples: int) -> float:
    """Standard error sqrt(p (1 - p) / M) of a fraction estimated from M independent samples."""
    return float(np.sqrt(max(fraction * (1.0 - fraction), 0.0) / samples))
