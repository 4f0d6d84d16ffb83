"""noise-stability small preset through the CLI at seeds 0 and 1: noise injected into the trained network
attenuates up the layers (and not at initialization), training raises the layer cushion, and the one-layer
prediction E|W eta|^2/|z|^2 = eps^2/(n mu^2) holds within the family-wise bound; the claims fail against a wrong
noise size and with the trained and initial networks swapped; bad depth exits 2."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_scenario

import sgdsim
from sgdsim.cli import main
from sgdsim.networks.training import Architecture, init_params
from sgdsim.scenarios import noise_stability as S


def _measured(stored) -> dict:
    """The claims' measurements, read back from the stored claims (their full arrays)."""
    c = {x.name: x for x in stored}
    out = {}
    for label in ("trained", "init"):
        out[label] = {"ratio": c[f"one_layer_{label}"].measured, "ratio_se": c[f"one_layer_{label}"].stderr,
                      "output": c[f"noise_attenuates_{label}"].measured,
                      "output_se": c[f"noise_attenuates_{label}"].stderr}
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_small_preset_noise_attenuates_in_the_trained_network(tmp_path, seed):
    out = run_scenario("noise-stability", tmp_path / "ns.h5", "--seed", seed)
    with sgdsim.open(out) as run:
        comp = run.comparison
        eps = comp["eps"]
        assert comp["trained_noise_at_output_from_layer1"] < 0.7 * eps
        assert comp["init_noise_at_output_from_layer1"] > comp["trained_noise_at_output_from_layer1"] * 2
        assert comp["trained_cushion_mean"] > 1.3 * comp["init_cushion_mean"]
        assert comp["trained_one_layer_zscore_max"] < 5 and comp["init_one_layer_zscore_max"] < 5
        rel = run.element("trained_relative_noise").value[0]
        assert rel.shape == (3, 4) and np.isnan(rel[1, 0]) and rel[0, 0] == eps
        stored = run.claims
        cushion = {label: run.element(f"{label}_cushion").value[0] for label in ("trained", "init")}
    assert [c.name for c in stored] == ["one_layer_trained", "one_layer_init", "noise_attenuates_trained",
                                        "noise_attenuates_init", "training_raises_cushion"]
    assert all(c.met for c in stored), [(c.name, c.verdict, c.score) for c in stored]
    measured = _measured(stored)
    se = np.asarray(stored[-1].stderr) / np.sqrt(2)   # half the stored variance each: their hypot is the stored se
    for label in ("trained", "init"):
        measured[label] |= {"cushion": cushion[label], "cushion_se": se}
    theory = {"ratio": 1.0, "eps": eps}
    assert all(c.met for c in S.claims(measured, theory))
    # noise 20% larger or smaller than injected: the one-layer claims fail
    for factor in (0.8, 1.2):
        wrong = [c.name for c in S.claims(measured, {**theory, "ratio": factor ** 2}) if not c.met]
        assert wrong == ["one_layer_trained", "one_layer_init"]
    # the trained and the initial network swapped (training would make the net noise-sensitive)
    swapped = {"trained": measured["init"], "init": measured["trained"]}
    assert [c.name for c in S.claims(swapped, theory) if not c.met] == [
        "noise_attenuates_trained", "noise_attenuates_init", "training_raises_cushion"]


def test_injection_through_identity_layers_keeps_the_relative_size():
    """A linear-in-effect network (positive activations, identity weights, zero biases) passes noise unchanged
    while it stays positive: the relative perturbation stays eps at every layer above."""
    arch = Architecture((4, 4, 4, 1), "relu")
    w = init_params(arch, 1, seed=0)[0]
    layers = S.layers(arch, w)
    for W, b in layers[:2]:
        W[:] = np.eye(4)
        b[:] = 0.0
    X = np.full((3, 4), 10.0)
    rel, se = S.inject(arch, w, X, 1e-3, np.random.default_rng(0))
    np.testing.assert_allclose(rel[0, :2], 1e-3, rtol=1e-12)


def test_bad_depth_is_one_line_exit_2(tmp_path, capsys):
    code = main(["run", "noise-stability", "--set", "depth=1", "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "parameter depth must be at least 2" in err[0]
