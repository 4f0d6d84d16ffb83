"""Right-hand sides and discrete training for deep linear networks x -> W_N ... W_1 x.

Data X (n, d_in), Y (n, d_out); factors W_1 (h_1, d_in), ..., W_N (d_out, h_{N-1}) of any widths; end-to-end
W_e = W_N ... W_1. Loss (l_p, p >= 2):  L(W_e) = (1 / (p n)) sum_i sum_k |(W_e x_i - y_i)_k|^p, so
grad L(W_e) = (1/n) (R o |R|^(p-2))^T X with R = X W_e^T - Y; p = 2 is half the mean squared error.
Weight decay adds (lambda/2) sum_j |W_j|_F^2 to the factor objective.

Factor gradient flow:  dW_j/dt = -(W_N..W_{j+1})^T grad L(W_e) (W_{j-1}..W_1)^T - lambda W_j.
End-to-end ODE (Arora, Cohen & Hazan 2018, "On the optimization of deep networks: implicit acceleration by
overparameterization", Theorem 1; exact under balanced initialization W_{j+1}^T W_{j+1} = W_j W_j^T):
    dW_e/dt = -lambda N W_e - sum_{j=1}^N (W_e W_e^T)^{(j-1)/N} grad L(W_e) (W_e^T W_e)^{(N-j)/N}.
With W_e = U diag(s) V^T (full SVD, s padded with zeros) the sum is U [(U^T G V) o K] V^T with
K_kl = sum_j s_k^{2(j-1)/N} s_l^{2(N-j)/N} (0^0 = 1: the identity factors at j = 1 and j = N), one SVD per call.
Single output (d_out = 1, w = W_e^T), Arora et al. 2018 Claim 2:
    dw/dt = -lambda N w - |w|^{2-2/N} (g + (N-1) (u u^T) g),  u = w / |w|,  g = grad L(w).
"""
from __future__ import annotations

import numpy as np


def end_to_end(Ws: list[np.ndarray]) -> np.ndarray:
    """W_N ... W_1."""
    out = Ws[0]
    for W in Ws[1:]:
        out = W @ out
    return out


def balancedness_norm(Ws: list[np.ndarray]) -> float:
    """max_j |W_{j+1}^T W_{j+1} - W_j W_j^T|_F (0 for depth 1): conserved by the flow without weight decay."""
    return max((float(np.linalg.norm(Ws[j + 1].T @ Ws[j + 1] - Ws[j] @ Ws[j].T)) for j in range(len(Ws) - 1)),
               default=0.0)


def lp_loss_grad(We: np.ndarray, X: np.ndarray, Y: np.ndarray, p: float) -> tuple[float, np.ndarray]:
    """L(W_e) = (1/(p n)) sum |X W_e^T - Y|^p and its gradient (1/n) (R o |R|^{p-2})^T X."""
    R = X @ We.T - Y
    n = len(X)
    if p == 2:
        return float(np.sum(R * R)) / (2 * n), R.T @ X / n
    A = np.abs(R)
    Rp = R * A ** (p - 2)
    return float(np.sum(Rp * R)) / (p * n), Rp.T @ X / n


def factor_gradients(Ws: list[np.ndarray], X: np.ndarray, Y: np.ndarray, p: float,
                     weight_decay: float = 0.0) -> tuple[float, list[np.ndarray]]:
    """Loss (with the weight-decay term) and dLoss/dW_j = (W_N..W_{j+1})^T G (W_{j-1}..W_1)^T + lambda W_j."""
    N = len(Ws)
    right = [None] * N          # right[j] = W_{j-1} ... W_1 (None = identity)
    for j in range(1, N):
        right[j] = Ws[j - 1] if right[j - 1] is None else Ws[j - 1] @ right[j - 1]
    We = Ws[-1] if right[-1] is None else Ws[-1] @ right[-1]
    loss, G = lp_loss_grad(We, X, Y, p)
    grads = [None] * N
    left = G                    # W_N..W_{j+1})^T G, built from the top
    for j in range(N - 1, -1, -1):
        grads[j] = left if right[j] is None else left @ right[j].T
        if j:
            left = Ws[j].T @ left
    if weight_decay:
        loss += 0.5 * weight_decay * sum(float(np.sum(W * W)) for W in Ws)
        grads = [g + weight_decay * W for g, W in zip(grads, Ws)]
    return loss, grads


