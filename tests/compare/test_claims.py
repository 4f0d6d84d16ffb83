"""Claims: the verdict of each test kind, non-finite inputs, storage under /claims (h5py, pandas, xarray),
and `sgdsim check` exit codes (0 all met, 1 one not met, 2 bad input)."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

import sgdsim
from sgdsim.compare.claims import Claim, all_met, familywise_z, table
from sgdsim.errors import ParameterError
from tests.cli_helpers import sgdsim_cli


def claim(**kw):
    base = dict(name="c", statement="s", measured=1.0, predicted=1.0, test="z", tolerance=3.0, stderr=0.1)
    return Claim(**(base | kw))


@pytest.mark.parametrize("kw, verdict", [
    (dict(measured=1.29), "holds"), (dict(measured=1.31), "fails"), (dict(measured=0.69), "fails"),
    (dict(test="rel", tolerance=0.1, stderr=None, measured=1.09), "holds"),
    (dict(test="rel", tolerance=0.1, stderr=None, measured=1.11), "fails"),
    (dict(test="abs", tolerance=0.5, stderr=None, measured=1.4), "holds"),
    (dict(test="abs", tolerance=0.5, stderr=None, measured=0.4), "fails"),
    (dict(test="less", tolerance=0.0, stderr=None, measured=0.9), "holds"),
    (dict(test="less", tolerance=2.0, stderr=0.1, measured=0.9), "fails"),   # 0.9 + 0.2 is not < 1
    (dict(test="greater", tolerance=2.0, stderr=0.1, measured=1.3), "holds"),
    (dict(test="greater", tolerance=2.0, stderr=0.1, measured=1.1), "fails"),
    (dict(measured=np.array([1.0, 1.2, 1.35])), "fails"),   # one element out: the claim fails
    (dict(measured=np.array([1.0, 1.2, 0.75])), "holds"),
    (dict(measured=float("nan")), "undetermined"), (dict(measured=np.array([1.0, np.inf])), "undetermined"),
    (dict(stderr=0.0), "undetermined"),
])
def test_verdicts(kw, verdict):
    assert claim(**kw).verdict == verdict


def test_expected_failure_is_met_only_when_it_fails():
    assert claim(measured=2.0, expected="fails").met
    assert not claim(measured=1.0, expected="fails").met
    assert not claim(measured=float("nan"), expected="fails").met   # a diverged run meets nothing


@pytest.mark.parametrize("kw, words", [(dict(test="t"), "test must be one of"), (dict(expected="maybe"), "expected"),
                                       (dict(stderr=None), "needs a standard error"), (dict(name="a/b"), "name"),
                                       (dict(measured=np.ones(3), predicted=np.ones(2)), "do not broadcast"),
                                       (dict(tolerance=-1.0), "tolerance")])
def test_bad_claims_are_refused_in_one_line(kw, words):
    with pytest.raises(ParameterError, match=words):
        claim(**kw)


def test_familywise_bound():
    assert familywise_z(1, 0.05) == pytest.approx(1.959964, abs=1e-6)
    assert familywise_z(100, 0.01) == pytest.approx(3.8906, abs=1e-4)


def _write(path, claims):
    with sgdsim.RunWriter(path, scenario="test", params={}, seed=0) as writer:
        writer.claims(*claims)


def test_claims_round_trip_and_read_without_sgdsim(tmp_path):
    claims = [claim(name="a", measured=1.2), claim(name="b", measured=np.array([1.0, 1.5]), expected="fails"),
              claim(name="c", test="less", stderr=None, measured=0.5, source="paper, eq. 3")]
    _write(tmp_path / "r.h5", claims)
    back = sgdsim.open(tmp_path / "r.h5").claims
    assert [c.name for c in back] == ["a", "b", "c"]
    assert [c.verdict for c in back] == ["holds", "fails", "holds"] and all_met(back)
    np.testing.assert_array_equal(back[1].measured, [1.0, 1.5])
    assert back[2].stderr is None and back[2].source == "paper, eq. 3"
    with h5py.File(tmp_path / "r.h5", "r") as f:   # plain h5py: columns along 'claim'
        g = f["claims"]
        assert list(g["verdict"].asstr()[()]) == ["holds", "fails", "holds"]
        assert g["measured"][1] == 1.5 and g["score"][1] == pytest.approx(5.0)
        np.testing.assert_array_equal(g["arrays/b/measured"][()], [1.0, 1.5])
    pd = pytest.importorskip("pandas")
    with h5py.File(tmp_path / "r.h5", "r") as f:
        frame = pd.DataFrame({k: f["claims"][k].asstr()[()] if h5py.check_string_dtype(f["claims"][k].dtype)
                              else f["claims"][k][()] for k in ("name", "verdict", "met")})
    assert frame["met"].all() and list(frame["name"]) == ["a", "b", "c"]
    xr = pytest.importorskip("xarray")
    ds = xr.open_dataset(tmp_path / "r.h5", engine="h5netcdf", group="claims")
    assert ds.sizes["claim"] == 3 and list(ds["expected"].values) == ["holds", "fails", "holds"]
    ds.close()


def test_repeated_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unique"):
        _write(tmp_path / "r.h5", [claim(name="a"), claim(name="a")])


def test_table_marks_what_is_not_met():
    text = table([claim(name="good"), claim(name="bad", measured=5.0)])
    assert "NOT MET" in text and "1 of 2 claims met: bad" in text


def test_check_exit_codes(tmp_path):
    _write(tmp_path / "ok.h5", [claim(name="a")])
    _write(tmp_path / "bad.h5", [claim(name="a", measured=5.0)])
    (tmp_path / "corrupt.h5").write_bytes(b"not an HDF5 file")
    ok = sgdsim_cli("check", tmp_path / "ok.h5")
    assert ok.returncode == 0 and "1 of 1 claims met" in ok.stdout
    bad = sgdsim_cli("check", tmp_path / "ok.h5", tmp_path / "bad.h5")
    assert bad.returncode == 1 and "NOT MET" in bad.stdout
    corrupt = sgdsim_cli("check", tmp_path / "corrupt.h5")
    assert corrupt.returncode == 2 and len(corrupt.stderr.strip().splitlines()) == 1
    missing = sgdsim_cli("check", tmp_path / "nope.h5")
    assert missing.returncode == 2
