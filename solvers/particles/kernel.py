"""The particle kernel: one compiled loop advances every particle through a chunk of steps.

Update rules (lr = eta_n from the schedule; z ~ N(0, I) from the particle's own stream; L L^T = D):
  gradient descent / SGD, heavy ball:  v <- beta v - eta g(x);  x <- x + v + sqrt(2 T eta) L z
  (g: full gradient, a minibatch mean of per-example gradients with or without replacement, or the full
  gradient plus the minibatch mean of per-example tilts a_i for tilted finite sums f_i = f + a_i.x)
  Langevin, Euler–Maruyama:           x <- x - eta grad f(x) + sqrt(2 T eta) L z          (beta = 0)
  Langevin, stochastic Heun:          xb = x - eta grad f(x) + sqrt(2 T eta) L z
                                       x <- x - eta/2 (grad f(x) + grad f(xb)) + sqrt(2 T eta) L z
    (weak order 2 for additive noise: Kloeden & Platen 1992, eq. 15.1.3)
  modified drift (the order-2 stochastic modified equation of SGD, Li, Tai & E 2019): with c != 0 the
                                       full gradient g is replaced by g + c H(x) g in the updates above (and
                                       at the Heun predictor), c = lr_SGD / 2, H the Hessian of f
  non-gradient drift: with a matrix Q the drift -g becomes -(I + Q) g (after the correction above), e.g. Q
                                       antisymmetric: a divergence-free rotation along the level sets of f
                                       (the limit-cycle mechanism of Chaudhari & Soatto 2018, sec. 5)
  perturbed GD (Jin et al. 2017):     if |g| <= g_thres and n - n_kick >= t_thres: x <- x + xi,
                                       xi uniform in the ball of radius r; then the step above.
The state-dependent diffusion D(x) = (1/N) sum_i (g_i - g)(g_i - g)^T is the gradient-noise covariance of
the data at x, factored by Cholesky at every step (Ito, Euler only).

Path observables (optional, per particle, summed over the steps): the Stratonovich area increment
(x_0 dx_1 - x_1 dx_0) / 2 = (x_0 x_1' - x_1 x_0') / 2 of consecutive iterates in the first two coordinates,
and the quadratic variation |x' - x|^2. First-passage targets: a box (enter / exit), or a level set of the
loss f(x) <= c or of the gradient norm |grad f(x)| <= c.

Particles run independently (parallel over fixed blocks), each with its own random stream, so the result
does not depend on the number of threads or on how the steps are chunked.
"""
from __future__ import annotations

import numpy as np
from numba import literally, prange

from .._jit import jit
from .landscapes import (DOUBLE_WELL, QUADRATIC, example_grad_add, grad, hessian_vector, separable_grad,
                                value)
from ..rng import next_below, next_double, next_normal

BLOCK = 256  # particles per parallel work item; fixed so scratch is allocated once per block

GRAD_FULL, GRAD_MINIBATCH, GRAD_TILT = 0, 1, 2
NOISE_NONE, NOISE_ISOTROPIC, NOISE_CONSTANT, NOISE_GRADIENT = 0, 1, 2, 3
SCHEME_EULER, SCHEME_HEUN = 0, 1
SCHEDULE_CONSTANT, SCHEDULE_STEP, SCHEDULE_COSINE = 0, 1, 2
TARGET_NONE, TARGET_ENTER, TARGET_EXIT, TARGET_LOSS_BELOW, TARGET_GRADIENT_BELOW = 0, 1, 2, 3, 4


@jit(inline="always")
def learning_rate(schedule, params, n):
    """eta_n: constant eta0; step decay eta0 gamma^floor(n/every); cosine eta_min + (eta0-eta_min)(1+cos(pi n/N))/2."""
    if schedule == SCHEDULE_CONSTANT:
        return params[0]
    if schedule == SCHEDULE_STEP:
        return params[0] * params[1] ** np.floor(n / params[2])
    frac = min(n / params[2], 1.0)
    return params[1] + 0.5 * (params[0] - params[1]) * (1.0 + np.cos(np.pi * frac))


@jit(inline="always")
def _draw_batch(s, n_examples, batch, replace, idx):
    """B indices uniform with replacement, or B distinct ones (Floyd's algorithm) without."""
    if replace:
        for j in range(batch):
            idx[j], s = next_below(s, n_examples)
        return s
    count = 0
    for j in range(n_examples - batch, n_examples):
        t, s = next_below(s, j + 1)
        seen = False
        for c in range(count):
            if idx[c] == t:
                seen = True
                break
        idx[count] = j if seen else t
        count += 1
    return s


