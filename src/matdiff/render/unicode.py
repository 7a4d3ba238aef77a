"""The Unicode format's table for :class:`~matdiff.render.printer.Printer`: how matrix
notation is spelled in plain text (what ``str(e)`` prints).

``Aᵀ``, ``X⁻¹``, ``X⁻ᵀ``, ``x²``, ``x^0.5``, ``A^⊙2`` (an element-wise power of a
matrix), ``diag(x)``, ``tr(A)``, ``1`` (the ones vector), ``I``; two factors are
written side by side with nothing between them (``Ax``, ``2x``, ``zI``), a space where
two words would run together (``A diag(x)``) and ``·`` between two numbers
(``2·1``); index notation ``(i, j) ↦ Σₖ Aᵢₖ Bₖⱼ``.

>>> import matdiff as md
>>> from matdiff.render.printer import printout
>>> X = md.matrix("X", "n", "n")
>>> printout(md.derive(md.log(md.det(X)), X), UNICODE)
'X⁻ᵀ'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..expr.core import Expr
from ..expr.dims import dim_text
from .mform import (
    _CALL_PREC,
    ARG_PREC,
    MForm,
    _const_exponent,
    _denominator,
    _int,
    call_spec,
    inline,
)
from .notation import (
    ATOM,
    HADAMARD,
    NEG,
    POSTFIX,
    PRODUCT,
    abbreviate,
    exact,
    first_word,
    fmt_number,
    is_digit,
    join_capped,
    juxtapose,
    last_word,
    paren,
    separator,
    subscript,
    superscript_int,
)

if TYPE_CHECKING:  # pragma: no cover
    from .printer import Printer

__all__ = ["UNICODE", "UnicodeFormat"]

Result = tuple[str, int]

#: after this many characters in all, pieces are cut to a few characters: a deep
#: shared subexpression printed under many index letters stays fast
_CHAR_BUDGET = 400_000_000


def _row(fn: str) -> Any:
    from ..expr.functions import FUNCTIONS

    return FUNCTIONS.get(fn)


def _parts(items: list[str], sep: str) -> list[str]:
    out: list[str] = []
    for k, t in enumerate(items):
        if k:
            out.append(sep)
        out.append(t)
    return out


class UnicodeFormat:
    """Unicode matrix notation: the symbols, and how factors are set side by side."""

    #: the element-wise signs of the styles (a style may give its own sign)
    SIGNS = {"odot": "⊙", "otimes": "⊗", "oslash": "⊘", "slash": "/"}
    #: postfix operators: the transpose
    POSTFIX = {"T": "ᵀ"}
    #: which spelling of a matrix function's definition the format writes
    SPELLING = "unicode"
    #: the calls, one entry per kind: (before the argument, after it, precedence);
    #: ``⟨axis⟩`` stands for the kind's parameter
    CALLS = {
        "diag": ("diag(", ")", ATOM), "diagof": ("diag(", ")", ATOM),
        "trace": ("tr(", ")", ATOM), "sum": ("sum(", ")", ATOM),
        "sumaxis": ("sum(", ", axis=⟨axis⟩)", ATOM), "vecof": ("vec(", ")", ATOM),
        "mean": ("mean(", ")", ATOM), "meanaxis": ("mean(", ", axis=⟨axis⟩)", ATOM),
    }
    #: the dot product of two vectors as written, the paper's ``w · x``
    DOT = " · "
    EYE = "I"
    #: the vec layout's Kronecker product and commutation matrix (vec(Xᵀ) = K vec(X))
    KRON = " ⊗ "
    COMM = "K"
    DELTA = "δ"
    MINUS = "−"
    ELLIPSIS = "…"
    MAPSTO = " ↦ "
    BRACKET = ("[", "]")
    #: between two factors of a written-out chain of matrices when one is a number
    CHAIN_DOT = " · "
    #: the smallest cap on a printout's length
    MIN_CAP = 16
    #: whether the format writes each form whole from its operands' texts (a syntax
    #: without precedence; see :mod:`matdiff.render.matrixcalculus`)
    WHOLE = False

    # ------------------------------------------------------------- matrix functions
    def call(self, node: MForm, arg: Result | list[Result],
             transposed: bool = False) -> Result:
        """A matrix function's call (a ``call`` form) around its printed argument (or
        arguments, a list), by its definition's spelling in this format: a postfix one
        (``X⁻¹``) sets its argument as a superscript's base, an infix one (``A ⊗ B``)
        parenthesises looser operands; ``transposed``: the spelling of the
        transposed result (``X⁻ᵀ``)."""
        spec = call_spec(node)
        args = [arg] if isinstance(arg, tuple) else list(arg)
        need = ARG_PREC.get(spec.prec, ())
        inner = [paren(*a, need[k]) if k < len(need) else a[0] for k, a in enumerate(args)]
        return spec.spell(self.SPELLING, inner, transposed), _CALL_PREC[spec.prec]

    # ------------------------------------------------------------- leaves
    #: whether an exact fraction is written after its operand, ``x/9`` (LaTeX writes
    #: ``\\frac{1}{9} x``)
    FRACTION_AFTER = True

    def number(self, v: float) -> str:
        """A number: an exact fraction as one, ``1/9`` (``−2/3``, ``1/2``), a closed
        form by name, ``2/√π``, ``1/√(2π)``, ``√2``, ``π``, ``log(2)``, ``exp(1)``."""
        ex = exact(v)
        if ex is not None:
            return str(ex)
        return fmt_number(v)

    def number_prec(self, v: float) -> int:
        """The precedence of a positive number's text: ``1/9``, ``2/√π`` and ``2π``
        are products, ``√2`` a prefix operator's (as ``√x``), ``π`` an atom."""
        ex = exact(v)
        if ex is None:
            return ATOM
        top, bottom = ex.parts()
        if bottom or len(top) > 1:
            return PRODUCT
        return ATOM if ex.form is None or ex.form.atom else POSTFIX

    def name(self, name: str) -> str:
        return name

    def size(self, v: Any) -> str:
        return dim_text(v, minus=f" {self.MINUS} ")

    def fill(self, v: float, rank: int) -> Result:
        """A tensor filled with ``v``: ``0``; the ones vector ``𝟏`` (``c𝟏``, ``−𝟏``,
        ``(1/9)𝟏``); the ones matrix ``𝟏𝟏ᵀ``.  The bold one is what the unicode syntax
        reads as the ones vector, so ``b𝟏`` (the scalar b spread over a vector) never
        reads as a variable named ``b1``."""
        if v == 0.0:
            return "0", ATOM
        if rank == 0 or rank >= 3:
            return self.number(v), (NEG if v < 0 else self.number_prec(v))
        base = self.ONES if rank == 1 else self.jux_text(self.ONES, self.ONES_ROW)
        if v == 1.0:
            return base, (ATOM if rank == 1 else PRODUCT)
        if v == -1.0:
            return self.MINUS + base, NEG
        num = self.number(abs(v))
        if self.number_prec(abs(v)) < POSTFIX:
            num = "(" + num + ")"  # (1/9)𝟏, (1/π)𝟏; √2𝟏
        mag = self.jux_text(num, base)
        return (self.MINUS + mag, NEG) if v < 0 else (mag, PRODUCT)

    ONES, ONES_ROW = "𝟏", "𝟏ᵀ"

    def unit(self, offset: Any) -> str:
        """The unit vector ``eₚ`` (1 at index ``p``, from 0): ``e₀``, ``eₙ₋₁``; an
        index without subscript letters is written ``e_(N − 1)``."""
        text = dim_text(offset, minus="-").replace(" ", "")
        sub = str.maketrans("0123456789-+", "₀₁₂₃₄₅₆₇₈₉₋₊")
        if all(c.isdigit() or c in "-+" or subscript((c,)) != f"[{c}]" for c in text):
            return "e" + "".join(c.translate(sub) if not c.isalpha() else subscript((c,))
                                 for c in text)
        return "e_(" + dim_text(offset, minus=f" {self.MINUS} ") + ")"

    def unknown(self, kind: str) -> str:  # pragma: no cover
        return f"<{kind}>"

    def fallback(self, e: Expr) -> str:
        """What a printout is when nothing can print the expression."""
        return f"<{e.kind} of shape {e.shape}>"

    # ------------------------------------------------------------- stacking
    def stack(self, pr: Printer, node: MForm, parts: list[Result]) -> Result:
        """A concatenation as the numpy syntax writes it (and the unicode syntax reads
        it): ``[a, b]`` (a stack: the paper's vector of the parts), ``concat(w, [b])``
        (blocks, the rows among them grouped in brackets); along a later axis,
        ``stack([a, b], axis=1)``; a zero block with its dims, ``concat(I, [zeros(n)])``."""
        # a zero part of a concatenation has no value to show its dims: zeros(m, n),
        # zeros(n) (in a block matrix, its row and column show them)
        texts = [self.zeros(a.shape) if node.kind == "stack" and a.kind == "fill"
                 and a.params[0] == 0.0 and a.shape else t
                 for (t, _), a in zip(parts, node.args, strict=True)]
        if node.kind == "block":  # NumPy's block([[X, E], [0, X]]); of numbers [[1, 2], …]
            nr, nc = node.params
            rows_text = ", ".join("[" + ", ".join(texts[i * nc:(i + 1) * nc]) + "]"
                                  for i in range(nr))
            if all(not a.shape for a in node.args):
                return pr.join(["[", rows_text, "]"]), ATOM
            return pr.join(["block([", rows_text, "])"]), ATOM
        axis, rows = node.params
        if axis == 1 and not any(rows):  # matrices side by side: block([[X, E]])
            return pr.join(["block([[", *_parts(texts, ", "), "]])"]), ATOM
        if all(rows):
            body = ["[", *_parts(texts, ", "), "]"]
            if axis:
                body = ["stack(", *body, f", axis={axis})"]
            return pr.join(body), ATOM
        items: list[str] = []
        run: list[str] = []
        for t, row in zip(texts, rows):
            if row:
                run.append(t)
                continue
            if run:
                items.append("[" + ", ".join(run) + "]")
                run = []
            items.append(t)
        if run:
            items.append("[" + ", ".join(run) + "]")
        tail = f", axis={axis})" if axis else ")"
        return pr.join(["concat(", *_parts(items, ", "), tail]), ATOM

    def zeros(self, shape: tuple) -> str:
        """A block of zeros inside a concatenation, with its dims (the unicode syntax
        reads it back): ``zeros(n)``, ``zeros(m, n)``, ``zeros(n + 1)``."""
        return "zeros(" + ", ".join(self.size(d) for d in shape) + ")"

    def take(self, pr: Printer, node: MForm, base: Result) -> Result:
        """A selection as NumPy indexes it: ``x[0]``, ``x[1:]``, ``X[:, 0]``,
        ``(Ax)[−1]``."""
        keys = ", ".join(self.MINUS.join(("" if t is None else t).split("-")) or ":"
                         if t is not None else ":" for t in node.params[0])
        return paren(*base, ATOM) + "[" + keys + "]", POSTFIX

    # ------------------------------------------------------------- operators
    def power(self, base: Result, p: float, matrix: bool) -> Result:
        """``x²``, ``x⁻¹``, ``x^0.1``; an exact fraction as one, ``x^(1/2)``,
        ``x^(−1/3)``; element-wise powers of matrices ``A^⊙2``, ``A^⊙(1/2)``."""
        op = "^⊙" if matrix else "^"
        if _int(p) and not matrix:
            return paren(*base, ATOM) + superscript_int(int(p)), POSTFIX
        return paren(*base, ATOM) + op + self.exponent(p), POSTFIX

    def exponent(self, p: float) -> str:
        """A constant exponent after ``^``: ``2``, ``0.1``, ``(1/2)``, ``(−3/2)``."""
        if exact(p) is not None:
            return "(" + self.number(p) + ")"
        return fmt_number(p)

    def matrix_power(self, base: Result, k: int) -> Result:
        """A matrix times itself ``k`` times (``matrix_power(X, 3)``): ``X³``; the
        element-wise power of a matrix is ``X^⊙3``, so ``X³`` is never read as it."""
        return paren(*base, ATOM) + superscript_int(k), POSTFIX

    def power_by(self, base: Result, exponent: Result, matrix: bool) -> Result:
        """A power whose exponent is an expression: ``x^y``, ``A^⊙y``."""
        op = "^⊙" if matrix else "^"
        return paren(*base, ATOM) + op + paren(*exponent, ATOM), POSTFIX

    def func(self, pr: Printer, fn: str, args: list[Result]) -> Result:
        """An element-wise function as its definition spells it in Unicode: an
        operator before its argument (``√x``), or a call ``name(…)``."""
        row = _row(fn)
        name = (row.unicode or fn) if row is not None else fn
        if row is not None and row.prefix:
            return name + paren(*args[0], ATOM), POSTFIX
        return pr.join([name, "(", *_parts([t for t, _ in args], ", "), ")"]), ATOM

    def quotient(self, pr: Printer, num: list[tuple[str, MForm]], den: list[Result]) -> str:
        """Factors side by side over scalar factors: ``2x``, ``x/z``, ``x/(yz)``."""
        parts: list[str] = []  # the factors and what goes between them
        prev = None
        for t, node in num:
            if parts:
                parts.append(self._jux_sep(pr, parts[-1], prev, t, node))
            parts.append(t)
            prev = node
        if den:
            d = self.juxtaposed([paren(*res, POSTFIX) for res in den])
            parts += ["/", "(", *d, ")"] if len(den) > 1 else ["/", *d]
        return pr.join(parts)

    def lead_quotient(self, pr: Printer, c: float, den: list[Result], rest: str) -> str:
        """A coefficient in front as a quotient, the paper's ``(2/N)vᵀ``."""
        ex = exact(abs(c))
        top, bottom = ex.parts() if ex is not None else ([fmt_number(abs(c))], [])
        # an exact coefficient's divisors join the denominator: (1/(9N))vᵀ, (2/(√π N))vᵀ
        d = self.juxtaposed([*bottom, *(paren(*res, POSTFIX) for res in den)])
        d = ["(", *d, ")"] if len(bottom) + len(den) > 1 else d
        sign = self.MINUS if c < 0 else ""
        return pr.join(["(", sign, *self.juxtaposed(top or ["1"]), "/", *d, ")", rest])

    # ------------------------------------------------------------- index notation
    def sub(self, letters: tuple[str, ...]) -> str:
        return subscript(letters)

    def indexed(self, text: str, letters: tuple[str, ...]) -> str:
        """A name with index letters: ``Aᵢⱼ``."""
        return text + subscript(letters)

    def index_wrap(self, res: Result, letters: tuple[str, ...]) -> str:
        """A matrix form with its axes named: ``(Ax)ᵢ``, ``tr(A)``."""
        return paren(*res, ATOM) + subscript(letters)

    def sum_head(self, letters: tuple[str, ...]) -> str:
        return "Σ" + subscript(letters) + " "

    # ------------------------------------------------------------- side by side
    def jux_text(self, left: str, right: str) -> str:
        """Two factors side by side, the words at the edges read from the texts."""
        return juxtapose(left, right)

    def spaced(self, items: list[str]) -> list[str]:
        """Factors of an index-notation product, with spaces between them."""
        return _parts(items, " ")

    def juxtaposed(self, texts: list[str]) -> list[str]:
        """The parts of ``texts`` written side by side as :func:`juxtapose` writes them
        one after another: each separator reads the last word of all the text before
        it, kept as the parts grow (a word runs on over parts joined without a space)."""
        parts: list[str] = []
        word = ""
        for t in texts:
            sep = ("·" if t.startswith("[") else separator(word, first_word(t))) \
                if parts else ""
            if parts:
                parts.append(sep)
            parts.append(t)
            tail = last_word(t)
            word = word + t if tail == t and not sep else tail
        return parts

    def sep(self, pr: Printer, left: str, lnode: MForm | None, right: str,
            rnode: MForm | None) -> str:
        """What goes between two factors of a matrix product."""
        return self._jux_sep(pr, left, lnode, right, rnode)

    def _jux_sep(self, pr: Printer, left: str, lnode: MForm | None, right: str,
                 rnode: MForm | None) -> str:
        """With ``lnode`` given it reads only the end of ``left``, so ``left`` may be
        the last factor of a longer text (products are written as lists of parts: a
        text grown factor by factor copied itself once per factor)."""
        lt = self.edge(pr, lnode, True) if lnode is not None and not left.endswith(")") \
            else last_word(left)
        rt = self.edge(pr, rnode, False) if rnode is not None and not right.startswith("(") \
            else first_word(right)
        if lt == "^":  # x^0.5 y, not x^0.5y
            return " "
        if right.startswith("["):  # Aᵀ·[0, 1]: side by side, Aᵀ[0, 1] reads as an entry
            return "·"
        return separator(lt, rt)

    def starts_number(self, pr: Printer, node: MForm) -> bool:
        """Whether a form's text starts with a number (``3I``)."""
        return is_digit(self.edge(pr, node, False)[:1])

    def ends_number(self, text: str) -> bool:
        return is_digit(text[-1:])

    def edge(self, pr: Printer, node: MForm, last: bool) -> str:
        """The word a form's printed text starts (``last=False``) or ends with, read
        from the form, not the text: ``Ax`` ends with the name ``x``, not ``Ax``.
        ``""`` is a bracket, sign or superscript; ``"^"`` an exponent written after
        ``^`` (``x^0.5``), which needs a space before a following factor."""
        for _ in range(100_000):
            k = node.kind
            if k == "sym":
                return node.params[0]
            if k in ("num", "fill"):
                text = self.fill(node.params[0], len(node.shape))[0]
                return last_word(text) if last else first_word(text)
            if k == "size":
                return str(node.params[0])
            if k == "eye":
                return self.EYE
            if k == "comm":
                return self.COMM
            if k == "matmul":
                child = node.args[-1] if last else node.args[0]
                if child.prec < PRODUCT:
                    return ""
                node = child
                continue
            if k == "smul":
                if pr._lead_quotient(node):
                    return "" if not last else self.edge(pr, node.args[-1], True)
                dens = [_denominator(a) for a in node.args[:-1]]
                if last and any(dens):
                    ds = [d for d in dens if d]
                    if len(ds) > 1 or ds[0][1] != 1 or ds[0][0].prec < POSTFIX:
                        return ""  # x/(yz), x/z²
                    node = ds[0][0]
                    continue
                firsts = [a for a, d in zip(node.args[:-1], dens, strict=True) if not d]
                if last or not firsts:
                    child, need = node.args[-1], PRODUCT
                else:
                    child, need = firsts[0], POSTFIX
                if child.prec < need and not inline(child):
                    return ""
                node = child
                continue
            if k == "scale":
                if pr._lead_quotient(node):
                    return "" if not last else self.edge(pr, node.args[0].args[-1], True)
                if not last:
                    return "" if node.params[0] < 0 else first_word(fmt_number(node.params[0]))
                child = node.args[0]
                if child.prec < PRODUCT and child.prec != HADAMARD:
                    return ""  # 2(a + b)
                node = child
                continue
            if k == "pow" and last:
                p = _const_exponent(node.args[1])
                matrix = node.orient == "m"
                return "^" if matrix or p is None or not _int(p) else ""
            if last:
                return ""  # ᵀ ⁻¹ ) close every other form
            if k in ("T", "pow") or (k == "call" and call_spec(node).prec == "postfix"):
                if node.args[0].prec < ATOM:
                    return ""
                node = node.args[0]
                continue
            if k == "func":
                fn, _ = pr.spelled(node.params[0], [])
                row = _row(fn)
                if row is not None and row.prefix:
                    return ""
                return (row.unicode or fn) if row is not None else fn
            if k == "call":
                return first_word(self.call(node, ("\0", ATOM))[0])
            return first_word(self.CALLS[k][0]) if k in self.CALLS else ""
        return ""

    # ------------------------------------------------------------- length
    def join(self, parts: list[str], cap: int) -> str:
        return join_capped(parts, cap)

    def join_whole(self, pr: Printer, parts: list[str]) -> str:
        return pr.join(parts)

    def bound(self, pr: Printer, text: str, prec: int) -> Result:
        """A finished piece, cut to the cap (tighter once the whole text is huge)."""
        text = abbreviate(text, pr.cap if pr.chars < _CHAR_BUDGET else 64)
        pr.chars += len(text)
        return text, prec

    def finish(self, text: str, cap: int) -> str:
        return abbreviate(text, cap)


#: the Unicode table
UNICODE = UnicodeFormat()
