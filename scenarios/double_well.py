"""double-well: minibatch SGD on the finite-sum double well relaxes towards the Gibbs density at the SGD
temperature.

f_i(x) = (x^2 - 1)^2 + a_i x with a_i ~ N(0, spread^2) centred, so f = (x^2 - 1)^2 exactly and the minibatch
gradient noise has variance s^2 / B (s^2 = var(a); times (N - B)/(N - 1) without replacement). Its SDE
limit dx = -f'(x) dt + sqrt(2T) dW, t = step * lr, has the stationary density exp(-f/T)/Z with
T = lr s^2 / (2B) (Mandt, Hoffman & Blei 2017; Chaudhari & Soatto 2018). The histogram of the cloud is held
against it over time; the remaining KL at the end measures the O(lr) bias of discrete SGD beyond the
sampling floor (K - 1)/(2M) of a K-bin histogram of M samples.
"""
from __future__ import annotations

import numpy as np

from sgdsim import fokker_planck, theory
from sgdsim.dynamics import SGD
from sgdsim.landscapes import finite_sum_double_well
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, non_negative, positive
from sgdsim.simulate import Recorder, simulate

RANGE = 2.5  # the density is histogrammed on [-RANGE, RANGE]
PDE_SUBSTEPS = 100  # Fokker–Planck time steps per recording interval


def sgd_temperature(tilts: np.ndarray, lr: float, batch: int, replace: bool) -> float:
    """T = lr s^2 / (2B), times (N - B)/(N - 1) when the batch is drawn without replacement."""
    s2 = float(np.var(tilts))
    n = len(tilts)
    return lr * s2 / (2 * batch) * (1.0 if replace else (n - batch) / (n - 1))


def run(p: dict, seed: int, writer, progress: bool):
    landscape = finite_sum_double_well(p["examples"], p["spread"], dim=1, seed=seed)
    dynamics = SGD(lr=p["lr"], batch=p["batch"], replace=p["replace"], momentum=p["momentum"])
    temperature = sgd_temperature(landscape.tilts, p["lr"], p["batch"], p["replace"]) / (1 - p["momentum"])
    edges = np.linspace(-RANGE, RANGE, p["bins"] + 1)
    recorder = Recorder(every=p["record_every"], snapshot=min(p["particles"], 1000), loss=True,
                        histogram=(0, edges))
    x0 = np.full((p["particles"], 1), p["start"])
    out = simulate(landscape, dynamics, x0, n_steps=p["steps"], seed=seed, recorder=recorder,
                   writer=writer, progress=progress)

    gibbs = theory.gibbs_bin_probabilities(lambda x: (x * x - 1.0) ** 2, edges, temperature)
    centres = 0.5 * (edges[1:] + edges[:-1])
    writer.theory("gibbs", gibbs / np.diff(edges), coords={"x": centres},
                  source="Gibbs density exp(-f/T)/Z at the SGD temperature T = lr var(a) / (2B)",
                  equation="p(x) = exp(-(x^2-1)^2 / T) / Z", attrs={"temperature": temperature})
    steps, times, densities = out.observables["density"]
    kl = np.array([theory.kl_divergence(d * np.diff(edges), gibbs) for d in densities])
    kl_element = writer.element("kl_gibbs", (), attrs={"description": "KL(histogram || Gibbs bins)"})
    for s, t, k in zip(steps, times, kl):
        kl_element.append(s, t, k)

    x = out.positions[:, 0]
    m = len(x)
    pde = _pde_beside(p, writer, temperature, edges, out.observables["density"])
    occupied = int(np.count_nonzero(gibbs > 1.0 / m))
    x2 = float(np.mean(x * x))
    x2_theory = float(np.sum(gibbs * centres ** 2))
    right = float(np.mean(x > 0))
    metrics = dict(temperature=temperature,
                   kl_final_measured=float(kl[-1]), kl_final_theory=0.0,
                   kl_sampling_floor=(occupied - 1) / (2 * m),
                   second_moment_measured=x2, second_moment_theory=x2_theory,
                   second_moment_stderr=float(np.std(x * x) / np.sqrt(m)),
                   right_well_measured=right, right_well_theory=0.5,
                   right_well_stderr=float(np.sqrt(right * (1 - right) / m)), **pde)
    writer.comparison(**metrics)
    lines = [f"double-well: SGD lr={p['lr']} B={p['batch']} on N={p['examples']} examples, "
             f"{m} particles, {out.steps_done} steps (t = {out.steps_done * p['lr']:.1f})",
             f"  SGD temperature T = lr var(a)/(2B) = {temperature:.4f}",
             f"  KL(histogram || Gibbs) final = {kl[-1]:.4f}   (sampling floor ~ {metrics['kl_sampling_floor']:.4f})",
             f"  <x^2> = {x2:.4f} +- {metrics['second_moment_stderr']:.4f}   Gibbs {x2_theory:.4f}",
             f"  fraction in the right well = {right:.3f} +- {metrics['right_well_stderr']:.3f}   Gibbs 0.500",
             f"  Fokker–Planck PDE beside the particles: L1(histogram, PDE) final = {pde['l1_particles_pde_final']:.4f}"
             f"   (sampling ~ {pde['l1_sampling_expected_final']:.4f}), KL = {pde['kl_particles_pde_final']:.4f}"]
    return out.status, out.message, lines


