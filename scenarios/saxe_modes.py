"""saxe-modes: the singular modes of a deep linear network are learned one by one, each along a sigmoid
(Saxe, McClelland & Ganguli 2014, "Exact solutions to the nonlinear dynamics of learning in deep linear
neural networks": the two-layer sigmoid, its learning time and the deep analogue).

Square loss L = (1/2n) sum |W_e x - y|^2 with whitened inputs (X^T X / n = I; a data set that is not white is
ZCA-whitened first, X -> X (X^T X / n)^{-1/2}), Sigma_yx = Y^T X / n = U diag(s) V^T. Discrete GD on N factors
from the decoupled balanced start W_e(0) = u0 U V^T (or small Gaussian factors); the recorded mode strengths
u_k(t) = U_k^T W_e V_k against the exact solution of du/dt = N u^{2-2/N} (s - u) at t = step * lr: for N = 2
the sigmoid u = s e^{2st} / (e^{2st} - 1 + s/u0), and the learning time t_half = ln(s/u0 - 1) / (2 s). Stronger
modes are learned first; deeper nets have sharper transitions and longer plateaus.

Claims (`claims`), per depth. GD on the decoupled balanced factors is exactly Euler's method with step lr on
da/dt = f(a) = a^(N-1) (s - a^N), u = a^N; Euler reaches a level later than the flow by
dt = (lr/2) ln(f(a_1) / f(a_0)) + O(lr^2) (each step covers h f(a), which the flow covers in
h - h^2 f'(a)/2; summed, (h/2) int f'/f da), so (1) the measured half-times equal Saxe et al.'s within twice
this leading correction (relative, the largest over the modes: the O(lr^2) rest is smaller while lr s << 1), and
(2) the measured gap t_GD - t_half is that correction to within half of it (its relative remainder is of order
lr s_max, a few percent here; a half tells a first-order gap from none and from a doubled one).
"""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from sgdsim.deep_linear import training as dl
from sgdsim.deep_linear import theory as lt
from sgdsim.compare.claims import Claim
from sgdsim.networks.datasets import load_or_default
from sgdsim.errors import ParameterError
from sgdsim.plotting import THEORY, figure, overview, save
from sgdsim.scenario import Param, Scenario, at_least, list_check, non_negative, parse_list, positive

SOURCE = "Saxe, McClelland & Ganguli 2014, 'Exact solutions to the nonlinear dynamics of learning in deep " \
         "linear neural networks' (sigmoid for N = 2, deep analogue for N > 2)"
EQUATION = "du/dt = N u^(2-2/N) (s - u); N = 2: u = s e^(2st) / (e^(2st) - 1 + s/u0); t = step * lr"
HALF_TIME_SOURCE = "Saxe, McClelland & Ganguli 2014, learning time t = (1/2s) ln(u_f (s - u0) / (u0 (s - u_f))) " \
                   "at u_f = s/2 (depth 2; deeper: its integral form)"
EULER_SOURCE = "Euler's method on da/dt = a^(N-1) (s - a^N): time lag (lr/2) ln(f(a_half) / f(a_0)) + O(lr^2) " \
               "(first-order error of the time to a level, summed per step)"
LEADING_ORDER_FACTOR = 2.0   # claim (1): the flow's half-times hold within this many leading Euler corrections
REMAINDER = 0.5              # claim (2): the gap is the leading Euler correction to within this fraction of it


def whiten(X: np.ndarray) -> tuple[np.ndarray, bool]:
    """X (X^T X / n)^{-1/2} (ZCA), and whether anything changed; ParameterError if X^T X is singular."""
    C = X.T @ X / len(X)
    if np.allclose(C, np.eye(X.shape[1]), atol=1e-10):
        return X, False
    h, V = np.linalg.eigh(C)
    if h.min() <= 1e-12 * h.max():
        raise ParameterError(f"saxe-modes needs inputs of full rank to whiten them (X^T X / n has eigenvalue "
                             f"{h.min():.3g}); drop redundant input columns")
    return X @ (V / np.sqrt(h)) @ V.T, True


def half_time_measured(t: np.ndarray, u: np.ndarray, s: float) -> float:
    """First time u crosses s/2, linearly interpolated; NaN if it never does."""
    above = np.nonzero(u >= s / 2)[0]
    if len(above) == 0:
        return float("nan")
    k = int(above[0])
    if k == 0:
        return float(t[0])
    return float(t[k - 1] + (s / 2 - u[k - 1]) * (t[k] - t[k - 1]) / (u[k] - u[k - 1]))


