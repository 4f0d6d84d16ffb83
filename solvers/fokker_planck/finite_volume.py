"""Finite-volume Fokker–Planck solver on rectangular 1-D, 2-D and 3-D grids (sparse SciPy, no Numba).

The density p(x, t) of SGD's cloud obeys (Itô form; Chaudhari & Soatto 2018, eq. 6)

    dp/dt = -div J,    J_k = b_k p - T sum_l d_l (D_kl p),

with drift b (b = -grad f for a loss f), temperature T and diffusion matrix D (constant or state-dependent;
for constant D this is div(p grad f) + T div(D grad p)). The cells are the unknowns (cell averages, C order).

Fluxes across the faces normal to axis k:
  * the drift and the diagonal diffusion T d_k (D_kk p) use the Scharfetter–Gummel exponential fitting
    (Scharfetter & Gummel 1969; Chang & Cooper 1970) on q = D_kk p:
        F = (T / h) [B(-Pe) q_i - B(Pe) q_{i+1}],   Pe = b_face h / (T D_kk,face),   B(z) = z / (e^z - 1),
    exact for a constant drift over the face. With b_face = -(f_{i+1} - f_i) / h and D = I the flux vanishes
    on p_i ~ exp(-f_i / T): the discrete steady state is the grid-sampled Gibbs density to round-off. The
    off-diagonals of this part are >= 0 and its columns sum to 0 (a Markov generator): mass is conserved,
    and implicit Euler keeps p >= 0.
  * the off-diagonal diffusion -T d_l (D_kl p) (l != k) is the average over the two cells of the face of the
    central difference along l (one-sided at non-periodic walls), second order; it keeps mass conservation
    but not the sign guarantee (the matrix is no longer an M-matrix).
Boundaries per axis: "reflecting" (zero total flux), "periodic", or "absorbing" (p = 0 on the wall, the
Scharfetter–Gummel flux over the half cell between the last centre and the wall; tangential derivatives,
hence the cross fluxes, vanish there).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

BOUNDARIES = ("reflecting", "absorbing", "periodic")
SCHEMES = ("implicit-euler", "bdf2", "explicit")
# fill-reducing ordering for SuperLU: minimum degree on A^T + A suits grid stencils (on a 128^2 grid it halves
# the factor's size and the time of a solve compared with the default COLAMD)
_LU = dict(permc_spec="MMD_AT_PLUS_A")


def _lu(M):
    return spla.splu(sp.csc_matrix(M), **_LU)


def bernoulli(z: np.ndarray) -> np.ndarray:
    """B(z) = z / (e^z - 1), with B(0) = 1, accurate for every z (expm1 near 0, no overflow for large |z|)."""
    z = np.asarray(z, dtype=float)
    out = np.ones_like(z)
    small = np.abs(z) < 1e-10
    big = z > 700.0                      # z / (e^z - 1) underflows to 0 there
    mid = ~(small | big)
    out[mid] = z[mid] / np.expm1(z[mid])
    out[small] = 1.0 - 0.5 * z[small]
    out[big] = 0.0
    return out


@dataclass(frozen=True)
class Grid:
    """Cells of a box [lo, hi] (one entry per axis), `shape` cells, `boundary` one of BOUNDARIES per axis."""
    lo: tuple
    hi: tuple
    shape: tuple
    boundary: tuple

    def __post_init__(self):
        d = len(self.shape)
        if not 1 <= d <= 3 or len(self.lo) != d or len(self.hi) != d or len(self.boundary) != d:
            raise ValueError(f"grid needs 1 to 3 axes with lo, hi, shape and boundary for each, got "
                             f"lo={self.lo}, hi={self.hi}, shape={self.shape}, boundary={self.boundary}")
        for k in range(d):
            if not (np.isfinite(self.lo[k]) and np.isfinite(self.hi[k]) and self.hi[k] > self.lo[k]):
                raise ValueError(f"grid axis {k}: need finite lo < hi, got [{self.lo[k]}, {self.hi[k]}]")
            if int(self.shape[k]) < 3:
                raise ValueError(f"grid axis {k}: need at least 3 cells, got {self.shape[k]}")
            if self.boundary[k] not in BOUNDARIES:
                raise ValueError(f"grid axis {k}: unknown boundary {self.boundary[k]!r} "
                                 f"(valid: {', '.join(BOUNDARIES)})")

    @property
    def dim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def spacing(self) -> np.ndarray:
        return (np.asarray(self.hi, float) - np.asarray(self.lo, float)) / np.asarray(self.shape)

    @property
    def volume(self) -> float:
        """Volume of one cell."""
        return float(np.prod(self.spacing))

    def centres(self, k: int) -> np.ndarray:
        return self.lo[k] + (np.arange(self.shape[k]) + 0.5) * self.spacing[k]

    def faces(self, k: int) -> np.ndarray:
        """Face positions along axis k: N + 1 of them (walls included), or N for a periodic axis (face i
        lies between cell i and cell i + 1 mod N)."""
        n = self.shape[k] + (0 if self.boundary[k] == "periodic" else 1)
        return self.lo[k] + np.arange(n) * self.spacing[k] + (self.spacing[k] if self.boundary[k] == "periodic" else 0.0)

    def mesh(self) -> list[np.ndarray]:
        """Cell-centre coordinates, one array of `shape` per axis."""
        return np.meshgrid(*(self.centres(k) for k in range(self.dim)), indexing="ij")

    def face_mesh(self, k: int) -> list[np.ndarray]:
        """Coordinates of the faces normal to axis k, one array per axis (axis k has the face count)."""
        axes = [self.faces(j) if j == k else self.centres(j) for j in range(self.dim)]
        return np.meshgrid(*axes, indexing="ij")


def _cell_derivative(grid: Grid, l: int) -> sp.csr_matrix:
    """d/dx_l at the cell centres: central differences, one-sided at non-periodic walls."""
    n, h = grid.shape[l], grid.spacing[l]
    if grid.boundary[l] == "periodic":
        d1 = sp.diags([-np.ones(n - 1), np.ones(n - 1), [1.0], [-1.0]], [-1, 1, -(n - 1), n - 1]) / (2 * h)
    else:
        lower, upper, main = -np.ones(n - 1), np.ones(n - 1), np.zeros(n)
        main[0], main[-1] = -2.0, 2.0
        upper[0], lower[-1] = 2.0, -2.0
        d1 = sp.diags([lower, main, upper], [-1, 0, 1]) / (2 * h)
    out = sp.identity(1)
    for j, m in enumerate(grid.shape):
        out = sp.kron(out, d1 if j == l else sp.identity(m))
    return sp.csr_matrix(out)


def _face_cells(grid: Grid, k: int):
    """For the faces normal to axis k (flat, C order of `grid.face_mesh(k)`): the flat indices of the cell
    on the low side and on the high side; -1 where the face is a wall."""
    n = grid.shape[k]
    fshape = grid.face_mesh(k)[0].shape
    multi = np.indices(fshape)
    j = multi[k]
    if grid.boundary[k] == "periodic":
        lo_j, hi_j = j, (j + 1) % n
    else:
        lo_j, hi_j = j - 1, j
    out = []
    for jj in (lo_j, hi_j):
        m = multi.copy()
        m[k] = np.clip(jj, 0, n - 1)
        flat = np.ravel_multi_index(tuple(m), grid.shape)
        out.append(np.where((jj >= 0) & (jj < n), flat, -1).ravel())
    return out[0], out[1]


def assemble(grid: Grid, face_drift: list, temperature: float, diffusion_cells: np.ndarray,
             diffusion_faces: list) -> tuple[sp.csr_matrix, list[sp.csr_matrix]]:
    """The generator A of dp/dt = A p (p the flat vector of cell densities, C order) and, per axis k, the
    face-flux operator F_k (J through each face normal to k = F_k p, in the order of `grid.face_mesh(k)`),
    with A = -sum_k div_k F_k.

    face_drift[k]: the drift b_k at the faces normal to axis k (shape of `grid.face_mesh(k)[0]`);
    diffusion_cells: D at the cell centres, shape (d, d, *grid.shape) (symmetric, D_kk > 0);
    diffusion_faces[k]: D_kk at the faces normal to axis k.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive for the Fokker–Planck solver, got {temperature}")
    d, shape, n = grid.dim, tuple(grid.shape), grid.size
    dcell = np.asarray(diffusion_cells, dtype=float)
    if dcell.shape != (d, d, *shape):
        raise ValueError(f"diffusion at the cells must have shape {(d, d, *shape)}, got {dcell.shape}")
    if not np.all(np.isfinite(dcell)) or np.any(np.einsum("kk...->k...", dcell) <= 0):
        raise ValueError("the diffusion matrix must be finite with a positive diagonal D_kk > 0 everywhere")
    T, h = float(temperature), grid.spacing
    A = sp.csr_matrix((n, n))
    fluxes = []
    for k in range(d):
        fshape = grid.face_mesh(k)[0].shape
        b = np.asarray(face_drift[k], dtype=float).ravel()
        dface = np.asarray(diffusion_faces[k], dtype=float).ravel()
        if b.size != int(np.prod(fshape)) or dface.size != b.size:
            raise ValueError(f"drift and diffusion at the faces of axis {k} must have shape {fshape}")
        if not (np.all(np.isfinite(b)) and np.all(dface > 0)):
            raise ValueError(f"drift at the faces of axis {k} must be finite and D_kk > 0 there")
        dkk = dcell[k, k].ravel()
        low, high = _face_cells(grid, k)
        nf = b.size
        inner = np.flatnonzero((low >= 0) & (high >= 0))
        pe = b[inner] * h[k] / (T * dface[inner])
        rows = [inner, inner]
        cols = [low[inner], high[inner]]
        vals = [T / h[k] * bernoulli(-pe) * dkk[low[inner]], -T / h[k] * bernoulli(pe) * dkk[high[inner]]]
        if grid.boundary[k] == "absorbing":   # q = 0 on the wall, Scharfetter–Gummel over the half cell
            for wall, cell, sign in ((np.flatnonzero(low < 0), high, 1.0), (np.flatnonzero(high < 0), low, -1.0)):
                pe_w = b[wall] * (h[k] / 2) / (T * dface[wall])
                rows.append(wall), cols.append(cell[wall])
                vals.append(sign * -2 * T / h[k] * bernoulli(sign * pe_w) * dkk[cell[wall]])
        F = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(nf, n))
        for l in range(d):   # cross diffusion: J_k -= T avg_face(d_l (D_kl p)) on inner faces
            if l == k or not np.any(dcell[k, l]):
                continue
            deriv = _cell_derivative(grid, l) @ sp.diags(dcell[k, l].ravel())
            avg = sp.csr_matrix((np.full(2 * inner.size, -T / 2), (np.concatenate([inner, inner]),
                                 np.concatenate([low[inner], high[inner]]))), shape=(nf, n))
            F = F + avg @ deriv
        F = sp.csr_matrix(F)
        # div_k: dp/dt = -(J_high_face - J_low_face) / h
        has_low, has_high = np.flatnonzero(low >= 0), np.flatnonzero(high >= 0)
        div = sp.csr_matrix((np.concatenate([-np.ones(has_low.size), np.ones(has_high.size)]) / h[k],
                             (np.concatenate([low[has_low], high[has_high]]), np.concatenate([has_low, has_high]))),
                            shape=(n, nf))
        A = A + div @ F
        fluxes.append(F)
    A = sp.csr_matrix(A)
    A.sum_duplicates()
    return A, fluxes


