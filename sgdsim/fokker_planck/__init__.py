"""The Fokker–Planck engine's user side: the equation of SGD's density on a grid (`equation`, re-exported
here, so `sgdsim.fokker_planck.pde_density` works) and escape-rate theory (`escape`).
"""
from .equation import (Evolution, FokkerPlanck, problem, sde_coefficients, sme_order, EQUATIONS, sme_problem,
                       pde_density)

__all__ = ["Evolution", "FokkerPlanck", "problem", "sde_coefficients", "sme_order", "EQUATIONS",
           "sme_problem", "pde_density"]
