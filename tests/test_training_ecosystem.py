"""Training as Keras and Lightning users expect it (issue 14, item 7): callbacks and
early stopping, learning-rate schedules and gradient clipping (against PyTorch),
saving, loading and resuming bit for bit, the history as a table, the plot as a
Figure, a progress display that does not flood logs, ``matdiff train --save``."""

from __future__ import annotations

import inspect
import io
import json
import os
import pickle
import sys

import numpy as np
import pytest

from matdiff import nn, optim
from matdiff.errors import MatdiffError
from matdiff.nn import MLP, DataError, Dense, Neuron, NNError, UnknownNameError, fit

try:  # the reference for schedules and clipping; those tests skip without it
    import torch
    from torch.optim import lr_scheduler as TL
except ImportError:  # pragma: no cover - the dev extra installs torch
    torch = TL = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is the reference")


def _data(seed: int = 0, n: int = 96, noise_val: bool = False):
    """A regression problem (4 features, 2 targets) and a validation set; with
    ``noise_val`` the validation targets are unrelated noise, so the validation loss
    rises as the model fits the training data (early stopping has something to do)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    W = rng.normal(size=(4, 2))
    Y = np.tanh(X @ W) + 0.05 * rng.normal(size=(n, 2))
    Xv = rng.normal(size=(40, 4))
    Yv = rng.normal(size=(40, 2)) if noise_val else np.tanh(Xv @ W)
    return X, Y, Xv, Yv


def _params(model) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in model.params.items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# ====================================================================== schedules
def _torch_lrs(make, n: int, base: float = 0.1) -> list[float]:
    """The rate torch's optimizer uses at each of ``n`` epochs (``scheduler.step()``
    once per epoch, after the optimizer's step)."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    sch = make(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    return out


SCHEDULES = {
    "step": (lambda: optim.StepLR(3, gamma=0.5), lambda o: TL.StepLR(o, 3, gamma=0.5)),
    "step-default": (lambda: optim.StepLR(4), lambda o: TL.StepLR(o, 4)),
    # past T_max torch's cosine rises again; ours is the same function
    "cosine": (lambda: optim.CosineLR(10, eta_min=0.001),
               lambda o: TL.CosineAnnealingLR(o, 10, eta_min=0.001)),
    "warmup": (lambda: optim.WarmupLR(4, start_factor=0.25),
               lambda o: TL.LinearLR(o, start_factor=0.25, total_iters=4)),
    "warmup-defaults": (lambda: optim.WarmupLR(), lambda o: TL.LinearLR(o)),
    "linear-decay": (lambda: optim.WarmupLR(6, start_factor=1.0, end_factor=0.1),
                     lambda o: TL.LinearLR(o, 1.0, 0.1, 6)),
    "warmup-then-cosine": (
        lambda: optim.WarmupLR(4, start_factor=0.25).then(optim.CosineLR(12)),
        lambda o: TL.SequentialLR(o, [TL.LinearLR(o, 0.25, total_iters=4),
                                      TL.CosineAnnealingLR(o, 12)], milestones=[4])),
    "three-stages": (
        lambda: optim.SequentialLR([optim.WarmupLR(3, 0.5), optim.StepLR(2, 0.5),
                                    optim.CosineLR(6, 0.01)], milestones=[3, 9]),
        lambda o: TL.SequentialLR(o, [TL.LinearLR(o, 0.5, total_iters=3),
                                      TL.StepLR(o, 2, 0.5),
                                      TL.CosineAnnealingLR(o, 6, 0.01)], milestones=[3, 9])),
}


@needs_torch
@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's notes on SequentialLR
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedules_match_torch(name):
    mine, theirs = SCHEDULES[name]
    ours = [mine().lr(0.1, t) for t in range(25)]
    np.testing.assert_allclose(ours, _torch_lrs(theirs, 25), rtol=1e-12, atol=1e-15)


@needs_torch
def test_a_wrong_schedule_is_caught():
    # the comparison above can fail: another gamma, or a cosine of another length
    ours = [optim.StepLR(3, gamma=0.6).lr(0.1, t) for t in range(10)]
    assert not np.allclose(ours, _torch_lrs(lambda o: TL.StepLR(o, 3, 0.5), 10))
    ours = [optim.CosineLR(11).lr(0.1, t) for t in range(10)]
    assert not np.allclose(ours, _torch_lrs(lambda o: TL.CosineAnnealingLR(o, 10), 10))


def test_schedule_formulas_by_hand():
    # lr_t = base · γ^⌊t/s⌋ ; cosine: η_min + (base − η_min)(1 + cos(πt/T))/2 ;
    # warm-up: base · (s + (e − s) min(t, T)/T)
    assert [optim.StepLR(2, 0.1).lr(1.0, t) for t in (0, 1, 2, 4)] == \
        [1.0, 1.0, 0.1, 0.1 ** 2]
    assert optim.CosineLR(8, 0.2).lr(1.0, 4) == pytest.approx(0.2 + 0.8 * 0.5)
    assert optim.CosineLR(8, 0.2).lr(1.0, 8) == pytest.approx(0.2)
    assert optim.WarmupLR(10, 0.0).lr(2.0, 3) == pytest.approx(0.6)
    seq = optim.WarmupLR(2, 0.5).then(optim.StepLR(1, 0.5)).then(optim.CosineLR(4), at=5)
    assert seq.milestones == [2, 5] and len(seq.schedules) == 3
    assert seq.lr(1.0, 5) == 1.0 and seq.lr(1.0, 4) == 0.25


