"""Flat parameter buffers, the optimizers' flat / per-parameter / BLAS paths, and
``md.nn.TrainStep``: checked against ``torch.optim`` and NumPy written out by hand."""

from __future__ import annotations

import numpy as np
import pytest

try:  # the reference for the optimizers; tests that need it skip without it
    import torch
except ImportError:  # pragma: no cover - the dev extra installs torch
    torch = None

import matdiff as md
import matdiff.optim as mo
from matdiff.nn import (
    MLP,
    DataError,
    Dense,
    Neuron,
    NNError,
    NonFiniteLossError,
    ParamDict,
    TrainStep,
    fit,
)

RTOL, ATOL = 1e-12, 1e-14


def _addr(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _assert_tiles(params) -> None:
    """Every array of ``params`` is a view of ``params.flat``, in order, no gaps."""
    flat = params.flat
    assert isinstance(flat, np.ndarray) and flat.ndim == 1 and flat.dtype == np.float64
    assert mo.flat_buffer(params) is flat
    off = 0
    for p in params.values():
        assert np.shares_memory(p, flat)
        assert p.flags.c_contiguous
        assert _addr(p) == _addr(flat) + off * flat.itemsize
        off += p.size
    assert off == flat.size
    # the numbers: writing through the flat buffer is seen by every parameter
    saved = flat.copy()
    flat[...] = np.arange(flat.size, dtype=float)
    off = 0
    for p in params.values():
        np.testing.assert_array_equal(p.reshape(-1), np.arange(off, off + p.size))
        off += p.size
    flat[...] = saved


# ====================================================================== 1. flat views
def test_neuron_and_dense_params_tile_one_buffer():
    n = Neuron(3, seed=1)
    assert list(n.params) == ["w", "b"] and n.params["b"].shape == ()
    _assert_tiles(n.params)
    d = Dense(4, 2, "tanh", seed=2)
    assert list(d.params) == ["W", "b"]
    _assert_tiles(d.params)
    assert d.params.flat.size == 4 * 2 + 2


def test_mlp_params_are_views_shared_with_its_layers():
    rng = np.random.default_rng(0)
    m = MLP([5, 7, 3], seed=3)
    assert list(m.params) == ["W1", "b1", "W2", "b2"]
    _assert_tiles(m.params)
    assert m.params.flat.size == 5 * 7 + 7 + 7 * 3 + 3
    for layer in m.layers:
        for k in layer.params:
            assert layer.params[k] is m.params[k]
        _assert_tiles(layer.params)
        assert np.shares_memory(layer.params.flat, m.params.flat)
    for k in ("b1", "b2"):
        m.params[k][...] = rng.normal(size=m.params[k].shape)
    X = rng.normal(size=(6, 5))
    p = {k: v.copy() for k, v in m.params.items()}
    by_hand = np.maximum(X @ p["W1"] + p["b1"], 0) @ p["W2"] + p["b2"]
    np.testing.assert_allclose(m.predict(X), by_hand, rtol=1e-12, atol=1e-14)
    first = m.layers[0].predict(X)
    np.testing.assert_allclose(first, np.maximum(X @ p["W1"] + p["b1"], 0), rtol=1e-12)
    # an update through the MLP's dict is seen by the layer (and vice versa)
    m.params["W1"][...] = 0
    np.testing.assert_array_equal(m.layers[0].params["W1"], np.zeros((5, 7)))
    after = m.layers[0].predict(X)
    np.testing.assert_allclose(after, np.broadcast_to(np.maximum(p["b1"], 0), (6, 7)),
                               rtol=1e-12)
    assert not np.allclose(after, first)
    m.layers[1].params["b2"][...] = 5.0
    np.testing.assert_array_equal(m.params["b2"], np.full(3, 5.0))
    _assert_tiles(m.params)


def test_state_dict_round_trip_keeps_the_flat_buffer():
    m, other = MLP([5, 7, 3], seed=3), MLP([5, 7, 3], seed=9)
    ids = {k: id(v) for k, v in m.params.items()}
    flat = m.params.flat
    sd = m.state_dict()
    assert all(not np.shares_memory(v, flat) for v in sd.values())
    m.params.flat[...] = 0.0
    np.testing.assert_array_equal(m.params["W2"], 0.0)   # state_dict made copies
    m.load_state_dict(sd)
    for k in m.params:
        assert id(m.params[k]) == ids[k]
        np.testing.assert_array_equal(m.params[k], sd[k])
    assert m.params.flat is flat
    _assert_tiles(m.params)
    m.load_state_dict(other.state_dict())
    X = np.random.default_rng(1).normal(size=(4, 5))
    np.testing.assert_array_equal(m.predict(X), other.predict(X))
    assert m.params.flat is flat and all(id(m.params[k]) == ids[k] for k in m.params)
    _assert_tiles(m.params)
    assert mo.SGD(m.params).flat is flat


# ====================================================================== 2. vs torch
SHAPES = {"a": (3, 4), "s": (), "big": (130, 130), "big2": (129, 128), "v": (5,)}

CONFIGS = {
    "sgd": (lambda p: mo.SGD(p, lr=0.05), lambda p: torch.optim.SGD(p, lr=0.05)),
    "sgd-wd": (lambda p: mo.SGD(p, lr=0.05, weight_decay=0.1),
               lambda p: torch.optim.SGD(p, lr=0.05, weight_decay=0.1)),
    "momentum": (lambda p: mo.SGD(p, lr=0.05, momentum=0.9),
                 lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    "momentum-wd": (lambda p: mo.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.1),
                    lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.1)),
    "dampening": (lambda p: mo.SGD(p, lr=0.05, momentum=0.8, dampening=0.3),
                  lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.3)),
    "dampening-wd": (
        lambda p: mo.SGD(p, lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.1),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.3,
                                  weight_decay=0.1)),
    "nesterov": (lambda p: mo.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
                 lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
    "nesterov-wd": (
        lambda p: mo.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True,
                                  weight_decay=0.1)),
    "adam": (lambda p: mo.Adam(p, lr=0.01, betas=(0.8, 0.95)),
             lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.95))),
    "adam-wd": (lambda p: mo.Adam(p, lr=0.01, betas=(0.8, 0.95), weight_decay=0.1),
                lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.95), weight_decay=0.1)),
    "adamw": (lambda p: mo.AdamW(p, lr=0.01, weight_decay=0.1),
              lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    "adamw-betas": (lambda p: mo.AdamW(p, lr=0.02, betas=(0.8, 0.95), weight_decay=0.3),
                    lambda p: torch.optim.AdamW(p, lr=0.02, betas=(0.8, 0.95),
                                                weight_decay=0.3)),
}


