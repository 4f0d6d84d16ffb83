"""pspin-landscape: the minima that gradient descent finds on a spherical p-spin landscape, their energies and
Hessian spectra, against the annealed complexity of Auffinger, Ben Arous & Cerny 2013 (ABC).

R replicas descend (projected GD) from uniform random starts on |s|^2 = N until the Riemannian gradient is
below `grad_tol`. At each end point: energy per spin u, index (number of negative eigenvalues of the Riemannian
Hessian) and spectrum. ABC: at a critical point of energy u the Hessian is a GOE matrix of semicircle radius
2 sqrt(xi''(1)) = 2 sqrt(p(p-1)) shifted by -p u (Lemma 3.2), so minima exist only below the threshold
-E_inf = -2 sqrt((p-1)/p), and their complexity Theta_0(u) is positive only above the ground state -E_0:
minima live in the band [-E_0, -E_inf] as N -> infinity. At finite N the spectral edge fluctuates on the
Tracy-Widom scale 2 sqrt(xi''(1)) N^{-2/3}, so GD minima sit above the threshold by an energy gap of that
order (see pspin-descent for the gap against N). Pure p >= 3 (the complexity is for pure models); convention
E[H(s)H(s')] = N (s.s'/N)^p.
"""
from __future__ import annotations

import math

import numpy as np

from sgdsim.spin_glass import descent as sg
from sgdsim.spin_glass import theory as th
from sgdsim.compare.claims import Claim
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, non_negative, positive


def ks_distance(samples: np.ndarray, radius: float) -> float:
    """Kolmogorov-Smirnov distance between samples and the semicircle of `radius` centred at 0."""
    x = np.sort(samples) / radius
    y = np.clip(x, -1, 1)
    cdf = 0.5 + (y * np.sqrt(1 - y * y) + np.arcsin(y)) / np.pi
    k = np.arange(1, len(x) + 1) / len(x)
    return float(max(np.max(k - cdf), np.max(cdf - (k - 1 / len(x)))))


KS_ALPHA = 0.01
KS_CRITICAL = 1.628   # sqrt(-ln(KS_ALPHA / 2) / 2): asymptotic 1% critical value of sqrt(n) KS for iid samples


def claims(measured: dict, theory: dict) -> list[Claim]:
    """The claims of one run. measured: "energy" (R,) at the GD end points, "shifted" (pooled Hessian eigenvalues
    + s.grad H/N); theory: "ground_state" (-E_0), "radius" (of the semicircle).

    minima_above_ground_state: every end point lies above -E_0, below which the index-0 complexity is negative
    (ABC 2013, Theorem 2.8: no minima there as N -> infinity).
    hessian_semicircle: the pooled shifted spectra follow the semicircle of radius 2 sqrt(xi''(1) (N-1)/N)
    centred at 0 (ABC 2013, Lemma 3.2: at a critical point of energy u the Hessian is GOE - p u): KS distance
    below the 1% critical value KS_CRITICAL / sqrt(n) of n iid samples. The eigenvalues of one matrix repel, so
    their empirical CDF is closer to the law than iid samples would be: the bound is conservative.
    Not claimed: "energies in the band [-E_0, -E_inf]". At finite N, GD minima sit above the threshold by a
    gap that closes with N (0.065 at N = 150; pspin-descent), so the band is an N -> infinity statement.
    The moments of the shifted spectrum are not claimed either: conditioning on an index-0 point pushes the
    spectrum off the unconditioned GOE by O(1/N) (mean +0.045 +- 0.004, second moment 5.90 +- 0.02 against
    xi''(1) = 6 at N = 150), many replica SE."""
    x = np.sort(np.asarray(measured["shifted"]).ravel())
    return [Claim(name="minima_above_ground_state", test="greater", measured=measured["energy"],
                  predicted=theory["ground_state"], tolerance=0.0,
                  statement="every GD end point lies above the ground-state energy -E_0",
                  source="Auffinger, Ben Arous & Cerny 2013, Theorem 2.8"),
            Claim(name="hessian_semicircle", test="less", measured=ks_distance(x, theory["radius"]),
                  predicted=KS_CRITICAL / math.sqrt(len(x)), tolerance=0.0,
                  statement="KS distance of the pooled Hessian spectra + s.grad H/N from the semicircle of radius "
                            "2 sqrt(xi''(1) (N-1)/N) is below the iid 1% critical value",
                  source="Auffinger, Ben Arous & Cerny 2013, Lemma 3.2")]


