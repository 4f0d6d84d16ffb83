"""The particle engine room: the scalar kernel (`kernel`), the kernel vectorized across particles (`block`),
in-kernel observables, landscape kernels, the NumPy twin (`reference`) and `ParticleSolver` (`solver`).
"""
