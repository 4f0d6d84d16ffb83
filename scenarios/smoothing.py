"""smoothing: SGD on a loss with many sharp local minima behaves like gradient descent on the loss convolved
with its step noise (Kleinberg, Li & Yuan 2018, "An alternative view: when does SGD escape local minima?").

The loss is `Ripple(1)`: f(x) = c x^2/2 + a (1 - cos(2 pi x / w)), a bowl covered with sharp minima
(curvature ~ c + a (2 pi / w)^2, spacing w). SGD uses tilted examples f_i = f + a_i x, a_i ~ N(0, sigma^2)
centred, so a step is x' = x - lr f'(x) - lr xi with step noise lr xi of standard deviation s = lr sigma / sqrt(B)
(the noise scale). With y = x - lr f'(x), Kleinberg et al. (sec. 3) show E[y' | y] = y - lr f_s'(y),
f_s = f * N(0, s^2): in expectation y runs gradient descent on the smoothed loss, which for a Gaussian kernel
is closed-form: f_s = c (x^2 + s^2)/2 + a (1 - e^{-(2 pi s / w)^2 / 2} cos(2 pi x / w)). Its sharp minima
vanish once a (2 pi / w)^2 e^{-(2 pi s / w)^2 / 2} < c, i.e. above s* = sqrt(2 log(a k^2 / c)) / k, k = 2 pi / w.

1. Trajectories: every particle starts at x0; the mean of y over the SGD cloud against GD on f_s from the
   same start (and GD on f itself, which stops in the first sharp minimum), for a few noise scales.
2. Escape: every particle starts in the sharp minimum x_m nearest to `escape_start`; the fraction that has
   left its basin (between the neighbouring maxima of f) within `escape_steps` steps, against the noise
   scale, beside the same probability for the SDE limit dx = -f' dt + sqrt(2T) dW, T = s^2 / (2 lr),
   computed by the Fokker–Planck equation with absorbing walls at the basin's edges (1 - its mass), and the
   threshold s* of the smoothed loss. For batch 1 the same probability is computed exactly for the discrete
   chain x' = x - lr (f'(x) + a_i), i uniform over the run's own tilts (`escape_chain`, a transfer operator).

The amplitude a may be negative: a (1 - cos) with a < 0 is the cosine of the other sign (the sharp minima
sit where a > 0 has its maxima); every formula above holds with |a| in the threshold.

Claims (`claims`, a pure function of the measurements and the theory):
- smoothed_gd_above_threshold (noise scales s > s*): the cloud's mean of y follows GD on f_s at every
  recorded time after the start, within 4 standard errors (the largest over time) plus the error of the
  approximation itself (`drift_bound`). Per step the mean moves by lr E[F(y)], F(y) = E_i f'(y - lr a_i) the
  drift over the run's own tilts, where GD on f_s moves by lr f_s'(E y). Two terms separate them: the Jensen
  gap |E f_s'(y) - f_s'(E y)| <= (1/2) sup|f_s^(3)| Var(y) = (1/2) |a| k^3 e^{-(ks)^2/2} Var(y), and the
  finite data |F - f_s'| <= |a| k |phi - e^{-(ks)^2/2}|, phi = E exp(i k lr xi) the characteristic function
  of the minibatch noise over the tilts (a Gaussian law would give exactly e^{-(ks)^2/2}). Above s* f_s is
  strongly convex with modulus c_min = c - |a| k^2 e^{-(ks)^2/2} > 0 (that is what s > s* means), so GD's
  contraction keeps the accumulated gap below (per-step bound) / c_min. The deviation over 4 SE + that
  bound must be <= 1. The bound is loose: 0.18-0.34 at s = 0.15 for 256 tilts, almost all of it the
  finite-data worst case (the spread cloud averages e^{iky} away), while the deviation measured with 32000
  particles is about 0.02 (2-3 SE); GD on f itself, or on f_s at a quarter of the noise scale, is still
  told apart (deviations of order 1).
- smoothed_gd_below_threshold (s < s*): the same, expected to FAIL: where f_s keeps its sharp minima GD on
  f_s stays trapped while the cloud spreads over many minima and drifts down the bowl (tens of SE).
- escape_chain (batch 1): the escape probability equals the exact chain's, |z| <= 4, with the Agresti–Coull
  binomial standard error sqrt(p~(1 - p~)/(m + 4)), p~ = (k + 2)/(m + 4) (never 0 at p = 0 or 1).
- escape_sde_limit: the SDE limit predicts which noise scales escape: the number of noise scales at which
  SGD's probability and the Fokker–Planck one fall on different sides of 1/2 is 0. The probabilities
  themselves are not claimed equal: in the sharp minimum lr f''(x_m) is about 1 (the validated stability
  bound is 2), outside the SDE limit's regime; with Gaussian step noise the discrete chain differs from the
  PDE by 10% at s = 0.02 (0.090 vs 0.082) and 3% at s = 0.03 (0.837 vs 0.863), and SGD's finite set of
  tilts moves the transition further (0.079 to 0.15 at s = 0.02 across data seeds).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.optimize
import scipy.sparse

from sgdsim.fokker_planck import equation as fokker_planck
from sgdsim.compare.claims import Claim
from sgdsim.particles.dynamics import SGD
from sgdsim.errors import ParameterError
from sgdsim.particles.landscapes import Ripple, Tilted
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, list_check, parse_list, positive
from sgdsim.solvers import ParticleSolver, Target

RECORDS = 60
CHAIN_NODES = 1000   # nodes of the transfer operator across the basin (converged to 1e-4 at 500)


def sgd_landscape(ripple: Ripple, noise: float, p: dict, seed: int) -> Tilted:
    """Tilts with mean 0 and variance exactly (noise sqrt(B) / lr)^2, so the step noise has std `noise`."""
    z = np.random.default_rng(np.random.SeedSequence(seed)).standard_normal(p["examples"])
    z = (z - z.mean()) / z.std()
    return Tilted(ripple, z * noise * math.sqrt(p["batch"]) / p["lr"])


def solver_for(ripple, noise, p, seed, x0, target=None) -> ParticleSolver:
    landscape = sgd_landscape(ripple, noise, p, seed)
    return ParticleSolver(landscape=landscape.code, theta=landscape.theta, data=landscape.data,
                          x0=np.full((p["particles"], 1), x0), seed=seed, target=target,
                          **SGD(lr=p["lr"], batch=p["batch"]).solver_arguments(landscape))


def gd(grad, y0: float, lr: float, steps: np.ndarray) -> np.ndarray:
    """Gradient descent y <- y - lr grad(y), recorded at the given (increasing) steps."""
    out, y, done = [], float(y0), 0
    for s in steps:
        for _ in range(int(s) - done):
            y -= lr * float(grad(np.array([[y]]))[0, 0])
        done = int(s)
        out.append(y)
    return np.array(out)


def basin(ripple: Ripple, x: float) -> tuple[float, float, float]:
    """The local minimum of f nearest to x and the maxima on either side of it (the zeros of f' on a fine
    grid, refined by Brent's method: a minimum where f' goes from - to +, a maximum where it goes + to -)."""
    w = ripple.wavelength
    g = lambda u: float(ripple.grad(np.array([[u]]))[0, 0])  # noqa: E731
    grid = np.linspace(x - 2 * w, x + 2 * w, 4001)
    gs = ripple.grad(grid[:, None])[:, 0]
    roots = lambda i: np.array([scipy.optimize.brentq(g, grid[j], grid[j + 1]) for j in i])  # noqa: E731
    minima = roots(np.flatnonzero((gs[:-1] < 0) & (gs[1:] >= 0)))
    maxima = roots(np.flatnonzero((gs[:-1] > 0) & (gs[1:] <= 0)))
    xm = float(minima[np.argmin(np.abs(minima - x))])
    below, above = maxima[maxima < xm], maxima[maxima > xm]
    if not (below.size and above.size):
        raise ParameterError(f"no sharp minimum near {x}: f has no maxima on both sides within 2 wavelengths")
    return xm, float(below.max()), float(above.min())


def threshold(bowl: float, amplitude: float, wavelength: float) -> float:
    """s* = sqrt(2 log(|a| k^2 / c)) / k, k = 2 pi / w: the noise scale above which f_s has no sharp minima
    (|a| k^2 e^{-(k s)^2 / 2} < c; Kleinberg, Li & Yuan 2018, sec. 3); 0 when f itself has none."""
    k = 2 * math.pi / wavelength
    return math.sqrt(2 * math.log(abs(amplitude) * k ** 2 / bowl)) / k if abs(amplitude) * k ** 2 > bowl else 0.0


def escape_chain(ripple: Ripple, step_noise: np.ndarray, lr: float, start: float, left: float, right: float,
                 steps: int, nodes: int = CHAIN_NODES) -> float:
    """Probability that the chain x' = x - lr f'(x) - e, e uniform over the values `step_noise` (lr a_i for
    SGD with batch 1), leaves (left, right) within `steps` steps from `start`: the transfer operator of the
    chain on `nodes` equally spaced nodes, each destination split between its two neighbouring nodes by linear
    interpolation (mass landing outside is absorbed)."""
    x = np.linspace(left, right, nodes)
    h = x[1] - x[0]
    dest = (x - lr * ripple.grad(x[:, None])[:, 0])[:, None] - np.asarray(step_noise, float)[None, :]
    inside = (dest > left) & (dest < right)
    u = (dest[inside] - left) / h
    j = np.clip(np.floor(u).astype(np.int64), 0, nodes - 2)
    frac, rows = u - j, np.broadcast_to(np.arange(nodes)[:, None], dest.shape)[inside]
    weight = 1.0 / dest.shape[1]
    step = scipy.sparse.csr_matrix((np.concatenate([(1 - frac) * weight, frac * weight]),
                                    (np.concatenate([j, j + 1]), np.concatenate([rows, rows]))), shape=(nodes, nodes))
    u0 = (start - left) / h
    j0 = min(int(math.floor(u0)), nodes - 2)
    mass = np.zeros(nodes)
    mass[j0], mass[j0 + 1] = j0 + 1 - u0, u0 - j0
    for _ in range(steps):
        mass = step @ mass
    return float(max(0.0, 1.0 - mass.sum()))


def binomial_stderr(fraction: np.ndarray, m: int) -> np.ndarray:
    """Agresti–Coull standard error of a fraction of m trials: sqrt(p~(1 - p~)/(m + 4)), p~ = (k + 2)/(m + 4)."""
    tilde = (np.asarray(fraction) * m + 2) / (m + 4)
    return np.sqrt(tilde * (1 - tilde) / (m + 4))


def drift_bound(bowl: float, amplitude: float, wavelength: float, noise, variance, charfn_gap) -> np.ndarray:
    """How far the mean of y may drift from GD on f_s above s*, given the cloud's Var(y) = `variance` and
    `charfn_gap` = |phi - e^{-(ks)^2/2}| (see the module doc): ((1/2) |a| k^3 e^{-(ks)^2/2} Var(y) +
    |a| k charfn_gap) / c_min with c_min = c - |a| k^2 e^{-(ks)^2/2} (inf where c_min <= 0, below s*)."""
    k = 2 * math.pi / wavelength
    damp = np.exp(-0.5 * (k * np.asarray(noise, float)) ** 2)
    c_min = bowl - abs(amplitude) * k * k * damp
    per_step = abs(amplitude) * k * (0.5 * k * k * damp * np.asarray(variance, float) + np.asarray(charfn_gap))
    return np.where(c_min > 0, per_step / np.where(c_min > 0, c_min, 1.0), np.inf)


def charfn_gap(ripple: Ripple, tilts: np.ndarray, noise: float, lr: float, batch: int) -> float:
    """|phi - e^{-(ks)^2/2}|: phi = (E_i exp(i k lr a_i / B))^B, the characteristic function at k = 2 pi / w
    of the noise lr xi of a minibatch of B tilts drawn with replacement, against the Gaussian's."""
    k = 2 * math.pi / ripple.wavelength
    phi = np.mean(np.exp(1j * k * lr * np.asarray(tilts, float) / batch)) ** batch
    return float(abs(phi - math.exp(-0.5 * (k * noise) ** 2)))