def steady_state(A: sp.csr_matrix, volume: float, weights: np.ndarray | None = None) -> np.ndarray:
    """The null vector of A normalized to sum(p) volume = 1, in one sparse LU solve: one equation of A p = 0
    is redundant (the columns of A sum to zero) and is replaced by pinning the unknown of the cell with the
    largest weight to 1 (a unit row keeps the LU factors sparse; if that cell turns out far below the peak,
    the peak is pinned in a second solve); the result is then normalized.

    With `weights` w > 0 (e.g. the Gibbs weights exp(-f/T)) the unknown is u = p / w, solved from the
    similar matrix diag(1/w) A diag(w) (the transpose of A itself under detailed balance): round-off stays
    relative to each cell's own scale, so tails far below the maximum keep their sign and relative accuracy
    (without it their absolute error is ~1e-16 max p). Weights are floored at 1e-250 max w."""
    n = A.shape[0]
    if np.max(np.abs(np.asarray(A.sum(axis=0)).ravel())) > 1e-8 * max(1.0, abs(A.diagonal()).max()):
        raise ValueError("no steady state: mass leaves the grid (absorbing boundary)")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float).ravel()
    w = np.maximum(w, 1e-250 * w.max())
    similar = sp.diags(1.0 / w) @ A @ sp.diags(w)

    def pinned(row: int) -> np.ndarray:
        keep = np.ones(n)
        keep[row] = 0.0
        M = sp.diags(keep) @ similar + sp.csr_matrix(([1.0], ([row], [row])), shape=(n, n))
        rhs = np.zeros(n)
        rhs[row] = 1.0
        return w * _lu(M).solve(rhs)

    p = pinned(int(np.argmax(w)))
    if np.abs(p).max() > 1e3:   # the pinned cell is far below the peak: pin the peak instead
        p = pinned(int(np.argmax(np.abs(p))))
    return p / (np.sum(p) * volume)


