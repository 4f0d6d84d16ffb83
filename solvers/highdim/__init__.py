"""Exact high-dimensional SGD dynamics: the committee-machine order-parameter ODEs (`committee_ode`), the online
teacher-student SGD that they describe (`committee_sgd`), and the Volterra equation for the risk of SGD on
least squares (`volterra`). Imports only numpy, numba and the engine room."""