def _initial(seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=s) for k, s in shapes.items()}


def _grads(rng, p0, scale=1.0):
    return {k: np.asarray(scale * rng.normal(size=np.shape(v))) for k, v in p0.items()}


class _Torch:
    """torch.optim over copies of ``p0``, stepped with given gradients."""

    def __init__(self, make, p0):
        pytest.importorskip("torch")
        self.t = {k: torch.tensor(np.array(v, dtype=np.float64), requires_grad=True)
                  for k, v in p0.items()}
        self.opt = make(list(self.t.values()))

    def step(self, grads):
        for k, p in self.t.items():
            p.grad = torch.tensor(np.array(grads[k], dtype=np.float64))
        self.opt.step()

    def check(self, params, what=""):
        for k, tp in self.t.items():
            np.testing.assert_allclose(params[k], tp.detach().numpy(), rtol=RTOL, atol=ATOL,
                                       err_msg=f"{what} parameter {k}")

    def state(self, k, slot):
        return self.opt.state[self.t[k]][slot].numpy()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_flat_equals_per_parameter_equals_torch(name):
    make_md, make_torch = CONFIGS[name]
    p0 = _initial()
    flat = ParamDict.tile(p0)
    sep = {k: v.copy() for k, v in p0.items()}
    of, op = make_md(flat), make_md(sep)
    assert of.flat is flat.flat and op.flat is None
    ref = _Torch(make_torch, p0)
    rng = np.random.default_rng(1)
    for t in range(1, 7):
        g = _grads(rng, p0)
        of.step(g)
        op.step(g)
        ref.step(g)
        ref.check(flat, f"flat, step {t}")
        ref.check(sep, f"per-parameter, step {t}")
        assert of.steps == op.steps == t
        slots = ("exp_avg", "exp_avg_sq") if isinstance(of, mo.Adam) else of.slots
        for k in p0:
            for slot in slots:
                want = ref.state(k, slot)
                np.testing.assert_allclose(of.state[k][slot], want, rtol=RTOL, atol=ATOL)
                np.testing.assert_allclose(op.state[k][slot], want, rtol=RTOL, atol=ATOL)
            assert of.state[k]["step"] == op.state[k]["step"] == t
    if isinstance(of, mo.Adam):
        for k in p0:
            np.testing.assert_allclose(of.state[k]["exp_avg"],
                                       ref.opt.state[ref.t[k]]["exp_avg"].numpy(),
                                       rtol=RTOL, atol=ATOL)
            assert float(ref.opt.state[ref.t[k]]["step"]) == of.state[k]["step"]
    elif getattr(of, "momentum", 0):
        assert of.slots == ("momentum_buffer",)
    # the flat buffer is still the one tiled and updated in place
    _assert_tiles(flat)


