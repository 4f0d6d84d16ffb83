"""Fully connected networks trained by minibatch SGD, an ensemble at a time (Numba).

A network with layer sizes n_0, ..., n_L computes a_0 = x, z_l = W_l a_{l-1} + b_l, a_l = sigma(z_l) for
hidden layers and f = z_L (linear output). Its parameters live in ONE float64 vector per ensemble member:
layer l (0-based) stores W_l (n_{l+1} x n_l, row-major) at `woff[l]` followed by b_l; for a batch of B
examples, layer l's activations fill a work buffer from B * aoff[l], one row of n_l values per example
(batch-major). So one compiled kernel serves every depth, width and batch size. A minibatch goes forward
layer by layer as a small matrix product against W_l^T (a copy refreshed once per step) whose inner loop
runs over the output units, and backward example by example, accumulating the gradient once per minibatch
in example order; workspaces are allocated once per member, outside the step loop.

Activations (codes): 0 linear, 1 ReLU, 2 tanh. Losses (codes), per example, mean over examples:
  0 square         l = 1/2 |f - y|^2
  1 cross-entropy  l = logsumexp(f) - y.f (one-hot y); with one output the logistic loss
                   l = log(1 + e^f) - y f, y in {0, 1}
Gradients by backpropagation (Rumelhart, Hinton & Williams 1986). SGD with heavy-ball momentum and weight
decay, as PyTorch's SGD: v <- mu v + g + wd w, w <- w - lr_k v, the minibatch of B distinct examples drawn by
a partial Fisher-Yates shuffle from the member's own xoshiro256++ stream (`rng.py`), so every member's
trajectory depends only on (seed, member): bit-identical for any number of threads.

Hessian-vector products are central differences of full-batch gradients,
  H v ~ (g(w + h v) - g(w - h v)) / (2h),  h = HVP_STEP * max(1, |w|) / |v|,
with O(h^2) truncation error (exact for a quadratic loss up to rounding; see tests against the exact
R-operator of Pearlmutter 1994 in `networks.reference.py`); the sharpness (top Hessian eigenvalue) is found by
power iteration on them, all members at once.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import jit
from ..rng import next_below

ACTIVATIONS = {"linear": 0, "relu": 1, "tanh": 2}
LOSSES = {"square": 0, "cross-entropy": 1}
HVP_STEP = 1e-5


def layout(sizes) -> tuple[np.ndarray, np.ndarray]:
    """(woff, aoff) int64: woff[l] = start of W_l in the parameter vector (woff[L] = number of parameters),
    aoff[l] = start of layer l's activations in a work buffer (aoff[L + 1] = its length)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    woff = np.concatenate([[0], np.cumsum(sizes[1:] * (sizes[:-1] + 1))]).astype(np.int64)
    aoff = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return woff, aoff


@jit(inline="always")
def _sigma(z, act):
    if act == 1:
        return z if z > 0.0 else 0.0
    if act == 2:
        return np.tanh(z)
    return z


@jit(inline="always")
def _sigma_prime(a, act):
    """sigma'(z) written in terms of a = sigma(z)."""
    if act == 1:
        return 1.0 if a > 0.0 else 0.0
    if act == 2:
        return 1.0 - a * a
    return 1.0


@jit
def _transpose(w, woff, aoff, wt):
    """wt[woff[l]:] = W_l^T (n_l x n_{l+1}, row-major) for every layer, the forward pass's operand."""
    for l in range(len(woff) - 1):
        nin, nout, wo = aoff[l + 1] - aoff[l], aoff[l + 2] - aoff[l + 1], woff[l]
        for j in range(nout):
            for i in range(nin):
                wt[wo + i * nout + j] = w[wo + j * nin + i]


@jit(inline="always")
def _dot(u, v):
    """u.v with four partial sums: independent chains keep the FPU busy (no fastmath, so no vectorized sum)."""
    s0 = s1 = s2 = s3 = 0.0
    i = 0
    while i + 4 <= len(u):
        s0 += u[i] * v[i]
        s1 += u[i + 1] * v[i + 1]
        s2 += u[i + 2] * v[i + 2]
        s3 += u[i + 3] * v[i + 3]
        i += 4
    while i < len(u):
        s0 += u[i] * v[i]
        i += 1
    return (s0 + s1) + (s2 + s3)