def test_schedule_errors():
    with pytest.raises(NNError, match="step_size"):
        optim.StepLR(0)
    with pytest.raises(NNError, match="T_max"):
        optim.CosineLR(2.5)
    with pytest.raises(NNError, match="milestones"):
        optim.SequentialLR([optim.StepLR(1), optim.StepLR(2)], milestones=[])
    with pytest.raises(NNError, match="at="):
        optim.StepLR(1).then(optim.CosineLR(3))
    with pytest.raises(NNError, match="LRSchedule"):
        nn.LearningRateScheduler(lambda t: 0.1)
    with pytest.raises(NNError, match="per"):
        nn.LearningRateScheduler(optim.StepLR(1), per="batch")


class _Rates(nn.Callback):
    """The optimizer's rate at each step, as the step runs."""

    def __init__(self):
        self.rates: list[float] = []

    def on_batch_end(self, step, logs):
        self.rates.append(self.optimizer.lr)


@needs_torch
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fit_applies_the_schedule_per_epoch_and_per_step():
    X, Y, _, _ = _data()
    steps_per_epoch = 3
    # per epoch: every step of epoch e runs at torch's rate after e scheduler steps
    rec = _Rates()
    h = fit(MLP([4, 5, 2]), X, Y, optimizer="sgd", lr=0.1, epochs=8, batch_size=32,
            schedule=optim.WarmupLR(3, 0.2).then(optim.CosineLR(5)), callbacks=[rec],
            progress=False)
    want = _torch_lrs(lambda o: TL.SequentialLR(
        o, [TL.LinearLR(o, 0.2, total_iters=3), TL.CosineAnnealingLR(o, 5)], [3]), 8)
    np.testing.assert_allclose(h["lr"], want, rtol=1e-12)
    np.testing.assert_allclose(rec.rates, np.repeat(want, steps_per_epoch), rtol=1e-12)
    # per step: torch's scheduler stepped after every optimizer step
    rec = _Rates()
    fit(MLP([4, 5, 2]), X, Y, optimizer="sgd", lr=0.1, epochs=4, batch_size=32,
        callbacks=[nn.LearningRateScheduler(optim.CosineLR(12), per="step"), rec],
        progress=False)
    np.testing.assert_allclose(rec.rates, _torch_lrs(lambda o: TL.CosineAnnealingLR(o, 12),
                                                     12), rtol=1e-12)


# ====================================================================== clipping
def _grads(seed: int, scale: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"W": scale * rng.normal(size=(3, 4)), "b": scale * rng.normal(size=4),
            "c": np.array(scale * rng.normal())}


@needs_torch
@pytest.mark.parametrize("scale", [0.01, 1.0, 50.0])
@pytest.mark.parametrize("max_norm", [0.5, 3.0])
def test_clip_grad_norm_matches_torch(scale, max_norm):
    g = _grads(1, scale)
    tg = [torch.nn.Parameter(torch.zeros(v.shape, dtype=torch.float64)) for v in g.values()]
    for t, v in zip(tg, g.values()):
        t.grad = torch.tensor(v)
    before = {k: v.copy() for k, v in g.items()}
    norm = optim.clip_grad_norm(g, max_norm)
    tnorm = torch.nn.utils.clip_grad_norm_(tg, max_norm)
    assert norm == pytest.approx(float(tnorm), rel=1e-13)
    for t, k in zip(tg, g):
        np.testing.assert_allclose(g[k], t.grad.numpy(), rtol=1e-13, atol=1e-300)
    # the global norm: ‖[vec W; b; c]‖₂, by hand
    flat = np.concatenate([v.reshape(-1) for v in before.values()])
    assert norm == pytest.approx(float(np.sqrt(flat @ flat)), rel=1e-14)
    if norm <= max_norm:   # nothing to clip: the arrays are untouched, bit for bit
        assert _same(g, before)
    else:                  # one factor for all: the direction is kept
        assert not _same(g, before)
        np.testing.assert_allclose(g["W"] / before["W"], max_norm / (norm + 1e-6), rtol=1e-12)