def test_many_small_parameters_and_subset_flat():
    """Many small parameters share one segment; a subset of a flat dict is flat too."""
    shapes = {f"p{i}": (i % 4 + 1, 3) if i % 3 else () for i in range(25)}
    p0 = _initial(5, shapes)
    flat = ParamDict.tile(p0)
    sub = flat.subset([f"p{i}" for i in range(5, 12)])
    _assert_tiles(sub)
    make_md, make_torch = CONFIGS["adam-wd"]
    for params in (flat, sub):
        before = {k: v.copy() for k, v in flat.items()}
        opt = make_md(params)
        assert opt.flat is params.flat
        ref = _Torch(make_torch, {k: params[k] for k in params})
        rng = np.random.default_rng(2)
        for _ in range(4):
            g = _grads(rng, params)
            opt.step(g)
            ref.step(g)
            ref.check(params)
        for k in flat:  # the parameters outside the subset are untouched
            if k not in params:
                np.testing.assert_array_equal(flat[k], before[k])


# ====================================================================== 3. BLAS / NumPy
def _run(make_md, p0, grads_list, flat):
    params = ParamDict.tile(p0) if flat else {k: v.copy() for k, v in p0.items()}
    opt = make_md(params)
    assert (opt.flat is not None) == flat
    for g in grads_list:
        opt.step(g)
    return params, opt


