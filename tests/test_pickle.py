"""Pickling and copying (issue 14, item 1): expressions by value, interned again on
load; derivative results with their record; compiled functions compile again."""

import copy
import multiprocessing as mp
import pickle

import numpy as np
import pytest

import matdiff as md

SHAPES = {"X": ("N", "d"), "w": ("d",), "y": ("N",), "b": (), "A": ("d", "d")}
TEXTS = [
    "mean((y - max(0, X @ w + b))**2)",
    "w @ A @ w",
    "logdet(A) + sum(inv(A) @ w)",
    "sum(softmax(X @ w))",
    "sum(tanh(X @ w) * y) / N",
]


@pytest.mark.parametrize("text", TEXTS)
def test_expressions_round_trip_to_the_same_node(text):
    e = md.parse(text, shapes=SHAPES)
    for proto in range(2, pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(e, protocol=proto)) is e
    assert copy.copy(e) is e and copy.deepcopy(e) is e
    assert copy.deepcopy([e, {"k": e}])[1]["k"] is e


@pytest.mark.parametrize("text", TEXTS)
def test_derivatives_keep_their_record(text):
    f = md.parse(text, shapes=SHAPES)
    g = md.derive(f, "w")
    h = pickle.loads(pickle.dumps(g))
    assert isinstance(h, md.Derivative)
    assert (h.body, h.f, h.wrt, h.order, h.f_ndim) == (g.body, g.f, g.wrt, g.order, g.f_ndim)
    assert str(h) == str(g)
    H = md.derive(g, "w")
    assert pickle.loads(pickle.dumps(H)).order == 2


def test_a_compiled_function_compiles_again_on_load():
    f = md.parse(TEXTS[0], shapes=SHAPES)
    fn = md.compile([f, md.derive(f, "w")])
    rng = np.random.default_rng(0)
    vals = {"X": rng.standard_normal((5, 3)), "w": rng.standard_normal(3),
            "y": rng.standard_normal(5), "b": 0.1}
    want = fn(**vals)
    loaded = pickle.loads(pickle.dumps(fn))
    got = loaded(**vals)
    np.testing.assert_allclose(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1])


def test_pickles_are_by_value_across_processes():
    # a fresh interpreter (spawn) loads the expressions and sends derivatives back
    f = md.parse(TEXTS[0], shapes=SHAPES)
    exprs = [md.parse(t, shapes=SHAPES) for t in TEXTS]
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        texts = pool.map(md.to_text, exprs, chunksize=1)
        derivs = pool.starmap(md.derive, [(e, "w") for e in exprs])
    assert texts == [md.to_text(e) for e in exprs]
    assert [d.body for d in derivs] == [md.derive(e, "w").body for e in exprs]
    assert derivs[0].f is f


def test_models_and_optimizers_pickle_after_training():
    from matdiff import nn, optim

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4))
    y = np.eye(3)[rng.integers(0, 3, 40)]
    model = nn.MLP([4, 8, 3], seed=0)
    nn.fit(model, x, y, epochs=2, progress=False)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(loaded.predict(x), model.predict(x))
    np.testing.assert_allclose(copy.deepcopy(model).predict(x), model.predict(x))
    opt = optim.Adam(lr=0.01)
    again = pickle.loads(pickle.dumps(opt))
    assert type(again) is optim.Adam and again.lr == opt.lr