def mean_first_passage(A: sp.csr_matrix, target: np.ndarray) -> np.ndarray:
    """Mean first-passage time to the cells in `target` (boolean, flat) from every cell: the backward
    equation A^T tau = -1 off the target, tau = 0 on it (A^T is the generator of the cell Markov chain;
    Gardiner 2009, section 5.5). Infinite where the target cannot be reached."""
    target = np.asarray(target, dtype=bool).ravel()
    if target.size != A.shape[0] or not target.any():
        raise ValueError("the target set must be a non-empty boolean mask over the cells")
    free = ~target
    tau = np.zeros(A.shape[0])
    if free.any():
        B = sp.csc_matrix(A.T.tocsr()[free][:, free])
        tau[free] = _lu(B).solve(-np.ones(int(free.sum())))
    return tau


class Stepper:
    """Advance dp/dt = A p by a fixed dt: implicit Euler (first order, keeps p >= 0 for any dt), BDF2 (second
    order, L-stable, started by one implicit Euler step), or explicit Euler (needs dt <= 1 / max|A_ii|,
    which for an M-matrix also keeps p >= 0). The sparse LU factors are computed once and reused.
    The columns of A sum to zero, so every scheme conserves mass exactly in exact arithmetic; in floating
    point the mass drifts like a random walk of ~1e-16 dt max|A_ii| per step (the LU solve's round-off)."""

    def __init__(self, A: sp.csr_matrix, p0: np.ndarray, dt: float, scheme: str = "bdf2"):
        if scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {scheme!r} (valid: {', '.join(SCHEMES)})")
        if not dt > 0:
            raise ValueError(f"time step dt must be positive, got {dt}")
        self.A, self.dt, self.scheme = sp.csr_matrix(A), float(dt), scheme
        self.p = np.array(p0, dtype=float).ravel()
        if self.p.size != A.shape[0]:
            raise ValueError(f"initial density has {self.p.size} cells, the grid {A.shape[0]}")
        self.previous = None
        self.steps = 0
        eye = sp.identity(A.shape[0], format="csc")
        if scheme == "explicit":
            limit = 1.0 / np.max(-A.diagonal())
            if dt > limit:
                raise ValueError(f"explicit scheme unstable: dt = {dt:.3g} exceeds the CFL limit "
                                 f"1/max|A_ii| = {limit:.3g}; lower dt or use an implicit scheme")
        else:
            self._euler = _lu(eye - dt * A)
            self._bdf2 = _lu(1.5 * eye - dt * A) if scheme == "bdf2" else None

    def advance(self, n_steps: int) -> np.ndarray:
        for _ in range(int(n_steps)):
            if self.scheme == "explicit":
                new = self.p + self.dt * (self.A @ self.p)
            elif self.scheme == "implicit-euler" or self.previous is None:
                new = self._euler.solve(self.p)
            else:
                new = self._bdf2.solve(2.0 * self.p - 0.5 * self.previous)
            self.previous, self.p = self.p, new
            self.steps += 1
        return self.p
