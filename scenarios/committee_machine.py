"""committee-machine: online SGD on a soft committee machine (teacher M units, student K units, g = erf(x/sqrt 2))
against the exact N -> inf order-parameter ODEs (Saad & Solla, PRE 52, 4225 (1995); Goldt, Advani, Saxe,
Krzakala & Zdeborova, NeurIPS 2019, eqs. (10)-(12), with the lr^2 and noise terms).

Students w_k = init_scale xi_k + overlap w*_k (the second term for k < M) learn from a fresh Gaussian sample
every step; time t = steps / N. The ODE is integrated from every student's own exact initial order parameters
(Q, R at step 0) and averaged over students, so the comparison is of the same expectation: simulated eps_g
(mean +- SE over students) against the ODE over the whole curve: the fall onto the plateau at the symmetric
fixed point, the plateau, the escape (which `overlap` and lr set) and the convergence. A second, cheaper set of
students at several N measures the spread of eps_g across students at an early time t_spread: fluctuations of
the order parameters are O(N^-1/2), so the standard deviation falls as N^-1/2.

Claims (`claims`): eps_g within the family-wise 3-sigma band of the ODE at every recorded time; the fitted
exponent of std(eps_g) against N within 0.1 of -1/2.
"""
from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

from sgdsim.highdim import committee as hd
from sgdsim.compare.claims import Claim, familywise_z
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, list_check, non_negative, parse_list, positive

SPREAD_EXPONENT = -0.5
EXPONENT_TOLERANCE = 0.1          # the "-0.5 +- 0.1"; the fit's own SE is reported beside it
FAMILY_ALPHA = 0.0027             # family-wise 3-sigma level over all recorded times
PLATEAU_TOLERANCE = 0.02          # O(overlap) corrections to the linearization (measured 0.3% at overlap <= 1e-2)


def claims(measured: dict, theory: dict) -> list[Claim]:
    """Claims from measured {eps_mean, eps_se (T,), spread_slope, spread_slope_se} and theory {eps_mean (T,),
    spread_exponent}; for the realizable machine with a fixed second layer also measured {escape_mean,
    escape_se (simulation), escape_slope (ODE)} and theory {escape_mean (ODE), inverse_rate (1/gamma)}; the
    escape-time claim is made when the ODE escapes within the run."""
    n = len(measured["eps_mean"])
    z = familywise_z(n, FAMILY_ALPHA)
    plateau = []
    if "escape_slope" in measured and np.isfinite(theory["escape_mean"]):
        plateau.append(Claim(
            name="escape_time",
            statement="mean time at which eps_g falls below half its plateau value: simulation equals the ODE "
                      "(|z| <= 3)",
            measured=measured["escape_mean"], predicted=theory["escape_mean"], stderr=measured["escape_se"],
            test="z", tolerance=3.0, source=hd.SOURCE))
    if "escape_slope" in measured:
        plateau.append(Claim(
            name="plateau_length",
            statement="plateau length grows as ln(1/overlap) / gamma, gamma the unstable eigenvalue at the "
                      f"symmetric fixed point (ODE escape times; relative {PLATEAU_TOLERANCE})",
            measured=measured["escape_slope"], predicted=theory["inverse_rate"], test="rel",
            tolerance=PLATEAU_TOLERANCE,
            source="Saad & Solla 1995, sec. IV (symmetric phase and its escape); linear stability of the ODEs"))
    return [
        Claim(name="eps_g_curve",
              statement=f"simulated eps_g (mean over students) equals the ODE at all {n} recorded times "
                        f"(|z| <= {z:.2f}: family-wise 3 sigma)",
              measured=measured["eps_mean"], predicted=theory["eps_mean"], stderr=measured["eps_se"],
              test="z", tolerance=z, source=hd.SOURCE),
        Claim(name="spread_exponent",
              statement=f"std of eps_g across students scales as N^{theory['spread_exponent']:g} "
                        f"(fitted slope, SE {measured['spread_slope_se']:.3f}; tolerance {EXPONENT_TOLERANCE})",
              measured=measured["spread_slope"], predicted=theory["spread_exponent"], test="abs",
              tolerance=EXPONENT_TOLERANCE,
              source="order-parameter fluctuations are O(N^-1/2) (Goldt et al. 2019, sec. 3; Saad & Solla 1995)"),
    ] + plateau