@needs_torch
@pytest.mark.parametrize("make", [
    (lambda p, c: optim.SGD(p, lr=0.05, momentum=0.9, clip_norm=c),
     lambda p, c: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    (lambda p, c: optim.Adam(p, lr=0.01, clip_norm=c),
     lambda p, c: torch.optim.Adam(p, lr=0.01)),
])
def test_optimizer_clip_norm_matches_torch(make):
    make_md, make_torch = make
    p0 = {k: np.array(0.1 * v) for k, v in _grads(7, 1.0).items()}
    mine = {k: v.copy() for k, v in p0.items()}
    opt = make_md(mine, 1.0)
    tp = [torch.tensor(v.copy(), requires_grad=True) for v in p0.values()]
    topt = make_torch(tp, 1.0)
    for i in range(6):
        g = _grads(10 + i, 5.0 if i % 2 else 0.05)   # clipped, then not
        opt.step(g)
        for t, v in zip(tp, g.values()):
            t.grad = torch.tensor(v)
        tn = torch.nn.utils.clip_grad_norm_(tp, 1.0)
        topt.step()
        assert opt.grad_norm == pytest.approx(float(tn), rel=1e-13)
        for t, k in zip(tp, mine):
            np.testing.assert_allclose(mine[k], t.detach().numpy(), rtol=1e-12, atol=1e-14)


@needs_torch
def test_fit_clip_norm_is_torchs_training_step():
    """Five steps of fit(clip_norm=...) on an MLP against torch doing the same:
    forward, MSE, backward, clip_grad_norm_, SGD step."""
    X, Y, _, _ = _data(n=20)
    m = MLP([4, 6, 2], "tanh", seed=3)
    tp = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in m.params.items()}
    topt = torch.optim.SGD(list(tp.values()), lr=0.5)
    h = fit(m, X, Y, "mse", "sgd", lr=0.5, epochs=5, batch_size=20, shuffle=False,
            clip_norm=0.1, progress=False)
    norms = []
    for _ in range(5):
        topt.zero_grad()
        out = torch.tanh(torch.tensor(X) @ tp["W1"] + tp["b1"]) @ tp["W2"] + tp["b2"]
        loss = ((out - torch.tensor(Y)) ** 2).mean()      # mse: the mean of all N×k
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(tp.values()), 0.1)))
        topt.step()
    assert min(norms) > 0.1           # every step was clipped
    for k, t in tp.items():
        np.testing.assert_allclose(m.params[k], t.detach().numpy(), rtol=1e-10, atol=1e-13)
    # without clipping the same run ends elsewhere: the comparison can fail
    m2 = MLP([4, 6, 2], "tanh", seed=3)
    fit(m2, X, Y, "mse", "sgd", lr=0.5, epochs=5, batch_size=20, shuffle=False,
        progress=False)
    assert not np.allclose(m2.params["W1"], tp["W1"].detach().numpy(), rtol=1e-6)
    assert len(h["loss"]) == 5


def test_clip_norm_errors():
    with pytest.raises(NNError, match="clip_norm"):
        optim.SGD({"w": np.zeros(2)}, clip_norm=-1.0)
    with pytest.raises(NNError, match="clip_norm"):
        optim.Adam({"w": np.zeros(2)}, clip_norm=0)
    with pytest.raises(DataError, match="in place"):
        optim.clip_grad_norm([np.arange(3)], 1.0)     # integers cannot be scaled


# ====================================================================== callbacks
class _Log(nn.Callback):
    def __init__(self):
        self.calls: list[tuple] = []

    def on_train_begin(self, logs):
        self.calls.append(("train_begin",))

    def on_epoch_begin(self, epoch, logs):
        self.calls.append(("epoch_begin", epoch))

    def on_batch_begin(self, step, logs):
        self.calls.append(("batch_begin", step))

    def on_batch_end(self, step, logs):
        self.calls.append(("batch_end", step, logs["loss"]))

    def on_epoch_end(self, epoch, logs):
        self.calls.append(("epoch_end", epoch, dict(logs)))

    def on_train_end(self, logs):
        self.calls.append(("train_end",))


def test_callbacks_are_called_in_order_with_the_logs():
    X, Y, Xv, Yv = _data(n=50)
    log = _Log()
    m = MLP([4, 3, 2])
    h = fit(m, X, Y, epochs=3, batch_size=20, validation=(Xv, Yv), callbacks=[log],
            progress=False)
    kinds = [c[0] for c in log.calls]
    per_epoch = ["epoch_begin"] + ["batch_begin", "batch_end"] * 3 + ["epoch_end"]
    assert kinds == ["train_begin"] + per_epoch * 3 + ["train_end"]
    assert [c[1] for c in log.calls if c[0] == "batch_end"] == list(range(1, 10))
    assert [c[1] for c in log.calls if c[0] == "epoch_end"] == [1, 2, 3]
    last = [c[2] for c in log.calls if c[0] == "epoch_end"][-1]
    assert set(last) == {"loss", "r2", "val_loss", "val_r2", "lr"}
    assert last["loss"] == h["loss"][-1] and last["val_r2"] == h["val_r2"][-1]
    assert log.model is m and log.optimizer.steps == 9 and log.steps_per_epoch == 3
    # each batch's loss is the loss before its step, as TrainStep returns it
    assert all(np.isfinite(c[2]) for c in log.calls if c[0] == "batch_end")


def test_a_callback_stops_training():
    X, Y, _, _ = _data(n=50)

    class AfterSteps(nn.Callback):
        def on_batch_end(self, step, logs):
            if step == 4:          # in the middle of epoch 2
                self.stop_training = True

    log = _Log()
    h = fit(MLP([4, 3, 2]), X, Y, epochs=10, batch_size=20,
            callbacks=[AfterSteps(), log], progress=False)
    assert h.steps == 4 and h.stopped_epoch == 2 and len(h["loss"]) == 2
    assert log.calls[-1] == ("train_end",)
    with pytest.raises(NNError, match="Callback"):
        fit(MLP([4, 3, 2]), X, Y, epochs=1, callbacks=[print], progress=False)