@jit
def _forward(w, wt, woff, aoff, act, X, idx, nb, a):
    """Activations of the nb examples X[idx[:nb]] into a, batch-major: layer l's block starts at nb * aoff[l],
    row b holding example b's n_l values (layer 0 is the inputs). wt = `_transpose(w)`. Returns the start of
    the output block (nb x n_L). A layer with >= 4 outputs runs z_b += x_bi * (row i of W^T), a contiguous
    loop over the outputs that LLVM vectorizes; narrower ones (the output layer) take dot products."""
    n_layers = len(woff) - 1
    n0 = aoff[1]
    for b in range(nb):
        x = X[idx[b]]
        for i in range(n0):
            a[b * n0 + i] = x[i]
    for l in range(n_layers):
        nin, nout = aoff[l + 1] - aoff[l], aoff[l + 2] - aoff[l + 1]
        wo, bo, ai, ao = woff[l], woff[l] + nin * nout, nb * aoff[l], nb * aoff[l + 1]
        bias = w[bo:bo + nout]
        for b in range(nb):
            x = a[ai + b * nin:ai + (b + 1) * nin]  # views (not offset indices) let LLVM vectorize the loops
            z = a[ao + b * nout:ao + (b + 1) * nout]
            if nout >= 4:
                for j in range(nout):
                    z[j] = bias[j]
                for i in range(nin):
                    xi = x[i]
                    col = wt[wo + i * nout:wo + (i + 1) * nout]
                    for j in range(nout):
                        z[j] += xi * col[j]
            else:
                for j in range(nout):
                    z[j] = bias[j] + _dot(w[wo + j * nin:wo + (j + 1) * nin], x)
            if l < n_layers - 1:
                for j in range(nout):
                    z[j] = _sigma(z[j], act)
    return nb * aoff[n_layers]


@jit(inline="always")
def _loss_delta(f, y, loss, df):
    """Loss of one example with outputs f and target y; writes dl/df into df."""
    k_out = len(f)
    value = 0.0
    if loss == 0:
        for k in range(k_out):
            r = f[k] - y[k]
            df[k] = r
            value += 0.5 * r * r
    elif k_out == 1:
        value = max(f[0], 0.0) + np.log1p(np.exp(-abs(f[0]))) - y[0] * f[0]
        df[0] = 1.0 / (1.0 + np.exp(-f[0])) - y[0]
    else:
        top = f[0]
        for k in range(1, k_out):
            top = max(top, f[k])
        total = 0.0
        for k in range(k_out):
            total += np.exp(f[k] - top)
        lse = top + np.log(total)
        for k in range(k_out):
            value -= y[k] * f[k]
            df[k] = np.exp(f[k] - lse) - y[k]
        value += lse
    return value


@jit
def _batch(w, wt, woff, aoff, act, loss, X, Y, idx, nb, a, d, grad, scale):
    """Summed loss of the nb examples X[idx[:nb]]; adds scale * the sum of their gradients into grad
    (backpropagation through the batch-major buffers a, d of `_forward`, example after example per layer,
    so every gradient entry is accumulated in example order)."""
    n_layers = len(woff) - 1
    fo = _forward(w, wt, woff, aoff, act, X, idx, nb, a)
    k_out = aoff[n_layers + 1] - aoff[n_layers]
    value = 0.0
    for b in range(nb):
        value += _loss_delta(a[fo + b * k_out:fo + (b + 1) * k_out], Y[idx[b]], loss,
                             d[fo + b * k_out:fo + (b + 1) * k_out])
    for l in range(n_layers - 1, -1, -1):
        nin, nout = aoff[l + 1] - aoff[l], aoff[l + 2] - aoff[l + 1]
        wo, bo, ai, ao = woff[l], woff[l] + nin * nout, nb * aoff[l], nb * aoff[l + 1]
        back = l > 0  # delta of the layer below: d_{l-1} = sigma'(z_{l-1}) * (W_l^T d_l), in one pass over W_l
        for b in range(nb):
            a_in = a[ai + b * nin:ai + (b + 1) * nin]
            d_in = d[ai + b * nin:ai + (b + 1) * nin]
            if back:
                d_in[:] = 0.0
            for j in range(nout):
                dj = d[ao + b * nout + j]
                g = dj * scale
                grad[bo + j] += g
                g_row = grad[wo + j * nin:wo + (j + 1) * nin]
                if back:
                    w_row = w[wo + j * nin:wo + (j + 1) * nin]
                    for i in range(nin):
                        g_row[i] += g * a_in[i]
                        d_in[i] += w_row[i] * dj
                else:
                    for i in range(nin):
                        g_row[i] += g * a_in[i]
            if back:
                for i in range(nin):
                    d_in[i] *= _sigma_prime(a_in[i], act)
    return value