def spread_fit(Ns, stds, students) -> tuple[float, float]:
    """Slope of log std against log N by least squares, and its SE from the sampling error of a standard
    deviation over S normal-ish samples: SE(log std) = 1 / sqrt(2 (S - 1))."""
    x, y = np.log(np.asarray(Ns, float)), np.log(np.asarray(stds, float))
    slope = np.polyfit(x, y, 1)[0]
    se = 1.0 / np.sqrt(2 * (students - 1)) / np.sqrt(np.sum((x - x.mean()) ** 2))
    return float(slope), float(se)


def measure(eps, spread_N, spread_std, spread_students: int, t=None, level=None, ideal=None) -> dict:
    """The measured side of the claims: eps (T, students) -> mean and SE per time; the spread fit; with a
    plateau `level` the students' escape times (mean, SE) on the time grid t, and with ideal = (overlaps,
    ODE escape times) the slope of the escape time against ln(1/overlap)."""
    eps = np.asarray(eps, float)
    slope, slope_se = spread_fit(spread_N, spread_std, spread_students)
    out = dict(eps_mean=eps.mean(axis=1), eps_se=eps.std(axis=1, ddof=1) / np.sqrt(eps.shape[1]),
               spread_slope=slope, spread_slope_se=slope_se)
    if level is not None:
        escapes = np.array([hd.escape_time(t, e, level) for e in eps.T])
        out |= dict(escape_mean=float(escapes.mean()), escape_se=float(escapes.std(ddof=1) / np.sqrt(len(escapes))),
                    escape_slope=float(np.polyfit(np.log(1 / np.asarray(ideal[0])), ideal[1], 1)[0]))
    return out


def plateau_study(p: dict, times) -> dict:
    """The realizable machine's plateau (K = M, fixed second layer, T = I): the symmetric fixed point, its
    eps_g and escape rate gamma, and the ODE from idealized starts Q = (init_scale^2 + delta^2) I, R = delta I
    for every overlap delta in plateau_overlaps, with the times at which eps_g falls below half the plateau."""
    K = p["K"]
    I, ones = np.eye(K), np.ones(K)
    Qp, Rp = hd.symmetric_fixed_point(K, lr=p["lr"], noise=p["noise"])
    eps_p = float(hd.generalization_error(Qp, Rp, I, ones, ones))
    gamma = hd.escape_rate(Qp, Rp, I, ones, lr=p["lr"], noise=p["noise"])
    deltas = np.asarray(parse_list(p["plateau_overlaps"], float, 0))
    t_end = 1.5 * np.log(1 / deltas.min()) / gamma + 60 / p["lr"]
    grid = np.linspace(0, t_end, 2001)
    Q0 = (p["init_scale"] ** 2 + deltas[:, None, None] ** 2) * I
    curves = hd.ode(Q0, deltas[:, None, None] * I, np.ones((len(deltas), K)), hd.Teacher(np.sqrt(K) * I, ones), grid,
                    lr=p["lr"], noise=p["noise"])
    escapes = np.array([hd.escape_time(grid, e, eps_p / 2) for e in curves.eps.T])
    return dict(level=eps_p / 2, eps_plateau=eps_p, gamma=gamma, overlaps=deltas, escapes=escapes, grid=grid,
                curves=curves.eps, times=np.asarray(times))


def from_run(run) -> tuple[dict, dict]:
    """(measured, theory) of `claims` rebuilt from a run file alone."""
    sp, el, th = run.element("spread"), run.element("eps_g"), run.theory("eps_g")
    theory = dict(eps_mean=th.value.mean(axis=1), spread_exponent=SPREAD_EXPONENT)
    extra = {}
    if "plateau_escape" in run.names("theory"):
        pl = run.theory("plateau_escape")
        extra = dict(t=el.time, level=pl.attrs["level"], ideal=(pl.coords["overlap"], pl.value))
        theory |= dict(escape_mean=float(np.mean([hd.escape_time(th.time, e, pl.attrs["level"]) for e in th.value.T])),
                       inverse_rate=1 / pl.attrs["gamma"])
    measured = measure(el.value, sp.coords["N"], sp.value[0], run.params["spread_students"], **extra)
    return measured, theory


