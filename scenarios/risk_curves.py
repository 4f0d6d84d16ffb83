"""risk-curves: minibatch SGD on high-dimensional least squares with a power-law spectrum against the Volterra
equation for its risk (Paquette, Lee, Pedregosa & Paquette, COLT 2021; Paquette, Paquette, Adlam & Pennington
2022), its power-law exponent (Paquette, Paquette, Xiao & Pennington, NeurIPS 2024) and its critical step size.

Data: n examples in d dimensions with the exact spectrum A^T A / n = diag(j^-alpha) (orthogonal design,
`highdim.risk.orthogonal_design`), target x*_j = j^-beta, labels b = A x* (no noise). A cloud of SGD chains
(the particle engine: B examples drawn with replacement per step, from x = 0) is recorded at log-spaced
steps; the risk f(x) = (1/2)(x - x*)^T diag(lambda)(x - x*) (mean +- SE over chains) is held against the
discrete Volterra equation R_k = F_k + sum_{s<k} K_{k-1-s} R_s (exact for online Gaussian data, the
high-dimensional limit here). Time t = step x lr where continuous time is meant. The fitted exponent of the
measured risk over [fit_lo, fit_hi] steps is held against -min(alpha + 2 beta - 1, 2 alpha - 1) / alpha.

The critical step size lr_c (kernel norm sum_m K_m = 1) bounds the *expected* risk. For alpha = 2 it is set by
the top mode (lambda_1 = 1 against tr H = 1.64): just above it E[R] diverges through rare chains (heavy tails,
as in Kesten's theorem) while typical chains still converge, so a mean over a few chains cannot show it
(measured at d = 500: 8 chains at 1.1 lr_c cut their mean risk 50-fold in 300 steps while the Volterra
solution grew 10^9-fold). The high-dimensional limit behind the Volterra equation needs tr H >> lambda_max
near lr_c, so the stability runs use a bulk spectrum lambda_j = j^-critical_alpha (default 0.5; lr_c ~ 2B /
tr H) on the same d, n and target, just below and just above lr_c.

Claims (`claims`): the risk within the family-wise 3-sigma band of the Volterra solution at every recorded
step; the exponent within 0.05; every stability run below lr_c ends below its initial risk, every run above
it above; the final risk of the stability runs within 3 SE (family-wise) of the Volterra solution.
"""
from __future__ import annotations

import numpy as np

from sgdsim.highdim import risk as hr
from sgdsim.compare.claims import Claim, familywise_z
from sgdsim.errors import ParameterError
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, list_check, parse_list, positive
from sgdsim.runloop import Schedule, record_steps_array

EXPONENT_TOLERANCE = 0.05         # the "within 0.05 of theory"
FAMILY_ALPHA = 0.0027             # family-wise 3-sigma level over all recorded steps


