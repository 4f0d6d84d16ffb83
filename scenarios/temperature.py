"""temperature: the stationary covariance of minibatch SGD on least squares, over a grid of learning rates
and batch sizes, against three predictions of increasing completeness.

f(x) = (1/N) sum_i (a_i . x - b_i)^2 / 2 has H = A^T A / N, a minimiser x* with residuals r_i = a_i . x* - b_i
that are not all zero (noisy targets), and per-example gradient covariance C = (1/N) sum_i r_i^2 a_i a_i^T at
x*. One SGD step is exactly linear in e = x - x*: e' = (I - lr H_B) e - lr g_B, with H_B and g_B the minibatch
means of a_i a_i^T and a_i r_i. With C_B = C drawing the batch with replacement, or C (N - B)/(N - 1)
without (finite-population correction), the stationary covariance Sigma of e is predicted by
  1. continuous: H Sigma + Sigma H = (lr / B) C_B, SGD as an Ornstein-Uhlenbeck process at the "SGD
     temperature" lr / (2B) (Mandt, Hoffman & Blei 2017, sec. 3); tr Sigma depends on lr / B only;
  2. discrete: Sigma = (I - lr H) Sigma (I - lr H) + (lr^2 / B) C_B, the same additive noise in exact
     discrete time: the lr^2 correction H Sigma H (Yaida 2019; Liu, Ziyin & Ueda 2021);
  3. exact: adds the multiplicative noise of the random H_B,
     lr^2 k [(1/N) sum_i (a_i^T Sigma a_i) a_i a_i^T - H Sigma H], k = 1/B or (N - B)/(B (N - 1))
     (Liu, Ziyin & Ueda 2021, "Noise and fluctuation of finite learning rate SGD"; Ziyin, Liu, Mori &
     Ueda 2022). It grows like lr^2 / B and moves the stability edge from GD's 2 / h_max down to lr_c(B),
     found here by bisection on the exact prediction and drawn in the figure.

Measurement: every particle starts at x* and runs n = burn_in * tau steps, tau = -1 / ln rho_2 the
relaxation time of the covariance (rho_2 the spectral radius of the exact second-moment map of the step,
about 1 - 2 lr h_min away from the edge), so the bias left is of order exp(-burn_in). The final cloud is M
independent samples: covariance (ddof 1) and the standard error of each entry from the spread of the products.

Heavy tails: with multiplicative noise the stationary law has power-law tails (Kesten 1973; Gurbuzbalaban,
Simsekli & Zhu 2021; Hodgkinson & Mahoney 2021). Below lr_c but above a fourth-moment edge, Sigma is finite
while E|e|^4 is not, and a standard error (which needs the fourth moment) means nothing. The scenario computes
the fourth-moment map of the step exactly (E|e|^4 < inf iff its spectral radius rho_4 < 1) and marks those
points: their z-scores are evidence neither way.

Claims (`claims`): the exact prediction holds for the trace and every covariance entry at each point with a
finite fourth moment (familywise |z| bound); the discrete and continuous Lyapunov predictions are expected to
fail wherever the exact theory puts them resolvably far (more than the bound + 3 of the standard errors it
predicts) from the truth, as at the defaults and the small preset, and to hold otherwise.

Data (from the seed): Gaussian features orthogonalised so that H has the eigenvalues geomspace(1, 1/condition)
exactly, in a random basis; targets b = A w + noise * standard normal.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from tqdm import tqdm

from sgdsim.particles import theory
from sgdsim.compare.claims import Claim, familywise_z
from sgdsim.particles.minibatch_moments import moment_map, spectral_radius, stability_edge
from sgdsim.particles.dynamics import SGD
from sgdsim.errors import ParameterError
from sgdsim.particles.landscapes import Regression
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, list_check, parse_list, positive
from sgdsim.particles.simulate import Recorder, simulate

MAX_STEPS = 100_000   # per grid point; a point that would need more is run this long and marked
CURVE_POINTS = 90     # learning rates of the drawn theory curves
PREDICTIONS = ("continuous", "discrete", "exact")
SOURCES = {
    "continuous": ("Mandt, Hoffman & Blei 2017, 'Stochastic gradient descent as approximate Bayesian inference', "
                   "sec. 3 (OU approximation)", "H S + S H = (lr / B) C_B"),
    "discrete": ("Yaida 2019; Liu, Ziyin & Ueda 2021 (additive minibatch noise, exact discrete time)",
                 "S = (I - lr H) S (I - lr H) + (lr^2 / B) C_B"),
    "exact": ("Liu, Ziyin & Ueda 2021, 'Noise and fluctuation of finite learning rate SGD'; Ziyin, Liu, Mori & "
              "Ueda 2022 (additive and multiplicative minibatch noise)",
              "S = (I - lr H) S (I - lr H) + lr^2 k [(1/N) sum_i (a_i^T S a_i) a_i a_i^T - H S H + C], "
              "k = 1/B (replace) or (N - B)/(B (N - 1))"),
}
FALSE_ALARM = 0.01     # familywise probability that a true prediction fails its z claim
RESOLVED = 3.0         # an approximation is expected to fail when the exact theory puts it this many SE past the bound
NOISE_NOTE = "C_B = C with replacement, C (N - B)/(N - 1) without; C = (1/N) sum_i r_i^2 a_i a_i^T at x*"


# --------------------------------------------------------------------------------------------- parameters


def _validate(p: dict) -> str | None:
    if p["examples"] <= p["dim"]:
        return f"examples ({p['examples']}) must exceed dim ({p['dim']}) so the residuals at x* are not zero"
    too_big = [b for b in parse_list(p["batches"], int, 1) if b > p["examples"]]
    if too_big:
        return f"batches: batch {too_big[0]} is larger than the data ({p['examples']} examples)"
    return None


# --------------------------------------------------------------------------------------------- data and theory


def make_data(examples: int, dim: int, condition: float, noise: float, seed: int):
    """Features A (N, d) with A^T A / N = V diag(geomspace(1, 1/condition)) V^T exactly (V a random rotation),
    targets b = A w + noise * z."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    h = np.geomspace(1.0, 1.0 / condition, dim)
    q, _ = np.linalg.qr(rng.standard_normal((examples, dim)))
    v, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    A = np.sqrt(examples) * (q * np.sqrt(h)) @ v.T
    b = A @ rng.standard_normal(dim) + noise * rng.standard_normal(examples)
    return A, b


