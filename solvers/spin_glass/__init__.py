"""The spherical p-spin: couplings and gradient kernels (`pspin`) and the Cugliandolo–Kurchan equations
(`cugliandolo_kurchan`).
"""
