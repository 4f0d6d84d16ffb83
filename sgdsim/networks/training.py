"""Small fully connected networks trained by minibatch SGD as an ensemble (a cloud in weight space), recorded.

    arch = Architecture((2, 64, 1), "relu")
    data = teacher_classification(n_train=200, n_test=1000, dim=2, seed=1)
    out = train_ensemble(arch, Loss("square"), Optimizer(lr=0.1, batch=16), data, members=8, steps=2000,
                         seed=1, recording=Recording(every=100, sharpness_every=500), writer=writer)

Each member starts from its own initialization (W ~ N(0, init_scale^2 / fan_in), b = 0; LeCun et al. 1998)
and draws its minibatches from its own stream, so the ensemble is M independent SGD runs advanced together by
`solvers.networks.kernel`. Classification targets: with one output, +-1 (square loss) or {0, 1} (logistic);
with one output per class, one-hot. Recorded per member (elements of shape (M,), coordinate ``member``):
train/test loss and error, test error per group (when the data set has groups), the gradient-noise trace
tr C (C the covariance of per-example gradients at the current weights) and the SGD temperature
T = lr tr C / (2B) (N - B)/(N - 1) (Mandt, Hoffman & Blei 2017; minibatches without replacement; lr of the
step just taken), the sharpness (top Hessian eigenvalue of the training loss), and weight snapshots of the
first members. Time is t = sum of the learning rates up to the step (= lr * step at constant lr).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .. import runloop
from ..particles.dynamics import Clock, Schedule, minibatch_noise_factor
from ..errors import ParameterError
from ..io.runfile import RunWriter
from ..solvers.networks import kernel as nk
from ..solvers.networks.reference import unpack
from ..solvers.rng import seed_states

FLUSH_SECONDS = 1.0  # the run file is flushed at the first record, at the first record this long after the last
# flush (a flush costs ~10 ms), and at the end

__all__ = ["Architecture", "Loss", "Optimizer", "Dataset", "Recording", "Training", "teacher_classification",
           "with_label_noise", "with_random_labels", "init_params", "layers", "net_for", "train_ensemble", "evaluate"]


def _fail(message: str) -> None:
    raise ParameterError(message)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _number(name: str, value, low: float, high: float = math.inf, *, open_low: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (open_low and value == low) or value >= high:
        rng = f"{'(' if open_low else '['}{low:g}, {high:g})"
        _fail(f"{name} must be a number in {rng}, got {value!r}")


@dataclass(frozen=True)
class Architecture:
    """Layer sizes (inputs, hidden..., outputs), the hidden activation and the initialization scale."""
    sizes: tuple
    activation: str = "relu"
    init_scale: float = 1.0

    def __post_init__(self):
        sizes = tuple(self.sizes)
        if len(sizes) < 2 or not all(_is_int(s) and s >= 1 for s in sizes):
            _fail(f"architecture sizes must be at least two positive integers (inputs, ..., outputs), got {sizes!r}")
        object.__setattr__(self, "sizes", tuple(int(s) for s in sizes))
        if self.activation not in nk.ACTIVATIONS:
            _fail(f"unknown activation {self.activation!r} (valid: {', '.join(nk.ACTIVATIONS)})")
        _number("init_scale", self.init_scale, 0.0, open_low=True)

    @property
    def n_params(self) -> int:
        return int(nk.layout(self.sizes)[0][-1])


@dataclass(frozen=True)
class Loss:
    """"square" (1/2 |f - y|^2) or "cross-entropy" (softmax; logistic with one output)."""
    kind: str = "square"

    def __post_init__(self):
        if self.kind not in nk.LOSSES:
            _fail(f"unknown loss {self.kind!r} (valid: {', '.join(nk.LOSSES)})")


@dataclass(frozen=True)
class Optimizer:
    """Minibatch SGD: rate lr (times `schedule`), batch B, heavy-ball momentum, L2 weight decay."""
    lr: float
    batch: int
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: Schedule = Schedule()

    def __post_init__(self):
        _number("lr", self.lr, 0.0, open_low=True)
        if not (_is_int(self.batch) and self.batch >= 1):
            _fail(f"batch must be an integer >= 1, got {self.batch!r}")
        _number("momentum", self.momentum, 0.0, 1.0)
        _number("weight_decay", self.weight_decay, 0.0)

    def rates(self, n_steps: int) -> np.ndarray:
        """The learning rate of every step 0..n_steps-1."""
        return self.clock().rates(0, n_steps)

    def clock(self, given: np.ndarray | None = None) -> Clock:
        """The rates and continuous time of a run, chunk by chunk (`given`: one rate per step instead)."""
        return Clock(self.lr, self.schedule, given)


def _check_rates(lrs, steps: int) -> np.ndarray:
    lrs = np.asarray(lrs, dtype=float)
    if lrs.ndim != 1 or len(lrs) < steps or not np.all(np.isfinite(lrs)) or np.any(lrs <= 0):
        _fail(f"lrs must be a 1-D array of at least {steps} positive finite learning rates (one per step), "
              f"got shape {lrs.shape}")
    return lrs[:steps]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set: inputs X (N, d), integer labels in [0, classes); a test set; optional test
    groups (integers indexing `group_names`) whose test errors are recorded separately."""
    X: np.ndarray
    labels: np.ndarray
    X_test: np.ndarray
    labels_test: np.ndarray
    classes: int = 2
    test_groups: np.ndarray | None = None
    group_names: tuple = ()
    description: str = ""

    def __post_init__(self):
        for name, x, y in (("training", self.X, self.labels), ("test", self.X_test, self.labels_test)):
            if np.ndim(x) != 2 or np.ndim(y) != 1 or len(x) != len(y) or len(x) == 0:
                _fail(f"{name} set: X must be (N, d) and labels (N,) with N >= 1, got {np.shape(x)} and {np.shape(y)}")
            if not np.all(np.isfinite(x)):
                _fail(f"{name} set: X has non-finite entries")
            if np.any((y < 0) | (y >= self.classes)) or not np.issubdtype(np.asarray(y).dtype, np.integer):
                _fail(f"{name} set: labels must be integers in [0, {self.classes})")
        if np.shape(self.X)[1] != np.shape(self.X_test)[1]:
            _fail(f"training inputs have {np.shape(self.X)[1]} features, test inputs {np.shape(self.X_test)[1]}")
        if self.test_groups is not None and (len(self.test_groups) != len(self.labels_test)
                                             or len(self.group_names) != int(np.max(self.test_groups)) + 1):
            _fail("test_groups must give a group (index into group_names) for every test example")