def run(p: dict, seed: int, writer, progress: bool):
    N, K, M, S = p["N"], p["K"], p["M"], p["students"]
    spread_N = parse_list(p["spread_N"], int, 2)
    teach = hd.teacher(N, M, seed)
    steps = np.unique(np.round(np.linspace(0, p["t_max"] * N, p["records"])).astype(np.int64))
    work = S * steps[-1] * N + sum(p["spread_students"] * int(round(p["t_spread"] * n)) * n for n in spread_N)
    dyn = dict(lr=p["lr"], lr_v=p["lr_v"], noise=p["noise"])
    student = {"student": np.arange(S)}
    # the simulation's records reach the file as they are taken (flushed at most every STREAM_SECONDS)
    sink = _Stream(writer, S, K, M)
    with tqdm(total=work, disable=None if progress else True, delay=1.0, unit="w", leave=False) as bar:
        W0 = hd.initial_students(teach, K, S, p["init_scale"], p["overlap"], seed)
        try:
            sim = hd.simulate(teach, W0, np.ones((S, K)), steps, seed=seed,
                              progress=lambda n: bar.update(n * S * N), on_record=sink.append, **dyn)
        finally:
            writer.flush()
        if sim.status != "complete":
            return sim.status, sim.message, [f"committee-machine: {sim.message}; the records up to then are in "
                                             f"the file"]
        ode = hd.ode(sim.Q[0], sim.R[0], sim.v[0], teach, sim.t, **dyn)
        if ode.status != "complete":
            return "failed", f"ODE: {ode.message}", [f"committee-machine: ODE {ode.message}"]
        spread = []
        for n in spread_N:
            tn = hd.teacher(n, M, seed + 1)
            Wn = hd.initial_students(tn, K, p["spread_students"], p["init_scale"], p["overlap"], seed + 1)
            cn = hd.simulate(tn, Wn, np.ones((p["spread_students"], K)), [0, int(round(p["t_spread"] * n))],
                             seed=seed + 1, progress=lambda k, n=n: bar.update(k * p["spread_students"] * n), **dyn)
            if cn.status != "complete":
                return cn.status, f"spread study at N = {n}: {cn.message}", [
                    f"committee-machine: spread study at N = {n}: {cn.message}; the main run's records are in "
                    f"the file"]
            spread.append(np.std(cn.eps[-1], ddof=1))
    theory = dict(eps_mean=ode.eps.mean(axis=1), spread_exponent=SPREAD_EXPONENT)
    extra, study = {}, None
    if K == M and p["lr_v"] == 0:
        study = plateau_study(p, sim.t)
        extra = dict(t=sim.t, level=study["level"], ideal=(study["overlaps"], study["escapes"]))
        theory |= dict(escape_mean=float(np.mean([hd.escape_time(ode.t, e, study["level"]) for e in ode.eps.T])),
                       inverse_rate=1 / study["gamma"])
    measured = measure(sim.eps, spread_N, spread, p["spread_students"], **extra)
    eps_mean, eps_se = measured["eps_mean"], measured["eps_se"]
    slope, slope_se = measured["spread_slope"], measured["spread_slope_se"]

    eq = "ODEs of Saad & Solla 1995 / Goldt et al. 2019 (see sgdsim.solvers.highdim.committee_ode)"
    writer.theory("eps_g", ode.eps, step=steps, time=ode.t, coords=student, source=hd.SOURCE, equation=eq,
                  attrs={"description": "ODE from each student's initial Q, R"})
    writer.theory("R", ode.R.mean(axis=1), step=steps, time=ode.t, source=hd.SOURCE, equation=eq)
    writer.theory("Q", ode.Q.mean(axis=1), step=steps, time=ode.t, source=hd.SOURCE, equation=eq)
    spread_el = writer.element("spread", (len(spread_N),), coords={"N": np.asarray(spread_N)},
                               attrs={"description": f"std of eps_g over {p['spread_students']} students at "
                                                     f"t_spread, per N", "students": p["spread_students"]})
    spread_el.append(int(round(p["t_spread"] * max(spread_N))), float(p["t_spread"]), np.asarray(spread))
    if study is not None:
        writer.theory("plateau_escape", study["escapes"], coords={"overlap": study["overlaps"]},
                      source="Saad & Solla 1995, sec. IV; linear stability of the ODEs at the symmetric fixed point",
                      equation="t_escape ~ ln(1/overlap) / gamma (ODE from Q = (s^2 + delta^2) I, R = delta I, T = I)",
                      attrs={"gamma": study["gamma"], "level": study["level"], "eps_plateau": study["eps_plateau"]})
        lines_plateau = [f"  plateau eps_g = {study['eps_plateau']:.4g}, escape rate gamma = {study['gamma']:.4g}: "
                         f"ODE escape time slope {measured['escape_slope']:.3f} per ln(1/overlap) vs 1/gamma = "
                         f"{1 / study['gamma']:.3f}; simulated escape at t = {measured['escape_mean']:.2f} +- "
                         f"{measured['escape_se']:.2f} (ODE {theory['escape_mean']:.2f})"]
    else:
        lines_plateau = []
    made = claims(measured, theory)
    writer.claims(*made)
    z = np.abs(eps_mean - theory["eps_mean"]) / eps_se
    writer.comparison(eps_max_abs_z=float(np.max(z)), spread_slope=slope, spread_slope_se=slope_se,
                      eps_final=float(eps_mean[-1]))
    lines = [f"committee-machine: K={K}, M={M}, N={N}, {S} students, lr={p['lr']:g}, lr_v={p['lr_v']:g}, "
             f"noise={p['noise']:g}, overlap={p['overlap']:g}, t_max={p['t_max']:g}",
             f"  eps_g: start {eps_mean[0]:.4g}, end {eps_mean[-1]:.4g} +- {eps_se[-1]:.2g} (ODE "
             f"{theory['eps_mean'][-1]:.4g}); max |z| over {len(z)} times = {np.max(z):.2f}",
             f"  spread at t={p['t_spread']:g}: std ~ N^{slope:.3f} +- {slope_se:.3f} over N = "
             + ", ".join(map(str, spread_N))] + lines_plateau
    return "complete", "", lines


