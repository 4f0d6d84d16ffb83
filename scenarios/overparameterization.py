"""overparameterization: wider two-layer ReLU networks train faster and fit random labels (Du et al. 2019;
Zhang et al. 2017); their test error against width is recorded beside (Neyshabur et al. 2019 find it falling
with width on image data; on this small teacher problem it changes by a few percent, here slightly upwards).

Two-layer ReLU networks f(x) = sum_j a_j relu(w_j.x + b_j) + c of growing width h, LeCun initialization,
square loss L = 1/(2N) sum_i (f(x_i) - y_i)^2 with y = +-1, trained by SGD with the same learning rate on one
small data set (a random teacher's labels, `teacher_classification`), and again on random labels.

Theory beside each width: the network linearized at its initialization (Jacot, Gabriel & Hongler 2018; Lee et
al. 2019, eq. 10 in discrete time), whose residual r = f - y obeys r_{k+1} = (I - lr K / N) r_k with the
empirical neural tangent kernel of the two-layer net
  K(x, x') = sum_j [relu_j(x) relu_j(x') + a_j^2 1_j(x) 1_j(x') (x.x' + 1)] + 1,
exact for full-batch steps (B = N) and for the mean residual otherwise. K grows with h at fixed lr, which is
why wider trains faster; the linearization tracks the network while its features barely move.

Claims (`claims`). (1) At the first recorded step every width's mean training loss equals the linearized one
within the lazy-training order 1/sqrt(h) (relative; Lee et al. 2019, Theorem 2.1: sup_t |f_t - f_lin_t| =
O(h^-1/2)). (2) Expected to fail: the widest net still follows its linearization at the last step, within the
same 1/sqrt(h); at a fixed lr in this (standard) parameterization the features move and the network ends well
below its linearization. (3) The widest net ends with a lower training loss than the narrowest, and (4) a
lower training error on random labels (one-sided Student-t bounds over the members, false-alarm rate
FALSE_ALARM).
"""
from __future__ import annotations

import numpy as np

from sgdsim.compare.claims import Claim, familywise_z
from sgdsim.networks.training import (Architecture, Loss, Optimizer, Recording, init_params, layers, teacher_classification,
                             train_ensemble, with_random_labels)
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, list_check, parse_list, positive


FALSE_ALARM = 0.01   # probability that a true claim is reported as failing
NTK_SOURCE = "Jacot, Gabriel & Hongler 2018; Lee et al. 2019, eq. 10 and Theorem 2.1 (the network stays " \
             "within O(width^-1/2) of its linearization)"
WIDTH_SOURCE = "Du, Zhai, Poczos & Singh 2019 (wider two-layer ReLU nets converge faster); Zhang et al. 2017 " \
               "(wide networks fit random labels)"


