"""saddle-escape: gradient descent, minibatch SGD and perturbed GD started on the stable manifold of a strict
saddle in d dimensions; how many iterations each needs to escape, and how that grows with d.

f(x) = x1^4/4 - x1^2/2 + |x_rest|^2/2 has a strict saddle at 0 (Hessian eigenvalue -1 along x1, +1 along the
other d - 1 axes) whose stable manifold is {x1 = 0}. Every particle starts on it at x = (0, R, 0, ..., 0),
R = start_radius (the rest block is rotation invariant and every perturbation below is isotropic, so the
direction of x_rest is immaterial; all particles start at the same point). Escape is the first step with
|x1| > threshold (the Target box |x1| <= threshold, other coordinates unbounded, mode "exit"; equality has
probability zero). The x1 coordinate obeys x1 <- x1 (1 + lr - lr x1^2) + noise whatever x_rest does.

- GD: x1 = 0 exactly forever (grad_1 f = x1^3 - x1 = 0), so no particle escapes within any step budget
  (the saddle attracts its whole stable manifold; Lee et al. 2016 show this set has measure zero).
- PGD (Jin, Ge, Netrapalli, Kakade & Jordan 2017, "How to escape saddle points efficiently", Algorithm 2):
  while |grad f| = |x_rest| = R (1 - lr)^n > g_thres it is plain GD; the first perturbation comes at
  n0 = min{n >= 0 : R (1 - lr)^n <= g_thres} = ceil(log(g_thres / R) / log(1 - lr)) (the kernel compares
  the gradient before the update; n0 = 0 if R <= g_thres). The kick xi is uniform in the d-ball of radius r,
  so x1 = xi_1 with (xi_1 / r)^2 ~ Beta(1/2, (d+1)/2), |xi_1| ~ r / sqrt(d), and the escape step is
  n0 + N(xi_1) with N the deterministic escape count of the x1 map from xi_1. Its mean n0 + E[N] is exact
  (`theory.pgd_escape_steps_mean`, with `theory.saddle_escape_steps` on a quantile grid of the Beta law for
  the whole distribution) as long as a single kick happens: true when `interval` exceeds the escape time
  after the kick (the summary prints the bound P(N > interval) on a second kick). For large d,
  E[N] ~ (1/2) log(d) / log(1 + lr) + const: the log d scaling of Jin et al.
- SGD (Ge, Huang, Jin & Yuan 2015, "Escaping from saddle points: online stochastic gradient for tensor
  decomposition"): minibatch SGD on the tilted finite sum f_i = f + a_i . x, a_i ~ N(0, noise^2 I) centred
  (`landscapes.Tilted`), B examples drawn with replacement, so the x1 update carries noise of std
  lr * noise / sqrt(B) every step. Linearized, x1_n = (1 + lr)^n U_n with U_n -> U ~ N(0, s^2),
  s^2 = lr^2 var(a_1) / B / ((1 + lr)^2 - 1): the estimate E[N(U)] (the deterministic escape count from
  x1 = U, on a normal quantile grid) neglects only the noise after the growth has taken over. The noise per
  coordinate is fixed, so this escape time does not depend on d at all: the log d of PGD comes from the
  kick's fixed total radius, whose share on x1 shrinks like 1/sqrt(d).

Escape steps are the first-passage events of the Recorder target (stored as /events/<method>_d<d>_first_passage);
each (method, d) runs until every particle escaped (checked every `record_every` steps) or the budget ends.

Claims (`claims`, a pure function of the measurements and the theory):
- gd_stuck: GD keeps x1 = 0 exactly (max |x1| over every particle and d is 0; abs tolerance 0).
- sgd_escapes: every SGD particle escapes within the budget, at every d (fraction 1; abs tolerance 0).
- sgd_escape_mean: SGD's mean escape step equals the linearized estimate E[N(U)], |z| <= 4 at every d.
- pgd_escape_mean: PGD's mean escape step equals the exact single-kick theory n0 + E[N(xi_1)], |z| <= 4 at
  every d.
- pgd_log_d_slope (two or more d): the least-squares slope of PGD's mean escape step against log d equals
  the theory's, |z| <= 4 (the log d growth of Jin et al. 2017, Theorem 3; -> 1/(2 log(1 + lr)) for large d).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.special

from sgdsim.particles import theory
from sgdsim.compare.claims import Claim
from sgdsim.particles.dynamics import SGD, GradientDescent, PerturbedGD
from sgdsim.particles.landscapes import StrictSaddle, Tilted
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, list_check, parse_list, positive
from sgdsim.particles.simulate import Recorder, simulate
from sgdsim.solvers import Target

METHODS = ("gd", "sgd", "pgd")
LABELS = {"gd": "GD", "sgd": "SGD", "pgd": "PGD"}
QUANTILE_GRID = 50_000  # points of the quantile grids for the theoretical escape distributions
MAX_VALUES = 50_000_000  # particles x dimension held in memory at once (400 MB of float64)


def kick_step(lr: float, start_radius: float, gradient_threshold: float) -> int:
    """n0: the first step n >= 0 with |grad f| = start_radius (1 - lr)^n <= gradient_threshold."""
    if start_radius <= gradient_threshold:
        return 0
    return int(math.ceil(math.log(gradient_threshold / start_radius) / math.log1p(-lr)))


def pgd_escape_distribution(lr: float, radius: float, d: int, threshold: float) -> np.ndarray:
    """Escape counts N(xi_1) after the kick on a quantile grid of xi_1 (equal-probability points):
    (xi_1 / r)^2 ~ Beta(1/2, (d+1)/2) (`theory.ball_coordinate_density`), N from `theory.saddle_escape_steps`."""
    q = (np.arange(QUANTILE_GRID) + 0.5) / QUANTILE_GRID
    u = radius * np.sqrt(scipy.special.betaincinv(0.5, (d + 1) / 2, q))
    return theory.saddle_escape_steps(u, lr, threshold)


def sgd_escape_distribution(lr: float, noise_var: float, threshold: float) -> np.ndarray:
    """Linearized SGD escape counts on a normal quantile grid of U ~ N(0, s^2),
    s^2 = lr^2 noise_var / ((1 + lr)^2 - 1), noise_var the variance of the minibatch tilt along x1."""
    s = math.sqrt(lr * lr * noise_var / ((1 + lr) ** 2 - 1))
    q = (np.arange(QUANTILE_GRID) + 0.5) / QUANTILE_GRID
    return theory.saddle_escape_steps(s * scipy.special.ndtri(q), lr, threshold)


def summarize(first_hit: np.ndarray) -> dict:
    """Escaped fraction, and mean +- SE, median and 10/90% quantiles of the escape step of those escaped."""
    hit = first_hit[first_hit >= 0].astype(float)
    out = dict(escaped=len(hit), fraction=len(hit) / len(first_hit))
    if len(hit):
        out |= dict(mean=hit.mean(), stderr=hit.std(ddof=1) / math.sqrt(len(hit)) if len(hit) > 1 else math.nan,
                    median=float(np.median(hit)), q10=float(np.quantile(hit, 0.1)), q90=float(np.quantile(hit, 0.9)))
    else:
        out |= dict(mean=math.nan, stderr=math.nan, median=math.nan, q10=math.nan, q90=math.nan)
    return out


def log_d_slope(dims, means, stderrs=None):
    """Least-squares slope of mean escape step against log d, and its standard error from the SEs."""
    x = np.log(np.asarray(dims, float))
    if len(x) < 2:
        return math.nan, math.nan
    w = (x - x.mean()) / np.sum((x - x.mean()) ** 2)
    slope = float(w @ np.asarray(means, float))
    se = float(np.sqrt(w ** 2 @ np.asarray(stderrs, float) ** 2)) if stderrs is not None else math.nan
    return slope, se


def claims(measured: dict, predicted: dict) -> list[Claim]:
    """The scenario's claims (see the module doc) from measured {gd_max_abs_x1, sgd_fraction, sgd_mean,
    sgd_stderr, pgd_mean, pgd_stderr, pgd_slope, pgd_slope_stderr} (arrays over d; slopes nan for one d) and
    predicted {sgd_mean, pgd_mean, pgd_slope}."""
    out = [
        Claim(name="gd_stuck", statement="GD started on the stable manifold keeps x1 = 0 exactly (never escapes)",
              measured=measured["gd_max_abs_x1"], predicted=0.0, test="abs", tolerance=0.0,
              source="Lee, Simchowitz, Jordan & Recht 2016, Theorem 4 (the stable manifold is invariant under GD)"),
        Claim(name="sgd_escapes", statement="every SGD particle escapes the saddle within the step budget",
              measured=measured["sgd_fraction"], predicted=1.0, test="abs", tolerance=0.0,
              source="Ge, Huang, Jin & Yuan 2015, Theorem 6"),
        Claim(name="sgd_escape_mean", statement="SGD's mean escape step equals the linearized estimate E[N(U)]",
              measured=measured["sgd_mean"], predicted=predicted["sgd_mean"], stderr=measured["sgd_stderr"],
              test="z", tolerance=4.0, source="Ge, Huang, Jin & Yuan 2015 (linearized escape along x1)"),
        Claim(name="pgd_escape_mean", statement="PGD's mean escape step equals the exact single-kick theory "
              "n0 + E[N(xi_1)]", measured=measured["pgd_mean"], predicted=predicted["pgd_mean"],
              stderr=measured["pgd_stderr"], test="z", tolerance=4.0,
              source="Jin, Ge, Netrapalli, Kakade & Jordan 2017, Algorithm 2; sgdsim.particles.theory.pgd_escape_steps_mean"),
    ]
    if np.isfinite(predicted["pgd_slope"]):
        out.append(Claim(name="pgd_log_d_slope", statement="PGD's mean escape step grows with log d at the theory's "
                         "slope", measured=measured["pgd_slope"], predicted=predicted["pgd_slope"],
                         stderr=measured["pgd_slope_stderr"], test="z", tolerance=4.0,
                         source="Jin, Ge, Netrapalli, Kakade & Jordan 2017, Theorem 3 (escape in O(log d) steps)"))
    return out


def _seed(seed: int, *key: int) -> int:
    """An independent stream per (method, d): SeedSequence(seed, spawn_key=key)."""
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1, np.uint64)[0] >> np.uint64(1))


def run(p: dict, seed: int, writer, progress: bool):
    dims = parse_list(p["dims"], int, 2)
    lr, thr, m, budget = p["lr"], p["threshold"], p["particles"], p["steps"]
    n0 = kick_step(lr, p["start_radius"], p["gradient_threshold"])
    per_step_noise = lr * p["noise"] / math.sqrt(p["batch"])
    stats = {method: [] for method in METHODS}
    sgd_theory, pgd_theory, pgd_cdf, second_kick = [], [], [], []
    grid = np.arange(budget + 1)
    gd_max_x1 = 0.0
    for j, d in enumerate(dims):
        saddle = StrictSaddle(d)
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(len(METHODS), d)))
        tilted = Tilted(saddle, p["noise"] * rng.standard_normal((p["examples"], d)))
        runs = {"gd": (saddle, GradientDescent(lr=lr)),
                "sgd": (tilted, SGD(lr=lr, batch=p["batch"], replace=True)),
                "pgd": (saddle, PerturbedGD(lr=lr, radius=p["radius"], gradient_threshold=p["gradient_threshold"],
                                            interval=p["interval"]))}
        target = Target(lo=(-thr,) + (-np.inf,) * (d - 1), hi=(thr,) + (np.inf,) * (d - 1), mode="exit")
        recorder = Recorder(every=p["record_every"], mean=False, covariance=False, loss=False, target=target,
                            stop_when_all_hit=True)
        x0 = np.zeros((m, d))
        x0[:, 1] = p["start_radius"]
        for i, method in enumerate(METHODS):
            landscape, dynamics = runs[method]
            out = simulate(landscape, dynamics, x0, n_steps=budget, seed=_seed(seed, i, d), recorder=recorder,
                           writer=writer, prefix=f"{method}_d{d}_", progress=progress)
            if out.status != "complete":
                return out.status, f"{LABELS[method]} in d={d}: {out.message}", [out.message]
            stats[method].append(summarize(out.first_hit))
            if method == "gd":
                gd_max_x1 = max(gd_max_x1, float(np.abs(out.positions[:, 0]).max()))
        noise_var = float(np.var(tilted.tilts[:, 0])) / p["batch"]
        sgd_theory.append(float(sgd_escape_distribution(lr, noise_var, thr).mean()))
        after_kick = pgd_escape_distribution(lr, p["radius"], d, thr)
        pgd_theory.append(n0 + theory.pgd_escape_steps_mean(lr, p["radius"], d, thr))
        pgd_cdf.append(np.searchsorted(np.sort(n0 + after_kick), grid, side="right") / len(after_kick))
        second_kick.append(float(np.mean(after_kick > p["interval"])))

    slope_asymptotic = 1.0 / (2.0 * math.log1p(lr))
    dense = np.unique(np.round(np.geomspace(dims[0], dims[-1], 60)).astype(int))
    writer.theory("pgd_escape_mean", np.array(pgd_theory), coords={"d": np.array(dims)},
                  source="Jin, Ge, Netrapalli, Kakade & Jordan 2017 (perturbed GD, Algorithm 2): descent to "
                         "|grad f| <= g_thres, one kick uniform in the d-ball, deterministic escape along x1; "
                         "sgdsim.particles.theory.pgd_escape_steps_mean",
                  equation="E[escape step] = n0 + sum_{n>=0} P(|xi_1| < c_n), n0 = ceil(log(g_thres/R)/log(1-lr)), "
                           "(xi_1/r)^2 ~ Beta(1/2,(d+1)/2), c_n the n-step preimage of the threshold",
                  attrs={"n0": n0, "asymptotic_slope": slope_asymptotic})
    writer.theory("pgd_escape_mean_curve",
                  np.array([n0 + theory.pgd_escape_steps_mean(lr, p["radius"], int(d), thr) for d in dense]),
                  coords={"d": dense}, source="as pgd_escape_mean, on a dense grid of d for the figure",
                  equation="E[escape step](d) = n0 + E[N(xi_1)]")
    writer.theory("pgd_escape_cdf", np.array(pgd_cdf), coords={"d": np.array(dims), "step": grid},
                  source="law of n0 + N(xi_1): sgdsim.particles.theory.saddle_escape_steps on a "
                         f"{QUANTILE_GRID}-point quantile grid of the ball coordinate",
                  equation="P(escape step <= n) = P(n0 + N(xi_1) <= n), (xi_1/r)^2 ~ Beta(1/2,(d+1)/2)")
    writer.theory("sgd_escape_mean", np.array(sgd_theory), coords={"d": np.array(dims)},
                  source="linearized escape of minibatch SGD (Ge, Huang, Jin & Yuan 2015): x1_n = (1+lr)^n U_n, "
                         "U_n -> U Gaussian, then the deterministic escape count from x1 = U (approximation)",
                  equation="E[N(U)], U ~ N(0, s^2), s^2 = lr^2 var(a_1) / B / ((1+lr)^2 - 1)",
                  attrs={"per_step_noise_std": per_step_noise})

    def column(method, key):
        return np.array([s[key] for s in stats[method]])

    pgd_mean, pgd_se = column("pgd", "mean"), column("pgd", "stderr")
    slope, slope_se = log_d_slope(dims, pgd_mean, pgd_se)
    slope_theory, _ = log_d_slope(dims, pgd_theory)
    metrics = dict(dims=np.array(dims), pgd_kick_step_theory=n0, gd_max_abs_x1_measured=gd_max_x1,
                   gd_max_abs_x1_theory=0.0, pgd_escape_mean_theory=np.array(pgd_theory),
                   sgd_escape_mean_theory=np.array(sgd_theory), pgd_second_kick_bound=np.array(second_kick),
                   pgd_log_d_slope_measured=slope, pgd_log_d_slope_stderr=slope_se,
                   pgd_log_d_slope_theory=slope_theory, pgd_log_d_slope_asymptotic=slope_asymptotic)
    for method in METHODS:
        metrics[f"{method}_escaped_fraction_measured"] = column(method, "fraction")
        if method != "gd":
            for key in ("mean", "stderr", "median", "q10", "q90"):
                name = {"mean": "escape_mean_measured", "stderr": "escape_mean_stderr"}.get(key, f"escape_{key}_measured")
                metrics[f"{method}_{name}"] = column(method, key)
    metrics["gd_escaped_fraction_theory"] = np.zeros(len(dims))
    writer.comparison(**metrics)
    writer.claims(*claims(
        dict(gd_max_abs_x1=gd_max_x1, sgd_fraction=column("sgd", "fraction"), sgd_mean=column("sgd", "mean"),
             sgd_stderr=column("sgd", "stderr"), pgd_mean=pgd_mean, pgd_stderr=pgd_se, pgd_slope=slope,
             pgd_slope_stderr=slope_se),
        dict(sgd_mean=np.array(sgd_theory), pgd_mean=np.array(pgd_theory), pgd_slope=slope_theory)))

    lines = [f"saddle-escape: f = x1^4/4 - x1^2/2 + |x_rest|^2/2, start x1 = 0, |x_rest| = {p['start_radius']:g}, "
             f"escape |x1| > {thr:g}; {m} particles per (method, d), lr {lr:g}, budget {budget} steps",
             f"  PGD r={p['radius']:g}, g_thres={p['gradient_threshold']:g}, interval={p['interval']}: "
             f"kick at step n0 = {n0} (first n with |x_rest| (1-lr)^n <= g_thres)",
             f"  SGD B={p['batch']} on {p['examples']} tilts of std {p['noise']:g}: per-step noise std "
             f"lr*noise/sqrt(B) = {per_step_noise:.3g}",
             f"  {'d':>5}  {'method':<6} {'escaped':>11}  {'mean +- SE':>16}  {'median':>6}  {'[10%, 90%]':>12}  theory"]
    for j, d in enumerate(dims):
        for method in METHODS:
            s = stats[method][j]
            head = f"  {d:>5}  {LABELS[method]:<6} {s['escaped']:>5}/{m:<5}"
            if not s["escaped"]:
                lines.append(f"{head}  never escaped within {budget} steps (x1 stays 0: the stable manifold)"
                             if method == "gd" else f"{head}  none escaped within {budget} steps")
                continue
            row = (f"{head}  {s['mean']:8.2f} +- {s['stderr']:5.2f}  {s['median']:6.0f}  "
                   f"[{s['q10']:4.0f}, {s['q90']:4.0f}]")
            if method == "pgd":
                z = (s["mean"] - pgd_theory[j]) / s["stderr"]
                row += f"  {pgd_theory[j]:7.2f} (exact; {z:+.1f} SE)"
            else:
                row += f"  {sgd_theory[j]:7.2f} (linearized)"
            if s["fraction"] < 1:
                row += "  [censored: raise steps]"
            lines.append(row)
    lines.append(f"  PGD slope d(mean)/d(log d): measured {slope:.2f} +- {slope_se:.2f}, exact theory {slope_theory:.2f}, "
                 f"asymptotic 1/(2 log(1+lr)) = {slope_asymptotic:.2f}")
    if max(second_kick) > 1e-3:
        lines.append(f"  warning: P(no escape within interval={p['interval']} steps of the kick) is up to "
                     f"{max(second_kick):.3g}: a second kick may come, and the single-kick theory overestimates")
    return "complete", "", lines


def plot(run, path):
    p = run.params
    dims = parse_list(p["dims"], int, 2)
    comp = run.comparison
    cdf = run.theory("pgd_escape_cdf")
    curve = run.theory("pgd_escape_mean_curve")
    n0 = int(run.theory("pgd_escape_mean").attrs["n0"])
    m = p["particles"]
    fig, (ax, ax_mean) = figure(2, width=6.2, title=f"escaping the strict saddle from its stable manifold: "
                                                       f"lr={p['lr']}, {m} particles per (method, d), seed {run.seed}")
    colors = __import__("matplotlib").colormaps["viridis"](np.linspace(0.05, 0.85, len(dims)))
    last = n0
    for c, d, theory_cdf in zip(colors, dims, cdf.value):
        for method, style in (("pgd", dict(lw=1.8)), ("sgd", dict(lw=1.0, ls=":"))):
            steps = np.sort(run.event(f"{method}_d{d}_first_passage").step)
            if len(steps):
                last = max(last, steps[-1])
                ax.step(np.concatenate([[0], steps]), np.arange(len(steps) + 1) / m, where="post", color=c,
                        label=f"d = {d}" if method == "pgd" else None, **style)
        ax.plot(cdf.coords["step"], theory_cdf, **(THEORY | dict(lw=1.0)))
    ax.plot([], [], label="PGD, exact theory", **(THEORY | dict(lw=1.0)))
    ax.plot([], [], color="grey", lw=1.0, ls=":", label="SGD (all d)")
    ax.axvline(n0, color="grey", lw=0.8, ls="-.")
    ax.text(n0, 0.5, f" PGD kick\n n0 = {n0}", fontsize=8, color="grey", va="center")
    gd_escaped = int(np.sum(comp["gd_escaped_fraction_measured"] * m))
    ax.text(0.98, 0.04, f"GD: {gd_escaped} of {m * len(dims)} escaped in {p['steps']} steps",
            transform=ax.transAxes, ha="right", fontsize=8)
    ax.set(xlabel="step n", ylabel="fraction escaped by step n", xlim=(0, 1.05 * last), ylim=(0, 1.02),
           title="escape-step distribution (PGD solid, SGD dotted)")
    ax.legend(fontsize=7, loc="center right")

    for method, marker, color in (("pgd", "o", "C0"), ("sgd", "s", "C1")):
        ax_mean.errorbar(dims, comp[f"{method}_escape_mean_measured"], yerr=comp[f"{method}_escape_mean_stderr"],
                         fmt=marker, color=color, ms=5, capsize=3, label=f"{LABELS[method]} measured (mean +- SE)",
                         zorder=3)
    ax_mean.plot(curve.coords["d"], curve.value, label="PGD theory n0 + E[N]", **THEORY)
    slope = comp["pgd_log_d_slope_asymptotic"]
    ref = comp["pgd_escape_mean_theory"][-1]
    ax_mean.plot(curve.coords["d"], ref + slope * np.log(curve.coords["d"] / dims[-1]), color="grey", lw=1.0,
                 ls=":", label=f"slope (1/2) log d / log(1+lr) = {slope:.2f}")
    ax_mean.plot(dims, comp["sgd_escape_mean_theory"], color="black", lw=1.0, ls="-.",
                 label="SGD linearized estimate")
    ax_mean.set_xscale("log")
    top = 1.25 * max(np.nanmax(comp["pgd_escape_mean_measured"]), np.nanmax(comp["pgd_escape_mean_theory"]))
    ax_mean.set_ylim(0, top)
    ax_mean.plot(dims, np.full(len(dims), 0.96 * top), "^", color="C3", ms=7, clip_on=False,
                 label=f"GD: never escapes (0 of {m} in {p['steps']} steps)")
    ax_mean.set(xlabel="dimension d", ylabel="mean escape step", title="mean escape step vs dimension")
    ax_mean.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return save(fig, path)


def _validate(p: dict) -> str | None:
    lr, thr = p["lr"], p["threshold"]
    if p["batch"] > p["examples"]:
        return f"batch {p['batch']} is larger than the data ({p['examples']} examples)"
    if p["radius"] >= thr:
        return (f"radius {p['radius']} must be below threshold {thr} (a kick alone must not escape; the theory "
                "counts steps from the kick)")
    if 3 * lr * thr ** 2 >= 1 + lr:
        return f"need 3 lr threshold^2 < 1 + lr (the x1 map increasing up to the threshold), got lr={lr}, threshold={thr}"
    if p["particles"] * max(parse_list(p["dims"], int, 2)) > MAX_VALUES:
        return (f"particles x largest dimension = {p['particles'] * max(parse_list(p['dims'], int, 2))} values exceeds "
                f"{MAX_VALUES}; lower particles or dims")
    return None


def _open_unit(value) -> str | None:
    return None if 0 < value < 1 else "must be in (0, 1)"


SCENARIO = Scenario(
    name="saddle-escape",
    summary="GD, SGD and perturbed GD from the stable manifold of a strict saddle: escape steps vs dimension "
            "(log d for PGD, Jin et al. 2017)",
    params=(
        Param("dims", str, "2,8,32,128,512", "comma-separated dimensions d >= 2 (sorted, duplicates dropped)",
              list_check(int, 2)),
        Param("particles", int, 2000, "particles per (method, d)", at_least(2)),
        Param("lr", float, 0.1, "learning rate, in (0, 1)", _open_unit),
        Param("steps", int, 300, "step budget per (method, d); GD always uses all of it", at_least(1)),
        Param("threshold", float, 0.5, "escape when |x1| exceeds this, in (0, 1)", _open_unit),
        Param("start_radius", float, 1.0, "|x_rest| at the start (x1 = 0)", positive),
        Param("radius", float, 0.1, "PGD perturbation radius r (below threshold)", positive),
        Param("gradient_threshold", float, 0.01, "PGD perturbs when |grad f| <= this", positive),
        Param("interval", int, 200, "PGD steps between perturbations at least (t_thres)", at_least(1)),
        Param("noise", float, 0.1, "SGD: standard deviation of the tilts a_i per coordinate", positive),
        Param("batch", int, 1, "SGD minibatch size B (with replacement)", at_least(1)),
        Param("examples", int, 256, "SGD: number of examples N (tilts a_i)", at_least(2)),
        Param("record_every", int, 100, "steps between checks that every particle escaped (stop early)",
              at_least(1)),
    ),
    run=run,
    plot=plot,
    presets={"small": dict(dims="2,16,128", particles=500, record_every=150)},
    validate=_validate,
)
