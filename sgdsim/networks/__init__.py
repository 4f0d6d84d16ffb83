"""Networks trained by SGD: ensembles of small networks (`training`, re-exported here) and the datasets they
learn (`datasets`).
"""
from .training import (FLUSH_SECONDS, Architecture, Loss, Optimizer, Dataset, teacher_classification,
                       with_label_noise, with_random_labels, net_for, init_params, layers, evaluate,
                       Recording, Training, train_ensemble)

__all__ = ["FLUSH_SECONDS", "Architecture", "Loss", "Optimizer", "Dataset", "teacher_classification",
           "with_label_noise", "with_random_labels", "net_for", "init_params", "layers", "evaluate",
           "Recording", "Training", "train_ensemble"]
