"""Compiled code (``md.compile``, ``md.value_and_grad``, ``evaluate``'s compiled path).

Checks: compiled outputs equal the node-by-node interpreter and finite differences
(every function of the language, the paper's loss, random Hypothesis trees); one
line per shared subexpression (CSE across outputs); structured Jacobians stay
structured; the JAX and PyTorch backends agree with NumPy; no user text reaches the
code; code is generated once per shape signature.  No timings here (benchmarks/).
"""

from __future__ import annotations

import ast
import re

import numpy as np
import pytest
from hypothesis import assume, given

import matdiff as md
from helpers import fd_jacobian, max_rel_error, nonzero, spd, well_conditioned
from matdiff.compile.evaluate import interpret
from matdiff.errors import MatdiffError
from matdiff.expr.functions import FUNCTIONS
from matdiff.expr.simplify import apply
from test_random import SIZES, examples, seeds, trees, values_for

N = 4


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def _interp(e, vals, dims=None):
    with np.errstate(all="ignore"):
        return interpret(e, vals, dims=dims)


def _same(compiled, expr, vals, dims=None, tol=1e-10):
    got = np.asarray(compiled, dtype=np.float64)
    want = _interp(expr, vals, dims)
    assert got.shape == want.shape
    assert max_rel_error(got, want) < tol


# ============================================================== every function
UNARY = sorted(n for n, s in FUNCTIONS.items() if s.arity == 1)
BINARY = sorted(n for n, s in FUNCTIONS.items() if s.arity == 2)


def _point(rng, name, shape):
    lo, hi = FUNCTIONS[name].domain
    v = rng.uniform(lo, hi, size=shape)
    if name in ("abs", "sign", "relu", "step"):
        v = nonzero(rng, shape)
    return v


@pytest.mark.parametrize("fn", UNARY)
def test_each_unary_function_value_and_jacobian(fn, rng):
    x = md.vector("x", "n")
    f = apply(fn, [x])
    x0 = _point(rng, fn, N)
    J = md.derive(f, x)
    c = md.compile({"f": f, "J": J, "g": md.derive(md.sum(f), x)})
    out = c(x=x0)
    _same(out["f"], f, {"x": x0})
    _same(out["J"], J, {"x": x0})
    fd = fd_jacobian(lambda t: c(x=t)["f"], x0)
    assert max_rel_error(out["J"], fd) < 1e-6
    assert max_rel_error(out["g"], fd.sum(axis=0)) < 1e-6


@pytest.mark.parametrize("fn", BINARY)
def test_each_binary_function(fn, rng):
    x, y = md.vector("x", "n"), md.vector("y", "n")
    f = md.sum(md.elementwise(fn)(x, y))  # the builder the definition names (max: maximum)
    lo, hi = FUNCTIONS[fn].domain
    vals = {"x": rng.uniform(max(lo, 0.3), hi, N), "y": rng.uniform(lo, hi, N)}
    c = md.compile([f, md.derive(f, x), md.derive(f, y)])
    v, gx, gy = c(vals)
    _same(v, f, vals)
    assert max_rel_error(gx, fd_jacobian(lambda t: c({**vals, "x": t})[0], vals["x"])) < 1e-6
    assert max_rel_error(gy, fd_jacobian(lambda t: c({**vals, "y": t})[0], vals["y"])) < 1e-6


MATRIX_CASES = [
    ("x @ A @ x", {"x": ("n",), "A": ("n", "n")}, "x"),
    ("x @ A @ x", {"x": ("n",), "A": ("n", "n")}, "A"),
    ("tr(A @ B)", {"A": ("n", "n"), "B": ("n", "n")}, "A"),
    ("det(A)", {"A": ("n", "n")}, "A"),
    ("logdet(A)", {"A": ("n", "n")}, "A"),
    ("sum(inv(A) @ x)", {"A": ("n", "n"), "x": ("n",)}, "A"),
    ("logsumexp(x)", {"x": ("n",)}, "x"),
    ("softmax(x)", {"x": ("n",)}, "x"),
    ("sum(softmax(A) * B)", {"A": ("n", "n"), "B": ("n", "n")}, "A"),
    ("norm2(x - y)", {"x": ("n",), "y": ("n",)}, "x"),
    ("outer(x, y) * 2", {"x": ("n",), "y": ("n",)}, "y"),
    ("mean(A, 0) + sum(A, 1)", {"A": ("n", "n")}, "A"),
    ("diag(x) @ A", {"x": ("n",), "A": ("n", "n")}, "x"),
    ("A.T @ x + 3", {"x": ("n",), "A": ("n", "n")}, "x"),
]


