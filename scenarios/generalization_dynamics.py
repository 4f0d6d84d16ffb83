"""generalization-dynamics: train and test error of a linear student over time, for several ratios
alpha = N / P of examples to parameters (Advani & Saxe 2017, "High-dimensional dynamics of generalization
error in neural networks").

Teacher y = w_bar . x + eps, x ~ N(0, I_P), w_bar ~ N(0, (teacher/P) I), eps ~ N(0, noise^2); student
w(0) ~ N(0, (init/P) I), full-batch GD with step lr on E_train = (1/2N) sum_i (y_i - w . x_i)^2, N = alpha P.
Test error E_gen = (1/2)(|w - w_bar|^2 + noise^2) (the population error, exact for each student). Each curve
is the mean over `students` independent draws +- its standard error, against the Marchenko–Pastur formula
for the same lr (GD: decay (1 - lr l)^step) and for gradient flow (t = step * lr); the optimal early-stopping
time t* minimizes the flow formula. At alpha = 1 the smallest eigenvalues reach 0 and the test error of
the trained-out student diverges (double-descent peak); early stopping at t* removes the peak.

With `data` (NPZ/CSV/HDF5, one target column): the rows form a pool; its inputs are centred and ZCA-whitened
(identity covariance), the teacher is the least-squares fit on the whole pool and `noise` its residual standard
deviation; each student trains on alpha P random rows and is tested on the rest. The Marchenko–Pastur formula
then assumes Gaussian inputs, which real data are not: the comparison is an approximation, said so in the run
file (attribute theory_exact = false).

Conventions (stated beside the numbers in the summary and in the run file): times are sgdsim's t = step x lr
for the loss averaged over the N examples; Advani & Saxe sum over examples with inputs of variance 1/P, which
makes their Hessian alpha times this one, so their time is t / alpha (t* / alpha for the optimal stopping
time). Errors here are E = (1/2)(|w - w_bar|^2 + noise^2), half of theirs (multiply by 2).

Claims (`claims`), per ratio: the mean train and test errors of the students equal the GD theory at every
recorded time t > 0 (where the predicted error is above ROUNDING x E(0): an interpolating student's train error
falls to float64's rounding of the residual, which no theory describes) within the family-wise bound
(Student's t with students - 1 degrees of freedom, Bonferroni over the times, false-alarm rate FALSE_ALARM);
the measured optimal stopping time (the minimum of the mean test curve, in log time) is the theory's (the
minimum of the GD formula), its standard error from a bootstrap over students and the spacing of the recorded
times; and, with more than one ratio, the late test error peaks at the ratio where the theory puts it (alpha
nearest 1: E_gen(t -> inf) diverges at alpha = 1). With a data pool the theory is approximate and so are the
claims' verdicts.
"""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from sgdsim.deep_linear import theory as lt
from sgdsim.compare.claims import Claim, familywise_z
from sgdsim.networks.datasets import load_xy
from sgdsim.errors import ParameterError
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, list_check, non_negative, parse_list, positive
from sgdsim.runloop import Schedule, record_steps_array

SOURCE = "Advani & Saxe 2017, 'High-dimensional dynamics of generalization error in neural networks', " \
         "Marchenko-Pastur theory of train/test error of the linear student"
EQ_GEN = "E_gen = (1/2)[s^2 + (s_w^2 + s_0^2)(max(0, 1 - a) + int rho d^2) + (s^2/a) int rho (1 - d)^2 / l], " \
         "d = exp(-l t) (flow) or (1 - lr l)^step (GD)"
EQ_TRAIN = "E_train = (1/2)[s^2 max(0, 1 - 1/a) + int rho d^2 ((s_w^2 + s_0^2) l + s^2 / a)]"
TIME_CONVENTION = "t = step x lr on the loss averaged over the N examples; Advani & Saxe's time is t / alpha " \
                  "(their summed loss on inputs of variance 1/P has alpha times this Hessian)"
ERROR_CONVENTION = "E = (1/2)(|w - w_bar|^2 + noise^2): half of Advani & Saxe's errors (theirs = 2 E)"
FALSE_ALARM = 0.01     # family-wise probability that a true claim is reported as failing
BOOTSTRAP = 400        # resamples of the students for the standard error of the optimal stopping time
ROUNDING = (1e4 * np.finfo(float).eps) ** 2   # errors below this fraction of E(0) are float64 rounding of the residual


