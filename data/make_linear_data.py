"""Make the small data sets of the deep-linear scenarios (deterministic: run it and the files are rebuilt
bit for bit by the same NumPy version).

    python data/make_linear_data.py            # writes data/lp_regression.npz and data/hierarchy.npz

lp_regression.npz (deep-linear-acceleration): n = 256 examples, d = 12 features, one output.
    X = sqrt(n) Q diag(sqrt(h)) V^T with Q (n, d) and V (d, d) random orthonormal, so X^T X / n has the
    eigenvalues h = geomspace(1, 1/100, 12) exactly (condition number 100); y = X w + 0.1 z with |w| = 3.
    A stand-in for the ill-conditioned UCI regression sets of Arora, Cohen & Hazan 2018 (sec. 6).
hierarchy.npz (saxe-modes): the 8 items of a three-level binary tree (Saxe, McClelland & Ganguli 2019,
    "A mathematical theory of semantic development", Fig. 3): X = sqrt(8) I_8 (one-hot, whitened so that
    X^T X / n = I), Y (8, 15) with feature k = 1 when the item lies under tree node k (root, 2 branches,
    4 twigs, 8 leaves). The singular values of Sigma_yx come in levels of multiplicity 1, 1, 2, 4.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def lp_regression(seed: int = 20180201, n: int = 256, d: int = 12, condition: float = 100.0,
                  norm: float = 3.0, noise: float = 0.1):
    rng = np.random.default_rng(seed)
    h = np.geomspace(1.0, 1.0 / condition, d)
    q, _ = np.linalg.qr(rng.standard_normal((n, d)))
    v, _ = np.linalg.qr(rng.standard_normal((d, d)))
    X = np.sqrt(n) * (q * np.sqrt(h)) @ v.T
    w = rng.standard_normal(d)
    w *= norm / np.linalg.norm(w)
    Y = (X @ w + noise * rng.standard_normal(n))[:, None]
    return X, Y


def hierarchy(levels: int = 3):
    items = 2 ** levels
    X = np.sqrt(items) * np.eye(items)
    features = []
    for level in range(levels + 1):
        size = items // 2 ** level           # items under each node of this level
        for node in range(2 ** level):
            f = np.zeros(items)
            f[node * size:(node + 1) * size] = 1.0
            features.append(f)
    return X, np.array(features).T


if __name__ == "__main__":
    for name, (X, Y) in (("lp_regression", lp_regression()), ("hierarchy", hierarchy())):
        path = HERE / f"{name}.npz"
        np.savez_compressed(path, X=X, Y=Y)
        print(f"{path}: X {X.shape}, Y {Y.shape}, {path.stat().st_size} bytes")