class _Snapshots(nn.Callback):
    """The parameters after every epoch."""

    def __init__(self):
        self.after: dict[int, dict[str, np.ndarray]] = {}

    def on_epoch_end(self, epoch, logs):
        self.after[epoch] = _params(self.model)


def test_early_stopping_restores_exactly_the_best_epoch():
    X, Y, Xv, Yv = _data(1, noise_val=True)
    snaps = _Snapshots()
    stop = nn.EarlyStopping(monitor="val_loss", patience=3)
    m = MLP([4, 16, 2], "tanh", seed=2)
    h = fit(m, X, Y, lr=0.03, epochs=200, batch_size=16, validation=(Xv, Yv),
            callbacks=[snaps, stop], progress=False)
    val = np.array(h["val_loss"])
    best = int(np.argmin(val)) + 1           # the first minimum, epochs from 1
    assert stop.best_epoch == best and stop.best == val[best - 1]
    assert stop.stopped_epoch == best + 3 == len(val) == h.stopped_epoch < 200
    assert np.all(val[best:] >= val[best - 1])      # three epochs without improvement
    assert _same(_params(m), snaps.after[best])     # exactly the best epoch's weights
    assert not _same(_params(m), snaps.after[len(val)])


def test_early_stopping_without_restoring_and_other_modes():
    X, Y, Xv, Yv = _data(1, noise_val=True)
    snaps = _Snapshots()
    m = MLP([4, 16, 2], "tanh", seed=2)
    stop = nn.EarlyStopping(patience=3, restore_best=False)
    h = fit(m, X, Y, lr=0.03, epochs=200, batch_size=16, validation=(Xv, Yv),
            callbacks=[snaps, stop], progress=False)
    assert _same(_params(m), snaps.after[len(h["loss"])])    # the last epoch's
    # mode "max" for R² (auto): stops when val_r2 stops rising
    stop = nn.EarlyStopping(monitor="val_r2", patience=2)
    assert stop.mode == "max"
    h = fit(MLP([4, 16, 2], "tanh", seed=2), X, Y, lr=0.03, epochs=200, batch_size=16,
            validation=(Xv, Yv), callbacks=[stop], progress=False)
    r2 = np.array(h["val_r2"])
    assert stop.best == r2.max() and stop.best_epoch == int(np.argmax(r2)) + 1
    assert stop.stopped_epoch == stop.best_epoch + 2
    # min_delta: a training loss that falls, but by less than 1e9, never improves
    stop = nn.EarlyStopping(monitor="loss", patience=2, min_delta=1e9)
    h = fit(MLP([4, 3, 2]), X, Y, epochs=50, callbacks=[stop], progress=False)
    assert stop.best_epoch == 1 and len(h["loss"]) == 3
    # monitoring what is not recorded
    with pytest.raises(NNError, match="validation="):
        fit(MLP([4, 3, 2]), X, Y, epochs=2, callbacks=[nn.EarlyStopping()], progress=False)
    with pytest.raises(NNError, match="patience"):
        nn.EarlyStopping(patience=-1)
    with pytest.raises(NNError, match="mode"):
        nn.EarlyStopping(mode="up")


