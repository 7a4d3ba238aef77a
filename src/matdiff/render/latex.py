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

import re
from collections.abc import Callable
from typing import Any

from ..expr.core import Expr
from .layout import STYLES, apply_layout, check_choice
from .mform import MForm, index_form, inline, matrix_form
from .notation import (
    ATOM,
    HADAMARD,
    NEG,
    POSTFIX,
    PRODUCT,
    letter_names,
    paren,
)
from .text import (
    _CALL_PREC,
    _LEAVES,
    MAX_CHARS,
    _call_spec,
    _const_exponent,
    _denominator,
    _Printer,
    _transposed_call,
)

__all__ = ["latex", "to_latex", "render_latex", "latex_name"]

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
    r"""A variable's name in LaTeX: ``x``, ``\alpha``, ``W_{1}`` (for ``W1`` and
    ``W_1``), ``x_{in}``, ``\mathit{loss}``.

    >>> [latex_name(n) for n in ("x", "W1", "x_in", "α", "loss", "my_var")]
    ['x', 'W_{1}', 'x_{in}', '\\alpha', '\\mathit{loss}', '\\mathit{my\\_var}']
    """
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
    r"""A number in LaTeX: ``2``, ``0.5``, ``-1``, ``10^{-8}``, ``1.5 \cdot 10^{20}``."""
    from .notation import fmt_number as unicode_number

    s = unicode_number(v).replace("−", "-")
    if s in ("nan",):
        return r"\mathrm{nan}"
    if s.endswith("∞"):
        return s.replace("∞", r"\infty")
    if "e" in s:
        mant, exp = s.split("e", 1)
        exp = str(int(exp))
        sign = "-" if mant.startswith("-") else ""
        mant = mant.lstrip("-")
        power = "10^{" + exp + "}"
        return sign + (power if mant == "1" else mant + r" \cdot " + power)
    return s


def _starts_digit(s: str) -> bool:
    return bool(s) and s[0].isdigit()


def _ends_digit(s: str) -> bool:
    return bool(s) and s[-1].isdigit()


def _jux(left: str, right: str) -> str:
    """Two factors side by side: a space, or ``\\cdot`` between two numbers."""
    if not left:
        return right
    if _ends_digit(left) and _starts_digit(right):
        return left + r" \cdot " + right
    return left + " " + right


def _fill(v: float, rank: int) -> Result:
    if v == 0.0:
        return "0", ATOM
    if rank == 0 or rank >= 3:
        return fmt_number(v), (NEG if v < 0 else ATOM)
    base = r"\mathbf{1}" if rank == 1 else r"\mathbf{1} \mathbf{1}^\top"
    if v == 1.0:
        return base, (ATOM if rank == 1 else PRODUCT)
    if v == -1.0:
        return "-" + base, NEG
    mag = _jux(fmt_number(abs(v)), base)
    return ("-" + mag, NEG) if v < 0 else (mag, PRODUCT)


def _scaled(c: float, kid: Result) -> Result:
    text, prec = kid
    if c == 1.0:
        return text, prec
    body = text if prec == HADAMARD else paren(text, prec, PRODUCT)
    mag = body if abs(c) == 1.0 else _jux(fmt_number(abs(c)), body)
    if prec == HADAMARD:
        return ("-" + mag if c < 0 else mag), HADAMARD
    return ("-" + mag, NEG) if c < 0 else (mag, PRODUCT)


def _call_latex(node: MForm, arg: Result, transposed: bool = False) -> Result:
    """A matrix function's call in LaTeX, from its definition's spelling."""
    spec = _call_spec(node)
    inner = paren(*arg, ATOM) if spec.prec == "postfix" else arg[0]
    return spec.spell("latex", inner, transposed), _CALL_PREC[spec.prec]


def _sup(base: Result, sup: str) -> Result:
    if sup == r"\top":
        return paren(*base, ATOM) + r"^\top", POSTFIX
    return paren(*base, ATOM) + "^{" + sup + "}", POSTFIX


def _power(base: Result, p: float, matrix: bool) -> Result:
    return _sup(base, (r"\odot " if matrix else "") + fmt_number(p))


def _sub(letters: tuple | list) -> str:
    if not letters:
        return ""
    if all(len(c) == 1 for c in letters):
        return "_{" + "".join(letters) + "}"
    return "_{" + ",".join(c if len(c) == 1 else f"{c[0]}_{{{c[1:]}}}" for c in letters) + "}"