def claims(measured: dict, theory: dict) -> list[Claim]:
    """Claims from measured {risk_mean, risk_se (T,), exponent, growth: {lr: log10 growth of the mean risk},
    stability_mean, stability_se (one per stability run)} and theory {risk (T,), exponent, critical_lr (of the
    stability spectrum), stability (Volterra risk at the end of each stability run)}."""
    n = len(measured["risk_mean"])
    z = familywise_z(n, FAMILY_ALPHA)
    growth = measured["growth"]
    below = [g for lr, g in growth.items() if lr < theory["critical_lr"]]
    above = [g for lr, g in growth.items() if lr > theory["critical_lr"]]
    stable = np.flatnonzero(np.asarray(measured["stability_lrs"]) < theory["critical_lr"])
    return [
        Claim(name="risk_curve",
              statement=f"SGD risk (mean over chains) equals the Volterra solution at all {n} recorded steps "
                        f"(|z| <= {z:.2f}: family-wise 3 sigma)",
              measured=measured["risk_mean"], predicted=theory["risk"], stderr=measured["risk_se"], test="z",
              tolerance=z, source=hr.SOURCE),
        Claim(name="risk_exponent",
              statement=f"fitted exponent of the SGD risk in t equals -min(alpha + 2 beta - 1, 2 alpha - 1)/alpha "
                        f"(within {EXPONENT_TOLERANCE})",
              measured=measured["exponent"], predicted=theory["exponent"], test="abs", tolerance=EXPONENT_TOLERANCE,
              source=hr.EXPONENT_SOURCE),
        Claim(name="converges_below_critical",
              statement=f"every run with lr below lr_c = {theory['critical_lr']:.4g} ends below its initial risk "
                        "(log10 growth < 0)",
              measured=max(below) if below else np.nan, predicted=0.0, test="less", source=hr.SOURCE),
        Claim(name="diverges_above_critical",
              statement=f"every run with lr above lr_c = {theory['critical_lr']:.4g} ends above its initial risk "
                        "(log10 growth > 0)",
              measured=min(above) if above else np.nan, predicted=0.0, test="greater", source=hr.SOURCE),
        Claim(name="stability_risk",
              statement="final risk of each stability run below lr_c equals the Volterra solution "
                        f"(|z| <= {familywise_z(max(len(stable), 1), FAMILY_ALPHA):.2f}); above lr_c the mean of the "
                        "chains is carried by rare ones and by the design's fourth moments, which the Gaussian "
                        "kernel does not hold, so there only the growth is claimed",
              measured=measured["stability_mean"][stable], predicted=theory["stability"][stable],
              stderr=measured["stability_se"][stable], test="z",
              tolerance=familywise_z(max(len(stable), 1), FAMILY_ALPHA), source=hr.SOURCE),
    ]


def record_steps(steps: int, records: int) -> np.ndarray:
    """0 and about `records` log-spaced steps in [1, steps]."""
    return record_steps_array(Schedule(log_points=records), steps)


def measure(steps, lr: float, risk, fit: tuple[int, int], lr_factors, lr_c: float, finals, initial: float) -> dict:
    """The measured side of the claims from the recorded risks: risk (T, chains) at `steps` (step 0 left out:
    every chain starts at x = 0), the exponent fitted over steps `fit`, and for the stability runs at
    lr_factors x lr_c their final risks finals (runs, chains) against the common initial risk."""
    steps, risk, finals = np.asarray(steps), np.asarray(risk, float), np.asarray(finals, float)
    k = steps > 0
    mean, se = risk.mean(axis=1), risk.std(axis=1, ddof=1) / np.sqrt(risk.shape[1])
    slope, _ = hr.fit_exponent(steps * lr, mean, fit[0] * lr, fit[1] * lr)
    return dict(risk_mean=mean[k], risk_se=se[k], exponent=slope,
                growth={f * lr_c: float(np.log10(np.mean(r) / initial)) for f, r in zip(lr_factors, finals)},
                stability_mean=finals.mean(axis=1), stability_se=finals.std(axis=1, ddof=1) / np.sqrt(finals.shape[1]),
                stability_lrs=np.asarray(lr_factors, float) * lr_c)


def from_run(run) -> tuple[dict, dict]:
    """(measured, predicted) of `claims` rebuilt from a run file alone."""
    p, c = run.params, run.comparison
    el, st = run.element("risk"), run.element("stability_risk")
    initial = 0.5 * float(np.sum(hr.power_law(p["d"], p["critical_alpha"], p["beta"])[0]
                                 * hr.power_law(p["d"], p["alpha"], p["beta"])[1] ** 2))
    measured = measure(el.step, c["lr"], el.value, (p["fit_lo"], p["fit_hi"]), st.coords["lr_factor"],
                       c["critical_lr"], st.value[0], initial)
    predicted = dict(risk=run.theory("risk").value[el.step > 0], exponent=c["exponent_theory"],
                     critical_lr=c["critical_lr"], stability=run.theory("stability_risk").value)
    return measured, predicted


