"""Path observables of the particle engine (Stratonovich area and quadratic variation summed in the kernel),
non-gradient drifts -(I + Q) grad f, and level-set first-passage targets (issue 17, items 3 and 4), against
Brownian motion, the exact discrete OU area rate, the Fokker–Planck current of the ring, and analytic hitting
steps."""
import math

import numpy as np
import pytest

from sgdsim.particles import dynamics as D
from sgdsim.particles import landscapes as L
from sgdsim.particles import theory
from sgdsim.particles.simulate import Recorder, simulate
from sgdsim.solvers import Target

NOTHING = Recorder(every=10 ** 9, mean=False, covariance=False, loss=False)  # only steps 0 and n_steps
H = np.array([0.5, 2.0])
OU = L.Quadratic(H)
TEMP = 0.5


def _run(landscape, dynamics, x0, n_steps, seed, recorder=NOTHING, **kw):
    return simulate(landscape, dynamics, np.asarray(x0, float), n_steps=n_steps, seed=seed,
                    recorder=recorder, progress=False, **kw)


def test_quadratic_variation_and_area_of_brownian_motion():
    """f = 0: every step is sqrt(2 T dt) z, so sum |dx|^2 over n steps has mean n d 2 T dt and variance
    2 n d (2 T dt)^2 exactly, and the area has mean 0; a noise amplitude of sqrt(T dt) would be rejected."""
    dt, n, m, d = 0.01, 50, 20_000, 2
    out = _run(L.Quadratic([0.0, 0.0]), D.Langevin(lr=dt, temperature=TEMP), np.zeros((m, d)), n, seed=12,
               recorder=Recorder(every=25, mean=False, covariance=False, loss=False, path=True))
    qv, area = out.path[:, 1], out.path[:, 0]
    mean_qv, sd_qv = n * d * 2 * TEMP * dt, math.sqrt(2 * n * d) * 2 * TEMP * dt
    assert abs(qv.mean() - mean_qv) < 4 * sd_qv / math.sqrt(m)
    assert abs(qv.mean() - mean_qv / 2) > 20 * sd_qv / math.sqrt(m)
    assert abs(area.mean()) < 4 * area.std() / math.sqrt(m)
    steps, _, recorded = out.observables["path_quadratic_variation"]
    assert list(steps) == [0, 25, 50] and recorded[0] == 0.0 and recorded[-1] == pytest.approx(qv.mean(), rel=1e-12)


def test_ou_area_rate_with_non_commuting_noise_is_the_discrete_formula():
    """Euler Langevin on f = x^T H x / 2 with a constant D that does not commute with H, started from its
    exact stationary law N(0, S), S = P S P + 2 T dt D (P = I - dt H): each step sweeps the mean area
    (dt / 2)((H S)_01 - (H S)_10) exactly. Detailed balance (zero area) is rejected."""
    h, dt, n, m = np.array([1.0, 3.0]), 0.05, 40, 40_000
    Dm = np.array([[1.0, 0.6], [0.6, 0.5]])
    S = theory.lyapunov_discrete(np.diag(h), 2 * TEMP * Dm / dt, dt, 1)
    x0 = np.random.default_rng(13).multivariate_normal(np.zeros(2), S, size=m)
    out = _run(L.Quadratic(h), D.Langevin(lr=dt, temperature=TEMP, diffusion=Dm), x0, n, seed=13,
               recorder=Recorder(every=n, mean=False, covariance=False, loss=False, path=True))
    rate = out.path[:, 0] / (n * dt)
    HS = np.diag(h) @ S
    expected = 0.5 * (HS[0, 1] - HS[1, 0])
    se = rate.std() / math.sqrt(m)
    assert abs(rate.mean() - expected) < 4 * se, (rate.mean(), expected, se)
    assert abs(rate.mean()) > 10 * se


def test_ring_particles_area_rate_matches_the_fokker_planck_current():
    """Drift -(I + Q) grad Phi, Phi = (|x|^2 - 1)^2 / 4, Q = q [[0, 1], [-1, 0]]: the particles' stationary area
    rate (stochastic Heun, after a burn-in) equals the PDE's circulation (1/2) int (x J_y - y J_x) within
    4 standard errors, and both are near q T (virial identity); with the rotation left out it vanishes."""
    from sgdsim.fokker_planck import equation as fokker_planck
    q, T, dt, m = 0.8, 0.3, 0.01, 20_000
    ring = L.Ring(2)
    dyn = D.Langevin(lr=dt, temperature=T, scheme="heun", nongradient=q * np.array([[0.0, 1.0], [-1.0, 0.0]]))
    angle = np.random.default_rng(14).uniform(0, 2 * np.pi, m)
    burn = _run(ring, dyn, np.column_stack([np.cos(angle), np.sin(angle)]), 300, seed=14)
    measure = 500
    out = _run(ring, dyn, burn.positions, measure, seed=15,
               recorder=Recorder(every=measure, mean=False, covariance=False, loss=False, path=True))
    rate = out.path[:, 0] / (measure * dt)
    se = rate.std() / math.sqrt(m)
    fp = fokker_planck.sme_problem(ring, dyn, lo=-2.0, hi=2.0, cells=120)
    pde = fp.circulation(fp.steady_state())
    assert abs(rate.mean() - pde) < 4 * se, (rate.mean(), pde, se)
    assert abs(pde / (q * T) - 1) < 0.02
    plain = _run(ring, D.Langevin(lr=dt, temperature=T, scheme="heun"), burn.positions, measure, seed=15,
                 recorder=Recorder(every=measure, mean=False, covariance=False, loss=False, path=True))
    assert abs(plain.path[:, 0].mean() / (measure * dt)) < 4 * se < abs(pde) / 10


@pytest.mark.parametrize("mode", ["loss-below", "gradient-below"])
def test_level_set_targets_hit_at_the_analytic_step(mode):
    """Gradient descent on f = sum h_k x_k^2 / 2: x_n = (1 - lr h)^n x_0, so the first step with f(x_n) <= c
    (or |grad f(x_n)| <= c) is computed here in closed form for every start; particles already inside hit at 0."""
    h, lr = np.array([0.5, 2.0]), 0.1
    x0 = np.random.default_rng(16).normal(scale=2.0, size=(200, 2))
    level = 0.05
    target = Target.loss_below(level) if mode == "loss-below" else Target.gradient_below(level)
    out = _run(OU, D.GradientDescent(lr=lr), x0, 400, seed=0,
               recorder=Recorder(every=400, mean=False, covariance=False, loss=False, target=target))
    n = np.arange(401)[:, None, None]
    xs = (1 - lr * h) ** n * x0[None]
    measure = 0.5 * np.sum(h * xs ** 2, axis=-1) if mode == "loss-below" else np.linalg.norm(h * xs, axis=-1)
    expected = np.argmax(measure <= level, axis=0)
    assert np.all(measure[-1] <= level) and np.any(expected > 50)
    np.testing.assert_array_equal(out.first_hit, expected)