def _subscripted(text: str, letters: tuple) -> str:
    """``x_{i}``; a name that has a subscript already is braced: ``{W_{1}}_{ij}``."""
    if not letters:
        return text
    if "_" in text or "^" in text:
        text = "{" + text + "}"
    return text + _sub(letters)


def _fn_call(fn: str, args: list[str]) -> Result:
    """An element-wise function applied, as its definition spells it in LaTeX: a form
    that encloses the argument (``\\sqrt{x}``), or a command and parentheses."""
    from ..expr.functions import FUNCTIONS

    row = FUNCTIONS.get(fn)
    if row is not None and row.latex_wrap is not None:
        left, right = row.latex_wrap
        return left + ", ".join(args) + right, ATOM
    cmd = row.latex if row is not None and row.latex else \
        r"\operatorname{" + _escape_text(fn) + "}"
    return cmd + "(" + ", ".join(args) + ")", ATOM


class _LatexPrinter(_Printer):
    """One printing session (iterative, memoised) in matrix mode ``('m', node)`` or
    index mode ``('i', node, letters, used)``, like the Unicode printer's."""

    def __init__(self, style: str = "standard", max_chars: int = MAX_CHARS) -> None:
        check_choice("style", style, STYLES)
        self.had = r"\otimes" if style == "paper" else r"\odot"
        self.div = r"\oslash" if style == "paper" else "/"
        self.cap = max(int(max_chars), 64)
        self.memo: dict[tuple, Result] = {}
        self.count = 0

    # ------------------------------------------------------------- engine
    def join(self, parts: list[str]) -> str:
        """Concatenate; past the cap, keep whole leading and trailing parts around
        ``\\cdots`` (every part is balanced, so the result is too)."""
        total = sum(map(len, parts))
        if total <= self.cap:
            return "".join(parts)
        half = self.cap // 2
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

    ELLIPSIS = r"\cdots"
    MINUS = "-"

    def _bound(self, text: str, prec: int) -> Result:
        # a cut LaTeX text would not parse: an overlong piece becomes \cdots whole
        if len(text) > 2 * self.cap:
            return r"\cdots", ATOM
        return text, prec

    def _number(self, v: float) -> str:
        return fmt_number(v)

    def _sum_head(self, letters: tuple) -> str:
        return r"\sum" + _sub(letters) + " "

    def _factors(self, items: list[str]) -> str:
        return self.join(_spaced(items))

    def top(self, root: MForm, index: bool) -> str:
        rank = len(root.shape)
        if index or root.kind == "index" or (rank >= 3 and root.kind not in _LEAVES):
            letters = tuple(letter_names(rank))
            body, _ = self.run(("i", root, letters, frozenset(letters)))
            if rank:
                return "(" + ", ".join(letters) + r") \mapsto " + body
            return body
        return self.run(("m", root))[0]

    # ------------------------------------------------------------- matrix mode
    def _plan_m(self, node: MForm) -> tuple[list, Callable[[list], Result]]:
        k = node.kind
        rank = len(node.shape)
        if k == "index" or (rank >= 3 and k not in _LEAVES):
            letters = tuple(letter_names(rank))

            def bracket(r: list) -> Result:
                body, prec = r[0]
                if not letters:
                    return (f"({body})" if prec < ATOM else body), ATOM
                return (r"\left[(" + ", ".join(letters) + r") \mapsto " + body
                        + r"\right]"), ATOM

            return [("i", node, letters, frozenset(letters))], bracket
        if _transposed_call(node):
            return [("m", node.args[0].args[0])], \
                lambda r: _call_latex(node.args[0], r[0], transposed=True)
        if k == "add":
            return self._plan_add(node, lambda t: ("m", t))
        if k == "had":
            return self._plan_had(node)
        if k == "smul":
            return self._plan_smul(node)
        if k == "pow":
            p = _const_exponent(node.args[1])
            matrix = node.orient == "m"
            if p is not None:
                return [("m", node.args[0])], lambda r: _power(r[0], p, matrix)
            pre = r"\odot " if matrix else ""
            return [("m", a) for a in node.args], \
                lambda r: _sup(r[0], pre + r[1][0])
        return [("m", a) for a in node.args], lambda r: self._finish_m(node, r)

    def _finish_m(self, node: MForm, r: list) -> Result:
        k, p = node.kind, node.params
        if k == "sym":
            return latex_name(p[0]), ATOM
        if k == "num":
            return fmt_number(p[0]), (NEG if p[0] < 0 else ATOM)
        if k == "fill":
            return _fill(p[0], len(node.shape))
        if k == "size":
            return (latex_name(p[0]) if isinstance(p[0], str) else str(p[0])), ATOM
        if k == "eye":
            return "I", ATOM
        if k == "T":
            return _sup(r[0], r"\top")
        if k == "matmul":
            return _jux(paren(*r[0], PRODUCT), paren(*r[1], PRODUCT)), PRODUCT
        if k == "scale":
            return _scaled(p[0], r[0])
        if k in ("diag", "diagof"):
            return r"\operatorname{diag}(" + r[0][0] + ")", ATOM
        if k == "trace":
            return r"\operatorname{tr}(" + r[0][0] + ")", ATOM
        if k == "sum":
            return r"\sum(" + r[0][0] + ")", ATOM
        if k == "sumaxis":
            return (r"\operatorname{sum}(" + r[0][0] + r", \mathrm{axis}=" + str(p[0])
                    + ")"), ATOM
        if k == "func":
            return _fn_call(p[0], [t for t, _ in r])
        if k == "call":
            return _call_latex(node, r[0])
        return r"\langle\text{" + _escape_text(k) + r"}\rangle", ATOM  # pragma: no cover

    minus = "-"

    def _scale(self, c: float, kid: Result) -> Result:
        return _scaled(c, kid)

    def _plan_had(self, node: MForm):
        dens = [_denominator(a) for a in node.args]
        use_div = any(d is None for d in dens)
        deps, kinds = [], []
        for a, d in zip(node.args, dens, strict=True):
            if use_div and d is not None:
                deps.append(("m", d[0]))
                kinds.append(d[1])
            else:
                deps.append(("m", a))
                kinds.append(None)
        matrix = node.orient == "m"

        def slot(res: Result, arg: MForm) -> str:
            return res[0] if arg.kind == "had" else paren(*res, POSTFIX)

        def finish(r: list) -> Result:
            out: list[str] = []
            for res, p, a in zip(r, kinds, node.args, strict=True):
                if p is None:
                    if out:
                        out.append(f" {self.had} ")
                    out.append(slot(res, a))
            for res, p in zip(r, kinds, strict=True):
                if p is not None:
                    den = res if p == 1 else _power(res, p, matrix)
                    out += [f" {self.div} ", paren(*den, POSTFIX)]
            return self.join(out), HADAMARD

        return deps, finish

    def _plan_smul(self, node: MForm):
        scalars, x = node.args[:-1], node.args[-1]
        dens = [_denominator(s) for s in scalars]
        deps = [("m", d[0] if d is not None else s)
                for s, d in zip(scalars, dens, strict=True)]
        deps.append(("m", x))

        def finish(r: list) -> Result:
            # lists of parts, joined once (a text grown factor by factor copied
            # itself once per factor); whole, as before: _bound decides what is too long
            num = []
            den_parts = []
            for s, res, d in zip(scalars, r[:-1], dens, strict=True):
                if d is None:
                    num.append(res[0] if inline(s) else paren(*res, POSTFIX))
                else:
                    den_parts.append(res if d[1] == 1 else _power(res, d[1], False))
            num.append(paren(*r[-1], PRODUCT))
            if den_parts:
                den = _spaced([paren(*res, POSTFIX) for res in den_parts])
                return "".join([r"\frac{", *_spaced(num), "}{", *den, "}"]), PRODUCT
            return "".join(_spaced(num)), PRODUCT

        return deps, finish

    # ------------------------------------------------------------- index mode
    def _plan_i(self, node: MForm, letters: tuple, used: frozenset):
        k = node.kind

        def same(t: MForm) -> tuple:
            return ("i", t, letters, used)

        if k == "sym":
            return [], lambda r: (_subscripted(latex_name(node.params[0]), letters), ATOM)
        if k in ("num", "fill", "size"):
            v = node.params[0]
            if k == "size":
                return [], lambda r: ((latex_name(v) if isinstance(v, str) else str(v)),
                                      ATOM)
            return [], lambda r: (fmt_number(v), NEG if v < 0 else ATOM)
        if k == "eye":
            return [], lambda r: (r"\delta" + _sub(letters), ATOM)
        if k == "T":
            return [("i", node.args[0], letters[::-1], used)], lambda r: r[0]
        if k == "had":
            return [same(a) for a in node.args], \
                lambda r: (self.join(_spaced([paren(*x, PRODUCT) for x in r])), PRODUCT)
        if k == "diag":
            return [("i", node.args[0], letters[:1], used)], \
                lambda r: (paren(*r[0], PRODUCT) + r" \delta" + _sub(letters), PRODUCT)
        if k == "diagof":
            return [("i", node.args[0], letters * 2, used)], lambda r: r[0]
        if k == "scale":
            return [same(node.args[0])], lambda r: _scaled(node.params[0], r[0])
        if k == "smul":
            deps = [("m", s) for s in node.args[:-1]] + [same(node.args[-1])]

            def finish_smul(r: list) -> Result:
                factors = [res[0] if inline(s) else paren(*res, POSTFIX)
                           for s, res in zip(node.args, r[:-1], strict=False)]
                return "".join([*_spaced(factors), " ", paren(*r[-1], PRODUCT)]), PRODUCT

            return deps, finish_smul
        if k == "add":
            return self._plan_add(node, same)
        if k == "func":
            return [same(a) for a in node.args], \
                lambda r: _fn_call(node.params[0], [t for t, _ in r])
        if k == "pow":
            p = _const_exponent(node.args[1])
            if p is not None:
                return [same(node.args[0])], lambda r: _power(r[0], p, False)
            return [same(a) for a in node.args], lambda r: _sup(r[0], r[1][0])
        if k == "index":
            return self._plan_product(node, letters, used)
        deps, finish = self._plan_m_args(node)
        return deps, lambda r: (_subscripted("(" + finish(r)[0] + ")", letters), ATOM)