def run(p: dict, seed: int, writer, progress: bool):
    d, n, B, P = p["d"], p["n"], p["batch"], p["particles"]
    if n < d:
        raise ParameterError(f"n ({n}) must be at least d ({d}): the design needs orthonormal columns")
    lam, xstar = hr.power_law(d, p["alpha"], p["beta"])
    exponent = hr.risk_exponent(p["alpha"], p["beta"])
    lr = p["lr_fraction"] * hr.critical_lr(lam, B)
    lam_c, _ = hr.power_law(d, p["critical_alpha"], p["beta"])
    lr_c = hr.critical_lr(lam_c, B)
    factors = parse_list(p["critical_factors"], float, 0)
    steps = record_steps(p["steps"], p["records"])
    A, b = hr.orthogonal_design(lam, xstar, n, seed)
    A_c, b_c = hr.orthogonal_design(lam_c, xstar, n, seed + 1)
    time = steps * lr
    streamed = writer.element("risk", (P,), coords={"particle": np.arange(P)},
                              attrs={"description": "(1/2)(x - x*)^T H (x - x*) of each SGD chain",
                                     "time_unit": "t = step x lr"})

    def stream(step, r):        # each record reaches the run file as it is taken
        streamed.append(int(step), float(step * lr), r)
        writer.flush()

    risk, status, message = hr.simulate_risk(A, b, lam, xstar, lr=lr, batch=B, particles=P, record_steps=steps,
                                             seed=seed, progress=progress, on_record=stream)
    if status != "complete":
        return status, f"the main run at lr = {lr:.4g}: {message}", [f"risk-curves: {message}"]
    finals, stability = [], []
    for f in factors:
        r, status, message = hr.simulate_risk(A_c, b_c, lam_c, xstar, lr=f * lr_c, batch=B,
                                              particles=p["critical_particles"],
                                              record_steps=[0, p["critical_steps"]], seed=seed + 1,
                                              progress=progress)
        if status == "interrupted":
            return status, f"the stability run at lr = {f:g} x lr_c: {message}", [f"risk-curves: {message}"]
        finals.append(r[-1])
        stability.append(hr.risk_curve(lam_c, xstar ** 2, lr=f * lr_c, batch=B, steps=p["critical_steps"])[-1])
    theory = hr.risk_curve(lam, xstar ** 2, lr=lr, batch=B, steps=p["steps"])[steps]
    t_c, R_c = hr.risk_curve_continuous(lam, xstar ** 2, lr=lr, batch=B, t_max=p["steps"] * lr, h=lr)
    finals = np.array(finals)
    R0_c = 0.5 * float(np.sum(lam_c * xstar ** 2))
    measured = measure(steps, lr, risk, (p["fit_lo"], p["fit_hi"]), factors, lr_c, finals, R0_c)
    growth, slope = measured["growth"], measured["exponent"]
    mean, se = risk.mean(axis=1), risk.std(axis=1, ddof=1) / np.sqrt(P)
    theory_slope, _ = hr.fit_exponent(steps * lr, theory, p["fit_lo"] * lr, p["fit_hi"] * lr)
    k = steps > 0                                   # every chain starts at x = 0: no spread at step 0
    predicted = dict(risk=theory[k], exponent=exponent, critical_lr=lr_c, stability=np.array(stability))

    eq = "R_k = F_k + sum_{s<k} K_{k-1-s} R_s (sgdsim.solvers.highdim.volterra)"
    writer.theory("risk", theory, step=steps, time=time, source=hr.SOURCE, equation=eq)
    writer.theory("risk_continuous", R_c, step=np.arange(len(t_c)), time=t_c, source=hr.SOURCE,
                  equation="R(t) = F(t) + int_0^t K(t - s) R(s) ds (trapezoidal rule, h = lr)")
    writer.theory("spectrum", lam, source="power law", equation="lambda_j = j^-alpha",
                  coords={"mode": np.arange(1, d + 1)})
    el = writer.element("critical_growth", (len(factors),), coords={"lr_factor": np.asarray(factors)},
                        attrs={"description": "log10(mean risk at critical_steps / initial risk) at lr = factor x lr_c "
                                              "of the spectrum j^-critical_alpha", "critical_lr": lr_c})
    el.append(int(p["critical_steps"]), float(p["critical_steps"]), np.array([growth[f * lr_c] for f in factors]))
    writer.element("stability_risk", finals.shape, coords={"lr_factor": np.asarray(factors),
                                                          "particle": np.arange(finals.shape[1])},
                   attrs={"description": "risk of each chain at the end of each stability run"}
                   ).append(int(p["critical_steps"]), float(p["critical_steps"]), finals)
    writer.theory("stability_risk", np.array(stability), source=hr.SOURCE, equation=eq,
                  coords={"lr_factor": np.asarray(factors)})
    writer.theory("critical_growth", np.log10(np.array(stability) / R0_c), source=hr.SOURCE,
                  equation="log10(R_k / R_0), discrete Volterra equation", coords={"lr_factor": np.asarray(factors)})
    writer.claims(*claims(measured, predicted))
    z = np.abs(mean[k] - theory[k]) / se[k]
    writer.comparison(critical_lr=lr_c, lr=lr, critical_lr_main=lr / p["lr_fraction"], exponent_measured=slope,
                      exponent_theory=exponent, exponent_volterra=theory_slope, risk_max_abs_z=float(np.max(z)))
    lines = [f"risk-curves: d={d}, n={n}, alpha={p['alpha']:g}, beta={p['beta']:g}, B={B}, {P} chains, "
             f"lr = {p['lr_fraction']:g} x lr_c = {lr:.4g} (lr_c = {lr / p['lr_fraction']:.4g}; "
             f"2B/tr H = {2 * B / lam.sum():.4g})",
             f"  risk: {mean[1]:.4g} -> {mean[-1]:.4g} +- {se[-1]:.2g} (Volterra {theory[-1]:.4g}); max |z| over "
             f"{k.sum()} steps = {np.max(z):.2f}",
             f"  exponent over steps [{p['fit_lo']}, {p['fit_hi']}]: measured {slope:.3f}, "
             f"Volterra {theory_slope:.3f}, "
             f"theory {exponent:.3f}",
             f"  stability runs on lambda_j = j^-{p['critical_alpha']:g} (lr_c = {lr_c:.4g}; lr/lr_c: log10 growth "
             "measured / Volterra): " + ", ".join(f"{f:g}: {growth[f * lr_c]:+.2f} / {np.log10(v / R0_c):+.2f}"
                                                for f, v in zip(factors, stability))]
    return "complete", "", lines


