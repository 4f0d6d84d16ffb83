"""Spherical p-spin couplings and the batched replica kernels: energy, Euclidean gradient, Hessian.

Convention (Auffinger, Ben Arous & Cerny 2013, eq. 1.1): for one p-body term
    H_p(s) = N^{-(p-1)/2} sum_{i_1..i_p} J_{i_1..i_p} s_{i_1} ... s_{i_p},   J iid N(0, 1) over ordered tuples,
on the sphere |s|^2 = N, so that E[H_p(s) H_p(s')] = N (s.s'/N)^p. Only the symmetric part of J enters H, so
the stored tensor is the symmetrization Jsym = (1/p!) sum_perm J_perm (same H, and gradient/Hessian become
single contractions). A mixture sum_p a_p H_p has covariance N xi(s.s'/N), xi(q) = sum_p a_p^2 q^p.

Storage: the dense symmetric tensor, used as its (N, N^{p-1}) unfolding, a BLAS matrix. For R replicas
stacked as the columns of S (N, R),
    g = p c Jsym_(N x N^{p-1}) @ (S^{(p-1)})           (Khatri-Rao power: column r is s_r (x) ... (x) s_r)
is one matrix product (2 N^p R flops) and H = s.g / p (Euler's identity for a p-homogeneous function).
Memory 8 N^p bytes: p = 3, N = 1000 is 8 GB (fits a 24 GiB machine; the packed N^3/6 layout would be 1.3 GB
but has no BLAS kernel). The tensor is drawn slab by slab and symmetrized in place, so generation never needs
a second copy; `coupling_bytes` gives the footprint before anything is allocated.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .._jit import jit


def coupling_bytes(n: int, ps) -> int:
    """Bytes of the dense float64 tensors of every term p in `ps`."""
    return int(sum(8 * n ** int(p) for p in ps))


def workspace_bytes(n: int, ps, replicas: int) -> int:
    """Bytes of the Khatri-Rao powers (N^{p-1}, R) built by one gradient call (largest term)."""
    return int(max(8 * n ** (int(p) - 1) * replicas for p in ps))


def draw_couplings(n: int, p: int, rng: np.random.Generator) -> np.ndarray:
    """The symmetrized tensor Jsym (shape (n,)*p) of iid N(0, 1) couplings J, drawn slab by slab from `rng`
    (reproducible for a given generator state) and symmetrized in place for p = 3."""
    J = np.empty((n,) * p)
    for i in range(n):
        J[i] = rng.standard_normal(J.shape[1:])
    if p == 3:
        symmetrize3_inplace(J)
        return J
    return symmetrize_numpy(J)


@jit
def symmetrize3_inplace(J):
    """Jsym_ijk = (1/6) sum over the 6 permutations of (i, j, k), in place (each orbit visited once)."""
    n = J.shape[0]
    for i in range(n):
        for j in range(i, n):
            for k in range(j, n):
                m = (J[i, j, k] + J[i, k, j] + J[j, i, k] + J[j, k, i] + J[k, i, j] + J[k, j, i]) / 6.0
                J[i, j, k] = m
                J[i, k, j] = m
                J[j, i, k] = m
                J[j, k, i] = m
                J[k, i, j] = m
                J[k, j, i] = m


def symmetrize_numpy(J: np.ndarray) -> np.ndarray:
    """(1/p!) sum_perm J_perm: the plain NumPy twin of `symmetrize3_inplace`, used for p != 3."""
    p = J.ndim
    out = np.zeros_like(J)
    for perm in itertools.permutations(range(p)):
        out += J.transpose(perm)
    return out / math.factorial(p)


def khatri_rao_power(S: np.ndarray, k: int) -> np.ndarray:
    """(N^k, R): column r is the k-fold tensor power s_r (x) ... (x) s_r (k = 0 gives ones (1, R))."""
    n, r = S.shape
    out = np.ones((1, r))
    for _ in range(k):
        out = (out[:, None, :] * S[None, :, :]).reshape(-1, r)
    return out


def term_gradient(J: np.ndarray, S: np.ndarray, batch: np.ndarray | None = None) -> np.ndarray:
    """Euclidean gradient of sum Jsym s...s (no prefactor) for every replica: p Jsym_(N x N^{p-1}) @ S^{(p-1)}.

    batch (site indices B): the first contracted index runs over B only and the sum is rescaled by N/|B|,
    p (N/|B|) Jsym[:, B, ...]_(N x |B| N^{p-2}) @ (S_B (x) S^{(p-2)}), an unbiased estimate of the gradient."""
    p, n = J.ndim, J.shape[0]
    if batch is None:
        return p * (J.reshape(n, -1) @ khatri_rao_power(S, p - 1))
    X = (S[batch][:, None, :] * khatri_rao_power(S, p - 2)[None, :, :]).reshape(-1, S.shape[1])
    return p * n / len(batch) * (J.reshape(n, n, -1)[:, batch, :].reshape(n, -1) @ X)


def gradient(couplings, weights, S: np.ndarray, batch: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(H, G): energies (R,) and Euclidean gradients (N, R) of H = sum_p w_p sum Jsym^(p) s...s, R replicas.

    One matrix product per term; H from Euler's identity s.grad H_p = p H_p (with `batch`: the estimates
    of `term_gradient`)."""
    H = np.zeros(S.shape[1])
    G = np.zeros_like(S)
    for J, w in zip(couplings, weights):
        g = w * term_gradient(J, S, batch)
        H += np.einsum("ir,ir->r", S, g) / J.ndim
        G += g
    return H, G


