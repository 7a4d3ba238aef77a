"""The meta-test: every element-wise definition, built in or added with
``md.define_function``, checked through every layer that reads it.

For each row of :data:`matdiff.expr.functions.FUNCTIONS` (iterated, not listed):
its test domain exists; its value equals its NumPy implementation; its first and
second derivatives (by each argument) equal central differences of the order below;
it compiles on every backend it has an implementation for, to the interpreter's
numbers; it prints in Unicode and in LaTeX (KaTeX parses every string); the parser
reads it (numpy syntax, and matrixcalculus syntax where the definition says so) to
the very node the builder makes, and shape inference finds its argument's shape.

Then ``md.define_function`` does exactly what shared/DESIGN.md shows for ``erf``, and
the same meta-test passes on it; names that clash, rules that do not build and a
backend without an implementation are clear errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import matdiff as md
from helpers import fd_jacobian, max_rel_error
from katex import katex_errors
from matdiff.compile.evaluate import interpret
from matdiff.expr.functions import FUNCTIONS, Elementwise

BUILTIN = sorted(FUNCTIONS)
N = 4


def _backends(row: Elementwise) -> list[str]:
    """The backends the definition has an implementation for (and that are
    installed: the dev extra installs JAX and PyTorch)."""
    out = ["numpy"]
    for b in ("jax", "torch"):
        if getattr(row, b) is None:
            continue
        try:
            __import__(b)
        except ImportError:  # pragma: no cover - the dev extra installs both
            continue
        out.append(b)
    return out


def _points(row: Elementwise, rng: np.random.Generator) -> list[np.ndarray]:
    """One vector per argument inside the test domain, away from 0 (the kinks of the
    piecewise functions) and from each other (the ties of max and min)."""
    assert row.domain is not None
    lo, hi = row.domain
    pad = (hi - lo) / 10
    out = []
    for k in range(row.arity):
        v = rng.uniform(lo + pad, hi - pad, N)
        v = np.where(np.abs(v) < 0.1, v + 0.3, v)
        out.append(v + 0.15 * k)  # distinct arguments: no ties
    return out


def _text_items(row: Elementwise) -> tuple[md.Expr, list[md.Var], list[str]]:
    xs = [md.vector(f"x{k}", "n") for k in range(row.arity)]
    return md.elementwise(row.name)(*xs), xs, [f"x{k}" for k in range(row.arity)]


def check_definition(row: Elementwise, latex: list[str]) -> None:
    """Every check of the module docstring on one definition; LaTeX strings are
    appended to ``latex`` for one KaTeX run."""
    assert row.domain is not None, f"{row.name}: the definition has no test domain"
    lo, hi = row.domain
    assert lo < hi, row.name
    rng = np.random.default_rng(sum(map(ord, row.name)))
    f, xs, names = _text_items(row)
    pts = _points(row, rng)
    vals = dict(zip(names, pts))
    # the value, against the definition's own NumPy implementation
    np.testing.assert_allclose(f.evaluate(vals), row.numpy(*pts), rtol=1e-12, atol=1e-14)
    # first and second derivatives by each argument, against central differences
    for k, x in enumerate(xs):
        D1 = md.derive(f, x)
        D2 = md.derive(D1, x)

        def value(t, k=k):
            return row.numpy(*[t if j == k else p for j, p in enumerate(pts)])

        def first(t, k=k, D1=D1):
            return interpret(D1, {**vals, names[k]: t})

        want1 = fd_jacobian(value, pts[k])
        assert max_rel_error(D1.evaluate(vals), want1) < 1e-6, (row.name, k, str(D1))
        want2 = fd_jacobian(first, pts[k])
        assert max_rel_error(D2.evaluate(vals), want2) < 1e-5, (row.name, k, str(D2))
        # compiled on every backend the definition has, to the interpreter's numbers
        for backend in _backends(row):
            outs = md.compile([f, D1, D2], backend=backend)(vals)
            for e, out in zip([f, D1, D2], outs):
                got = np.asarray(out.detach() if hasattr(out, "detach") else out,
                                 dtype=np.float64)
                assert max_rel_error(got, interpret(e, vals)) < 1e-10, (row.name, backend)
        latex.extend([md.latex(D1), md.latex(D2)])
    # printers: the Unicode spelling of the definition, and LaTeX (KaTeX, below)
    assert (row.unicode or row.name) in str(f)
    latex.append(md.latex(f))
    if not row.call:  # the operator ** (pow): no call syntax to parse
        return
    # the parser reads the name to the node the builder makes
    call = f"{row.name}({', '.join(names)})"
    shapes = {n: ("n",) for n in names}
    assert md.parse(call, shapes=shapes) is f
    for alias in row.aliases:  # another name for the function (ln for log)
        assert md.parse(call.replace(row.name, alias, 1), shapes=shapes) is f
    if row.mc and row.arity == 1:
        assert md.parse(call, shapes=shapes, syntax="matrixcalculus") is f
    # shape inference sees through the function: in f(A @ w) + v, w and v are vectors
    inferred = md.parse(f"{row.name}({', '.join(['A @ w'] * row.arity)}) + v").variables()
    assert inferred == {"A": ("m", "n"), "w": ("n",), "v": ("m",)}, (row.name, inferred)


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_definition(name: str) -> None:
    latex: list[str] = []
    check_definition(FUNCTIONS[name], latex)
    assert katex_errors(latex) == []


def test_a_definition_without_a_domain_fails_the_meta_test() -> None:
    row = FUNCTIONS["tanh"]
    bare = Elementwise("tanh", 1, row.numpy, row.derivs, None)
    with pytest.raises(AssertionError, match="no test domain"):
        check_definition(bare, [])


def test_the_meta_test_catches_a_wrong_derivative() -> None:
    """Planted: tanh' = 1 + tanh² (the sign wrong) must fail the check."""
    md.define_function("tanh_wrong", derivative=lambda u: 1 + md.tanh(u) ** 2,
                       numpy=np.tanh, domain=FUNCTIONS["tanh"].domain)
    with pytest.raises(AssertionError):
        check_definition(FUNCTIONS["tanh_wrong"], [])