def plot(run, path):
    p = run.params
    fig, axes = figure(2, title=f"risk curves: SGD on least squares, d={p['d']}, lambda_j = j^-{p['alpha']:g}, "
                                f"x*_j = j^-{p['beta']:g}, B={p['batch']}, seed {run.seed}")
    if "risk" not in run.names("observables"):
        axes[0].set_title(f"nothing recorded ({run.status}: {run.message})")
        return save(fig, path)
    el, th = run.element("risk"), run.theory("risk")
    c = run.comparison
    k = el.step > 0
    m = el.value.mean(axis=1)
    se = el.value.std(axis=1, ddof=1) / np.sqrt(el.value.shape[1])
    ax = axes[0]
    ax.fill_between(el.time[k], (m - 3 * se)[k], (m + 3 * se)[k], color="tab:blue", alpha=0.35,
                    label="SGD chains, mean +- 3 SE")
    ax.plot(el.time[k], m[k], "o", ms=3.5, color="tab:blue")
    ax.plot(th.time[k], th.value[k], label="Volterra equation (discrete)", **THEORY)
    tc = run.theory("risk_continuous")
    ax.plot(tc.time[1:], tc.value[1:], color="tab:orange", lw=1.0, label="continuous-time Volterra")
    lo, hi = p["fit_lo"] * c["lr"], p["fit_hi"] * c["lr"]
    ref = np.array([lo, hi])
    r0 = np.interp(lo, th.time, th.value)
    ax.plot(ref, 1.5 * r0 * (ref / lo) ** c["exponent_theory"], color="tab:red", lw=1.2,
            label=f"t^{c['exponent_theory']:.3f} (theory); fitted {c['exponent_measured']:.3f}")
    ax.set(xscale="log", yscale="log", xlabel="t = step x lr", ylabel="risk (1/2)(x - x*)^T H (x - x*)",
           title=f"lr = {c['lr']:.3g} = {p['lr_fraction']:g} lr_c")
    ax.legend(fontsize=7.5)
    ax = axes[1]
    g = run.element("critical_growth")
    f = np.asarray(g.coords["lr_factor"], float)
    ax.axvline(1.0, label=f"lr_c = {c['critical_lr']:.4g} (kernel norm = 1)", **THEORY)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.plot(f, g.value[0], "o", ms=9, color="tab:purple", label=f"SGD, {p['critical_steps']} steps")
    ax.plot(f, run.theory("critical_growth").value, "x", ms=10, mew=2, color="black", label="Volterra")
    ax.set(xlabel="lr / lr_c", ylabel="log10(mean risk at end / initial risk)",
           title=f"stability runs, lambda_j = j^-{p['critical_alpha']:g}: diverges above lr_c")
    ax.legend(fontsize=8)
    return save(fig, path)


