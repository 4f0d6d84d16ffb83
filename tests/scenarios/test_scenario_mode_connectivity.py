"""mode-connectivity small preset through the CLI at seeds 0 and 1: the barrier on the string-method path is
well below the straight-line barrier (Draxler et al. 2018), and the claims saying so are met and fail when the
straight line stands in for the optimized path, or the optimized path for the straight line; the arc-length
reparametrization is exact on a known curve; a bad number of images exits 2."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_scenario

import sgdsim
from sgdsim.cli import main
from sgdsim.scenarios import mode_connectivity as MC


@pytest.mark.parametrize("seed", [0, 1])
def test_small_preset_optimized_path_has_almost_no_barrier(tmp_path, seed):
    out = run_scenario("mode-connectivity", tmp_path / "mc.h5", "--seed", seed)
    with sgdsim.open(out) as run:
        comp = run.comparison
        assert comp["barrier_linear"] > 0.02
        assert comp["barrier_path"] < 0.25 * comp["barrier_linear"]
        line = run.element("linear_path_loss").value[0]
        assert line[0] == comp["loss_a"] and line[-1] == comp["loss_b"]
        barrier = run.element("string_barrier").value
        assert barrier[0] == comp["barrier_linear"] and barrier[-1] == comp["barrier_path"]
        stored = run.claims
    assert [c.name for c in stored] == ["path_barrier_small", "linear_barrier"] and all(c.met for c in stored)
    measured = {"path": comp["barrier_path"], "linear": comp["barrier_linear"],
                "ends": max(comp["loss_a"], comp["loss_b"])}
    theory = {"fraction": MC.BARRIER_FRACTION}
    assert all(c.met for c in MC.claims(measured, theory))
    # the straight line as "the optimized path" (no connecting path found), and the optimized path as "the
    # straight line" (no barrier to remove): each claim fails
    assert [c.met for c in MC.claims({**measured, "path": measured["linear"]}, theory)] == [False, True]
    assert [c.met for c in MC.claims({**measured, "linear": measured["path"]}, theory)][1] is False


def test_reparametrize_spaces_images_equally_along_the_path():
    path = np.array([[0.0, 0.0], [0.1, 0.0], [3.0, 0.0], [3.0, 1.0]])  # a bent path of length 4
    new = MC.reparametrize(path)
    np.testing.assert_allclose(new, [[0, 0], [4 / 3, 0], [8 / 3, 0], [3, 1]], atol=1e-12)
    d = MC.dense(new, 4)
    assert len(d) == 13 and np.allclose(d[1], [1 / 3, 0])


def test_bad_images_is_one_line_exit_2(tmp_path, capsys):
    code = main(["run", "mode-connectivity", "--set", "images=2", "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "parameter images must be at least 3" in err[0]