# ====================================================================== define_function
@pytest.fixture
def erf():
    """``erf`` defined exactly as shared/DESIGN.md writes it (conftest removes every
    function a test defines, afterwards)."""
    scipy_special = pytest.importorskip("scipy.special")
    jax = pytest.importorskip("jax")
    torch = pytest.importorskip("torch")
    fn = md.define_function("erf", derivative=lambda u: 1.1283791670955126 * md.exp(-u**2),
                            numpy=scipy_special.erf, jax=jax.scipy.special.erf,
                            torch=torch.special.erf, latex=r"\operatorname{erf}",
                            domain=(-2.0, 2.0))
    return fn


def test_define_function_as_the_design_writes_it(erf) -> None:
    A, x = md.matrix("A", "n", "n"), md.vector("x", "n")
    f = md.parse("sum(erf(A @ x))", shapes={"A": ("n", "n"), "x": ("n",)})
    assert f is md.sum(erf(A @ x))  # the builder and the parser make one node
    rng = np.random.default_rng(0)
    A0, x0 = rng.uniform(-1, 1, (3, 3)), rng.uniform(-1, 1, 3)
    # value: Σ erf((Ax)ᵢ), with math.erf as the reference
    assert math.isclose(float(f.evaluate(A=A0, x=x0)), sum(map(math.erf, A0 @ x0)),
                        rel_tol=1e-12)
    # gradient Aᵀ(2/√π)exp(−(Ax)²), written out by hand
    g = md.derive(f, x)
    want = A0.T @ (2 / math.sqrt(math.pi) * np.exp(-(A0 @ x0) ** 2))
    np.testing.assert_allclose(g.evaluate(A=A0, x=x0), want, rtol=1e-12)
    # Hessian and third derivative: central differences of the order below
    H = md.hessian(f, x)
    np.testing.assert_allclose(H.evaluate(A=A0, x=x0),
                               fd_jacobian(lambda t: g.evaluate(A=A0, x=t), x0), atol=1e-7)
    T = md.derive(H, x)
    np.testing.assert_allclose(T.evaluate(A=A0, x=x0),
                               fd_jacobian(lambda t: H.evaluate(A=A0, x=t), x0), atol=1e-6)
    # printing, with its LaTeX spelling; KaTeX parses it
    assert "erf(Ax)" in str(f) and r"\operatorname{erf}" in md.latex(f)
    assert katex_errors([md.latex(f), md.latex(g), md.latex(H)]) == []
    # compiled on each backend
    for backend in ("numpy", "jax", "torch"):
        out = md.compile({"g": g}, backend=backend)(A=A0, x=x0)["g"]
        np.testing.assert_allclose(np.asarray(out), want, rtol=1e-12)
    # explained, the paper's way: erf(u) is one step, its Jacobian diagonal
    d = md.explain(f, "x")
    assert any(s.definition.startswith("erf(") for s in d.steps)
    assert "diag(" in str(d)
    assert md.check(f, "x").ok
    # and the whole meta-test of the built-ins
    latex: list[str] = []
    check_definition(FUNCTIONS["erf"], latex)
    assert katex_errors(latex) == []


