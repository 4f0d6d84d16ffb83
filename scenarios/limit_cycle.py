"""limit-cycle: steady probability currents when the noise does not match the curvature (Chaudhari & Soatto
2018, "Stochastic gradient descent performs variational inference, converges to limit cycles for deep
networks", sec. 5; the nonlinear example has the structure of their Example 19 — a gradient part that fixes
the steady state plus a divergence-free rotation — with a ring potential of our choosing).

1. SGD on a 2-D quadratic f = (h1 x^2 + h2 y^2)/2 with tilted examples f_i = f + a_i . x whose covariance C
   (1/N sum a_i a_i^T, exactly `noise_covariance` below) is not diagonal: the SDE limit dx = -H x dt +
   sqrt(lr C / B) dW is an Ornstein–Uhlenbeck process with T D = lr C / (2B) not commuting with H. Its steady
   state has the Lyapunov covariance H S + S H = (lr/B) C (Mandt, Hoffman & Blei 2017) but is not in
   detailed balance: the current J = -H x p - T D grad p circulates, and the mean Stratonovich area rate
   (1/2) E[x o dy - y o dx] / dt = (1/2) int (x J_y - y J_x) equals ((H S)_xy - (H S)_yx) / 2, non-zero
   exactly when [H, C] != 0. For SGD itself (discrete steps) the same formula holds with S the discrete
   Lyapunov covariance S = (I - lr H) S (I - lr H) + lr^2 C / B (the midpoint rule makes the discrete area
   x_n y_{n+1} - y_n x_{n+1} exact).
2. A nonlinear limit cycle: the drift b = -(I + Q) grad Phi with Phi = (|x|^2 - 1)^2 / 4 (a ring valley)
   and Q = q [[0, 1], [-1, 0]] antisymmetric. div(Q grad Phi e^{-Phi/T}) = 0, so the steady state is still
   exp(-Phi/T)/Z while the current J = -Q grad Phi p is divergence-free and runs around the ring; by the
   virial identity E[x . grad Phi] = 2T its area rate is exactly q T. This is the mechanism of Chaudhari &
   Soatto: the force splits into a gradient part that sets the steady state and a divergence-free part
   that circulates. Particles: Euler–Maruyama in NumPy (the engine's kernels only take gradients).

The PDE (`sgdsim.fokker_planck`) gives steady states in one sparse solve; covariance, current field and
circulation are computed on the grid.

Convention: every "area rate" here (and `FokkerPlanck.circulation`) is the Stratonovich area swept per unit
time, (1/2) <x1 dx2 - x2 dx1> / dt: HALF the rate <x1 dx2 - x2 dx1> / dt (multiply by 2 for that one). The
summary says so next to the numbers and the run file stores it as attrs `convention` and `conversion`.

Claims (`claims`, a pure function of the measurements and the theory):
- ou_covariance: SGD's stationary covariance equals the discrete Lyapunov solution, |z| <= 4 per entry.
- ou_covariance_pde: the PDE's steady covariance equals the continuous Lyapunov solution within 2x its
  second-order Richardson error estimate max |S_2h - S_h| / 3 over the entries (from a solve on half the
  cells; a ratio of 1 for order 2, 3 for order 1).
- ou_area_rate: SGD's mean area rate equals ((H S)_xy - (H S)_yx) / 2 with the discrete S, |z| <= 4.
- ou_detailed_balance: the area rate is zero (detailed balance), |z| <= 4: expected to FAIL when [H, C] != 0.
  Stated only when the run resolves the predicted rate: with g = |rate| / SE, P(|N(g, 1)| <= 4) <= 1e-3
  (commuting noise, angle 0 or ratio 1, predicts no current, and the claim is then not stated).
- ring_area_rate: the ring particles' area rate equals q T (the steady current of Chaudhari & Soatto's
  mechanism), |z| <= 4.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.special

from sgdsim import fokker_planck
from sgdsim.particles import theory
from sgdsim.compare.claims import Claim
from sgdsim.particles.dynamics import SGD
from sgdsim.particles.landscapes import Quadratic, Ring, Tilted
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, positive
from sgdsim.solvers import ParticleSolver

AREA_PAIRS = 20      # stationary (x_n, x_{n+1}) pairs per particle for the area rate
PDE_ORDER = 2        # Scharfetter–Gummel finite volumes: second order in the spacing
AREA_CONVENTION = {"convention": "(1/2) <x1 dx2 - x2 dx1> / dt (Stratonovich area swept per unit time)",
                   "conversion": "<x1 dx2 - x2 dx1> / dt = 2 x this value"}


def noise_covariance(scale: float, angle: float, ratio: float) -> np.ndarray:
    """C = scale^2 R diag(1, ratio^2) R^T with R the rotation by `angle` (radians)."""
    c, s = math.cos(angle), math.sin(angle)
    R = np.array([[c, -s], [s, c]])
    return scale ** 2 * R @ np.diag([1.0, ratio ** 2]) @ R.T


def tilts(C: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n tilts with mean 0 and (1/n) sum a a^T = C exactly."""
    z = np.random.default_rng(np.random.SeedSequence(seed)).standard_normal((n, 2))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(z.T @ z / n)).T
    return z @ np.linalg.cholesky(C).T


