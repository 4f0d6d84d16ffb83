"""Deep linear networks: training by GD/SGD (`training`, re-exported here) and the theory (`theory`:
end-to-end ODE, Saxe sigmoids, Advani–Saxe).
"""
from .training import (end_to_end, ENGINES, loss, balanced_init, gaussian_init, balancedness,
                       balancedness_norm, Trajectory, factor_flow, end_to_end_flow, train_factors, OPTIMIZERS,
                       train_depth1, predict_loss_curve, lp_minimum)

__all__ = ["end_to_end", "ENGINES", "loss", "balanced_init", "gaussian_init", "balancedness",
           "balancedness_norm", "Trajectory", "factor_flow", "end_to_end_flow", "train_factors",
           "OPTIMIZERS", "train_depth1", "predict_loss_curve", "lp_minimum"]
