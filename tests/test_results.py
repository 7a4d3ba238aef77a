"""Derivative results know what they are the derivative of (issue 11, item 5: no
hidden state): they print in every layout without ``f_ndim=``, evaluate binding dims
from the values of their function's variables, and what evaluate accepts depends on
the expression and the values alone, never on what was derived before."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import matdiff as md
from matdiff.expr.core import Const, Delta, Einsum

rng = np.random.default_rng(11)
x, y = md.vector("x", "n"), md.vector("y", "n")
A, X = md.matrix("A", "n", "n"), md.matrix("X", "n", "n")
W = md.matrix("W", "m", "n")


def _values(*vs: md.Var, n: int = 3, m: int = 2) -> dict[str, np.ndarray]:
    sizes = {"n": n, "m": m}
    return {v.name: rng.standard_normal([sizes[d] for d in v.shape]) for v in vs}


# --------------------------------------------------------------- what a result knows
def test_a_result_knows_its_function_variable_and_order():
    f = x @ A @ x
    g = md.derive(f, x)
    assert isinstance(g, md.Expr) and isinstance(g, md.Derivative)
    assert g.f is f and g.wrt == (x,) and g.order == 1 and g.f_ndim == 0
    assert g.shape == ("n",) and g.kind == g.body.kind and g.digest == g.body.digest
    J = md.derive(md.tanh(W @ x), "x")
    assert J.wrt == (x,) and J.f_ndim == 1 and J.shape == ("m", "n")
    H = md.hessian(f, x)
    assert H.f is f and H.wrt == (x, x) and H.order == 2
    assert H.f_ndim == 1  # the Hessian is the Jacobian of the gradient (as the CLI has it)
    D = md.derive(md.derive(f, x), A)  # mixed: by x, then by A
    assert D.f is f and D.wrt == (x, A) and D.order == 2 and D.shape == ("n", "n", "n")
    # text: f is the parsed expression
    g2 = md.derive("x @ A @ x", "x", shapes={"x": ("n",), "A": ("n", "n")})
    assert g2.f is f and g2.body is g.body


def test_a_result_is_its_shared_node_to_everything_else():
    g = md.derive(md.sum(x * y), x)
    assert g.body is y and isinstance(g, md.Var) and g.name == "y"
    assert str(g) == str(y) and md.latex(g) == md.latex(y)
    zero = md.derive(md.sum(y), x)
    assert isinstance(zero, Const) and zero.value == 0.0 and zero.body is md.const(0, ("n",))
    # builders unwrap it: expressions built from results are plain, over the shared node
    assert (g + 0) is y and md.sum(g) is md.sum(y) and (g * x) is (y * x)
    assert type(g + x) is type(y + x) and not isinstance(g + x, md.Derivative)
    assert md.derive(g, "y").body is md.derive(y, y).body
    # a result is not hash-consed: compare bodies for identity
    assert md.derive(md.sum(x * y), x) is not g
    assert md.derive(md.sum(x * y), x).body is g.body


def test_deriving_by_a_result_that_is_a_variable():
    g = md.derive(md.sum(x * y), x)  # the variable y itself
    assert md.derive(md.sum(x * y), g).body is x


def test_every_printer_reads_a_result_as_its_body():
    cases = [md.derive(x @ A @ x, x), md.derive(md.tanh(W @ x), x),
             md.derive(md.logdet(X), X), md.hessian(md.sum(md.exp(A @ x)), x),
             md.derive(x, x), md.derive(md.sum(y), x), md.derive(md.outer(x, y), A)]
    for g in cases:
        assert md.to_text(g) == md.to_text(g.body)
        assert md.latex(g) == md.latex(g.body)
        assert md.to_index(g) == md.to_index(g.body)
        assert repr(g) == repr(g.body)
        for layout in ("numerator", "denominator"):
            assert md.latex(g, layout=layout) == md.latex(g.body, layout=layout,
                                                          f_ndim=g.f_ndim)
            assert md.to_text(g, layout=layout) == md.to_text(g.body, layout=layout,
                                                              f_ndim=g.f_ndim)
            assert md.to_index(g, layout=layout) == md.to_index(g.body, layout=layout,
                                                                f_ndim=g.f_ndim)


# ------------------------------------------------------------------------ layouts
# (derivative, layout, an expression whose value is the array that layout prints):
# numerator transposes a scalar-by-matrix derivative, denominator a Jacobian
_LAYOUT_CASES = [
    (lambda: md.derive(W @ x, x), "denominator", lambda: W.T),
    (lambda: md.derive(W @ x, x), "numerator", lambda: W),
    (lambda: md.derive(md.tr(A @ X), X), "numerator", lambda: A),
    (lambda: md.derive(md.tr(A @ X), X), "denominator", lambda: A.T),
    (lambda: md.derive(x @ A @ y, A), "numerator", lambda: md.outer(y, x)),
    (lambda: md.derive(md.sum(md.exp(W @ x)), W), "numerator",
     lambda: md.outer(x, md.exp(W @ x))),
]


@pytest.mark.parametrize("case", range(len(_LAYOUT_CASES)))
def test_latex_in_numerator_and_denominator_layout_without_f_ndim(case):
    make, layout, want = (c() if callable(c) else c for c in _LAYOUT_CASES[case])
    vals = _values(x, y, A, X, W)
    got = md.latex(make, layout=layout)
    assert got == md.latex(want)
    assert md.to_text(make, layout=layout) == md.to_text(want)
    # the printed formula is the array of that layout: the transpose where it transposes
    mixed = make.evaluate(vals)
    printed = want.evaluate(vals)
    transposed = md.latex(make, layout=layout) != md.latex(make)
    np.testing.assert_allclose(printed, mixed.T if transposed else mixed, rtol=1e-12)


def test_the_issue_line_works():
    f = md.sum(md.exp(W @ x))
    g = md.derive(f, x)
    assert md.latex(g, layout="numerator") == md.latex(g.body, layout="numerator",
                                                       f_ndim=0)
    assert md.latex(g, layout="numerator") != md.latex(g)  # a row: transposed
    assert md.latex(g, layout="denominator") == md.latex(g)
    # an explicit f_ndim still wins, and a plain expression still needs one
    assert md.latex(md.derive(W @ x, x), layout="denominator", f_ndim=2) == md.latex(W)
    with pytest.raises(md.ChoiceError, match="f_ndim"):
        md.latex(W, layout="numerator")


def test_a_result_explains_itself():
    g = md.derive("sum(w * x)", "w", shapes={"w": ("n",), "x": ("n",)})
    d = g.explain()
    assert d.to_dict()["chain"]["text"] == md.explain(g.f, "w").to_dict()["chain"]["text"]
    assert "∂" in str(g.explain(lang="zh"))
    with pytest.raises(md.MatdiffError, match="order 2"):
        md.hessian(md.sum(md.exp(x)), x).explain()


# ------------------------------------------------------------ evaluation binds dims
def test_a_result_binds_dims_from_its_functions_values():
    x0 = np.array([1.0, -2.0, 3.0])
    I_ = md.derive(x, x)
    assert isinstance(I_, Delta)
    np.testing.assert_array_equal(I_.evaluate(x=x0), np.eye(3))
    np.testing.assert_array_equal(md.evaluate(I_, {"x": x0}), np.eye(3))
    np.testing.assert_array_equal(md.compile(I_)(x=x0), np.eye(3))
    np.testing.assert_array_equal(md.compile({"J": I_, "H": md.hessian(md.sum(x), x)})(
        x=x0)["H"], np.zeros((3, 3)))
    # the body alone is a plain expression: it binds from dims=, not from x
    with pytest.raises(md.EvaluationError, match="dim"):
        md.evaluate(I_.body, {"x": x0})
    np.testing.assert_array_equal(md.evaluate(I_.body, {}, dims={"n": 3}), np.eye(3))
    # values of f's variables are checked too, not only used
    with pytest.raises(md.EvaluationError, match=r"value of x has shape \(3, 1\)"):
        I_.evaluate(x=np.ones((3, 1)))
    g = md.derive(md.sum(W @ x), x)  # Wᵀ1: no x left
    with pytest.raises(md.EvaluationError, match="dim n is 3 in the value of W but 2"):
        g.evaluate(W=np.ones((2, 3)), x=np.ones(2))


_SCRIPT = textwrap.dedent("""
    import numpy as np, matdiff as md
    if {derive_first}:
        x = md.vector("x", "n")
        # makes the shared zero of shape (n,), held, as a program holds its results
        held = (md.derive(md.sum(x - x), x), x - x)
    z = md.const(0.0, ("n",))         # that same shared zero node
    for run in (lambda: md.evaluate(z, {{"x": np.ones(3)}}),
                lambda: md.compile(z)(x=np.ones(3))):
        try:
            print("accepted", run().shape)
        except md.EvaluationError as exc:
            print("refused", str(exc).split(":")[0])