@pytest.mark.parametrize("name", ["nesterov-wd", "adam-wd", "adamw"])
def test_non_contiguous_parameters_update_in_place(name):
    make_md, make_torch = CONFIGS[name]
    rng = np.random.default_rng(6)
    base_t = rng.normal(size=(4, 3))
    base_s = rng.normal(size=10)
    base_b = rng.normal(size=(140, 130))
    params = {"T": base_t.T, "s": base_s[::2], "c": rng.normal(size=(2, 2)),
              "B": base_b.T}
    assert not params["T"].flags.c_contiguous and not params["s"].flags.c_contiguous
    assert params["B"].size >= mo._BIG and not params["B"].flags.c_contiguous
    ids = {k: id(v) for k, v in params.items()}
    opt = make_md(params)
    assert opt.flat is None
    ref = _Torch(make_torch, params)
    for _ in range(4):
        g = _grads(rng, params)
        opt.step(g)
        ref.step(g)
        ref.check(params)
    assert all(id(params[k]) == ids[k] for k in params)
    # the updates landed in the arrays the views look into
    np.testing.assert_allclose(base_t, ref.t["T"].detach().numpy().T, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(base_s[::2], ref.t["s"].detach().numpy(), rtol=RTOL,
                               atol=ATOL)
    np.testing.assert_allclose(base_b, ref.t["B"].detach().numpy().T, rtol=RTOL, atol=ATOL)


# ====================================================================== 4. owned / aliasing
@pytest.mark.parametrize("name", ["nesterov-wd", "adam-wd", "adamw"])
@pytest.mark.parametrize("flat", [True, False])
def test_step_arrays_owned_equals_not_owned_and_step(name, flat):
    make_md, make_torch = CONFIGS[name]
    p0 = _initial(7)
    def mk():
        return ParamDict.tile(p0) if flat else {k: v.copy() for k, v in p0.items()}

    pd, pn, po = mk(), mk(), mk()
    od, on, oo = make_md(pd), make_md(pn), make_md(po)
    ref = _Torch(make_torch, p0)
    rng = np.random.default_rng(8)
    for _ in range(4):
        g = _grads(rng, p0)
        keep = {k: v.copy() for k, v in g.items()}
        od.step(g)
        lst = [g[k] for k in p0]
        on.step_arrays(lst, owned=False)
        oo.step_arrays([v.copy() for v in lst], owned=True)
        ref.step(keep)
        for k in p0:   # without owned, the caller's gradients are left alone
            np.testing.assert_array_equal(g[k], keep[k])
        for k in p0:
            np.testing.assert_allclose(pn[k], pd[k], rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(po[k], pd[k], rtol=1e-13, atol=1e-15)
        ref.check(pd, "step")
        ref.check(po, "owned")


BIG2 = {"s": (3,), "A": (130, 130), "B": (130, 130), "t": (2,)}


def _aliased(kind, g):
    if kind == "same":
        return g, g
    if kind == "transpose":
        return g, g.T
    if kind == "transpose-first":
        return g.T, g
    if kind == "ellipsis":
        return g, g[...]
    if kind == "reshape":
        return g.reshape(-1).reshape(g.shape), g
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["same", "transpose", "transpose-first", "ellipsis",
                                  "reshape"])
@pytest.mark.parametrize("name", ["nesterov-wd", "adam-wd"])
@pytest.mark.parametrize("flat", [True, False])
@pytest.mark.parametrize("owned", [True, False])
def test_aliased_gradients_do_not_corrupt_each_other(kind, name, flat, owned):
    make_md, make_torch = CONFIGS[name]
    p0 = _initial(9, BIG2)
    params = ParamDict.tile(p0) if flat else {k: v.copy() for k, v in p0.items()}
    sep = ParamDict.tile(p0) if flat else {k: v.copy() for k, v in p0.items()}
    opt, opt_sep = make_md(params), make_md(sep)
    ref = _Torch(make_torch, p0)
    rng = np.random.default_rng(10)
    for _ in range(3):
        gs, gt, g = rng.normal(size=3), rng.normal(size=2), rng.normal(size=(130, 130))
        ga, gb = _aliased(kind, g)
        want = {"s": gs.copy(), "A": ga.copy(), "B": gb.copy(), "t": gt.copy()}
        ref.step(want)
        opt_sep.step_arrays([want[k].copy() for k in BIG2], owned=owned)
        opt.step_arrays([gs, ga, gb, gt], owned=owned)
        ref.check(params, f"aliased {kind}")
        ref.check(sep, "separate copies")
        for k in BIG2:
            np.testing.assert_allclose(params[k], sep[k], rtol=1e-13, atol=1e-15)


# ====================================================================== 5. check_finite
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["a", "s", "big", "v"])
@pytest.mark.parametrize("name", ["nesterov-wd", "adam-wd", "adamw", "sgd"])
@pytest.mark.parametrize("mode", ["flat-step", "flat-owned", "per-param"])
def test_check_finite_leaves_everything_unchanged(bad, where, name, mode):
    make_md, make_torch = CONFIGS[name]
    shapes = {k: SHAPES[k] for k in ("a", "s", "big", "v")}
    p0 = _initial(11, shapes)
    params = ParamDict.tile(p0) if mode.startswith("flat") else {k: v.copy()
                                                                for k, v in p0.items()}
    opt = make_md(params)
    ref = _Torch(make_torch, p0)
    rng = np.random.default_rng(12)
    for _ in range(2):
        g = _grads(rng, p0)
        opt.step(g)
        ref.step(g)
    before = {k: v.copy() for k, v in params.items()}
    state = {k: {s: (v.copy() if isinstance(v, np.ndarray) else v) for s, v in st.items()}
             for k, st in opt.state.items()}
    g = _grads(rng, p0)
    idx = (1, 2) if where == "a" else (77, 3) if where == "big" else () if where == "s" \
        else (4,)
    g[where][idx] = bad
    with pytest.raises(NonFiniteLossError):
        if mode == "flat-owned":
            opt.step_arrays([g[k] for k in p0], check_finite=True, owned=True)
        else:
            opt.step(g, check_finite=True)
    assert opt.steps == 2
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])
        assert set(opt.state[k]) == set(state[k])
        for s, v in state[k].items():
            np.testing.assert_array_equal(opt.state[k][s], v)
    # the failed step left no trace: the next ones still follow torch
    for _ in range(2):
        g = _grads(rng, p0)
        opt.step(g, check_finite=True)
        ref.step(g)
        ref.check(params)
    assert opt.steps == 4


