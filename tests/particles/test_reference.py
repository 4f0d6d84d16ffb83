"""The compiled particle kernel equals its plain NumPy twin (`solvers.particles.reference`) on small inputs, in every
mode: same random draws, same updates, same events, to round-off."""
from __future__ import annotations

import numpy as np
import pytest

from sgdsim.particles import landscapes as L
from sgdsim.particles.dynamics import SGD, SME, GradientDescent, Langevin, PerturbedGD, Schedule
from sgdsim.solvers import ParticleSolver, Target
from sgdsim.solvers.particles import reference

RNG = np.random.default_rng(7)
A, B = RNG.normal(size=(12, 3)), RNG.normal(size=12)

CASES = {
    "sgd-tilt-replace-momentum-step": (L.finite_sum_double_well(16, 2.0, dim=2),
                                       SGD(lr=0.05, batch=3, momentum=0.5, schedule=Schedule("step", 0.5, 7))),
    "sgd-tilt-distinct-cosine": (L.finite_sum_double_well(16, 2.0, dim=2),
                                 SGD(lr=0.05, batch=5, replace=False, schedule=Schedule("cosine", every=20))),
    "sgd-least-squares-distinct": (L.Regression(A, B), SGD(lr=0.05, batch=4, replace=False)),
    "langevin-euler": (L.Quadratic([0.5, 2.0, 8.0]), Langevin(lr=0.02, temperature=0.3)),
    "langevin-heun": (L.Quadratic([0.5, 2.0, 8.0]), Langevin(lr=0.02, temperature=0.3, scheme="heun")),
    "langevin-gradient-noise": (L.Regression(A, B), Langevin(lr=0.02, batch=2, diffusion="gradient")),
    "langevin-constant-semidefinite": (L.DoubleWell(2), Langevin(lr=0.01, temperature=0.5,
                                                                 diffusion=np.array([[1.0, 1.0], [1.0, 1.0]]))),
    "pgd-saddle": (L.StrictSaddle(4), PerturbedGD(lr=0.1, radius=0.05, gradient_threshold=0.3, interval=5)),
    "gd-momentum-diverging": (L.Quadratic([1.0, 30.0]), GradientDescent(lr=0.1, momentum=0.3)),
    "sme2-least-squares-multiplicative": (L.Regression(A, B), SME(lr=0.1, batch=2, replace=False, substeps=2)),
    "sme2-tilted-heun": (L.finite_sum_double_well(16, 2.0, dim=2), SME(lr=0.05, batch=2, substeps=3, scheme="heun")),
}


@pytest.mark.parametrize("name", CASES)
def test_kernel_equals_numpy_twin(name):
    landscape, dynamics = CASES[name]
    d = landscape.dim
    x0 = np.random.default_rng(1).normal(scale=0.5, size=(5, d))
    target = Target((-0.4,) * d, (0.4,) * d, "exit")
    solver = ParticleSolver(landscape=landscape.code, theta=landscape.theta, data=landscape.data, x0=x0,
                            seed=11, target=target, limit=1e3, **dynamics.solver_arguments(landscape))
    solver.advance(4)  # the twin starts from a mid-run state: velocities, streams and kicks carried over
    expected = reference.advance(solver, 25, grad=lambda x: landscape.grad(x[None])[0],
                                 example_grad=lambda x, i: landscape.example_grads(x)[i],
                                 hessian_vector=lambda x, v: landscape.hessian_vector(x[None], v[None])[0])
    solver.advance(25)
    np.testing.assert_allclose(solver.x, expected["x"], rtol=1e-10, atol=1e-12)
    for key in ("states", "first_hit", "diverged_at", "last_kick"):
        np.testing.assert_array_equal(getattr(solver, key), expected[key], err_msg=key)
    if solver.momentum:
        np.testing.assert_allclose(solver.velocity, expected["velocity"], rtol=1e-10, atol=1e-12)