@jit
def _train_member(w, v, st, pm, woff, aoff, act, loss, X, Y, lrs, batch, momentum, weight_decay):
    """SGD steps of one member in place; returns (index of the first non-finite step or -1, last batch loss).
    The minibatch is pm[:batch] after the partial shuffle; workspaces are allocated once, outside the steps."""
    s = (st[0], st[1], st[2], st[3])
    n = X.shape[0]
    a = np.empty(batch * aoff[-1])
    d = np.empty(batch * aoff[-1])
    g = np.empty(len(w))
    wt = np.empty(len(w))
    last, bad = np.nan, -1
    for k in range(len(lrs)):
        for j in range(batch):
            r, s = next_below(s, n - j)
            r += j
            pm[j], pm[r] = pm[r], pm[j]
        _transpose(w, woff, aoff, wt)
        g[:] = 0.0
        total = _batch(w, wt, woff, aoff, act, loss, X, Y, pm, batch, a, d, g, 1.0 / batch)
        last = total / batch
        lr = lrs[k]
        finite = np.isfinite(total)
        for i in range(len(w)):
            v[i] = momentum * v[i] + g[i] + weight_decay * w[i]
            w[i] -= lr * v[i]
            finite &= np.isfinite(w[i])
        if not finite:
            bad = k
            break
    st[0], st[1], st[2], st[3] = s
    return bad, last


@jit(parallel=True)
def train_steps(params, velocity, states, perm, woff, aoff, act, loss, X, Y, lrs, batch, momentum,
                weight_decay, first_step, diverged_at, batch_loss):
    """len(lrs) SGD steps of every member not yet diverged (in place); lrs[k] is the rate of step first_step+k.

    perm (members, N) int64 holds a permutation of the examples per member (the Fisher-Yates state);
    diverged_at[m] is set to the first step whose loss or update is non-finite, and the member stops there;
    batch_loss[m] gets the minibatch loss of its last step."""
    for m in prange(params.shape[0]):
        if diverged_at[m] < 0:
            bad, batch_loss[m] = _train_member(params[m], velocity[m], states[m], perm[m], woff, aoff, act, loss,
                                               X, Y, lrs, batch, momentum, weight_decay)
            if bad >= 0:
                diverged_at[m] = first_step + bad


CHUNK = 32  # examples per batched pass in the full-batch operations


@jit
def _full_batch_member(w, woff, aoff, act, loss, X, Y, want_sq, g):
    """Mean loss of one member over all examples, its gradient into g, and the mean squared per-example
    gradient norm (1/N) sum_i |g_i|^2 if want_sq (so tr C = that - |g|^2), else 0."""
    n, n_params = X.shape[0], len(w)
    chunk = 1 if want_sq else CHUNK
    a = np.empty(chunk * aoff[-1])
    d = np.empty(chunk * aoff[-1])
    wt = np.empty(n_params)
    _transpose(w, woff, aoff, wt)
    idx = np.arange(n)
    g[:] = 0.0
    gi = np.zeros(n_params if want_sq else 0)
    total = 0.0
    sq = 0.0
    for e in range(0, n, chunk):
        nb = min(chunk, n - e)
        if want_sq:
            gi[:] = 0.0
            total += _batch(w, wt, woff, aoff, act, loss, X, Y, idx[e:], nb, a, d, gi, 1.0)
            for i in range(n_params):
                g[i] += gi[i] / n
                sq += gi[i] * gi[i]
        else:
            total += _batch(w, wt, woff, aoff, act, loss, X, Y, idx[e:], nb, a, d, g, 1.0 / n)
    return total / n, sq / n


@jit(parallel=True)
def full_batch(params, woff, aoff, act, loss, X, Y, want_sq, losses, grads, sq_norms):
    """`_full_batch_member` for every member: losses (M,), grads (M, P), sq_norms (M,)."""
    for m in prange(params.shape[0]):
        losses[m], sq_norms[m] = _full_batch_member(params[m], woff, aoff, act, loss, X, Y, want_sq, grads[m])