def hessian(couplings, weights, s: np.ndarray) -> np.ndarray:
    """Euclidean Hessian (N, N) at one point: sum_p w_p p (p-1) Jsym_(N^2 x N^{p-2}) @ s^{(p-2)}."""
    n = len(s)
    out = np.zeros((n, n))
    for J, w in zip(couplings, weights):
        p = J.ndim
        out += w * p * (p - 1) * (J.reshape(n * n, -1) @ khatri_rao_power(s[:, None], p - 2)).reshape(n, n)
    return out


def gradient_tensordot(couplings, weights, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Plain NumPy twin of `gradient`: for each replica, contract the tensor p - 1 times with s (tensordot)."""
    n, r = S.shape
    H, G = np.zeros(r), np.zeros((n, r))
    for col in range(r):
        s = S[:, col]
        for J, w in zip(couplings, weights):
            t = J
            for _ in range(J.ndim - 1):
                t = np.tensordot(t, s, axes=([t.ndim - 1], [0]))
            G[:, col] += w * J.ndim * t
            H[col] += w * float(t @ s)
    return H, G


def sphere_laplacian(couplings, weights, S: np.ndarray) -> np.ndarray:
    """Laplace-Beltrami operator of H on the sphere |s|^2 = N for every replica (R,): the trace of the
    Riemannian Hessian (Absil, Mahony & Sepulchre 2008, eq. 5.35),
        Delta_S H = tr nabla^2 H - ((N - 1)/N) s.nabla H - s^T nabla^2 H s / N,
    with, for each p-homogeneous term, tr nabla^2 H_p = w p (p-1) sum_i Jsym_(i i ...) s^(p-2) (one product
    with the diagonal slab of the unfolding) and s^T nabla^2 H_p s = (p - 1) s.nabla H_p (Euler)."""
    n = S.shape[0]
    out = np.zeros(S.shape[1])
    for J, w in zip(couplings, weights):
        p = J.ndim
        radial = np.einsum("ir,ir->r", S, w * term_gradient(J, S))
        diagonal = J.reshape(n * n, -1)[::n + 1].sum(axis=0)
        trace = w * p * (p - 1) * (diagonal @ khatri_rao_power(S, p - 2))
        out += trace - (n - 1) / n * radial - (p - 1) / n * radial
    return out


def tangent(S: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Project V (N, R) on the tangent spaces of the sphere |s|^2 = N at the columns of S: V - (s.v/N) s."""
    n = S.shape[0]
    return V - S * (np.einsum("ir,ir->r", S, V) / n)


def to_sphere(S: np.ndarray) -> np.ndarray:
    """Rescale every column to |s|^2 = N (done after each step so the constraint holds to round-off)."""
    return S * np.sqrt(S.shape[0] / np.einsum("ir,ir->r", S, S))


def tangent_basis(s: np.ndarray) -> np.ndarray:
    """(N, N-1) orthonormal basis of s^perp: columns 1..N-1 of the Householder reflection mapping e_0 to -+s/|s|."""
    u = s / np.linalg.norm(s)
    v = u.copy()
    v[0] += 1.0 if u[0] >= 0 else -1.0
    v /= np.linalg.norm(v)
    return np.eye(len(s))[:, 1:] - 2.0 * np.outer(v, v[1:])


def riemannian_hessian(euclidean_hessian: np.ndarray, s: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The Hessian on the sphere |s|^2 = N restricted to the tangent space at s, in the basis B of
    `tangent_basis` (N-1, N-1): B^T (nabla^2 H - (s.nabla H / N) I) B (Absil, Mahony & Sepulchre 2008,
    eq. 5.35 / Example 5.5.2, sphere of radius sqrt N)."""
    B = tangent_basis(s)
    radial = float(s @ g) / len(s)
    return B.T @ euclidean_hessian @ B - radial * np.eye(len(s) - 1)
