"""The optimizers' fused updates (one Numba loop per optimizer, ``optim._KERNELS_SRC``)
equal their NumPy updates bit for bit (tolerance 0: the same operations in the same
order, ``fastmath=False``, correctly rounded ``√`` and ``/``), and the NumPy update
stays where Numba is missing, fusion is off, or the kernel's price is not yet paid."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import matdiff as md
from matdiff import optim
from matdiff.compile import fuse
from matdiff.errors import DataError

pytest.importorskip("numba")

#: every update with a kernel, with the options that change its arithmetic
CASES = [
    ("adam", {}),
    ("adam", {"weight_decay": 0.1}),                       # L2 into the gradient
    ("adam", {"weight_decay": 1.0, "betas": (0.5, 0.9)}),  # _axpy's a = 1 branch
    ("adamw", {}),                                         # decoupled, default 0.01
    ("adamw", {"weight_decay": 0.3, "eps": 1e-3, "clip_norm": 0.5}),
    ("sgd", {}),
    ("sgd", {"lr": 1.0, "weight_decay": 0.2}),             # a = −1 branch
    ("momentum", {"dampening": 0.25, "weight_decay": 0.05}),
    ("momentum", {"dampening": 0.0, "clip_norm": 1.0}),
    ("nesterov", {"weight_decay": 0.01}),
]


@pytest.fixture
def fused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fuse from the first step (no price to pay first)."""
    monkeypatch.setitem(optim.fused_settings, "enabled", True)
    monkeypatch.setitem(optim.fused_settings, "start_s", 0.0)
    monkeypatch.setitem(optim.fused_settings, "load_s", 0.0)


def _model() -> md.nn.MLP:
    # W1 (40 x 500 = 20000, a big segment of its own), b1, W2, b2 (one small segment
    # of 40 + 400 + 10 = 450 numbers)
    return md.nn.MLP([500, 40, 10], "relu", seed=3)


def _grads(model: md.nn.MLP, steps: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{k: rng.standard_normal(p.shape) * 3.0 for k, p in model.params.items()}
            for _ in range(steps)]


def _run(name: str, kw: dict, fuse_on: bool, steps: int = 6,
         ) -> tuple[dict[str, np.ndarray], dict, optim.Optimizer]:
    model = _model()
    opt = optim.make_optimizer(name, model.params, **kw)
    saved = optim.fused_settings["enabled"]
    optim.fused_settings["enabled"] = fuse_on
    try:
        for g in _grads(model, steps):
            opt.step(g)
    finally:
        optim.fused_settings["enabled"] = saved
    return {k: p.copy() for k, p in model.params.items()}, opt.state_dict(), opt


def _equal(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(("name", "kw"), CASES)
def test_fused_equals_numpy_bit_for_bit(fused: None, name: str, kw: dict) -> None:
    p_np, sd_np, opt_np = _run(name, kw, False)
    p_fu, sd_fu, opt_fu = _run(name, kw, True)
    assert opt_np._fuse is None and opt_fu._fuse  # each ran the way it was told
    assert not _equal(p_np, _run(name, kw, False, steps=5)[0])  # the steps count
    assert _equal(p_np, p_fu)                                # tolerance 0
    for k in sd_np["state"]:
        assert _equal(sd_np["state"][k], sd_fu["state"][k])
    assert sd_np["steps"] == sd_fu["steps"] == 6


def test_fused_equals_torch(fused: None) -> None:
    """The fused Adam is torch's Adam (as the NumPy one is, test_optim.py)."""
    torch = pytest.importorskip("torch")
    model = _model()
    opt = optim.Adam(model.params, lr=0.01, weight_decay=0.1)
    tp = {k: torch.tensor(p.copy(), requires_grad=True) for k, p in model.params.items()}
    topt = torch.optim.Adam(list(tp.values()), lr=0.01, weight_decay=0.1)
    for g in _grads(model, 4):
        opt.step(g)
        for k, t in tp.items():
            t.grad = torch.tensor(g[k])
        topt.step()
    assert opt._fuse
    for k, p in model.params.items():
        np.testing.assert_allclose(p, tp[k].detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "kw"), CASES)