def claims(measured: dict, theory: dict) -> list[Claim]:
    """The scenario's claims (see the module doc) from measured {mean_y, mean_y_stderr (records x trajectory
    noises, the start excluded), escape (over the escape noises), particles} and theory {s_star, bowl,
    amplitude, wavelength, trajectory_noises, charfn_gap (`charfn_gap` per trajectory noise), gd_smoothed (as
    mean_y), escape_sde (PDE), escape_chain (None unless batch 1)}."""
    noises = np.asarray(theory["trajectory_noises"], float)
    m, se, gd = (np.asarray(measured["mean_y"]), np.asarray(measured["mean_y_stderr"]),
                 np.asarray(theory["gd_smoothed"]))
    out = []
    above, below = noises > theory["s_star"], noises < theory["s_star"]
    if above.any():
        largest_se = np.max(se[:, above], axis=0)
        allowed = 4 * largest_se + drift_bound(theory["bowl"], theory["amplitude"], theory["wavelength"],
                                               noises[above], largest_se ** 2 * measured["particles"],
                                               np.asarray(theory["charfn_gap"])[above])
        out.append(Claim(name="smoothed_gd_above_threshold", statement="above s* the cloud's mean of y = x - lr f'(x) "
                         "follows GD on the smoothed loss f_s: |deviation| / (4 SE + the approximation's bound) <= 1",
                         measured=(m[:, above] - gd[:, above]) / allowed, predicted=0.0, test="abs", tolerance=1.0,
                         source="Kleinberg, Li & Yuan 2018, sec. 3 (E[y'|y] = y - lr grad f_s(y))"))
    if below.any():
        out.append(Claim(name="smoothed_gd_below_threshold", statement="below s* the cloud's mean of y follows GD on "
                         "f_s (expected to fail: f_s keeps sharp minima that trap GD while the cloud drifts down the "
                         "bowl)", measured=m[:, below], predicted=gd[:, below], stderr=se[:, below], test="z",
                         tolerance=4.0, expected="fails",
                         source="Kleinberg, Li & Yuan 2018, sec. 3 (E[y'|y] = y - lr grad f_s(y))"))
    escape = np.asarray(measured["escape"], float)
    escape_se = binomial_stderr(escape, measured["particles"])
    if theory.get("escape_chain") is not None:
        out.append(Claim(name="escape_chain", statement="the escape probability equals the exact discrete chain's "
                         "(transfer operator over the run's tilts)", measured=escape, predicted=theory["escape_chain"],
                         stderr=escape_se, test="z", tolerance=4.0,
                         source="Kleinberg, Li & Yuan 2018, eq. 1 (the SGD step as a Markov chain)"))
    sides = np.sum((escape > 0.5) != (np.asarray(theory["escape_sde"]) > 0.5))
    out.append(Claim(name="escape_sde_limit", statement="the SDE limit (Fokker–Planck, absorbing walls) predicts "
                     "which noise scales escape: noise scales where SGD and the PDE fall on different sides of 1/2",
                     measured=float(sides), predicted=0.0, test="abs", tolerance=0.0,
                     source="Li, Tai & E 2017 (SDE limit, T = s^2 / (2 lr)); "
                            "Gardiner 2009, sec. 5.2 (absorbing walls)"))
    return out


