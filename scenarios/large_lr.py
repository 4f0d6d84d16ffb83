"""large-lr: a large initial learning rate, then decay, learns the pattern a small learning rate misses
(Li, Wei & Ma 2019, "Towards explaining the regularization effect of initial large learning rate").

Two-pattern data (their Section 3, scaled down): x = (x_P, x_Q), label y in {0, 1}.
  P, easy to fit but hard to generalize: x_P = (2y - 1) margin w* + N(0, I_dP / dP), a linearly separable but
    noisy pattern in many dimensions (a few examples are memorized easily, generalizing needs many);
  Q, hard to fit but easy to generalize: x_Q = z + s zeta u (y = 1, s = +-1) or z (y = 0), plus a little
    noise: three tight clusters on a line, not linearly separable (a linear classifier errs on >= 1/4 of
    them), so fitting Q needs the nonlinearity to resolve the small offset zeta.
20% of examples carry only P (x_Q = 0), 20% only Q (x_P = 0), 60% both. A two-layer ReLU network is trained
with a large rate lr_large decayed by `decay` halfway, and with a constant small rate lr_small, as two
ensembles on the same data. The claim: the small-lr networks memorize P first and then fail on Q (Q-only test
error near chance), the large-lr networks learn Q (Q-only test error near 0) and after the decay fit P as
well; on P-only examples the two are similar. The gap is one of training budget: at this scale, trained
several times longer (or on twice the data), the small-lr networks learn Q too (Q-only test error ~0.05).

Claims (`claims`), with standard errors over the ensemble members (a member's small-lr Q error is either ~0 or
~0.5, so the ensemble is large) and one-sided Student-t bounds at false-alarm rate FALSE_ALARM: the schedule
the theory says learns Q (large then decayed) ends with a Q-only test error below LINEAR_Q_FLOOR, and the other
(small lr) ends with a larger one: its Q-only error minus the learner's is > 0.
"""
from __future__ import annotations

import numpy as np

from sgdsim.compare.claims import Claim, familywise_z
from sgdsim.particles.dynamics import Schedule
from sgdsim.networks.training import Architecture, Dataset, Loss, Optimizer, Recording, train_ensemble
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, positive

GROUPS = ("P only", "Q only", "P and Q")
FRACTIONS = (0.2, 0.2, 0.6)
LINEAR_Q_FLOOR = 0.25  # best linear classifier on Q-only examples: one y=1 cluster of the three is lost
FALSE_ALARM = 0.01     # probability that a true claim is reported as failing
SOURCE = "Li, Wei & Ma 2019, 'Towards explaining the regularization effect of initial large learning rate in " \
         "training neural networks', Sec. 3: large lr then annealing learns the hard-to-fit, easy-to-generalize " \
         "pattern Q; a small lr memorizes P and does not"
SCHEDULES = {"large": "large lr then decay", "small": "small lr"}


