"""mode-connectivity: two independently trained minima of a ReLU network are joined by a path of low loss,
though the straight line between them crosses a barrier (Draxler et al. 2018; Garipov et al. 2018).

Two two-layer ReLU networks (different initializations and minibatch streams) are trained by SGD on the same
`teacher_classification` data with the logistic loss. The loss is evaluated on the straight line
w(t) = (1 - t) w_A + t w_B, and on a path optimized by the simplified string method (E, Ren & Vanden-Eijnden
2007): K images w_1..w_K with fixed ends, each iteration a gradient step w_k <- w_k - h grad L(w_k) on the
interior images followed by re-interpolation to equal arc length along the piecewise-linear path. The barrier
of a path is max_t L(w(t)) - max(L(w_A), L(w_B)), evaluated on `sub` points per segment. Draxler et al.'s
claim (their Sec. 5): essentially no barrier on the optimized path, while the straight line has one.

Claims (`claims`; the string is deterministic given the two minima, so there is no standard error): the
optimized path's barrier is below BARRIER_FRACTION of the straight line's ("essentially no barrier": Draxler et
al. find the barriers of their optimized paths near zero while the straight lines rise far above the minima),
and the straight line's barrier exceeds the larger endpoint loss (on the line the loss more than doubles).
"""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from sgdsim.compare.claims import Claim
from sgdsim.networks.training import Architecture, Loss, Optimizer, Recording, net_for, teacher_classification, train_ensemble
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, positive


BARRIER_FRACTION = 0.1   # "essentially no barrier": the optimized path's barrier below a tenth of the straight line's
SOURCE = "Draxler, Veschgini, Salmhofer & Hamprecht 2018, 'Essentially no barriers in neural network energy " \
         "landscape', Sec. 5; Garipov et al. 2018 (the straight line between two minima crosses a barrier)"


def claims(measured: dict, theory: dict) -> list[Claim]:
    """measured: "path" and "linear" barriers (max L along the path - max(L_A, L_B)), "ends" (max(L_A, L_B));
    theory: "fraction" (the path's barrier is below this fraction of the straight line's)."""
    f = theory["fraction"]
    return [Claim(name="path_barrier_small", test="less", measured=measured["path"],
                  predicted=f * measured["linear"], source=SOURCE,
                  statement=f"the barrier on the optimized path is below {f:g} x the straight line's"),
            Claim(name="linear_barrier", test="greater", measured=measured["linear"], predicted=measured["ends"],
                  source=SOURCE, statement="the barrier on the straight line exceeds the larger endpoint loss")]


def dense(path: np.ndarray, sub: int) -> np.ndarray:
    """`sub` equally spaced points on each segment of a piecewise-linear path, then its last point."""
    u = np.arange(sub)[None, :, None] / sub
    return np.vstack([((1 - u) * path[:-1, None] + u * path[1:, None]).reshape(-1, path.shape[1]), path[-1:]])


def reparametrize(path: np.ndarray) -> np.ndarray:
    """The same number of images, equally spaced in arc length along the piecewise-linear path."""
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    s /= s[-1]
    target = np.linspace(0.0, 1.0, len(path))
    j = np.clip(np.searchsorted(s, target, side="right") - 1, 0, len(path) - 2)
    u = ((target - s[j]) / (s[j + 1] - s[j]))[:, None]
    return (1 - u) * path[j] + u * path[j + 1]