def run(p: dict, seed: int, writer, progress: bool):
    pp, n, r = p["p"], p["n"], p["replicas"]
    xi = th.Xi.mixture({pp: 1.0})
    model = sg.spherical_pspin(n, pp, seed=seed)
    S0 = sg.random_starts(n, r, seed=seed)
    traj = sg.descend(model, S0, "gd", dt=p["dt"], steps=p["steps"], seed=seed, points=p["points"],
                      grad_tol=p["grad_tol"], progress=progress, writer=writer, name="gd", attrs={"N": n})
    if traj.status != "complete":
        return traj.status, traj.message, []
    S = traj.end
    energy = traj.energy[-1]
    radial = model.radial_derivative(S)
    spectra = np.array([sg.hessian_spectrum(model, S[:, a]) for a in range(r)])
    index = (spectra < 0).sum(axis=1)
    replica = {"replica": np.arange(r)}
    for name, value, text in (("minima_energy", energy, "H/N at the end points"),
                              ("minima_index", index.astype(float), "number of negative Hessian eigenvalues"),
                              ("minima_radial", radial, "s.grad H / N (= p u at a critical point)"),
                              ("minima_grad_norm", traj.grad_norm[-1], "|grad_S H|/sqrt(N)")):
        el = writer.element(name, (r,), coords=replica, attrs={"description": text})
        el.append(int(traj.steps[-1]), float(traj.times[-1]), value)
    el = writer.element("hessian_eigenvalues", spectra.shape,
                        attrs={"description": "Riemannian Hessian spectra (R, N-1)"})
    el.append(int(traj.steps[-1]), float(traj.times[-1]), spectra)

    e_th, e_0 = th.threshold_energy(pp), th.ground_state_energy(pp)
    radius = th.hessian_radius(xi) * math.sqrt((n - 1) / n)   # GOE of size N-1 with entries of variance xi''/N
    u = np.linspace(e_0 - 0.1, e_th + 0.4, 400)
    writer.theory("complexity_all", th.complexity(u, pp), coords={"u": u}, source="ABC 2013, Theorem 2.5",
                  equation="Theta_p(u) = 1/2 log(p-1) - (p-2)/(4(p-1)) u^2 - I_1(u) 1[u < -E_inf]")
    for k in (0, 1):
        writer.theory(f"complexity_index{k}", th.complexity(u, pp, k), coords={"u": u},
                      source="ABC 2013, Theorem 2.8", equation=f"Theta_(k={k},p)(u), cumulative on (-inf, u)")
    writer.theory("threshold", e_th, source="ABC 2013, eq. 2.5", equation="-E_inf = -2 sqrt((p-1)/p)")
    writer.theory("ground_state", e_0, source="ABC 2013, Theorem 2.8", equation="Theta_(0,p)(-E_0) = 0")
    x = np.linspace(-1.1 * radius, 1.1 * radius, 301)
    writer.theory("hessian_semicircle", th.semicircle_density(x, 0.0, radius), coords={"lambda_shifted": x},
                  source="ABC 2013, Lemma 3.2", equation="semicircle of radius 2 sqrt(xi''(1) (N-1)/N) at 0 "
                  "for lambda + s.grad H/N")
    pooled = (spectra + radial[:, None]).ravel()
    lam_min = spectra[:, 0]
    edge = -radial - radius            # predicted bottom edge at each end point
    metrics = dict(threshold=e_th, ground_state=e_0, energy_mean=float(energy.mean()),
                   energy_stderr=float(energy.std(ddof=1) / math.sqrt(r)), energy_min=float(energy.min()),
                   energy_max=float(energy.max()), fraction_minima=float(np.mean(index == 0)),
                   index_max=int(index.max()), grad_norm_max=float(traj.grad_norm[-1].max()),
                   fraction_in_band=float(np.mean((energy >= e_0) & (energy <= e_th))),
                   radial_minus_p_energy_max=float(np.abs(radial - pp * energy).max()),
                   hessian_ks_semicircle=ks_distance(pooled, radius),
                   hessian_ks_floor=float(1.36 / math.sqrt(len(pooled))),
                   energy_mean_minus_threshold=float(energy.mean() - e_th),
                   lambda_min_minus_edge_mean=float(np.mean(lam_min - edge)))
    writer.comparison(**metrics)
    writer.claims(*claims({"energy": energy, "shifted": pooled}, {"ground_state": e_0, "radius": radius}))
    lines = [f"pspin-landscape: p = {pp}, N = {n}, {r} replicas, GD dt = {p['dt']}, {traj.message}",
             f"  band of minima (ABC): ground state {e_0:.4f} .. threshold {e_th:.4f}",
             f"  end points: e = {metrics['energy_mean']:.4f} +- {metrics['energy_stderr']:.4f} "
             f"(range {metrics['energy_min']:.4f} .. {metrics['energy_max']:.4f}), "
             f"{100 * metrics['fraction_in_band']:.0f}% in the band",
             f"  minima (index 0): {100 * metrics['fraction_minima']:.0f}%, max |grad| {metrics['grad_norm_max']:.1e}",
             f"  Hessian vs shifted semicircle: KS = {metrics['hessian_ks_semicircle']:.3f} "
             f"(pooled spectra are correlated within a replica, so the iid 95% line "
             f"{metrics['hessian_ks_floor']:.3f} is a lower bound)"]
    return "complete", "", lines


