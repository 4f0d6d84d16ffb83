"""overparameterization small preset through the CLI at seeds 0 and 1: training loss at the end decreases with
width, the widest network fits random labels far better than the narrowest, and the stored NTK-linearized
curve starts at the measured loss; the claims are met and fail against a wrong learning rate, a lazy network
and the reversed width order; the NTK of the two-layer net equals J J^T from the kernel's gradients; bad widths
exit 2."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_scenario

import sgdsim
from sgdsim.cli import main
from sgdsim.networks.training import Architecture, Loss, init_params, net_for, teacher_classification
from sgdsim.scenarios import overparameterization as O


def _inputs(run, lr_factor: float = 1.0):
    """The claims' measurements from a run, and the linearized theory recomputed at lr_factor x the run's lr."""
    p, widths = run.params, [int(h) for h in run.attrs["widths"]]
    data = teacher_classification(p["examples"], p["test_examples"], p["dim"], run.seed)
    y = 2.0 * data.labels - 1.0
    measured, theory = {"loss": {}, "final": {}, "random": {}}, {"ntk": {}, "faster": max(widths)}
    for h in widths:
        el = run.element(f"w{h}_train_loss")
        measured["loss"][h], measured["final"][h] = el.value.mean(axis=1), el.value[-1]
        measured["random"][h] = run.element(f"w{h}_random_train_error").value[-1]
        arch = Architecture((p["dim"], h, 1), "relu")
        theory["ntk"][h] = O.linearized_loss(arch, init_params(arch, p["members"], run.seed + h), data.X, y,
                                             lr_factor * p["lr"], el.step)
    return measured, theory


def _not_met(measured, theory):
    return [c.name for c in O.claims(measured, theory) if not c.met]


@pytest.mark.parametrize("seed", [0, 1])
def test_small_preset_wider_trains_faster_and_fits_random_labels(tmp_path, seed):
    out = run_scenario("overparameterization", tmp_path / "op.h5", "--seed", seed)
    with sgdsim.open(out) as run:
        comp = run.comparison
        widths = [int(h) for h in run.attrs["widths"]]
        assert widths == [4, 16, 128] and comp["train_loss_decreases_with_width"] == 1
        finals = [comp[f"w{h}_train_loss_final"] for h in widths]
        assert finals[-1] < 0.7 * finals[0]
        assert comp["w128_random_train_error_final"] < 0.15 < comp["w4_random_train_error_final"]
        for h in widths:
            measured, theory = run.element(f"w{h}_train_loss"), run.theory(f"w{h}_ntk_loss")
            assert measured.value[0].mean() == pytest.approx(theory.value[0], rel=1e-10)
            assert list(theory.step) == list(measured.step)
        stored = run.claims
        assert [c.name for c in stored] == ["ntk_first_record_w4", "ntk_first_record_w16", "ntk_first_record_w128",
                                            "ntk_last_record_w128", "wider_trains_faster", "wider_fits_random_labels"]
        assert all(c.met for c in stored), [(c.name, c.verdict, c.score) for c in stored]
        measured, theory = _inputs(run)
        np.testing.assert_allclose(theory["ntk"][128], run.theory("w128_ntk_loss").value, rtol=1e-12)
        assert _not_met(measured, theory) == []
        # a wrong learning rate (half the run's) in the linearization: the widest net's first record fails
        assert _not_met(measured, _inputs(run, lr_factor=0.5)[1]) == ["ntk_first_record_w128"]
    # a network that stayed lazy (measured = its linearization) would meet the expected failure: not as expected
    lazy = {**measured, "loss": {**measured["loss"], 128: theory["ntk"][128]}}
    assert _not_met(lazy, theory) == ["ntk_last_record_w128"]
    # the reversed theory (the narrowest trains fastest): both width claims fail
    assert _not_met(measured, {**theory, "faster": 4}) == ["wider_trains_faster", "wider_fits_random_labels"]


def test_ntk_equals_gram_of_per_example_gradients():
    """K(x, x') = grad f(x) . grad f(x'): with the square loss and target f(x) - 1, an example's loss gradient
    is grad f(x) itself."""
    data = teacher_classification(6, 10, 3, seed=0)
    arch = Architecture((3, 7, 1), "relu")
    w = init_params(arch, 1, seed=2)
    f = net_for(arch, Loss("square"), data).outputs(w, data.X)[0, :, 0]
    J = []
    for i in range(6):
        net = net_for(arch, Loss("square"), data)
        net.X, net.Y = data.X[i:i + 1], np.array([[f[i] - 1.0]])
        J.append(net.loss_grad(w)[1][0])
    J = np.array(J)
    np.testing.assert_allclose(O.ntk_two_layer(arch, w[0], data.X), J @ J.T, rtol=1e-12)


def test_bad_widths_are_one_line_exit_2(tmp_path, capsys):
    code = main(["run", "overparameterization", "--set", "widths=4,0", "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "parameter widths" in err[0] and "0 is not" in err[0]
