"""deep-linear-acceleration: does depth speed up gradient descent? l_p regression with a deep linear network
x -> W_N ... W_1 x (Arora, Cohen & Hazan 2018, "On the optimization of deep networks: implicit acceleration
by overparameterization", sec. 6).

For each loss exponent p and depth N: discrete GD on the factors from a balanced start with the same small
end-to-end matrix W_e(0) (norm init_scale, random direction from the seed), over a grid of learning rates;
the best learning rate per depth is kept, as in the paper (fewest steps until the excess loss L - L* falls
to `target` times its initial value, then the lowest final excess). Beside each curve: the
end-to-end ODE (their Theorem 1) at t = step * lr, which the factors follow exactly in the small-lr limit;
dW_e/dt = -sum_j (W_e W_e^T)^{(j-1)/N} grad L (W_e^T W_e)^{(N-j)/N}. Depth-1 baselines: GD, AdaGrad and Adam
(each at its best learning rate from its grid). The loss is L = (1/(p n)) sum |W_e x - y|_p^p; curves show
the excess L - L* over the convex minimum L* (damped Newton). With p = 4, N > 1 reaches the target in fewer
steps than depth 1 at its best rate (the end-to-end rate |W_e|^{2-2/N} grows as the loss flattens); with p = 2
it does not: there GD's best rate is set by the fixed curvature, which depth cannot beat.

Claims (`claims`): for p > 2 the best deep net reaches the target in fewer than ACCELERATION times the steps of
depth 1, for p = 2 it does not (Arora, Cohen & Hazan 2018, Sec. 6); and GD on the factors follows
the end-to-end ODE (their Theorem 1, exact as lr -> 0) to first order in lr: the largest gap
|L_GD(k) - L_ODE(k lr)| / (L(0) - L*) over the run, at the smallest learning rate of the grid and at half of it
(twice the steps, the same times), halves with the step: fitted order log2(gap(lr) / gap(lr/2)) = 1, within
ORDER_TOLERANCE = 1/2 (half-way to the neighbouring orders 0 and 2, so the claim tells them apart).

Every trajectory is streamed to the run file as it is recorded (elements loss_gd_<p>_depth<N>_lr<lr> and
balancedness_..., loss_<adagrad|adam>_<p>_lr<lr>, and the half-lr run of the order claim
loss_gd_<p>_depth<N>_half_lr<lr/2>); the best learning rate's curves are then stored again under the names the
figure reads (loss_<p>_depth<N>, ...). An interrupt stops the run there with status interrupted, no claims.
"""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from sgdsim.deep_linear import training as dl
from sgdsim.compare.claims import Claim
from sgdsim.networks.datasets import load_or_default
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, list_check, non_negative, parse_list, positive
from sgdsim.runloop import Schedule, record_steps_array

SOURCE = "Arora, Cohen & Hazan 2018, 'On the optimization of deep networks: implicit acceleration by " \
         "overparameterization', Theorem 1 (end-to-end dynamics under balanced initialization)"
EQUATION = "dW_e/dt = -lambda N W_e - sum_j (W_e W_e^T)^((j-1)/N) grad L(W_e) (W_e^T W_e)^((N-j)/N), t = step * lr"
ACCELERATION = 0.5   # depth "accelerates" when it needs fewer than this fraction of depth 1's steps to the target
ORDER_TOLERANCE = 0.5   # fitted order of the GD-vs-ODE gap: half-way between the neighbouring orders 0 and 2
ACCELERATION_SOURCE = "Arora, Cohen & Hazan 2018, Sec. 6 (experiments): depth accelerates l_4, not l_2 regression"


def _validate(p: dict) -> str | None:
    bad = [x for x in parse_list(p["ps"], float, 0) if x < 2]
    return f"ps: every loss exponent must be at least 2, got {bad[0]:g}" if bad else None


def record_steps(steps: int, points: int) -> np.ndarray:
    """0, steps and about `points` log-spaced steps between them."""
    return record_steps_array(Schedule(log_points=max(points, 2)), steps)


