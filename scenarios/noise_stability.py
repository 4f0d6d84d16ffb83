"""noise-stability: Gaussian noise injected into a trained network attenuates on its way up, and the layer
cushion explains the first step (Arora, Ge, Neyshabur & Zhang 2018, Sections 4-5).

A deep ReLU network (depth hidden layers of equal width) is trained by SGD on `teacher_classification` data
with the logistic loss. At every hidden layer i, noise eta with |eta| = eps |a_i| in a uniformly random
direction is added to the activations a_i of every training input; the perturbation is propagated and its
relative size |a~_j - a_j| / |a_j| recorded at every higher layer j (mean over inputs), for the trained
network and for the same network at initialization.

Theory for the first layer up: for eta uniform on the sphere of radius eps |a| in n dimensions,
E |W eta|^2 = eps^2 |W|_F^2 |a|^2 / n exactly, so the relative perturbation of the pre-activation z = W a + b
is eps / (sqrt(n) mu(a)) in mean square, with the per-input layer cushion mu(a) = |z| / (|W|_F |a|) (Arora
et al.'s Definition 4.1 takes the minimum over the training set and has no biases). Random noise is
attenuated when mu >> 1/sqrt(n): training raises the cushion, and the noise shrinks up the trained network.

Claims (`claims`), standard errors over the training inputs (and noise draws), false-alarm rate FALSE_ALARM:
one layer up, the mean of E|W eta|^2 / |z|^2 / (eps^2 / (n mu^2)) is 1 at every layer, for the trained network
and at initialization (family-wise over the layers); noise injected at the first hidden layer arrives at the
output smaller than eps in the trained network, and (expected to fail) at initialization; training raises the
mean layer cushion at every layer (one-sided bounds).
"""
from __future__ import annotations

import numpy as np

from sgdsim.compare.claims import Claim, familywise_z
from sgdsim.networks.training import (Architecture, Loss, Optimizer, Recording, init_params, layers, teacher_classification,
                             train_ensemble)
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, positive


FALSE_ALARM = 0.01   # probability that a true claim is reported as failing
SOURCE = "Arora, Ge, Neyshabur & Zhang 2018, 'Stronger generalization bounds for deep nets via a compression " \
         "approach', Sec. 4 (noise stability, layer cushion: Definition 4.1)"
ONE_LAYER = "E |W eta|^2 = eps^2 |W|_F^2 |a|^2 / n for eta uniform on the sphere of radius eps |a| (Arora et al. " \
            "2018, Sec. 4)"


def activations(arch: Architecture, w: np.ndarray, X: np.ndarray, start: int = 0) -> list[np.ndarray]:
    """Activations a_start, ..., a_L (the output last) of the inputs X given at layer `start`."""
    acts = [X]
    layer_list = layers(arch, w)
    for l in range(start, len(layer_list)):
        W, b = layer_list[l]
        z = acts[-1] @ W.T + b
        acts.append(np.maximum(z, 0.0) if l < len(layer_list) - 1 else z)
    return acts


