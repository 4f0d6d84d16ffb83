"""The block-vectorized particle kernel: a block of particles (`lanes_for(d)` "lanes") advanced together, step
by step, with every inner loop running over the particles of the block (structure of arrays), so that LLVM
emits SIMD for the generator update, the minibatch draws, the normal draws and the update.

State of a block: positions X (d, lanes), the xoshiro256++ states in the rows of S (4, lanes), the particle
index of each lane. Each lane draws from its own stream in the scalar kernel's order (minibatch indices, then
one normal per coordinate) with the same arithmetic, so the result is bit-identical to `particles.kernel`
for any thread count and chunking (and equals its NumPy twin `reference` as that kernel does: streams and
events exactly, positions to round-off). A particle that diverges leaves the block (its
state is written back and the last lane takes its place), as the scalar kernel stops stepping it.

A call can also take the records of the steps it crosses (`rec_steps`): at each, the lanes are added to the
per-lane accumulators of `observables` (the reduction `Observer` runs on a cloud, bit for bit), so a record
costs neither a pass over the state nor a return to Python. A parallel work item is one partial-sum block of
`observables.BLOCK` particles, run `lanes_for(d)` at a time in particle order.

Covered (`covers`), Euler steps without momentum, kicks, modified drift, rotation or path observables:
  full gradient of a separable landscape (QUADRATIC, DOUBLE_WELL) with isotropic or no noise: Langevin, GD;
  tilted sums of those (gradient "tilt"), with or without replacement, no noise: SGD;
  least squares (gradient "minibatch"), with or without replacement, no noise: SGD;
with a box target (enter / exit) or none, any schedule. Everything else runs on the scalar kernel.
"""
from __future__ import annotations

import numpy as np
from numba import literally, prange

from .._jit import jit
from .landscapes import DOUBLE_WELL, LEAST_SQUARES, QUADRATIC, separable_grad
from .kernel import (GRAD_FULL, GRAD_MINIBATCH, GRAD_TILT, NOISE_ISOTROPIC, NOISE_NONE,
                              SCHEDULE_CONSTANT, TARGET_ENTER, TARGET_EXIT, TARGET_NONE, learning_rate)
from .observables import BLOCK, lanes_accumulate, lanes_finish, lanes_for
from ..rng import lanes_below, lanes_normal

__all__ = ["BLOCK", "advance_block", "covers", "lanes_for", "records_per_call"]


# A parallel work item ("group") is one block of BLOCK particles of `observables`, lanes_for(d) at a time, so
# that the records a chunk crosses are reduced into that block's partial sums in the order `Observer` uses.

RECORD_BYTES = 1 << 18  # per block, the lane accumulators of the records one call holds (kept within L2)