@jit(inline="always")
def _gradient(s, source, code, x, theta, data, batch, replace, idx, out):
    """The gradient the update uses: full, minibatch of examples, or full plus a minibatch of tilts."""
    if source == GRAD_MINIBATCH:
        s = _draw_batch(s, data.shape[0], batch, replace, idx)
        out[:] = 0.0
        for j in range(batch):
            example_grad_add(code, x, theta, data, idx[j], 1.0 / batch, out)
        return s
    grad(code, x, theta, data, out)
    if source == GRAD_TILT:
        s = _draw_batch(s, data.shape[0], batch, replace, idx)
        for j in range(batch):
            for k in range(x.shape[0]):
                out[k] += data[idx[j], k] / batch
    return s


@jit(inline="always")
def _correct_drift(code, x, theta, data, drift_hessian, g, hg):
    """g <- g + c H(x) g: the drift correction of the order-2 modified equation (c = lr / 2)."""
    hessian_vector(code, x, theta, data, g, hg)
    for k in range(x.shape[0]):
        g[k] += drift_hessian * hg[k]


@jit
def gradient_noise_factor(code, x, theta, data, per_example, cov, factor):
    """Cholesky factor of the gradient-noise covariance (1/N) sum_i (g_i - g)(g_i - g)^T at x.

    Zero pivots (rank-deficient covariance) give zero columns, so the factor always exists.
    """
    n, d = data.shape[0], x.shape[0]
    for i in range(n):
        per_example[i, :] = 0.0
        example_grad_add(code, x, theta, data, i, 1.0, per_example[i])
    for a in range(d):
        mean_a = 0.0
        for i in range(n):
            mean_a += per_example[i, a]
        mean_a /= n
        for i in range(n):
            per_example[i, a] -= mean_a
    for a in range(d):
        for b in range(a + 1):
            acc = 0.0
            for i in range(n):
                acc += per_example[i, a] * per_example[i, b]
            cov[a, b] = acc / n
    factor[:, :] = 0.0
    for j in range(d):
        pivot = cov[j, j]
        for k in range(j):
            pivot -= factor[j, k] * factor[j, k]
        if pivot <= 1e-300:
            continue
        factor[j, j] = np.sqrt(pivot)
        for i in range(j + 1, d):
            acc = cov[i, j]
            for k in range(j):
                acc -= factor[i, k] * factor[j, k]
            factor[i, j] = acc / factor[j, j]


@jit(inline="always")
def _noise(s, kind, scale, factor, z, out):
    """out = scale * L z with z standard normal, L any square root of D (L = I for isotropic noise)."""
    d = out.shape[0]
    if kind == NOISE_NONE:
        out[:] = 0.0
        return s
    if kind == NOISE_ISOTROPIC:
        for k in range(d):
            zk, s = next_normal(s)
            out[k] = scale * zk
        return s
    for k in range(d):
        z[k], s = next_normal(s)
    for i in range(d):
        acc = 0.0
        for k in range(d):
            acc += factor[i, k] * z[k]
        out[i] = scale * acc
    return s


@jit(inline="always")
def _ball_kick(s, x, radius, z):
    """x += a point uniform in the ball of the given radius (normal direction, radius r U^(1/d))."""
    d = x.shape[0]
    norm2 = 0.0
    for k in range(d):
        z[k], s = next_normal(s)
        norm2 += z[k] * z[k]
    u, s = next_double(s)
    scale = radius * u ** (1.0 / d) / np.sqrt(norm2)
    for k in range(d):
        x[k] += scale * z[k]
    return s


@jit(inline="always")
def _norm(v):
    acc = 0.0
    for k in range(v.shape[0]):
        acc += v[k] * v[k]
    return np.sqrt(acc)


@jit(inline="always")
def _bounded(x, limit):
    """False when any coordinate is NaN, infinite or larger than limit in magnitude."""
    for k in range(x.shape[0]):
        if not abs(x[k]) <= limit:
            return False
    return True


@jit(inline="always")
def _in_box(x, lo, hi):
    for k in range(x.shape[0]):
        if not (lo[k] <= x[k] <= hi[k]):
            return False
    return True


@jit(inline="always")
def _record_first_passage(p, xp, step, target, lo, hi, first_hit):
    """first_hit[p] = step the first time xp is inside the box (ENTER) or outside it (EXIT)."""
    if target != TARGET_NONE and first_hit[p] < 0:
        if _in_box(xp, lo, hi) == (target == TARGET_ENTER):
            first_hit[p] = step