SCENARIO = Scenario(
    name="risk-curves",
    summary="SGD risk on power-law least squares vs the Volterra equation (Paquette et al. 2021/2022): "
            "the curve, its exponent, the critical step size",
    params=(
        Param("d", int, 1000, "dimension", at_least(2)),
        Param("n", int, 2000, "examples (n >= d)", at_least(2)),
        Param("alpha", float, 2.0, "spectrum lambda_j = j^-alpha (alpha > 1)", positive),
        Param("beta", float, 0.25, "target x*_j = j^-beta (alpha + 2 beta > 1)"),
        Param("batch", int, 4, "minibatch size B (drawn with replacement)", at_least(1)),
        Param("lr_fraction", float, 0.5, "learning rate as a fraction of the critical lr_c", positive),
        Param("particles", int, 100, "SGD chains", at_least(2)),
        Param("steps", int, 5000, "SGD steps of the main run", at_least(10)),
        Param("records", int, 30, "log-spaced recorded steps", at_least(3)),
        Param("fit_lo", int, 30, "first step of the exponent fit", at_least(1)),
        Param("fit_hi", int, 5000, "last step of the exponent fit", at_least(2)),
        Param("critical_alpha", float, 0.5, "spectrum exponent of the stability runs (a bulk: tr H >> lambda_max)",
              positive),
        Param("critical_factors", str, "0.9,1.1", "lr / lr_c of the short stability runs", list_check(float)),
        Param("critical_particles", int, 16, "chains per stability run", at_least(1)),
        Param("critical_steps", int, 1000, "steps per stability run", at_least(1)),
    ),
    run=run,
    plot=plot,
    presets={"small": dict(d=500, n=1000, particles=64, steps=2000, fit_hi=2000, records=24, critical_particles=12,
                           critical_steps=600)},
    validate=lambda p: (f"fit_lo ({p['fit_lo']}) must be below fit_hi ({p['fit_hi']}) <= steps ({p['steps']})"
                        if not p["fit_lo"] < p["fit_hi"] <= p["steps"] else
                        f"alpha must be above 1 (finite trace), got {p['alpha']}" if p["alpha"] <= 1 else
                        f"n ({p['n']}) must be at least d ({p['d']})" if p["n"] < p["d"] else None),
)
