"""Plain NumPy twin of `networks.kernel`: the same networks, losses and SGD written with batched matrix
products, used to test the kernel and as the benchmark baseline. Also the exact Hessian-vector product by
Pearlmutter's (1994) R-operator, the independent check of the kernel's finite-difference one.

Parameters are the kernel's flat vector (layer l: W_l row-major then b_l); `unpack` gives the matrices.
"""
from __future__ import annotations

import numpy as np

from ..particles.reference import Stream
from ..rng import seed_states


def unpack(w: np.ndarray, sizes) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(W_l, b_l)] as views of the flat parameter vector w."""
    out, o = [], 0
    for nin, nout in zip(sizes[:-1], sizes[1:]):
        out.append((w[o:o + nin * nout].reshape(nout, nin), w[o + nin * nout:o + (nin + 1) * nout]))
        o += (nin + 1) * nout
    return out


def _sigma(z, act):
    return {0: z, 1: np.maximum(z, 0.0), 2: np.tanh(z)}[act]


def _sigma_prime(z, act):
    return {0: np.ones_like(z), 1: (z > 0).astype(float), 2: 1.0 / np.cosh(z) ** 2}[act]


def _sigma_second(z, act):
    return -2.0 * np.tanh(z) / np.cosh(z) ** 2 if act == 2 else np.zeros_like(z)


def _forward(w, sizes, act, X):
    """Pre-activations zs and activations as (as[0] = X); the output is zs[-1]."""
    layers = unpack(w, sizes)
    zs, acts = [], [X]
    for l, (W, b) in enumerate(layers):
        z = acts[-1] @ W.T + b
        zs.append(z)
        acts.append(_sigma(z, act) if l < len(layers) - 1 else z)
    return layers, zs, acts


def outputs(w: np.ndarray, sizes, act: int, X: np.ndarray) -> np.ndarray:
    return _forward(w, sizes, act, X)[1][-1]


def _loss_terms(f, Y, loss):
    """Per-example losses, dl/df and the curvature operator u -> d2l/df2 u (rows are examples)."""
    if loss == 0:
        return 0.5 * np.sum((f - Y) ** 2, axis=1), f - Y, lambda u: u
    if f.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-f))
        return (np.logaddexp(0.0, f) - Y * f)[:, 0], p - Y, lambda u: p * (1 - p) * u
    lse = np.logaddexp.reduce(f, axis=1, keepdims=True)
    p = np.exp(f - lse)
    return lse[:, 0] - np.sum(Y * f, axis=1), p - Y, lambda u: p * u - p * np.sum(p * u, axis=1, keepdims=True)


def loss_grad(w: np.ndarray, sizes, act: int, loss: int, X: np.ndarray, Y: np.ndarray):
    """Mean loss over the rows of X and its gradient (backpropagation, batched)."""
    layers, zs, acts = _forward(w, sizes, act, X)
    values, delta, _ = _loss_terms(zs[-1], Y, loss)
    n = len(X)
    grads = []
    for l in range(len(layers) - 1, -1, -1):
        grads.append(np.concatenate([(delta.T @ acts[l]).ravel(), delta.sum(axis=0)]) / n)
        if l > 0:
            delta = (delta @ layers[l][0]) * _sigma_prime(zs[l - 1], act)
    return values.mean(), np.concatenate(grads[::-1])


def hvp_exact(w: np.ndarray, v: np.ndarray, sizes, act: int, loss: int, X: np.ndarray, Y: np.ndarray):
    """Exact H v by the R-operator R{.} = d/dr (.)(w + r v) at r = 0 (Pearlmutter 1994, eqs. 4-7):
    forward R{z_l} = V_l a_{l-1} + W_l R{a_{l-1}} + v_b, R{a_l} = sigma'(z_l) R{z_l}; backward
    R{delta_L} = l''(f) R{f}, R{delta_{l-1}} = sigma''(z) R{z} (W^T delta) + sigma'(z) (V^T delta + W^T R{delta});
    R{grad W_l} = R{delta_l}^T a_{l-1} + delta_l^T R{a_{l-1}}."""
    layers, zs, acts = _forward(w, sizes, act, X)
    vlayers = unpack(v, sizes)
    racts, rzs = [np.zeros_like(X)], []
    for l, ((W, _), (V, vb)) in enumerate(zip(layers, vlayers)):
        rz = acts[l] @ V.T + racts[l] @ W.T + vb
        rzs.append(rz)
        racts.append(_sigma_prime(zs[l], act) * rz if l < len(layers) - 1 else rz)
    _, delta, curvature = _loss_terms(zs[-1], Y, loss)
    rdelta = curvature(rzs[-1])
    n = len(X)
    out = []
    for l in range(len(layers) - 1, -1, -1):
        out.append(np.concatenate([(rdelta.T @ acts[l] + delta.T @ racts[l]).ravel(), rdelta.sum(axis=0)]) / n)
        if l > 0:
            W, V = layers[l][0], vlayers[l][0]
            back = delta @ W
            rdelta = (_sigma_second(zs[l - 1], act) * rzs[l - 1] * back
                      + _sigma_prime(zs[l - 1], act) * (delta @ V + rdelta @ W))
            delta = back * _sigma_prime(zs[l - 1], act)
    return np.concatenate(out[::-1])


def train(w: np.ndarray, sizes, act: int, loss: int, X: np.ndarray, Y: np.ndarray, lrs: np.ndarray, batch: int,
          momentum: float, weight_decay: float, seed: int, member: int) -> np.ndarray:
    """The kernel's SGD for one member (same minibatches from the same stream); returns the final parameters."""
    w = np.array(w, dtype=float)
    v = np.zeros_like(w)
    rng = Stream(seed_states(seed, 1, member)[0])  # the member's xoshiro256++ stream, in Python ints
    perm = np.arange(len(X))
    for lr in lrs:
        for j in range(batch):
            r = j + rng.below(len(X) - j)
            perm[j], perm[r] = perm[r], perm[j]
        idx = perm[:batch]
        _, g = loss_grad(w, sizes, act, loss, X[idx], Y[idx])
        v = momentum * v + g + weight_decay * w
        w = w - lr * v
    return w