def sgd_ou(p: dict, seed: int, H: np.ndarray, C: np.ndarray):
    """SGD particles: burn in, then covariance and the area rate of AREA_PAIRS stationary step pairs."""
    landscape = Tilted(Quadratic(np.diag(H)), tilts(C, p["examples"], seed))
    dyn = SGD(lr=p["lr"], batch=p["batch"])
    m = p["particles"]
    solver = ParticleSolver(landscape=landscape.code, theta=landscape.theta, data=landscape.data,
                            x0=np.zeros((m, 2)), seed=seed, **dyn.solver_arguments(landscape))
    relax = int(math.ceil(p["burn_in"] / (p["lr"] * min(np.diag(H)))))
    solver.advance(relax)
    area = np.zeros(m)
    gap = max(1, relax // AREA_PAIRS)
    for _ in range(AREA_PAIRS):
        x0 = solver.x.copy()
        solver.advance(1)
        area += 0.5 * (x0[:, 0] * solver.x[:, 1] - x0[:, 1] * solver.x[:, 0]) / p["lr"]
        solver.advance(gap)
    area /= AREA_PAIRS
    x = solver.x
    cov = np.cov(x, rowvar=False, bias=True)
    prods = np.stack([x[:, 0] * x[:, 0], x[:, 0] * x[:, 1], x[:, 1] * x[:, 1]], axis=1)
    se = prods.std(axis=0) / math.sqrt(m)
    cov_se = np.array([[se[0], se[1]], [se[1], se[2]]])
    if not np.all(np.isfinite(x)):
        return None
    return dict(cov=cov, cov_se=cov_se, area=float(area.mean()), area_se=float(area.std() / math.sqrt(m)),
                steps=solver.step)


def ring_drift(q: float):
    """-(I + Q) grad f of the ring f = (|x|^2 - 1)^2 / 4, Q = q [[0, 1], [-1, 0]] (written out, no BLAS)."""
    ring = Ring(2)

    def drift(x):
        g = ring.grad(x)
        return -(g + q * np.stack([g[:, 1], -g[:, 0]], axis=1))
    return drift


def ring_particles(p: dict, seed: int):
    """Euler–Maruyama for the ring drift; the area rate is averaged over every step of `ring_measure` time
    units after a burn-in of 3 (NumPy, default_rng); its SE comes from the per-particle time averages."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 19]))
    m, dt, T = p["ring_particles"], p["ring_dt"], p["ring_temperature"]
    drift = ring_drift(p["ring_q"])
    x = np.column_stack([np.ones(m), np.zeros(m)])
    noise = math.sqrt(2 * T * dt)
    area = np.zeros(m)
    burn, measure = int(math.ceil(3.0 / dt)), int(math.ceil(p["ring_measure"] / dt))
    for n in range(burn + measure):
        new = x + dt * drift(x) + noise * rng.standard_normal(x.shape)
        if n >= burn:
            area += 0.5 * (x[:, 0] * new[:, 1] - x[:, 1] * new[:, 0]) / dt
        x = new
    if not np.all(np.isfinite(x)):
        return math.nan, math.nan
    area /= measure
    return float(area.mean()), float(area.std() / math.sqrt(m))


def area_rate(H: np.ndarray, S: np.ndarray) -> float:
    """The mean area rate (1/2) <x dy - y dx> / dt of the OU steady state: ((H S)_xy - (H S)_yx) / 2."""
    return 0.5 * ((H @ S)[0, 1] - (H @ S)[1, 0])


def current_resolved(rate: float, stderr: float) -> bool:
    """Whether a measurement with this standard error resolves the predicted area rate from zero: with
    g = |rate| / SE, the chance P(|N(g, 1)| <= 4) that its z-score against zero stays within 4 is <= 1e-3."""
    if not (math.isfinite(stderr) and stderr > 0):
        return False
    g = abs(rate) / stderr
    return bool(scipy.special.ndtr(4.0 - g) - scipy.special.ndtr(-4.0 - g) <= 1e-3)


def claims(measured: dict, theory: dict) -> list[Claim]:
    """The scenario's claims (see the module doc) from measured {cov, cov_stderr, area, area_stderr, cov_pde,
    cov_pde_coarse (on half the cells), ring_area, ring_area_stderr} and theory {S_continuous, S_discrete, H,
    ring_area (q T)}."""
    H, S_disc = theory["H"], theory["S_discrete"]
    richardson = np.max(np.abs(measured["cov_pde_coarse"] - measured["cov_pde"])) / (2 ** PDE_ORDER - 1)
    out = [
        Claim(name="ou_covariance", statement="SGD's stationary covariance equals the discrete Lyapunov solution",
              measured=measured["cov"], predicted=S_disc, stderr=measured["cov_stderr"], test="z", tolerance=4.0,
              source="Mandt, Hoffman & Blei 2017, eq. 13; Liu, Ziyin & Ueda 2021 (discrete S)"),
        Claim(name="ou_covariance_pde", statement="the PDE's steady covariance equals the continuous Lyapunov "
              "solution within 2x its second-order Richardson error estimate max|S_2h - S_h|/3 (given as the SE)",
              measured=measured["cov_pde"], predicted=theory["S_continuous"], stderr=richardson, test="z",
              tolerance=2.0, source="Mandt, Hoffman & Blei 2017, eq. 13; Scharfetter–Gummel finite volumes"),
        Claim(name="ou_area_rate", statement="SGD's mean area rate (1/2)<x dy - y dx>/dt equals "
              "((HS)_xy - (HS)_yx)/2 (discrete S)", measured=measured["area"], predicted=area_rate(H, S_disc),
              stderr=measured["area_stderr"], test="z", tolerance=4.0,
              source="Chaudhari & Soatto 2018, sec. 5 (steady current of a non-commuting OU process)"),
        Claim(name="ring_area_rate", statement="the ring particles' area rate equals q T (the divergence-free "
              "current around the ring)", measured=measured["ring_area"], predicted=theory["ring_area"],
              stderr=measured["ring_area_stderr"], test="z", tolerance=4.0,
              source="Chaudhari & Soatto 2018, Example 19 structure; virial identity E[x . grad Phi] = 2T"),
    ]
    if current_resolved(area_rate(H, S_disc), measured["area_stderr"]):
        out.append(Claim(name="ou_detailed_balance", statement="the area rate is zero as in detailed balance "
                         "(expected to fail: [H, C] != 0 drives a steady current)", measured=measured["area"],
                         predicted=0.0, stderr=measured["area_stderr"], test="z", tolerance=4.0, expected="fails",
                         source="Chaudhari & Soatto 2018, sec. 5"))
    return out


def run(p: dict, seed: int, writer, progress: bool):
    H = np.diag([p["h1"], p["h2"]])
    C = noise_covariance(p["noise"], math.radians(p["angle"]), p["ratio"])
    lr, B = p["lr"], p["batch"]
    T = lr / (2 * B)
    S_cont = theory.lyapunov_continuous(H, C, lr, B)
    S_disc = theory.lyapunov_discrete(H, C, lr, B)

    # --- OU: PDE steady state on a box of +- 5 standard deviations
    half = 5 * np.sqrt(np.diag(S_cont))
    ou = fokker_planck.problem(loss=Quadratic(np.diag(H)), temperature=T, lo=-half, hi=half, cells=p["cells"],
                               diffusion=C)
    p_ou = ou.steady_state()
    cov_pde, area_pde = ou.covariance(p_ou), ou.circulation(p_ou)
    coarse = fokker_planck.problem(loss=Quadratic(np.diag(H)), temperature=T, lo=-half, hi=half,
                                   cells=p["cells"] // 2, diffusion=C)
    cov_pde_coarse = coarse.covariance(coarse.steady_state())
    coords = ou.coords()
    writer.element("ou_pde_density", ou.shape, coords=coords).append(0, 0.0, p_ou)
    writer.element("ou_current", (2, *ou.shape), coords={"component": np.arange(2), **coords},
                   attrs={"definition": "J = -H x p - T D grad p at the cell centres"}).append(0, 0.0, ou.current(p_ou))
    for name, value, eq in (("ou_covariance_lyapunov", S_cont, "H S + S H = (lr/B) C"),
                            ("ou_covariance_discrete", S_disc, "S = (I - lr H) S (I - lr H) + lr^2 C / B")):
        writer.theory(name, value, source="Mandt, Hoffman & Blei 2017; Liu, Ziyin & Ueda 2021", equation=eq)
    writer.theory("ou_area_rate", np.array([area_rate(H, S_cont), area_rate(H, S_disc)]), coords={"lyapunov": np.array([0, 1])},
                  source="(1/2) int (x J_y - y J_x) = ((H S)_xy - (H S)_yx) / 2, continuous and discrete S",
                  equation="rate = ((H S)_xy - (H S)_yx) / 2", attrs=AREA_CONVENTION)

    # --- OU: SGD particles
    sgd = sgd_ou(p, seed, H, C)
    if sgd is None:
        return "diverged", "the SGD cloud became non-finite; lower the learning rate", ["limit-cycle: diverged"]
    writer.element("ou_covariance_particles", (2, 2)).append(sgd["steps"], sgd["steps"] * lr, sgd["cov"])
    writer.element("ou_covariance_stderr", (2, 2)).append(sgd["steps"], sgd["steps"] * lr, sgd["cov_se"])
    writer.element("ou_area_rate_particles", (2,), coords={"estimate": np.arange(2)},
                   attrs={"columns": "mean, standard error", **AREA_CONVENTION}).append(sgd["steps"], sgd["steps"] * lr,
                                                                      [sgd["area"], sgd["area_se"]])

    # --- ring: PDE steady state and particles
    q, Tr = p["ring_q"], p["ring_temperature"]
    ring = fokker_planck.problem(drift=ring_drift(q), temperature=Tr, lo=[-2.0, -2.0], hi=[2.0, 2.0], cells=p["cells"])
    p_ring = ring.steady_state()
    gibbs = fokker_planck.problem(loss=Ring(2), temperature=Tr, lo=[-2.0, -2.0], hi=[2.0, 2.0], cells=p["cells"]).gibbs()
    ring_area_pde = ring.circulation(p_ring)
    ring_area, ring_area_se = ring_particles(p, seed)
    if not math.isfinite(ring_area):
        return "diverged", "the ring particles became non-finite; lower ring_dt", ["limit-cycle: diverged"]
    writer.element("ring_pde_density", ring.shape, coords=ring.coords()).append(0, 0.0, p_ring)
    writer.element("ring_current", (2, *ring.shape), coords={"component": np.arange(2), **ring.coords()}).append(
        0, 0.0, ring.current(p_ring))
    writer.element("ring_area_rate_particles", (2,), coords={"estimate": np.arange(2)},
                   attrs={"columns": "mean, standard error", **AREA_CONVENTION}).append(0, 0.0, [ring_area, ring_area_se])
    writer.theory("ring_gibbs", gibbs, coords=ring.coords(), source="div(Q grad Phi e^{-Phi/T}) = 0",
                  equation="p = exp(-Phi/T)/Z, Phi = (|x|^2 - 1)^2 / 4")
    writer.theory("ring_area_rate", np.float64(q * Tr), source="virial identity E[x . grad Phi] = 2T",
                  equation="rate = q T", attrs=AREA_CONVENTION)

    cov_rel = float(np.abs(cov_pde - S_cont).max() / np.abs(S_cont).max())
    cov_z = float(np.max(np.abs(sgd["cov"] - S_disc) / sgd["cov_se"]))
    metrics = dict(
        temperature=T, ou_commutator_norm=float(np.abs(H @ C - C @ H).max()),
        ou_covariance_pde_rel_error=cov_rel, ou_covariance_particles_zscore_max=cov_z,
        ou_area_rate_continuous=area_rate(H, S_cont), ou_area_rate_discrete=area_rate(H, S_disc), ou_area_rate_pde=area_pde,
        ou_area_rate_measured=sgd["area"], ou_area_rate_stderr=sgd["area_se"],
        ou_area_rate_particles_zscore=abs(sgd["area"] - area_rate(H, S_disc)) / sgd["area_se"],
        ou_area_rate_pde_rel_error=abs(area_pde / area_rate(H, S_cont) - 1),
        ring_area_rate_theory=q * Tr, ring_area_rate_pde=ring_area_pde, ring_area_rate_measured=ring_area,
        ring_area_rate_stderr=ring_area_se, ring_area_rate_pde_rel_error=abs(ring_area_pde / (q * Tr) - 1),
        ring_area_rate_particles_zscore=abs(ring_area - q * Tr) / ring_area_se,
        ring_l1_pde_gibbs=ring.integrate(np.abs(p_ring - gibbs)))
    metrics["area_rate_convention"] = AREA_CONVENTION["convention"]
    writer.comparison(**metrics)
    writer.claims(*claims(
        dict(cov=sgd["cov"], cov_stderr=sgd["cov_se"], area=sgd["area"], area_stderr=sgd["area_se"],
             cov_pde=cov_pde, cov_pde_coarse=cov_pde_coarse, ring_area=ring_area, ring_area_stderr=ring_area_se),
        dict(S_continuous=S_cont, S_discrete=S_disc, H=H, ring_area=q * Tr)))
    lines = [f"limit-cycle: SGD lr={lr} B={B} on a 2-D quadratic h=({p['h1']}, {p['h2']}) with tilt covariance "
             f"rotated {p['angle']} deg ({p['particles']} particles, {sgd['steps']} steps); PDE {p['cells']}^2 cells",
             f"  |[H, C]| = {metrics['ou_commutator_norm']:.3g}:  steady covariance PDE vs Lyapunov max rel. error "
             f"{cov_rel:.2e};  SGD vs discrete Lyapunov max |z| = {cov_z:.2f}",
             "  area rates are (1/2)<x dy - y dx>/dt (Stratonovich area per unit time; <x dy - y dx>/dt is twice "
             "each number):",
             f"  area rate: SGD {sgd['area']:.5f} +- {sgd['area_se']:.5f}  discrete theory {area_rate(H, S_disc):.5f};  "
             f"PDE {area_pde:.5f}  continuous theory {area_rate(H, S_cont):.5f}",
             f"  ring (q={q}, T={Tr}): steady state L1(PDE, exp(-Phi/T)/Z) = {metrics['ring_l1_pde_gibbs']:.2e};  "
             f"area rate particles {ring_area:.4f} +- {ring_area_se:.4f}, PDE {ring_area_pde:.4f}, theory q T = {q * Tr:.4f}"]
    return "complete", "", lines


def _stream(ax, run, density, current, title, equal=True):
    d, J = run.element(density), run.element(current)
    x, y = d.coords["x"], d.coords["y"]
    ax.contourf(x, y, d.value[0].T, levels=20, cmap="Blues")
    speed = np.hypot(J.value[0][0], J.value[0][1]).T
    ax.streamplot(x, y, J.value[0][0].T, J.value[0][1].T, color="C3", density=0.6,
                  linewidth=0.3 + 2.2 * speed / speed.max(), arrowsize=0.9)
    ax.set(xlabel="x", ylabel="y", title=title)
    if equal:
        ax.set_aspect("equal")


def plot(run, path):
    c = run.comparison
    fig, axes = figure(2, 2, width=5.2, height=4.6,
                       title=f"limit cycles: SGD lr={run.params['lr']} B={run.params['batch']}, h=({run.params['h1']}, "
                             f"{run.params['h2']}), tilt covariance rotated {run.params['angle']} deg; ring q="
                             f"{run.params['ring_q']}, T={run.params['ring_temperature']}; seed {run.seed}")
    _stream(axes[0], run, "ou_pde_density", "ou_current", "OU: steady density (blue), current J (red, width ~ |J|)",
            equal=False)
    S_cont = run.theory("ou_covariance_lyapunov").value
    S_disc = run.theory("ou_covariance_discrete").value
    cov_p = run.element("ou_covariance_particles").value[0]
    angle = np.linspace(0, 2 * np.pi, 200)
    circle = np.stack([np.cos(angle), np.sin(angle)])
    density = run.element("ou_pde_density")
    x, y = density.coords["x"], density.coords["y"]
    X, Y = np.meshgrid(x, y, indexing="ij")
    w = density.value[0] * (x[1] - x[0]) * (y[1] - y[0])
    cov_pde = np.array([[np.sum(w * X * X), np.sum(w * X * Y)], [np.sum(w * X * Y), np.sum(w * Y * Y)]])
    for S, style, label in ((S_cont, THEORY, "Lyapunov (continuous)"),
                            (S_disc, dict(color="grey", ls=":", lw=1.5), "Lyapunov (discrete, lr^2 term)"),
                            (cov_pde, dict(color="C1", lw=1.0), "PDE steady state"),
                            (cov_p, dict(color="C0", lw=1.0, marker=".", ms=2, markevery=10), "SGD particles")):
        e = 2 * np.linalg.cholesky(S) @ circle
        axes[1].plot(e[0], e[1], label=label, **style)
    axes[1].set(xlabel="x", ylabel="y", aspect="equal", title="steady covariance (2-sigma ellipses)")
    axes[1].legend(fontsize=8)
    _stream(axes[2], run, "ring_pde_density", "ring_current", "ring: density exp(-Phi/T)/Z and its current J")
    labels = ["OU: SGD\n/ discrete S", "OU: PDE\n/ continuous S", "ring: particles\n/ q T", "ring: PDE\n/ q T"]
    values = np.array([c["ou_area_rate_measured"], c["ou_area_rate_pde"], c["ring_area_rate_measured"],
                       c["ring_area_rate_pde"]])
    theory_values = np.array([c["ou_area_rate_discrete"], c["ou_area_rate_continuous"], c["ring_area_rate_theory"],
                              c["ring_area_rate_theory"]])
    errors = 2 * np.array([c["ou_area_rate_stderr"], 0, c["ring_area_rate_stderr"], 0]) / np.abs(theory_values)
    pos = np.arange(4)
    axes[3].errorbar(pos, values / theory_values, yerr=errors, fmt="o", color="C0", capsize=4, ms=6,
                     label="measured (+- 2 SE) or PDE")
    axes[3].axhline(1.0, label="theory", **THEORY)
    axes[3].set_xticks(pos, labels, fontsize=8)
    spread = max(0.05, 1.3 * float(np.max(np.abs(values / theory_values - 1) + errors)))
    axes[3].set(ylabel="area rate / its prediction", ylim=(1 - spread, 1 + spread),
                title=f"area rate (1/2)<x dy - y dx>/dt (half of <x dy - y dx>/dt); OU theory {c['ou_area_rate_continuous']:.2e}")
    axes[3].legend(fontsize=8)
    return save(fig, path)


SCENARIO = Scenario(
    name="limit-cycle",
    summary="steady currents of SGD when its noise does not commute with the Hessian; a nonlinear limit cycle",
    params=(
        Param("h1", float, 1.0, "curvature along x", positive),
        Param("h2", float, 4.0, "curvature along y", positive),
        Param("noise", float, 1.0, "scale of the tilt (gradient-noise) covariance", positive),
        Param("ratio", float, 0.25, "minor/major axis ratio of the noise covariance", positive),
        Param("angle", float, 30.0, "rotation of the noise covariance against the Hessian axes (degrees)"),
        Param("lr", float, 0.02, "learning rate", positive),
        Param("batch", int, 1, "minibatch size B", at_least(1)),
        Param("examples", int, 512, "number of tilted examples", at_least(3)),
        Param("particles", int, 40000, "SGD particles", at_least(2)),
        Param("burn_in", float, 6.0, "relaxation before measuring, in units of the slowest time 1/min(h)", positive),
        Param("cells", int, 96, "PDE cells per axis", at_least(8)),
        Param("ring_q", float, 1.0, "strength q of the antisymmetric part Q of the ring drift"),
        Param("ring_temperature", float, 0.1, "temperature of the ring example", positive),
        Param("ring_particles", int, 20000, "Euler–Maruyama particles of the ring example", at_least(2)),
        Param("ring_dt", float, 0.002, "time step of the ring particles", positive),
        Param("ring_measure", float, 10.0, "time over which the ring's area rate is averaged", positive),
    ),
    run=run,
    plot=plot,
    presets={"small": dict(particles=10000, cells=48, ring_particles=4000, ring_dt=0.005, ring_measure=6.0,
                           burn_in=4.0)},
    validate=lambda p: (f"batch {p['batch']} is larger than the data ({p['examples']} examples)"
                        if p["batch"] > p["examples"] else
                        (f"lr {p['lr']} is unstable for h = {max(p['h1'], p['h2'])} (needs lr h < 2)"
                         if p["lr"] * max(p["h1"], p["h2"]) >= 2 else None)),
)