def steps_to_target(traj, Lstar: float, target: float) -> float:
    """First recorded step with L - L* <= target (L(0) - L*), log-interpolated between records; inf if never."""
    excess = traj.loss - Lstar
    goal = target * excess[0]
    hit = np.nonzero(excess <= goal)[0]
    if len(hit) == 0:
        return float("inf")
    k = int(hit[0])
    if k == 0:
        return 0.0
    s0, s1 = max(traj.steps[k - 1], 1), max(traj.steps[k], 1)
    e0, e1 = max(excess[k - 1], 1e-300), max(excess[k], 1e-300)
    frac = np.log(e0 / goal) / np.log(e0 / e1) if e0 > e1 else 1.0
    return float(np.exp(np.log(s0) + frac * (np.log(s1) - np.log(s0))))


def score(traj, Lstar: float, target: float) -> tuple[float, float]:
    """Rank runs: fewer steps to the target first, then the lower final excess loss."""
    return steps_to_target(traj, Lstar, target), float(traj.loss[-1] - Lstar)


def gap_to_ode(loss: np.ndarray, ode_loss: np.ndarray, Lstar: float) -> float:
    """max_k |L_GD(k) - L_ODE(k lr)| / (L(0) - L*): the largest gap over the recorded steps, in units of the
    initial excess loss (NaN if either run stopped early)."""
    if len(loss) != len(ode_loss):
        return float("nan")
    return float(np.max(np.abs(loss - ode_loss)) / (ode_loss[0] - Lstar))


def step_ratios(to_target: dict, total: int) -> tuple[float, float]:
    """(steps of the best deep net / steps of depth 1) to the target, as (an upper bound, a lower bound):
    `to_target` maps depth -> steps (inf: not reached). Depth 1 not reaching the target within `total` steps
    counts as reaching it at `total` for the upper bound (which can only understate the acceleration) and as
    never for the lower bound (0 unless the deep net also misses: then NaN, undecided)."""
    s1 = float(to_target[1])
    sd = float(min(v for N, v in to_target.items() if N > 1))
    upper = sd / min(s1, total) if np.isfinite(sd) else float("inf")
    lower = sd / s1 if np.isfinite(s1) or np.isfinite(sd) else float("nan")
    return upper, lower


def claims(measured: dict, theory: dict) -> list[Claim]:
    """The scenario's claims from its measurements and the theory it holds them against.

    measured: "to_target" {p: {depth: steps to the target}}, "total" (steps of the run), "order" {p: fitted
    order of the GD-vs-ODE gap per deep-or-shallow depth}; theory: "accelerates" {p: bool}, "order" (1: GD is a
    first-order discretization of the end-to-end flow)."""
    out = []
    for q, to_target in measured["to_target"].items():
        if 1 in to_target and len(to_target) > 1:
            upper, lower = step_ratios(to_target, measured["total"])
            if theory["accelerates"][q]:
                out.append(Claim(
                    name=f"depth_accelerates_p{q:g}", test="less", measured=upper, predicted=ACCELERATION,
                    statement=f"l_{q:g} loss: the best deep net needs fewer than {ACCELERATION:g} x the GD steps of "
                              f"depth 1 to reach the target (each at its best lr)", source=ACCELERATION_SOURCE))
            else:
                out.append(Claim(
                    name=f"depth_no_acceleration_p{q:g}", test="greater", measured=lower, predicted=ACCELERATION,
                    statement=f"l_{q:g} loss: no deep net needs fewer than {ACCELERATION:g} x the GD steps of "
                              f"depth 1 to reach the target (each at its best lr)", source=ACCELERATION_SOURCE))
        out.append(Claim(
            name=f"gd_follows_ode_first_order_p{q:g}", test="abs", tolerance=ORDER_TOLERANCE,
            measured=measured["order"][q], predicted=theory["order"],
            statement=f"l_{q:g} loss, every depth: the GD-vs-end-to-end-ODE gap at the smallest lr is of order "
                      f"{theory['order']:g} in lr (log2 of its ratio to the gap at lr/2)", source=SOURCE))
    return out


def _best(trajs: dict, Lstar: float, target: float) -> tuple[float | None, object]:
    """The learning rate whose run scores best (diverged runs excluded)."""
    done = {lr: t for lr, t in trajs.items() if t.status == "complete"}
    if not done:
        return None, None
    lr = min(done, key=lambda k: score(done[k], Lstar, target))
    return lr, done[lr]