class _Stream:
    """The simulation's elements eps_g (per student), R and Q (averaged over students), appended at every record
    as it is taken; flushed at the first record and then at most every STREAM_SECONDS (a flush costs ms)."""

    STREAM_SECONDS = 0.5

    def __init__(self, writer, S: int, K: int, M: int) -> None:
        self.writer, self.flushed = writer, None
        self.eps = writer.element("eps_g", (S,), coords={"student": np.arange(S)},
                                  attrs={"description": "eps_g = (1/2) E (f - y)^2 of each student (closed form "
                                                        "from Q, R)", "time_unit": "t = step / N"})
        self.R = writer.element("R", (K, M), attrs={"description": "R averaged over students"})
        self.Q = writer.element("Q", (K, K), attrs={"description": "Q averaged over students"})

    def append(self, step, t, Q, R, v, eps) -> None:
        self.eps.append(int(step), float(t), eps)
        self.R.append(int(step), float(t), R.mean(axis=0))
        self.Q.append(int(step), float(t), Q.mean(axis=0))
        if self.flushed is None or time.perf_counter() - self.flushed >= self.STREAM_SECONDS:
            self.writer.flush()
            self.flushed = time.perf_counter()


def plot(run, path):
    p = run.params
    plateau = "plateau_escape" in run.names("theory")
    title = (f"committee machine K={p['K']}, M={p['M']}, N={p['N']}, lr={p['lr']:g}, overlap={p['overlap']:g}, "
             f"seed {run.seed}: online SGD vs the ODE (Saad & Solla 1995)")
    fig, axes = figure(2 if plateau else 3, 2 if plateau else 1, title=title)
    if "eps_g" not in run.names("observables"):
        axes[0].set_title(f"nothing recorded ({run.status}: {run.message})")
        return save(fig, path)
    el, th = run.element("eps_g"), run.theory("eps_g")
    m = el.value.mean(axis=1)
    se = el.value.std(axis=1, ddof=1) / np.sqrt(el.value.shape[1])
    ax = axes[0]
    ax.plot(el.time, el.value, color="tab:blue", lw=0.5, alpha=0.25)
    ax.fill_between(el.time, m - 3 * se, m + 3 * se, color="tab:blue", alpha=0.35, label="simulation, mean +- 3 SE")
    ax.plot(el.time, m, color="tab:blue", lw=1.8)
    ax.plot(th.time, th.value.mean(axis=1), label="ODE (mean over students)", **THEORY)
    if plateau:
        ax.axhline(run.theory("plateau_escape").attrs["eps_plateau"], color="grey", ls=":", lw=1.2,
                   label="symmetric fixed point")
    ax.set(yscale="log", xlabel="t = steps / N", ylabel="generalization error eps_g", title="eps_g(t): plateau, escape")
    ax.legend(fontsize=8)
    ax = axes[1]
    R, Rt = run.element("R"), run.theory("R")
    for k in range(R.value.shape[1]):
        for m_ in range(R.value.shape[2]):
            ax.plot(R.time, R.value[:, k, m_], lw=1.6, label=f"R[{k},{m_}]")
            ax.plot(Rt.time, Rt.value[:, k, m_], **{**THEORY, "lw": 1.0})
    ax.set(xlabel="t = steps / N", ylabel="student-teacher overlap R (mean over students)",
           title="specialization (dashed: ODE)")
    ax.legend(fontsize=7, ncol=2)
    ax = axes[2]
    sp = run.element("spread")
    Ns = np.asarray(sp.coords["N"], float)
    std = sp.value[0]
    ax.loglog(Ns, std, "o", ms=7, label=f"std of eps_g at t = {p['t_spread']:g}")
    ax.loglog(Ns, std[0] * (Ns / Ns[0]) ** -0.5, label="N^-1/2 (theory)", **THEORY)
    ax.set(xlabel="input dimension N", ylabel="std across students",
           title=f"finite-N spread: slope {run.comparison['spread_slope']:.3f} "
                 f"+- {run.comparison['spread_slope_se']:.3f}")
    ax.legend(fontsize=8)
    if plateau:
        ax = axes[3]
        pl = run.theory("plateau_escape")
        x = np.log(1 / np.asarray(pl.coords["overlap"], float))
        gamma = pl.attrs["gamma"]
        ax.plot(x, pl.value, "s", ms=7, color="tab:green", label="ODE: eps_g below half the plateau")
        ax.plot(x, pl.value[0] + (x - x[0]) / gamma, label=f"slope 1/gamma = {1 / gamma:.2f} (linear stability)",
                **THEORY)
        ax.set(xlabel="ln(1 / initial overlap)", ylabel="escape time t",
               title=f"plateau length (lr = {p['lr']:g})")
        ax.legend(fontsize=8)
    return save(fig, path)


