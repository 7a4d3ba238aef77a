"""The formulas of a derivation, printed by matdiff's one printer (:mod:`matdiff.render`)
from the expressions the derivation holds; nothing here edits a printed string.

The steps use the paper's notation (``style="paper"``: ``⊗``, ``⊘``, ``max(0, z)``, a
row's coefficient in front, ``(2/N)vᵀ``) and, for the local derivatives and the chain
rule, the paper's numerator layout.  The result line is the derivative exactly as
``md.to_text`` and ``md.latex`` print ``md.derive``'s result: the default style and
layout.

>>> import matdiff as md
>>> w, x = md.vector("w", "n"), md.vector("x", "n")
>>> definition(md.relu(w * x)), definition(md.relu(w * x), "latex")
('max(0, w ⊗ x)', '\\\\max(0, w \\\\otimes x)')
>>> jacobian(md.derive(md.sum(w * x), w), 0)
'xᵀ'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..expr import simplify as S
from ..expr.core import Const, Expr
from ..render.latex import LATEX, latex_name, to_latex
from ..render.layout import apply_layout
from ..render.mform import MForm, index_form, matrix_form
from ..render.printer import STYLE, Printer, printout
from ..render.text import to_text
from ..render.unicode import UNICODE

__all__ = ["definition", "jacobian", "chain", "sum_of", "result", "name", "partial", "dims"]

#: the paper's notation, for everything but the result line
PAPER = STYLE["paper"]
_FORMATS = {"text": UNICODE, "latex": LATEX}


def definition(e: Expr, fmt: str = "text") -> str:
    """An intermediate variable's definition (or ``f`` itself), the paper's way."""
    return printout(e, _FORMATS[fmt], style=PAPER)


def jacobian(J: Expr, f_ndim: int, fmt: str = "text") -> str:
    """A local derivative (or the result) in numerator layout, the paper's way;
    ``f_ndim`` is the number of its leading axes that come from the function."""
    return printout(J, _FORMATS[fmt], style=PAPER, layout="numerator", f_ndim=f_ndim)


def _tree(J: Expr, f_ndim: int) -> MForm:
    try:
        tree = matrix_form(J)
    except Exception:  # noqa: BLE001 - a product with no matrix form: index notation
        tree = index_form(J)
    return apply_layout(tree, "numerator", f_ndim)


def chain(factors: Sequence[tuple[Expr, int]], fmt: str = "text") -> str:
    """The chain rule's product of local derivatives ``(J, f_ndim)``, outside in,
    written one after another without simplifying: ``(2/N)vᵀ (−I) diag(step(z)) X``."""
    if len(factors) == 1:
        return jacobian(*factors[0], fmt)
    return Printer(_FORMATS[fmt], PAPER).chain([_tree(J, k) for J, k in factors])


def sum_of(terms: Sequence[Expr], fmt: str = "text") -> str:
    """Terms written one after another as a sum, unsimplified (the product rule's
    ``dxᵀAx + xᵀA dx``): a term that prints with a leading minus is written as the
    printout of its negation after ``−``."""
    minus = _FORMATS[fmt].MINUS
    out: list[str] = []
    for k, t in enumerate(terms):
        text = definition(t, fmt)
        if k and text.startswith(minus):
            axes = tuple(range(len(t.shape)))
            negated = definition(S.einsum([Const(-1.0), t], [(), axes], axes), fmt)
            if not negated.startswith(minus):
                out.append(f" {minus} {negated}")
                continue
        out.append((" + " if k else "") + text)
    return "".join(out)


def result(e: Expr, fmt: str = "text") -> str:
    """The result line: what ``md.to_text`` (``md.latex``) prints for ``md.derive``."""
    return to_text(e) if fmt == "text" else to_latex(e)


def name(s: str, fmt: str = "text") -> str:
    """A name of the derivation (``y``, ``u₁``) in the format."""
    return s if fmt == "text" else latex_name(s)


def partial(of: str, wrt: str, fmt: str = "text") -> str:
    r"""``∂of/∂wrt``, in LaTeX ``\frac{\partial of}{\partial wrt}``."""
    if fmt == "text":
        return f"∂{of}/∂{wrt}"
    return r"\frac{\partial " + latex_name(of) + r"}{\partial " + latex_name(wrt) + "}"


def dims(ds: Sequence[Any], fmt: str = "text") -> str:
    r"""A shape as its dims: ``m × n``, in LaTeX ``m \times n``."""
    if fmt == "text":
        return " × ".join(str(d) for d in ds)
    return r" \times ".join(LATEX.size(d) if isinstance(d, str) and d.isidentifier()
                            else str(d) for d in ds)