@pytest.mark.parametrize("text,shapes,wrt", MATRIX_CASES)
def test_matrix_functions_value_gradient_hessian(text, shapes, wrt, rng):
    f = md.parse(text, shapes=shapes)
    vals = {}
    for name, shape in shapes.items():
        if len(shape) == 2:
            vals[name] = spd(rng, N) if "det" in text else well_conditioned(rng, N)
        else:
            vals[name] = rng.standard_normal(N)
    D = md.derive(f, wrt)
    outs = [f, D]
    if not f.shape and len(shapes[wrt]) == 1:
        outs.append(md.hessian(f, wrt))
    c = md.compile(outs)
    got = c(vals)
    for e, g in zip(outs, got):
        _same(g, e, vals, dims={"n": N})
    fd = fd_jacobian(lambda t: c({**vals, wrt: t})[0], vals[wrt])
    assert max_rel_error(got[1], fd) < 1e-6


# ============================================================== random trees
@examples(0.5)
@given(g=trees(), seed=seeds)
def test_random_trees_compiled_equal_interpreter(g, seed):
    f = g.expr
    vals = values_for(seed)
    with np.errstate(all="ignore"):
        want = interpret(f, {k: vals[k] for k in f.variables()}, dims=SIZES)
    assume(np.all(np.isfinite(want)) and np.max(np.abs(want), initial=0) < 1e6)
    names = list(f.variables())
    grads = [md.derive(f, md.Var(n, f.variables()[n])) for n in names]
    c = md.compile([f, *grads], dims=SIZES)
    with np.errstate(all="ignore"):
        got = c({k: vals[k] for k in names})
    assert max_rel_error(got[0], want) < 1e-9, g
    for n, D, gv in zip(names, grads, got[1:]):
        with np.errstate(all="ignore"):
            ref = interpret(D, {k: vals[k] for k in D.variables()}, dims=SIZES)
        if np.all(np.isfinite(ref)) and np.max(np.abs(ref), initial=0) < 1e6:
            assert max_rel_error(gv, ref) < 1e-8, f"d/d{n} of {g}"


# ============================================================== the paper's loss
def test_paper_neuron_loss_value_and_gradients(rng):
    f = md.parse("mean((y - max(0, X @ w + b))**2)",
                 shapes={"X": ("N", "n"), "w": ("n",), "y": ("N",), "b": ()})
    Nn, n = 50, 6
    X, w, y, b = (rng.standard_normal((Nn, n)), rng.standard_normal(n),
                  rng.standard_normal(Nn), 0.3)
    vg = md.value_and_grad(f, ["w", "b"])
    v, (gw, gb) = vg(X=X, w=w, y=y, b=b)
    z = X @ w + b
    r = np.maximum(z, 0) - y
    assert np.isclose(v, np.mean(r ** 2))
    np.testing.assert_allclose(gw, 2 / Nn * X.T @ (r * (z > 0)), rtol=1e-10)
    np.testing.assert_allclose(gb, 2 / Nn * np.sum(r * (z > 0)), rtol=1e-10)
    v1, g1 = md.value_and_grad(f, "w")(X=X, w=w, y=y, b=b)
    np.testing.assert_allclose(g1, gw)


# ============================================================== structure
def test_structured_diagonal_jacobian_is_its_vector():
    x = md.vector("x", "n")
    n = 10_000
    x0 = np.linspace(-2, 2, n)
    c = md.compile(md.derive(md.tanh(x), x), structured=True)
    J = c(x=x0)
    assert isinstance(J, md.Diagonal)
    assert J.shape == (n, n)
    assert np.asarray(J.diagonal).size == n
    np.testing.assert_allclose(J.diagonal, 1 - np.tanh(x0) ** 2)
    small = md.compile(md.derive(md.tanh(x), x), structured=True)(x=x0[:5])
    np.testing.assert_allclose(small.toarray(), np.diag(1 - np.tanh(x0[:5]) ** 2))
    # dense form equals the interpreter
    dense = md.compile(md.derive(md.tanh(x), x))(x=x0[:7])
    np.testing.assert_allclose(dense, np.diag(1 - np.tanh(x0[:7]) ** 2))