def test_check_finite_off_lets_nan_through():
    params = ParamDict.tile({"w": np.zeros(3)})
    opt = mo.SGD(params, lr=0.1)
    opt.step({"w": np.array([1.0, np.nan, 2.0])})
    np.testing.assert_array_equal(np.isnan(params["w"]), [False, True, False])
    np.testing.assert_allclose(params["w"][[0, 2]], [-0.1, -0.2], rtol=1e-15)


# ====================================================================== 6. replaced arrays
@pytest.mark.parametrize("flat", [True, False])
def test_replaced_parameter_is_detected_and_rebind_works(flat):
    p0 = {"w": np.arange(3.0), "b": np.zeros(()), "u": np.ones(2)}
    params = ParamDict.tile(p0) if flat else {k: v.copy() for k, v in p0.items()}
    opt = mo.SGD(params, lr=0.1)
    opt.step({"w": np.ones(3), "b": 1.0, "u": np.ones(2)})
    np.testing.assert_allclose(params["w"], [-0.1, 0.9, 1.9], rtol=1e-15)
    params["w"] = np.zeros(3)
    g = {"w": np.array([1.0, 2.0, 3.0]), "b": np.array(2.0), "u": np.array([1.0, -1.0])}
    old = {k: v.copy() for k, v in params.items()}
    with pytest.raises(NNError, match="replaced"):
        opt.step(g)
    with pytest.raises(NNError, match="replaced"):
        opt.step_arrays([g[k] for k in params], owned=True)
    for k in params:
        np.testing.assert_array_equal(params[k], old[k])
    opt.bind(params)
    assert opt.flat is None and opt.steps == 0
    opt.step(g)
    np.testing.assert_allclose(params["w"], [-0.1, -0.2, -0.3], rtol=1e-15)
    np.testing.assert_allclose(params["b"], -0.1 - 0.2, rtol=1e-15)
    np.testing.assert_allclose(params["u"], [0.8, 1.0], rtol=1e-15)
    # adding a parameter after binding is caught too
    params["extra"] = np.zeros(2)
    with pytest.raises(NNError, match="replaced"):
        opt.step_arrays([np.zeros(3), np.zeros(()), np.zeros(2), np.zeros(2)])


def test_unbound_optimizer_errors():
    opt = mo.Adam(lr=0.1)
    with pytest.raises(NNError, match="bind"):
        opt.step({})
    with pytest.raises(NNError, match="bind"):
        opt.step_arrays([])


# ====================================================================== 7. TrainStep
def _train_step_case(kind):
    rng = np.random.default_rng(13)
    if kind == "mlp":
        make = lambda: MLP([4, 6, 3], seed=2)  # noqa: E731
        loss = "cross_entropy"
        batches = [(rng.normal(size=(8, 4)), rng.integers(0, 3, size=8)) for _ in range(3)]
        batches.append((rng.normal(size=(5, 4)), rng.integers(0, 3, size=5)))
        batches.append((rng.normal(size=(8, 4)), rng.integers(0, 3, size=8)))
    elif kind == "big-mlp":   # W1 is big: its gradient is used where it lies
        make = lambda: MLP([130, 130, 2], "tanh", seed=4)  # noqa: E731
        loss = "cross_entropy"
        batches = [(rng.normal(size=(6, 130)), rng.integers(0, 2, size=6))
                   for _ in range(2)]
        batches.append((rng.normal(size=(3, 130)), rng.integers(0, 2, size=3)))
    else:
        make = lambda: Neuron(3, seed=1)  # noqa: E731
        loss = "mse"
        batches = [(rng.normal(size=(10, 3)), rng.normal(size=10)) for _ in range(3)]
        batches.append((rng.normal(size=(7, 3)), rng.normal(size=7)))
    return make, loss, batches


