"""Load a data set (inputs X, targets Y) from NPZ, CSV or HDF5; every problem is one ParameterError line.

- NPZ: arrays ``X`` and ``Y`` (``np.savez(path, X=..., Y=...)``).
- HDF5 (.h5, .hdf5): datasets ``X`` and ``Y`` at the root (or under the group given as ``path.h5:group``).
- CSV: a header row naming the columns; columns ``x...`` (names starting with "x") are inputs and ``y...``
  are targets, e.g. ``x0,x1,x2,y0``. Lines starting with # are comments.

X is returned as (n, d_in) float64 and Y as (n, d_out) float64 (a 1-D Y becomes one column).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ParameterError

__all__ = ["load_xy", "save_xy", "load_or_default", "FORMATS", "DATA_DIR"]

FORMATS = {".npz": "npz", ".csv": "csv", ".h5": "hdf5", ".hdf5": "hdf5"}


def _finish(X, Y, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"{where}: X and Y must be numeric arrays") from None
    if X.ndim == 1:
        X = X[:, None]
    if Y.ndim == 1:
        Y = Y[:, None]
    if X.ndim != 2 or Y.ndim != 2:
        raise ParameterError(f"{where}: X and Y must be 1-D or 2-D, got shapes {X.shape} and {Y.shape}")
    if len(X) != len(Y):
        raise ParameterError(f"{where}: X has {len(X)} rows but Y has {len(Y)}")
    if len(X) == 0 or X.shape[1] == 0 or Y.shape[1] == 0:
        raise ParameterError(f"{where}: empty data (X {X.shape}, Y {Y.shape})")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(Y))):
        raise ParameterError(f"{where}: X or Y holds NaN or inf")
    return X, Y


def load_xy(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(X, Y) from an NPZ, CSV or HDF5 file (format from the suffix; ``file.h5:group`` for an HDF5 group)."""
    text = os.fspath(path)
    group = ""
    if ":" in Path(text).name and Path(text).suffix.split(":")[0] in (".h5", ".hdf5"):
        text, group = text.rsplit(":", 1)
    p = Path(text)
    kind = FORMATS.get(p.suffix.lower())
    if kind is None:
        raise ParameterError(f"{p}: unknown data format {p.suffix!r} (valid: {', '.join(FORMATS)})")
    if not p.is_file():
        raise ParameterError(f"{p}: no such data file")
    try:
        if kind == "npz":
            with np.load(p, allow_pickle=False) as f:
                missing = [k for k in ("X", "Y") if k not in f.files]
                if missing:
                    raise ParameterError(f"{p}: no array {' or '.join(missing)} (has: {', '.join(f.files) or 'none'})")
                return _finish(f["X"], f["Y"], str(p))
        if kind == "hdf5":
            import h5py
            with h5py.File(p, "r") as f:
                g = f[group] if group else f
                missing = [k for k in ("X", "Y") if k not in g]
                if missing:
                    raise ParameterError(f"{p}{':' + group if group else ''}: no dataset {' or '.join(missing)} "
                                         f"(has: {', '.join(g.keys()) or 'none'})")
                return _finish(g["X"][()], g["Y"][()], str(p))
        return _load_csv(p)
    except ParameterError:
        raise
    except Exception as e:  # corrupt or unreadable file: one line naming it
        raise ParameterError(f"{p}: cannot read {kind} data ({type(e).__name__}: "
                             f"{' '.join(str(e).split())[:200]})") from None


def _load_csv(p: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(p, encoding="utf-8") as f:
        lines = [ln for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise ParameterError(f"{p}: empty CSV file")
    header = [h.strip().lower() for h in lines[0].split(",")]
    xcols = [i for i, h in enumerate(header) if h.startswith("x")]
    ycols = [i for i, h in enumerate(header) if h.startswith("y")]
    if not xcols or not ycols:
        raise ParameterError(f"{p}: the CSV header needs columns named x... and y... (got {','.join(header)})")
    try:
        data = np.loadtxt(lines[1:], delimiter=",", ndmin=2)
    except ValueError as e:
        raise ParameterError(f"{p}: bad CSV row ({' '.join(str(e).split())[:200]})") from None
    if data.shape[1] != len(header):
        raise ParameterError(f"{p}: rows have {data.shape[1]} columns, the header {len(header)}")
    return _finish(data[:, xcols], data[:, ycols], str(p))


def save_xy(path: str | os.PathLike, X: np.ndarray, Y: np.ndarray) -> Path:
    """Write (X, Y) in the format given by the suffix (the inverse of `load_xy`)."""
    p = Path(path)
    X, Y = _finish(X, Y, str(p))
    kind = FORMATS.get(p.suffix.lower())
    if kind == "npz":
        np.savez_compressed(p, X=X, Y=Y)
    elif kind == "hdf5":
        import h5py
        with h5py.File(p, "w") as f:
            f.create_dataset("X", data=X)
            f.create_dataset("Y", data=Y)
    elif kind == "csv":
        header = ",".join([f"x{i}" for i in range(X.shape[1])] + [f"y{i}" for i in range(Y.shape[1])])
        np.savetxt(p, np.hstack([X, Y]), delimiter=",", header=header, comments="", fmt="%.17g")
    else:
        raise ParameterError(f"{p}: unknown data format {p.suffix!r} (valid: {', '.join(FORMATS)})")
    return p


DATA_DIR = Path(__file__).resolve().parents[2] / "data"   # the data/ folder of the source checkout


def load_or_default(path: str | os.PathLike, default: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(X, Y, source): the user's file, or ``data/<default>`` (shipped with the source) when path is empty."""
    source = Path(path) if str(path) else DATA_DIR / default
    X, Y = load_xy(source)
    return X, Y, str(source)
