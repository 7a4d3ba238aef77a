"""The one printer (issue 11, item 3): one Printer class, one symbol table per format.

Unicode, LaTeX and matrixcalculus.org's syntax are the same machinery
(matdiff.render.printer.Printer) with their own tables; the paper's style is a
printer option applied while printing, not an edit of printed text.
"""

from __future__ import annotations

import inspect

import pytest

import matdiff as md
from katex import katex_errors
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
