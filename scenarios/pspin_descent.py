"""pspin-descent: gradient descent and Langevin dynamics of many replicas on spherical p-spin landscapes, against
the Cugliandolo-Kurchan (CK) prediction and the threshold energy.

From uniform random starts on |s|^2 = N, R replicas per N run projected gradient descent (T = 0) and Langevin
at temperature T on the same couplings. As N grows the energy per spin e(t) follows the N -> infinity CK curve
(Cugliandolo & Kurchan 1993), which at T = 0 approaches the threshold energy -2 sqrt((p-1)/p) (pure p, ABC 2013)
as a power law and never goes below it. At finite N descent stops in a minimum; its energy sits above the
threshold by a gap that closes with N. At a fixed t_max the N -> infinity gap is the CK one, e_CK(t_max) - e_th;
the finite-N excess e_N(t_max) - e_CK(t_max) is fitted as a power of N (gd_excess_over_ck_exponent, stored
when every excess is positive; the Tracy-Widom scale N^{-2/3} of the Hessian edge is the natural guess).
Convention: E[H(s)H(s')] = N xi(s.s'/N), xi(q) = sum_p a_p^2 q^p.

The CK curves are integrated first with a checked step (error estimate <= 1e-3 in e(t), else the run is refused
before any descent); Langevin is Metropolis-adjusted (`spin_glass`, exact Gibbs at stationarity). Claims:
`claims`.
"""
from __future__ import annotations

import numpy as np

from sgdsim.spin_glass import descent as sg
from sgdsim.spin_glass import theory as th
from sgdsim.compare.claims import Claim, familywise_z
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, list_check, non_negative, parse_list, positive

AGING_FRACTIONS = (0.05, 0.15, 0.4)   # waiting times t_w as fractions of t_max
FALSE_ALARM = 0.01                    # familywise probability that a true claim is reported as failing
SOURCE_TH = "Auffinger, Ben Arous & Cerny 2013, eq. 2.5 (threshold -2 sqrt((p-1)/p)); Cugliandolo & Kurchan 1993"


def _mixture_check(text):
    try:
        sg.parse_mixture(text)
    except Exception as e:  # noqa: BLE001 -- the message is the check's answer
        return str(e).replace("p-spin mixture ", "")
    return None


def claims(measured: dict, theory: dict) -> list[Claim]:
    """The claims of one run (pure p >= 3, where the threshold is known). measured: "ns", "gd_final" and
    "gd_stderr" (replica mean and its SE of e(t_max) per N); theory: "threshold", "ck_final" (e_CK(t_max) at
    T = 0) and "ck_error" (its estimated error).

    gd_above_threshold: at every N, descent ends above the threshold (the N -> infinity dynamics approaches it
    from above, Cugliandolo & Kurchan 1993; at finite N minima below it are exponentially rare, ABC 2013).
    ck_above_threshold: the CK energy at t_max, minus its error estimate, is above the threshold.
    Not claimed: that the finite-N excess over CK closes with N. It does on average (GD excess ~ N^-0.8 in
    `gd_excess_over_ck_exponent`), but all replicas share one draw of the couplings, so the replica standard
    error misses the sample-to-sample spread, which dominates at small N (with N = 32, 128 and 24 replicas,
    seeds 1-3 put the difference of the excesses within 2.6 replica SE of 0)."""
    ns, gd, se = measured["ns"], np.asarray(measured["gd_final"]), np.asarray(measured["gd_stderr"])
    out = [Claim(name="gd_above_threshold", test="greater", measured=gd, predicted=theory["threshold"], stderr=se,
                 tolerance=familywise_z(len(ns), FALSE_ALARM),
                 statement=f"replica-mean GD energy at t_max is above the threshold at every N ({ns})",
                 source=SOURCE_TH),
           Claim(name="ck_above_threshold", test="greater", measured=theory["ck_final"],
                 predicted=theory["threshold"], stderr=theory["ck_error"], tolerance=1.0,
                 statement="the CK energy at t_max minus its error estimate is above the threshold",
                 source=SOURCE_TH)]
    return out


