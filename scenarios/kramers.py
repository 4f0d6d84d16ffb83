"""kramers: escape from one well of f(x) = (x^2 - 1)^2 over a range of temperatures, measured on particles
and computed four ways.

Every particle starts at the left minimum x0 = -1; escape is the first step with x >= target (default +1,
the other minimum; the barrier is f(0) - f(-1) = 1). The particles are minibatch SGD on the finite-sum double
well f_i = f + a_i x (a_i ~ N(0, s^2) centred, s chosen per temperature so that T = lr var(a) / (2B)) or
Langevin dx = -f' dt + sqrt(2T) dW by Euler–Maruyama (`dynamics`); time is t = step x lr.

- particles: the mean first-passage time with its standard error. Each temperature runs to a horizon of
  `horizon` x the PDE's MFPT; the few particles still inside then (a fraction ~ exp(-horizon)) are counted by
  the exponential-tail estimator sum_i min(tau_i, t_max) / #escaped (exact for an exponential tail, which
  Kramers escape has after a short transient).
- PDE: the backward equation A^T tau = -1 of the Fokker–Planck generator on a grid whose centres contain x0
  and the target (`sgdsim.fokker_planck`, reflecting wall at -2.5).
- exact: the 1-D double integral tau = (1/T) int_{x0}^{b} dy int_{-2.5}^{y} dz exp((f(y) - f(z)) / T)
  (Gardiner 2009, eq. 5.5.20; `sgdsim.fokker_planck.escape`).
- Kramers (1940): tau ~ 2 pi / sqrt(f''(-1) |f''(0)|) exp(1/T) = (2 pi / sqrt(32)) e^{1/T}, the T -> 0
  asymptote. Laplace's method to the next order (both Gaussian integrals of eq. 5.5.20 carry a factor
  1 + 3T/16 for this quartic) gives tau = tau_Kramers (1 + 3T/8 + O(T^2)): at the scenario's temperatures
  Kramers underestimates by 10-25%, many standard errors. The Arrhenius plot log tau vs 1/T has slope ->
  the barrier.

Claims (`claims`, a pure function of the measurements and the theory):
- mfpt_particles: particles vs the exact integral, |z| <= 4 at every temperature (standard errors).
- mfpt_pde: the PDE vs the exact integral within its own error estimate: the scheme is second order, so
  Richardson's |tau_2h - tau_h| / (2^2 - 1) estimates the error of tau_h; |tau_h - exact| <= 2 x that
  estimate (a ratio of 1 for order 2; a first-order scheme would give 3).
- mfpt_pde_order: the convergence order fitted from spacings h and 2h, log(e_2h / e_h) / log 2, equals 2
  within 0.1 (the next term of the error expansion moves it by O(h^2): 0.01 at h = 0.05, measured).
- kramers: Kramers' formula within 4 SE of the particles, expected to FAIL (its O(T) correction, 3T/8 of
  tau, is many standard errors at these temperatures). Stated only when the run resolves it: the z-scores
  are about g_i + N(0, 1) with g_i = (exact - Kramers) / SE, so the claim is stated when the chance that
  every one stays below 4, prod_i Phi(4 - g_i), is at most 1e-3; the summary says when it is not stated.
- arrhenius_slope (two or more temperatures): the particles' weighted slope of log tau vs 1/T equals the
  exact integral's, |z| <= 4.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.special

from sgdsim.fokker_planck import escape as escape_theory, equation as fokker_planck
from sgdsim.compare.claims import Claim
from sgdsim.particles.dynamics import SGD, Langevin
from sgdsim.particles.landscapes import DoubleWell, Tilted
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, list_check, parse_list, positive
from sgdsim.particles.simulate import Recorder, simulate
from sgdsim.solvers import Target

WALL = -2.5          # reflecting wall of the PDE and of the exact integral (f(-2.5) = 27.6, far above T)
START = -1.0
BARRIER, CURV_MIN, CURV_TOP = 1.0, 8.0, -4.0
PDE_ORDER = 2        # Scharfetter–Gummel finite volumes: second order in the spacing


def loss(x: np.ndarray) -> np.ndarray:
    return (x[:, 0] ** 2 - 1.0) ** 2


def grid_spacing(target: float, spacing: float) -> float:
    """The spacing ~ `spacing` of the PDE grid: (target - START) / m for a whole number m of cells."""
    return (target - START) / max(1, round((target - START) / spacing))


def pde_mfpt(temperature: float, target: float, spacing: float) -> tuple[float, np.ndarray, np.ndarray]:
    """MFPT from START to x >= target on a grid whose cell centres include both (spacing `grid_spacing`);
    returns (tau(START), centres left of the target, tau there)."""
    h = grid_spacing(target, spacing)
    lo = START - h * (math.floor((START - WALL) / h) + 0.5)
    hi = target + h * (math.ceil((2.5 - target) / h) + 0.5)
    fp = fokker_planck.problem(loss=loss, temperature=temperature, lo=lo, hi=hi, cells=round((hi - lo) / h))
    x = fp.grid.centres(0)
    tau = fp.mfpt(x >= target - 1e-9 * h)
    start = int(np.argmin(np.abs(x - START)))
    left = x < target - 1e-9 * h
    return float(tau[start]), x[left], tau[left]


def particle_mfpt(p: dict, temperature: float, horizon_time: float, seed: int, writer, index: int,
                  progress: bool):
    """Escape steps of the particles (SGD or Langevin) up to the horizon; returns (mean, stderr, censored)."""
    lr = p["lr"]
    if p["dynamics"] == "sgd":
        z = np.random.default_rng(np.random.SeedSequence(seed)).standard_normal(p["examples"])
        z = (z - z.mean()) / z.std()              # var(a) = 2 B T / lr exactly, so T = lr var(a) / (2B)
        landscape = Tilted(DoubleWell(1), z * math.sqrt(2 * p["batch"] * temperature / lr))
        dynamics = SGD(lr=lr, batch=p["batch"])
    else:
        landscape, dynamics = DoubleWell(1), Langevin(lr=lr, temperature=temperature)
    n_steps = int(math.ceil(horizon_time / lr))
    recorder = Recorder(every=max(1, n_steps // 8), mean=False, covariance=False, loss=False,
                        target=Target((p["target"],), (math.inf,)), stop_when_all_hit=True)
    out = simulate(landscape, dynamics, np.full((p["particles"], 1), START), n_steps=n_steps,
                   seed=seed + 7919 * index, recorder=recorder, writer=writer, progress=progress,
                   prefix=f"T{index}_")
    hit = out.first_hit >= 0
    times = np.where(hit, out.first_hit, out.steps_done) * lr
    if not hit.any():
        return math.inf, math.inf, int((~hit).sum()), out
    mean = float(times.sum() / hit.sum())
    stderr = float(times[hit].std(ddof=1) / math.sqrt(hit.sum())) if hit.sum() > 1 else math.inf
    return mean, stderr, int((~hit).sum()), out


def kramers_resolved(exact: np.ndarray, kramers: np.ndarray, stderr: np.ndarray) -> bool:
    """Whether the particles resolve Kramers' error: with g_i = (exact - Kramers) / SE the chance that every
    z-score against Kramers stays below 4, prod_i Phi(4 - g_i), is at most 1e-3 (False for non-finite SEs)."""
    stderr = np.asarray(stderr, float)
    if not np.all(np.isfinite(stderr) & (stderr > 0)):
        return False
    gap = (np.asarray(exact) - np.asarray(kramers)) / stderr
    return bool(np.prod(scipy.special.ndtr(4.0 - gap)) <= 1e-3)


def claims(measured: dict, theory: dict) -> list[Claim]:
    """The scenario's claims (see the module doc) from measured {mfpt, stderr, slope, slope_stderr} (arrays
    over the temperatures; slope None for one temperature) and theory {exact, kramers, pde, pde_coarse (the
    PDE at about twice the spacing), spacing, spacing_coarse, slope (the exact integral's)}."""
    exact, pde, coarse = (np.asarray(theory[k], float) for k in ("exact", "pde", "pde_coarse"))
    richardson = np.abs(coarse - pde) / (2 ** PDE_ORDER - 1)
    ratio = theory["spacing_coarse"] / theory["spacing"]
    order = np.log(np.abs(coarse - exact) / np.abs(pde - exact)) / math.log(ratio)
    out = [
        Claim(name="mfpt_particles", statement="the particles' mean first-passage time equals the exact 1-D integral",
              measured=measured["mfpt"], predicted=exact, stderr=measured["stderr"], test="z", tolerance=4.0,
              source="Gardiner 2009, eq. 5.5.20"),
        Claim(name="mfpt_pde", statement="the PDE's MFPT equals the exact integral within 2x its second-order "
              "Richardson error estimate |tau_2h - tau_h|/3 (given as the standard error)",
              measured=pde, predicted=exact, stderr=richardson, test="z", tolerance=2.0,
              source="Gardiner 2009, eq. 5.5.20; Scharfetter–Gummel finite volumes (order 2)"),
        Claim(name="mfpt_pde_order", statement="the PDE's MFPT converges to the exact integral at order 2 in the "
              "spacing (fitted from h and 2h)", measured=order, predicted=float(PDE_ORDER), test="abs",
              tolerance=0.1, source="Scharfetter & Gummel 1969; Gardiner 2009, eq. 5.5.20"),
    ]
    if kramers_resolved(exact, theory["kramers"], measured["stderr"]):
        out.append(Claim(name="kramers", statement="Kramers' T -> 0 formula is within 4 SE of the particles "
                         "(expected to fail: its relative error 3T/8 + O(T^2) is many SE at these T)",
                         measured=measured["mfpt"], predicted=theory["kramers"], stderr=measured["stderr"], test="z",
                         tolerance=4.0, expected="fails",
                         source="Kramers 1940; Hanggi, Talkner & Borkovec 1990, eq. 4.56b"))
    if measured.get("slope") is not None and theory.get("slope") is not None:
        out.append(Claim(name="arrhenius_slope", statement="the particles' Arrhenius slope d log tau / d(1/T) equals "
                         "the exact integral's", measured=measured["slope"], predicted=theory["slope"],
                         stderr=measured["slope_stderr"], test="z", tolerance=4.0,
                         source="Gardiner 2009, eq. 5.5.20; Kramers 1940"))
    return out


def run(p: dict, seed: int, writer, progress: bool):
    temps = np.array(parse_list(p["temperatures"], float, 0))
    n = len(temps)
    measured, stderr, censored = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, dtype=np.int64)
    pde, pde_coarse, exact, kramers = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    fields = []
    status, message = "complete", ""
    well = DoubleWell(1)
    for i, T in enumerate(temps):
        pde[i], x_field, tau_field = pde_mfpt(T, p["target"], p["spacing"])
        pde_coarse[i] = pde_mfpt(T, p["target"], 2 * p["spacing"])[0]
        fields.append(np.interp(np.linspace(WALL, p["target"], 200), x_field, tau_field))
        exact[i] = escape_theory.mfpt_exact_1d(lambda x: float(well.value([[x]])[0]), START, p["target"], T, wall=WALL)
        kramers[i] = escape_theory.kramers_time(BARRIER, CURV_MIN, CURV_TOP, T)
        measured[i], stderr[i], censored[i], out = particle_mfpt(p, T, p["horizon"] * pde[i], seed, writer, i,
                                                                 progress)
        if out.status != "complete":   # interrupted or diverged: a cloud cut short measures no escape time
            status, message = out.status, f"T = {T:g}: {out.message}"
            measured[i], stderr[i], censored[i] = np.nan, np.nan, 0
            break
    coords = {"temperature": temps}
    for name, value in (("mfpt_measured", measured), ("mfpt_stderr", stderr), ("censored", censored)):
        writer.element(name, (n,), coords=coords, dtype=float).append(0, 0.0, value.astype(float))
    if status != "complete":
        return status, message, [f"kramers: {status} at {message}; the particles' records up to then and the "
                                 f"escape times of the {i} temperature(s) finished are in the file (NaN for the "
                                 f"others); no theory, no claims"]
    writer.theory("mfpt_pde", pde, coords=coords, source="backward equation A^T tau = -1 of the Fokker–Planck "
                  "generator (Scharfetter–Gummel finite volumes)", equation="A^T tau = -1 off the target, tau = 0 on it",
                  attrs={"spacing": p["spacing"]})
    writer.theory("mfpt_exact", exact, coords=coords, source="Gardiner 2009, eq. 5.5.20 (reflecting wall at -2.5)",
                  equation="tau = (1/T) int_{x0}^{b} dy int_{-2.5}^{y} dz exp((f(y) - f(z))/T)")
    writer.theory("mfpt_kramers", kramers, coords=coords, source="Kramers 1940; Hanggi, Talkner & Borkovec 1990",
                  equation="tau = 2 pi / sqrt(f''(-1) |f''(0)|) exp(Delta f / T)")
    writer.theory("mfpt_pde_field", np.array(fields), coords={"temperature": temps,
                  "x": np.linspace(WALL, p["target"], 200)}, source="backward equation on the grid",
                  equation="tau(x) from every start x")
    z = np.abs(measured - pde) / stderr
    inv_t = 1.0 / temps
    metrics = dict(mfpt_zscore_particles_pde_max=float(np.nanmax(z)),
                   mfpt_rel_error_pde_exact_max=float(np.max(np.abs(pde / exact - 1))),
                   kramers_ratio_exact_lowest_t=float(exact[0] / kramers[0]), barrier=BARRIER,
                   censored_total=int(censored.sum()))
    if n >= 2:   # a slope needs two temperatures (one would make polyfit rank-deficient)
        metrics["arrhenius_slope_exact"] = float(np.polyfit(inv_t, np.log(exact), 1)[0])
    if n >= 2 and np.all(np.isfinite(measured)):
        # weighted fit of log tau vs 1/T; the error of log tau is stderr / tau
        w = measured / stderr
        coef, cov = np.polyfit(inv_t, np.log(measured), 1, w=w, cov="unscaled")
        metrics |= dict(arrhenius_slope_measured=float(coef[0]), arrhenius_slope_stderr=float(math.sqrt(cov[0, 0])))
    writer.claims(*claims(
        dict(mfpt=measured, stderr=stderr, slope=metrics.get("arrhenius_slope_measured"),
             slope_stderr=metrics.get("arrhenius_slope_stderr")),
        dict(exact=exact, kramers=kramers, pde=pde, pde_coarse=pde_coarse,
             spacing=grid_spacing(p["target"], p["spacing"]),
             spacing_coarse=grid_spacing(p["target"], 2 * p["spacing"]),
             slope=metrics.get("arrhenius_slope_exact"))))
    writer.comparison(**metrics)
    lines = [f"kramers: escape from x = -1 to x >= {p['target']} of (x^2-1)^2, {p['dynamics']} lr={p['lr']}, "
             f"{p['particles']} particles per temperature",
             "      T   particles (+- SE)      PDE     exact    Kramers   censored"]
    for i, T in enumerate(temps):
        lines.append(f"  {T:6.3f}  {measured[i]:9.4g} +- {stderr[i]:<8.2g} {pde[i]:9.4g} {exact[i]:9.4g} "
                     f"{kramers[i]:9.4g}   {censored[i]}")
    lines.append(f"  max |particles - PDE| / SE = {metrics['mfpt_zscore_particles_pde_max']:.2f};  "
                 f"max |PDE / exact - 1| = {metrics['mfpt_rel_error_pde_exact_max']:.2e}")
    if "arrhenius_slope_measured" in metrics:
        lines.append(f"  Arrhenius slope d log tau / d(1/T): particles {metrics['arrhenius_slope_measured']:.3f} "
                     f"+- {metrics['arrhenius_slope_stderr']:.3f}, exact {metrics['arrhenius_slope_exact']:.3f}, "
                     f"barrier {BARRIER}")
    if not kramers_resolved(exact, kramers, stderr):
        lines.append("  Kramers' formula is not claimed: its gap to the exact time is too few SE to be resolved "
                     "(more particles or lower T resolve it)")
    return status, message, lines


def plot(run, path):
    measured, se = run.element("mfpt_measured"), run.element("mfpt_stderr").value[0]
    temps = measured.coords["temperature"]
    pde, exact, kramers = (run.theory(n).value for n in ("mfpt_pde", "mfpt_exact", "mfpt_kramers"))
    field = run.theory("mfpt_pde_field")
    fig, (ax, ax_ratio, ax_field) = figure(3, title=f"Kramers escape from the left well of (x^2-1)^2: "
                                                    f"{run.params['dynamics']} lr={run.params['lr']}, "
                                                    f"{run.params['particles']} particles, seed {run.seed}")
    inv = 1.0 / temps
    fine = np.linspace(inv.min(), inv.max(), 100)
    ax.semilogy(fine, 2 * np.pi / math.sqrt(32) * np.exp(fine), label="Kramers 2pi/sqrt(32) e^{1/T}", **THEORY)
    ax.semilogy(inv, exact, color="C2", marker="s", ms=4, lw=1, label="exact 1-D integral")
    ax.semilogy(inv, pde, color="C1", marker="x", ls="none", ms=8, label="PDE (backward equation)")
    ax.errorbar(inv, measured.value[0], yerr=2 * se, fmt="o", color="C0", ms=4, capsize=3,
                label="particles (+- 2 SE)")
    ax.set(xlabel="1 / T", ylabel="mean first-passage time (t = step x lr)", title="Arrhenius plot")
    ax.legend(fontsize=8)
    ax_ratio.axhline(1.0, **THEORY, label="exact 1-D integral")
    ax_ratio.errorbar(temps, measured.value[0] / exact, yerr=2 * se / exact, fmt="o", color="C0", capsize=3,
                      label="particles / exact (+- 2 SE)")
    ax_ratio.plot(temps, pde / exact, "x", color="C1", ms=8, label="PDE / exact")
    ax_ratio.plot(temps, kramers / exact, "s-", color="C3", ms=4, lw=1, label="Kramers / exact")
    ax_ratio.set(xlabel="temperature T", ylabel="MFPT / exact", title="the four estimates against the exact one")
    ax_ratio.legend(fontsize=8)
    colors = __import__("matplotlib").colormaps["viridis"](np.linspace(0.1, 0.9, len(temps)))
    for c, T, tau in zip(colors, temps, field.value):
        ax_field.semilogy(field.coords["x"], np.maximum(tau, 1e-3), color=c, label=f"T = {T:g}")
    ax_field.axvline(START, color="grey", ls=":", lw=0.8)
    ax_field.set(xlabel="start x", ylabel="MFPT to the target", title="PDE: MFPT from every start")
    ax_field.legend(fontsize=8)
    return save(fig, path)


SCENARIO = Scenario(
    name="kramers",
    summary="escape times from a well of (x^2-1)^2 vs T: particles, PDE, exact 1-D integral, Kramers",
    params=(
        Param("temperatures", str, "0.25,0.3,0.4,0.5", "comma-separated temperatures T", list_check(float)),
        Param("particles", int, 2000, "particles per temperature", at_least(2)),
        Param("dynamics", str, "sgd", "sgd (finite-sum tilts, T = lr var(a)/(2B)) or langevin",
              choices=("sgd", "langevin")),
        Param("lr", float, 0.002, "learning rate = time step", positive),
        Param("batch", int, 1, "minibatch size B (sgd)", at_least(1)),
        Param("examples", int, 256, "number of tilts a_i (sgd)", at_least(2)),
        Param("target", float, 1.0, "escape = first x >= target (in (-1, 2.5))",
              lambda v: None if -1.0 < v < 2.5 else "must be in (-1, 2.5)"),
        Param("horizon", float, 6.0, "particles run to horizon x the PDE's MFPT", positive),
        Param("spacing", float, 0.01, "PDE grid spacing", lambda v: None if 0 < v <= 0.1 else "must be in (0, 0.1]"),
    ),
    run=run,
    plot=plot,
    presets={"small": dict(temperatures="0.4,0.5,0.7", particles=600, lr=0.004, horizon=5.0)},
    validate=lambda p: (f"batch {p['batch']} is larger than the data ({p['examples']} examples)"
                        if p["batch"] > p["examples"] else None),
)