class FactorFlow:
    """dW_j/dt = -dLoss/dW_j on the flattened factors; `rhs(t, y)` for an ODE integrator."""

    def __init__(self, shapes: list[tuple[int, int]], X: np.ndarray, Y: np.ndarray, p: float,
                 weight_decay: float = 0.0) -> None:
        self.shapes, self.X, self.Y, self.p, self.weight_decay = list(shapes), X, Y, float(p), float(weight_decay)
        sizes = [a * b for a, b in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])

    def pack(self, Ws: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(W, np.float64).ravel() for W in Ws])

    def unpack(self, y: np.ndarray) -> list[np.ndarray]:
        return [y[a:b].reshape(s) for a, b, s in zip(self.offsets[:-1], self.offsets[1:], self.shapes)]

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        _, grads = factor_gradients(self.unpack(y), self.X, self.Y, self.p, self.weight_decay)
        return -np.concatenate([g.ravel() for g in grads])


def end_to_end_velocity(We: np.ndarray, G: np.ndarray, depth: int) -> np.ndarray:
    """sum_{j=1}^N (W_e W_e^T)^{(j-1)/N} G (W_e^T W_e)^{(N-j)/N}, fractional powers from the full SVD."""
    U, s, Vt = np.linalg.svd(We)
    d_out, d_in = We.shape
    su = np.zeros(d_out)
    sv = np.zeros(d_in)
    su[:len(s)] = s
    sv[:len(s)] = s
    j = np.arange(1, depth + 1)
    left = su[:, None] ** (2.0 * (j - 1) / depth)           # (d_out, N); 0.0 ** 0.0 == 1
    right = sv[:, None] ** (2.0 * (depth - j) / depth)      # (d_in, N)
    K = left @ right.T
    return U @ ((U.T @ G @ Vt.T) * K) @ Vt


class EndToEndFlow:
    """Arora, Cohen & Hazan 2018 Theorem 1 on the flattened W_e (d_out, d_in) (Claim 2's form when d_out = 1)."""

    def __init__(self, depth: int, X: np.ndarray, Y: np.ndarray, p: float, weight_decay: float = 0.0) -> None:
        self.depth, self.X, self.Y, self.p, self.weight_decay = int(depth), X, Y, float(p), float(weight_decay)
        self.shape = (Y.shape[1], X.shape[1])

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        We = y.reshape(self.shape)
        _, G = lp_loss_grad(We, self.X, self.Y, self.p)
        if self.shape[0] == 1:   # single output: Claim 2's form, no SVD (tested equal to the general one)
            v = single_output_velocity(We[0], G[0], self.depth)[None, :]
        else:
            v = end_to_end_velocity(We, G, self.depth)
        if self.weight_decay:
            v = v + self.weight_decay * self.depth * We
        return -v.ravel()


def single_output_velocity(w: np.ndarray, g: np.ndarray, depth: int) -> np.ndarray:
    """|w|^{2-2/N} (g + (N-1) u u^T g), u = w/|w| (Arora et al. 2018 Claim 2); 0 at w = 0 for N >= 2."""
    norm = float(np.linalg.norm(w))
    if norm == 0.0:
        return g.copy() if depth == 1 else np.zeros_like(g)
    u = w / norm
    return norm ** (2.0 - 2.0 / depth) * (g + (depth - 1) * u * float(u @ g))


def factor_gd_steps(Ws: list[np.ndarray], X: np.ndarray, Y: np.ndarray, p: float, lr: float, k: int, *,
                    weight_decay: float = 0.0, batch: int | None = None, rng=None) -> int:
    """k steps of discrete GD (rng None) or minibatch SGD (batch examples drawn without replacement from rng
    each step) on the factors, in place: W_j <- W_j - lr dLoss_B/dW_j. Returns the number of steps after which
    a weight first became non-finite (then the factors are left as they are), or -1."""
    n = len(X)
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(k):
            if rng is None:
                _, grads = factor_gradients(Ws, X, Y, p, weight_decay)
            else:
                idx = rng.choice(n, size=batch, replace=False)
                _, grads = factor_gradients(Ws, X[idx], Y[idx], p, weight_decay)
            for W, g in zip(Ws, grads):
                W -= lr * g
            if not all(np.isfinite(W.sum()) for W in Ws):
                return i + 1
    return -1