def _pde_beside(p: dict, writer, temperature: float, edges: np.ndarray, histograms) -> dict:
    """Solve the Fokker–Planck equation of the SDE limit from the particles' start to the recorded times
    (t = step x lr), store the density field, its histogram-bin version and the L1 / KL distances of the
    particle histogram to it; return the final metrics."""
    steps, times, densities = histograms
    fp = fokker_planck.problem(loss=lambda x: (x[:, 0] ** 2 - 1.0) ** 2, temperature=temperature, lo=-RANGE,
                               hi=RANGE, cells=p["bins"] * p["pde_refine"])
    dt = p["lr"] * p["record_every"] / PDE_SUBSTEPS
    pde = fp.evolve(fp.point_mass([p["start"]]), times, dt)
    widths = np.diff(edges)
    m = p["particles"]
    field = writer.element("pde_density", fp.shape, coords=fp.coords(),
                           attrs={"equation": "dp/dt = d/dx(p f') + T d2p/dx2", "temperature": temperature,
                                  "scheme": "Scharfetter–Gummel finite volumes, BDF2", "dt_max": dt})
    binned = writer.element("pde_density_binned", (len(widths),), coords={"x": 0.5 * (edges[1:] + edges[:-1])})
    names = {"l1_particles_pde": "L1 distance sum_j |histogram_j - PDE_j| over the bins",
             "l1_sampling_expected": "sum_j sqrt(2 q_j (1 - q_j) / (pi M)): E L1 of M samples from the PDE",
             "kl_particles_pde": "KL(histogram || PDE bins)"}
    series = {name: writer.element(name, (), attrs={"description": text}) for name, text in names.items()}
    values = {}
    for s, t, hist, q_density in zip(steps, times, densities, pde.density):
        q = fp.bin_probabilities(q_density, edges)
        h = hist * widths
        values = {"l1_particles_pde": float(np.abs(h - q).sum()),
                  "l1_sampling_expected": float(np.sum(np.sqrt(2 * q * (1 - q) / (np.pi * m)))),
                  "kl_particles_pde": theory.kl_divergence(h, q)}
        field.append(s, t, q_density)
        binned.append(s, t, q / widths)
        for name, v in values.items():
            series[name].append(s, t, v)
    gibbs_final = theory.kl_divergence(fp.bin_probabilities(pde.density[-1], edges),
                                       fp.bin_probabilities(fp.gibbs(), edges))
    return {f"{name}_final": v for name, v in values.items()} | {"kl_pde_gibbs_final": gibbs_final}