def run(p: dict, seed: int, writer, progress: bool):
    ripple = Ripple(1, bowl=p["bowl"], amplitude=p["amplitude"], wavelength=p["wavelength"])
    lr = p["lr"]
    s_star = threshold(p["bowl"], p["amplitude"], p["wavelength"])

    # --- 1. trajectories of the mean of y against GD on the smoothed loss
    traj_noises = np.array(parse_list(p["trajectory_noises"], float, 0))
    steps = np.unique(np.linspace(0, p["steps"], RECORDS + 1).round().astype(np.int64))
    mean_y = np.zeros((len(steps), len(traj_noises)))
    se_y = np.zeros_like(mean_y)
    for j, s in enumerate(traj_noises):
        solver = solver_for(ripple, s, p, seed + j, p["start"])
        for i, n in enumerate(steps):
            solver.advance(int(n) - solver.step)
            y = solver.x[:, 0] - lr * ripple.grad(solver.x)[:, 0]
            if not np.all(np.isfinite(y)):
                return "diverged", f"SGD diverged by step {n} at noise {s}; lower lr", ["smoothing: diverged"]
            mean_y[i, j], se_y[i, j] = y.mean(), y.std() / math.sqrt(len(y))
    y0 = p["start"] - lr * float(ripple.grad(np.array([[p["start"]]]))[0, 0])
    smoothed = np.column_stack([gd(lambda x, s=s: ripple.grad(x, s), y0, lr, steps) for s in traj_noises])
    plain = gd(ripple.grad, y0, lr, steps)
    times = steps * lr
    coords = {"noise": traj_noises}
    el = writer.element("sgd_mean_y", (len(traj_noises),), coords=coords,
                        attrs={"definition": "mean over the cloud of y = x - lr f'(x)"})
    el_se = writer.element("sgd_mean_y_stderr", (len(traj_noises),), coords=coords)
    for n, t, m, e in zip(steps, times, mean_y, se_y):
        el.append(n, t, m)
        el_se.append(n, t, e)
    writer.theory("gd_smoothed", smoothed, step=steps, time=times, coords=coords,
                  source="Kleinberg, Li & Yuan 2018, sec. 3: E[y'|y] = y - lr grad f_s(y)",
                  equation="y <- y - lr f_s'(y), f_s = f * N(0, s^2)")
    writer.theory("gd_plain", plain, step=steps, time=times, source="gradient descent on f itself",
                  equation="y <- y - lr f'(y)")

    # --- 2. escape probability from a sharp minimum against the noise scale
    noises = np.array(parse_list(p["noises"], float, 0))
    xm, left, right = basin(ripple, p["escape_start"])
    escaped, pde_escape, chain = np.zeros(len(noises)), np.zeros(len(noises)), np.zeros(len(noises))
    for j, s in enumerate(noises):
        solver = solver_for(ripple, s, p, seed + 1000 + j, xm, target=Target((left,), (right,), "exit"))
        solver.advance(p["escape_steps"])
        escaped[j] = float(np.mean(solver.first_hit >= 0))
        if p["batch"] == 1:
            step_noise = lr * sgd_landscape(ripple, s, p, seed + 1000 + j).tilts[:, 0]
            chain[j] = escape_chain(ripple, step_noise, lr, xm, left, right, p["escape_steps"])
        fp = fokker_planck.problem(loss=ripple, temperature=s * s / (2 * lr), lo=left, hi=right,
                                   cells=p["pde_cells"], boundary="absorbing")
        out = fp.evolve(fp.point_mass([xm]), [p["escape_steps"] * lr], lr / 4)
        pde_escape[j] = 1.0 - fp.mass(out.density[-1])
    m = p["particles"]
    escaped_se = np.sqrt(escaped * (1 - escaped) / m)
    coords = {"noise": noises}
    writer.element("escape_probability", (len(noises),), coords=coords,
                   attrs={"basin": [left, right], "minimum": xm}).append(p["escape_steps"], p["escape_steps"] * lr, escaped)
    writer.element("escape_stderr", (len(noises),), coords=coords).append(p["escape_steps"], p["escape_steps"] * lr,
                                                                          escaped_se)
    writer.theory("escape_sde_limit", pde_escape, coords=coords,
                  source="Fokker–Planck equation of the SDE limit, absorbing walls at the basin's maxima",
                  equation="1 - int p(x, t) dx, T = s^2 / (2 lr)")
    if p["batch"] == 1:
        writer.theory("escape_chain", chain, coords=coords,
                      source="transfer operator of the SGD chain x' = x - lr (f'(x) + a_i) over the run's tilts, "
                             f"{CHAIN_NODES} nodes, linear interpolation", equation="1 - sum_j (M^n delta_{x_m})_j")
    final = -1
    metrics = dict(s_star=s_star, sharp_minimum=xm, basin_left=left, basin_right=right,
                   gd_plain_final=float(plain[final]),
                   escape_probability_smallest_noise=float(escaped[0]),
                   escape_probability_largest_noise=float(escaped[-1]),
                   escape_monotone=int(np.all(np.diff(escaped) >= -3 * np.hypot(escaped_se[1:], escaped_se[:-1]))))
    for j, s in enumerate(traj_noises):
        metrics[f"mean_y_final_noise{j}"] = float(mean_y[final, j])
        metrics[f"gd_smoothed_final_noise{j}"] = float(smoothed[final, j])
        metrics[f"max_deviation_noise{j}"] = float(np.max(np.abs(mean_y[:, j] - smoothed[:, j])))
    writer.comparison(**metrics)
    writer.claims(*claims(
        dict(mean_y=mean_y[1:], mean_y_stderr=se_y[1:], escape=escaped, particles=m),
        dict(s_star=s_star, bowl=p["bowl"], amplitude=p["amplitude"], wavelength=p["wavelength"],
             trajectory_noises=traj_noises, gd_smoothed=smoothed[1:], escape_sde=pde_escape,
             charfn_gap=[charfn_gap(ripple, sgd_landscape(ripple, s, p, seed + j).tilts[:, 0], s, lr, p["batch"])
                         for j, s in enumerate(traj_noises)],
             escape_chain=chain if p["batch"] == 1 else None)))
    lines = [f"smoothing: SGD lr={lr} B={p['batch']} on c x^2/2 + a(1 - cos(2 pi x/w)), c={p['bowl']}, a={p['amplitude']}, "
             f"w={p['wavelength']} ({m} particles); sharp minima vanish from f_s above s* = {s_star:.4f}",
             f"  from x0 = {p['start']}: GD on f stops at {plain[final]:.3f};"]
    for j, s in enumerate(traj_noises):
        lines.append(f"    noise s = {s:g}: SGD mean of y at t = {times[final]:g}: {mean_y[final, j]:.3f} +- {se_y[final, j]:.3f}, "
                     f"GD on f_s: {smoothed[final, j]:.3f}, max |difference| over time {metrics[f'max_deviation_noise{j}']:.3f}")
    lines.append(f"  escape from the sharp minimum {xm:.3f} (basin [{left:.3f}, {right:.3f}]) within {p['escape_steps']} steps:")
    lines += [f"    s = {s:<7g} SGD {e:.3f} +- {se:.3f}   SDE limit (PDE) {q:.3f}"
              + (f"   exact chain {c:.3f}" if p["batch"] == 1 else "")
              for s, e, se, q, c in zip(noises, escaped, escaped_se, pde_escape, chain)]
    if p["batch"] > 1:
        lines.append("    (the exact chain is computed for batch 1 only: a minibatch mean of B tilts has N^B values)")
    return "complete", "", lines