def run(p: dict, seed: int, writer, progress: bool):
    data = teacher_classification(p["examples"], p["test_examples"], p["dim"], seed)
    arch = Architecture((p["dim"], p["width"], 1), "relu")
    loss = Loss("cross-entropy")
    out = train_ensemble(arch, loss, Optimizer(lr=p["lr"], batch=p["batch"]), data, members=2, steps=p["steps"],
                         seed=seed, recording=Recording(every=p["record_every"], noise=False), writer=writer,
                         prefix="train_", progress=progress)
    if out.status != "complete":
        return out.status, out.message, [out.message]
    net = net_for(arch, loss, data)
    a, b = out.params
    k, sub = p["images"], p["sub"]
    path = np.linspace(0.0, 1.0, k)[:, None] * (b - a) + a
    coords = {"t": np.linspace(0.0, 1.0, (k - 1) * sub + 1)}
    line = net.loss_grad(dense(path, sub))[0]
    ends = max(line[0], line[-1])
    writer.element("linear_path_loss", line.shape, coords=coords,
                   attrs={"description": "training loss on (1 - t) w_A + t w_B"}).append(0, 0.0, line)
    profile = writer.element("string_path_loss", line.shape, coords=coords,
                             attrs={"description": "training loss along the string (by arc-length fraction t) "
                                                   "after each recorded iteration"})
    barrier = writer.element("string_barrier", (), attrs={"description": "barrier of the string path"})
    status, message = "complete", ""
    every = max(1, p["iterations"] // 20)
    profile.append(0, 0.0, line)
    barrier.append(0, 0.0, line.max() - ends)
    for it in tqdm(range(1, p["iterations"] + 1), disable=None if progress else True, delay=1.0, leave=False,
                   unit="iteration"):
        _, g, _ = net.loss_grad(path[1:-1])
        path[1:-1] -= p["string_step"] * g
        path = reparametrize(path)
        if not np.all(np.isfinite(path)):
            status, message = "diverged", f"the string diverged at iteration {it}; lower string_step"
            break
        if it % every == 0 or it == p["iterations"]:
            values = net.loss_grad(dense(path, sub))[0]
            profile.append(it, float(it * p["string_step"]), values)
            barrier.append(it, float(it * p["string_step"]), values.max() - ends)
    if status != "complete":
        return status, message, [message]
    writer.theory("barrier_draxler", 0.0, source="Draxler et al. 2018, Sec. 5: minima of overparameterized networks "
                                                  "are connected by paths of essentially no barrier",
                  equation="max_t L(w(t)) - max(L(w_A), L(w_B)) ~ 0 on the optimized path")
    linear_barrier, path_barrier = float(line.max() - ends), float(values.max() - ends)
    metrics = dict(barrier_linear=linear_barrier, barrier_path=path_barrier, barrier_theory=0.0,
                   barrier_ratio=path_barrier / linear_barrier if linear_barrier > 0 else float("nan"),
                   loss_a=float(line[0]), loss_b=float(line[-1]), distance=float(np.linalg.norm(b - a)),
                   path_length=float(np.sum(np.linalg.norm(np.diff(path, axis=0), axis=1))))
    writer.comparison(**metrics)
    writer.claims(*claims({"path": path_barrier, "linear": linear_barrier, "ends": float(ends)},
                          {"fraction": BARRIER_FRACTION}))
    lines = [f"mode-connectivity: two ReLU nets {'-'.join(map(str, arch.sizes))} trained {p['steps']} steps; "
             f"end losses {metrics['loss_a']:.4f}, {metrics['loss_b']:.4f}",
             f"  barrier on the straight line     {linear_barrier:.4f}",
             f"  barrier on the optimized path    {path_barrier:.4f}   ({p['images']} images, {p['iterations']} "
             f"string iterations; Draxler et al.: ~0)",
             f"  |w_A - w_B| = {metrics['distance']:.2f}, path length {metrics['path_length']:.2f}"]
    return "complete", "", lines


def plot(run, path):
    pr = run.params
    fig, (ax, ax_b) = figure(2, title=f"mode-connectivity: two-layer ReLU width {pr['width']}, N={pr['examples']}, "
                                      f"{pr['images']} images, seed {run.seed}")
    line = run.element("linear_path_loss")
    t = line.coords["t"]
    ax.plot(t, line.value[0], color="C3", lw=2, label="straight line")
    prof = run.element("string_path_loss")
    ax.plot(t, prof.value[-1], color="C0", lw=2, label=f"string path after {prof.step[-1]} iterations")
    ax.axhline(max(line.value[0][0], line.value[0][-1]), label="endpoint loss (no barrier)", **THEORY)
    ax.set(xlabel="position along the path t (arc-length fraction)", ylabel="training loss (logistic)",
           title="loss along the paths between two minima")
    ax.legend(fontsize=8)
    bar = run.element("string_barrier")
    ax_b.plot(bar.step, bar.value, "o-", color="C0", label="string path barrier")
    ax_b.axhline(run.comparison["barrier_linear"], color="C3", ls=":", label="straight-line barrier")
    ax_b.axhline(0.0, label="Draxler et al. 2018: ~0", **THEORY)
    ax_b.set(xlabel="string iteration", ylabel="barrier max L - max(L_A, L_B)", title="barrier while optimizing")
    ax_b.legend(fontsize=8)
    return save(fig, path)


SCENARIO = Scenario(
    name="mode-connectivity",
    summary="two SGD minima: loss barrier on the straight line vs a string-method path (Draxler et al. 2018)",
    params=(
        Param("width", int, 32, "hidden width of the two-layer ReLU network", at_least(1)),
        Param("examples", int, 100, "training examples", at_least(2)),
        Param("test_examples", int, 1000, "test examples", at_least(10)),
        Param("dim", int, 5, "input dimension", at_least(1)),
        Param("lr", float, 0.1, "learning rate of the training", positive),
        Param("batch", int, 10, "minibatch size B of the training", at_least(1)),
        Param("steps", int, 3000, "SGD steps per network", at_least(1)),
        Param("record_every", int, 250, "steps between recorded training losses", at_least(1)),
        Param("images", int, 9, "images on the string (ends included)", at_least(3)),
        Param("sub", int, 5, "evaluation points per string segment", at_least(1)),
        Param("string_step", float, 0.5, "gradient step h of the string iteration", positive),
        Param("iterations", int, 400, "string iterations", at_least(1)),
    ),
    run=run,
    plot=plot,
    presets={"small": dict(width=16, steps=2000, iterations=300, record_every=500)},
    validate=lambda p: (f"batch {p['batch']} is larger than the data ({p['examples']} examples)"
                        if p["batch"] > p["examples"] else None),
)