def _validate(p: dict) -> str | None:
    worst = max(parse_list(p["ratios"], float, 0))
    edge = (1 + (1 / min(parse_list(p["ratios"], float, 0))) ** 0.5) ** 2  # largest MP eigenvalue
    if p["lr"] * edge >= 2:
        return f"lr {p['lr']:g} is past GD's stability edge 2 / l_max = {2 / edge:.3g} at the smallest ratio"
    if round(worst * p["params"]) < 1:
        return f"ratios x params must give at least one example (got {worst:g} x {p['params']})"
    return None


def _students_synthetic(rng, P: int, N: int, R: int, teacher: float, noise: float, init: float):
    X = rng.standard_normal((R, N, P))
    w_bar = rng.standard_normal((R, P)) * np.sqrt(teacher / P)
    y = np.einsum("rnp,rp->rn", X, w_bar) + noise * rng.standard_normal((R, N))
    w0 = rng.standard_normal((R, P)) * np.sqrt(init / P)
    return X, y, w_bar, w0


def stopping_time(test: np.ndarray, times: np.ndarray, rng, resamples: int = BOOTSTRAP) -> tuple[float, float]:
    """(log t_min, its standard error): t_min minimizes the mean over students (columns of `test`, one row per
    recorded time) over the times t > 0; the error combines a bootstrap over students with the spacing of the
    log-time grid around t_min (a uniform quantization error, variance spacing^2 / 12)."""
    logt = np.log(times[1:])
    curve = test[1:]
    k = int(np.argmin(curve.mean(axis=1)))
    draws = rng.integers(0, curve.shape[1], (resamples, curve.shape[1]))
    boot = logt[np.argmin(curve[:, draws].mean(axis=2), axis=0)]
    spacing = (logt[min(k + 1, len(logt) - 1)] - logt[max(k - 1, 0)]) / 2
    return float(logt[k]), float(np.sqrt(np.var(boot, ddof=1) + spacing ** 2 / 12))


def gd_optimal_time(alpha: float, noise: float, teacher: float, init: float, lr: float, last: int) -> float:
    """The step time t = k lr (k <= last) minimizing Advani & Saxe's test error under GD with step lr (the
    discrete-time version of `deep_linear.theory.optimal_stopping_time`), on a log grid of 2000 steps."""
    k = record_steps_array(Schedule(log_points=2000), last)[1:].astype(float)
    return float(k[np.argmin(lt.advani_saxe_errors(k * lr, alpha, noise, teacher, init, lr=lr)[1])] * lr)


def claims(measured: dict, theory: dict, students: int) -> list[Claim]:
    """The claims of the module docstring. measured: per ratio alpha, "train"/"test" (mean, stderr) over the
    recorded times t > 0, "stopping" (log t_min, stderr), "final" (mean, stderr) of the test error at t_max;
    theory: per alpha, "train"/"test" (the GD curves at the same times), "stopping" (t* of GD), "final"."""
    out = []
    for a in measured["test"]:
        for kind in ("train", "test"):
            mean, se = measured[kind][a]
            out.append(Claim(name=f"{kind}_error_a{a:g}", test="z", measured=mean, predicted=theory[kind][a],
                             stderr=se, tolerance=familywise_z(len(mean), FALSE_ALARM, dof=students - 1),
                             statement=f"alpha = {a:g}: mean {kind} error of the students equals the GD theory at "
                                       f"every recorded time", source=SOURCE))
        logt, se = measured["stopping"][a]
        out.append(Claim(name=f"optimal_stopping_a{a:g}", test="z", measured=logt,
                         predicted=np.log(theory["stopping"][a]), stderr=se,
                         tolerance=familywise_z(1, FALSE_ALARM),
                         statement=f"alpha = {a:g}: log of the time minimizing the mean test error equals log t* of "
                                   f"the GD theory (sgdsim time; Advani & Saxe's is t / alpha)",
                         source=SOURCE + ", optimal early-stopping time"))
    if len(measured["final"]) > 1:
        peak = max(theory["final"], key=theory["final"].get)
        others = [a for a in measured["final"] if a != peak]
        rival = max(others, key=lambda a: measured["final"][a][0])
        (m1, s1), (m2, s2) = measured["final"][peak], measured["final"][rival]
        out.append(Claim(name="late_test_peak", test="greater", measured=m1 - m2, predicted=0.0,
                         stderr=float(np.hypot(s1, s2)), tolerance=familywise_z(1, FALSE_ALARM, dof=students - 1),
                         statement=f"the test error at t_max is largest at alpha = {peak:g}, where the theory puts its "
                                   f"peak (minus the largest other, alpha = {rival:g})",
                         source=SOURCE + ": E_gen(t -> inf) diverges at alpha = 1"))
    return out