def ntk_two_layer(arch: Architecture, w: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The empirical NTK (N, N) of a two-layer ReLU network at flat parameters w (module docstring)."""
    (W, b), (a, _) = layers(arch, w)
    z = X @ W.T + b
    phi = np.maximum(z, 0.0)
    gate = (z > 0) * a[0]
    return phi @ phi.T + (gate @ gate.T) * (X @ X.T + 1.0) + 1.0


def linearized_loss(arch: Architecture, params: np.ndarray, X: np.ndarray, y: np.ndarray, lr: float,
                    steps: np.ndarray) -> np.ndarray:
    """Mean over members of the linearized model's loss 1/(2N) |(I - lr K/N)^k r_0|^2 at the given steps."""
    n = len(X)
    out = np.zeros(len(steps))
    for w in params:
        (W, b), (a, c) = layers(arch, w)
        r0 = np.maximum(X @ W.T + b, 0.0) @ a[0] + c[0] - y
        lam, U = np.linalg.eigh(ntk_two_layer(arch, w, X) / n)
        coef = U.T @ r0
        decay = (1.0 - lr * lam)[None, :] ** np.asarray(steps, dtype=float)[:, None]
        out += 0.5 * np.sum((coef * decay) ** 2, axis=1) / n
    return out / len(params)


def _mean_se(values) -> tuple[float, float]:
    values = np.asarray(values, float)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else np.nan


def claims(measured: dict, theory: dict) -> list[Claim]:
    """The claims of the module docstring. measured: per width h, "loss" (mean training loss at the recorded
    steps), "final" and "random" (per-member training loss, and training error on random labels, at the end);
    theory: per width, "ntk" (the linearized loss at the same steps) and "faster" (the width the theory says
    trains fastest: the widest)."""
    widths = sorted(measured["loss"])
    out = [Claim(name=f"ntk_first_record_w{h}", test="rel", measured=measured["loss"][h][1],
                 predicted=theory["ntk"][h][1], tolerance=1 / np.sqrt(h), source=NTK_SOURCE,
                 statement=f"width {h}: training loss at the first recorded step equals the linearized (NTK) "
                           f"prediction within 1/sqrt(width)") for h in widths]
    wide = widths[-1]
    out.append(Claim(name=f"ntk_last_record_w{wide}", test="rel", measured=measured["loss"][wide][-1],
                     predicted=theory["ntk"][wide][-1], tolerance=1 / np.sqrt(wide), expected="fails",
                     source=NTK_SOURCE, statement=f"width {wide}: training loss at the last step equals the "
                                                  f"linearized prediction within 1/sqrt(width) (features move)"))
    if len(widths) > 1:
        fast = theory["faster"]
        slow = widths[0] if fast == widths[-1] else widths[-1]
        dof = len(measured["final"][fast]) - 1
        bound = familywise_z(1, 2 * FALSE_ALARM, dof=dof) if dof >= 1 else np.inf   # one-sided
        for key, name, what in (("final", "wider_trains_faster", "training loss"),
                                ("random", "wider_fits_random_labels", "training error on random labels")):
            (m_f, s_f), (m_s, s_s) = _mean_se(measured[key][fast]), _mean_se(measured[key][slow])
            out.append(Claim(name=name, test="less", measured=m_f - m_s, stderr=float(np.hypot(s_f, s_s)),
                             predicted=0.0, tolerance=bound, source=WIDTH_SOURCE,
                             statement=f"{what} at the end: width {fast} minus width {slow} < 0"))
    return out


def run(p: dict, seed: int, writer, progress: bool):
    widths = parse_list(p["widths"], int, 1)
    data = teacher_classification(p["examples"], p["test_examples"], p["dim"], seed)
    noisy = with_random_labels(data, seed + 1)
    batch = p["batch"] or p["examples"]
    opt = Optimizer(lr=p["lr"], batch=batch)
    rec = Recording(every=p["record_every"], noise=False)
    writer.attrs(widths=np.array(widths))
    metrics, lines = {}, [f"overparameterization: two-layer ReLU, N={p['examples']}, d={p['dim']}, lr={p['lr']}, "
                          f"B={batch}, {p['steps']} steps, {p['members']} members per width"]
    lines.append("   width   train loss   NTK theory   rel.err   test error   random labels: train error")
    y = 2.0 * data.labels - 1.0
    measured, theory = {"loss": {}, "final": {}, "random": {}}, {"ntk": {}, "faster": max(widths)}
    for h in widths:
        arch = Architecture((p["dim"], h, 1), "relu")
        params0 = init_params(arch, p["members"], seed + h)
        out = train_ensemble(arch, Loss("square"), opt, data, members=p["members"], steps=p["steps"], seed=seed,
                             recording=rec, writer=writer, prefix=f"w{h}_", progress=progress, params0=params0)
        if out.status != "complete":
            return out.status, f"width {h}: {out.message}", [out.message]
        rnd = train_ensemble(arch, Loss("square"), opt, noisy, members=p["members"], steps=p["steps"], seed=seed,
                             recording=rec, writer=writer, prefix=f"w{h}_random_", progress=progress,
                             params0=params0)
        if rnd.status != "complete":
            return rnd.status, f"width {h}, random labels: {rnd.message}", [rnd.message]
        steps, times, loss = out.history["train_loss"]
        ntk = linearized_loss(arch, params0, data.X, y, p["lr"], steps)
        writer.theory(f"w{h}_ntk_loss", ntk, step=steps, time=times,
                      source="network linearized at initialization (Jacot et al. 2018; Lee et al. 2019 eq. 10)",
                      equation="L_k = |(I - lr K/N)^k r_0|^2 / (2N), K = empirical NTK at init, mean over members")
        mean = loss.mean(axis=1)
        rel = np.abs(mean - ntk) / ntk
        measured["loss"][h], measured["final"][h] = mean, loss[-1]
        measured["random"][h], theory["ntk"][h] = rnd.history["train_error"][2][-1], ntk
        metrics.update({f"w{h}_train_loss_final": float(mean[-1]), f"w{h}_ntk_loss_final": float(ntk[-1]),
                        f"w{h}_ntk_max_rel_error": float(rel.max()),
                        f"w{h}_test_error_final": float(out.history["test_error"][2][-1].mean()),
                        f"w{h}_random_train_error_final": float(rnd.history["train_error"][2][-1].mean()),
                        f"w{h}_random_test_error_final": float(rnd.history["test_error"][2][-1].mean())})
        lines.append(f"  {h:6d}   {mean[-1]:10.4f}   {ntk[-1]:10.4f}   {rel.max():7.2f}   "
                     f"{metrics[f'w{h}_test_error_final']:10.3f}   {metrics[f'w{h}_random_train_error_final']:.3f}")
    finals = [metrics[f"w{h}_train_loss_final"] for h in widths]
    metrics["train_loss_decreases_with_width"] = int(all(a > b for a, b in zip(finals, finals[1:])))
    writer.comparison(**metrics)
    writer.claims(*claims(measured, theory))
    return "complete", "", lines


def plot(run, path):
    pr = run.params
    widths = [int(h) for h in run.attrs["widths"]]
    colors = __import__("matplotlib").colormaps["viridis"](np.linspace(0.1, 0.85, len(widths)))
    fig, (ax, ax_r, ax_w) = figure(3, title=f"overparameterization: two-layer ReLU on N={pr['examples']} examples, "
                                            f"lr={pr['lr']}, {pr['members']} members per width, seed {run.seed}")
    for h, c in zip(widths, colors):
        e = run.element(f"w{h}_train_loss")
        ax.semilogy(e.step, e.value.mean(axis=1), color=c, lw=2, label=f"width {h}")
        th = run.theory(f"w{h}_ntk_loss")
        ax.semilogy(th.step, th.value, **{**THEORY, "lw": 1.0})
        r = run.element(f"w{h}_random_train_error")
        ax_r.plot(r.step, r.value.mean(axis=1), color=c, lw=2, label=f"width {h}")
    ax.plot([], [], label="linearized (NTK) theory", **THEORY)
    ax.set(xlabel="SGD step", ylabel="training loss 1/(2N) sum (f - y)^2", title="true labels: faster with width")
    ax.legend(fontsize=7)
    ax_r.set(xlabel="SGD step", ylabel="training error", title="random labels: fitted by the wide nets", ylim=(0, 0.6))
    ax_r.legend(fontsize=7)
    comp = run.comparison
    ax_w.plot(widths, [comp[f"w{h}_test_error_final"] for h in widths], "o-", color="C0", label="true labels: test")
    ax_w.plot(widths, [comp[f"w{h}_random_test_error_final"] for h in widths], "s--", color="C3",
              label="random labels: test")
    ax_w.plot(widths, [comp[f"w{h}_random_train_error_final"] for h in widths], "s:", color="C3",
              label="random labels: train")
    ax_w.set(xscale="log", xlabel="hidden width h", ylabel="error at the end", title="error vs width", ylim=(0, 0.7))
    ax_w.legend(fontsize=7)
    return save(fig, path)


SCENARIO = Scenario(
    name="overparameterization",
    summary="wider two-layer ReLU nets train faster (vs the NTK linearization), fit random labels; test error vs width",
    params=(
        Param("widths", str, "4,16,64,256", "hidden widths (comma-separated)", list_check(int, 1)),
        Param("members", int, 6, "networks per width", at_least(1)),
        Param("examples", int, 64, "training examples", at_least(2)),
        Param("test_examples", int, 2000, "test examples", at_least(10)),
        Param("dim", int, 5, "input dimension", at_least(1)),
        Param("lr", float, 0.03, "learning rate (the same for every width)", positive),
        Param("batch", int, 0, "minibatch size B (0: full batch, where the NTK theory is exact when lazy)",
              lambda v: None if v >= 0 else "must be non-negative"),
        Param("steps", int, 2000, "SGD steps", at_least(1)),
        Param("record_every", int, 50, "steps between recorded losses", at_least(1)),
    ),
    run=run,
    plot=plot,
    presets={"small": dict(widths="4,16,128", members=6, lr=0.05, steps=1000, test_examples=200, record_every=100)},
    validate=lambda p: (f"batch {p['batch']} is larger than the data ({p['examples']} examples)"
                        if p["batch"] > p["examples"] else None),
)
