"""The user side of network training: config validation (one-line errors), data sets with label noise and
random labels, the run-file record (shapes, clock = sum of learning rates, snapshots, sharpness), the
gradient-noise trace against per-example gradients of the NumPy twin, the SGD temperature against the
sampled variance of minibatch gradients (within 5 SE), reproducibility and divergence."""
from __future__ import annotations

import numpy as np
import pytest

import sgdsim
from sgdsim.particles.dynamics import Schedule
from sgdsim.errors import ParameterError
from sgdsim.networks.training import (Architecture, Dataset, Loss, Optimizer, Recording, init_params, net_for,
                             teacher_classification, train_ensemble, with_label_noise, with_random_labels)
from sgdsim.io.runfile import RunWriter
from sgdsim.solvers.networks import reference as R


@pytest.fixture(scope="module")
def data():
    return teacher_classification(40, 60, 3, seed=2)


@pytest.mark.parametrize("make, fragment", [
    (lambda: Architecture((3,)), "at least two positive integers"),
    (lambda: Architecture((3, 0, 1)), "at least two positive integers"),
    (lambda: Architecture((3, 4, 1), "sigmoid"), "unknown activation 'sigmoid' (valid: linear, relu, tanh)"),
    (lambda: Architecture((3, 4, 1), init_scale=0.0), "init_scale must be a number in (0, inf)"),
    (lambda: Loss("hinge"), "unknown loss 'hinge' (valid: square, cross-entropy)"),
    (lambda: Optimizer(lr=-1.0, batch=4), "lr must be a number in (0, inf)"),
    (lambda: Optimizer(lr=0.1, batch=0), "batch must be an integer >= 1"),
    (lambda: Optimizer(lr=0.1, batch=4, momentum=1.0), "momentum must be a number in [0, 1)"),
    (lambda: Optimizer(lr=0.1, batch=4, weight_decay=-1e-3), "weight_decay must be a number in [0, inf)"),
    (lambda: Recording(every=0), "recording every must be an integer >= 1"),
    (lambda: Recording(snapshot_members=-2), "snapshot_members must be an integer >= -1"),
    (lambda: Dataset(np.zeros((3, 2)), np.array([0, 1, 2]), np.zeros((1, 2)), np.array([0])),
     "labels must be integers in [0, 2)"),
    (lambda: Dataset(np.zeros((3, 2)), np.array([0, 1]), np.zeros((1, 2)), np.array([0])),
     "training set: X must be (N, d)"),
])
def test_bad_configs_raise_one_line(make, fragment):
    with pytest.raises(ParameterError) as info:
        make()
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("arch, kwargs, fragment", [
    (Architecture((4, 5, 1)), {}, "the network has 4 inputs but the data have 3 features"),
    (Architecture((3, 5, 3)), {}, "3 outputs; 2 classes need 2 (or 1 for two classes)"),
    (Architecture((3, 5, 1)), {"opt": Optimizer(lr=0.1, batch=41)}, "batch 41 is larger than the training set (40"),
    (Architecture((3, 5, 1)), {"params0": np.zeros((2, 3))}, "params0 must have shape (2, 26)"),
])
def test_mismatched_training_inputs_raise(arch, kwargs, fragment, data):
    opt = kwargs.pop("opt", Optimizer(lr=0.1, batch=4))
    with pytest.raises(ParameterError) as info:
        train_ensemble(arch, Loss(), opt, data, members=2, steps=1, seed=0, **kwargs)
    assert fragment in str(info.value)


def test_label_noise_flips_the_fraction_and_random_labels_ignore_inputs(data):
    noisy = with_label_noise(data, 0.25, seed=1)
    assert np.sum(noisy.labels != data.labels) == 10 and np.array_equal(noisy.labels_test, data.labels_test)
    big = teacher_classification(4000, 10, 3, seed=1)
    rnd = with_random_labels(big, seed=3)
    agree = np.mean(rnd.labels == big.labels)  # independent labels agree with probability 1/2
    assert abs(agree - 0.5) < 5 * np.sqrt(0.25 / 4000)
    with pytest.raises(ParameterError, match="label noise fraction must be a number in"):
        with_label_noise(data, 1.5, seed=0)


def test_init_is_lecun_with_zero_biases():
    arch = Architecture((50, 40, 1), init_scale=2.0)
    w = init_params(arch, 3, seed=0)
    (W, b), _ = R.unpack(w[0], arch.sizes)
    assert np.all(b == 0) and np.std(W) == pytest.approx(2.0 / np.sqrt(50), rel=0.05)