def run(p: dict, seed: int, writer, progress: bool):
    ratios = parse_list(p["ratios"], float, 0)
    R, lr = p["students"], p["lr"]
    rng = np.random.default_rng(seed)
    steps = record_steps_array(Schedule(log_points=p["records"]), round(p["t_max"] / lr))
    times = steps * lr
    pool = None
    P, noise, teacher, init = p["params"], p["noise"], p["teacher"], p["init"]
    if p["data"]:
        Xp, Yp = load_xy(p["data"])
        if Yp.shape[1] != 1:
            raise ParameterError(f"{p['data']}: generalization-dynamics needs one target column, got {Yp.shape[1]}")
        Xp = Xp - Xp.mean(axis=0)
        h, V = np.linalg.eigh(Xp.T @ Xp / len(Xp))
        if h.min() <= 1e-12 * h.max():
            raise ParameterError(f"{p['data']}: the input columns are linearly dependent (covariance eigenvalue "
                                 f"{h.min():.3g}); drop redundant columns")
        Xp = Xp @ (V / np.sqrt(h)) @ V.T   # ZCA whitening: identity input covariance, as the theory assumes
        yp = Yp[:, 0] - Yp[:, 0].mean()
        P = Xp.shape[1]
        w_pool = np.linalg.lstsq(Xp, yp, rcond=None)[0]
        noise, teacher = float(np.std(yp - Xp @ w_pool)), float(w_pool @ w_pool)
        too_big = [a for a in ratios if round(a * P) >= len(Xp)]
        if too_big:
            raise ParameterError(f"{p['data']}: ratio {too_big[0]:g} needs {round(too_big[0] * P)} training rows, "
                                 f"the pool has {len(Xp)} (some must remain for testing)")
        pool = (Xp, yp, w_pool)
    writer.attrs(data_source=p["data"] or "synthetic Gaussian teacher-student (from the seed)",
                 theory_exact=pool is None, params_P=P, noise_used=noise, teacher_used=teacher)

    metrics, lines = {}, [f"generalization-dynamics: P={P}, noise {noise:.3g}, teacher |w|^2 {teacher:.3g}, "
                          f"init {init:g}, {R} students per ratio, GD lr={lr:g}, t_max={p['t_max']:g}"
                          + ("" if pool is None else f"; data {p['data']} (theory approximate)"),
                          f"  times: {TIME_CONVENTION}; errors: {ERROR_CONVENTION}"]
    bar = tqdm(total=len(ratios) * int(steps[-1]), disable=None if progress else True, delay=1.0, unit="step",
               leave=False)
    boot_rng = np.random.default_rng([seed, 1])   # the bootstrap's own stream: the students stay as they were
    measured = {"train": {}, "test": {}, "stopping": {}, "final": {}}
    theory = {"train": {}, "test": {}, "stopping": {}, "final": {}}
    for a in ratios:
        N = max(1, int(round(a * P)))
        if pool is None:
            X, y, w_bar, w = _students_synthetic(rng, P, N, R, teacher, noise, init)
            test_rows = None
        else:
            Xp, yp, w_pool = pool
            idx = np.array([rng.permutation(len(Xp)) for _ in range(R)])
            X, y, test_rows = Xp[idx[:, :N]], yp[idx[:, :N]], idx[:, N:]
            w_bar, w = np.tile(w_pool, (R, 1)), rng.standard_normal((R, P)) * np.sqrt(init / P)
        train = np.empty((len(steps), R))
        test = np.empty((len(steps), R))
        step = 0
        for k, target in enumerate(steps):
            while step < target:
                r = np.einsum("rnp,rp->rn", X, w) - y
                w = w - lr * np.einsum("rnp,rn->rp", X, r) / N
                step += 1
            bar.update(int(target - (steps[k - 1] if k else 0)))
            r = np.einsum("rnp,rp->rn", X, w) - y
            train[k] = 0.5 * np.mean(r * r, axis=1)
            if test_rows is None:
                test[k] = 0.5 * (np.sum((w - w_bar) ** 2, axis=1) + noise ** 2)
            else:
                test[k] = [0.5 * np.mean((Xp[rows] @ wr - yp[rows]) ** 2) for rows, wr in zip(test_rows, w)]
            if not np.all(np.isfinite(train[k])):
                return "diverged", f"alpha={a:g}: non-finite error at step {step}", lines
        tag = f"a{a:g}"
        th_train, th_gen = lt.advani_saxe_errors(times, N / P, noise, teacher, init, lr=lr)
        fl_train, fl_gen = lt.advani_saxe_errors(times, N / P, noise, teacher, init)
        t_opt, e_opt = lt.optimal_stopping_time(N / P, noise, teacher, init, t_max=100 * p["t_max"])
        for kind, data, gd, flow, eq in (("train", train, th_train, fl_train, EQ_TRAIN),
                                         ("test", test, th_gen, fl_gen, EQ_GEN)):
            mean, se = data.mean(axis=1), data.std(axis=1, ddof=1) / np.sqrt(R)
            name = f"{kind}_{tag}"
            el = writer.element(name, (2,), coords={"stat": np.array([b"mean", b"stderr"])},
                                attrs={"description": f"{kind} error over {R} students (mean, SE)", "alpha": N / P,
                                       "examples": N, "time_unit": "t = step * lr"})
            for row in zip(steps, times, np.stack([mean, se], 1)):
                el.append(*row)
            conventions = {"time_convention": TIME_CONVENTION, "error_convention": ERROR_CONVENTION}
            writer.theory(name, gd, step=steps, time=times, source=SOURCE, equation=eq,
                          attrs={"alpha": N / P, "dynamics": f"GD, lr={lr:g}", "exact": pool is None, **conventions})
            writer.theory(f"{name}_flow", flow, step=steps, time=times, source=SOURCE, equation=eq,
                          attrs={"alpha": N / P, "dynamics": "gradient flow", **conventions})
            z = np.abs(mean - gd)[1:] / np.maximum(se[1:], 1e-300)
            metrics[f"{kind}_zscore_max_{tag}"] = float(z.max())
            resolved = np.nonzero(gd > ROUNDING * gd[0])[0]   # t > 0, above float64's resolution of the residual
            resolved = resolved[resolved > 0]
            measured[kind][a], theory[kind][a] = (mean[resolved], se[resolved]), gd[resolved]
        measured["stopping"][a] = stopping_time(test, times, boot_rng)
        theory["stopping"][a] = gd_optimal_time(N / P, noise, teacher, init, lr, int(steps[-1]))
        measured["final"][a] = (float(test[-1].mean()), float(test[-1].std(ddof=1) / np.sqrt(R)))
        theory["final"][a] = float(th_gen[-1])
        k_min = int(np.argmin(test.mean(axis=1)))
        metrics |= {f"optimal_time_{tag}": t_opt, f"optimal_test_error_{tag}": e_opt,
                    f"optimal_time_paper_{tag}": t_opt / (N / P), f"optimal_test_error_paper_{tag}": 2 * e_opt,
                    f"optimal_time_gd_{tag}": theory["stopping"][a],
                    f"measured_min_test_{tag}": float(test.mean(axis=1)[k_min]),
                    f"measured_min_time_{tag}": float(times[k_min]),
                    f"test_final_{tag}": float(test.mean(axis=1)[-1]), f"test_final_theory_{tag}": float(th_gen[-1]),
                    f"test_asymptote_{tag}": lt.advani_saxe_asymptote(N / P, noise, teacher, init)}
        lines.append(f"  alpha={N / P:.3g} (N={N}): test error min {metrics[f'measured_min_test_{tag}']:.4g} at t="
                     f"{times[k_min]:.3g} (theory {e_opt:.4g} at t*={t_opt:.3g}; Advani & Saxe's units: "
                     f"{2 * e_opt:.4g} at t*/alpha = {t_opt * P / N:.3g}); final {test.mean(axis=1)[-1]:.4g} "
                     f"(theory {th_gen[-1]:.4g}, t->inf {metrics[f'test_asymptote_{tag}']:.4g}); max |z| train "
                     f"{metrics[f'train_zscore_max_{tag}']:.2f}, test {metrics[f'test_zscore_max_{tag}']:.2f}")
    bar.close()
    grid = np.linspace(0.1, 3.0, 30)
    writer.theory("asymptote_vs_alpha", [lt.advani_saxe_asymptote(g, noise, teacher, init) if g != 1 else np.inf
                                         for g in grid], coords={"alpha": grid}, source=SOURCE,
                  equation="E_gen(t -> inf): (1/2)[s^2 + s^2/(a - 1)] (a > 1); (1/2)[s^2 + (s_w^2 + s_0^2)(1 - a) + "
                           "s^2 a/(1 - a)] (a < 1)")
    writer.theory("optimal_vs_alpha", [lt.optimal_stopping_time(g, noise, teacher, init, 100 * p["t_max"], 801)[1]
                                       for g in grid], coords={"alpha": grid}, source=SOURCE,
                  equation="min_t E_gen(t) (gradient flow)", attrs={"error_convention": ERROR_CONVENTION})
    writer.comparison(**metrics, time_convention=TIME_CONVENTION, error_convention=ERROR_CONVENTION)
    writer.claims(*claims(measured, theory, R))
    return "complete", "", lines