def test_no_dense_identity_or_ones_in_generated_code():
    x, w = md.vector("x", "n"), md.vector("w", "n")
    src = md.compile([md.derive(w * x, w), md.derive(md.sum(x), x),
                      md.hessian(md.logsumexp(x), x)], dims={"n": 50}).source
    assert "eye" not in src
    assert "einsum" not in src  # deltas are absorbed by renaming, never contracted
    assert "xp.full((50, 50)" not in src


def test_structured_identity_and_scaled_identity():
    x = md.vector("x", "n")
    c = md.compile([md.derive(x, x), md.derive(3 * x, x)], structured=True)
    I, T = c(x=np.ones(4))
    np.testing.assert_array_equal(I.diagonal, np.ones(4))
    np.testing.assert_array_equal(T.toarray(), 3 * np.eye(4))


def test_common_subexpressions_computed_once():
    X, w, y = md.matrix("X", "N", "d"), md.vector("w", "d"), md.vector("y", "N")
    f = md.sum(md.log(1 + md.exp(-y * (X @ w))))
    c = md.compile({"f": f, "g": md.derive(f, w)}, dims={"N": 30, "d": 5})
    src = c.source
    assert src.count("xp.exp(") == 1
    assert src.count("@") + src.count("tensordot") <= 2  # X @ w once, Xᵀ(...) once
    body = [ln for ln in src.splitlines() if "=" in ln and not ln.strip().startswith("#")]
    assert len(body) == len(set(ln.split("=", 1)[1].split("#")[0] for ln in body))