def test_kernels_per_dtype(name: str, kw: dict, dtype: type) -> None:
    """Each kernel on float32 and on float64 arrays equals the NumPy update in that
    dtype (the optimizers take float64 parameters; the kernels are dtype-generic,
    their scalars cast to the arrays' dtype as NumPy casts a Python float)."""
    kernels = optim._kernels()
    assert kernels is not None
    opt = optim.make_optimizer(name, **kw)
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(3000).astype(dtype)
    groups = [optim._Group(p0.copy(), opt.slots, [0]) for _ in range(2)]
    for t in range(1, 5):
        g = (rng.standard_normal(3000) * 2).astype(dtype)
        opt._update(groups[0], g.copy(), t)
        assert opt._fused(kernels, groups[1], g.copy(), t)
    for a, b in [(groups[0].p, groups[1].p)] + [
            (groups[0].slots[s], groups[1].slots[s]) for s in opt.slots]:
        assert a.dtype == b.dtype == dtype
        assert np.array_equal(a, b)
    assert not np.array_equal(groups[0].p, p0)


def test_float32_parameters_still_refused() -> None:
    with pytest.raises(DataError, match="float64"):
        optim.Adam({"w": np.zeros(3, np.float32)})


def test_resumed_fused_run_equals_uninterrupted(fused: None) -> None:
    """state_dict after 3 fused steps, loaded into a new optimizer, 3 more fused
    steps: the same as 6 NumPy steps in one run."""
    for name, kw in [("adam", {"weight_decay": 0.1}), ("adamw", {}), ("nesterov", {})]:
        p_np, sd_np, _ = _run(name, kw, False, steps=6)
        model = _model()
        gs = _grads(model, 6)
        opt = optim.make_optimizer(name, model.params, **kw)
        for g in gs[:3]:
            opt.step(g)
        sd = opt.state_dict()
        params = {k: p.copy() for k, p in model.params.items()}
        model2 = _model()
        for k, p in model2.params.items():
            p[...] = params[k]
        again = optim.Optimizer.from_state_dict(sd, model2.params)
        for g in gs[3:]:
            again.step(g)
        assert again._fuse
        assert _equal(p_np, dict(model2.params))
        for k in sd_np["state"]:
            assert _equal(sd_np["state"][k], again.state_dict()["state"][k])


def test_parameters_not_in_a_flat_buffer(fused: None) -> None:
    """Separate arrays, one of them a transposed (not C-contiguous) view: the
    contiguous ones fused, the other by NumPy, all equal to the NumPy update."""
    rng = np.random.default_rng(2)
    base = {"A": rng.standard_normal((300, 20)), "B": rng.standard_normal((40, 50)).T,
            "c": rng.standard_normal(5)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in base.items()} for _ in range(3)]
    out = []
    for on in (False, True):
        params = {k: (v.T.copy().T if k == "B" else v.copy()) for k, v in base.items()}
        assert not params["B"].flags.c_contiguous
        opt = optim.Adam(params, lr=0.05, weight_decay=0.2)
        optim.fused_settings["enabled"] = on
        for g in grads:
            opt.step(g)
        out.append(params)
    assert _equal(out[0], out[1])