def plot(run, path):
    ratios = sorted(run.element(n).attrs["alpha"] for n in run.names("observables") if n.startswith("test_"))
    tags = sorted((n[5:] for n in run.names("observables") if n.startswith("test_")),
                  key=lambda t: run.element(f"test_{t}").attrs["alpha"])
    fig, axes = figure(3, title=f"linear student-teacher (Advani & Saxe 2017): P={run.attrs.get('params_P')}, "
                                f"noise {run.attrs.get('noise_used', 0):.3g}, lr={run.params['lr']:g}, seed {run.seed}")
    colors = __import__("matplotlib").colormaps["viridis"](np.linspace(0.0, 0.85, max(len(tags), 2)))
    comp = run.comparison
    for ax, kind in zip(axes[:2], ("train", "test")):
        for c, tag, a in zip(colors, tags, ratios):
            el, th = run.element(f"{kind}_{tag}"), run.theory(f"{kind}_{tag}")
            t = np.maximum(el.time, el.time[1] / 2)
            ax.fill_between(t, el.value[:, 0] - 2 * el.value[:, 1], el.value[:, 0] + 2 * el.value[:, 1], color=c,
                            alpha=0.25, lw=0)
            ax.plot(t, el.value[:, 0], color=c, lw=1.8, label=f"alpha = N/P = {a:.3g}")
            ax.plot(t, th.value, **{**THEORY, "lw": 1.1})
            if kind == "test":
                ax.axvline(comp[f"optimal_time_{tag}"], color=c, ls=":", lw=1.2)
        ax.plot([], [], label="Marchenko-Pastur theory", **THEORY)
        if kind == "test":
            ax.plot([], [], color="grey", ls=":", label="optimal stopping time t*")
        ax.set(xscale="log", yscale="log", xlabel="t = step x lr", ylabel=f"{kind} error (mean +- 2 SE)",
               title=f"{kind} error vs time")
        ax.legend(fontsize=7)
    ax = axes[2]
    if "asymptote_vs_alpha" not in run.names("theory"):   # a diverged run stops before the sweep
        ax.set(title=f"{run.status}: {run.message}")
        return save(fig, path)
    asy, opt = run.theory("asymptote_vs_alpha"), run.theory("optimal_vs_alpha")
    ax.plot(asy.coords["alpha"], asy.value, label="t -> inf (diverges at alpha = 1)", **THEORY)
    ax.plot(opt.coords["alpha"], opt.value, color="grey", lw=1.5, label="at the optimal stopping time t*")
    for c, tag, a in zip(colors, tags, ratios):
        ax.plot(a, comp[f"test_final_{tag}"], "o", color=c, label=f"measured at t_max, alpha = {a:.3g}")
        ax.plot(a, comp[f"measured_min_test_{tag}"], "s", color=c, mfc="white")
    top = np.nanmax(np.where(np.isfinite(asy.value), asy.value, np.nan))
    ax.set(xlabel="alpha = N / P", ylabel="test error", ylim=(0, min(top, 4 * np.nanmax(opt.value))),
           title="test error vs alpha (squares: measured min)")
    ax.legend(fontsize=7)
    return save(fig, path)