def two_pattern_data(n_train: int, n_test: int, dim_p: int, margin: float, zeta: float, seed: int) -> Dataset:
    """The two-pattern data of the module docstring (test examples grouped by which patterns they carry)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(dim_p)
    w /= np.linalg.norm(w)
    z = rng.standard_normal(2)
    z /= np.linalg.norm(z)
    u = np.array([-z[1], z[0]])

    def draw(n):
        y = rng.integers(0, 2, n)
        x_p = (2 * y - 1)[:, None] * margin * w + rng.standard_normal((n, dim_p)) / np.sqrt(dim_p)
        side = rng.choice([-1, 1], n)
        x_q = z + (y * side)[:, None] * zeta * u + 0.1 * zeta * rng.standard_normal((n, 2))
        kind = rng.choice(3, n, p=FRACTIONS)
        x_p[kind == 1] = 0.0
        x_q[kind == 0] = 0.0
        return np.hstack([x_p, x_q]), y, kind

    X, y, _ = draw(n_train)
    X_test, y_test, kind_test = draw(n_test)
    return Dataset(X, y, X_test, y_test, 2, test_groups=kind_test, group_names=GROUPS,
                   description=f"Li-Wei-Ma two-pattern data, dim_P={dim_p}, margin={margin}, zeta={zeta}")


def _mean_se(errors) -> tuple[float, float]:
    errors = np.asarray(errors, float)
    return float(errors.mean()), float(errors.std(ddof=1) / np.sqrt(len(errors)))


def claims(measured: dict, theory: dict) -> list[Claim]:
    """measured: {"q_error": {"large": per-member Q-only test errors, "small": ...}}; theory: {"learns_q": which
    schedule learns Q ("large" per Li, Wei & Ma), "linear_q_floor": the best linear classifier's Q-only error}."""
    learner = theory["learns_q"]
    other = next(k for k in SCHEDULES if k != learner)
    q = measured["q_error"]
    (m_l, s_l), (m_o, s_o) = _mean_se(q[learner]), _mean_se(q[other])
    dof = min(len(q[learner]), len(q[other])) - 1
    bound = familywise_z(1, 2 * FALSE_ALARM, dof=dof)   # one-sided at FALSE_ALARM
    return [Claim(name=f"q_learned_{learner}_lr", test="less", measured=m_l, stderr=s_l, tolerance=bound,
                  predicted=theory["linear_q_floor"], source=SOURCE,
                  statement=f"{SCHEDULES[learner]}: Q-only test error below the best linear classifier's (the "
                            f"nonlinear pattern Q is learned)"),
            Claim(name=f"q_missed_{other}_lr", test="greater", measured=m_o - m_l, stderr=float(np.hypot(s_l, s_o)),
                  tolerance=bound, predicted=0.0, source=SOURCE,
                  statement=f"{SCHEDULES[other]}: Q-only test error above that of {SCHEDULES[learner]} (difference "
                            f"> 0)")]


def run(p: dict, seed: int, writer, progress: bool):
    data = two_pattern_data(p["examples"], p["test_examples"], p["dim_p"], p["margin"], p["zeta"], seed)
    arch = Architecture((p["dim_p"] + 2, p["width"], 1), "relu")
    loss = Loss("cross-entropy")
    rec = Recording(every=p["record_every"], sharpness_every=p["record_every"] * p["sharpness_every"])
    half = max(1, p["steps"] // 2)
    runs = {"large_": Optimizer(lr=p["lr_large"], batch=p["batch"], schedule=Schedule("step", p["decay"], half)),
            "small_": Optimizer(lr=p["lr_small"], batch=p["batch"])}
    final = {}
    for prefix, opt in runs.items():
        out = train_ensemble(arch, loss, opt, data, members=p["members"], steps=p["steps"], seed=seed,
                             recording=rec, writer=writer, prefix=prefix, progress=progress)
        if out.status != "complete":
            return out.status, f"{prefix.rstrip('_')} lr: {out.message}", [out.message]
        final[prefix] = {k: v[-1] for k, (_, _, v) in out.history.items()}
    writer.theory("linear_q_floor", LINEAR_Q_FLOOR,
                  source="best linear classifier on the Q-only examples (three collinear clusters, labels 1, 0, 1)",
                  equation="error >= P(one outer cluster) = 1/4")
    g = {k: final[k]["test_error_groups"].mean(axis=0) for k in final}
    se = {k: final[k]["test_error_groups"].std(axis=0) / np.sqrt(p["members"]) for k in final}
    metrics = {}
    for i, name in enumerate(("p", "q", "both")):
        for k in final:
            metrics[f"test_error_{name}_{k.rstrip('_')}"] = float(g[k][i])
            metrics[f"test_error_{name}_{k.rstrip('_')}_stderr"] = float(se[k][i])
    metrics.update(q_error_gap=metrics["test_error_q_small"] - metrics["test_error_q_large"],
                   train_error_large=float(final["large_"]["train_error"].mean()),
                   train_error_small=float(final["small_"]["train_error"].mean()),
                   claim="Q-only test error: large-then-decay << small lr (Li, Wei & Ma 2019)")
    if "sharpness" in final["large_"]:
        metrics.update({f"sharpness_final_{k.rstrip('_')}": float(np.mean(final[k]["sharpness"])) for k in final})
    writer.comparison(**metrics)
    q_only = GROUPS.index("Q only")
    writer.claims(*claims({"q_error": {k.rstrip("_"): final[k]["test_error_groups"][:, q_only] for k in final}},
                          {"learns_q": "large", "linear_q_floor": LINEAR_Q_FLOOR}))
    lines = [f"large-lr: two-layer ReLU width {p['width']}, {p['members']} members, N={p['examples']}, "
             f"{p['steps']} steps, B={p['batch']}",
             "  test error      P only        Q only        P and Q",
             *(f"  {label:<14}" + "".join(f"{g[k][i]:.3f}+-{se[k][i]:.3f}  " for i in range(3))
               for k, label in (("large_", f"lr {p['lr_large']:g}->x{p['decay']:g}"),
                                ("small_", f"lr {p['lr_small']:g}"))),
             f"  linear classifier floor on Q only: {LINEAR_Q_FLOOR}"]
    return "complete", "", lines


def plot(run, path):
    pr = run.params
    fig, axes = figure(4, width=4.4, title=f"large-lr (Li, Wei & Ma 2019): two-layer ReLU width {pr['width']}, "
                                f"lr {pr['lr_large']}->x{pr['decay']} vs {pr['lr_small']}, B={pr['batch']}, "
                                f"{pr['members']} members, seed {run.seed}")
    for i, (ax, name) in enumerate(zip(axes, GROUPS)):
        for prefix, color, label in (("large_", "C3", f"large lr {pr['lr_large']} then x{pr['decay']}"),
                                     ("small_", "C0", f"small lr {pr['lr_small']}")):
            e = run.element(prefix + "test_error_groups")
            v = e.value[:, :, i]
            ax.plot(e.step, v.mean(axis=1), color=color, lw=2, label=label)
            ax.fill_between(e.step, v.min(axis=1), v.max(axis=1), color=color, alpha=0.2)
        if i == 1:
            ax.axhline(run.theory("linear_q_floor").value, label="best linear classifier", **THEORY)
        ax.axvline(pr["steps"] // 2, color="grey", ls=":", lw=1, label="lr decay")
        ax.set(xlabel="SGD step", ylabel="test error (mean, min-max over members)", title=f"test examples: {name}",
               ylim=(0, 1))
        ax.legend(fontsize=7)
    ax = axes[3]
    for prefix, color, lrs in (("large_", "C3", (pr["lr_large"], pr["lr_large"] * pr["decay"])),
                               ("small_", "C0", (pr["lr_small"],))):
        if prefix + "sharpness" not in run.names("observables"):
            return save(fig, path)
        e = run.element(prefix + "sharpness")
        ax.semilogy(e.step, e.value.mean(axis=1), "o-", ms=3, color=color, label=f"{prefix.rstrip('_')} lr")
        for lr in lrs:
            ax.axhline(2 / lr, color=color, ls="--", lw=0.8)
    ax.plot([], [], label="2/lr (GD stability edge)", **THEORY)
    ax.set(xlabel="SGD step", ylabel="top Hessian eigenvalue (mean over members)", title="sharpness")
    ax.legend(fontsize=7)
    return save(fig, path)


SCENARIO = Scenario(
    name="large-lr",
    summary="large lr then decay learns the hard-to-fit pattern a small lr misses (Li, Wei & Ma 2019)",
    params=(
        Param("members", int, 16, "networks per ensemble (independent inits and minibatch streams)", at_least(1)),
        Param("width", int, 32, "hidden width of the two-layer ReLU network", at_least(1)),
        Param("examples", int, 100, "training examples", at_least(2)),
        Param("test_examples", int, 2000, "test examples", at_least(10)),
        Param("dim_p", int, 30, "dimension of the P pattern", at_least(1)),
        Param("margin", float, 0.1, "margin of the P pattern (its noise has unit norm)", positive),
        Param("zeta", float, 0.2, "offset of the outer Q clusters (the Q centre has unit norm)", positive),
        Param("lr_large", float, 0.4, "large initial learning rate", positive),
        Param("decay", float, 0.1, "factor applied to lr_large halfway", positive),
        Param("lr_small", float, 0.04, "small constant learning rate", positive),
        Param("batch", int, 8, "minibatch size B", at_least(1)),
        Param("steps", int, 3000, "SGD steps of each ensemble", at_least(2)),
        Param("record_every", int, 100, "steps between recorded errors", at_least(1)),
        Param("sharpness_every", int, 2, "records between sharpness estimates (0: none)",
              lambda v: None if v >= 0 else "must be non-negative"),
    ),
    run=run,
    plot=plot,
    presets={"small": dict(test_examples=1000, record_every=500)},
    validate=lambda p: (f"batch {p['batch']} is larger than the data ({p['examples']} examples)"
                        if p["batch"] > p["examples"] else None),
)