def test_record_layout_clock_snapshots_and_sharpness(tmp_path, data):
    arch = Architecture((3, 6, 1), "tanh")
    opt = Optimizer(lr=0.2, batch=5, momentum=0.5, schedule=Schedule("step", decay=0.5, every=10))
    rec = Recording(every=10, sharpness_every=20, sharpness_iters=5, snapshot_members=2, snapshot_every=20)
    with RunWriter(tmp_path / "r.h5", scenario="test", params={}, seed=1) as w:
        out = train_ensemble(arch, Loss("cross-entropy"), opt, data, members=3, steps=40, seed=1, recording=rec,
                             writer=w, prefix="a_")
    assert out.status == "complete" and out.steps_done == 40
    with sgdsim.open(tmp_path / "r.h5") as run:
        loss = run.element("a_train_loss")
        assert loss.value.shape == (5, 3) and list(loss.step) == [0, 10, 20, 30, 40]
        np.testing.assert_allclose(loss.time, [0, 2.0, 3.0, 3.5, 3.75])  # t = sum of lr: 10*0.2, +10*0.1, ...
        for name in ("a_test_loss", "a_train_error", "a_test_error", "a_grad_noise_trace", "a_sgd_temperature"):
            assert run.element(name).value.shape == (5, 3)
        sharp = run.element("a_sharpness")
        assert list(sharp.step) == [0, 20, 40] and np.all(np.isfinite(sharp.value))
        weights = run.element("a_weights", group="particles")
        assert weights.value.shape == (3, 2, arch.n_params) and list(weights.step) == [0, 20, 40]
        np.testing.assert_array_equal(weights.value[-1], out.params[:2])
        lossfn = net_for(arch, Loss("cross-entropy"), data).loss_grad(out.params)[0]
        np.testing.assert_array_equal(loss.value[-1], lossfn)


def test_noise_trace_and_sgd_temperature_against_sampled_minibatches(data):
    """tr C from the kernel's per-example second moment equals (1/N) sum |g_i - g|^2 from the twin; the
    minibatch gradient (without replacement) has E|g_B - g|^2 = tr C (N - B) / (B (N - 1)), checked on 4000
    sampled minibatches within 5 standard errors; the recorded temperature is lr/2 times that."""
    arch = Architecture((3, 8, 1), "relu")
    loss = Loss("square")
    w = init_params(arch, 1, seed=4)
    out = train_ensemble(arch, loss, Optimizer(lr=0.05, batch=4), data, members=1, steps=0, seed=0, params0=w)
    trace = out.history["grad_noise_trace"][2][0, 0]
    net = net_for(arch, loss, data)
    per = np.array([R.loss_grad(w[0], net.sizes, net.act, net.loss, net.X[i:i + 1], net.Y[i:i + 1])[1]
                    for i in range(len(net.X))])
    g = per.mean(axis=0)
    assert trace == pytest.approx(np.mean(np.sum((per - g) ** 2, axis=1)), rel=1e-10)
    rng = np.random.default_rng(7)
    n, b = len(net.X), 4
    dev = np.array([np.sum((per[rng.choice(n, b, replace=False)].mean(axis=0) - g) ** 2) for _ in range(4000)])
    expected = trace * (n - b) / (b * (n - 1))
    assert abs(dev.mean() - expected) < 5 * dev.std() / np.sqrt(len(dev))
    assert out.history["sgd_temperature"][2][0, 0] == pytest.approx(0.05 / 2 * expected, rel=1e-12)


def test_same_seed_same_record_and_members_differ(data):
    arch = Architecture((3, 5, 2), "relu")
    runs = [train_ensemble(arch, Loss("cross-entropy"), Optimizer(lr=0.1, batch=8), data, members=2, steps=30,
                           seed=5, recording=Recording(every=10, noise=False)) for _ in range(2)]
    assert np.array_equal(runs[0].params, runs[1].params)
    assert not np.array_equal(runs[0].params[0], runs[0].params[1])
    assert runs[0].history["train_loss"][2][-1].mean() < runs[0].history["train_loss"][2][0].mean()


def test_divergence_stops_the_run_naming_the_step(tmp_path, data):
    arch = Architecture((3, 5, 1), "linear")
    with RunWriter(tmp_path / "d.h5", scenario="test", params={}, seed=1) as w:
        out = train_ensemble(arch, Loss("square"), Optimizer(lr=30.0, batch=8), data, members=2, steps=500, seed=1,
                             recording=Recording(every=100), writer=w)
    assert out.status == "diverged" and out.steps_done < 500
    step = int(out.message.split("diverged at step ")[1].split()[0])
    assert 0 < step < 500 and "member" in out.message and "lower the learning rate" in out.message
    with sgdsim.open(tmp_path / "d.h5") as run:
        events = run.event("divergence")
        assert step in set(events.step.tolist())


def test_per_step_rates_replace_the_schedule(data):
    arch = Architecture((3, 4, 1), "relu")
    opt = Optimizer(lr=0.1, batch=4, schedule=Schedule("step", decay=0.5, every=5))
    kwargs = dict(members=2, steps=12, seed=3, recording=Recording(every=4, noise=False))
    a = train_ensemble(arch, Loss(), opt, data, **kwargs)
    b = train_ensemble(arch, Loss(), Optimizer(lr=9.0, batch=4), data, lrs=opt.rates(12), **kwargs)
    assert np.array_equal(a.params, b.params)
    np.testing.assert_allclose(b.history["train_loss"][1], [0, 0.4, 0.65, 0.8])  # 5 x 0.1, 5 x 0.05, 2 x 0.025
    with pytest.raises(ParameterError, match="lrs must be a 1-D array of at least 12 positive finite"):
        train_ensemble(arch, Loss(), opt, data, lrs=np.full(11, 0.1), **kwargs)
