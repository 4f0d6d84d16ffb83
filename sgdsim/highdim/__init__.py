"""Exact high-dimensional theories of SGD: committee machines (`committee`, re-exported here) and risk
curves of SGD on least squares (`risk`).
"""
from .committee import (generalization_error, SOURCE, Teacher, teacher, initial_students, order_parameters,
                        generalization_error_gradient, Curves, ode, symmetric_fixed_point, escape_rate,
                        escape_time, simulate)

__all__ = ["generalization_error", "SOURCE", "Teacher", "teacher", "initial_students", "order_parameters",
           "generalization_error_gradient", "Curves", "ode", "symmetric_fixed_point", "escape_rate",
           "escape_time", "simulate"]