def run(p: dict, seed: int, writer, progress: bool):
    mixture = sg.parse_mixture(p["p"])
    xi = th.Xi.mixture(mixture)
    ns = parse_list(p["ns"], int, 2)
    steps = int(round(p["t_max"] / p["dt"]))
    for n in ns:
        sg.check_memory(n, mixture, p["replicas"])
    T = p["temperature"]
    grid = 2 * p["ck_step"]                       # spacing of the Richardson-extrapolated CK solution
    waiting = np.round(np.round(np.array(AGING_FRACTIONS) * p["t_max"] / grid) * grid / p["dt"]).astype(np.int64)
    # the CK solutions first: a step whose error estimate exceeds the tolerance is refused before any descent
    solutions = {label: th.cugliandolo_kurchan(xi, temp, p["t_max"], p["ck_step"]) for label, temp in
                 (("T0", 0.0), ("T", T))}
    finals = {"gd": [], "langevin": []}
    status, message, lines = "complete", "", []
    for n in ns:
        model = sg.spherical_pspin(n, mixture, seed=seed + n)
        S0 = sg.random_starts(n, p["replicas"], seed=seed + n)
        for method, temp in (("gd", 0.0), ("langevin", T)):
            scheme = p["sampler"] if method == "langevin" else method
            traj = sg.descend(model, S0, scheme, dt=p["dt"], steps=steps, temperature=temp, seed=seed + n,
                              points=p["points"], waiting=tuple(waiting), progress=progress, writer=writer,
                              name=f"{method}_N{n}", attrs={"N": n, "temperature": temp, "scheme": scheme})
            if traj.status != "complete":
                return traj.status, f"{method} N={n}: {traj.message}", lines
            finals[method].append(traj.energy[-1])

    ck = {}
    for label, temp in (("T0", 0.0), ("T", T)):
        sol = ck[label] = solutions[label]
        writer.theory(f"ck_energy_{label}", sol.energy, step=np.round(sol.times / p["dt"]).astype(np.int64),
                      time=sol.times, source="Cugliandolo & Kurchan 1993 equations, N -> infinity, Heun + "
                      "trapezoid with Richardson extrapolation", equation="e(t) = -int_0^t xi'(C(t,s)) R(t,s) ds",
                      attrs={"temperature": temp, "h": p["ck_step"], "error_estimate": sol.error})
        aging = np.full((len(sol.times), len(waiting)), np.nan)
        for w, t_w in enumerate(waiting * p["dt"]):
            i_w = int(np.argmin(np.abs(sol.times - t_w)))
            aging[i_w:, w] = sol.C[i_w:, i_w]
        writer.theory(f"ck_aging_{label}", aging, step=np.round(sol.times / p["dt"]).astype(np.int64),
                      time=sol.times, coords={"waiting_time": sol.times[[int(np.argmin(np.abs(sol.times - t)))
                                                                         for t in waiting * p["dt"]]]},
                      source="Cugliandolo & Kurchan 1993", equation="C(t, t_w), t >= t_w",
                      attrs={"temperature": temp})
        writer.theory(f"ck_overlap_start_{label}", sol.C[:, 0], step=np.round(sol.times / p["dt"]).astype(np.int64),
                      time=sol.times, source="Cugliandolo & Kurchan 1993", equation="C(t, 0) = s(t).s(0)/N",
                      attrs={"temperature": temp})
    metrics = {"temperature": T, "dynamical_temperature": th.dynamical_temperature(xi),
               "ck_energy_T0_final": float(ck["T0"].energy[-1]), "ck_energy_T_final": float(ck["T"].energy[-1]),
               "ck_error_T0_max": ck["T0"].error_max, "ck_error_T_max": ck["T"].error_max}
    pure = xi.pure
    if pure and pure >= 3:
        e_th, e_0 = th.threshold_energy(pure), th.ground_state_energy(pure)
        writer.theory("threshold", e_th, source="Auffinger, Ben Arous & Cerny 2013, eq. 2.5",
                      equation="-E_inf = -2 sqrt((p-1)/p)")
        writer.theory("ground_state", e_0, source="Auffinger, Ben Arous & Cerny 2013, Theorem 2.8",
                      equation="zero of the index-0 complexity")
        metrics.update(threshold=e_th, ground_state=e_0)
    if T > metrics["dynamical_temperature"]:
        writer.theory("paramagnetic_energy", th.paramagnetic_energy(xi, T), source="annealed Gibbs measure",
                      equation="-xi(1)/T")
    gd_final = np.array([f.mean() for f in finals["gd"]])
    gd_se = np.array([f.std(ddof=1) / np.sqrt(len(f)) if len(f) > 1 else np.nan for f in finals["gd"]])
    lv_final = np.array([f.mean() for f in finals["langevin"]])
    reference = metrics.get("threshold", metrics["ck_energy_T0_final"])
    gap = gd_final - reference
    final_el = writer.element("gd_final_energy_vs_N", (len(ns),), coords={"N": np.array(ns)},
                              attrs={"description": "replica-mean GD energy per spin at t_max, per N",
                                     "stderr": gd_se, "reference": reference})
    final_el.append(steps, steps * p["dt"], gd_final)
    for n, g, e, se, lv in zip(ns, gap, gd_final, gd_se, lv_final):
        metrics[f"gd_final_N{n}"] = float(e)
        metrics[f"gd_final_stderr_N{n}"] = float(se)
        metrics[f"gd_gap_to_threshold_N{n}"] = float(g)
        metrics[f"langevin_final_N{n}"] = float(lv)
    excess = gd_final - metrics["ck_energy_T0_final"]
    if len(ns) >= 2 and np.all(excess > 0):
        metrics["gd_excess_over_ck_exponent"] = float(np.polyfit(np.log(ns), np.log(excess), 1)[0])
    metrics["gd_final_minus_ck_largest_N"] = float(gd_final[-1] - metrics["ck_energy_T0_final"])
    metrics["langevin_final_minus_ck_largest_N"] = float(lv_final[-1] - metrics["ck_energy_T_final"])
    writer.comparison(**metrics)
    if "threshold" in metrics:
        writer.claims(*claims({"ns": ns, "gd_final": gd_final, "gd_stderr": gd_se},
                              {"threshold": metrics["threshold"], "ck_final": metrics["ck_energy_T0_final"],
                               "ck_error": ck["T0"].error_max}))
    lines.append(f"pspin-descent: p = {p['p']}, N = {ns}, {p['replicas']} replicas, dt = {p['dt']}, "
                 f"t_max = {p['t_max']}, Langevin T = {T}")
    lines.append(f"  CK e(t_max): T=0 {metrics['ck_energy_T0_final']:.4f}   T={T} {metrics['ck_energy_T_final']:.4f}"
                 f"   (estimated error of e(t) <= {max(metrics['ck_error_T0_max'], metrics['ck_error_T_max']):.1e})")
    if "gd_excess_over_ck_exponent" in metrics:
        lines.append(f"  GD excess over CK at t_max ~ N^{metrics['gd_excess_over_ck_exponent']:.2f}")
    if "threshold" in metrics:
        lines.append(f"  threshold {metrics['threshold']:.4f}   ground state {metrics['ground_state']:.4f}")
    for n, e, s, lv in zip(ns, gd_final, gd_se, lv_final):
        lines.append(f"  N={n:5d}  GD e(t_max) = {e:.4f} +- {s:.4f} (gap to threshold {e - reference:+.4f})   "
                     f"Langevin {lv:.4f}")
    return status, message, lines