@pytest.mark.parametrize("kind", ["mlp", "neuron", "big-mlp"])
@pytest.mark.parametrize("opt_name", ["adam", "nesterov-wd"])
def test_train_step_matches_value_and_grad_and_optimizer(kind, opt_name):
    make, loss, batches = _train_step_case(kind)
    make_opt = {"adam": lambda p=None: mo.Adam(p, lr=0.01, weight_decay=0.05),
                "nesterov-wd": lambda p=None: mo.SGD(p, lr=0.05, momentum=0.9, nesterov=True,
                                                     weight_decay=0.1)}[opt_name]
    model, twin = make(), make()
    if kind == "mlp":
        for k in ("b1", "b2"):
            model.params[k][...] = twin.params[k][...] = 0.1 * np.arange(
                model.params[k].size)
    opt = make_opt()
    step = TrainStep(model, loss, opt)
    assert opt.params is model.params and opt.flat is model.params.flat
    twin_opt = make_opt(twin.params)
    for X, y in batches:
        want, grads = twin.value_and_grad(X, y, loss)
        got = step(X, y)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15)
        twin_opt.step(grads)
        for k in model.params:
            np.testing.assert_allclose(model.params[k], twin.params[k], rtol=1e-12,
                                       atol=1e-14, err_msg=k)
    assert opt.steps == len(batches)
    _assert_tiles(model.params)