def noise_factor(n: int, batch: int, replace: bool) -> float:
    """C_B / C: 1 with replacement, the finite-population correction (N - B)/(N - 1) without."""
    return 1.0 if replace else (n - batch) / (n - 1)


def predictions(A, b, H, C, lr, batch, replace) -> dict:
    """The three stationary covariances; NaN where a prediction has none (the exact one past lr_c(B), the
    discrete one past GD's 2 / h_max)."""
    CB = C * noise_factor(len(b), batch, replace)
    out = {}
    for k, solve in (("continuous", lambda: theory.lyapunov_continuous(H, CB, lr, batch)),
                     ("discrete", lambda: theory.lyapunov_discrete(H, CB, lr, batch)),
                     ("exact", lambda: theory.sgd_stationary_covariance(A, b, lr, batch, replace))):
        try:
            out[k] = solve()
        except ParameterError:
            out[k] = np.full_like(H, np.nan)
    return out


def _point_seed(seed: int, index: int) -> int:
    state = np.random.SeedSequence(seed, spawn_key=(index,)).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def _measure(e: np.ndarray):
    """Covariance (ddof 1) of the samples e (M, d), its standard error per entry, the trace and its SE."""
    m = len(e)
    c = e - e.mean(axis=0)
    products = c[:, :, None] * c[:, None, :]
    cov = products.sum(axis=0) / (m - 1)
    se = products.std(axis=0, ddof=1) / np.sqrt(m)
    q = np.einsum("ij,ij->i", c, c)
    return cov, se, float(q.sum() / (m - 1)), float(q.std(ddof=1) / np.sqrt(m))