def plot(run, path):
    density = run.element("density")
    gibbs = run.theory("gibbs")
    kl = run.element("kl_gibbs")
    x = density.coords["x"]
    T = gibbs.attrs["temperature"]
    has_pde = "pde_density" in run.names("observables")   # files written before the PDE was added lack it
    fig, axes = figure(3 if has_pde else 2, title=f"SGD on the finite-sum double well: lr={run.params['lr']}, "
                                                  f"B={run.params['batch']}, T={T:.3f}, seed {run.seed}")
    ax, ax_kl = axes[0], axes[1]
    last = len(density.step) - 1
    picks = np.unique(np.linspace(min(1, last), last, 4).round().astype(int))
    ax.axvline(run.params["start"], color="grey", lw=0.8, ls=":", label="start (all particles)")
    colors = __import__("matplotlib").colormaps["viridis"](np.linspace(0.1, 0.9, len(picks)))
    pde = run.element("pde_density") if has_pde else None
    for c, i in zip(colors, picks):
        ax.step(x, density.value[i], where="mid", color=c, lw=1.0 if i < picks[-1] else 2.0,
                label=f"t = {density.time[i]:.0f}")
        if pde is not None:
            ax.plot(pde.coords["x"], pde.value[i], color=c, lw=0.8, alpha=0.9)
    if pde is not None:
        ax.plot([], [], color="grey", lw=0.8, label="Fokker–Planck PDE (thin)")
    ax.plot(x, gibbs.value, label="Gibbs exp(-f/T)/Z", **THEORY)
    ax.set(xlabel="x", ylabel="density", title="particle histogram vs PDE and Gibbs density",
           ylim=(0, 1.35 * max(gibbs.value.max(), density.value[picks[-1]].max())))
    ax.legend(fontsize=8)
    ax_kl.semilogy(kl.time, np.maximum(kl.value, 1e-6), color="C3", label="KL(histogram || Gibbs)")
    ax_kl.axhline(run.comparison["kl_sampling_floor"], color="grey", ls=":", label="sampling floor (K-1)/2M")
    ax_kl.set(xlabel="t = step x lr", ylabel="KL", title="relaxation to the Gibbs density")
    ax_kl.legend(fontsize=8)
    if has_pde:
        l1, floor = run.element("l1_particles_pde"), run.element("l1_sampling_expected")
        later = l1.time > 0   # at t = 0 a start on a bin edge splits the PDE's delta over two bins
        axes[2].semilogy(l1.time[later], l1.value[later], color="C0", marker=".", label="L1(histogram, PDE)")
        axes[2].semilogy(floor.time[later], floor.value[later], label="expected L1 of M samples from the PDE",
                         **THEORY)
        axes[2].set(xlabel="t = step x lr", ylabel="L1 distance over the bins",
                    title="particles vs their Fokker–Planck equation")
        axes[2].legend(fontsize=8)
    return save(fig, path)


def _validate(p: dict) -> str | None:
    if p["batch"] > p["examples"]:
        return f"batch {p['batch']} is larger than the data ({p['examples']} examples)"
    if not -RANGE <= p["start"] <= RANGE:
        return f"start {p['start']} is outside the density grid [-{RANGE}, {RANGE}]"
    return None


SCENARIO = Scenario(
    name="double-well",
    summary="minibatch SGD on a finite-sum double well vs the Gibbs density at T = lr var(a)/(2B)",
    params=(
        Param("particles", int, 20000, "number of independent SGD chains", at_least(2)),
        Param("lr", float, 0.02, "learning rate (time step of the SDE limit)", positive),
        Param("batch", int, 2, "minibatch size B", at_least(1)),
        Param("replace", bool, True, "draw the minibatch with replacement"),
        Param("momentum", float, 0.0, "heavy-ball momentum in [0, 1)",
              lambda v: None if 0 <= v < 1 else "must be in [0, 1)"),
        Param("examples", int, 256, "number of examples N (tilts a_i)", at_least(2)),
        Param("spread", float, 7.0, "standard deviation of the tilts a_i", positive),
        Param("steps", int, 10000, "number of SGD steps", non_negative),
        Param("start", float, -1.0, "initial position of every particle"),
        Param("record_every", int, 250, "steps between recorded histograms", at_least(1)),
        Param("bins", int, 60, "histogram bins on [-2.5, 2.5]", at_least(2)),
        Param("pde_refine", int, 10, "Fokker–Planck cells per histogram bin", at_least(1)),
    ),
    run=run,
    plot=plot,
    presets={"small": dict(particles=2000, steps=400, record_every=100)},
    validate=_validate,
)