# ====================================================================== save / load
MODELS = {
    "neuron": lambda: Neuron(5, "sigmoid", seed=4),
    "dense": lambda: Dense(5, 3, "tanh", seed=4),
    "dense-indexed": lambda: Dense(5, 3, "relu", seed=4, index=2),
    "mlp": lambda: MLP([5, 7, 6, 3], "tanh", seed=4, output_activation="sigmoid"),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_save_load_round_trip(name, tmp_path):
    m = MODELS[name]()
    rng = np.random.default_rng(0)
    for v in m.params.values():          # not the initial values: those are seeded
        v[...] = rng.normal(size=v.shape)
    path = tmp_path / "model.bin"        # the name is kept as given (no ".npz" added)
    assert m.save(path) == str(path) and os.listdir(tmp_path) == ["model.bin"]
    again = nn.Model.load(path)
    assert type(again) is type(m) and again.config() == m.config()
    assert _same(_params(again), _params(m))
    X = rng.normal(size=(9, 5))
    np.testing.assert_array_equal(again.predict(X), m.predict(X))
    assert str(again.loss_expr("mse")) == str(m.loss_expr("mse"))
    assert type(m).load(path).config() == m.config()       # through the class itself


def test_load_checks_the_class(tmp_path):
    path = Neuron(3).save(tmp_path / "n.npz")
    with pytest.raises(DataError, match="holds a Neuron, not a MLP"):
        MLP.load(path)


class _Evil:
    """Unpickling this would write a file: the proof that loading ran code."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _valid_arrays(tmp_path) -> dict[str, np.ndarray]:
    path = MLP([3, 4, 2], seed=1).save(tmp_path / "valid.npz")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _meta(arrays) -> dict:
    return json.loads(str(arrays["meta"][()]))


def _with_meta(arrays, meta) -> dict:
    return {**arrays, "meta": np.array(json.dumps(meta))}


def test_garbage_and_malicious_files_give_a_clear_error(tmp_path):
    marker = tmp_path / "ran-code"
    good = _valid_arrays(tmp_path)
    files: dict[str, bytes | dict] = {
        "a pickle": pickle.dumps(_Evil(str(marker))),
        "garbage": os.urandom(300),
        "empty": b"",
        "text": b"W1 = 1, 2, 3\n",
        "truncated": open(tmp_path / "valid.npz", "rb").read()[:200],
        # an object array (a pickle) inside a well-formed model file
        "object array": {**good, "param/W1": np.array([_Evil(str(marker))], dtype=object)},
        "a class from elsewhere": _with_meta(good, {**_meta(good), "model": {
            **_meta(good)["model"], "class": "os.system"}}),
        "a forged size": _with_meta(good, {**_meta(good), "model": {
            **_meta(good)["model"], "config": {"sizes": [3, 10**9, 2]}}}),
        "a bad config": _with_meta(good, {**_meta(good), "model": {
            **_meta(good)["model"], "config": {"sizes": [3, 4, 2], "activation": "evil"}}}),
        "a wrong shape": {**good, "param/W1": np.zeros((4, 3))},
        "a wrong dtype": {**good, "param/W1": np.zeros((3, 4), dtype=np.complex128)},
        "a missing parameter": {k: v for k, v in good.items() if k != "param/b2"},
        "another format": {**good, "format": np.array("matdiff.nn/99")},
        "no format": {k: v for k, v in good.items() if k != "format"},
        "damaged meta": {**good, "meta": np.array("{not json")},
        "meta not text": {**good, "meta": np.zeros(3)},
        "an optimizer of no class": _with_meta(good, {**_meta(good), "optimizer": {
            "optimizer": "Evil", "steps": 1, "hyperparameters": {}, "buffers": {}}}),
        "a bad epoch": _with_meta(good, {**_meta(good), "epoch": "three"}),
    }
    for what, content in files.items():
        path = tmp_path / f"bad-{what.replace(' ', '-')}.npz"
        if isinstance(content, dict):
            with open(path, "wb") as f:
                np.savez(f, **content)     # savez pickles the object array
        else:
            path.write_bytes(content)
        with pytest.raises(DataError) as ei:
            nn.load_checkpoint(path)
        msg = str(ei.value)
        assert str(path) in msg, (what, msg)
        assert "Traceback" not in msg and len(msg) < 600, (what, msg)
        assert not marker.exists(), f"loading {what} ran code"
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(DataError, match="single .npy"):
        nn.Model.load(tmp_path / "one.npy")
    with pytest.raises(DataError, match="no such file"):
        nn.Model.load(tmp_path / "missing.npz")
    with pytest.raises(DataError, match="not defined here"):
        nn.load_checkpoint(tmp_path / "bad-a-class-from-elsewhere.npz")
    with pytest.raises(DataError, match="does not fit"):
        nn.load_checkpoint(tmp_path / "bad-a-forged-size.npz")
    with pytest.raises(DataError, match="never unpickles"):
        nn.load_checkpoint(tmp_path / "bad-a-pickle.npz")
    assert issubclass(DataError, MatdiffError)


def test_saving_needs_a_config(tmp_path):
    class Custom(Neuron):
        def config(self):
            raise NNError("Custom cannot be saved: define its config()")

    with pytest.raises(NNError, match="config"):
        Custom(3).save(tmp_path / "c.npz")

    class Local(Neuron):      # defined in a function: loading could not find it
        pass

    with pytest.raises(NNError, match="top level"):
        Local(3).save(tmp_path / "l.npz")
    with pytest.raises(NNError, match="other parameters"):
        Neuron(3).save(tmp_path / "x.npz", optimizer=optim.SGD({"w": np.zeros(3)}))


# ====================================================================== optimizer state
OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.05),
    "momentum": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1,
                                    weight_decay=0.01),
    "nesterov": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, clip_norm=2.0),
    "adam": lambda p: optim.Adam(p, lr=0.01, betas=(0.8, 0.95), weight_decay=0.1),
    "adamw": lambda p: optim.AdamW(p, lr=0.01, clip_norm=1.0),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_state_dict_continues_bit_for_bit(name):
    make = OPTIMIZERS[name]
    m = MLP([3, 5, 2], seed=0)            # flat parameters (the grouped path)
    loose = {"W": np.ones((3, 4)), "v": np.zeros(4)}      # separate arrays
    for params in (m.params, loose):
        g = [{k: np.random.default_rng(s).normal(size=v.shape) for k, v in params.items()}
             for s in range(8)]
        a = make({k: v.copy() for k, v in params.items()})
        for gi in g[:4]:
            a.step(gi)
        sd = a.state_dict()
        after4 = {k: v.copy() for k, v in a.params.items()}
        b = make({k: v.copy() for k, v in a.params.items()})
        b.load_state_dict(sd)
        c = optim.Optimizer.from_state_dict(sd, {k: v.copy() for k, v in a.params.items()})
        assert type(c) is type(a) and c.steps == a.steps == 4
        for gi in g[4:]:
            for o in (a, b, c):
                o.step(gi)
        assert _same(dict(a.params), dict(b.params)) and _same(dict(a.params), dict(c.params))
        # the state is a copy: stepping on does not change it
        assert sd["steps"] == 4
        # a fresh optimizer (no state) takes other steps: the check above can fail
        if name != "sgd":      # plain SGD keeps no state
            d = make(after4)
            for gi in g[4:]:
                d.step(gi)
            assert not _same(dict(a.params), dict(d.params))


def test_optimizer_state_errors():
    p = {"w": np.zeros(3)}
    sd = optim.Adam(p).state_dict()
    with pytest.raises(DataError, match="not of SGD"):
        optim.SGD(p).load_state_dict(sd)
    with pytest.raises(DataError, match="parameters"):
        optim.Adam({"v": np.zeros(3)}).load_state_dict(sd)
    with pytest.raises(DataError, match="shape"):
        optim.Adam({"w": np.zeros(4)}).load_state_dict(sd)
    with pytest.raises(DataError, match="buffers"):
        optim.SGD(p, momentum=0.9).load_state_dict(optim.SGD(p).state_dict())
    with pytest.raises(DataError, match="unknown hyperparameters"):
        optim.Adam(p).load_state_dict({**sd, "hyperparameters": {"evil": 1}})
    with pytest.raises(DataError, match="bad hyperparameters"):
        optim.Adam(p).load_state_dict({**sd, "hyperparameters": {"lr": -1}})
    with pytest.raises(DataError, match="dict"):
        optim.Adam(p).load_state_dict([1, 2])
    with pytest.raises(UnknownNameError, match="Adam, AdamW, SGD"):
        optim.Optimizer.from_state_dict({**sd, "optimizer": "os"}, p)
    # loaded before binding: taken when fit binds it
    sd = optim.Adam(p, lr=0.3).state_dict()
    later = optim.Adam()
    later.load_state_dict(sd)
    later.bind({"w": np.zeros(3)})
    assert later.lr == 0.3 and later.state_dict()["hyperparameters"]["lr"] == 0.3


# ====================================================================== resuming
def _run(model, opt, X, Y, Xv, Yv, epochs, initial_epoch=0, **kw):
    return fit(model, X, Y, "mse", opt, epochs=epochs, initial_epoch=initial_epoch,
               batch_size=16, validation=(Xv, Yv), seed=11, progress=False, **kw)


@pytest.mark.parametrize("opt_name", ["adam", "nesterov"])
def test_resume_continues_bit_for_bit(opt_name, tmp_path):
    X, Y, Xv, Yv = _data(3)
    make = OPTIMIZERS[opt_name]
    kw = {"schedule": optim.WarmupLR(2, 0.3).then(optim.CosineLR(6)), "clip_norm": 0.5}
    # one uninterrupted run of 8 epochs
    full_model = MLP([4, 8, 2], "tanh", seed=5)
    full = _run(full_model, make(None), X, Y, Xv, Yv, 8, **kw)
    # 3 epochs, saved, loaded (in a new model and optimizer), 5 more
    m = MLP([4, 8, 2], "tanh", seed=5)
    opt = make(None)
    first = _run(m, opt, X, Y, Xv, Yv, 3, **kw)
    path = m.save(tmp_path / "ck.npz", optimizer=opt, epoch=3)
    ck = nn.load_checkpoint(path)
    assert ck.epoch == 3 and ck.optimizer is not opt and ck.model is not m
    rest = _run(ck.model, ck.optimizer, X, Y, Xv, Yv, 8, initial_epoch=ck.epoch, **kw)
    assert rest.epochs == [4, 5, 6, 7, 8] and first.epochs == [1, 2, 3]
    assert _same(_params(ck.model), _params(full_model))     # exactly, every bit
    for k in full:
        assert first[k] + rest[k] == full[k], k
    assert first.steps + rest.steps == full.steps == 8 * 6
    # what the test would catch: resuming without the optimizer's state does not end
    # at the same weights
    ck = nn.load_checkpoint(path)
    fresh = make(None)
    fresh.load_state_dict({**ck.optimizer.state_dict(), "state": {
        k: {b: np.zeros_like(a) for b, a in st.items()}
        for k, st in ck.optimizer.state_dict()["state"].items()}})  # its buffers zeroed
    _run(ck.model, fresh, X, Y, Xv, Yv, 8, initial_epoch=3, **kw)
    assert not _same(_params(ck.model), _params(full_model))


def test_resume_draws_the_same_shuffling(tmp_path):
    """Plain SGD keeps no state, so only the order of the samples decides: resumed with
    initial_epoch, the epochs see the orders they would have seen; started over
    (epochs counted from 0 again) they see epoch 1's order again and end elsewhere."""
    X, Y, Xv, Yv = _data(5)
    full_model = MLP([4, 6, 2], seed=2)
    _run(full_model, optim.SGD(lr=0.1), X, Y, Xv, Yv, 6)
    m = MLP([4, 6, 2], seed=2)
    _run(m, optim.SGD(lr=0.1), X, Y, Xv, Yv, 3)
    path = m.save(tmp_path / "ck.npz")
    resumed = nn.Model.load(path)
    _run(resumed, optim.SGD(lr=0.1), X, Y, Xv, Yv, 6, initial_epoch=3)
    assert _same(_params(resumed), _params(full_model))
    restarted = nn.Model.load(path)
    _run(restarted, optim.SGD(lr=0.1), X, Y, Xv, Yv, 3)
    assert not _same(_params(restarted), _params(full_model))


def test_resume_with_a_per_step_schedule_and_model_checkpoint(tmp_path):
    X, Y, Xv, Yv = _data(4)

    def callbacks(ckpt=None):
        out = [nn.LearningRateScheduler(optim.CosineLR(40, 1e-4), per="step")]
        return out + ([ckpt] if ckpt else [])

    full_model = MLP([4, 6, 2], seed=1)
    full = _run(full_model, optim.Adam(lr=0.02), X, Y, Xv, Yv, 6, callbacks=callbacks())
    ckpt = nn.ModelCheckpoint(str(tmp_path / "ck-{epoch}.npz"))
    _run(MLP([4, 6, 2], seed=1), optim.Adam(lr=0.02), X, Y, Xv, Yv, 6,
         callbacks=callbacks(ckpt))
    assert len(ckpt.saved) == 6 and all(os.path.exists(p) for p in ckpt.saved)
    ck = nn.load_checkpoint(tmp_path / "ck-2.npz")
    rest = _run(ck.model, ck.optimizer, X, Y, Xv, Yv, 6, initial_epoch=ck.epoch,
                callbacks=callbacks())
    assert _same(_params(ck.model), _params(full_model))
    assert rest["val_loss"] == full["val_loss"][2:]
    # the checkpoint of the last epoch is the end of the run itself
    assert _same(_params(nn.Model.load(tmp_path / "ck-6.npz")), _params(full_model))
    # save_best_only saves when the monitored number improves
    best = nn.ModelCheckpoint(str(tmp_path / "best.npz"), save_best_only=True)
    h = _run(MLP([4, 6, 2], seed=1), optim.Adam(lr=0.02), X, Y, Xv, Yv, 6, callbacks=[best])
    drops = sum(v < min(h["val_loss"][:i], default=np.inf) for i, v in
                enumerate(h["val_loss"]))
    assert len(best.saved) == drops


def test_initial_epoch_errors():
    X, Y, _, _ = _data(n=20)
    with pytest.raises(NNError, match="initial_epoch"):
        fit(MLP([4, 2]), X, Y, epochs=3, initial_epoch=4, progress=False)
    with pytest.raises(NNError, match="initial_epoch"):
        fit(MLP([4, 2]), X, Y, epochs=3, initial_epoch=-1, progress=False)
    h = fit(MLP([4, 2]), X, Y, epochs=3, initial_epoch=3, progress=False)
    assert h["loss"] == [] and h.steps == 0


# ====================================================================== history
def test_history_table_and_str():
    h = nn.History(loss=[1.23456789, 0.5], val_loss=[2.0, 0.123456])
    h.initial_epoch = 4
    assert h.epochs == [5, 6]
    want = ("epoch   loss  val_loss\n"
            "    5  1.235         2\n"
            "    6    0.5    0.1235")
    assert h.table() == want and str(h) == want
    assert h.table(digits=2).splitlines()[1] == "    5   1.2         2"
    assert nn.History().table() == "epoch"


def test_history_to_frame(monkeypatch):
    X, Y, Xv, Yv = _data(n=30)
    h = fit(MLP([4, 2]), X, Y, epochs=3, validation=(Xv, Yv), progress=False)
    monkeypatch.setitem(sys.modules, "pandas", None)     # pandas not installed
    with pytest.raises(NNError, match="pip install pandas"):
        h.to_frame()
    monkeypatch.undo()
    pd = pytest.importorskip("pandas")
    df = h.to_frame()
    assert isinstance(df, pd.DataFrame) and df.index.name == "epoch"
    assert list(df.index) == [1, 2, 3] and list(df.columns) == list(h)
    assert df["val_loss"].tolist() == h["val_loss"]


# ====================================================================== plot
def test_plot_history_returns_a_figure(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    X, Y, Xv, Yv = _data(n=30)
    h = fit(MLP([4, 2]), X, Y, epochs=3, validation=(Xv, Yv), progress=False,
            schedule=optim.StepLR(1, 0.5))
    before = set(os.listdir(tmp_path))
    fig = nn.plot_history(h, title="toy")
    assert isinstance(fig, Figure) and set(os.listdir(tmp_path)) == before
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "r2", "lr"]
    lines = fig.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["train", "validation"]
    assert list(lines[1].get_ydata()) == h["val_loss"] and list(lines[0].get_xdata()) == \
        [1, 2, 3]
    path = tmp_path / "h.svg"
    assert isinstance(nn.plot_history(h, str(path)), Figure)
    assert path.read_bytes().lstrip().startswith(b"<?xml")
    with pytest.raises(NNError, match="empty"):
        nn.plot_history(nn.History(loss=[]))


# ====================================================================== progress
class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_off_a_terminal_is_one_line_per_epoch(capsys):
    """The 30-epoch run that tqdm redrew in one growing line (each redraw a
    carriage return) writes 30 short lines off a terminal, with the validation
    numbers."""
    X, Y, Xv, Yv = _data(n=200)
    fit(MLP([4, 8, 2], "tanh"), X, Y, epochs=30, batch_size=8, validation=(Xv, Yv))
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 30 and "\r" not in err
    for i, line in enumerate(lines, 1):
        assert line.startswith(f"fit: epoch {i}, step {25 * i}/750, loss ")
        assert ", r2 " in line and ", val_loss " in line and ", val_r2 " in line
    assert len(err.encode()) < 30 * 90       # measured: about 74 bytes a line


def test_progress_on_a_terminal_is_the_bar(monkeypatch):
    pytest.importorskip("tqdm")
    X, Y, Xv, Yv = _data(n=40)
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    fit(MLP([4, 2]), X, Y, epochs=2, batch_size=8, validation=(Xv, Yv))
    out = tty.getvalue()
    assert "\r" in out and "val_loss=" in out and "val_r2=" in out
    # "lines" on a terminal too, and no output at all with progress=False
    tty.seek(0)
    tty.truncate()
    fit(MLP([4, 2]), X, Y, epochs=2, batch_size=8, progress="lines")
    assert tty.getvalue().count("\n") == 2 and "\r" not in tty.getvalue()
    tty.seek(0)
    tty.truncate()
    fit(MLP([4, 2]), X, Y, epochs=2, progress=False)
    assert tty.getvalue() == ""
    with pytest.raises(NNError, match="progress"):
        fit(MLP([4, 2]), X, Y, epochs=1, progress="fancy")


# ====================================================================== the CLI
def test_cli_train_save(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from matdiff.nn.cli import main

    path = tmp_path / "neuron.npz"
    assert main(["neuron", "--epochs", "3", "--save", str(path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"saved the model to {path}" in out
    m = nn.Model.load(path)
    assert isinstance(m, Neuron) and m.n_in == 10
    # checked before training: a directory that does not exist, a wrong suffix
    assert main(["mlp", "--save", str(tmp_path / "no" / "m.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["mlp", "--save", str(tmp_path / "m.pkl")]) == 2
    assert ".npz" in capsys.readouterr().err
    assert main(["mlp", "--help"]) == 0
    assert "--save PATH" in capsys.readouterr().out


# ====================================================================== docstrings
def test_public_classes_and_functions_have_examples():
    """Every public class and function of nn and optim shows a runnable example
    (test_doctests runs them); the errors are matdiff.errors'."""
    missing = []
    for mod in (nn, optim):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) \
                    and not issubclass_safe(obj, MatdiffError) \
                    and ">>>" not in (obj.__doc__ or ""):
                missing.append(f"{mod.__name__}.{name}")
    assert missing == []


def issubclass_safe(obj, cls) -> bool:
    return inspect.isclass(obj) and issubclass(obj, cls)


def test_pickle_keeps_working_with_the_new_state(tmp_path):
    opt = optim.Adam({"w": np.zeros(3)}, lr=0.1, clip_norm=1.0)
    opt.step({"w": np.ones(3)})
    again = pickle.loads(pickle.dumps(opt))
    assert again.clip_norm == 1.0 and again.steps == 1
    h = fit(MLP([4, 2]), *_data(n=20)[:2], epochs=2, progress=False)
    h2 = pickle.loads(pickle.dumps(h))
    assert h2 == h and h2.steps == h.steps and str(h2) == str(h)


def test_progress_in_a_notebook_is_the_bar(monkeypatch):
    """A Jupyter kernel's stderr is no terminal, yet tqdm draws a widget there."""
    import types

    from matdiff.nn import train

    assert not train._interactive()          # pytest's captured stderr
    shell = types.SimpleNamespace(kernel=object())
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert train._interactive()
    # a terminal IPython (no kernel) is judged by its stderr
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: None))
    assert not train._interactive()


def test_a_users_optimizer_of_the_same_name_replaces_none(tmp_path):
    class Adam(optim.Adam):       # a user's class that happens to share the name
        pass

    assert optim.OPTIMIZER_CLASSES["Adam"] is optim.Adam
    m = MLP([3, 2])
    mine = Adam(m.params, lr=0.1)
    assert mine.state_dict()["optimizer"].endswith("<locals>.Adam")
    ck = nn.load_checkpoint(m.save(tmp_path / "m.npz", optimizer=optim.Adam(m.params)))
    assert type(ck.optimizer) is optim.Adam
    with pytest.raises(DataError, match="not of"):
        optim.Adam(m.params).load_state_dict(mine.state_dict())


def test_a_config_of_many_layers_is_refused_before_it_is_built(tmp_path):
    good = _valid_arrays(tmp_path)
    meta = _meta(good)
    meta["model"]["config"]["sizes"] = [1] * 10**5     # under the 1 MB of text allowed
    path = tmp_path / "deep.npz"
    with open(path, "wb") as f:
        np.savez(f, **_with_meta(good, meta))
    with pytest.raises(DataError, match="more sizes"):
        nn.Model.load(path)