def records_per_call(dim: int) -> int:
    """How many records one call should take at most: their lane accumulators, (d + d(d+1)/2 + 1) x lanes
    doubles each, held for a whole block, within RECORD_BYTES (7 in 10-D, 42 in 1-D; more spill to L3)."""
    per_record = (dim + dim * (dim + 1) // 2 + 1) * lanes_for(dim) * 8
    return max(1, RECORD_BYTES // per_record)


def covers(*, code, source, noise, scheme, momentum, drift_hessian, drift_matrix, kick_radius, path, target):
    """Whether `advance_block` implements this configuration (the codes of `particles.kernel`)."""
    separable = code in (QUADRATIC, DOUBLE_WELL)
    langevin = source == GRAD_FULL and separable and noise in (NOISE_NONE, NOISE_ISOTROPIC)
    sgd = ((source == GRAD_TILT and separable) or (source == GRAD_MINIBATCH and code == LEAST_SQUARES)) \
        and noise == NOISE_NONE
    return ((langevin or sgd) and scheme == 0 and momentum == 0.0 and drift_hessian == 0.0
            and drift_matrix.shape[0] == 0 and kick_radius == 0.0 and path.shape[0] == 0 and target <= TARGET_EXIT)


@jit(inline="always")
def _draw_batch(S, n, n_examples, batch, replace, raw, T, IDX):
    """IDX[j, l] for j < batch: the scalar kernel's minibatch of lane l (independent draws, or Floyd's B
    distinct indices: t uniform in [0, j], replaced by j if already chosen)."""
    if replace:
        for j in range(batch):
            lanes_below(S, n, n_examples, raw, IDX[j])
        return
    count = 0
    for j in range(n_examples - batch, n_examples):
        lanes_below(S, n, j + 1, raw, T)
        row = IDX[count]
        for l in range(n):
            row[l] = T[l]
        for c in range(count):
            prev = IDX[c]
            for l in range(n):
                if prev[l] == T[l]:
                    row[l] = j
        count += 1


@jit(inline="always")
def _residual_terms(r0, r1, r2, r3, data, i0, i1, i2, i3, k, xk):
    """The coordinate-k term of four residuals: r_q + a_{i_q, k} x_k."""
    return r0 + data[i0, k] * xk, r1 + data[i1, k] * xk, r2 + data[i2, k] * xk, r3 + data[i3, k] * xk


@jit(inline="always")
def _gradient_terms(g, data, i0, i1, i2, i3, k, z0, z1, z2, z3):
    """g + z_0 a_{i_0, k} + ... + z_3 a_{i_3, k}, added in that order."""
    return (((g + z0 * data[i0, k]) + z1 * data[i1, k]) + z2 * data[i2, k]) + z3 * data[i3, k]


@jit(inline="always")
def _least_squares_gradient(X, G, IDX, n, data, batch):
    """G[:, l] = sum_j (1/B) r_j a_{i_j} with r_j = a_{i_j} . x - b_{i_j}, in the scalar kernel's order
    (r_j summed over coordinates in order, G over examples in draw order), lane after lane.

    A residual is a serial sum, and summing lanes side by side needs the drawn rows in lane-major order, which
    costs more than it saves on Zen 4 (this loop in C: 43 ns per particle-step scalar, 63 with AVX-512
    gathers, 44 with the rows transposed in registers), so a lane sums four examples side by side (four
    independent chains), with the coordinate loops unrolled by two (at d = 10 the loop's own
    overhead is a large share: 59 -> 52 ns per particle-step at B = 8, measured). The first example sets G
    instead of being added to 0.0: the two differ at most in the sign of a zero, which the update's `+ 0.0`
    erases, so positions stay bit-identical to the scalar kernel's."""
    d = X.shape[0]
    weight = 1.0 / batch
    for l in range(n):
        j = 0
        while j + 4 <= batch:
            i0, i1, i2, i3 = IDX[j, l], IDX[j + 1, l], IDX[j + 2, l], IDX[j + 3, l]
            r0, r1, r2, r3 = -data[i0, d], -data[i1, d], -data[i2, d], -data[i3, d]
            k = 0
            while k + 2 <= d:
                r0, r1, r2, r3 = _residual_terms(r0, r1, r2, r3, data, i0, i1, i2, i3, k, X[k, l])
                r0, r1, r2, r3 = _residual_terms(r0, r1, r2, r3, data, i0, i1, i2, i3, k + 1, X[k + 1, l])
                k += 2
            if k < d:
                r0, r1, r2, r3 = _residual_terms(r0, r1, r2, r3, data, i0, i1, i2, i3, k, X[k, l])
            z0, z1, z2, z3 = weight * r0, weight * r1, weight * r2, weight * r3
            if j == 0:
                for k in range(d):
                    G[k, l] = ((z0 * data[i0, k] + z1 * data[i1, k]) + z2 * data[i2, k]) + z3 * data[i3, k]
            else:
                k = 0
                while k + 2 <= d:
                    G[k, l] = _gradient_terms(G[k, l], data, i0, i1, i2, i3, k, z0, z1, z2, z3)
                    G[k + 1, l] = _gradient_terms(G[k + 1, l], data, i0, i1, i2, i3, k + 1, z0, z1, z2, z3)
                    k += 2
                if k < d:
                    G[k, l] = _gradient_terms(G[k, l], data, i0, i1, i2, i3, k, z0, z1, z2, z3)
            j += 4
        while j < batch:
            i0 = IDX[j, l]
            r0 = -data[i0, d]
            for k in range(d):
                r0 += data[i0, k] * X[k, l]
            z0 = weight * r0
            if j == 0:
                for k in range(d):
                    G[k, l] = z0 * data[i0, k]
            else:
                for k in range(d):
                    G[k, l] += z0 * data[i0, k]
            j += 1


@jit(inline="always")
def _step(S, X, G, R, T, Z, IDX, OK, n, code, theta, data, source, batch, replace, noise, eta, scale, limit):
    """One Euler step of the n active lanes: the separable full gradient with isotropic or no noise, or a
    minibatch gradient (indices drawn first) without noise. OK[l] says whether every coordinate of lane l
    is finite and within the limit afterwards."""
    d = X.shape[0]
    for l in range(n):
        OK[l] = True
    if source == GRAD_FULL:  # separable: gradient, draw and update per coordinate, as the fused scalar path
        for k in range(d):
            xk = X[k]
            if noise == NOISE_ISOTROPIC:
                lanes_normal(S, n, R, Z)
                for l in range(n):
                    xk[l] = xk[l] + (-eta * separable_grad(code, xk[l], theta, k) + scale * Z[l])
                    OK[l] &= abs(xk[l]) <= limit
            else:
                for l in range(n):
                    xk[l] = xk[l] + (-eta * separable_grad(code, xk[l], theta, k) + 0.0)
                    OK[l] &= abs(xk[l]) <= limit
        return
    _draw_batch(S, n, data.shape[0], batch, replace, R, T, IDX)
    if source == GRAD_TILT:  # g = grad f + sum_j a_{i_j} / B, summed in the order of the draws
        for k in range(d):
            gk = G[k]
            xk = X[k]
            for l in range(n):
                gk[l] = separable_grad(code, xk[l], theta, k)
            for j in range(batch):
                ij = IDX[j]
                for l in range(n):
                    gk[l] += data[ij[l], k] / batch
    else:
        _least_squares_gradient(X, G, IDX, n, data, batch)
    for k in range(d):
        gk = G[k]
        xk = X[k]
        for l in range(n):
            xk[l] += -eta * gk[l] + 0.0
            OK[l] &= abs(xk[l]) <= limit


@jit(inline="always")
def _store(p, l, S, X, x, states):
    for k in range(X.shape[0]):
        x[p, k] = X[k, l]
    for w in range(4):
        states[p, w] = S[w, l]


@jit(inline="always")
def _move(src, dst, S, X, pid, hit):
    for k in range(X.shape[0]):
        X[k, dst] = X[k, src]
    for w in range(4):
        S[w, dst] = S[w, src]
    pid[dst] = pid[src]
    hit[dst] = hit[src]


@jit(inline="always")
def _load(start, size, S, X, pid, hit, x, states, first_hit, diverged_at, target):
    """The live particles of start..start+size-1 into the lanes; returns how many. When all are live (the
    usual case) the copies are plain strided loops, which compile to vector loads; first_hit is read only
    with a target (the copies are most of the memory traffic of a call)."""
    d = X.shape[0]
    live = 0
    for l in range(size):
        live += diverged_at[start + l] < 0
    if live == size:
        for k in range(d):
            for l in range(size):
                X[k, l] = x[start + l, k]
        for w in range(4):
            for l in range(size):
                S[w, l] = states[start + l, w]
        for l in range(size):
            pid[l] = start + l
        if target != TARGET_NONE:
            for l in range(size):
                hit[l] = first_hit[start + l]
        return size
    n = 0
    for p in range(start, start + size):
        if diverged_at[p] < 0:
            pid[n] = p
            hit[n] = first_hit[p]
            for k in range(d):
                X[k, n] = x[p, k]
            for w in range(4):
                S[w, n] = states[p, w]
            n += 1
    return n


@jit(inline="always")
def _unload(start, size, n, S, X, pid, hit, x, states, first_hit, target):
    """The n active lanes back to their particles (in place, as `_load` put them, when none left)."""
    if n == size:
        for k in range(X.shape[0]):
            for l in range(size):
                x[start + l, k] = X[k, l]
        for w in range(4):
            for l in range(size):
                states[start + l, w] = S[w, l]
        if target != TARGET_NONE:
            for l in range(size):
                first_hit[start + l] = hit[l]
        return
    for l in range(n):
        _store(pid[l], l, S, X, x, states)
        if target != TARGET_NONE:
            first_hit[pid[l]] = hit[l]


@jit(inline="always")
def _retire_diverged(S, X, pid, hit, OK, n, x, states, first_hit, diverged_at, target, step):
    """Lanes with OK false (a non-finite or |x_k| > limit coordinate) leave the block: written back with
    diverged_at = step, the last active lane moved into their place. Returns the number of active lanes."""
    bad = 0
    for l in range(n):
        bad += not OK[l]
    if bad == 0:
        return n
    l = 0
    while l < n:
        if OK[l]:
            l += 1
            continue
        p = pid[l]
        diverged_at[p] = step
        if target != TARGET_NONE:
            first_hit[p] = hit[l]
        _store(p, l, S, X, x, states)
        n -= 1
        if l < n:
            _move(n, l, S, X, pid, hit)
            OK[l] = OK[n]
    return n


@jit(inline="always")
def _record_passage(X, hit, OK, n, target, lo, hi, step):
    """hit[l] = step the first time lane l is inside the box (ENTER) or outside it (EXIT)."""
    d = X.shape[0]
    for l in range(n):
        OK[l] = True
    for k in range(d):
        xk = X[k]
        for l in range(n):
            OK[l] &= (lo[k] <= xk[l]) & (xk[l] <= hi[k])
    enter = target == TARGET_ENTER
    for l in range(n):
        if hit[l] < 0 and OK[l] == enter:
            hit[l] = step


@jit
def _take_record(r, blk, first_group, X, n, pid, covariance, loss, code, theta, data, h, c, e, axis, edges, scale,
                 Y, F, W, T, A1, A2, AL, sizes, shifts, counts, snap):
    """Record r of the n active lanes (the group's particles at a record step) into the lane accumulators;
    the block's first group sets its shift, and the first snap.shape[1] particles go to the snapshot."""
    if n == 0:
        return
    d = X.shape[0]
    if first_group:
        for k in range(d):
            shifts[r, blk, k] = X[k, 0]
    sizes[r, blk] += n
    lanes_accumulate(X, n, shifts[r, blk], covariance, loss, code, theta, data, h, c, e, axis, edges, scale, Y,
                     F, W, T, A1[r], A2[r], AL[r], counts[r, blk])
    n_snap = snap.shape[1]
    if n_snap > 0 and pid[0] < n_snap:
        for l in range(n):
            if pid[l] < n_snap:
                for k in range(d):
                    snap[r, pid[l], k] = X[k, l]


@jit
def _advance_blocks(lanes, first, last, x, states, first_hit, diverged_at, code, theta, data, source, batch,
                    replace, schedule, lr_params, noise, temperature, target, target_lo, target_hi, limit, step0,
                    n_steps, rec_steps, covariance, loss, h, c, e, axis, edges, scale, sizes, shifts, firsts,
                    seconds, losses, counts, snap):
    """The step loop of particles first..last-1 (one block of `observables`), group after group of `lanes`
    particles (compiled apart from the parallel loop, which only distributes blocks; scratch is allocated
    once per block). At the steps of rec_steps (increasing, within step0..step0+n_steps) the group's lanes
    are added to the block's record accumulators, summed into its partial sums at the end."""
    d = x.shape[1]
    S = np.empty((4, lanes), np.uint64)
    X = np.empty((d, lanes))
    G = np.empty((d, lanes))
    R = np.empty(lanes, np.uint64)
    T = np.empty(lanes, np.int64)
    Z = np.empty(lanes)
    IDX = np.empty((max(batch, 1), lanes), np.int64)
    OK = np.empty(lanes, np.bool_)
    pid = np.empty(lanes, np.int64)
    hit = np.empty(lanes, np.int64)
    n_rec = rec_steps.shape[0]
    landscape = code + 0  # not a literal: `_take_record` is compiled once, not once per kernel variant
    blk = first // BLOCK
    pairs = d * (d + 1) // 2 if covariance else 0
    A1 = np.zeros((n_rec, d, lanes))
    A2 = np.zeros((n_rec, pairs, lanes))
    AL = np.zeros((n_rec, lanes))
    Y = np.empty((d, lanes))
    F = np.empty(lanes)
    W = np.empty((2, lanes))
    for start in range(first, last, lanes):
        size = min(last, start + lanes) - start
        n = _load(start, size, S, X, pid, hit, x, states, first_hit, diverged_at, target)
        eta = learning_rate(schedule, lr_params, step0)
        scale_noise = np.sqrt(2.0 * temperature * eta)
        ri = np.int64(0)  # not a literal either (one `_take_record` for both calls)
        if n_rec > 0 and rec_steps[0] == step0:
            _take_record(ri, blk, start == first, X, n, pid, covariance, loss, landscape, theta, data, h, c, e,
                         axis, edges, scale, Y, F, W, T, A1, A2, AL, sizes, shifts, counts, snap)
            ri += 1
        for step in range(step0, step0 + n_steps):
            if n == 0:
                break
            if schedule != SCHEDULE_CONSTANT:
                eta = learning_rate(schedule, lr_params, step)
                scale_noise = np.sqrt(2.0 * temperature * eta)
            _step(S, X, G, R, T, Z, IDX, OK, n, code, theta, data, source, batch, replace, noise, eta,
                  scale_noise, limit)
            n = _retire_diverged(S, X, pid, hit, OK, n, x, states, first_hit, diverged_at, target, step + 1)
            if target != TARGET_NONE:
                _record_passage(X, hit, OK, n, target, target_lo, target_hi, step + 1)
            if ri < n_rec and rec_steps[ri] == step + 1:
                _take_record(ri, blk, start == first, X, n, pid, covariance, loss, landscape, theta, data, h, c,
                             e, axis, edges, scale, Y, F, W, T, A1, A2, AL, sizes, shifts, counts, snap)
                ri += 1
        _unload(start, size, n, S, X, pid, hit, x, states, first_hit, target)
    for r in range(n_rec):
        lanes_finish(A1[r], A2[r], AL[r], firsts[r, blk], seconds[r, blk], losses[r, blk:blk + 1])


@jit(parallel=True)
def advance_block(lanes, x, states, first_hit, diverged_at, code, theta, data, source, batch, replace, schedule,
                  lr_params, noise, temperature, target, target_lo, target_hi, limit, step0, n_steps, rec_steps,
                  covariance, loss, h, c, e, axis, edges, scale, sizes, shifts, firsts, seconds, losses, counts,
                  snap):
    """Advance every live particle from step `step0` by `n_steps` updates in place, in blocks of BLOCK
    particles (the parallel work items) run `lanes` particles at a time, for the configurations `covers`
    accepts; arguments and results as `particles.kernel.advance`. At each step of rec_steps (increasing,
    in step0..step0+n_steps; step0 itself records the state before the first step) the partial sums of the
    observables (`observables`: covariance and loss if asked, histogram of coordinate `axis` over `edges`,
    scale = bins / (edges[-1] - edges[0])) of every block go to sizes, shifts, firsts, seconds, losses,
    counts [record, block, ...] (zeroed by the caller), and the first snap.shape[1] particles to snap.
    Records count live particles only (a record after a divergence is not the whole cloud's).

    The landscape code, gradient source and noise kind are compile-time constants (`literally`)."""
    literally(code)
    literally(source)
    literally(noise)
    n_particles = x.shape[0]
    for g in prange((n_particles + BLOCK - 1) // BLOCK):
        _advance_blocks(lanes, g * BLOCK, min(n_particles, (g + 1) * BLOCK), x, states, first_hit,
                        diverged_at, code, theta, data, source, batch, replace, schedule, lr_params, noise,
                        temperature, target, target_lo, target_hi, limit, step0, n_steps, rec_steps, covariance,
                        loss, h, c, e, axis, edges, scale, sizes, shifts, firsts, seconds, losses, counts, snap)