def plot(run, path):
    c = run.comparison
    mean_y, se = run.element("sgd_mean_y"), run.element("sgd_mean_y_stderr")
    smoothed, plain = run.theory("gd_smoothed"), run.theory("gd_plain")
    noises = mean_y.coords["noise"]
    fig, (ax_loss, ax_traj, ax_esc) = figure(3, title=f"SGD smooths sharp minima: lr={run.params['lr']}, "
                                                      f"B={run.params['batch']}, a={run.params['amplitude']}, "
                                                      f"w={run.params['wavelength']}, seed {run.seed}")
    ripple = Ripple(1, bowl=run.params["bowl"], amplitude=run.params["amplitude"],
                    wavelength=run.params["wavelength"])
    x = np.linspace(-abs(run.params["start"]) - 0.3, abs(run.params["start"]) + 0.3, 1500)[:, None]
    ax_loss.plot(x[:, 0], ripple.value(x), color="grey", lw=0.8, label="f")
    colors = __import__("matplotlib").colormaps["viridis"](np.linspace(0.1, 0.85, len(noises)))
    for col, s in zip(colors, noises):
        ax_loss.plot(x[:, 0], ripple.value(x, s), color=col, label=f"f_s, s = {s:g}")
    ax_loss.set(xlabel="x", ylabel="loss", title="the loss and its Gaussian smoothings")
    ax_loss.legend(fontsize=8)
    for j, (col, s) in enumerate(zip(colors, noises)):
        ax_traj.plot(mean_y.time, mean_y.value[:, j], color=col, lw=1.5, label=f"SGD mean of y, s = {s:g}")
        ax_traj.fill_between(mean_y.time, mean_y.value[:, j] - 2 * se.value[:, j],
                             mean_y.value[:, j] + 2 * se.value[:, j], color=col, alpha=0.25)
        ax_traj.plot(smoothed.time, smoothed.value[:, j], **(THEORY | {"lw": 1.0}),
                     label="GD on f_s" if j == 0 else None)
    ax_traj.plot(plain.time, plain.value, color="C3", ls=":", label="GD on f")
    ax_traj.set(xlabel="t = step x lr", ylabel="y = x - lr f'(x)", title="SGD mean vs GD on the smoothed loss")
    ax_traj.legend(fontsize=8)
    esc, esc_se = run.element("escape_probability"), run.element("escape_stderr").value[0]
    sde = run.theory("escape_sde_limit").value
    s_esc = esc.coords["noise"]
    ax_esc.errorbar(s_esc, esc.value[0], yerr=2 * esc_se, fmt="o-", color="C0", capsize=3, label="SGD (+- 2 SE)")
    ax_esc.plot(s_esc, sde, "s--", color="C1", ms=4, label="SDE limit (Fokker–Planck, absorbing walls)")
    if "escape_chain" in run.names("theory"):
        ax_esc.plot(s_esc, run.theory("escape_chain").value, "x:", color="C2", ms=7,
                    label="exact chain over the run's tilts (transfer operator)")
    ax_esc.axvline(c["s_star"], **THEORY, label=f"s* = {c['s_star']:.3f}: f_s loses its sharp minima")
    ax_esc.set(xscale="log", xlabel="step-noise scale s = lr sigma / sqrt(B)", ylabel="escape probability",
               ylim=(-0.03, 1.03), title=f"leaving the sharp minimum {c['sharp_minimum']:.2f} within "
                                         f"{run.params['escape_steps']} steps")
    ax_esc.legend(fontsize=8)
    return save(fig, path)