def euler_lag(s, u0, depth: int, lr: float) -> np.ndarray:
    """Leading-order delay of GD (Euler with step lr on da/dt = f(a) = a^(N-1) (s - a^N), a = u^(1/N)) in
    reaching u = s/2 from u0: (lr/2) ln(f(a_half) / f(a_0)) (module docstring)."""
    s, u0 = np.asarray(s, float), np.asarray(u0, float)
    f = lambda a: a ** (depth - 1) * (s - a ** depth)  # noqa: E731
    return lr / 2 * np.log(f((s / 2) ** (1 / depth)) / f(u0 ** (1 / depth)))


def claims(measured: dict, theory: dict) -> list[Claim]:
    """Per depth N: measured half-times against Saxe et al.'s flow within LEADING_ORDER_FACTOR x the leading
    Euler correction, and the gap against that correction within REMAINDER of it (module docstring).
    measured: {"half_time": {N: per-mode times}}; theory: {"half_time": {N: ...}, "euler_lag": {N: ...}}."""
    out = []
    for N, t_meas in measured["half_time"].items():
        t_half, lag = np.asarray(theory["half_time"][N]), np.asarray(theory["euler_lag"][N])
        out += [Claim(name=f"half_times_depth{N}", test="rel", measured=t_meas, predicted=t_half,
                      tolerance=float(LEADING_ORDER_FACTOR * np.max(np.abs(lag) / t_half)),
                      statement=f"depth {N}: every mode's learning time (u = s/2) is Saxe et al.'s, within "
                                f"{LEADING_ORDER_FACTOR:g} x the largest first-order GD correction",
                      source=HALF_TIME_SOURCE),
                Claim(name=f"half_time_lag_depth{N}", test="rel", tolerance=REMAINDER,
                      measured=np.asarray(t_meas) - t_half, predicted=lag,
                      statement=f"depth {N}: GD lags Saxe et al.'s flow by the first-order Euler delay, within "
                                f"{REMAINDER:g} of it", source=EULER_SOURCE)]
    return out


