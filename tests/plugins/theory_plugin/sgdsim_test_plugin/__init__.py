"""The sgdsim test plug-in: a package other than sgdsim that registers a theory (`decay`) and a scenario
(`plugin-decay`) through the entry-point groups `sgdsim.theories` and `sgdsim.scenarios`.

The scenario records signal_k = exp(-rate t_k) + bias + noise * xi_k at t_k = k dt (xi_k standard normal,
seeded), optionally sleeping between records (a slow task for the sweep tests) or writing NaN at one record
(a diverged run). It claims that the mean residual signal - exp(-rate t) is 0 within 4 standard errors
(noise / sqrt(n)): true for bias 0, false for a bias of many standard errors. Its estimate of memory and
output is what the recorder stores.
"""
from __future__ import annotations

import math
import time

import numpy as np

from sgdsim.compare.claims import Claim
from sgdsim.compare.registry import Theory
from sgdsim.plotting import THEORY, figure, save
from sgdsim.scenario import Param, Scenario, at_least, non_negative, positive, record_bytes
from sgdsim.text import estimate


def decay(run):
    """Exponential decay of `signal`: exp(-rate t) at the recorded times."""
    el = run.element("signal")
    return {"signal": (el.time, np.exp(-float(run.params["rate"]) * el.time))}


DECAY = Theory(decay, "runs recording `signal` with a `rate` parameter (the test plug-in)",
               quantities=("signal",), params=("rate",))


def run(p, seed, writer, progress):
    rng = np.random.default_rng(seed)
    el = writer.element("signal", ())
    values = []
    for k in range(p["records"]):
        t = k * p["dt"]
        value = math.exp(-p["rate"] * t) + p["bias"] + p["noise"] * rng.standard_normal()
        if k == p["diverge_at"]:
            value = math.nan
        el.append(k, t, value)
        values.append(value)
        if p["sleep"]:
            writer.flush()
            time.sleep(p["sleep"])
        if not math.isfinite(value):
            return "diverged", f"signal became non-finite at step {k}", []
    t = np.arange(p["records"]) * p["dt"]
    residual = np.array(values) - np.exp(-p["rate"] * t)
    mean, se = float(residual.mean()), p["noise"] / math.sqrt(len(residual))
    writer.theory("signal", np.exp(-p["rate"] * t), step=np.arange(p["records"]), time=t,
                  source="exact", equation="exp(-rate t)")
    writer.claims(Claim("residual", "the mean residual from exp(-rate t) is 0", mean, 0.0, "z", 4.0, stderr=se,
                        source="construction"))
    writer.comparison(residual_mean=mean)
    return "complete", "", [f"mean residual {estimate(mean, se)}"]


def plot(run, path):
    fig, (ax,) = figure()
    el = run.element("signal")
    ax.plot(el.time, el.value, label="signal")
    ax.plot(el.time, np.exp(-run.params["rate"] * el.time), label="exp(-rate t)", **THEORY)
    ax.legend()
    return save(fig, path)


def resources(p):
    """(memory, output) in bytes: the records, buffered and written."""
    stored = record_bytes(p["records"], ())
    return stored, stored


SCENARIO = Scenario(
    name="plugin-decay", summary="test plug-in: a noisy exponential decay", run=run, plot=plot,
    params=(Param("records", int, 20, "records", at_least(1)),
            Param("dt", float, 0.1, "time between records", positive),
            Param("rate", float, 1.0, "decay rate", positive),
            Param("noise", float, 0.1, "noise standard deviation", positive),
            Param("bias", float, 0.0, "offset added to the signal"),
            Param("sleep", float, 0.0, "seconds to sleep after each record", non_negative),
            Param("diverge_at", int, -1, "record made NaN (-1: none)")),
    presets={"small": {"records": 10}}, estimate=resources)