def test_train_step_gradients_are_torchs():
    """One TrainStep of plain SGD moves the MLP by −lr · (torch's gradient)."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(14)
    m = MLP([4, 6, 3], "tanh", seed=6)
    p0 = {k: v.copy() for k, v in m.params.items()}
    X, y = rng.normal(size=(9, 4)), rng.integers(0, 3, size=9)
    step = TrainStep(m, "cross_entropy", "sgd", lr=0.5)
    value = step(X, y)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p0.items()}
    h = torch.tanh(torch.tensor(X) @ tp["W1"] + tp["b1"])
    L = torch.nn.functional.cross_entropy(h @ tp["W2"] + tp["b2"], torch.tensor(y))
    L.backward()
    assert value == pytest.approx(L.item(), rel=1e-12)
    for k, p in tp.items():
        np.testing.assert_allclose(m.params[k], p0[k] - 0.5 * p.grad.numpy(), rtol=1e-12,
                                   atol=1e-14)


def test_train_step_errors_leave_parameters_unchanged():
    rng = np.random.default_rng(15)
    m = MLP([4, 6, 3], seed=2)
    opt = mo.Adam(lr=0.01)
    step = TrainStep(m, "cross_entropy", opt)
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, size=8)
    step(X, y)
    before = {k: v.copy() for k, v in m.params.items()}
    state = {k: {s: np.copy(v) for s, v in st.items()} for k, st in opt.state.items()}

    def unchanged():
        assert opt.steps == 1
        for k in m.params:
            np.testing.assert_array_equal(m.params[k], before[k])
            for s, v in state[k].items():
                np.testing.assert_array_equal(opt.state[k][s], v)

    with pytest.raises(DataError, match="features"):
        step(rng.normal(size=(8, 5)), y)
    with pytest.raises(DataError, match="2-D"):
        step(rng.normal(size=8), y)
    with pytest.raises(DataError):
        step(X, rng.integers(0, 3, size=7))
    unchanged()
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        step(Xn, y)
    unchanged()
    T = md.nn.check_targets(y, "cross_entropy", 8, 3)
    with pytest.raises(NonFiniteLossError), np.errstate(invalid="ignore"):
        step(Xn, T, checked=True)
    unchanged()
    Xi = X.copy()
    Xi[0, 0] = np.inf
    with pytest.raises(NonFiniteLossError), np.errstate(invalid="ignore"):
        step(Xi, T, checked=True)
    unchanged()
    with pytest.raises(Exception):  # noqa: B017 - unchecked: whatever the compiler says
        step(rng.normal(size=(8, 5)), T, checked=True)
    unchanged()
    # after the errors the step still works, from the unchanged parameters
    twin = MLP([4, 6, 3], seed=2)
    twin.load_state_dict(before)
    want, _ = twin.value_and_grad(X, y, "cross_entropy")
    assert step(X, T, checked=True) == pytest.approx(want, rel=1e-12)
    assert opt.steps == 2


def test_train_step_rejects_optimizer_of_other_parameters():
    m, other = MLP([4, 6, 3], seed=2), MLP([4, 6, 3], seed=2)
    with pytest.raises(NNError, match="other parameters"):
        TrainStep(m, "cross_entropy", mo.Adam(other.params))
    with pytest.raises(NNError, match="other parameters"):
        TrainStep(m, "cross_entropy", mo.SGD({k: v.copy() for k, v in m.params.items()}))
    bound = mo.Adam(m.params, lr=0.01)
    assert TrainStep(m, "cross_entropy", bound).optimizer is bound
    with pytest.raises(NNError, match="other parameters"):
        fit(m, np.zeros((4, 4)), np.zeros(4, int), loss="cross_entropy",
            optimizer=mo.Adam(other.params), progress=False)


# ====================================================================== 8. fit
def test_fit_with_adam_keeps_the_flat_buffer():
    rng = np.random.default_rng(16)
    X = rng.normal(size=(240, 4))
    y = (X[:, 0] - 2 * X[:, 1] + 0.5 * X[:, 2] > 0).astype(int) + (X[:, 3] > 1.0)
    m = MLP([4, 16, 3], "tanh", seed=0)
    flat = m.params.flat
    ids = {k: id(v) for k, v in m.params.items()}
    opt = mo.Adam(lr=0.01)
    h = fit(m, X, y, loss="cross_entropy", optimizer=opt, epochs=15, batch_size=16,
            seed=1, progress=False)
    assert opt.params is m.params and opt.flat is flat
    assert opt.steps == h.steps == 15 * 15
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert h["accuracy"][-1] > 0.85
    assert m.params.flat is flat and all(id(m.params[k]) == ids[k] for k in m.params)
    _assert_tiles(m.params)
    for layer in m.layers:
        assert all(layer.params[k] is m.params[k] for k in layer.params)
    # the reported accuracy is the model's, recomputed by hand
    p = m.params
    logits = np.tanh(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
    assert np.mean(logits.argmax(axis=1) == y) == pytest.approx(h["accuracy"][-1])


def test_tune_malloc_once_and_opt_out(monkeypatch):
    import sys

    import matdiff.nn.train as tr

    monkeypatch.setattr(tr, "_MALLOC_TUNED", None)
    monkeypatch.setenv("MATDIFF_MALLOC", "default")
    assert tr.tune_malloc() is False and tr._MALLOC_TUNED is False
    assert tr.tune_malloc() is False                    # decided once per process
    monkeypatch.setattr(tr, "_MALLOC_TUNED", None)
    monkeypatch.delenv("MATDIFF_MALLOC")
    import platform

    want = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert tr.tune_malloc() is want


def test_training_leaves_malloc_alone_unless_asked(monkeypatch):
    # issue 14, item 2: no process-wide side effect by default
    import matdiff.nn.train as tr

    calls = []
    monkeypatch.setattr(tr, "_tune_malloc", lambda: calls.append(1) or True)
    model = md.nn.Neuron(2, "tanh", seed=0)
    md.nn.TrainStep(model, "mse", "sgd", lr=0.1)
    md.nn.fit(model, np.ones((4, 2)), np.ones(4), epochs=1, progress=False)
    assert calls == []
    md.nn.TrainStep(model, "mse", "sgd", lr=0.1, tune_malloc=True)
    assert calls == [1]