def teacher_classification(n_train: int, n_test: int, dim: int, seed: int, teacher_width: int = 8) -> Dataset:
    """Gaussian inputs x ~ N(0, I_d) labelled by the sign of a random two-layer tanh teacher network."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((teacher_width, dim)) / math.sqrt(dim)
    a = rng.standard_normal(teacher_width)
    X = rng.standard_normal((n_train + n_test, dim))
    labels = (np.tanh(2 * X @ W.T) @ a > 0).astype(np.int64)
    return Dataset(X[:n_train], labels[:n_train], X[n_train:], labels[n_train:], 2,
                   description=f"teacher: sign of a random 2-layer tanh net, width {teacher_width}, x ~ N(0, I_{dim})")


def with_label_noise(data: Dataset, fraction: float, seed: int) -> Dataset:
    """Replace the training labels of a random `fraction` of examples by a different class, uniformly."""
    _number("label noise fraction", fraction, 0.0, 1.0 + 1e-12)
    rng = np.random.default_rng(seed)
    labels = data.labels.copy()
    flip = rng.permutation(len(labels))[:round(fraction * len(labels))]
    labels[flip] = (labels[flip] + rng.integers(1, data.classes, len(flip))) % data.classes
    return Dataset(data.X, labels, data.X_test, data.labels_test, data.classes, data.test_groups, data.group_names,
                   f"{data.description}; {fraction:g} of training labels flipped")


def with_random_labels(data: Dataset, seed: int) -> Dataset:
    """Training labels drawn uniformly at random, independent of the inputs (Zhang et al. 2017)."""
    labels = np.random.default_rng(seed).integers(0, data.classes, len(data.labels))
    return Dataset(data.X, labels, data.X_test, data.labels_test, data.classes, data.test_groups, data.group_names,
                   f"{data.description}; random training labels")


def _targets(labels: np.ndarray, classes: int, outputs: int, loss: Loss) -> np.ndarray:
    if outputs == 1:
        y = labels.astype(float)
        return (2 * y - 1 if loss.kind == "square" else y)[:, None]
    return np.eye(classes)[labels]


def net_for(arch: Architecture, loss: Loss, data: Dataset, test: bool = False) -> nk.Net:
    """The kernel-side network bound to the training (or test) set: full-batch loss, gradient, Hessian-vector
    products and sharpness of any stack of parameter vectors (`networks.kernel.Net`)."""
    _check_fit(arch, data)
    X, labels = (data.X_test, data.labels_test) if test else (data.X, data.labels)
    return nk.Net(arch.sizes, nk.ACTIVATIONS[arch.activation], nk.LOSSES[loss.kind], X,
                  _targets(labels, data.classes, arch.sizes[-1], loss))


def _check_fit(arch: Architecture, data: Dataset) -> None:
    if arch.sizes[0] != data.X.shape[1]:
        _fail(f"the network has {arch.sizes[0]} inputs but the data have {data.X.shape[1]} features")
    if not (arch.sizes[-1] == data.classes or (arch.sizes[-1] == 1 and data.classes == 2)):
        _fail(f"the network has {arch.sizes[-1]} outputs; {data.classes} classes need {data.classes} "
              f"(or 1 for two classes)")


def init_params(arch: Architecture, members: int, seed: int) -> np.ndarray:
    """(members, P): W_l ~ N(0, init_scale^2 / n_l) (LeCun initialization), biases zero; default_rng(seed)."""
    rng = np.random.default_rng(seed)
    woff, _ = nk.layout(arch.sizes)
    params = np.zeros((members, arch.n_params))
    for l, (nin, nout) in enumerate(zip(arch.sizes[:-1], arch.sizes[1:])):
        params[:, woff[l]:woff[l] + nin * nout] = rng.standard_normal((members, nin * nout)) * (
            arch.init_scale / math.sqrt(nin))
    return params


def layers(arch: Architecture, w: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(W_l, b_l)] of one member's flat parameter vector (views; W_l is n_{l+1} x n_l)."""
    return unpack(np.asarray(w, dtype=float), arch.sizes)


