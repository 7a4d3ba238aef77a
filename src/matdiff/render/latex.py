r"""LaTeX printer: the same matrix-form tree as the Unicode printer
(:mod:`matdiff.render.text`), the same precedence table
(:mod:`matdiff.render.notation`), written in LaTeX math.

``A^\top``, ``X^{-1}``, ``X^{-\top}``, ``\operatorname{diag}(x)``,
``\operatorname{tr}(A)``, ``\det(X)``, ``\mathbf{1}``, ``I``; element-wise product
and quotient ``\odot`` and ``/`` (``style="standard"``) or ``\otimes`` and
``\oslash`` (``style="paper"``, as the paper writes them); index notation
``(i, j) \mapsto \sum_{k} A_{ik} B_{kj}`` when a result has no matrix form.

>>> import matdiff as md
>>> x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
>>> md.latex(md.derive(x @ A @ x, x))
'(A + A^\\top) x'
>>> md.latex(md.derive(x @ A @ x, x), layout="numerator", f_ndim=0)
'x^\\top (A + A^\\top)'
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..expr.core import Expr
from ..expr.dims import DimPoly, dim_text
from .layout import LAYOUTS, check_choice, f_ndim_of
from .mform import MForm
from .notation import ATOM, POSTFIX, exact, paren
from .printer import MAX_CHARS, Printer, check_options, printout, style_of
from .unicode import UnicodeFormat

__all__ = ["latex", "to_latex", "render_latex", "latex_name", "LATEX", "LatexFormat"]

Result = tuple[str, int]

_GREEK = {
    "α": r"\alpha", "β": r"\beta", "γ": r"\gamma", "δ": r"\delta", "ε": r"\epsilon",
    "ζ": r"\zeta", "η": r"\eta", "θ": r"\theta", "ι": r"\iota", "κ": r"\kappa",
    "λ": r"\lambda", "μ": r"\mu", "ν": r"\nu", "ξ": r"\xi", "π": r"\pi", "ρ": r"\rho",
    "σ": r"\sigma", "τ": r"\tau", "υ": r"\upsilon", "φ": r"\phi", "χ": r"\chi",
    "ψ": r"\psi", "ω": r"\omega", "Γ": r"\Gamma", "Δ": r"\Delta", "Θ": r"\Theta",
    "Λ": r"\Lambda", "Ξ": r"\Xi", "Π": r"\Pi", "Σ": r"\Sigma", "Φ": r"\Phi",
    "Ψ": r"\Psi", "Ω": r"\Omega", "ϕ": r"\varphi", "ϵ": r"\varepsilon",
}
#: a name's Unicode subscript digits (the names explain gives, u₁ u₂) as a subscript
_SUBSCRIPTS = "₀₁₂₃₄₅₆₇₈₉"
_SUBSCRIPT_DIGITS = str.maketrans(_SUBSCRIPTS, "0123456789")
_SPLIT = re.compile(r"^([^\W\d_])(?:_?(\d+)|_([^\W_]+))$")


def _escape_text(s: str) -> str:
    out = []
    for c in s:
        if c in "\\{}_^#$%&~":
            out.append({"\\": r"\backslash ", "~": r"\sim "}.get(c, "\\" + c))
        elif c in _GREEK:
            out.append("$" + _GREEK[c] + "$")
        elif c.isascii() and c.isprintable():
            out.append(c)
        else:
            out.append("?")
    return out and "".join(out) or ""


def _letter(c: str) -> str:
    if c in _GREEK:
        return _GREEK[c]
    if c.isascii() and c.isalpha():
        return c
    return r"\text{" + _escape_text(c) + "}"


def latex_name(name: str) -> str:
    r"""A variable's name in LaTeX: ``x``, ``\alpha``, ``W_{1}`` (for ``W1``, ``W_1``
    and ``W₁``), ``x_{in}``, ``\mathit{loss}``.

    >>> [latex_name(n) for n in ("x", "W1", "x_in", "α", "loss", "my_var", "u₁₂")]
    ['x', 'W_{1}', 'x_{in}', '\\alpha', '\\mathit{loss}', '\\mathit{my\\_var}', 'u_{12}']
    """
    name = name.translate(_SUBSCRIPT_DIGITS) if name[-1:] in _SUBSCRIPTS else name
    if len(name) == 1:
        return _letter(name)
    m = _SPLIT.match(name)
    if m:
        base, digits, word = m.groups()
        sub = digits if digits is not None else "".join(_letter(c) if c in _GREEK else c
                                                        for c in word)
        return _letter(base) + "_{" + sub + "}"
    if all(c in _GREEK for c in name):
        return " ".join(_GREEK[c] for c in name)
    return r"\mathit{" + _escape_text(name) + "}"


def fmt_number(v: float) -> str:
    r"""A number in LaTeX: ``2``, ``0.5``, ``-1``, ``10^{-8}``, ``1.5 \cdot 10^{20}``; the
    digits are the Unicode printer's (:func:`~matdiff.render.notation.fmt_number`).

    >>> [fmt_number(v) for v in (2.0, -1.0, 1e-08, -1.5e20, float("-inf"))]
    ['2', '-1', '10^{-8}', '-1.5 \\cdot 10^{20}', '-\\infty']
    """
    from .notation import fmt_number as digits

    v = float(v)
    if math.isnan(v):
        return r"\mathrm{nan}"
    sign = "-" if v < 0 else ""
    if math.isinf(v):
        return sign + r"\infty"
    s = digits(abs(v))
    if "e" in s:
        mant, exp = s.split("e", 1)
        power = "10^{" + str(int(exp)) + "}"
        return sign + (power if mant == "1" else mant + r" \cdot " + power)
    return sign + s


def _starts_digit(s: str) -> bool:
    return bool(s) and s[0].isdigit()


def _ends_digit(s: str) -> bool:
    return bool(s) and s[-1].isdigit()


def _dot_between(left: str, right: str) -> bool:
    """Whether two factors side by side need ``\\cdot``: a number after a number or
    after a bracket or a superscript (``2 \\cdot 1``, ``\\log(2) \\cdot 2^{x}``)."""
    return (_ends_digit(left) or left.endswith((")", "}"))) and _starts_digit(right)


def _jux(left: str, right: str) -> str:
    """Two factors side by side: a space, or ``\\cdot`` (see :func:`_dot_between`)."""
    if not left:
        return right
    return left + (r" \cdot " if _dot_between(left, right) else " ") + right


def _spaced(items: list[str]) -> list[str]:
    out: list[str] = []
    for k, t in enumerate(items):
        if k:
            out.append(r" \cdot " if _dot_between(out[-1], t) else " ")
        out.append(t)
    return out


def _sub(letters: tuple | list) -> str:
    if not letters:
        return ""
    if all(len(c) == 1 for c in letters):
        return "_{" + "".join(letters) + "}"
    return "_{" + ",".join(c if len(c) == 1 else f"{c[0]}_{{{c[1:]}}}" for c in letters) + "}"


def _sup(base: Result, sup: str) -> Result:
    if sup == r"\top":
        return paren(*base, ATOM) + r"^\top", POSTFIX
    return paren(*base, ATOM) + "^{" + sup + "}", POSTFIX


class LatexFormat(UnicodeFormat):
    """LaTeX math: the symbols, and how factors are set side by side (a space, or
    ``\\cdot`` between two numbers)."""

    SIGNS = {"odot": r"\odot", "otimes": r"\otimes", "oslash": r"\oslash", "slash": "/"}
    POSTFIX = {"T": r"^\top"}
    SPELLING = "latex"
    CALLS = {
        "diag": (r"\operatorname{diag}(", ")", ATOM),
        "diagof": (r"\operatorname{diag}(", ")", ATOM),
        "trace": (r"\operatorname{tr}(", ")", ATOM), "sum": (r"\sum(", ")", ATOM),
        "sumaxis": (r"\operatorname{sum}(", r", \mathrm{axis}=⟨axis⟩)", ATOM),
        "vecof": (r"\operatorname{vec}(", ")", ATOM),
        "mean": (r"\operatorname{mean}(", ")", ATOM),
        "meanaxis": (r"\operatorname{mean}(", r", \mathrm{axis}=⟨axis⟩)", ATOM),
    }
    DOT = r" \cdot "
    KRON = r" \otimes "
    DELTA = r"\delta"
    MINUS = "-"
    ELLIPSIS = r"\cdots"
    MAPSTO = r" \mapsto "
    BRACKET = (r"\left[", r"\right]")
    CHAIN_DOT = r" \cdot "
    ONES, ONES_ROW = r"\mathbf{1}", r"\mathbf{1}^\top"

    def unit(self, offset: Any) -> str:
        """The unit vector ``e_{p}`` (1 at index ``p``, from 0)."""
        return "e_{" + self.size(offset) + "}"
    MIN_CAP = 64

    # ------------------------------------------------------------- leaves
    FRACTION_AFTER = False

    def number(self, v: float) -> str:
        """A number; an exact fraction as ``\\frac{1}{9}`` (``\\frac{1}{2}``), a closed
        form by name: ``\\frac{2}{\\sqrt{\\pi}}``, ``\\sqrt{2}``, ``\\pi``, ``\\mathrm{e}``."""
        ex = exact(v)
        if ex is not None:
            top, bottom = ex.parts("latex")
            sign = "-" if ex.p < 0 else ""
            if not bottom:
                return sign + " ".join(top)
            return sign + r"\frac{" + (" ".join(top) or "1") + "}{" + " ".join(bottom) + "}"
        return fmt_number(v)

    def number_prec(self, v: float) -> int:
        return ATOM

    def name(self, name: str) -> str:
        return latex_name(name)

    def size(self, v: Any) -> str:
        if isinstance(v, DimPoly):  # n + 1, m \cdot n
            return dim_text(DimPoly(((tuple(latex_name(n) for n in m), c)
                                     for m, c in v.terms)), times=r" \cdot ")
        return latex_name(v) if isinstance(v, str) else str(v)

    def unknown(self, kind: str) -> str:  # pragma: no cover
        return r"\langle\text{" + _escape_text(kind) + r"}\rangle"

    def fallback(self, e: Expr) -> str:
        return r"\text{" + _escape_text(f"<{e.kind} of shape {e.shape}>") + "}"

    # ------------------------------------------------------------- stacking
    def stack(self, pr: Any, node: MForm, parts: list[Result]) -> Result:
        r"""A concatenation as a matrix of its parts: a vector's parts one under the
        other (``\begin{bmatrix} a \\ b \end{bmatrix}``, the paper's column), a
        matrix's rows as rows (a vector part transposed, ``u^\top``), blocks side by
        side with ``&``."""
        # a zero part of a concatenation with its dims: 0_{m \times n}
        parts = [(r"\mathbf{0}_{" + r" \times ".join(self.size(d) for d in a.shape) + "}",
                  ATOM) if node.kind == "stack" and a.kind == "fill" and a.params[0] == 0.0
                 and a.shape else part
                 for part, a in zip(parts, node.args, strict=True)]
        texts = [t for t, _ in parts]
        if node.kind == "block":
            nr, nc = node.params
            body = r" \\ ".join(" & ".join(texts[i * nc:(i + 1) * nc]) for i in range(nr))
        else:
            axis, rows = node.params
            if axis == 1 and not any(rows):
                body = " & ".join(texts)
            elif axis == 0:
                cells = []
                for (t, prec), row, a in zip(parts, rows, node.args):
                    if len(node.shape) == 2 and (row or len(a.shape) == 1):
                        t = paren(t, prec, ATOM) + r"^\top"
                    cells.append(t)
                body = r" \\ ".join(cells)
            else:
                return (r"\operatorname{stack}(" + ", ".join(texts) + r", \mathrm{axis}="
                        + str(axis) + ")"), ATOM
        return r"\begin{bmatrix} " + body + r" \end{bmatrix}", ATOM

    def take(self, pr: Any, node: MForm, base: Result) -> Result:
        """A selection: ``x_{0}``, ``A_{1, 2}`` (a name's entries), else NumPy's
        indexes, ``x[1{:}]``, ``X[{:}, 0]``."""
        keys = node.params[0]
        if node.args[0].kind == "sym" and all(t is not None and ":" not in t for t in keys):
            return base[0] + "_{" + ",".join(keys) + "}", ATOM
        text = ", ".join("{:}" if t is None else t.replace(":", "{:}") for t in keys)
        return paren(*base, ATOM) + "[" + text + "]", POSTFIX

    # ------------------------------------------------------------- operators
    def power(self, base: Result, p: float, matrix: bool) -> Result:
        return _sup(base, (r"\odot " if matrix else "") + self.exponent(p))

    def exponent(self, p: float) -> str:
        """A constant exponent: ``2``, ``0.1``, an exact fraction ``-1/2`` (a slash
        reads better than ``\\frac`` in a superscript)."""
        ex = exact(p)
        if ex is not None:
            top, bottom = ex.parts("latex")
            den = (" ".join(bottom) if len(bottom) < 2 else "(" + " ".join(bottom) + ")")
            return ("-" if ex.p < 0 else "") + " ".join(top or ["1"]) + \
                ("/" + den if bottom else "")
        return fmt_number(p)

    def matrix_power(self, base: Result, k: int) -> Result:
        """``X^{3}``: a matrix times itself (the element-wise power is ``X^{\\odot 3}``)."""
        return _sup(base, str(k))

    def power_by(self, base: Result, exponent: Result, matrix: bool) -> Result:
        return _sup(base, (r"\odot " if matrix else "") + exponent[0])

    def func(self, pr: Any, fn: str, args: list[Result]) -> Result:
        """An element-wise function applied, as its definition spells it in LaTeX: a
        form that encloses the argument (``\\sqrt{x}``), or a command and parentheses."""
        from ..expr.functions import FUNCTIONS

        texts = [t for t, _ in args]
        row = FUNCTIONS.get(fn)
        if row is not None and row.latex_wrap is not None:
            left, right = row.latex_wrap
            return left + ", ".join(texts) + right, ATOM
        cmd = row.latex if row is not None and row.latex else \
            r"\operatorname{" + _escape_text(fn) + "}"
        return cmd + "(" + ", ".join(texts) + ")", ATOM

    def quotient(self, pr: Any, num: list[tuple[str, MForm]], den: list[Result]) -> str:
        # lists of parts, joined once; whole: bound decides what is too long
        top = _spaced([t for t, _ in num])
        if den:
            # one factor fills the denominator alone: \frac{1}{n + 1}, no parentheses
            d = [den[0][0]] if len(den) == 1 else _spaced(
                [paren(*res, POSTFIX) for res in den])
            return "".join([r"\frac{", *top, "}{", *d, "}"])
        return "".join(top)

    def lead_quotient(self, pr: Any, c: float, den: list[Result], rest: str) -> str:
        r"""The paper's ``(2/N)vᵀ`` as ``\frac{2}{N} v^\top``."""
        ex = exact(abs(c))
        top, bottom = ex.parts("latex") if ex is not None else ([fmt_number(abs(c))], [])
        d = [den[0][0]] if len(den) == 1 and not bottom else _spaced(
            [*bottom, *(paren(*res, POSTFIX) for res in den)])
        sign = "-" if c < 0 else ""
        return "".join([sign, r"\frac{", " ".join(top) or "1", "}{", *d, "} ", rest])

    # ------------------------------------------------------------- index notation
    def sub(self, letters: tuple[str, ...]) -> str:
        return _sub(letters)

    def indexed(self, text: str, letters: tuple[str, ...]) -> str:
        """``x_{i}``; a name that has a subscript already is braced: ``{W_{1}}_{ij}``."""
        if not letters:
            return text
        if "_" in text or "^" in text:
            text = "{" + text + "}"
        return text + _sub(letters)

    def index_wrap(self, res: Result, letters: tuple[str, ...]) -> str:
        return self.indexed("(" + res[0] + ")", letters)

    def sum_head(self, letters: tuple[str, ...]) -> str:
        return r"\sum" + _sub(letters) + " "

    # ------------------------------------------------------------- side by side
    def jux_text(self, left: str, right: str) -> str:
        return _jux(left, right)

    def spaced(self, items: list[str]) -> list[str]:
        return _spaced(items)

    def juxtaposed(self, texts: list[str]) -> list[str]:
        return _spaced(texts)

    def sep(self, pr: Any, left: str, lnode: MForm | None, right: str,
            rnode: MForm | None) -> str:
        if not left:
            return ""
        return r" \cdot " if _dot_between(left, right) else " "

    def starts_number(self, pr: Any, node: MForm) -> bool:
        return _starts_digit(pr.top(node, False))

    def ends_number(self, text: str) -> bool:
        return _ends_digit(text)

    # ------------------------------------------------------------- length
    def join(self, parts: list[str], cap: int) -> str:
        """Concatenate; past the cap, keep whole leading and trailing parts around
        ``\\cdots`` (every part is balanced, so the result is too)."""
        total = sum(map(len, parts))
        if total <= cap:
            return "".join(parts)
        half = cap // 2
        head, n = [], 0
        for p in parts:
            if n + len(p) > half:
                break
            head.append(p)
            n += len(p)
        tail, n = [], 0
        for p in reversed(parts[len(head):]):
            if n + len(p) > half:
                break
            tail.append(p)
            n += len(p)
        return "".join(head) + r" \cdots " + "".join(reversed(tail))

    def join_whole(self, pr: Any, parts: list[str]) -> str:
        return "".join(parts)

    def bound(self, pr: Any, text: str, prec: int) -> Result:
        # a cut LaTeX text would not parse: an overlong piece becomes \cdots whole
        if len(text) > 2 * pr.cap:
            return r"\cdots", ATOM
        return text, prec

    def finish(self, text: str, cap: int) -> str:
        return text


#: the LaTeX table
LATEX = LatexFormat()


# ===================================================================== entry points
def render_latex(tree: MForm, *, index: bool = False, style: str = "standard",
                 max_chars: int = MAX_CHARS) -> str:
    r"""Print a matrix-form tree in LaTeX; ``index=True`` in index notation.

    >>> import matdiff as md
    >>> from matdiff.render import matrix_form
    >>> render_latex(matrix_form(md.matrix("A", "n", "n").T))
    'A^\\top'
    """
    return Printer(LATEX, style_of(style), max_chars).top(tree, index)


def to_latex(e: Expr, *, layout: str = "mixed", style: str = "standard",
             f_ndim: int | None = None, index: bool = False,
             max_chars: int = MAX_CHARS) -> str:
    r"""An expression in LaTeX math (no ``$`` delimiters), from the same tree and the
    same printer as :func:`matdiff.render.to_text`.

    ``layout`` (``mixed``, ``numerator``, ``denominator``) prints a derivative
    transposed as that layout writes it; it needs ``f_ndim``, the number of leading
    axes that come from the function differentiated (see
    :mod:`matdiff.render.layout`).  ``style``: ``standard`` (``\odot``, ``/``) or
    ``paper`` (the paper's notation: ``\otimes``, ``\oslash``, ``\max(0, z)``).
    ``index=True`` prints index notation.  Never fails on a well-formed expression;
    bad options raise :class:`~matdiff.render.layout.ChoiceError`.

    >>> import matdiff as md
    >>> w, x = md.vector("w", "n"), md.vector("x", "n")
    >>> to_latex(md.derive(w / x, x), style="paper")
    '\\operatorname{diag}(-w \\oslash x^{2})'
    """
    f_ndim = f_ndim_of(e, f_ndim)
    check_choice("layout", layout, LAYOUTS)
    st = style_of(style)
    check_options(layout, f_ndim, len(e.shape))
    return printout(e, LATEX, index=index, style=st, layout=layout, f_ndim=f_ndim,
                    max_chars=max_chars)


def latex(e: Any, *, layout: str = "mixed", style: str = "standard",
          f_ndim: int | None = None, index: bool = False,
          max_chars: int = MAX_CHARS) -> str:
    r"""``md.latex``: an expression (an :class:`~matdiff.expr.core.Expr`, or a
    :class:`~matdiff.explain.Derivation`, whose ``.to_latex()`` it returns) in LaTeX
    math; the options are :func:`to_latex`'s.

    >>> import matdiff as md
    >>> X = md.matrix("X", "n", "n")
    >>> md.latex(md.derive(md.log(md.det(X)), X))
    'X^{-\\top}'
    """
    if not isinstance(e, Expr) and hasattr(e, "to_latex"):
        return e.to_latex()
    if not isinstance(e, Expr):
        from ..errors import MatdiffError

        raise MatdiffError(f"md.latex wants an expression, got {type(e).__name__}")
    return to_latex(e, layout=layout, style=style, f_ndim=f_ndim, index=index,
                    max_chars=max_chars)