def plot(run, path):
    pr = run.params
    comp = run.comparison
    fig, (ax_c, ax_h, ax_l) = figure(3, title=f"spherical {pr['p']}-spin landscape: N = {pr['n']}, "
                                            f"{pr['replicas']} GD minima, seed {run.seed}")
    e = run.element("minima_energy").value[-1]
    all_ = run.theory("complexity_all")
    u = all_.coords["u"]
    ax_c.plot(u, all_.value, label="all critical points (ABC Thm 2.5)", **THEORY)
    ax_c.plot(u, run.theory("complexity_index0").value, color="C0", label="minima, index 0 (Thm 2.8)")
    ax_c.plot(u, run.theory("complexity_index1").value, color="C2", lw=1, label="index 1")
    ax_c.axvspan(comp["ground_state"], comp["threshold"], color="C1", alpha=0.15, label="band [-E_0, -E_inf]")
    ax_c.axhline(0, color="grey", lw=0.8)
    ax_c.set(xlabel="energy per spin u", ylabel="complexity (1/N) log E Crt(-inf, u)",
             title="complexity and the energies of GD minima", ylim=(-0.03, None))
    twin = ax_c.twinx()
    twin.hist(e, bins=12, color="C3", alpha=0.5, label="GD end points")
    twin.set_ylabel("GD end points (count)")
    ax_c.legend(fontsize=7, loc="upper right")
    spectra = run.element("hessian_eigenvalues").value[-1]
    radial = run.element("minima_radial").value[-1]
    semi = run.theory("hessian_semicircle")
    ax_h.hist((spectra + radial[:, None]).ravel(), bins=40, density=True, color="C0", alpha=0.6,
              label="Hessian eigenvalues + s.grad H/N")
    ax_h.plot(semi.coords["lambda_shifted"], semi.value, label="semicircle, radius 2 sqrt(xi''(1))", **THEORY)
    ax_h.set(xlabel="lambda + s.grad H / N", ylabel="density",
             title=f"Hessian spectra (KS {comp['hessian_ks_semicircle']:.3f})")
    ax_h.legend(fontsize=7)
    p = int(pr["p"])
    radius = semi.coords["lambda_shifted"].max() / 1.1
    ax_l.scatter(e, spectra[:, 0], color="C0", s=14, label="GD end points")
    grid = np.linspace(min(e.min(), comp["ground_state"]) - 0.01, max(e.max(), comp["threshold"]) + 0.01, 50)
    ax_l.plot(grid, -p * grid - radius, label="semicircle edge -p u - 2 sqrt(p(p-1))", **THEORY)
    ax_l.axvline(comp["threshold"], color="C3", ls=":", label="threshold")
    ax_l.axhline(0, color="grey", lw=0.8)
    ax_l.set(xlabel="energy per spin u", ylabel="smallest Hessian eigenvalue",
             title="smallest eigenvalue vs the semicircle edge")
    ax_l.legend(fontsize=7)
    return save(fig, path)


SCENARIO = Scenario(
    name="pspin-landscape",
    summary="energies and Hessian spectra of GD minima on the pure spherical p-spin vs the ABC complexity",
    params=(
        Param("p", int, 3, "pure p-spin order (the complexity is for pure models)", at_least(3)),
        Param("n", int, 150, "number of spins N", at_least(8)),
        Param("replicas", int, 16, "number of GD runs (same couplings, independent starts)", at_least(2)),
        Param("dt", float, 0.1, "GD step", positive),
        Param("steps", int, 3000, "GD steps (at most)", at_least(1)),
        Param("grad_tol", float, 1e-4, "stop when every replica has |grad_S H|/sqrt(N) below this (0: run all "
                                       "the steps)", non_negative),
        Param("points", int, 30, "recorded times (log-spaced)", at_least(2)),
    ),
    run=run,
    plot=plot,
    presets={"small": dict(n=40, replicas=6, steps=800)},
    validate=lambda p: (f"p = {p['p']}, N = {p['n']}: the dense tensor needs "
                        f"{8 * p['n'] ** p['p'] / 1e9:.1f} GB; lower N" if 8 * p["n"] ** p["p"] > 4e9 else None),
)