def run(p: dict, seed: int, writer, progress: bool):
    X, Y, source = load_or_default(p["data"], "hierarchy.npz")
    if p["batch"] > len(X):
        raise ParameterError(f"batch {p['batch']} is larger than the data ({len(X)} examples)")
    X, whitened = whiten(X)
    U, s, Vt = lt.whitened_modes(X, Y)
    modes = s > 2 * p["u0"]   # modes the sigmoid describes (weaker ones start above s/2)
    if not modes.any():
        raise ParameterError(f"u0 ({p['u0']:g}) must be below half the strongest singular value {s.max():.3g}")
    U, s, Vt = U[:, modes], s[modes], Vt[modes]
    depths = parse_list(p["depths"], int, 1)
    t_max = p["t_max"] or 1.5 * max(lt.saxe_half_time(s.min(), p["u0"], N) for N in depths)
    steps = np.unique(np.linspace(0, round(t_max / p["lr"]), p["records"]).round()).astype(np.int64)
    width = p["width"] or max(X.shape[1], Y.shape[1])
    rng = np.random.default_rng(seed)
    writer.attrs(data_source=source, whitened=whitened, n_examples=len(X))
    writer.theory("singular_values", s, source="SVD of Sigma_yx = Y^T X / n (whitened X)",
                  equation="Sigma_yx = U diag(s) V^T", coords={"mode": np.arange(len(s))})

    metrics, measured, theory = {}, {"half_time": {}}, {"half_time": {}, "euler_lag": {}}
    method = f"SGD (batch {p['batch']})" if p["batch"] else "GD"
    lines = [f"saxe-modes: {source}{' (ZCA-whitened)' if whitened else ''}, n={len(X)}, {len(s)} modes s = "
             + ", ".join(f"{v:.3g}" for v in s) + f"; {method} lr={p['lr']:g}, init {p['init']}, t_max={t_max:.3g}"]
    for N in tqdm(depths, disable=None if progress else True, delay=1.0, unit="depth", leave=False):
        if p["init"] == "decoupled":
            Ws0 = dl.balanced_init(p["u0"] * U @ Vt, N, [width] * (N - 1))
        else:
            Ws0 = dl.gaussian_init([X.shape[1], *[width] * (N - 1), Y.shape[1]], p["init_scale"], rng)
        # every record reaches the file as it is taken (elements modes_, loss_ and balancedness_depth<N>)
        traj = dl.train_factors(Ws0, X, Y, p["lr"], steps, batch=p["batch"] or None, seed=seed, writer=writer,
                                name=f"depth{N}", modes=(U, Vt), attrs={"depth": N, "time_unit": "t = step * lr"})
        if traj.status != "complete":
            return traj.status, f"depth {N}: {traj.message}", lines + [f"  depth {N}: {traj.message}"]
        u = np.array([np.einsum("ik,ij,kj->k", U, We, Vt) for We in traj.We]).reshape(len(traj.We), len(s))
        u0 = u[0] if p["init"] == "gaussian" else np.full(len(s), p["u0"])
        u0 = np.clip(np.abs(u0), 1e-12, s / 2)   # Gaussian start: each mode's sigmoid from its own |u_k(0)|
        curves = {}   # degenerate modes share one curve
        for sk, u0k in zip(s, u0):
            if (sk, u0k) not in curves:
                curves[sk, u0k] = lt.saxe_mode(traj.time, sk, u0k, N)
        curve = np.stack([curves[sk, u0k] for sk, u0k in zip(s, u0)], axis=1)
        writer.theory(f"modes_depth{N}", curve, step=traj.steps, time=traj.time, source=SOURCE,
                      equation=EQUATION, coords={"mode": np.arange(len(s))},
                      attrs={"depth": N, "u0": u0, "exact": p["init"] == "decoupled"})
        loss_th = lt.saxe_loss_curve(X, Y, traj.time, float(p["u0"]), N) if p["init"] == "decoupled" else \
            np.sum(0.5 * (s - curve) ** 2, axis=1) + float(np.sum(Y ** 2)) / (2 * len(X)) - 0.5 * float(np.sum(s ** 2))
        writer.theory(f"loss_depth{N}", loss_th, step=traj.steps, time=traj.time, source=SOURCE,
                      equation="L = L_min + (1/2) sum_k (s_k - u_k(t))^2")
        writer.theory(f"balancedness_depth{N}", np.full(len(steps), traj.unbalance[0]), step=traj.steps,
                      time=traj.time, equation="d/dt (W_{j+1}^T W_{j+1} - W_j W_j^T) = 0",
                      source="conservation law of the factor gradient flow (Arora, Cohen & Hazan 2018; Du, Hu & "
                             "Lee 2018)")
        t_half = np.array([lt.saxe_half_time(sk, u0k, N) for sk, u0k in zip(s, u0)])
        t_meas = np.array([half_time_measured(traj.time, u[:, k], s[k]) for k in range(len(s))])
        writer.theory(f"half_time_depth{N}", t_half, source=SOURCE, coords={"mode": np.arange(len(s))},
                      equation="t_half = int_{u0}^{s/2} du / (N u^(2-2/N) (s - u)); N = 2: ln(s/u0 - 1) / (2s)")
        writer.element(f"half_time_depth{N}", (len(s),), coords={"mode": np.arange(len(s))},
                       attrs={"description": "first time u_k crosses s_k / 2 (NaN: not within the run)"}
                       ).append(int(steps[-1]), float(traj.time[-1]), t_meas)
        measured["half_time"][N], theory["half_time"][N] = t_meas, t_half
        theory["euler_lag"][N] = euler_lag(s, u0, N, p["lr"])
        writer.theory(f"half_time_lag_depth{N}", theory["euler_lag"][N], source=EULER_SOURCE,
                      coords={"mode": np.arange(len(s))}, equation="dt = (lr/2) ln(f(a_half) / f(a_0)), "
                      "f(a) = a^(N-1) (s - a^N), a_half = (s/2)^(1/N), a_0 = u0^(1/N)")
        err = float(np.max(np.abs(u - curve)) / s.max())
        rel_half = float(np.nanmax(np.abs(t_meas - t_half) / t_half)) if np.isfinite(t_meas).any() else float("nan")
        metrics |= {f"mode_max_abs_error_depth{N}": err, f"half_time_max_rel_error_depth{N}": rel_half,
                    f"loss_max_abs_error_depth{N}": float(np.max(np.abs(traj.loss - loss_th))),
                    f"balancedness_drift_depth{N}": float(np.max(np.abs(traj.unbalance - traj.unbalance[0])))}
        lines.append(f"  depth {N}: max |u - u_theory| / s_max = {err:.2e}; learning times (theory / measured): "
                     + ", ".join(f"{a:.3g}/{b:.3g}" for a, b in zip(t_half, t_meas)))
    writer.comparison(**metrics)
    writer.claims(*claims(measured, theory))
    return "complete", "", lines


