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
"""
from __future__ import annotations

import numpy as np

from sgdsim.networks import (Architecture, Loss, Optimizer, Recording, init_params, layers, teacher_classification,
                             train_ensemble, with_random_labels)
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, list_check, parse_list, positive


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
        theory = linearized_loss(arch, params0, data.X, y, p["lr"], steps)
        writer.theory(f"w{h}_ntk_loss", theory, step=steps, time=times,
                      source="network linearized at initialization (Jacot et al. 2018; Lee et al. 2019 eq. 10)",
                      equation="L_k = |(I - lr K/N)^k r_0|^2 / (2N), K = empirical NTK at init, mean over members")
        measured = loss.mean(axis=1)
        rel = np.abs(measured - theory) / theory
        metrics.update({f"w{h}_train_loss_final": float(measured[-1]), f"w{h}_ntk_loss_final": float(theory[-1]),
                        f"w{h}_ntk_max_rel_error": float(rel.max()),
                        f"w{h}_test_error_final": float(out.history["test_error"][2][-1].mean()),
                        f"w{h}_random_train_error_final": float(rnd.history["train_error"][2][-1].mean()),
                        f"w{h}_random_test_error_final": float(rnd.history["test_error"][2][-1].mean())})
        lines.append(f"  {h:6d}   {measured[-1]:10.4f}   {theory[-1]:10.4f}   {rel.max():7.2f}   "
                     f"{metrics[f'w{h}_test_error_final']:10.3f}   {metrics[f'w{h}_random_train_error_final']:.3f}")
    finals = [metrics[f"w{h}_train_loss_final"] for h in widths]
    metrics["train_loss_decreases_with_width"] = int(all(a > b for a, b in zip(finals, finals[1:])))
    writer.comparison(**metrics)
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
        Param("members", int, 4, "networks per width", at_least(1)),
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
    presets={"small": dict(widths="4,16,128", members=2, lr=0.05, steps=600, test_examples=200, record_every=100)},
    validate=lambda p: (f"batch {p['batch']} is larger than the data ({p['examples']} examples)"
                        if p["batch"] > p["examples"] else None),
)