def _zscore(diff, se):
    """diff / se; 0 where both vanish (no noise: B = N without replacement); NaN at skipped points."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.where(diff == 0, 0.0, np.inf))
    return np.where(np.isnan(diff) | np.isnan(se), np.nan, z)


# --------------------------------------------------------------------------------------------- claims


def claims(measured: dict, theory: dict) -> list[Claim]:
    """The claims of one run. measured: "trace", "trace_se" (grid), "cov", "cov_se" (grid x d x d), "usable"
    (grid mask: measured and E|e|^4 finite, so a standard error exists); theory: "trace" and "cov" per
    prediction (continuous, discrete, exact), and "trace_se" (grid): the standard error the exact theory
    predicts for the measured trace, sqrt(2 tr(S^2) / M) for Gaussian fluctuations of M particles.

    exact_trace, exact_covariance: the exact prediction (Liu, Ziyin & Ueda 2021) holds at every usable point,
    |z| within the familywise bound (false alarm FALSE_ALARM). continuous_trace, discrete_trace: the same test
    for the approximations, expected to fail where the exact theory puts one of them more than the bound +
    RESOLVED predicted standard errors away at some usable point (decided from theory, before measuring), and
    to hold otherwise."""
    use = measured["usable"]
    n = int(use.sum())
    bound = familywise_z(max(n, 1), FALSE_ALARM)
    d = measured["cov"].shape[-1]
    upper = np.triu_indices(d)
    cov_m = measured["cov"][use][:, upper[0], upper[1]]
    cov_bound = familywise_z(max(cov_m.size, 1), FALSE_ALARM)
    out = [Claim(name="exact_trace", test="z", tolerance=bound, measured=measured["trace"][use],
                 predicted=theory["trace"]["exact"][use], stderr=measured["trace_se"][use],
                 statement="tr of the stationary covariance equals the exact prediction (additive and "
                           "multiplicative minibatch noise) at every point with a finite fourth moment",
                 source=SOURCES["exact"][0]),
           Claim(name="exact_covariance", test="z", tolerance=cov_bound, measured=cov_m,
                 predicted=theory["cov"]["exact"][use][:, upper[0], upper[1]],
                 stderr=measured["cov_se"][use][:, upper[0], upper[1]],
                 statement="every entry of the stationary covariance equals the exact prediction",
                 source=SOURCES["exact"][0])]
    for k in ("discrete", "continuous"):
        gap = np.abs(theory["trace"]["exact"][use] - theory["trace"][k][use]) / theory["trace_se"][use]
        resolved = bool(n and np.max(gap) > bound + RESOLVED)
        why = (f"expected to fail: the exact theory puts it {np.max(gap):.0f} predicted SE away at some point"
               if resolved else "expected to hold: the exact theory puts it within the resolution")
        out.append(Claim(name=f"{k}_trace", test="z", tolerance=bound, measured=measured["trace"][use],
                         predicted=theory["trace"][k][use], stderr=measured["trace_se"][use],
                         expected="fails" if resolved else "holds",
                         statement=f"tr of the stationary covariance equals the {k} Lyapunov prediction at every "
                                   f"point ({why})",
                         source=SOURCES[k][0]))
    return out


# --------------------------------------------------------------------------------------------- run


def run(p: dict, seed: int, writer, progress: bool):
    lrs = np.array(parse_list(p["lrs"], float, 0))
    batches = np.array(parse_list(p["batches"], int, 1), dtype=np.int64)
    n, d, m, replace = p["examples"], p["dim"], p["particles"], p["replace"]
    A, b = make_data(n, d, p["condition"], p["noise"], seed)
    landscape = Regression(A, b)
    mom = theory.least_squares_moments(A, b)
    H, C, x_star = mom.hessian, mom.noise_covariance, mom.x_star
    h = np.linalg.eigvalsh(H)

    shape = (len(lrs), len(batches))
    nan = lambda *extra: np.full(shape + extra, np.nan)  # noqa: E731
    cov_m, cov_se, tr_m, tr_se = nan(d, d), nan(d, d), nan(), nan()
    cov_t = {k: nan(d, d) for k in PREDICTIONS}
    rho2, rho4 = nan(), nan()
    steps = np.zeros(shape, dtype=np.int64)
    unstable, heavy, capped = [], [], []
    edges = np.array([stability_edge(A, b, int(B), replace, hi=2.0 / h.max()) for B in batches])

    grid = list(itertools.product(range(len(lrs)), range(len(batches))))
    bar = tqdm(grid, disable=None if progress else True, delay=1.0, unit="point", leave=False)
    for index, (i, j) in enumerate(bar):
        lr, B = float(lrs[i]), int(batches[j])
        pred = predictions(A, b, H, C, lr, B, replace)
        radius = spectral_radius(moment_map(A, lr, B, replace, 2))
        if np.isnan(pred["exact"]).any() or radius >= 1:  # sgd_stationary_covariance raised: unstable here
            unstable.append((lr, B))
            continue
        for k in PREDICTIONS:
            cov_t[k][i, j] = pred[k]
        rho2[i, j] = radius
        rho4[i, j] = spectral_radius(moment_map(A, lr, B, replace, 4))
        if rho4[i, j] >= 1:
            heavy.append((lr, B))
        need = math.ceil(p["burn_in"] / -math.log(rho2[i, j])) if rho2[i, j] > 0 else 1
        steps[i, j] = min(max(need, 1), MAX_STEPS)
        if need > MAX_STEPS:
            capped.append((lr, B))
        out = simulate(landscape, SGD(lr=lr, batch=B, replace=replace), np.tile(x_star, (m, 1)),
                       n_steps=int(steps[i, j]), seed=_point_seed(seed, index),
                       recorder=Recorder(every=int(steps[i, j]), mean=False, covariance=False, loss=False),
                       writer=None, progress=False)
        if out.status != "complete":
            return out.status, f"lr={lr:g}, B={B}: {out.message}", [f"temperature: stopped at lr={lr:g}, B={B}"]
        cov_m[i, j], cov_se[i, j], tr_m[i, j], tr_se[i, j] = _measure(out.positions - x_star)

    tr_t = {k: np.trace(v, axis1=2, axis2=3) for k, v in cov_t.items()}
    z = {k: _zscore(tr_m - tr_t[k], tr_se) for k in PREDICTIONS}
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = {k: np.abs(tr_m - tr_t[k]) / tr_t[k] for k in PREDICTIONS}
    z_cov = _zscore(cov_m - cov_t["exact"], cov_se)

    # curves for the figure: every prediction on a fine lr grid, per batch size
    lr_fine = np.geomspace(lrs.min() / 1.5, min(lrs.max() * 2.0, 2.0 / h.max()), CURVE_POINTS)
    curves = {k: np.full((len(batches), CURVE_POINTS), np.nan) for k in PREDICTIONS}
    for j, B in enumerate(batches):
        for q, lr in enumerate(lr_fine):
            pred = predictions(A, b, H, C, float(lr), int(B), replace)
            for k in PREDICTIONS:
                curves[k][j, q] = np.trace(pred[k])

    _write(writer, p, lrs, batches, steps, A, b, mom, h, edges, rho2, rho4, lr_fine, curves,
           tr_m, tr_se, cov_m, cov_se, tr_t, cov_t)
    measured = np.isfinite(tr_m)
    some = bool(measured.any())
    big = lambda a: float(np.nanmax(np.abs(np.where(measured, a, np.nan)))) if some else float("nan")  # noqa: E731
    metrics = {f"trace_zscore_{k}_max": big(z[k]) for k in PREDICTIONS}
    metrics |= {f"trace_rel_error_{k}_max": big(rel[k]) for k in PREDICTIONS}
    metrics |= dict(covariance_zscore_exact_max=float(np.nanmax(np.abs(z_cov))) if some else float("nan"),
                    points_measured=int(measured.sum()), points_unstable=len(unstable),
                    points_heavy_tailed=len(heavy), points_burn_in_capped=len(capped),
                    unstable=_pairs(unstable), heavy_tailed=_pairs(heavy), burn_in_capped=_pairs(capped))
    writer.comparison(**metrics)
    usable = measured & (rho4 < 1)
    with np.errstate(invalid="ignore"):
        se_pred = np.sqrt(2 * np.einsum("...ij,...ji->...", cov_t["exact"], cov_t["exact"]) / m)
    made = claims({"trace": tr_m, "trace_se": tr_se, "cov": cov_m, "cov_se": cov_se, "usable": usable},
                  {"trace": tr_t, "cov": cov_t, "trace_se": se_pred})
    writer.claims(*made)

    lines = [f"temperature: SGD on least squares, N={n}, d={d}, H eigenvalues {h.max():.3g} .. {h.min():.3g}, "
             f"noise {p['noise']:g}; {m} particles per point, batches drawn "
             f"{'with' if replace else 'without'} replacement",
             (f"  each point ran {p['burn_in']:g} covariance relaxation times ({steps[measured].min()} .. "
              f"{steps.max()} steps) from x*; tr Sigma of the final cloud +- SE" if some else
              "  no grid point is stable: nothing to measure"),
             f"  {'lr':>8} {'B':>4} {'lr/lr_c':>7}  {'measured +- SE':>21}  {'exact':>10} {'discrete':>10} "
             f"{'continuous':>10}  {'z(exact)':>8}"]
    for i, j in grid:
        lr, B = lrs[i], int(batches[j])
        head = f"  {lr:8.4g} {B:4d} {lr / edges[j]:7.2f}  "
        if not measured[i, j]:
            lines.append(head + "skipped: SGD is unstable here (no stationary covariance)")
            continue
        mark = "  heavy tail" if rho4[i, j] >= 1 else ""
        mark += "  burn-in capped" if (lr, B) in capped else ""
        lines.append(head + f"{f'{tr_m[i, j]:.4g} +- {tr_se[i, j]:.2g}':>21}  {tr_t['exact'][i, j]:10.4g} "
                            f"{tr_t['discrete'][i, j]:10.4g} {tr_t['continuous'][i, j]:10.4g}  "
                            f"{z['exact'][i, j]:8.2f}{mark}")
    lines.append("  stability edge lr_c(B): " + ", ".join(f"B={B}: {e:.3g}" for B, e in zip(batches, edges))
                 + f"   (GD: 2/h_max = {2 / h.max():.3g})")
    if unstable:
        lines.append(f"  skipped {len(unstable)} unstable point(s): {_pairs(unstable)}")
    if heavy:
        lines.append(f"  heavy tail: E|e|^4 is infinite at {_pairs(heavy)}: the SE and z-score there mean nothing")
    if capped:
        lines.append(f"  burn-in capped at {MAX_STEPS} steps at {_pairs(capped)}: may not be stationary")
    if some:
        z_max = ", ".join(f"{k} {metrics[f'trace_zscore_{k}_max']:.3g}" for k in PREDICTIONS[::-1])
        rel_max = ", ".join(f"{k} {metrics[f'trace_rel_error_{k}_max']:.2%}" for k in PREDICTIONS[::-1])
        lines.append(f"  max |z| of the trace: {z_max};  max relative error: {rel_max}")
    return "complete", "", lines


def _pairs(points) -> str:
    return "; ".join(f"lr={lr:g} B={B}" for lr, B in points) or "none"


def _write(writer, p, lrs, batches, steps, A, b, mom, h, edges, rho2, rho4, lr_fine, curves,
           tr_m, tr_se, cov_m, cov_se, tr_t, cov_t):
    grid = {"lr": lrs, "batch": batches}
    row = (int(steps.max()), float(p["burn_in"]))  # one row: the final clouds, after burn_in relaxation times
    common = {"time_unit": "covariance relaxation times (each point ran its own steps: /observables/steps)"}
    for name, value, shape, desc, dtype in (
            ("trace_measured", tr_m, tr_m.shape, "tr of the covariance of the final cloud (NaN: skipped)", float),
            ("trace_stderr", tr_se, tr_se.shape, "standard error of trace_measured", float),
            ("covariance_measured", cov_m, cov_m.shape, "covariance (ddof 1) of x - x* over the final cloud", float),
            ("covariance_stderr", cov_se, cov_se.shape, "standard error of each covariance entry", float),
            ("steps", steps, steps.shape, "SGD steps run at each grid point (0: skipped)", np.int64)):
        writer.element(name, shape, coords=grid, dtype=dtype, attrs={"description": desc, **common}).append(*row, value)
    data = {"hessian": mom.hessian, "noise_covariance": mom.noise_covariance, "x_star": mom.x_star,
            "features": A, "targets": b, "replace": p["replace"]}
    for k in PREDICTIONS:
        source, equation = SOURCES[k]
        writer.theory(f"trace_{k}", tr_t[k], coords=grid, source=source, equation=equation,
                      attrs={"noise": NOISE_NOTE, **(data if k == "exact" else {})})
        writer.theory(f"covariance_{k}", cov_t[k], coords=grid, source=source, equation=equation,
                      attrs={"noise": NOISE_NOTE})
        writer.theory(f"curve_{k}", curves[k], coords={"batch": batches, "lr": lr_fine}, source=source,
                      equation=f"tr S on a fine lr grid; {equation}")
    writer.theory("stability_edge", edges, coords={"batch": batches},
                  source="bisection on the exact prediction (Liu, Ziyin & Ueda 2021)",
                  equation="lr_c(B) = sup{lr : spectral radius of the second-moment map < 1}",
                  attrs={"gd_edge": 2.0 / h.max()})
    writer.theory("moment_radius", np.stack([rho2, rho4], axis=-1), coords=grid,
                  source="exact second- and fourth-moment maps of one SGD step (this scenario's moment_map); "
                         "heavy tails: Kesten 1973, Gurbuzbalaban, Simsekli & Zhu 2021",
                  equation="rho_p = spectral radius of E[(I - lr H_B)^(x p)] on symmetric tensors; p = 2, 4",
                  attrs={"order": np.array([2, 4])})


# --------------------------------------------------------------------------------------------- figure


def plot(run, path):
    import matplotlib.lines as mlines

    tr = run.element("trace_measured")
    lrs, batches = tr.coords["lr"], tr.coords["batch"]
    tr_m, tr_se = tr.value[0], run.element("trace_stderr").value[0]
    t = {k: run.theory(f"trace_{k}").value for k in PREDICTIONS}
    curve = {k: run.theory(f"curve_{k}") for k in PREDICTIONS}
    lr_fine = curve["exact"].coords["lr"]
    edges = run.theory("stability_edge").value
    heavy = run.theory("moment_radius").value[..., 1] >= 1
    colors = [f"C{j % 10}" for j in range(len(batches))]
    params = run.params
    fig, (ax, ax_r) = figure(2, width=5.6, height=4.3, title=(
        f"Stationary covariance of SGD on least squares (N={params['examples']}, d={params['dim']}, "
        f"{params['particles']} particles per point, batches {'with' if params['replace'] else 'without'} "
        f"replacement, seed {run.seed})"))

    measured = np.isfinite(tr_m) & (tr_m > 0)
    for j, (B, c) in enumerate(zip(batches, colors)):
        x = lr_fine / B
        ax.plot(x, curve["exact"].value[j], color=c, lw=1.5)
        ax.plot(x, curve["discrete"].value[j], color=c, lw=1.2, ls=":")
        ax.plot(x, curve["continuous"].value[j], **THEORY, zorder=1)
        ok = measured[:, j]
        for mask, face in ((ok & ~heavy[:, j], c), (ok & heavy[:, j], "white")):
            if mask.any():
                ax.errorbar(lrs[mask] / B, tr_m[mask, j], yerr=tr_se[mask, j], fmt="o", ms=5, color=c,
                            mfc=face, capsize=2, zorder=3)
    if measured.any():
        lo, hi = np.nanmin(tr_m[measured]), np.nanmax(tr_m[measured] + tr_se[measured])
        ax.set_ylim(lo / 2, hi * 2.5)
    ax.set(xscale="log", yscale="log", xlabel="lr / B", ylabel="tr $\\Sigma$  (stationary covariance)",
           title="measured trace vs the three predictions")
    styles = [mlines.Line2D([], [], **THEORY, label="continuous Lyapunov (Mandt et al. 2017)"),
              mlines.Line2D([], [], color="grey", lw=1.2, ls=":", label="discrete, + lr$^2$ term"),
              mlines.Line2D([], [], color="grey", lw=1.5, label="exact, + multiplicative noise (Liu et al. 2021)")]
    markers = [mlines.Line2D([], [], color=c, marker="o", ls="", label=f"measured, B = {B}")
               for B, c in zip(batches, colors)]
    if (measured & heavy).any():
        markers.append(mlines.Line2D([], [], color="grey", marker="o", mfc="white", ls="",
                                     label="E|e|$^4$ = inf: SE unreliable"))
    first = ax.legend(handles=styles, fontsize=7.5, loc="upper left")
    ax.add_artist(first)
    ax.legend(handles=markers, fontsize=7.5, loc="lower right")

    # ratio to the continuous prediction: where the corrections matter
    with np.errstate(divide="ignore", invalid="ignore"):
        top = 1.0
        for j, (B, c) in enumerate(zip(batches, colors)):
            base = curve["continuous"].value[j]
            ax_r.plot(lr_fine, curve["exact"].value[j] / base, color=c, lw=1.5)
            ratio, err = tr_m[:, j] / t["continuous"][:, j], tr_se[:, j] / t["continuous"][:, j]
            ok = measured[:, j]
            for mask, face in ((ok & ~heavy[:, j], c), (ok & heavy[:, j], "white")):
                if mask.any():
                    ax_r.errorbar(lrs[mask], ratio[mask], yerr=err[mask], fmt="o", ms=5, color=c, mfc=face,
                                  capsize=2, zorder=3)
                    top = max(top, float(np.max(ratio[mask] + err[mask])))
            if edges[j] <= lr_fine[-1]:
                ax_r.axvline(edges[j], color=c, lw=0.9, ls="-.", alpha=0.8)
                ax_r.text(edges[j], 0.97, f" lr$_c$(B={B})", color=c, fontsize=7, rotation=90, va="top",
                          ha="right", transform=ax_r.get_xaxis_transform())
        ax_r.plot(lr_fine, curve["discrete"].value[0] / curve["continuous"].value[0], color="grey", lw=1.2,
                  ls=":", label="discrete / continuous (same for every B)")
    ax_r.axhline(1.0, **THEORY, label="continuous (Mandt et al. 2017)")
    ax_r.plot([], [], color="grey", lw=1.5, label="exact / continuous (one per B)")
    ax_r.set(xscale="log", ylim=(0.9, 1.0 + 1.3 * (top - 1.0) if top > 1.05 else 1.3), xlabel="learning rate lr",
             ylabel="tr $\\Sigma$ / continuous prediction",
             title="where the lr$^2$ and multiplicative corrections matter")
    skipped = ~np.isfinite(tr_m)
    if skipped.any():
        ax_r.text(0.02, 0.02, "skipped (unstable): " + ", ".join(
            f"lr={lrs[i]:g} B={batches[j]}" for i, j in zip(*np.nonzero(skipped))), fontsize=7,
            transform=ax_r.transAxes, color="dimgrey")
    ax_r.legend(fontsize=7.5, loc="upper left")
    return save(fig, path)


SCENARIO = Scenario(
    name="temperature",
    summary="stationary covariance of minibatch SGD on least squares over (lr, B) vs continuous, discrete "
            "and exact (multiplicative-noise) Lyapunov predictions",
    params=(
        Param("particles", int, 20000, "independent SGD chains per grid point", at_least(2)),
        Param("lrs", str, "0.05,0.1,0.2,0.4,0.8", "learning rates, comma-separated positive numbers",
              list_check(float)),
        Param("batches", str, "1,4,16", "batch sizes, comma-separated integers in [1, examples]",
              list_check(int)),
        Param("replace", bool, True, "draw each minibatch with replacement (else B distinct examples)"),
        Param("examples", int, 64, "number of examples N", at_least(2)),
        Param("dim", int, 2, "number of features d (1 to 5; the fourth-moment check is d^4 x d^4)",
              lambda v: None if 1 <= v <= 5 else "must be between 1 and 5"),
        Param("condition", float, 4.0, "condition number h_max / h_min of the Hessian", at_least(1.0)),
        Param("noise", float, 0.5, "standard deviation of the target noise (residuals at x*)", positive),
        Param("burn_in", float, 8.0, "steps per point, in covariance relaxation times -1/ln(rho_2) "
                                     "(about 1/(2 lr h_min)); the bias left is ~exp(-burn_in)", positive),
    ),
    run=run,
    plot=plot,
    presets={"small": dict(particles=6000, lrs="0.1,0.3,1", batches="1,16", burn_in=6.0)},
    validate=_validate,
)