SCENARIO = Scenario(
    name="committee-machine",
    summary="online SGD on soft committee machines vs the exact order-parameter ODEs (Saad & Solla 1995; "
            "Goldt et al. 2019): plateau, escape, N^-1/2 spread",
    params=(
        Param("K", int, 2, "student hidden units", at_least(1)),
        Param("M", int, 2, "teacher hidden units", at_least(1)),
        Param("N", int, 2000, "input dimension", at_least(10)),
        Param("students", int, 12, "independent students (each its own stream and initial weights)", at_least(2)),
        Param("lr", float, 1.0, "first-layer learning rate (the update is lr / sqrt(N) ...; t = steps / N)", positive),
        Param("lr_v", float, 0.0, "second-layer learning rate (0 = second layer fixed at v = 1)", non_negative),
        Param("noise", float, 0.0, "standard deviation sigma of the teacher's output noise", non_negative),
        Param("init_scale", float, 0.3, "standard deviation of the students' initial weights", positive),
        Param("overlap", float, 0.05, "initial overlap: w_k += overlap * w*_k (k < M); sets the plateau length",
              non_negative),
        Param("t_max", float, 60.0, "time to train (t = steps / N)", positive),
        Param("records", int, 41, "recorded times (evenly spaced)", at_least(3)),
        Param("spread_N", str, "100,200,400,800,1600", "input dimensions of the spread study", list_check(int, 2)),
        Param("spread_students", int, 256, "students per N in the spread study", at_least(3)),
        Param("plateau_overlaps", str, "1e-2,1e-3,1e-4,1e-5", "initial overlaps of the ODE plateau-length study "
              "(K = M, fixed second layer)", list_check(float)),
        Param("t_spread", float, 1.0, "time at which the spread across students is measured", positive),
    ),
    run=run,
    plot=plot,
    presets={"small": dict(N=400, students=10, t_max=35.0, overlap=0.2, records=21, spread_N="50,100,200,400"),
             "realizable3": dict(K=3, M=3, overlap=0.05, t_max=80.0),
             "overparameterized": dict(K=4, M=2, t_max=60.0)},
    validate=lambda p: (f"N ({p['N']}) and every spread_N must be at least M ({p['M']})"
                        if min(p["N"], *parse_list(p["spread_N"], int, 2)) < p["M"] else None),
)
