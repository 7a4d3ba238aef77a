"""The one printer (issue 11, item 3): one Printer class, one symbol table per format.

Unicode, LaTeX and matrixcalculus.org's syntax are the same machinery
(matdiff.render.printer.Printer) with their own tables; the paper's style is a
printer option applied while printing, not an edit of printed text.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import matdiff as md
from katex import katex_errors
from matdiff.compile.evaluate import evaluate
from matdiff.expr.matrix_functions import MATRIX_FUNCTIONS
from matdiff.render import LATEX, STYLE, UNICODE, Printer, matrix_form, printout
from matdiff.render import latex as latex_module
from matdiff.render import matrixcalculus as mc_module
from matdiff.render import text as text_module
from matdiff.render.matrixcalculus import MATRIXCALCULUS, to_matrixcalculus

n = "n"
x, y, w = md.vector("x", n), md.vector("y", n), md.vector("w", n)
A, X = md.matrix("A", n, n), md.matrix("X", n, n)


def test_one_printer_class() -> None:
    """No format module defines a printer of its own: text, latex and matrixcalculus
    print with render.printer.Printer and a table."""
    for module in (text_module, latex_module, mc_module):
        classes = [c for _, c in inspect.getmembers(module, inspect.isclass)
                   if c.__module__ == module.__name__]
        for c in classes:
            assert not any(name.startswith("_plan") for name in vars(c)), c
    assert {type(UNICODE).__name__, type(LATEX).__name__} == {"UnicodeFormat", "LatexFormat"}


@pytest.mark.parametrize("name", sorted(MATRIX_FUNCTIONS))
def test_matrix_functions_are_spelled_by_their_definitions(name: str) -> None:
    """No format's table names a matrix function: every format prints a call by the
    spelling its definition gives (mc: matrixcalculus.org's name, where it has one)."""
    spec = MATRIX_FUNCTIONS[name]
    for fmt in (UNICODE, LATEX, MATRIXCALCULUS):
        assert name not in fmt.CALLS and name not in getattr(fmt, "POSTFIX", {})
    if not spec.public:  # built only by other rules (a reshape): no builder
        return
    shapes = spec.examples[0] if spec.examples else \
        ((("n", "n") if spec.arg_rank == 2 else ("n",)),)
    args = [md.var(a, *s) for a, s in zip("XY", shapes)]
    e = md.matrix_function(name)(*args)
    assert md.to_text(e) == spec.spell("unicode", list("XY"[:spec.arity]))
    assert md.latex(e) == spec.spell("latex", list("XY"[:spec.arity]))
    if spec.mc:
        assert to_matrixcalculus(e) == f"{spec.mc}(X)"


@pytest.mark.parametrize("expr, text, tex", [
    (lambda: md.inv(X), "X⁻¹", "X^{-1}"),
    (lambda: md.det(X), "det(X)", r"\det(X)"),
    (lambda: md.logdet(X), "log det(X)", r"\log\det(X)"),
    (lambda: md.logsumexp(x), "logsumexp(x)", r"\operatorname{logsumexp}(x)"),
    (lambda: md.softmax(x), "softmax(x)", r"\operatorname{softmax}(x)"),
    (lambda: md.derive(md.logdet(X), X), "X⁻ᵀ", r"X^{-\top}"),
])
def test_same_tree_two_tables(expr, text: str, tex: str) -> None:
    e = expr()
    tree = matrix_form(e)
    assert Printer(UNICODE).top(tree, False) == md.to_text(e) == text
    assert Printer(LATEX).top(tree, False) == md.latex(e) == tex


def test_paper_style_is_printed_not_rewritten() -> None:
    """style="paper" is the paper's notation, the same in both formats."""
    e = md.relu(w * x)
    assert md.to_text(e, style="paper") == "max(0, w ⊗ x)"
    assert md.latex(e, style="paper") == r"\max(0, w \otimes x)"
    assert md.to_text(e) == "relu(w ⊙ x)" and md.latex(e) == r"\operatorname{relu}(w \odot x)"
    # a row's coefficient over a scalar in front: the paper's (2/N)vᵀ
    C = md.parse("mean((y - X @ w)**2)", shapes={"y": ("N",), "X": ("N", "n"), "w": ("n",)})
    g = md.derive(C, "w")
    assert md.to_text(g) == "−2Xᵀ(y − Xw)/N"
    assert md.to_text(g, layout="numerator", f_ndim=0, style="paper") == "(−2/N)(y − Xw)ᵀX"
    paper_tex = md.latex(g, layout="numerator", f_ndim=0, style="paper")
    assert paper_tex == r"-\frac{2}{N} (y - X w)^\top X"
    assert katex_errors([paper_tex, md.latex(e, style="paper")]) == []


def test_signs_of_the_styles() -> None:
    assert md.to_text(w / x * y, style="standard") == "w ⊙ y / x"
    assert md.to_text(w / x * y, style="paper") == "w ⊗ y ⊘ x"
    assert md.to_text(w / x * y) == "w ⊙ y ⊘ x"
    assert md.to_text(w * y, hadamard="∘") == "w ∘ y"


def test_chain_writes_a_product_unsimplified() -> None:
    """Printer.chain: the chain rule's product of local Jacobians as written."""
    trees = [matrix_form(e) for e in (-md.eye(n), 3 * md.eye(n), md.diag(x), A @ x)]
    assert Printer(UNICODE).chain(trees) == "(−I) · 3I diag(x) Ax"
    assert Printer(LATEX).chain(trees) == r"(-I) \cdot 3 I \operatorname{diag}(x) A x"


def test_printout_falls_back_to_index_notation() -> None:
    T = md.derive(md.inv(X), X)
    assert printout(T, UNICODE).startswith("(i, j, k, l) ↦ ")
    assert printout(T, LATEX).startswith(r"(i, j, k, l) \mapsto ")
    assert printout(T, UNICODE, style=STYLE["paper"]) == printout(T, UNICODE)


def test_matrixcalculus_is_the_same_machinery() -> None:
    assert to_matrixcalculus(x @ A @ x) == "x'*(A*x)"
    assert to_matrixcalculus(md.derive(x @ A @ x, x)) == "(A + A')*x"
    with pytest.raises(ValueError, match="logsumexp|lse"):
        to_matrixcalculus(md.logsumexp(x))


# ================================================ formulas as written (issue 13, item 3)
def _read_back(e: md.Expr, shapes: dict, sizes: dict, seed: int = 0) -> None:
    """``str(e)`` read in unicode syntax has ``e``'s values (the unicode parser is not
    the printer: agreeing values prove the printout)."""
    rng = np.random.default_rng(seed)
    vals = {}
    for name, shape in shapes.items():
        dims = tuple(sizes[d] for d in shape)
        vals[name] = rng.uniform(0.5, 1.5, dims) if dims else rng.uniform(0.5, 1.5)
        if len(dims) == 2:
            vals[name] = np.eye(dims[0]) + 0.3 * rng.uniform(-1, 1, dims)
    back = md.parse(str(e), shapes=shapes, syntax="unicode")
    np.testing.assert_allclose(np.asarray(evaluate(back, vals, dims=sizes)),
                               np.asarray(evaluate(e, vals, dims=sizes)),
                               rtol=1e-9, atol=1e-12, err_msg=str(e))


def test_a_function_prints_its_terms_as_written() -> None:
    """f keeps the written order of its terms (a sum is one node for every order, and
    prints as it was written last)."""
    sh = {"w_wo": ("n",), "x_wo": ("n",), "b_wo": ()}
    sizes = {"n": 3}
    cases = [
        ("dot(w_wo, x_wo) + b_wo", "w_wo · x_wo + b_wo"),
        ("sin(x_wo) + sin(2*x_wo) + sin(3*x_wo)", "sin(x_wo) + sin(2x_wo) + sin(3x_wo)"),
        ("x_wo**3 + 2*x_wo + 1", "x_wo³ + 2x_wo + 1"),  # x_wo a vector: 1 is 𝟏, written 1 in a sum
        ("b_wo - sum(w_wo * x_wo) + sum(x_wo)", "b_wo − w_woᵀx_wo + sum(x_wo)"),
    ]
    for text, want in cases:
        f = md.parse(text, shapes=sh)
        assert str(f) == want
        _read_back(f, {k: v for k, v in sh.items() if k in f.variables()}, sizes)


def test_a_sum_is_one_node_in_any_order_and_prints_as_last_written() -> None:
    import pickle

    p, q, r = md.vector("p_on", "n"), md.vector("q_on", "n"), md.scalar("r_on")
    f = md.sin(q) + p * r
    assert str(f) == "sin(q_on) + r_on p_on"
    assert [str(t) for t in f.written_terms()] == ["sin(q_on)", "r_on p_on"]
    g = r * p + md.sin(q)
    assert f is g and f.digest == g.digest           # hash-consing: one node
    assert str(f) == str(g) == "r_on p_on + sin(q_on)"  # as written last
    # the canonical order is the node's children, the written one is beside them
    assert set(f.children) == set(f.written_terms())
    assert str(pickle.loads(pickle.dumps(f))) == str(f)
    # a sum rebuilt over new children keeps its written order
    s = md.vector("s_on", "n")
    assert str(f.rebuild([s if c is p * r else c for c in f.children])) == \
        "s_on + sin(q_on)"


def test_a_derivative_prints_its_terms_in_one_natural_order() -> None:
    """The derivative's terms do not depend on how f was written: positive first,
    shorter first, then by their content (never by a digest); f's own sums inside a
    derivative keep their written order (step(wᵀx + b)x)."""
    import gc

    u = md.vector("u_nat", "n")
    prints = set()
    for order in ([1, 2, 3], [3, 1, 2], [2, 3, 1]):
        f = md.sum(md.sin(order[0] * u) + md.sin(order[1] * u) + md.sin(order[2] * u))
        prints.add(str(md.derive(f, u)))
        del f
        gc.collect()  # the sum goes: the next order is a first construction again
    assert prints == {"cos(u_nat) + 2cos(2u_nat) + 3cos(3u_nat)"}
    w, x, b = md.vector("w_nat", "n"), md.vector("x_nat", "n"), md.scalar("b_nat")
    d = md.derive(md.relu(w @ x + b), w)
    assert str(d) == "step(w_natᵀx_nat + b_nat)x_nat"
    _read_back(d, {"w_nat": ("n",), "x_nat": ("n",), "b_nat": ()}, {"n": 3})


@pytest.mark.parametrize("make, text, tex", [
    # a number after a call or a superscript is set off (issue 13, item 3)
    (lambda: md.derive(md.parse("2**t", shapes={"t": ()}), "t"), "log(2)·2^t",
     r"\log(2) \cdot 2^{t}"),
    # nothing that came from integers prints as a decimal
    (lambda: md.derive(md.sum(x ** 0.5 + md.sqrt(x)), x), "(x^(−1/2) + (√x)⁻¹)/2",
     r"\frac{1}{2} (x^{-1/2} + \sqrt{x}^{-1})"),
    (lambda: md.derive(md.sum(x ** (1 / 3)), x), "x^(−2/3)/3", r"\frac{1}{3} x^{-2/3}"),
    (lambda: x / 2, "x/2", r"\frac{1}{2} x"),
    (lambda: md.derive(x / 9, x), "I/9", r"\frac{1}{9} I"),
    # a matrix times itself is its power; the element-wise power keeps ⊙
    (lambda: md.matrix_power(X, 3), "X³", "X^{3}"),
    (lambda: md.matrix_power(X.T, 2), "(Xᵀ)²", r"(X^\top)^{2}"),
    (lambda: X ** 2, "X^⊙2", r"X^{\odot 2}"),
])
def test_exact_values_separators_and_matrix_powers(make, text, tex) -> None:
    e = make()
    assert md.to_text(e) == text
    assert md.latex(e) == tex
    assert katex_errors([tex]) == []
    shapes = {k: v for k, v in {"x": ("n",), "X": ("n", "n"), "A": ("n", "n"),
                                "t": ()}.items() if k in e.variables() or k == "x"}
    _read_back(e, shapes, {"n": 3})


def test_a_decimal_that_no_integers_make_stays_one() -> None:
    assert md.to_text(0.1 * x) == "0.1x" and md.to_text(x ** 0.1) == "x^0.1"
    # planted: a half that printed as a decimal would fail the exact-value test above
    assert md.to_text(md.derive(md.sum(md.sqrt(x)), x)) != "0.5(√x)⁻¹"


def test_exact_values_in_matrixcalculus_syntax() -> None:
    e = md.derive(x / 9, x)
    text = to_matrixcalculus(e)
    assert text.startswith("(1/9)*")
    back = md.parse(text, shapes={"x": ("n",)}, syntax="matrixcalculus")
    one = {"x": np.ones(3)}
    np.testing.assert_allclose(evaluate(back, one, dims={"n": 3}),
                               evaluate(e, one, dims={"n": 3}))


# ==================================== selections' derivatives: unit vectors (issue 12)
_SEL = {"x": ("n",), "y": ("m",), "A": ("m", "k"), "X": ("n", "m")}
_SEL_SIZES = {"n": 5, "m": 3, "k": 4}


def _sel_values() -> dict:
    rng = np.random.default_rng(7)
    return {k: rng.uniform(-1, 1, tuple(_SEL_SIZES[d] for d in s)) for k, s in _SEL.items()}


@pytest.mark.parametrize("text, wrt, want, tex, reads_back", [
    # a scatter into zeros (a selection's adjoint) is a unit vector eₚ, 1 at index p
    ("x[0]", "x", "e₀", "e_{0}", True),
    ("x[-1]", "x", "eₙ₋₁", "e_{n - 1}", True),
    ("3 * x[1]", "x", "3e₁", "3 e_{1}", True),
    ("x[2] * x[0]", "x", "x[0]e₂ + x[2]e₀", "x_{0} e_{2} + x_{2} e_{0}", True),
    ("x[0] * x", "x", "xe₀ᵀ + x[0]I", r"x e_{0}^\top + x_{0} I", True),
    # a matrix's entry: eₚe_qᵀ, and a row or column selected: e₁yᵀ, xe₁ᵀ
    ("A[1, 2]", "A", "e₁e₂ᵀ", r"e_{1} e_{2}^\top", False),
    ("A[-1, 0]", "A", "eₘ₋₁e₀ᵀ", r"e_{m - 1} e_{0}^\top", False),
    ("X[1, :] @ y", "X", "e₁yᵀ", r"e_{1} y^\top", False),
    ("X[:, 1] @ x", "X", "xe₁ᵀ", r"x e_{1}^\top", False),
])
def test_a_selections_derivative_prints_unit_vectors(text, wrt, want, tex, reads_back) -> None:
    from matdiff.render import to_numpy

    f = md.parse(text, shapes=_SEL)
    g = md.derive(f, wrt)
    assert md.to_text(g) == want and md.latex(g) == tex
    assert katex_errors([tex]) == []
    vals = _sel_values()
    truth = evaluate(g, vals, dims=_SEL_SIZES)
    # the printed form evaluated by the rules of matrix algebra (eₚ = row p of I)
    np.testing.assert_allclose(to_numpy(matrix_form(g), vals, dims=_SEL_SIZES), truth)
    used = {k: v for k, v in _SEL.items() if k in f.variables()}
    if reads_back:  # the dims show (one dim in play, or a variable beside eₚ)
        back = md.parse(want, shapes=used, syntax="unicode")
        np.testing.assert_allclose(evaluate(back, vals, dims=_SEL_SIZES), truth)
    else:  # eₚ's dims show nowhere: refused with a caret, as a bare I is
        with pytest.raises(md.ParseError, match="unit vector"):
            md.parse(want, shapes=used, syntax="unicode")


def test_a_unit_vector_reads_back_where_its_dim_shows() -> None:
    sh = {"x": ("n",), "A": ("n", "n")}
    vals = {"x": np.arange(1.0, 4.0), "A": np.arange(9.0).reshape(3, 3)}
    e = md.parse("Ae₁ + x", shapes=sh, syntax="unicode")
    np.testing.assert_allclose(evaluate(e, vals), vals["A"][:, 1] + vals["x"])
    last = md.parse("eₙ₋₁ᵀx", shapes=sh, syntax="unicode")
    np.testing.assert_allclose(evaluate(last, vals), vals["x"][-1])
    with pytest.raises(md.ParseError, match="index"):
        md.parse("Aᵢⱼ", shapes=sh, syntax="unicode")  # other subscripts: index notation