@jit
def predict(params, woff, aoff, act, X, out):
    """Network outputs out[m, e, :] = f_m(X[e]) for every member and example (serial: it is cheap)."""
    n, k_out = X.shape[0], out.shape[2]
    a = np.empty(CHUNK * aoff[-1])
    wt = np.empty(params.shape[1])
    idx = np.arange(n)
    for m in range(params.shape[0]):
        _transpose(params[m], woff, aoff, wt)
        for e in range(0, n, CHUNK):
            nb = min(CHUNK, n - e)
            fo = _forward(params[m], wt, woff, aoff, act, X, idx[e:], nb, a)
            for b in range(nb):
                for k in range(k_out):
                    out[m, e + b, k] = a[fo + b * k_out + k]


class Net:
    """A network family bound to its data: sizes, codes and layout, with the full-batch operations every member
    of an ensemble (params (members, P)) needs. All arrays float64, all codes int64."""

    def __init__(self, sizes, act: int, loss: int, X: np.ndarray, Y: np.ndarray) -> None:
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.act, self.loss = np.int64(act), np.int64(loss)
        self.woff, self.aoff = layout(self.sizes)
        self.n_params = int(self.woff[-1])
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.Y = np.ascontiguousarray(Y, dtype=np.float64)

    def loss_grad(self, params: np.ndarray, want_sq: bool = False):
        """(losses (M,), gradients (M, P), mean squared per-example gradient norms (M,))."""
        params = np.ascontiguousarray(params, dtype=np.float64)
        m = params.shape[0]
        losses, grads, sq = np.empty(m), np.empty((m, self.n_params)), np.empty(m)
        full_batch(params, self.woff, self.aoff, self.act, self.loss, self.X, self.Y, bool(want_sq), losses, grads,
                   sq)
        return losses, grads, sq

    def outputs(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        out = np.empty((params.shape[0], len(X), int(self.sizes[-1])))
        predict(np.ascontiguousarray(params, dtype=np.float64), self.woff, self.aoff, self.act,
                np.ascontiguousarray(X, dtype=np.float64), out)
        return out

    def hvp(self, params: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Hessian-vector products H_m v_m of every member by central differences of gradients (module doc)."""
        norm_v = np.linalg.norm(v, axis=1, keepdims=True)
        h = HVP_STEP * np.maximum(1.0, np.linalg.norm(params, axis=1, keepdims=True)) / np.maximum(norm_v, 1e-300)
        _, g_plus, _ = self.loss_grad(params + h * v)
        _, g_minus, _ = self.loss_grad(params - h * v)
        return (g_plus - g_minus) / (2 * h)

    def sharpness(self, params: np.ndarray, seed: int, iters: int = 100, tol: float = 1e-6) -> np.ndarray:
        """Largest-magnitude Hessian eigenvalue of every member (the top one at a minimum) by power iteration:
        v <- Hv/|Hv|, lambda = v.Hv, from a normal start drawn with default_rng(seed); stops when every
        member's lambda changes by less than tol relative, or after iters iterations."""
        v = np.random.default_rng(seed).standard_normal(params.shape)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        lam = np.full(len(params), np.inf)
        for _ in range(iters):
            hv = self.hvp(params, v)
            new = np.einsum("ij,ij->i", v, hv)
            v = hv / np.maximum(np.linalg.norm(hv, axis=1, keepdims=True), 1e-300)
            done = np.all(np.abs(new - lam) <= tol * np.abs(new))
            lam = new
            if done:
                break
        return lam


def train(net: Net, params: np.ndarray, velocity: np.ndarray, states: np.ndarray, perm: np.ndarray,
          lrs: np.ndarray, batch: int, momentum: float, weight_decay: float, first_step: int,
          diverged_at: np.ndarray) -> np.ndarray:
    """Advance every member len(lrs) steps in place (see `train_steps`); returns the last minibatch losses."""
    batch_loss = np.full(params.shape[0], np.nan)
    train_steps(params, velocity, states, perm, net.woff, net.aoff, net.act, net.loss, net.X, net.Y,
                np.ascontiguousarray(lrs, dtype=np.float64), np.int64(batch), float(momentum), float(weight_decay),
                np.int64(first_step), diverged_at, batch_loss)
    return batch_loss
