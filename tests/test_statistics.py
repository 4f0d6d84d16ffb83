"""Sampling statistics of the claims, against what they promise: Pearson's z is N(0, 1) for histograms drawn from
the prediction (mean and spread over many draws, within standard errors), `pearson_separation` predicts where
it lands for draws from another distribution, and chi2_z is the normal quantile of the chi^2 distribution."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sgdsim.statistics import binomial_stderr, chi2_z, pearson_separation, pearson_z

Q = np.exp(-np.linspace(-3, 3, 40) ** 2)
Q /= Q.sum()


def draws(q, m, n, seed):
    rng = np.random.default_rng(seed)
    return rng.multinomial(m, q, size=n) / m


def test_pearson_z_is_standard_normal_under_the_prediction():
    z = np.array([pearson_z(h, Q, 5000) for h in draws(Q, 5000, 2000, 1)])
    assert abs(z.mean()) < 4 / np.sqrt(len(z)) and abs(z.std() - 1) < 4 / np.sqrt(2 * len(z))
    assert np.mean(np.abs(z) > 3.29) < 0.004     # the tail the claims' bounds rely on (0.1% expected)


def test_separation_predicts_pearson_z_under_another_distribution_and_a_wrong_prediction_is_caught():
    other = np.roll(Q, 1)
    z = np.array([pearson_z(h, Q, 5000) for h in draws(other, 5000, 400, 2)])
    predicted = pearson_separation(other, Q, 5000)
    assert predicted > 5 and abs(z.mean() - predicted) < 0.1 * predicted
    assert np.all(z > 3.29)


@pytest.mark.parametrize("k", [10, 30, 200])
@pytest.mark.parametrize("p", [0.5, 0.99, 0.999, 0.9999])
def test_chi2_z_is_the_normal_quantile_of_chi2(k, p):
    """In the upper tail, where the claims' bounds are (Wilson–Hilferty is coarser far in the lower tail)."""
    assert chi2_z(stats.chi2.ppf(p, k), k) == pytest.approx(stats.norm.ppf(p), abs=0.06)


def test_non_finite_input_gives_nan_and_binomial_stderr():
    assert np.isnan(pearson_z(np.full(40, np.nan), Q, 100))
    assert binomial_stderr(0.5, 100) == pytest.approx(0.05)