SCENARIO = Scenario(
    name="smoothing",
    summary="SGD on a loss with many sharp minima follows GD on the loss smoothed by its noise (Kleinberg et al.)",
    params=(
        Param("bowl", float, 1.0, "curvature c of the bowl", positive),
        Param("amplitude", float, 0.1, "amplitude a of the ripples (negative: the cosine of the other sign)",
              lambda v: None if v != 0 else "must be non-zero"),
        Param("wavelength", float, 0.2, "spacing w of the sharp minima", positive),
        Param("lr", float, 0.01, "learning rate", positive),
        Param("batch", int, 1, "minibatch size B", at_least(1)),
        Param("examples", int, 256, "number of tilted examples", at_least(2)),
        Param("particles", int, 4000, "SGD particles per noise scale", at_least(2)),
        Param("start", float, 1.5, "start of the trajectories"),
        Param("steps", int, 600, "steps of the trajectories", at_least(1)),
        Param("trajectory_noises", str, "0.02,0.06,0.15", "noise scales s of the trajectories", list_check(float)),
        Param("noises", str, "0.005,0.01,0.02,0.04,0.07,0.1,0.15", "noise scales s of the escape curve",
              list_check(float)),
        Param("escape_start", float, 1.0, "the sharp minimum of the escape study is the one nearest to this"),
        Param("escape_steps", int, 100, "steps allowed to escape", at_least(1)),
        Param("pde_cells", int, 200, "Fokker–Planck cells across the basin", at_least(10)),
    ),
    run=run,
    plot=plot,
    presets={"small": dict(particles=1000, noises="0.005,0.02,0.07,0.15", steps=400)},
    validate=lambda p: (f"lr {p['lr']} is unstable in the sharp minima (lr (c + |a| (2 pi / w)^2) must be < 2)"
                        if p["lr"] * (p["bowl"] + abs(p["amplitude"]) * (2 * math.pi / p["wavelength"]) ** 2) >= 2
                        else None),
)