def run(p: dict, seed: int, writer, progress: bool):
    X, Y, source = load_or_default(p["data"], "lp_regression.npz")
    ps = parse_list(p["ps"], float, 0)
    depths = parse_list(p["depths"], int, 1)
    lrs = parse_list(p["lrs"], float, 0)
    adaptive_lrs = parse_list(p["adaptive_lrs"], float, 0)
    steps = record_steps(p["steps"], p["records"])
    rng = np.random.default_rng(seed)
    direction = rng.standard_normal((Y.shape[1], X.shape[1]))
    We0 = p["init_scale"] * direction / np.linalg.norm(direction)
    width = max(X.shape[1], Y.shape[1]) if p["width"] == 0 else p["width"]
    writer.attrs(data_source=source, n_examples=len(X), d_in=X.shape[1], d_out=Y.shape[1])

    jobs = len(ps) * (len(depths) * len(lrs) + 2 * len(adaptive_lrs))
    bar = tqdm(total=jobs, disable=None if progress else True, delay=1.0, unit="run", leave=False)
    measured = {"to_target": {}, "order": {}, "total": int(steps[-1])}
    metrics, lines = {}, [f"deep-linear-acceleration: {source}, n={len(X)}, d_in={X.shape[1]}, "
                          f"d_out={Y.shape[1]}, |W_e(0)|={p['init_scale']:g}, {p['steps']} steps"]
    for q in ps:
        tag = f"p{q:g}"
        _, Lstar = dl.lp_minimum(X, Y, q)
        writer.theory(f"loss_minimum_{tag}", Lstar, source="convex minimum of the l_p loss (damped Newton)",
                      equation="L* = min_W (1/(p n)) sum |W x - y|_p^p")
        sweep = np.full((len(depths), len(lrs)), np.nan)
        sweep_ode = np.full((len(depths), len(lrs)), np.nan)
        every_time = np.unique(np.concatenate([steps * lr for lr in lrs]))   # one ODE run serves every lr
        excess, orders = {}, []
        for i, N in enumerate(depths):
            Ws0 = dl.balanced_init(We0, N, [width] * (N - 1))
            trajs = {}
            for k, lr in enumerate(lrs):
                trajs[lr] = dl.train_factors(Ws0, X, Y, lr, steps, p=q, weight_decay=p["weight_decay"],
                                             writer=writer, name=f"gd_{tag}_depth{N}_lr{lr:g}",
                                             attrs={"lr": lr, "depth": N, "p": q, "time_unit": "t = step * lr"})
                if trajs[lr].status == "interrupted":
                    return _cut_short(trajs[lr], f"p={q:g}, depth {N}, lr={lr:g}", lines, bar)
                if trajs[lr].status == "complete":
                    sweep[i, k] = trajs[lr].loss[-1] - Lstar
                bar.update()
            lr, best = _best(trajs, Lstar, p["target"])
            if best is None:
                bad = trajs[min(lrs)]
                return "diverged", f"p={q:g}, depth {N}: every learning rate diverged ({bad.message} at " \
                                   f"lr={min(lrs):g})", lines + [f"  p={q:g} depth {N}: every lr diverged"]
            ode = dl.end_to_end_flow(We0, N, X, Y, every_time, p=q, weight_decay=p["weight_decay"],
                                     rtol=p["rtol"], atol=p["rtol"] * 1e-2)
            reached = np.concatenate([ode.loss, np.full(len(every_time) - len(ode.loss), np.nan)])
            at = lambda rate: reached[np.searchsorted(every_time, steps * rate)]  # noqa: E731
            sweep_ode[i] = [at(rate)[-1] - Lstar for rate in lrs]
            ode_loss = at(lr)
            name = f"loss_{tag}_depth{N}"
            el = writer.element(name, (), attrs={"description": f"L(W_e) of GD on {N} factors at the best lr",
                                                 "lr": lr, "depth": N, "p": q, "time_unit": "t = step * lr"})
            for s, t, v in zip(best.steps, best.time, best.loss):
                el.append(s, t, v)
            writer.theory(name, ode_loss, step=steps, time=steps * lr, source=SOURCE, equation=EQUATION,
                          attrs={"lr": lr, "depth": N, "status": ode.status})
            if N > 1:
                el = writer.element(f"balancedness_{tag}_depth{N}", (), attrs={
                    "description": "max_j |W_{j+1}^T W_{j+1} - W_j W_j^T|_F during GD at the best lr", "lr": lr})
                for row in zip(best.steps, best.time, best.unbalance):
                    el.append(*row)
                writer.theory(f"balancedness_{tag}_depth{N}", np.zeros(len(steps)), step=steps, time=steps * lr,
                              source="balanced initialization is kept exactly by the factor gradient flow "
                                     "(Arora, Cohen & Hazan 2018)", equation="W_{j+1}^T W_{j+1} - W_j W_j^T = 0")
                metrics[f"balancedness_max_{tag}_depth{N}"] = float(np.max(best.unbalance))
            excess[N] = score(best, Lstar, p["target"])
            lr0 = min(lrs)   # the order of the gap: the smallest lr and half of it, over the same times
            half = dl.train_factors(Ws0, X, Y, lr0 / 2, 2 * steps, p=q, weight_decay=p["weight_decay"],
                                    writer=writer, name=f"gd_{tag}_depth{N}_half_lr{lr0 / 2:g}",
                                    attrs={"lr": lr0 / 2, "depth": N, "p": q, "time_unit": "t = step * lr"})
            if half.status == "interrupted":
                return _cut_short(half, f"p={q:g}, depth {N}, lr={lr0 / 2:g}", lines, bar)
            gaps = (gap_to_ode(trajs[lr0].loss, at(lr0), Lstar), gap_to_ode(half.loss, at(lr0), Lstar))
            orders.append(np.log2(gaps[0] / gaps[1]))
            metrics |= {f"gd_vs_ode_gap_{tag}_depth{N}_lr{lr0:g}": gaps[0],
                        f"gd_vs_ode_gap_{tag}_depth{N}_lr{lr0 / 2:g}": gaps[1],
                        f"gd_vs_ode_order_{tag}_depth{N}": orders[-1]}
            gap = abs(best.loss[-1] - ode_loss[-1]) / ode_loss[-1]
            metrics |= {f"best_lr_{tag}_depth{N}": lr, f"excess_{tag}_depth{N}": excess[N][1],
                        f"steps_to_target_{tag}_depth{N}": excess[N][0],
                        f"gd_vs_ode_final_rel_gap_{tag}_depth{N}": float(gap)}
        measured["to_target"][q] = {N: excess[N][0] for N in depths}
        measured["order"][q] = np.array(orders)
        grid = {"depth": np.array(depths), "lr": np.array(lrs)}
        writer.element(f"final_excess_{tag}", sweep.shape, coords=grid,
                       attrs={"description": "L - L* after the last step, per depth and lr (NaN: diverged)"}
                       ).append(int(steps[-1]), float("nan"), sweep)
        writer.theory(f"final_excess_{tag}", sweep_ode, coords=grid, source=SOURCE, equation=EQUATION + "; at "
                      "t = steps * lr for each lr")
        for opt in ("adagrad", "adam"):
            trajs = {}
            for lr in adaptive_lrs:
                trajs[lr] = dl.train_depth1(We0, X, Y, opt, lr, steps, p=q, writer=writer, name=f"{opt}_{tag}_lr{lr:g}",
                                            attrs={"lr": lr, "p": q, "time_unit": "t = step * lr"})
                if trajs[lr].status == "interrupted":
                    return _cut_short(trajs[lr], f"p={q:g}, depth 1 {opt}, lr={lr:g}", lines, bar)
                bar.update()
            lr, best = _best(trajs, Lstar, p["target"])
            if best is None:
                metrics[f"excess_{tag}_{opt}"] = metrics[f"steps_to_target_{tag}_{opt}"] = float("nan")
                continue
            el = writer.element(f"loss_{tag}_{opt}", (), attrs={"description": f"L(W) of {opt} at depth 1, best lr",
                                                                 "lr": lr, "p": q})
            for s, t, v in zip(best.steps, best.time, best.loss):
                el.append(s, t, v)
            writer.theory(f"loss_{tag}_{opt}", np.full(len(best.steps), Lstar), step=best.steps, time=best.time,
                          source="convex minimum L* (the limit of any convergent optimizer; adaptive methods have "
                                 "no closed-form curve)", equation="L* = min_W (1/(p n)) sum |W x - y|_p^p",
                          attrs={"lr": lr})
            metrics |= {f"best_lr_{tag}_{opt}": lr, f"excess_{tag}_{opt}": best.loss[-1] - Lstar,
                        f"steps_to_target_{tag}_{opt}": steps_to_target(best, Lstar, p["target"])}
        deep = [N for N in depths if N > 1]
        if 1 in depths and deep:
            best_deep = min(deep, key=lambda N: excess[N])
            (s1, e1), (sd, ed) = excess[1], excess[best_deep]
            faster = sd < ACCELERATION * s1 if np.isfinite(s1) else (np.isfinite(sd) or ed < ACCELERATION * e1)
            metrics |= {f"best_depth_{tag}": best_deep, f"accelerates_{tag}": bool(faster)}
        lines.append(f"  p={q:g}: L* = {Lstar:.6g}; at the best lr, steps until L - L* <= {p['target']:g} (L(0) - L*) "
                     f"and L - L* after {p['steps']} steps:")
        for N in depths:
            lines.append(f"    depth {N} GD: {_steps(excess[N][0])}, {excess[N][1]:.3e} "
                         f"(lr {metrics[f'best_lr_{tag}_depth{N}']:g}; "
                         f"end-to-end ODE at t = step lr: final loss differs by "
                         f"{metrics[f'gd_vs_ode_final_rel_gap_{tag}_depth{N}']:.1%}; gap order in lr "
                         f"{metrics[f'gd_vs_ode_order_{tag}_depth{N}']:.2f})")
        for opt in ("adagrad", "adam"):
            lines.append(f"    depth 1 {opt}: {_steps(metrics[f'steps_to_target_{tag}_{opt}'])}, "
                         f"{metrics[f'excess_{tag}_{opt}']:.3e}")
        if f"accelerates_{tag}" in metrics:
            lines.append(f"    -> depth {metrics[f'best_depth_{tag}']} vs depth 1 GD: "
                         f"{'accelerates' if metrics[f'accelerates_{tag}'] else 'no acceleration'}")
    bar.close()
    writer.comparison(**metrics)
    writer.claims(*claims(measured, {"accelerates": {q: q > 2 for q in ps}, "order": 1.0}))
    return "complete", "", lines