def _spaced(items: list[str]) -> list[str]:
    out: list[str] = []
    for k, t in enumerate(items):
        if k:
            out.append(r" \cdot " if _ends_digit(out[-1]) and _starts_digit(t) else " ")
        out.append(t)
    return out


# ===================================================================== entry points
def render_latex(tree: MForm, *, index: bool = False, style: str = "standard",
                 max_chars: int = MAX_CHARS) -> str:
    """Print a matrix-form tree in LaTeX; ``index=True`` in index notation."""
    return _LatexPrinter(style, max_chars).top(tree, index)


def _fallback(e: Expr) -> str:
    return r"\text{" + _escape_text(f"<{e.kind} of shape {e.shape}>") + "}"


def to_latex(e: Expr, *, layout: str = "mixed", style: str = "standard",
             f_ndim: int | None = None, index: bool = False,
             max_chars: int = MAX_CHARS) -> str:
    r"""An expression in LaTeX math (no ``$`` delimiters), from the same tree as
    :func:`matdiff.render.to_text`.

    ``layout`` (``mixed``, ``numerator``, ``denominator``) prints a derivative
    transposed as that layout writes it; it needs ``f_ndim``, the number of leading
    axes that come from the function differentiated (see
    :mod:`matdiff.render.layout`).  ``style``: ``standard`` (``\odot``, ``/``) or
    ``paper`` (``\otimes``, ``\oslash``).  ``index=True`` prints index notation.
    Never fails on a well-formed expression; bad options raise
    :class:`~matdiff.render.layout.ChoiceError`.

    >>> import matdiff as md
    >>> w, x = md.vector("w", "n"), md.vector("x", "n")
    >>> to_latex(md.derive(w / x, x), style="paper")
    '\\operatorname{diag}(-w \\oslash x^{2})'
    """
    from .layout import LAYOUTS, f_ndim_of, transposes

    f_ndim = f_ndim_of(e, f_ndim)
    check_choice("layout", layout, LAYOUTS)
    check_choice("style", style, STYLES)
    if layout != "mixed":
        transposes(layout, len(e.shape), f_ndim)  # validates f_ndim
    try:
        tree = index_form(e) if index else matrix_form(e)
        tree = apply_layout(tree, layout, f_ndim)
        return render_latex(tree, index=index, style=style, max_chars=max_chars)
    except Exception:  # printing must never fail: fall back to index notation
        if not index:
            try:
                tree = apply_layout(index_form(e), layout, f_ndim)
                return render_latex(tree, index=True, style=style, max_chars=max_chars)
            except Exception:  # pragma: no cover
                pass
        return _fallback(e)


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