@jit(inline="always")
def _record_level_passage(p, xp, step, target, level, code, theta, data, scratch, first_hit):
    """first_hit[p] = step the first time f(xp) <= level (LOSS_BELOW) or |grad f(xp)| <= level."""
    if first_hit[p] < 0:
        if target == TARGET_LOSS_BELOW:
            reached = value(code, xp, theta, data) <= level
        else:
            grad(code, xp, theta, data, scratch)
            reached = _norm(scratch) <= level
        if reached:
            first_hit[p] = step


@jit(inline="always")
def _rotate(drift_matrix, g, tmp):
    """g <- g + Q g (the non-gradient part of the drift -(I + Q) g)."""
    d = g.shape[0]
    for i in range(d):
        acc = 0.0
        for j in range(d):
            acc += drift_matrix[i, j] * g[j]
        tmp[i] = acc
    for i in range(d):
        g[i] += tmp[i]


@jit(inline="always")
def _accumulate_path(pp, x_old, xp):
    """pp[0] += (x_0 x_1' - x_1 x_0') / 2 (d >= 2), pp[1] += |x' - x|^2."""
    if xp.shape[0] >= 2:
        pp[0] += 0.5 * (x_old[0] * xp[1] - x_old[1] * xp[0])
    acc = 0.0
    for k in range(xp.shape[0]):
        acc += (xp[k] - x_old[k]) ** 2
    pp[1] += acc


@jit(inline="always")
def _fused_steps(s, p, xp, code, theta, noise, temperature, schedule, lr_params, limit, target, target_lo,
                 target_hi, first_hit, diverged_at, step0, n_steps):
    """Euler steps of a separable landscape with isotropic or no noise, gradient, draw and update fused per
    coordinate (no scratch arrays): the same arithmetic and draws as the general loop, about 2x faster."""
    d = xp.shape[0]
    eta = learning_rate(schedule, lr_params, step0)
    scale = np.sqrt(2.0 * temperature * eta)
    for n in range(step0, step0 + n_steps):
        if schedule != SCHEDULE_CONSTANT:
            eta = learning_rate(schedule, lr_params, n)
            scale = np.sqrt(2.0 * temperature * eta)
        bounded = True
        for k in range(d):
            g = separable_grad(code, xp[k], theta, k)
            if noise == NOISE_ISOTROPIC:
                zk, s = next_normal(s)
                xk = xp[k] + (-eta * g + scale * zk)
            else:
                xk = xp[k] + (-eta * g + 0.0)
            xp[k] = xk
            bounded &= abs(xk) <= limit
        if not bounded:
            diverged_at[p] = n + 1
            break
        _record_first_passage(p, xp, n + 1, target, target_lo, target_hi, first_hit)
    return s