def test_numba_missing_gives_numpy(fused: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(optim, "_KERNELS", None)
    monkeypatch.setattr(fuse, "numba_available", lambda: False)
    p_np, _, _ = _run("adam", {"weight_decay": 0.1}, False)
    p, _, opt = _run("adam", {"weight_decay": 0.1}, True)
    assert opt._fuse is False and optim._KERNELS is False
    assert _equal(p_np, p)


def test_broken_numba_gives_numpy(fused: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel module that cannot be made (here: a source that raises) is no error."""
    monkeypatch.setattr(optim, "_KERNELS", None)
    monkeypatch.setattr(optim, "_KERNELS_SRC", "raise ImportError('no numba here')\n")
    p_np, _, _ = _run("momentum", {}, False)
    p, _, opt = _run("momentum", {}, True)
    assert opt._fuse is False and _equal(p_np, p)


def test_fusion_off_in_process(fused: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(optim.fused_settings, "enabled", False)
    model = _model()
    opt = optim.Adam(model.params)
    for g in _grads(model, 2):
        opt.step(g)
    assert opt._fuse is None


def test_env_turns_fusion_off_and_numba_is_not_imported_early() -> None:
    """``MATDIFF_FUSE=0``: the setting is off.  By default, a short run (its NumPy
    updates far from the price of Numba's start-up) does not import Numba."""
    code = ("import sys, numpy as np, matdiff as md\n"
            "m = md.nn.MLP([500, 40, 10], 'relu', seed=0)\n"
            "o = md.optim.Adam(m.params)\n"
            "for _ in range(20):\n"
            "    o.step({k: np.ones(p.shape) for k, p in m.params.items()})\n"
            "print(md.optim.fused_settings['enabled'], 'numba' in sys.modules,"
            " o._fuse)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for value, want in [("0", "False False None"), ("1", "True False None")]:
        env["MATDIFF_FUSE"] = value
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=120, check=True).stdout.split()
        assert " ".join(out) == want


def test_ski_rental(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernels come once the NumPy update has taken their price, not before."""
    monkeypatch.setitem(optim.fused_settings, "enabled", True)
    monkeypatch.setitem(optim.fused_settings, "load_s", 3600.0)
    monkeypatch.setitem(optim.fused_settings, "start_s", 3600.0)
    monkeypatch.setattr(optim, "_KERNELS", None)   # as in a process that has none yet
    model = _model()
    opt = optim.Adam(model.params)
    gs = _grads(model, 3)
    opt.step(gs[0])
    assert opt._fuse is None and opt._spent > 0   # rent paid, price not reached
    opt._spent = 3600.0                              # as after an hour of updates
    opt.step(gs[1])
    assert opt._fuse and optim._KERNELS
    # another optimizer in this process: the kernels are here, no price
    other = optim.SGD(_model().params, momentum=0.9)
    other.step(gs[2])
    assert other._fuse


def test_subclass_with_its_own_update_keeps_it(fused: None) -> None:
    class Halved(optim.Adam):
        def _update(self, grp, g, t):  # type: ignore[no-untyped-def]
            g *= 0.5
            super()._update(grp, g, t)

    model = _model()
    opt = Halved(model.params)
    opt.step(_grads(model, 1)[0])
    assert not opt._has_kernel and opt._fuse is None
    assert optim.AdamW(model.params)._has_kernel


@pytest.mark.parametrize(("name", "kw"), CASES)
def test_tiny_model_fused_equals_numpy(fused: None, name: str, kw: dict) -> None:
    """A neuron's 4 numbers (w and a 0-d b) in one segment: fused, and equal."""
    out = []
    for on in (False, True):
        model = md.nn.Neuron(3, seed=1)
        opt = optim.make_optimizer(name, model.params, **kw)
        optim.fused_settings["enabled"] = on
        rng = np.random.default_rng(4)
        for _ in range(4):
            opt.step({k: rng.standard_normal(p.shape) for k, p in model.params.items()})
        assert bool(opt._fuse) == on
        out.append({k: p.copy() for k, p in model.params.items()})
    assert _equal(out[0], out[1])


def test_fused_optimizer_pickles_and_continues(fused: None) -> None:
    """After fused steps the optimizer still pickles (it holds a flag, not the kernel
    module), and the copy, bound to copied parameters, continues as the original."""
    import copy
    import pickle

    model = _model()
    opt = optim.Adam(model.params, lr=0.01, weight_decay=0.1)
    gs = _grads(model, 4)
    for g in gs[:2]:
        opt.step(g)
    assert opt._fuse
    model2 = pickle.loads(pickle.dumps(model))
    again = pickle.loads(pickle.dumps(opt))
    assert copy.deepcopy(opt)._fuse
    again.bind(model2.params)
    again.load_state_dict(opt.state_dict())
    for g in gs[2:]:
        opt.step(g)
        again.step(g)
    assert again._fuse and _equal(dict(model.params), dict(model2.params))