def inject(arch: Architecture, w: np.ndarray, X: np.ndarray, eps: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """(hidden layers, layers) arrays: mean relative perturbation at layer j (column; 1..L) of noise injected at
    hidden layer i (row; 1..L-1) over the inputs, and its standard error; NaN below the injection layer."""
    clean = activations(arch, w, X)
    n_layers = len(arch.sizes) - 1
    out = np.full((n_layers - 1, n_layers), np.nan)
    se = np.full_like(out, np.nan)
    for i in range(1, n_layers):
        a = clean[i]
        xi = rng.standard_normal(a.shape)
        xi *= eps * np.linalg.norm(a, axis=1, keepdims=True) / np.linalg.norm(xi, axis=1, keepdims=True)
        noisy = activations(arch, w, a + xi, start=i)
        out[i - 1, i - 1], se[i - 1, i - 1] = eps, 0.0
        for j in range(i + 1, n_layers + 1):
            rel = (np.linalg.norm(noisy[j - i] - clean[j], axis=1)
                   / np.maximum(np.linalg.norm(clean[j], axis=1), 1e-300))
            out[i - 1, j - 1], se[i - 1, j - 1] = rel.mean(), rel.std(ddof=1) / np.sqrt(len(rel))
    return out, se


def first_layer_test(arch: Architecture, w: np.ndarray, X: np.ndarray, eps: float, draws: int, rng):
    """Per hidden layer i: measured and predicted mean-square relative perturbation of z_{i+1} one layer above
    the injection (over inputs and `draws` noise draws), the standard error of the measured one, the mean
    ratio measured / predicted per input and its standard error, and the mean, minimum and standard error of
    the mean of the layer cushion of layer i+1 over the inputs (columns in this order)."""
    clean = activations(arch, w, X)
    rows = []
    for i in range(1, len(arch.sizes) - 1):
        W, b = layers(arch, w)[i]
        a = clean[i]
        z = a @ W.T + b
        n = a.shape[1]
        cushion = np.linalg.norm(z, axis=1) / (np.linalg.norm(W) * np.linalg.norm(a, axis=1))
        predicted = eps ** 2 / (n * cushion ** 2)
        samples = []
        for _ in range(draws):
            xi = rng.standard_normal(a.shape)
            xi *= eps * np.linalg.norm(a, axis=1, keepdims=True) / np.linalg.norm(xi, axis=1, keepdims=True)
            samples.append(np.sum((xi @ W.T) ** 2, axis=1) / np.sum(z ** 2, axis=1))
        ratio = np.array(samples) / predicted  # E = 1 per input: the theorem checked without averaging it away
        rows.append((np.mean(np.array(samples)), np.mean(predicted), float(np.std(ratio) / np.sqrt(ratio.size)),
                     float(np.mean(ratio)), float(np.mean(cushion)), float(np.min(cushion)),
                     float(np.std(cushion, ddof=1) / np.sqrt(cushion.size))))
    return np.array(rows)


def claims(measured: dict, theory: dict) -> list[Claim]:
    """The claims of the module docstring. measured, per label ("trained", "init"): "ratio" (mean measured /
    predicted one layer up, per layer) and "ratio_se"; "output" and "output_se" (relative noise at the output,
    injected at the first hidden layer); "cushion" and "cushion_se" (mean layer cushion per layer). theory:
    "ratio" (the predicted mean ratio: 1 for isotropic noise of relative size eps), "eps" (the injected size)."""
    out = []
    for label in ("trained", "init"):
        m = measured[label]
        out.append(Claim(name=f"one_layer_{label}", test="z", measured=m["ratio"], predicted=theory["ratio"],
                         stderr=m["ratio_se"], tolerance=familywise_z(len(m["ratio"]), FALSE_ALARM), source=ONE_LAYER,
                         statement=f"{label} network, every layer: the mean-square relative perturbation of z one "
                                   f"layer above the injected noise equals eps^2 / (n mu^2) (ratio 1)"))
    one_sided = familywise_z(1, 2 * FALSE_ALARM)
    for label, expected in (("trained", "holds"), ("init", "fails")):
        m = measured[label]
        out.append(Claim(name=f"noise_attenuates_{label}", test="less", measured=m["output"], stderr=m["output_se"],
                         predicted=theory["eps"], tolerance=one_sided, expected=expected, source=SOURCE,
                         statement=f"{label} network: noise of relative size eps injected at the first hidden layer "
                                   f"arrives at the output smaller than eps"))
    t, i = measured["trained"], measured["init"]
    out.append(Claim(name="training_raises_cushion", test="greater", measured=t["cushion"] - i["cushion"],
                     predicted=0.0, stderr=np.hypot(t["cushion_se"], i["cushion_se"]),
                     tolerance=familywise_z(len(t["cushion"]), 2 * FALSE_ALARM), source=SOURCE,
                     statement="every layer: the mean layer cushion of the trained network exceeds that at "
                               "initialization"))
    return out


def run(p: dict, seed: int, writer, progress: bool):
    data = teacher_classification(p["examples"], p["test_examples"], p["dim"], seed)
    arch = Architecture((p["dim"],) + (p["width"],) * p["depth"] + (1,), "relu")
    params0 = init_params(arch, 1, seed)
    out = train_ensemble(arch, Loss("cross-entropy"), Optimizer(lr=p["lr"], batch=p["batch"]), data, members=1,
                         steps=p["steps"], seed=seed, recording=Recording(every=p["record_every"], noise=False),
                         writer=writer, prefix="train_", progress=progress, params0=params0)
    if out.status != "complete":
        return out.status, out.message, [out.message]
    rng = np.random.default_rng(seed)
    L = len(arch.sizes) - 1
    coords = {"injected_at": np.arange(1, L), "layer": np.arange(1, L + 1)}
    metrics, measured = {}, {}
    for label, w in (("trained", out.params[0]), ("init", params0[0])):
        step = out.steps_done if label == "trained" else 0  # one snapshot, at the training step of the weights
        rel, rel_se = inject(arch, w, data.X, p["eps"], rng)
        one = first_layer_test(arch, w, data.X, p["eps"], p["draws"], rng)
        measured[label] = {"ratio": one[:, 3], "ratio_se": one[:, 2], "output": rel[0, -1], "output_se": rel_se[0, -1],
                           "cushion": one[:, 4], "cushion_se": one[:, 6]}
        above = {"layer": np.arange(2, L + 1)}
        for name, value, c, description in (
                ("relative_noise", rel, coords,
                 "mean |a~_j - a_j| / |a_j| at layer j of noise of relative size eps injected at hidden layer i"),
                ("cushion", one[:, 4], above, "mean layer cushion |W a + b| / (|W|_F |a|) over training inputs"),
                ("one_layer_noise", one[:, 0], above,
                 "measured mean-square relative perturbation of z one layer above the injection")):
            writer.element(f"{label}_{name}", value.shape, coords=c, attrs={"description": description}).append(
                step, float(step * p["lr"]), value)
        writer.theory(f"{label}_one_layer_noise", one[:, 1], coords={"layer": np.arange(2, L + 1)},
                      source="Arora et al. 2018 Sec. 4: E|W eta|^2 = eps^2 |W|_F^2 |a|^2 / n for isotropic eta",
                      equation="E |W eta|^2 / |z|^2 = eps^2 / (n mu^2), mu = |z| / (|W|_F |a|)")
        metrics.update({f"{label}_noise_at_output_from_layer1": float(rel[0, -1]),
                        f"{label}_noise_at_output_from_top": float(rel[-1, -1]),
                        f"{label}_cushion_mean": float(one[:, 4].mean()),
                        f"{label}_cushion_min": float(one[:, 5].min()),
                        f"{label}_one_layer_zscore_max": float(np.max(np.abs(one[:, 3] - 1) / one[:, 2])),
                        f"{label}_one_layer_max_rel_error": float(np.max(np.abs(one[:, 0] / one[:, 1] - 1)))})
    metrics.update(eps=p["eps"], inverse_sqrt_width=1 / np.sqrt(p["width"]),
                   train_error=float(out.history["train_error"][2][-1][0]),
                   test_error=float(out.history["test_error"][2][-1][0]))
    writer.comparison(**metrics)
    writer.claims(*claims(measured, {"ratio": 1.0, "eps": p["eps"]}))
    m = metrics
    lines = [f"noise-stability: ReLU net {'-'.join(map(str, arch.sizes))}, trained {p['steps']} steps "
             f"(train error {m['train_error']:.3f}, test {m['test_error']:.3f}), eps = {p['eps']}",
             f"  relative noise at the output, injected at layer 1: trained "
             f"{m['trained_noise_at_output_from_layer1']:.3f}   at init {m['init_noise_at_output_from_layer1']:.3f}",
             f"  mean layer cushion: trained {m['trained_cushion_mean']:.3f}   init {m['init_cushion_mean']:.3f}"
             f"   (1/sqrt(width) = {m['inverse_sqrt_width']:.3f})",
             f"  one layer up, E|W eta|^2/|z|^2 vs eps^2/(n mu^2): max rel. error "
             f"{m['trained_one_layer_max_rel_error']:.3f} (trained), {m['init_one_layer_max_rel_error']:.3f} (init)"]
    return "complete", "", lines


def plot(run, path):
    pr = run.params
    fig, (ax, ax_c, ax_t) = figure(3, title=f"noise-stability (Arora et al. 2018): ReLU depth {pr['depth']} width "
                                            f"{pr['width']}, eps={pr['eps']}, seed {run.seed}")
    for label, ls in (("trained", "-"), ("init", ":")):
        e = run.element(f"{label}_relative_noise")
        rel = e.value[0]
        layer = e.coords["layer"]
        colors = __import__("matplotlib").colormaps["plasma"](np.linspace(0.1, 0.8, len(rel)))
        for i, (row, c) in enumerate(zip(rel, colors)):
            ok = np.isfinite(row)
            ax.semilogy(layer[ok], row[ok], ls=ls, marker="o", ms=3, color=c,
                        label=f"{label}, injected at layer {i + 1}")
        cush = run.element(f"{label}_cushion")
        ax_c.plot(cush.coords["layer"], cush.value[0], ls=ls, marker="o", color="C0", label=f"{label}")
        meas = run.element(f"{label}_one_layer_noise")
        th = run.theory(f"{label}_one_layer_noise")
        ax_t.semilogy(meas.coords["layer"], np.sqrt(meas.value[0]), ls="none",
                      marker="o" if label == "trained" else "s", color="C3", label=f"{label}: measured")
        ax_t.semilogy(th.coords["layer"], np.sqrt(th.value), **{**THEORY, "lw": 1.0})
    ax.axhline(pr["eps"], color="grey", lw=0.8, ls="--")
    ax.set(xlabel="layer j", ylabel="relative perturbation |a~_j - a_j| / |a_j|",
           title="noise injected at one layer, measured above")
    ax.legend(fontsize=6)
    ax_c.axhline(1 / np.sqrt(pr["width"]), color="grey", ls="--", lw=0.8, label="1/sqrt(width) (random x)")
    ax_c.set(xlabel="layer", ylabel="layer cushion |W a + b| / (|W|_F |a|)", title="layer cushion (mean over inputs)")
    ax_c.legend(fontsize=7)
    ax_t.plot([], [], label="eps / (sqrt(n) mu) (theory)", **THEORY)
    ax_t.set(xlabel="layer above the injection", ylabel="RMS relative perturbation of z",
             title="one layer up: theory vs measured")
    ax_t.legend(fontsize=7)
    return save(fig, path)


SCENARIO = Scenario(
    name="noise-stability",
    summary="noise injected into a trained ReLU net attenuates up the layers; layer cushion (Arora et al. 2018)",
    params=(
        Param("depth", int, 4, "hidden layers", at_least(2)),
        Param("width", int, 50, "hidden width", at_least(1)),
        Param("examples", int, 200, "training examples", at_least(2)),
        Param("test_examples", int, 1000, "test examples", at_least(10)),
        Param("dim", int, 10, "input dimension", at_least(1)),
        Param("lr", float, 0.05, "learning rate", positive),
        Param("batch", int, 16, "minibatch size B", at_least(1)),
        Param("steps", int, 3000, "SGD steps", at_least(1)),
        Param("record_every", int, 250, "steps between recorded losses", at_least(1)),
        Param("eps", float, 0.1, "relative size of the injected noise |eta| / |a|", positive),
        Param("draws", int, 20, "noise draws per input for the one-layer test", at_least(2)),
    ),
    run=run,
    plot=plot,
    presets={"small": dict(depth=3, width=32, examples=100, steps=1500, record_every=500, draws=10)},
    validate=lambda p: (f"batch {p['batch']} is larger than the data ({p['examples']} examples)"
                        if p["batch"] > p["examples"] else None),
)
