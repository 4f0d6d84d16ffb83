"""The temperature scenario: its small preset through the CLI (the exact prediction holds within 5 SE at every
stable point, the continuous one fails at the largest lr), bad grids (one line, exit 2), and its exact moment
maps against the library's stationary covariance and against brute-force enumeration of minibatches."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from cli_helpers import run_scenario

import sgdsim
from sgdsim.particles import minibatch_moments as moments
from sgdsim.particles import theory
from sgdsim.cli import main
from sgdsim.errors import ParameterError
from sgdsim.scenario import parse_list
from sgdsim.scenarios import temperature as T


def test_small_preset_matches_exact_theory_and_beats_continuous(tmp_path):
    out = run_scenario("temperature", tmp_path / "tmp" / "x.h5")
    assert out.exists()
    with sgdsim.open(out) as run:
        assert run.status == "complete" and run.scenario == "temperature"
        comp = run.comparison
        for key in ("trace_zscore_exact_max", "trace_zscore_continuous_max", "trace_rel_error_exact_max",
                    "trace_rel_error_discrete_max", "trace_rel_error_continuous_max", "covariance_zscore_exact_max"):
            assert np.isfinite(comp[key]), key
        tr = run.element("trace_measured")
        lrs, batches = list(tr.coords["lr"]), list(tr.coords["batch"])
        assert lrs == [0.1, 0.3, 1.0] and batches == [1, 16]
        measured, se = tr.value[0], run.element("trace_stderr").value[0]
        exact = run.theory("trace_exact").value
        continuous = run.theory("trace_continuous").value
        # lr=1, B=1 is past the stability edge (about 0.7): skipped, and said so
        assert comp["unstable"] == "lr=1 B=1" and comp["points_unstable"] == 1
        assert np.isnan(measured[2, 0]) and run.element("steps").value[0][2, 0] == 0
        ok = np.isfinite(measured)
        assert ok.sum() == 5 and comp["points_heavy_tailed"] == 0  # SEs are meaningful at every point
        z_exact = np.abs(measured - exact)[ok] / se[ok]
        assert np.all(z_exact < 5), z_exact
        assert comp["trace_zscore_exact_max"] == pytest.approx(z_exact.max())
        # the statistical power is there: at lr=1, B=16 the continuous prediction is many SE off
        assert abs(measured[2, 1] - continuous[2, 1]) / se[2, 1] > 5
        cov = run.element("covariance_measured").value[0]
        assert cov.shape == (3, 2, 2, 2) and np.allclose(np.trace(cov, axis1=2, axis2=3)[ok], measured[ok])
        assert "Mandt" in run.theory("trace_continuous").attrs["source"]
        assert all(c.met for c in run.claims), [(c.name, c.verdict, c.expected) for c in run.claims]
        by = {c.name: c for c in run.claims}
        assert by["exact_trace"].verdict == "holds" and by["continuous_trace"].expected == "fails"
        measured, theory = _claim_inputs(run)
    # wrong theories flip the verdicts: the discrete prediction in place of the exact one; the exact trace at a
    # temperature lr/B 10% too high; and a world where the continuous approximation were right (measured traces
    # equal to it) fails the claims that it breaks and that the exact one holds
    wrong = {**theory, "trace": {**theory["trace"], "exact": theory["trace"]["discrete"]}}
    assert not {c.name: c for c in T.claims(measured, wrong)}["exact_trace"].met
    ou_world = {**measured, "trace": theory["trace"]["continuous"]}
    flipped = {c.name: c for c in T.claims(ou_world, theory)}
    assert not flipped["continuous_trace"].met and not flipped["exact_trace"].met
    hot = {**theory, "trace": {**theory["trace"], "exact": 1.1 * theory["trace"]["exact"]},
           "cov": {**theory["cov"], "exact": 1.1 * theory["cov"]["exact"]}}
    flipped = {c.name: c for c in T.claims(measured, hot)}
    assert not flipped["exact_trace"].met and not flipped["exact_covariance"].met


def _claim_inputs(run):
    """The measured and theory dicts of `temperature.claims`, rebuilt from a run file."""
    tr = run.element("trace_measured").value[0]
    rho4 = run.theory("moment_radius").value[..., 1]
    cov = {k: run.theory(f"covariance_{k}").value for k in T.PREDICTIONS}
    measured = {"trace": tr, "trace_se": run.element("trace_stderr").value[0],
                "cov": run.element("covariance_measured").value[0], "cov_se": run.element("covariance_stderr").value[0],
                "usable": np.isfinite(tr) & (rho4 < 1)}
    with np.errstate(invalid="ignore"):
        se_pred = np.sqrt(2 * np.einsum("...ij,...ji->...", cov["exact"], cov["exact"]) / run.params["particles"])
    theory = {"trace": {k: run.theory(f"trace_{k}").value for k in T.PREDICTIONS}, "cov": cov, "trace_se": se_pred}
    return measured, theory


def test_small_preset_claims_met_at_seed_1_with_800_examples(tmp_path):
    """Seed 1, and 800 examples (where the fourth-moment map used to stall): every claim met."""
    out = run_scenario("temperature", tmp_path / "s1.h5", "--seed", 1, "--set", "examples=800")
    with sgdsim.open(out) as run:
        assert run.status == "complete" and run.params["examples"] == 800
        assert run.claims and all(c.met for c in run.claims), [(c.name, c.verdict, c.expected) for c in run.claims]


@pytest.mark.parametrize("setting, fragments", [
    ("lrs=0.1,-2", ("parameter lrs", "positive numbers", "-2 is not")),
    ("batches=0", ("parameter batches", "integers >= 1", "0 is not")),
    ("batches=1000", ("batch 1000 is larger than the data", "64 examples")),
])
def test_bad_grid_is_one_line_exit_2(setting, fragments, tmp_path, capsys):
    # in process (the CLI's main, as the console script calls it): a subprocess would only add start-up time
    code = main(["run", "temperature", "--set", setting, "--out", str(tmp_path / "x.h5"), "--quiet"])
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sgdsim: error:") and "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not (tmp_path / "x.h5").exists()


def test_grid_lists_parse_sorted_and_reject_non_numbers():
    resolved = T.SCENARIO.resolve({"lrs": " 0.4, 0.1,0.1", "batches": "8,2"})
    assert parse_list(resolved["lrs"], float, 0) == [0.1, 0.4]
    assert parse_list(resolved["batches"], int, 1) == [2, 8]
    for bad, fragment in (("0.1,abc", "'abc' is not a number"), ("", "comma-separated"), ("0.1,inf", "inf is not")):
        with pytest.raises(ParameterError, match=fragment):
            T.SCENARIO.resolve({"lrs": bad})
    with pytest.raises(ParameterError, match="'1.5' is not an integer"):
        T.SCENARIO.resolve({"batches": "1.5"})


def test_data_have_the_requested_hessian():
    A, b = T.make_data(64, 3, 9.0, 0.5, seed=4)
    h = np.linalg.eigvalsh(A.T @ A / 64)
    np.testing.assert_allclose(h, [1 / 9, 1 / 3, 1.0], rtol=1e-12)
    assert np.abs(theory.least_squares_moments(A, b).noise_covariance).max() > 0


@pytest.mark.parametrize("replace", [True, False])
@pytest.mark.parametrize("batch", [1, 3])
def test_second_moment_map_fixed_point_is_the_library_covariance(replace, batch):
    A, b = T.make_data(12, 2, 3.0, 0.7, seed=1)
    n, d = A.shape
    lr = 0.4
    L = moments.moment_map(A, lr, batch, replace, order=2)
    k = 1 / batch if replace else (n - batch) / (batch * (n - 1))
    C = theory.least_squares_moments(A, b).noise_covariance
    S = np.linalg.lstsq(np.eye(d * d) - L, lr ** 2 * k * C.ravel(), rcond=None)[0].reshape(d, d)
    np.testing.assert_allclose(S, theory.sgd_stationary_covariance(A, b, lr, batch, replace), rtol=1e-10,
                               atol=1e-14)


@pytest.mark.parametrize("replace", [True, False])
@pytest.mark.parametrize("batch", [1, 2, 3])
def test_fourth_moment_map_equals_enumeration_of_every_minibatch(replace, batch):
    A, _ = T.make_data(6, 2, 2.0, 0.5, seed=2)
    n, d = A.shape
    lr = 0.5
    draws = (itertools.product(range(n), repeat=batch) if replace else itertools.permutations(range(n), batch))
    total, count = np.zeros((d ** 4, d ** 4)), 0
    for idx in draws:
        M = np.eye(d) - lr * A[list(idx)].T @ A[list(idx)] / batch
        MM = np.kron(M, M)
        total += np.kron(MM, MM)
        count += 1
    sym = moments.moment_map(A, 0.0, 1, True, order=4)  # lr = 0: E[I] restricted to symmetric tensors = projector
    np.testing.assert_allclose(moments.moment_map(A, lr, batch, replace, order=4), total / count @ sym, atol=1e-13)


def test_stability_edge_separates_stable_from_unstable():
    A, b = T.make_data(64, 2, 4.0, 0.5, seed=0)
    for batch in (1, 4):
        edge = moments.stability_edge(A, b, batch, True, hi=2.0)
        theory.sgd_stationary_covariance(A, b, edge * (1 - 1e-5), batch)
        with pytest.raises(ParameterError):
            theory.sgd_stationary_covariance(A, b, edge * (1 + 1e-5), batch)
        radius = moments.spectral_radius(moments.moment_map(A, edge, batch, True, order=2))
        assert radius == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("replace", [True, False])
def test_fourth_moment_map_at_800_examples_equals_the_double_sum_over_example_pairs(replace):
    """B = 2 at N = 800 (where the einsum implementation needed an N^2 d^8 loop per term): the map equals the
    plain average of M^(x 4) over every ordered pair of examples (i, j), M = I - lr (a_i a_i^T + a_j a_j^T)/2
    (pairs with i = j dropped without replacement), computed here by brute force in blocks of rows."""
    A, _ = T.make_data(800, 2, 4.0, 0.5, seed=3)
    n, d = A.shape
    lr = 0.3
    Z = np.eye(d)[None] - lr * A[:, :, None] * A[:, None, :]
    total, count = np.zeros((d,) * 8), 0
    for i in range(0, n, 100):
        M = (Z[i:i + 100, None] + Z[None, :]) / 2                        # (100, n, d, d)
        keep = np.ones(M.shape[:2], bool) if replace else (np.arange(i, i + 100)[:, None] != np.arange(n)[None])
        M = M[keep].reshape(-1, d * d)
        MM = (M[:, :, None] * M[:, None, :]).reshape(-1, d ** 4)         # rows: M (x) M, indices (a e b f)
        total += (MM.T @ MM).reshape((d,) * 8)                           # sum over pairs of M^(x 4)
        count += len(M)
    sym = moments.moment_map(A, 0.0, 1, True, order=4)
    expected = (total / count).transpose(0, 2, 4, 6, 1, 3, 5, 7).reshape(d ** 4, d ** 4) @ sym
    np.testing.assert_allclose(moments.moment_map(A, lr, 2, replace, order=4), expected, rtol=1e-10, atol=1e-13)


def test_fourth_moment_map_is_linear_in_the_number_of_examples():
    """O(N d^8): 5000 examples with d = 3 take milliseconds (the einsum implementation took minutes at N = 800;
    benchmarks/moments.py times both)."""
    import time

    A, _ = T.make_data(5000, 3, 4.0, 0.5, seed=0)
    start = time.perf_counter()
    moments.moment_map(A, 0.1, 4, False, order=4)
    assert time.perf_counter() - start < 2.0