SCENARIO = Scenario(
    name="generalization-dynamics",
    summary="train/test error of a linear student vs time across sample ratios N/P, against the "
            "Marchenko-Pastur theory of Advani & Saxe 2017 with the optimal stopping time",
    params=(
        Param("data", str, "", "NPZ/CSV/HDF5 pool with X and one target column Y (empty = synthetic Gaussian "
                                "teacher-student, where the theory is exact)"),
        Param("params", int, 100, "number of parameters P (input dimension; ignored with data)", at_least(1)),
        Param("ratios", str, "0.5,1,2", "sample ratios alpha = N/P, comma-separated", list_check(float)),
        Param("noise", float, 0.5, "label-noise standard deviation (synthetic data)", non_negative),
        Param("teacher", float, 1.0, "teacher norm |w_bar|^2 (signal variance; synthetic data)", positive),
        Param("init", float, 0.0, "initial student norm |w(0)|^2", non_negative),
        Param("students", int, 20, "independent students (data sets) per ratio", at_least(2)),
        Param("lr", float, 0.1, "GD learning rate", positive),
        Param("t_max", float, 200.0, "training time t = steps x lr", positive),
        Param("records", int, 40, "log-spaced recording points", at_least(2)),
    ),
    run=run,
    plot=plot,
    presets={"small": dict(params=60, students=20, t_max=200.0, records=25)},
    validate=_validate,
)