""")


def _fresh(derive_first: bool) -> str:
    code = _SCRIPT.format(derive_first=derive_first)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_what_evaluate_accepts_does_not_depend_on_what_was_derived_before():
    # the zero of shape (n,) is one shared node; a side table once remembered beside
    # it the variables some earlier x - x came from, so a fresh process refused to
    # evaluate it from x's value but one that had derived x - x first accepted
    alone, after = _fresh(False), _fresh(True)
    assert alone == after
    assert alone.count("refused cannot tell the size of dim(s) n") == 2


def test_the_same_zero_node_in_one_process():
    # in one process: a derivative result that is the shared zero binds n from its
    # f's x; the shared zero itself, built next, does not pick that up
    g = md.derive(md.sum(x - x), x)
    assert g.body is md.const(0.0, ("n",))
    np.testing.assert_array_equal(g.evaluate(x=np.ones(4)), np.zeros(4))
    with pytest.raises(md.EvaluationError, match="cannot tell the size of dim"):
        md.evaluate(md.const(0.0, ("n",)), {"x": np.ones(4)})
    np.testing.assert_array_equal(g.evaluate(x=np.ones(2)), np.zeros(2))
    assert isinstance(md.derive(md.sum(A @ x), x).body, Einsum)


def test_the_command_derives_by_a_variable_its_text_cancelled():
    # the command has the text, so it knows every name in it (it once relied on the
    # side table beside the shared constant 1)
    import io

    from matdiff.cli import run

    out = io.StringIO()
    assert run(["p / p", "--wrt", "p", "--shape", "p=", "--check"], out) == 0
    assert "∂f/∂p = 0    shape scalar ()" in out.getvalue() and "check: OK" in out.getvalue()
    out = io.StringIO()
    assert run(["W @ x", "--wrt", "x", "--shape", "W=m,n", "--shape", "x=n",
                "--layout", "denominator"], out) == 0
    assert "∂f/∂x = Wᵀ" in out.getvalue()


def test_text_derivatives_find_every_name_of_the_text():
    g = md.derive("p / p", "p")  # no shapes: p's shape is the one its use gives it
    assert g.shape == ("n", "n") and g.wrt == (md.vector("p", "n"),)
    with pytest.raises(md.ShapeError, match="'p' has shape scalar"):
        md.derive("p / p", md.vector("p", "n"), shapes={"p": ()})
    H = md.hessian("p / p", "p", shapes={"p": ()})
    assert H.shape == () and H.order == 2