def test_a_backend_without_an_implementation_is_an_error_naming_both() -> None:
    pytest.importorskip("torch")
    cube = md.define_function("cube", derivative=lambda u: 3 * u ** 2,
                              numpy=lambda a: a ** 3, domain=(-2.0, 2.0))
    f = md.sum(cube(md.vector("x", "n")))
    assert float(md.compile(f)(x=np.ones(2))) == 2.0  # numpy: implemented
    with pytest.raises(md.MatdiffError, match="torch backend: cube has no torch"):
        md.compile(f, backend="torch")


@pytest.mark.parametrize("name", ["exp", "sum", "vector", "dense", "einsum", "lambda",
                                  "T", "ln"])
def test_a_name_of_the_language_is_refused(name: str) -> None:
    # a built-in element-wise function (exp) may be restated only as itself: this
    # definition's derivative (u, not exp(u)) differs, so it is refused at a point
    match = "differs from it: its derivative" if name == "exp" else "already a name"
    with pytest.raises(md.DefinitionError, match=match):
        md.define_function(name, derivative=lambda u: u, numpy=np.exp)


@pytest.mark.parametrize("name", ["", "2x", "my fn", "a-b", "_hidden", "é", 3, None])
def test_a_name_that_is_not_an_identifier_is_refused(name) -> None:
    with pytest.raises(md.DefinitionError, match="identifier"):
        md.define_function(name, derivative=lambda u: u, numpy=np.exp)


def test_rules_and_implementations_are_checked_at_definition() -> None:
    with pytest.raises(md.DefinitionError, match="derivative of bad1"):
        md.define_function("bad1", derivative=lambda u: u @ u @ u, numpy=np.exp)
    with pytest.raises(md.DefinitionError, match="not element-wise"):
        md.define_function("bad2", derivative=lambda u: u, numpy=np.sum)
    with pytest.raises(TypeError, match="numpy must be a function"):
        md.define_function("bad3", derivative=lambda u: u, numpy=None)
    with pytest.raises(TypeError, match="derivative must be"):
        md.define_function("bad4", derivative=3, numpy=np.exp)
    with pytest.raises(md.DefinitionError, match="lo < hi"):
        md.define_function("bad5", derivative=lambda u: u, numpy=np.exp, domain=(1, 0))
    assert not {"bad1", "bad2", "bad3", "bad4", "bad5"} & set(FUNCTIONS)


def test_a_function_of_two_arguments() -> None:
    """hyp(a, b) = √(a² + b²), one partial derivative per argument."""
    hyp = md.define_function(
        "hyp", derivative=(lambda a, b: a / md.sqrt(a**2 + b**2),
                           lambda a, b: b / md.sqrt(a**2 + b**2)),
        numpy=np.hypot, jax="jax.numpy.hypot", torch="torch.hypot", domain=(0.5, 2.0))
    x, y = md.vector("x", "n"), md.vector("y", "n")
    f = md.sum(hyp(x, y))
    assert md.parse("sum(hyp(x, y))", shapes={"x": ("n",), "y": ("n",)}) is f
    x0, y0 = np.array([3.0, 1.0]), np.array([4.0, 1.0])
    np.testing.assert_allclose(md.derive(f, x).evaluate(x=x0, y=y0),
                               x0 / np.hypot(x0, y0), rtol=1e-12)
    latex: list[str] = []
    check_definition(FUNCTIONS["hyp"], latex)
    assert katex_errors(latex) == []