def _errors(outputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(M, N) bool: misclassified examples (sign of the single output, else argmax)."""
    pred = (outputs[..., 0] > 0).astype(np.int64) if outputs.shape[-1] == 1 else np.argmax(outputs, axis=-1)
    return pred != labels


def evaluate(arch: Architecture, loss: Loss, params: np.ndarray, data: Dataset,
             test: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean loss (M,), error rate (M,), misclassified (M, N)) of every member on the test (or training) set."""
    net = net_for(arch, loss, data, test)
    losses, _, _ = net.loss_grad(params)
    wrong = _errors(net.outputs(params, net.X), data.labels_test if test else data.labels)
    return losses, wrong.mean(axis=1), wrong


@dataclass(frozen=True)
class Recording:
    """What to record every `every` steps: losses and errors always; gradient-noise statistics if `noise`;
    the sharpness every `sharpness_every` steps (0: never; power iteration, `sharpness_iters` at most);
    weight snapshots of the first `snapshot_members` members (-1: all) every `snapshot_every` steps."""
    every: int = 100
    noise: bool = True
    sharpness_every: int = 0
    sharpness_iters: int = 30
    snapshot_members: int = 0
    snapshot_every: int = 0

    def __post_init__(self):
        for name in ("every", "sharpness_every", "sharpness_iters", "snapshot_every"):
            value = getattr(self, name)
            if not (_is_int(value) and value >= (1 if name in ("every", "sharpness_iters") else 0)):
                _fail(f"recording {name} must be an integer >= {1 if name in ('every', 'sharpness_iters') else 0}, "
                      f"got {value!r}")
        if not (_is_int(self.snapshot_members) and self.snapshot_members >= -1):
            _fail(f"recording snapshot_members must be an integer >= -1, got {self.snapshot_members!r}")


@dataclass(eq=False)
class Training:
    """The outcome: final weights (M, P), status, message, steps done, and every recorded series by name as
    (steps, times, values)."""
    params: np.ndarray
    status: str
    message: str
    steps_done: int
    history: dict = field(default_factory=dict)


class _Recorder:
    """Computes the recorded quantities and sends them to the writer (if any) and to memory."""

    def __init__(self, writer, prefix, members, recording, data, arch):
        self.writer, self.prefix, self.recording = writer, prefix, recording
        self.history: dict = {}
        self.elements: dict = {}
        self.members = members
        k = members if recording.snapshot_members == -1 else min(recording.snapshot_members, members)
        self.snapshot = k
        if writer is not None and k:
            self.elements["weights"] = writer.element(
                prefix + "weights", (k, arch.n_params), group="particles",
                coords={"particle": np.arange(k), "spatial": np.arange(arch.n_params)},
                attrs={"description": "flat parameter vectors of the first members (layout: network_kernel)"})
        self.groups = data.group_names

    def put(self, name: str, step: int, time: float, value: np.ndarray, description: str = "") -> None:
        value = np.asarray(value, dtype=float)
        steps, times, values = self.history.setdefault(name, ([], [], []))
        steps.append(step), times.append(time), values.append(value)
        if self.writer is None:
            return
        if name not in self.elements:
            coords = {"member": np.arange(self.members)}
            if value.ndim == 2:
                coords["group"] = np.arange(value.shape[1])
            attrs = {"description": description}
            if value.ndim == 2:
                attrs["group_names"] = ", ".join(self.groups)
            self.elements[name] = self.writer.element(self.prefix + name, value.shape, coords=coords, attrs=attrs)
        self.elements[name].append(step, time, value)

    def arrays(self) -> dict:
        return {k: (np.array(s, dtype=np.int64), np.array(t), np.array(v)) for k, (s, t, v) in self.history.items()}


def _record(rec: _Recorder, step, time, arch, loss, opt, lr, net, data, params, seed):
    r = rec.recording
    train_loss, grads, sq = net.loss_grad(params, want_sq=r.noise)
    wrong = _errors(net.outputs(params, data.X), data.labels)
    test_loss, test_error, test_wrong = evaluate(arch, loss, params, data)
    rec.put("train_loss", step, time, train_loss, "full-batch training loss (mean over examples)")
    rec.put("train_error", step, time, wrong.mean(axis=1), "fraction of training examples misclassified")
    rec.put("test_loss", step, time, test_loss, "mean loss on the test set")
    rec.put("test_error", step, time, test_error, "fraction of test examples misclassified")
    if data.test_groups is not None:
        per_group = np.stack([test_wrong[:, data.test_groups == g].mean(axis=1)
                              for g in range(len(data.group_names))], axis=1)
        rec.put("test_error_groups", step, time, per_group, "test error per group of test examples")
    if r.noise:
        n, b = len(data.X), opt.batch
        trace = np.maximum(sq - np.einsum("ij,ij->i", grads, grads), 0.0)
        rec.put("grad_norm", step, time, np.linalg.norm(grads, axis=1), "|full-batch gradient|")
        rec.put("grad_noise_trace", step, time, trace,
                "tr C, C = covariance of per-example gradients (1/N) sum (g_i - g)(g_i - g)^T")
        rec.put("sgd_temperature", step, time, lr * trace / 2 * minibatch_noise_factor(n, b, replace=False),
                "T = lr tr C / (2B) (N - B)/(N - 1) (Mandt, Hoffman & Blei 2017), minibatches without replacement")
    if r.sharpness_every and step % r.sharpness_every == 0:
        rec.put("sharpness", step, time, net.sharpness(params, seed=seed + step, iters=r.sharpness_iters),
                "top eigenvalue of the Hessian of the training loss (power iteration on Hessian-vector products)")
    if rec.snapshot and (not r.snapshot_every or step % r.snapshot_every == 0):
        steps, times, values = rec.history.setdefault("weights", ([], [], []))
        steps.append(step), times.append(time), values.append(params[:rec.snapshot].copy())
        if "weights" in rec.elements:
            rec.elements["weights"].append(step, time, params[:rec.snapshot])


def train_ensemble(arch: Architecture, loss: Loss, opt: Optimizer, data: Dataset, *, members: int, steps: int,
                   seed: int, recording: Recording = Recording(), writer: RunWriter | None = None,
                   prefix: str = "", progress: bool = False, params0: np.ndarray | None = None,
                   lrs: np.ndarray | None = None) -> Training:
    """Train `members` networks for `steps` SGD steps on `data`, recording as `recording` says (names get
    `prefix`, so one run file can hold several ensembles). Returns the final weights and the record.
    `lrs` (one rate per step) replaces `opt`'s lr and schedule, for any schedule the Schedule kinds miss.

    A member whose loss or weights become non-finite stops the run with status "diverged" and a message
    naming the member and the step; everything recorded before stays."""
    _check_fit(arch, data)
    if not (_is_int(members) and members >= 1):
        _fail(f"members must be an integer >= 1, got {members!r}")
    if not (_is_int(steps) and steps >= 0):
        _fail(f"steps must be a non-negative integer, got {steps!r}")
    if opt.batch > len(data.X):
        _fail(f"batch {opt.batch} is larger than the training set ({len(data.X)} examples)")
    params = init_params(arch, members, seed) if params0 is None else np.array(params0, dtype=float)
    if params.shape != (members, arch.n_params):
        _fail(f"params0 must have shape ({members}, {arch.n_params}), got {params.shape}")
    net = net_for(arch, loss, data)
    clock = opt.clock(None if lrs is None else _check_rates(lrs, max(steps, 1)))
    velocity = np.zeros_like(params)
    states = seed_states(seed, members)
    perm = np.tile(np.arange(len(data.X), dtype=np.int64), (members, 1))
    diverged = np.full(members, -1, dtype=np.int64)
    rec = _Recorder(writer, prefix, members, recording, data, arch)
    reached = [0]
    flushed = [time.monotonic()]

    def advance(k: int) -> None:
        step = reached[0]
        nk.train(net, params, velocity, states, perm, clock.take(k), opt.batch, opt.momentum,
                 opt.weight_decay, step, diverged)
        reached[0] = step + k

    def record(step: int) -> None:
        rate = float(clock.rates(max(step - 1, 0), 1)[0])
        _record(rec, step, float(clock.time(step)), arch, loss, opt, rate, net, data, params, seed)
        if writer is not None and (step in (0, steps) or time.monotonic() - flushed[0] > FLUSH_SECONDS):
            writer.flush()
            flushed[0] = time.monotonic()

    def check() -> str | None:
        if not np.any(diverged >= 0):
            return None
        m = int(np.argmax(np.where(diverged >= 0, -diverged, -np.inf)))
        if writer is not None:
            hit = np.flatnonzero(diverged >= 0)
            writer.events(prefix + "divergence").append(hit, diverged[hit], clock.time(diverged[hit]))
        return f"member {m} diverged at step {diverged[m]} (non-finite loss or weights); lower the learning rate"

    result = runloop.drive(advance, steps, runloop.Schedule(every=recording.every), record, diverged=check,
                            progress=progress)
    status, message, step = str(result.status), result.message, result.steps_done
    if writer is not None:
        writer.flush()
    return Training(params, status, message, step, rec.arrays())