def plot(run, path):
    pr = run.params
    ns = parse_list(pr["ns"], int, 2)
    comp = run.comparison
    fig, axes = figure(4, width=4.6, title=f"spherical p-spin descent: p = {pr['p']}, {pr['replicas']} replicas, "
                                f"dt = {pr['dt']}, Langevin T = {pr['temperature']}, seed {run.seed}")
    colors = __import__("matplotlib").colormaps["viridis"](np.linspace(0.1, 0.85, len(ns)))
    for ax, method, label in ((axes[0], "gd", "T0"), (axes[1], "langevin", "T")):
        for c, n in zip(colors, ns):
            el = run.element(f"{method}_N{n}_energy")
            keep = el.time > 0
            ax.semilogx(el.time[keep], el.value[keep].mean(axis=1), color=c, label=f"N = {n}")
        ck = run.theory(f"ck_energy_{label}")
        keep = ck.time > 0
        ax.semilogx(ck.time[keep], ck.value[keep], label="CK (N = inf)", **THEORY)
        if "threshold" in comp:
            ax.axhline(comp["threshold"], color="C3", ls=":", label="threshold -2 sqrt((p-1)/p)")
            ax.axhline(comp["ground_state"], color="grey", ls=":", label="ground state (ABC)")
        if method == "langevin" and "paramagnetic_energy" in run.names("theory"):
            ax.axhline(float(run.theory("paramagnetic_energy").value), color="C1", ls=":", label="-xi(1)/T")
        title = "gradient descent" if method == "gd" else f"Langevin T = {pr['temperature']}"
        ax.set(xlabel="t = step x dt", ylabel="energy per spin H/N (replica mean)", title=title)
        ax.legend(fontsize=7)
    final = run.element("gd_final_energy_vs_N")
    n_arr = final.coords["N"]
    ref = final.attrs["reference"]
    axes[2].errorbar(n_arr, final.value[-1] - ref, yerr=final.attrs["stderr"], marker="o", color="C0",
                     label="GD e(t_max) - e_th")
    axes[2].axhline(comp["ck_energy_T0_final"] - ref, label="CK e(t_max) - e_th", **THEORY)
    axes[2].axhline(0, color="C3", ls=":")
    axes[2].set_xscale("log")
    axes[2].set_xticks(n_arr, [str(int(v)) for v in n_arr])
    axes[2].minorticks_off()
    axes[2].set(xlabel="N", ylabel="e(t_max) - e_th", title="finite-N gap to the threshold")
    axes[2].legend(fontsize=7)
    aging = run.element(f"gd_N{ns[-1]}_overlap_waiting")
    ck = run.theory("ck_aging_T0")
    for w, t_w in enumerate(aging.coords["waiting_time"]):
        keep = aging.time > t_w
        axes[3].semilogx(aging.time[keep] - t_w, aging.value[keep, w].mean(axis=1), color=f"C{w}",
                         label=f"t_w = {t_w:g}")
        keep = ck.time > ck.coords["waiting_time"][w]
        axes[3].semilogx(ck.time[keep] - ck.coords["waiting_time"][w], ck.value[keep, w],
                         **{**THEORY, "label": "CK" if w == 0 else None})
    axes[3].set(xlabel="t - t_w", ylabel="C(t, t_w) = s(t).s(t_w)/N",
                title=f"aging of gradient descent, N = {ns[-1]}")
    axes[3].legend(fontsize=7)
    return save(fig, path)