def test_generated_source_is_valid_python_and_lints_clean(tmp_path):
    x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    f = md.logsumexp(A @ x) + md.sum(md.sigmoid(x))
    src = md.compile([f, md.derive(f, x), md.hessian(f, x)]).source
    ast.parse(src)
    p = tmp_path / "gen.py"
    p.write_text("# ruff: noqa: F821\n" + src)
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    ruff = Path(sys.executable).parent / "ruff"
    ruff = str(ruff) if ruff.exists() else shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff not installed")
    r = subprocess.run([ruff, "check", "--isolated", "--select", "E,F,W", str(p)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# ============================================================== safety
@pytest.mark.parametrize("bad", ["x; import os", "__import__", "a'b", "x\ny", "1x", "a b"])
def test_bad_variable_names_are_rejected(bad):
    if bad != "__import__":
        with pytest.raises(md.ShapeError):
            md.var(bad, "n")
    # built past the checks, straight from the core: compile still refuses it
    with pytest.raises(MatdiffError, match="variable name"):
        md.compile(md.sum(md.Var(bad, ("n",))))


@pytest.mark.parametrize("name", ["λ", "_x1", "sum", "np", "xp", "a0", "t0", "compiled",
                                  "print", "None_"])
def test_odd_but_valid_names_compile_safely(name):
    x = md.var(name, "n")
    y = md.vector("t1", "n")
    f = md.sum(md.exp(x) * y)
    c = md.compile([f, md.derive(f, x)])
    x0, y0 = np.array([0.1, 0.2]), np.array([1.0, 2.0])
    v, g = c({name: x0, "t1": y0})
    assert np.isclose(v, np.sum(np.exp(x0) * y0))
    np.testing.assert_allclose(g, np.exp(x0) * y0)
    assert c.source.startswith("def compiled(a0, a1):")
    if name not in ("a0", "t0", "t1", "compiled", "xp"):
        code = [ln.split("#")[0] for ln in c.source.splitlines()]
        assert not any(name in ln for ln in code)


def test_generated_code_has_no_builtins():
    x = md.vector("x", "n")
    c = md.compile(md.sum(x))
    c(x=np.ones(2))
    assert "import" not in c.source and "eval" not in c.source


# ============================================================== caching
def test_evaluate_caches_per_expression_and_shapes():
    from matdiff.compile.evaluate import cache_info

    x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    f = md.derive(x @ A @ md.tanh(x), x)
    f.evaluate(x=np.ones(3), A=np.eye(3))
    before = cache_info()["generated"]
    for k in range(3):
        f.evaluate(x=np.ones(3) * k, A=np.eye(3))
    assert cache_info()["generated"] == before
    # new shapes: the same code, which reads n from its inputs (the planner orders
    # these products the same at n = 4; tests/test_shape_poly.py has sizes where it
    # does not, and code is generated again)
    f.evaluate(x=np.ones(4), A=np.eye(4))
    assert cache_info()["generated"] == before
    got = f.evaluate(x=np.ones(4), A=2 * np.eye(4))
    # ∇ xᵀA tanh(x) = A tanh(x) + tanh'(x) ⊙ Aᵀx, at A = 2I, x = 1
    assert np.allclose(got, (2 * np.tanh(1.0) + 2 / np.cosh(1.0) ** 2) * np.ones(4))


def test_compiled_cache_info():
    x = md.vector("x", "n")
    c = md.compile(md.sum(md.exp(x)))
    c(x=np.ones(3))
    c(x=np.zeros(3))
    assert c.cache_info() == {"specialisations": 1, "generated": 1}
    c(x=np.ones(5))  # a new shape, the same code (n is read from x)
    assert c.cache_info() == {"specialisations": 2, "generated": 1}
    assert float(c(x=np.zeros(5))) == 5.0


def test_compiled_errors_match_evaluate():
    x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    c = md.compile(x @ A @ x)
    with pytest.raises(md.EvaluationError, match=r"missing value\(s\) for A"):
        c(x=np.ones(3))
    with pytest.raises(md.EvaluationError, match="value of A has shape"):
        c(x=np.ones(3), A=np.ones(3))
    with pytest.raises(md.EvaluationError, match="not an array of numbers"):
        c(x=["a", "b"], A=np.eye(2))


def test_output_structures():
    x = md.vector("x", "n")
    x0 = np.array([1.0, 2.0])
    assert isinstance(md.compile([md.sum(x)])(x=x0), list)
    assert isinstance(md.compile((md.sum(x), x))(x=x0), tuple)
    out = md.compile({"a": md.sum(x), "b": {"c": x}})(x=x0)
    assert float(out["a"]) == 3.0 and out["b"]["c"].tolist() == [1.0, 2.0]
    assert out["b"]["c"] is not x0  # outputs never alias inputs


# ============================================================== other backends
def _problems():
    X, w, y = md.matrix("X", "N", "d"), md.vector("w", "d"), md.vector("y", "N")
    A = md.matrix("A", "d", "d")
    f = md.sum(md.log(1 + md.exp(-y * (X @ w)))) + w @ A @ w + md.logsumexp(md.tanh(w))
    rng = np.random.default_rng(3)
    vals = {"X": rng.standard_normal((7, 4)), "w": rng.standard_normal(4),
            "y": np.sign(rng.standard_normal(7)), "A": rng.standard_normal((4, 4))}
    return [f, md.derive(f, w), md.hessian(f, w), md.derive(f, A),
            md.derive(md.softmax(md.sigmoid(w)), w)], vals


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backends_agree_with_numpy(backend):
    pytest.importorskip(backend)
    outs, vals = _problems()
    want = md.compile(outs)(vals)
    got = md.compile(outs, backend=backend)(vals)
    for g, w in zip(got, want):
        g = np.asarray(g.detach() if hasattr(g, "detach") else g, dtype=np.float64)
        assert max_rel_error(g, w) < 1e-10
    x = md.vector("x", "n")
    J = md.compile(md.derive(md.tanh(x), x), backend=backend, structured=True)(
        x=np.linspace(-1, 1, 6))
    np.testing.assert_allclose(np.asarray(J.toarray()), np.diag(1 - np.tanh(
        np.linspace(-1, 1, 6)) ** 2))


def test_jax_backend_is_jit_compatible():
    jax = pytest.importorskip("jax")
    x = md.vector("x", "n")
    c = md.compile(md.derive(md.logsumexp(x), x), backend="jax")
    out = c(x=np.array([1.0, 2.0, 3.0]))
    assert isinstance(out, jax.Array)
    np.testing.assert_allclose(np.asarray(out), np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())


def test_structured_add_never_writes_into_an_input_or_its_view():
    # Regression (found by hypothesis in CI): (Aᵀ + diag(v))ᵀ was computed by adding
    # diag(v) in place into Aᵀ, a view of the caller's A, corrupting A and the value.
    A, x = md.matrix("A", "n", "n"), md.vector("x", "n")
    f = md.sin(((A.T + (A - A)) + md.diag(md.sin(x))).T)
    rng = np.random.default_rng(3)
    vals = {"A": rng.standard_normal((3, 3)), "x": rng.standard_normal(3)}
    A0 = vals["A"].copy()
    want = np.sin(A0 + np.diag(np.sin(vals["x"])))
    np.testing.assert_allclose(f.evaluate(vals), want, rtol=1e-12)
    np.testing.assert_array_equal(vals["A"], A0)
    g = md.derive(f, A).evaluate(vals)
    np.testing.assert_allclose(np.einsum("ijij->ij", g),
                               np.cos(A0 + np.diag(np.sin(vals["x"]))), rtol=1e-12)
    np.testing.assert_array_equal(vals["A"], A0)


# ============================================================== training-step code
def _mlp_loss_and_grads(sizes, loss):
    m = md.nn.MLP(sizes, "relu", seed=0)
    L = m.loss_expr(loss)
    return m, L, {n: md.derive(L, n) for n in m.params}


def _body(src):
    return [ln.strip() for ln in src.splitlines()
            if " = " in ln and not ln.strip().startswith("#")]


@pytest.mark.parametrize("sizes,loss", [([10, 32, 1], "mse"), ([12, 9, 5], "mse"),
                                        ([784, 128, 10], "cross_entropy")])
def test_mlp_backward_is_matrix_products_only(sizes, loss):
    # Xᵀ((δW₂ᵀ) ⊙ s) as two GEMMs, never an outer product and a tensordot; the bias
    # gradient sums the product that the weight gradient made (reused, not redone)
    _, L, grads = _mlp_loss_and_grads(sizes, loss)
    dims = {"N": 32, **{f"d{i}": n for i, n in enumerate(sizes)}}
    src = md.compile({"loss": L, "grads": grads}, dims=dims).source
    assert "tensordot" not in src
    assert "xp.einsum('ab,ab->a'" in src if loss == "cross_entropy" else "einsum" not in src
    # W₂ is multiplied in twice: forward, and once backward (the W₁ and b₁ gradients
    # share δ·(cW₂)ᵀ, the b₁ gradient sums the W₁ gradient's (δ·(cW₂)ᵀ) ⊙ s)
    w2 = re.search(r"# (a\d+): W2", src).group(1)
    assert sum(1 for ln in _body(src) if re.search(rf"\b{w2}\b", ln) and "@" in ln) == 2
    assert sum(1 for ln in _body(src) if "xp.step(" in ln) == 1


@pytest.mark.parametrize("sizes,loss", [([10, 32, 1], "mse"), ([6, 5, 4], "cross_entropy")])
def test_mlp_loss_and_gradients_compiled_match_finite_differences(sizes, loss, rng):
    m, L, grads = _mlp_loss_and_grads(sizes, loss)
    N = 9
    X = rng.standard_normal((N, sizes[0]))
    if loss == "mse":
        T = rng.standard_normal((N, sizes[-1]))
    else:
        T = np.eye(sizes[-1])[rng.integers(0, sizes[-1], N)]
    vals = {**m.params, "X": X, "Y": T}
    out = md.compile({"loss": L, "grads": grads})(vals)
    np.testing.assert_allclose(out["loss"], interpret(L, vals), rtol=1e-12)
    for name, g in out["grads"].items():
        def f(p, name=name):
            return np.array(interpret(L, {**vals, name: p}))
        want = fd_jacobian(f, vals[name]).reshape(g.shape)
        assert max_rel_error(g, want) < 1e-6, name


def test_sum_subtracts_instead_of_negating():
    X, w, y = md.matrix("X", "N", "d"), md.vector("w", "d"), md.vector("y", "N")
    f = md.mean((X @ w - y) ** 2)
    src = md.compile([f, md.derive(f, w)], dims={"N": 7, "d": 3}).source
    assert "(-1.0) *" not in src and " - a" in src
    rng = np.random.default_rng(0)
    vals = {"X": rng.standard_normal((7, 3)), "w": rng.standard_normal(3),
            "y": rng.standard_normal(7)}
    v, g = md.compile([f, md.derive(f, w)])(vals)
    r = vals["X"] @ vals["w"] - vals["y"]
    np.testing.assert_allclose(v, np.mean(r ** 2), rtol=1e-12)
    np.testing.assert_allclose(g, 2 / 7 * vals["X"].T @ r, rtol=1e-12)


def test_every_generated_line_is_used():
    # dead lines (a negation a sum subtracted instead) are dropped
    _, L, grads = _mlp_loss_and_grads([6, 5, 4], "cross_entropy")
    src = md.compile({"loss": L, "grads": grads}, dims={"N": 8, "d0": 6, "d1": 5,
                                                       "d2": 4}).source
    body = _body(src)
    names = [ln.split(" = ")[0] for ln in body]
    text = src.split("return")[-1] + "\n".join(ln.split(" = ", 1)[1] for ln in body)
    for n in names:
        assert re.search(rf"\b{n}\b", text), n


def test_softmax_reuses_logsumexp(rng):
    Z, Y = md.matrix("Z", "N", "k"), md.matrix("Y", "N", "k")
    f = md.sum(md.logsumexp(Z) - md.sum(Y * Z, axis=1))
    c = md.compile([f, md.derive(f, Z)])
    vals = {"Z": 50 * rng.standard_normal((6, 4)), "Y": np.eye(4)[rng.integers(0, 4, 6)]}
    v, g = c(vals)
    assert "xp.softmax" not in c.source and c.source.count("xp.logsumexp") == 1
    z = vals["Z"] - vals["Z"].max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(g, p - vals["Y"], rtol=1e-12, atol=1e-15)
    lse = np.log(np.exp(z).sum(axis=1)) + vals["Z"].max(axis=1)
    np.testing.assert_allclose(v, np.sum(lse - np.sum(vals["Y"] * vals["Z"], axis=1)),
                               rtol=1e-12)


def test_sum_adds_into_a_fresh_product_only_when_nothing_else_uses_it():
    from matdiff.expr.core import Add, Einsum

    x = md.vector("x", "n")
    H = md.hessian(md.logsumexp(x), x)                    # diag(s) − s sᵀ
    x0 = np.random.default_rng(2).standard_normal(6)
    s = np.exp(x0 - x0.max()) / np.exp(x0 - x0.max()).sum()
    c = md.compile(H)
    np.testing.assert_allclose(c(x=x0), np.diag(s) - np.outer(s, s), atol=1e-15)
    assert "xp.dense(" not in c.source                    # no n × n copy
    # the outer product also an output: the sum must not add into it
    assert isinstance(H, Add)
    outer = next(t for t in H.children if isinstance(t, Einsum) and "ᵀ" in str(t))
    both = md.compile([H, outer])
    h, o = both(x=x0)
    np.testing.assert_allclose(o, outer.evaluate({"x": x0}), atol=1e-15)
    np.testing.assert_allclose(h, np.diag(s) - np.outer(s, s), atol=1e-15)
    assert "xp.dense(" in both.source


def test_structured_term_added_to_a_broadcast_scalar():
    # Regression (found by hypothesis): I − a·11ᵀ with a scalar a; the broadcast
    # −a must be copied out to n × n before the identity is added into it
    x, a = md.vector("x", "n"), md.scalar("a")
    f = md.sin(x) @ (md.eye("n") - a)
    x0, a0 = np.array([0.1, -0.4, 0.3]), 0.7
    np.testing.assert_allclose(f.evaluate(x=x0, a=a0), np.sin(x0) @ (np.eye(3) - a0),
                               rtol=1e-12)
    g = md.derive(f, a)
    np.testing.assert_allclose(g.evaluate(x=x0, a=a0), -np.sin(x0).sum() * np.ones(3),
                               rtol=1e-12)


def test_a_shared_node_s_context_never_overrules_the_values_or_given_dims():
    """dA/dA and dC/dC are one node (hash-consing); a value of A passed for another
    purpose (here (3, 3)) must not bind m against C's value or the dims given (found
    by the random suite, in test order)."""
    A, C = md.matrix("A", "m", "n"), md.matrix("C", "m", "n")
    D = md.derive(C, C)
    assert md.derive(A, A).body is D.body
    vals = {"A": np.zeros((3, 3)), "C": np.zeros((2, 3))}
    want = np.einsum("ik,jl->ijkl", np.eye(2), np.eye(3))
    np.testing.assert_array_equal(interpret(D, vals, dims={"m": 2, "n": 3}), want)
    np.testing.assert_array_equal(md.evaluate(D, vals, dims={"m": 2, "n": 3}), want)
    with pytest.raises(md.EvaluationError, match="dim m is 2 from the values but 3"):
        interpret(md.sum(C), vals, dims={"m": 3})