@jit
def _advance_particle(p, x, velocity, states, first_hit, diverged_at, last_kick, path,
                      code, theta, data, source, batch, replace, schedule, lr_params, momentum, drift_hessian,
                      drift_matrix, noise, temperature, factor, scheme, kick_gradient, kick_radius, kick_interval,
                      target, target_lo, target_hi, target_level, limit, step0, n_steps,
                      g, g_bar, hg, z, xi, x_bar, x_old, idx, per_example, cov):
    """The step loop of one particle (helpers inlined here; the parallel loop only distributes particles)."""
    d = x.shape[1]
    s = (states[p, 0], states[p, 1], states[p, 2], states[p, 3])
    xp = x[p]
    if ((code == QUADRATIC or code == DOUBLE_WELL) and source == GRAD_FULL and scheme == SCHEME_EULER
            and (noise == NOISE_ISOTROPIC or noise == NOISE_NONE) and momentum == 0.0 and kick_radius == 0.0
            and drift_hessian == 0.0 and drift_matrix.shape[0] == 0 and path.shape[0] == 0
            and target <= TARGET_EXIT):
        s = _fused_steps(s, p, xp, code, theta, noise, temperature, schedule, lr_params, limit, target,
                         target_lo, target_hi, first_hit, diverged_at, step0, n_steps)
        states[p, 0], states[p, 1], states[p, 2], states[p, 3] = s
        return
    rotated = drift_matrix.shape[0] > 0
    tracked = path.shape[0] > 0
    for n in range(step0, step0 + n_steps):
        eta = learning_rate(schedule, lr_params, n)
        if tracked:
            x_old[:] = xp
        s = _gradient(s, source, code, xp, theta, data, batch, replace, idx, g)
        if kick_radius > 0.0 and n - last_kick[p] >= kick_interval and _norm(g) <= kick_gradient:
            s = _ball_kick(s, xp, kick_radius, z)
            last_kick[p] = n
            s = _gradient(s, source, code, xp, theta, data, batch, replace, idx, g)
        if drift_hessian != 0.0:
            _correct_drift(code, xp, theta, data, drift_hessian, g, hg)
        if rotated:
            _rotate(drift_matrix, g, hg)
        if noise == NOISE_GRADIENT:
            gradient_noise_factor(code, xp, theta, data, per_example, cov, factor)
        s = _noise(s, noise, np.sqrt(2.0 * temperature * eta), factor, z, xi)
        if scheme == SCHEME_HEUN:
            for k in range(d):
                x_bar[k] = xp[k] - eta * g[k] + xi[k]
            grad(code, x_bar, theta, data, g_bar)
            if drift_hessian != 0.0:
                _correct_drift(code, x_bar, theta, data, drift_hessian, g_bar, hg)
            if rotated:
                _rotate(drift_matrix, g_bar, hg)
            for k in range(d):
                xp[k] += -0.5 * eta * (g[k] + g_bar[k]) + xi[k]
        elif momentum != 0.0:
            vp = velocity[p]
            for k in range(d):
                vp[k] = momentum * vp[k] - eta * g[k]
                xp[k] += vp[k] + xi[k]
        else:
            for k in range(d):
                xp[k] += -eta * g[k] + xi[k]
        if not _bounded(xp, limit):
            diverged_at[p] = n + 1
            break
        if tracked:
            _accumulate_path(path[p], x_old, xp)
        if target >= TARGET_LOSS_BELOW:
            _record_level_passage(p, xp, n + 1, target, target_level, code, theta, data, g_bar, first_hit)
        else:
            _record_first_passage(p, xp, n + 1, target, target_lo, target_hi, first_hit)
    states[p, 0], states[p, 1], states[p, 2], states[p, 3] = s


@jit(parallel=True)
def advance(x, velocity, states, first_hit, diverged_at, last_kick, path,
            code, theta, data,
            source, batch, replace,
            schedule, lr_params, momentum, drift_hessian, drift_matrix,
            noise, temperature, factor, scheme,
            kick_gradient, kick_radius, kick_interval,
            target, target_lo, target_hi, target_level, limit,
            step0, n_steps):
    """Advance every live particle from step `step0` by `n_steps` updates, in place.

    first_hit[p] (-1 until then) gets the first step whose iterate is in the target box (target=ENTER) or
    outside it (EXIT), or has f <= target_level (LOSS_BELOW) or |grad f| <= target_level (GRADIENT_BELOW);
    path[p] (shape (M, 2), or (0, 2) for none) accumulates the area increment and the quadratic variation;
    drift_matrix is Q of the drift -(I + Q) g, or (0, 0) for none; diverged_at[p] the first step with a non-finite or |x_k| > limit iterate, after which
    the particle is frozen. last_kick[p] is the step of the last PGD perturbation.

    The landscape code, gradient source, noise kind and scheme are compile-time constants (`literally`):
    each combination compiles once (and is cached), and its loop carries no dead branches.
    """
    literally(code)
    literally(source)
    literally(noise)
    literally(scheme)
    n_particles, d = x.shape
    n_blocks = (n_particles + BLOCK - 1) // BLOCK
    n_scratch = data.shape[0] if noise == NOISE_GRADIENT else 0
    for blk in prange(n_blocks):
        g = np.empty(d)
        g_bar = np.empty(d)
        hg = np.empty(d)
        z = np.empty(d)
        xi = np.empty(d)
        x_bar = np.empty(d)
        x_old = np.empty(d)
        idx = np.empty(max(batch, 1), np.int64)
        local_factor = factor.copy()
        per_example = np.empty((n_scratch, d))
        cov = np.empty((d, d))
        for p in range(blk * BLOCK, min(n_particles, (blk + 1) * BLOCK)):
            if diverged_at[p] < 0:
                _advance_particle(p, x, velocity, states, first_hit, diverged_at, last_kick, path,
                                  code, theta, data, source, batch, replace, schedule, lr_params, momentum,
                                  drift_hessian, drift_matrix, noise, temperature, local_factor, scheme,
                                  kick_gradient, kick_radius, kick_interval, target, target_lo, target_hi,
                                  target_level, limit, step0, n_steps, g, g_bar, hg, z, xi, x_bar, x_old, idx,
                                  per_example, cov)