def _cut_short(traj, where: str, lines: list, bar):
    """An interrupted trajectory ends the run: every record taken is already in the file (streamed)."""
    bar.close()
    return traj.status, f"{where}: {traj.message}", lines + [f"  {where}: {traj.message}; the trajectories run so "
                                                             "far are in the file, no claims"]


def _steps(x: float) -> str:
    return f"{x:.0f} steps" if np.isfinite(x) else "target not reached"


def plot(run, path):
    ps = parse_list(run.params["ps"], float, 0)
    depths = parse_list(run.params["depths"], int, 1)
    fig, axes = figure(len(ps) + 1, title=f"deep linear l_p regression: GD on factors (solid) vs end-to-end ODE "
                                          f"(dashed), |W_e(0)| = {run.params['init_scale']:g}, seed {run.seed}")
    colors = __import__("matplotlib").colormaps["viridis"](np.linspace(0.0, 0.85, max(len(depths), 2)))
    have = set(run.names("observables"))   # a diverged run stops early: draw what it recorded
    for ax, q in zip(axes, ps):
        tag = f"p{q:g}"
        if f"loss_minimum_{tag}" not in run.names("theory"):
            ax.set(title=f"p = {q:g}: not reached ({run.message})" if run.message else f"p = {q:g}: no data")
            continue
        Lstar = float(run.theory(f"loss_minimum_{tag}").value)
        floor = max(Lstar * 1e-12, 1e-300)
        for c, N in zip(colors, depths):
            if f"loss_{tag}_depth{N}" not in have:
                ax.plot([], [], color=c, label=f"depth {N}: every lr diverged")
                continue
            el = run.element(f"loss_{tag}_depth{N}")
            th = run.theory(f"loss_{tag}_depth{N}")
            ax.loglog(np.maximum(el.step, 1), np.maximum(el.value - Lstar, floor), color=c, lw=1.8,
                      label=f"depth {N} GD, lr={el.attrs['lr']:g}")
            ax.loglog(np.maximum(th.step, 1), np.maximum(th.value - Lstar, floor), **{**THEORY, "lw": 1.0})
        for opt, style in (("adagrad", ":"), ("adam", "-.")):
            if f"loss_{tag}_{opt}" in have:
                el = run.element(f"loss_{tag}_{opt}")
                ax.loglog(np.maximum(el.step, 1), np.maximum(el.value - Lstar, floor), color="C3", ls=style,
                          label=f"depth 1 {opt}, lr={el.attrs['lr']:g}")
        ax.plot([], [], label="end-to-end ODE (Arora et al. 2018 Thm 1)", **THEORY)
        acc = run.comparison.get(f"accelerates_{tag}")
        verdict = ("every learning rate diverged" if not any(f"loss_{tag}_depth{N}" in have for N in depths) else
                   "depth accelerates" if acc else "no acceleration from depth")
        ax.set(xlabel="iteration", ylabel="excess loss L - L*", title=f"p = {q:g}: {verdict}")
        ax.legend(fontsize=7)
    ax = axes[-1]
    for q, ls in zip(ps, ("-", "--", ":", "-.")):
        if f"final_excess_p{q:g}" not in have:
            continue
        el = run.element(f"final_excess_p{q:g}")
        for c, (i, N) in zip(colors, enumerate(el.coords["depth"])):
            ax.loglog(el.coords["lr"], np.maximum(el.value[0][i], 1e-16), ls=ls, marker="o", ms=3, color=c,
                      label=f"p={q:g}, depth {N}")
            ax.loglog(el.coords["lr"], np.maximum(run.theory(f"final_excess_p{q:g}").value[i], 1e-16), ls="none",
                      marker="x", ms=5, color="black")
    ax.plot([], [], ls="none", marker="x", color="black", label="end-to-end ODE at t = steps x lr")
    ax.set(xlabel="learning rate", ylabel="final excess loss (floor 1e-16; missing: diverged)",
           title="learning-rate sweep (solid p=2, dashed p=4)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return save(fig, path)


SCENARIO = Scenario(
    name="deep-linear-acceleration",
    summary="l_p regression with deep linear nets: GD on factors vs the end-to-end ODE vs depth-1 GD, AdaGrad "
            "and Adam; depth accelerates for p = 4, not for p = 2 (Arora, Cohen & Hazan 2018)",
    params=(
        Param("data", str, "", "NPZ/CSV/HDF5 file with X (n, d_in) and Y (n, d_out); empty = "
                                "data/lp_regression.npz (condition number 100)"),
        Param("ps", str, "2,4", "loss exponents p >= 2, comma-separated", list_check(float)),
        Param("depths", str, "1,2,3,4", "network depths N, comma-separated", list_check(int)),
        Param("lrs", str, "0.01,0.03,0.1,0.3,1", "learning rates tried for GD at every depth (best kept)",
              list_check(float)),
        Param("adaptive_lrs", str, "0.003,0.01,0.03,0.1,0.3", "learning rates tried for AdaGrad and Adam",
              list_check(float)),
        Param("steps", int, 3000, "GD steps", at_least(1)),
        Param("target", float, 1e-4, "target excess loss, as a fraction of the initial one (ranks learning "
                                     "rates and depths)", lambda v: None if 0 < v < 1 else "must be in (0, 1)"),
        Param("records", int, 60, "log-spaced recording points", at_least(2)),
        Param("init_scale", float, 0.01, "Frobenius norm of the common initial end-to-end matrix", positive),
        Param("width", int, 0, "hidden width (0 = max(d_in, d_out))", non_negative),
        Param("weight_decay", float, 0.0, "weight decay lambda on every factor", non_negative),
        Param("rtol", float, 1e-8, "relative tolerance of the end-to-end ODE integration", positive),
    ),
    run=run,
    plot=plot,
    presets={"small": dict(depths="1,2,3", lrs="0.03,0.1,0.3,1", adaptive_lrs="0.01,0.1", steps=1200, records=20)},
    validate=_validate,
)
