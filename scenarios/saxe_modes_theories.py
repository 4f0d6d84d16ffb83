"""The Saxe mode-strength theory of deep linear networks for `sgdsim compare --theory deep-linear`
(entry-point group `sgdsim.theories`): it applies to runs that record mode strengths the way the saxe-modes
scenario does (`modes_depth<N>`, or `modes` with a `depth` parameter)."""
from __future__ import annotations

import re

import numpy as np

from sgdsim.compare.metrics import lr_of
from sgdsim.compare.registry import Prediction, Theory
from sgdsim.errors import ParameterError
from sgdsim.io.runread import Run

MODES = r"modes_depth([0-9]+)|modes"


def deep_linear(run: Run) -> Prediction:
    """Saxe mode strengths of deep linear networks: `modes_depth<N>` over time.

    u_k(t) solving du/dt = N u^(2-2/N) (s_k - u) (Saxe, McClelland & Ganguli 2014, eq. 6 for N = 2 and sec. 3
    for deeper nets; `deep_linear.theory.saxe_mode`) at t = lr * step: gradient flow on N balanced factors with
    whitened inputs, one column per singular mode. s_k from params singular_values or the run's
    /theory/singular_values; u0 from params u0 when the start is decoupled (init "decoupled" or absent), else
    each mode's |u_k| at the first record (what saxe-modes does for a Gaussian start; approximate). Needs lr
    and elements modes_depth<N>, or `modes` with a depth parameter.
    """
    from sgdsim.deep_linear import theory as lt

    observables, params = run.names("observables"), run.params
    depths = {q: int(m.group(1)) for q in observables if (m := re.fullmatch(MODES, q)) and m.group(1)}
    if "modes" in observables and "depth" in params:
        depths["modes"] = params["depth"]
    if not depths:
        raise ParameterError(f"theory deep-linear needs mode strengths: elements modes_depth<N> or modes with a "
                             f"'depth' parameter; {run.path.name} has: {', '.join(observables) or 'nothing'}")
    if "singular_values" in params:
        s = np.asarray(params["singular_values"], float).ravel()
    elif "singular_values" in run.names("theory"):
        s = np.asarray(run.theory("singular_values").value, float).ravel()
    else:
        raise ParameterError(f"theory deep-linear needs the singular values of Sigma_yx: {run.path.name} has no "
                             f"'singular_values' parameter and no /theory/singular_values")
    decoupled = params.get("init", "decoupled") == "decoupled"
    if decoupled and "u0" not in params:
        raise ParameterError(f"theory deep-linear needs the initial mode strength: {run.path.name} has no 'u0' "
                             f"parameter")
    lr = lr_of(run)
    out: Prediction = {}
    for q, depth in depths.items():
        el = run.element(q)
        if el.value.shape[1:] != s.shape or isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ParameterError(f"theory deep-linear, {q}: needs one column per singular value ({len(s)}) and an "
                                 f"integer depth >= 1; got values of shape {el.value.shape[1:]}, depth {depth!r}")
        u0 = np.full(len(s), float(params["u0"])) if decoupled else np.clip(np.abs(el.value[0]), 1e-12, s / 2)
        t = lr * el.step.astype(float)
        try:
            out[q] = (t, np.stack([lt.saxe_mode(t, sk, uk, depth) for sk, uk in zip(s, u0)], axis=1))
        except ParameterError as e:
            raise ParameterError(f"theory deep-linear, {q}: {e}") from None
    return out


DEEP_LINEAR = Theory(deep_linear, "deep linear networks recording mode strengths modes_depth<N> (saxe-modes), "
                                  "or modes with a depth parameter", quantities=(MODES,), params=("lr",))
