"""The spherical p-spin engine: descent on random landscapes (`descent`, re-exported here) and its theory
(`theory`: Cugliandolo–Kurchan, thresholds, complexity).
"""
from .descent import (DEFAULT_MAX_BYTES, METHODS, parse_mixture, memory_estimate, check_memory,
                      SphericalPSpin, spherical_pspin, random_starts, hessian_spectrum, record_steps,
                      Descent, metropolis_log_ratio, descend, write_trajectory)

__all__ = ["DEFAULT_MAX_BYTES", "METHODS", "parse_mixture", "memory_estimate", "check_memory",
           "SphericalPSpin", "spherical_pspin", "random_starts", "hessian_spectrum", "record_steps",
           "Descent", "metropolis_log_ratio", "descend", "write_trajectory"]
