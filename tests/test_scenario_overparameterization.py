"""overparameterization small preset through the CLI: training loss at the end decreases with width, the widest
network fits random labels far better than the narrowest, and the stored NTK-linearized curve starts at the
measured loss; the NTK of the two-layer net equals J J^T from the kernel's gradients; bad widths exit 2."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_scenario

import sgdsim
from sgdsim.cli import main
from sgdsim.networks import Architecture, Loss, init_params, net_for, teacher_classification
from sgdsim.scenarios import overparameterization as O


def test_small_preset_wider_trains_faster_and_fits_random_labels(tmp_path):
    out = run_scenario("overparameterization", tmp_path / "op.h5")
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
