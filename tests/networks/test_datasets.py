"""load_xy: NPZ, CSV and HDF5 round trips, the shipped default files, and one ParameterError line for every
problem (missing file, missing key, shape mismatch, unknown format, bad CSV, non-finite values); through the
CLI a bad data file is one line and exit code 2."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from sgdsim.cli import main
from sgdsim.networks.datasets import DATA_DIR, load_or_default, load_xy, save_xy
from sgdsim.errors import ParameterError


@pytest.mark.parametrize("suffix", [".npz", ".csv", ".h5"])
def test_round_trip(tmp_path, rng, suffix):
    X, Y = rng.standard_normal((7, 3)), rng.standard_normal((7, 2))
    path = save_xy(tmp_path / f"d{suffix}", X, Y)
    X2, Y2 = load_xy(path)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(Y2, Y)


def test_one_dimensional_targets_and_hdf5_group(tmp_path, rng):
    path = tmp_path / "g.hdf5"
    with h5py.File(path, "w") as f:
        g = f.create_group("train")
        g["X"], g["Y"] = rng.standard_normal((5, 2)), np.arange(5.0)
    X, Y = load_xy(f"{path}:train")
    assert X.shape == (5, 2) and Y.shape == (5, 1)


def test_shipped_defaults_load():
    for name, shape in (("lp_regression.npz", (256, 12)), ("hierarchy.npz", (8, 8))):
        X, Y, source = load_or_default("", name)
        assert X.shape == shape and source == str(DATA_DIR / name)
        assert (DATA_DIR / name).stat().st_size < 200_000


@pytest.mark.parametrize("make, fragment", [
    (lambda p: None, "no such data file"),
    (lambda p: np.savez(p, X=np.ones((3, 2))), "no array Y \\(has: X\\)"),
    (lambda p: np.savez(p, X=np.ones((3, 2)), Y=np.ones(4)), "X has 3 rows but Y has 4"),
    (lambda p: np.savez(p, X=np.ones((3, 2)), Y=np.array([1.0, np.nan, 2.0])), "NaN or inf"),
    (lambda p: np.savez(p, X=np.ones((3, 2, 2)), Y=np.ones(3)), "must be 1-D or 2-D"),
    (lambda p: p.write_bytes(b"not a zip file"), "cannot read npz data"),
])
def test_npz_errors(tmp_path, make, fragment):
    path = tmp_path / "d.npz"
    make(path)
    with pytest.raises(ParameterError, match=fragment) as info:
        load_xy(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_other_format_errors(tmp_path):
    h5 = tmp_path / "d.h5"
    with h5py.File(h5, "w") as f:
        f["X"] = np.ones((3, 2))
    with pytest.raises(ParameterError, match="no dataset Y \\(has: X\\)"):
        load_xy(h5)
    csv = tmp_path / "d.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(ParameterError, match="header needs columns named x... and y..."):
        load_xy(csv)
    csv.write_text("x0,y0\n1,2\n3,oops\n")
    with pytest.raises(ParameterError, match="bad CSV row"):
        load_xy(csv)
    with pytest.raises(ParameterError, match="unknown data format '.txt' \\(valid: .npz, .csv, .h5, .hdf5\\)"):
        load_xy(tmp_path / "d.txt")


def test_cli_reports_a_missing_data_file_in_one_line(tmp_path, capsys):
    code = main(["run", "saxe-modes", "--set", f"data={tmp_path / 'none.npz'}", "--out", str(tmp_path / "x.h5"),
                 "--quiet", "--no-plot"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "none.npz: no such data file" in err[0], err