def plot(run, path):
    depths = [N for N in parse_list(run.params["depths"], int, 1)       # a diverged run stops early
              if f"half_time_depth{N}" in run.names("observables")]
    s = run.theory("singular_values").value
    method = f"SGD, batch {run.params['batch']}" if run.params.get("batch") else "GD"
    if not depths:   # stopped during the first depth: what it streamed, against time
        if run.names("observables"):
            return overview(run, path)
        fig, axes = figure(1, title=f"saxe-modes: nothing recorded ({run.status}: {run.message})")
        return save(fig, path)
    fig, axes = figure(len(depths) + 1, title=f"Saxe et al. 2014 mode sigmoids: {method} on factors, "
                                             f"lr={run.params['lr']:g}, "
                                             f"init {run.params['init']}, seed {run.seed}")
    colors = __import__("matplotlib").colormaps["plasma"](np.linspace(0.0, 0.8, len(s)))
    for ax, N in zip(axes, depths):
        el, th = run.element(f"modes_depth{N}"), run.theory(f"modes_depth{N}")
        for k, c in enumerate(colors):
            ax.plot(el.time, el.value[:, k], color=c, lw=2.2, alpha=0.8, label=f"mode {k}, s = {s[k]:.3g}")
            ax.plot(th.time, th.value[:, k], **{**THEORY, "lw": 1.1})
        ax.plot([], [], label="exact (Saxe et al. 2014)", **THEORY)
        ax.set(xlabel="t = step x lr", ylabel="mode strength u_k = U_k^T W_e V_k",
               title=f"depth {N}: max error {run.comparison[f'mode_max_abs_error_depth{N}']:.1e} s_max")
        ax.legend(fontsize=6.5, loc="lower right")
    ax = axes[-1]
    for N, m in zip(depths, "osd^v"):
        th, el = run.theory(f"half_time_depth{N}"), run.element(f"half_time_depth{N}")
        ax.loglog(s, th.value, ls="--", color="black", lw=1.0)
        ax.loglog(s, el.value[0], m, ms=6, label=f"depth {N}: measured (dashed: theory)")
    ax.set(xlabel="singular value s_k", ylabel="learning time t_half (u = s/2)", title="stronger modes learn first")
    ax.legend(fontsize=7)
    return save(fig, path)


SCENARIO = Scenario(
    name="saxe-modes",
    summary="singular-mode strengths of W_e during GD on deep linear factors vs the exact sigmoids of "
            "Saxe, McClelland & Ganguli 2014",
    params=(
        Param("data", str, "", "NPZ/CSV/HDF5 file with X and Y (whitened if not white); empty = "
                                "data/hierarchy.npz (8 items of a binary tree)"),
        Param("depths", str, "2,3", "network depths N, comma-separated", list_check(int)),
        Param("lr", float, 0.02, "GD learning rate", positive),
        Param("u0", float, 1e-3, "initial strength of every mode (decoupled balanced start)", positive),
        Param("init", str, "decoupled", "decoupled: W_e(0) = u0 U V^T, balanced; gaussian: i.i.d. factors",
              choices=("decoupled", "gaussian")),
        Param("init_scale", float, 0.05, "standard deviation of the Gaussian factor entries", positive),
        Param("width", int, 0, "hidden width (0 = max(d_in, d_out))", non_negative),
        Param("batch", int, 0, "minibatch size of SGD (0 = full-batch GD; the sigmoids are the full-batch flow "
                               "limit)", non_negative),
        Param("t_max", float, 0.0, "time to train (0 = 1.5 x the slowest mode's learning time)", non_negative),
        Param("records", int, 200, "recorded times (evenly spaced)", at_least(2)),
    ),
    run=run,
    plot=plot,
    presets={"small": dict(depths="2,3", lr=0.05, records=80)},
)
