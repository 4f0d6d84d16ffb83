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


def pearson_z(observed: np.ndarray, predicted: np.ndarray, samples: int) -> float:
    """Pearson's chi^2 of a histogram of `samples` draws (bin fractions `observed`) against bin probabilities
    `predicted` (k = cells - 1 degrees of freedom, cells with an expected count below 5 pooled into one;
    Pearson 1900, Cochran 1954) as a z-score (`chi2_z`): N(0, 1) under the prediction; a wrong prediction makes
    chi^2 grow like M times the squared distance. nan if non-finite."""
    h, q = np.asarray(observed, float), np.asarray(predicted, float)
    if not (np.all(np.isfinite(h)) and np.all(np.isfinite(q))):
        return float("nan")
    q = np.clip(q, 0.0, None) / max(q.sum(), 1e-300)
    keep = _cells(q, samples)
    hc, qc = _pooled(h, keep), _pooled(q, keep)
    k = len(qc) - 1
    if k < 1:
        return float("nan")
    with np.errstate(divide="ignore"):
        chi2 = samples * np.sum(np.where(qc > 0, (hc - qc) ** 2 / np.where(qc > 0, qc, 1.0), np.where(hc > 0, np.inf, 0.0)))
    return chi2_z(chi2, k)


def pearson_separation(q_true: np.ndarray, q_other: np.ndarray, samples: int) -> float:
    """The z that `pearson_z` is expected to give against `q_other` when the samples come from `q_true`: the z of
    k + lambda, the mean of a non-central chi^2 with non-centrality lambda = M sum (q_true - q_other)^2 /
    q_other. Tells whether two theories can be told apart with M samples."""
    q1, q2 = np.asarray(q_true, float), np.asarray(q_other, float)
    q2 = np.clip(q2, 0.0, None) / max(q2.sum(), 1e-300)
    keep = _cells(q2, samples)
    a, b = _pooled(q1, keep), _pooled(q2, keep)
    k = len(b) - 1
    if k < 1:
        return float("nan")
    return chi2_z(k + samples * np.sum((a - b) ** 2 / b), k)


def binomial_stderr(fraction: float, samples: int) -> float:
    """Standard error sqrt(p (1 - p) / M) of a fraction estimated from M independent samples."""
    return float(np.sqrt(max(fraction * (1.0 - fraction), 0.0) / samples))