def test_cases_exercise_what_they_claim():
    """Guard against a twin test that passes vacuously: events, kicks and divergence actually happen."""
    outcomes = {}
    for name in ("pgd-saddle", "gd-momentum-diverging", "langevin-euler", "sme2-tilted-heun"):
        landscape, dynamics = CASES[name]
        x0 = np.random.default_rng(1).normal(scale=0.5, size=(5, landscape.dim))
        solver = ParticleSolver(landscape=landscape.code, theta=landscape.theta, data=landscape.data, x0=x0,
                                seed=11, target=Target((-0.4,) * landscape.dim, (0.4,) * landscape.dim, "exit"),
                                limit=1e3, **dynamics.solver_arguments(landscape))
        solver.advance(29)
        outcomes[name] = solver
    assert (outcomes["pgd-saddle"].last_kick >= 0).any()
    assert (outcomes["gd-momentum-diverging"].diverged_at > 0).all()
    assert (outcomes["langevin-euler"].first_hit > 0).any()
    sme = outcomes["sme2-tilted-heun"]   # the modified drift is on: the order-1 SME would move elsewhere
    assert sme.drift_hessian == pytest.approx(0.025)
    landscape, dynamics = CASES["sme2-tilted-heun"]
    x0 = np.random.default_rng(1).normal(scale=0.5, size=(5, landscape.dim))
    order1 = ParticleSolver(landscape=landscape.code, theta=landscape.theta, data=landscape.data, x0=x0, seed=11,
                            limit=1e3, **SME(lr=0.05, batch=2, substeps=3, scheme="heun", order=1).solver_arguments(landscape))
    order1.advance(29)
    assert np.abs(order1.x - sme.x).max() > 1e-4


def test_reference_stream_matches_compiled_normals():
    from sgdsim.solvers.rng import normals, seed_states
    states = seed_states(3, 2)
    twin = [reference.Stream(s) for s in states]
    drawn = normals(states.copy(), 4000)  # 8000 draws reach the ziggurat's wedge and tail branches
    np.testing.assert_array_equal(drawn, [[t.normal() for _ in range(4000)] for t in twin])


RING_Q = np.array([[0.0, 0.8], [-0.8, 0.0]])
EXTRAS = {   # the kernel's optional parts: non-gradient drift, path observables, level-set targets
    "ring-rotation-heun-loss-target": (L.Ring(2), Langevin(lr=0.02, temperature=0.3, scheme="heun", nongradient=RING_Q),
                                       Target.loss_below(0.01)),
    "ring-rotation-euler-gradient-target": (L.Ring(2), Langevin(lr=0.02, temperature=0.3, nongradient=RING_Q),
                                            Target.gradient_below(0.2)),
    "sgd-least-squares-path-gradient-target": (L.Regression(A, B), SGD(lr=0.05, batch=4),
                                               Target.gradient_below(1.0)),
    "sme2-rotation-loss-target": (L.finite_sum_double_well(16, 2.0, dim=2),
                                  SME(lr=0.05, batch=2, substeps=2), Target.loss_below(0.3)),
}


@pytest.mark.parametrize("name", EXTRAS)
def test_kernel_equals_twin_with_path_observables_rotation_and_level_targets(name):
    landscape, dynamics, target = EXTRAS[name]
    x0 = np.random.default_rng(2).normal(scale=0.7, size=(6, landscape.dim))
    solver = ParticleSolver(landscape=landscape.code, theta=landscape.theta, data=landscape.data, x0=x0, seed=5,
                            target=target, limit=1e3, path=True, **dynamics.solver_arguments(landscape))
    if name.startswith("sme2"):   # a rotation on top of the modified drift
        solver.drift_matrix = RING_Q.copy()
    solver.advance(3)
    expected = reference.advance(solver, 30, grad=lambda x: landscape.grad(x[None])[0],
                                 example_grad=lambda x, i: landscape.example_grads(x)[i],
                                 hessian_vector=lambda x, v: landscape.hessian_vector(x[None], v[None])[0],
                                 value=lambda x: landscape.value(x[None])[0])
    solver.advance(30)
    np.testing.assert_allclose(solver.x, expected["x"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(solver.path, expected["path"], rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(solver.first_hit, expected["first_hit"])
    assert np.any(solver.first_hit > 3) and np.all(solver.path[:, 1] > 0)   # events and paths happened
