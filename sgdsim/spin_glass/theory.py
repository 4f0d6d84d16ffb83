"""Theory of spherical p-spin landscapes: covariance function, Hessian spectra, complexity, dynamics.

Convention (used everywhere in sgdsim): on the sphere |s|^2 = N,
    E[H(s) H(s')] = N xi(s.s'/N),   xi(q) = sum_p a_p^2 q^p,
i.e. H = sum_p a_p N^{-(p-1)/2} sum_{i_1..i_p} J_{i_1..i_p} s_{i_1}..s_{i_p} with J iid N(0, 1): the
normalization of Auffinger, Ben Arous & Cerny 2013 (ABC, eq. 1.1) for a pure model (a_p = 1). Energies are
per spin, u = H/N; minima have u < 0. In this convention the pure p = 3 threshold is -2 sqrt(2/3) = -1.633.
Other common conventions differ by a constant factor on xi (see `NORMALIZATIONS`); energies and temperatures
scale with its square root (`convert_energy`, `convert_temperature`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from ..errors import ParameterError
from ..solvers.spin_glass import cugliandolo_kurchan as _ck

# xi_convention(q) = factor * xi_abc(q) for a pure p-spin
NORMALIZATIONS = {
    "abc": 1.0,               # Auffinger-Ben Arous-Cerny 2013: J iid N(0,1) over ordered tuples, E[HH'] = N q^p
    "crisanti-sommers": 0.5,  # Crisanti & Sommers 1992, Cugliandolo & Kurchan 1993: H = -sum_{i<j<k} J s s s,
                              # var J = p!/(2 N^{p-1}), E[HH'] = N q^p / 2
}


def _factor(name: str) -> float:
    try:
        return NORMALIZATIONS[name]
    except KeyError:
        raise ParameterError(f"unknown normalization {name!r} (valid: {', '.join(NORMALIZATIONS)})") from None


def convert_energy(u, source: str = "abc", target: str = "crisanti-sommers"):
    """Energy per spin from one normalization to another: u_target = u_source sqrt(f_target / f_source)."""
    return u * math.sqrt(_factor(target) / _factor(source))


def convert_temperature(T, source: str = "abc", target: str = "crisanti-sommers"):
    """Temperatures scale like energies (beta H is convention-free)."""
    return convert_energy(T, source, target)


@dataclass(frozen=True)
class Xi:
    """xi(q) = sum_p c_p q^p with c_p = a_p^2 (the covariance function of the stated convention)."""
    ps: tuple[int, ...]
    coef: tuple[float, ...]

    @classmethod
    def mixture(cls, amplitudes: dict[int, float]) -> Xi:
        """From the amplitudes a_p of H = sum_p a_p H_p."""
        items = sorted((int(p), float(a) ** 2) for p, a in amplitudes.items())
        return cls(tuple(p for p, _ in items), tuple(c for _, c in items))

    @property
    def pure(self) -> int | None:
        """p of a pure model with a_p = 1, else None."""
        return self.ps[0] if len(self.ps) == 1 and self.coef[0] == 1.0 else None

    def __call__(self, q):
        return sum(c * np.asarray(q, float) ** p for p, c in zip(self.ps, self.coef))

    def d1(self, q):
        return sum(c * p * np.asarray(q, float) ** (p - 1) for p, c in zip(self.ps, self.coef))

    def d2(self, q):
        return sum(c * p * (p - 1) * np.asarray(q, float) ** (p - 2) for p, c in zip(self.ps, self.coef))


def paramagnetic_energy(xi: Xi, T: float) -> float:
    """u = -xi(1)/T: the annealed (= quenched above the static transition) equilibrium energy per spin,
    from E[Z] = Z_0 exp(N xi(1) / (2 T^2))."""
    return -float(xi(1.0)) / T


def dynamical_temperature(xi: Xi) -> float:
    """T_d: T_d^2 = max_{0<q<1} xi'(q)(1 - q)/q, the largest T with a plateau solution q/(1-q) = xi'(q)/T^2 of
    mode coupling (Crisanti, Horner & Sommers 1993; pure p in the Crisanti-Sommers convention: T_d^2 =
    p (p-2)^{p-2} / (2 (p-1)^{p-1})). For xi''(0) > 0 (a p = 2 part) the sup is at q -> 0: T_d^2 = xi''(0)."""
    q = np.linspace(1e-6, 1 - 1e-6, 20001)
    f = xi.d1(q) * (1 - q) / q
    k = int(np.argmax(f))
    res = optimize.minimize_scalar(lambda x: -xi.d1(x) * (1 - x) / x,
                                   bounds=(q[max(k - 1, 0)], q[min(k + 1, len(q) - 1)]), method="bounded")
    return float(math.sqrt(max(f[k], -res.fun)))


def static_temperature(xi: Xi) -> float:
    """T_s, the static (Kauzmann) transition of a pure spherical p-spin (p >= 3; one-step replica symmetry
    breaking is exact there, Crisanti & Sommers 1992, Z. Phys. B 87, 341). The 1RSB free energy with
    q_0 = 0, q_1 = q and breaking parameter m, for covariance N xi (up to a constant),
        2 beta f(q, m) = -beta^2 [xi(1) + (m - 1) xi(q)] - (m - 1)/m ln(1 - q) - (1/m) ln(1 - q + m q),
    equals the paramagnet's (-beta^2 xi(1), energy -xi(1)/T) at m = 1; T_s is where a solution with m = 1
    and q > 0 appears, d(2 beta f)/dm = 0 and d^2(2 beta f)/dm dq = 0 at m = 1:
        beta^2 xi(q) = -ln(1 - q) - q,     beta^2 xi'(q) = q / (1 - q).
    Eliminating beta: q xi(q) = xi'(q) (1 - q) (-ln(1 - q) - q), one root in (0, 1) (for pure p the
    difference is ~ (1 - p/2) q^(p+1) < 0 near 0 and xi(1) > 0 at 1). In this module's convention
    (xi = q^p) p = 3 gives T_s = 0.8288; Crisanti-Sommers' xi = q^p / 2 divides it by sqrt(2): 0.5861
    (`convert_temperature`), below T_d = sqrt(3/8) = 0.6124 (`dynamical_temperature`)."""
    if len(xi.ps) != 1 or xi.ps[0] < 3:
        raise ParameterError(f"the static temperature is for a pure p-spin with p >= 3, got xi with p = {xi.ps}")

    def gap(q):
        return q * float(xi(q)) - float(xi.d1(q)) * (1 - q) * (-math.log1p(-q) - q)

    q = optimize.brentq(gap, 1e-6, 1 - 1e-12, xtol=1e-15)
    return float(math.sqrt(float(xi.d1(q)) * (1 - q) / q))


def semicircle_density(x, center: float, radius: float):
    """Wigner semicircle on [center - radius, center + radius]."""
    y = (np.asarray(x, float) - center) / radius
    return np.where(np.abs(y) < 1, 2 / (np.pi * radius) * np.sqrt(np.clip(1 - y * y, 0, None)), 0.0)


def hessian_radius(xi: Xi) -> float:
    """Half-width 2 sqrt(xi''(1)) of the semicircle of the Riemannian Hessian (ABC 2013, Lemma 3.2)."""
    return 2.0 * math.sqrt(float(xi.d2(1.0)))


def hessian_center(radial: float) -> float:
    """Centre -s.grad H / N of the Hessian spectrum at s (pure p at a critical point: -p u, ABC Lemma 3.2)."""
    return -float(radial)


def _pure(p: int) -> int:
    if int(p) < 2:
        raise ParameterError(f"the complexity needs a pure p-spin with p >= 2, got p={p}")
    return int(p)


def threshold_energy(p: int) -> float:
    """-E_inf = -2 sqrt((p-1)/p): where the Hessian semicircle of critical points touches zero (ABC eq. 2.5)."""
    p = _pure(p)
    return -2.0 * math.sqrt((p - 1) / p)


def large_deviation_I1(u, p: int):
    """I_1(u) = -(u/E_inf^2) sqrt(u^2 - E_inf^2) - log(-u + sqrt(u^2 - E_inf^2)) + log E_inf for u <= -E_inf
    (ABC eq. 2.6), 0 above: the rate of the smallest GOE eigenvalue sitting below the bulk."""
    E = -threshold_energy(p)
    u = np.minimum(np.asarray(u, float), -E)
    r = np.sqrt(np.clip(u * u - E * E, 0, None))
    return -u / E ** 2 * r - np.log(-u + r) + math.log(E)


def complexity(u, p: int, k: int | None = None):
    """Annealed complexity lim (1/N) log E Crt_{N,k}((-inf, u)) (ABC Theorems 2.5 and 2.8, pure p >= 3):
    for u <= -E_inf:  1/2 log(p-1) - (p-2)/(4(p-1)) u^2 - (k+1) I_1(u)   (k = None: all indices, factor 1)
    above -E_inf:     all indices: 1/2 log(p-1) - (p-2)/(4(p-1)) u^2 (u <= 0), 1/2 log(p-1) (u >= 0);
                      index k: frozen at its value at -E_inf, 1/2 log(p-1) - (p-2)/p."""
    p = _pure(p)
    u = np.asarray(u, float)
    E = -threshold_energy(p)
    base = 0.5 * math.log(p - 1) - (p - 2) / (4 * (p - 1)) * np.minimum(u, 0.0) ** 2
    factor = 1 if k is None else int(k) + 1
    below = base - factor * large_deviation_I1(u, p)
    if k is None:
        return np.where(u <= -E, below, base)
    return np.where(u <= -E, below, 0.5 * math.log(p - 1) - (p - 2) / p)


def ground_state_energy(p: int, k: int = 0) -> float:
    """-E_k: the zero of the index-k complexity below the threshold (ABC Theorem 2.8); k = 0 gives the
    annealed ground-state energy (equal to the quenched one for pure p >= 3, Subag 2017). p = 2: -sqrt(2)."""
    p = _pure(p)
    if p == 2:
        return threshold_energy(2)
    E = -threshold_energy(p)
    return float(optimize.brentq(lambda u: float(complexity(u, p, k)), -10.0 * E, -E))


@dataclass(frozen=True)
class CKSolution:
    """Cugliandolo-Kurchan solution on t_i = i h: C[i, j], R[i, j] (i >= j), z(t_i), energy per spin e(t_i),
    and the estimated absolute error of e(t_i) (`error`, its maximum `error_max`; see `cugliandolo_kurchan`)."""
    times: np.ndarray
    C: np.ndarray
    R: np.ndarray
    z: np.ndarray
    energy: np.ndarray
    h: float
    error: np.ndarray
    error_max: float


CK_TOLERANCE = 1e-3   # default bound on the estimated error of e(t)


def cugliandolo_kurchan(xi: Xi, temperature: float, t_max: float, h: float, richardson: bool = True,
                        tol: float | None = CK_TOLERANCE) -> CKSolution:
    """Integrate the CK equations (see `solvers.spin_glass.cugliandolo_kurchan`) to t_max with step h (second order),
    with an error estimate from step doubling on the two-time grid.

    The scheme is run with steps h, 2h and 4h (n = t_max/h rounded up to a multiple of 4; the two coarse runs
    cost 1/8 + 1/64 of the fine one). richardson=True returns R_h = (4 f_h - f_2h)/3 on the 2h grid (error
    O(h^3)) with the estimated error |R_h - R_2h| of its energy, R_2h the same extrapolation one level
    coarser (on the 4h grid, interpolated linearly onto the 2h grid): an upper bound in the asymptotic regime
    (there the true error is |R_h - R_2h| / (2^q - 1), q >= 3) and, as the tests measure on the exact p = 2
    solution, also at the coarse steps where the extrapolation is not yet asymptotic. richardson=False returns
    f_h with the Richardson estimate |f_h - f_2h|/3 of a second-order scheme.

    tol (default `CK_TOLERANCE`; None disables): ParameterError, one line, when the estimate (or any value) is
    not finite or max_t error > tol: the step is too coarse (at T = 0, p = 3, h = 0.125 even gives energies
    below the threshold at t = 100, and h = 0.25 NaN)."""
    if not (h > 0 and t_max > 0 and temperature >= 0):
        raise ParameterError(f"CK integration needs h > 0, t_max > 0, T >= 0 (got h={h}, t_max={t_max}, "
                             f"T={temperature})")
    n = 4 * int(math.ceil(round(t_max / h, 9) / 4))
    args = (float(temperature), np.array(xi.ps, np.int64), np.array(xi.coef, np.float64))
    fine = _ck.ck_integrate(n, float(h), *args)
    half = _ck.ck_integrate(n // 2, 2.0 * float(h), *args)
    if richardson:
        quarter = _ck.ck_integrate(n // 4, 4.0 * float(h), *args)
        C, R, z, e = ((4 * a[::2, ::2] - b) / 3 if a.ndim == 2 else (4 * a[::2] - b) / 3 for a, b in zip(fine, half))
        coarse = (4 * half[3][::2] - quarter[3]) / 3
        step = 2.0 * float(h)
        times = step * np.arange(n // 2 + 1)
        error = np.abs(np.interp(times, times[::2], e[::2] - coarse))
    else:
        C, R, z, e = fine
        step = float(h)
        times = step * np.arange(n + 1)
        error = np.interp(times, times[::2], np.abs(e[::2] - half[3]) / 3)
    finite = bool(np.all(np.isfinite(e)) and np.all(np.isfinite(error)))
    error_max = float(np.max(error)) if finite else float("inf")
    if tol is not None and error_max > tol:
        raise ParameterError(f"CK step h={h:g} to t={t_max:g} (T={temperature:g}): estimated error "
                             f"{error_max:.1e} in e(t) > tol {tol:.0e}; lower the step (cost ~ (t_max/h)^3)")
    return CKSolution(times, C, R, z, e, step, error, error_max)


def _gamma_scaled(x, a):
    """exp(-a x) Gamma(x), Gamma(x) = int rho(l) e^{l x} dl for the semicircle rho of radius a: 2 I_1(ax)/(ax)."""
    y = a * np.asarray(x, float)
    safe = np.where(y > 0, y, 1.0)
    return np.where(y > 0, 2 * special.ive(1, safe) / safe, 1.0)


def p2_exact(times: np.ndarray, temperature: float = 0.0, h_ref: float = 1e-3):
    """Exact N -> infinity Langevin dynamics of the spherical p = 2 model (xi(q) = q^2) from a random start:
    (C[i, j] = C(t_i, t_j), energy e(t_i)). In the eigenbasis of the coupling matrix (semicircle of radius
    a = 2 sqrt(2) for the gradient) with g(t) = exp(2 int_0^t z) (Cugliandolo & Dean 1995, eqs. 9-14):
        g(t) = Gamma(2t) + 2T int_0^t g(u) Gamma(2(t-u)) du,      e(t) = (T - z(t))/2,  z = g'/(2g),
        C(t,t') = [Gamma(t+t') + 2T int_0^t' g(u) Gamma(t+t'-2u) du] / sqrt(g(t) g(t')),
    closed form at T = 0; for T > 0 the Volterra equation is solved by the trapezoidal rule on step h_ref."""
    a = 2.0 * math.sqrt(2.0)
    t = np.asarray(times, float)
    if temperature == 0:
        G = _gamma_scaled(2 * t, a)
        # z = (1/2) d/dt log Gamma(2t) = a (I_0(y)/I_1(y) - 2/y), y = 2 a t (Bessel recurrence I_1' = I_0 - I_1/y)
        y = np.where(t > 0, 2 * a * t, 1.0)
        z = np.where(t > 0, a * (special.ive(0, y) / special.ive(1, y) - 2 / y), 0.0)
        C = _gamma_scaled(t[:, None] + t[None, :], a) / np.sqrt(G[:, None] * G[None, :])
        return C, (temperature - z) / 2
    m = int(math.ceil(t.max() / h_ref))
    grid = h_ref * np.arange(m + 1)
    kernel = _gamma_scaled(2 * grid, a)
    G = np.empty(m + 1)
    G[0] = 1.0
    for i in range(1, m + 1):
        conv = 0.5 * G[0] * kernel[i] + G[1:i] @ kernel[i - 1:0:-1]
        G[i] = (kernel[i] + 2 * temperature * h_ref * conv) / (1 - temperature * h_ref * kernel[0])
    z = a + np.gradient(np.log(G), h_ref) / 2
    energy = np.interp(t, grid, (temperature - z) / 2)
    Gt = np.interp(t, grid, G)
    C = np.empty((len(t), len(t)))
    for i, ti in enumerate(t):
        for j, tj in enumerate(t):
            lo = min(ti, tj)
            k = int(round(lo / h_ref))
            u = grid[:k + 1]
            f = G[:k + 1] * _gamma_scaled(ti + tj - 2 * u, a)
            integral = h_ref * (f.sum() - 0.5 * (f[0] + f[-1])) if k > 0 else 0.0
            C[i, j] = (_gamma_scaled(ti + tj, a) + 2 * temperature * integral) / math.sqrt(Gt[i] * Gt[j])
    return C, energy
