"""The stochastic modified equations as particle dynamics (issue 15): SME-2 particles against the order-2
Fokker–Planck density (and far from the order-1 one), and SME particles with multiplicative noise against exact
moments."""
import numpy as np

from sgdsim.particles import dynamics as D
from sgdsim.particles import landscapes as L
from sgdsim.particles import theory
from sgdsim.particles.simulate import Recorder, simulate

NOTHING = Recorder(every=10 ** 9, mean=False, covariance=False, loss=False)  # only steps 0 and n_steps
_rng = np.random.default_rng(3)   # the least-squares data of test_particles.py
A_LS = _rng.standard_normal((16, 2))
B_LS = A_LS @ np.array([0.5, -1.0]) + 0.7 * _rng.standard_normal(16)
LSQ = L.Regression(A_LS, B_LS)
MOMENTS = theory.least_squares_moments(A_LS, B_LS)


def _run(landscape, dynamics, x0, n_steps, seed, recorder=NOTHING, **kw):
    return simulate(landscape, dynamics, np.asarray(x0, float), n_steps=n_steps, seed=seed,
                    recorder=recorder, progress=False, **kw)


def test_sme2_particles_match_the_order_two_pde_and_reject_order_one():
    """Tilted double well (constant Sigma), SME-2 by stochastic Heun with 8 substeps per SGD step, from 0.5 to
    t = 0.4: E x and the histogram agree with the order-2 Fokker–Planck density (`fokker_planck.pde_density`)
    within sampling error; the order-1 PDE is many standard errors away."""
    from sgdsim.fokker_planck import equation as fokker_planck
    from sgdsim.statistics import pearson_z
    landscape = L.finite_sum_double_well(256, 1.0, dim=1, seed=3)
    sme, m, steps = D.SME(lr=0.1, batch=1, substeps=8, scheme="heun"), 100_000, 32
    x = _run(landscape, sme, np.full((m, 1), 0.5), steps, seed=9).positions[:, 0]
    edges = np.linspace(-1.0, 2.0, 61)
    hist = np.histogram(x, edges)[0] / m
    means = {}
    for order in (2, 1):
        fp, out = fokker_planck.pde_density(landscape, sme if order == 2 else D.SGD(lr=0.1, batch=1), [0.5],
                                            [steps if order == 2 else steps // 8], lo=-1.0, hi=2.0, cells=1500,
                                            order=order, dt=1e-3)
        means[order] = fp.mean(out.density[-1])[0]
        if order == 2:
            assert abs(pearson_z(hist, fp.bin_probabilities(out.density[-1], edges), m)) < 4
    se = x.std() / np.sqrt(m)
    assert abs(x.mean() - means[2]) < 4 * se
    assert abs(x.mean() - means[1]) > 10 * se


def test_sme_particles_with_multiplicative_noise_have_the_exact_moments():
    """Least squares, Sigma(x) = C(x)/B state dependent. With one Euler step per SGD step the SME-1's first two
    moments are exactly SGD's (`modified_equations.sgd_moments`: same mean map, same conditional covariance
    lr^2 Sigma); the SME-2's mean is exactly (I - lr H - lr^2 H^2 / 2)^n (x0 - x*) + x*, not SGD's."""
    from sgdsim.particles import modified_equations as ME
    lr, batch, n, m = 0.2, 2, 6, 40_000
    x0 = MOMENTS.x_star + np.array([1.5, -1.0])
    exact = ME.sgd_moments(A_LS, B_LS, x0, lr, batch, True, [n])
    x = _run(LSQ, D.SME(lr=lr, batch=batch, order=1), np.tile(x0, (m, 1)), n, seed=10).positions
    second = x[:, :, None] * x[:, None, :]
    for sample, predicted in ((x, exact.mean[0]), (second, exact.second[0])):
        se = sample.std(axis=0) / np.sqrt(m)
        assert np.all(np.abs(sample.mean(axis=0) - predicted) < 4 * se), (sample.mean(axis=0) - predicted) / se
    y = _run(LSQ, D.SME(lr=lr, batch=batch, order=2), np.tile(x0, (m, 1)), n, seed=10).positions
    H = MOMENTS.hessian
    step = np.eye(2) - lr * (H + lr / 2 * H @ H)
    mean2 = MOMENTS.x_star + np.linalg.matrix_power(step, n) @ (x0 - MOMENTS.x_star)
    se = y.std(axis=0) / np.sqrt(m)
    assert np.all(np.abs(y.mean(axis=0) - mean2) < 4 * se)
    assert np.max(np.abs(y.mean(axis=0) - exact.mean[0]) / se) > 10