SCENARIO = Scenario(
    name="pspin-descent",
    summary="GD and Langevin on spherical p-spin landscapes vs the Cugliandolo-Kurchan curve and the threshold",
    params=(
        Param("p", str, "3", "pure p ('3') or mixture 'p:a_p,...' (e.g. '2:0.5,3:1')", _mixture_check),
        Param("ns", str, "32,64,128,256", "system sizes N (comma-separated)", list_check(int, 4)),
        Param("replicas", int, 8, "replicas per N (same couplings, independent starts)", at_least(2)),
        Param("dt", float, 0.05, "time step of descent and Langevin", positive),
        Param("t_max", float, 10.0, "final time", positive),
        Param("temperature", float, 0.5, "Langevin temperature T", non_negative),
        Param("sampler", str, "langevin", "Langevin scheme: 'langevin' is Metropolis-adjusted (exact Gibbs at "
              "stationarity for every dt; rejections slow the path: acceptance 0.84 at N = 32 to 0.62 at N = 256 "
              "at the defaults), 'langevin-euler' is Euler-Maruyama (samples about T (1 + 2 dt))",
              choices=("langevin", "langevin-euler")),
        Param("ck_step", float, 0.0125, "step of the CK integrator (O(n^3) in t_max / ck_step); refused when "
                                         "its error estimate in e(t) exceeds 1e-3", positive),
        Param("points", int, 40, "recorded times (log-spaced)", at_least(2)),
    ),
    run=run,
    plot=plot,
    presets={"small": dict(ns="32,64", replicas=8, t_max=5.0, ck_step=0.0125, points=15)},
    validate=lambda p: (f"t_max / ck_step = {p['t_max'] / p['ck_step']:.0f} CK steps is above 4000 (O(n^3) "
                        f"cost); raise ck_step" if p["t_max"] / p["ck_step"] > 4000 else None),
)
