"""The one printer of matrix-form trees (:mod:`matdiff.render.mform`), for every format.

:class:`Printer` dispatches on the kind of a form with one precedence table
(:mod:`matdiff.render.notation`) and writes each piece with a format's symbol table:
:data:`matdiff.render.unicode.UNICODE` (what ``str(e)`` and :func:`~matdiff.render.to_text`
print) or :data:`matdiff.render.latex.LATEX` (:func:`~matdiff.render.latex`).  A table
spells the leaves, the operators, the calls (``diag``, ``tr``, ``det``, …) and says how
two factors are written side by side; the printer decides what goes where and what
needs parentheses, the same for every format.

A :class:`Style` is what a printout may choose beyond the format: the element-wise
signs, and the paper's notation (``style="paper"``: ``⊗`` and ``⊘``, ``max(0, z)`` for
``relu(z)``, a row's scalar coefficient written in front as a quotient, ``(2/N)vᵀ``).

The printer is iterative (no recursion on the depth of the expression), prints a
shared subexpression once per context, and cuts any text longer than its cap to its
head and tail.

>>> import matdiff as md
>>> from matdiff.render import matrix_form
>>> from matdiff.render.unicode import UNICODE
>>> from matdiff.render.latex import LATEX
>>> x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
>>> tree = matrix_form(md.derive(x @ A @ x, x))
>>> Printer(UNICODE).top(tree, False), Printer(LATEX).top(tree, False)
('(A + Aᵀ)x', '(A + A^\\\\top) x')
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast

from ..expr.core import Expr
from ..expr.functions import FUNCTIONS
from .layout import (
    LAYOUTS,
    STYLES,
    apply_layout,
    check_choice,
    hessian_blocks,
    transposes,
    vec_layout,
)
from .mform import (
    MForm,
    _const_exponent,
    _denominator,
    _is_ones,
    call_spec,
    index_form,
    inline,
    matrix_form,
    transposed_call,
)
from .notation import (
    ADD,
    ATOM,
    HADAMARD,
    KRON,
    LETTERS,
    NEG,
    POSTFIX,
    PRODUCT,
    SIGMA,
    dim_prec,
    exact,
    letter_names,
    paren,
)

__all__ = ["Printer", "Style", "STYLE", "PAPER_CALLS", "MAX_CHARS", "style_of", "printout"]

#: the longest text a printer returns (longer texts keep their head and tail)
MAX_CHARS = 20_000
#: a session prints at most this many pieces (a node in one context); the rest
#: print as the format's ellipsis (a safety net: contexts per node are bounded by
#: the alphabet)
_BUDGET = 400_000

#: the leaves: a tensor leaf of order 3 prints as itself, not in index notation
LEAVES = ("sym", "num", "fill", "size", "eye")
#: the forms a printout of order 3 writes in matrix notation: the leaves, and a
#: stack of matrices (the Jacobian of [u, v] by u is [I, 0])
MATRIX_KINDS = LEAVES + ("stack",)

Result = tuple[str, int]  # (text, precedence)
#: how a task is printed: the tasks it needs first, and how their texts make its own
Plan = tuple[list[tuple[Any, ...]], Callable[[list[Result]], Result]]

class _PaperCalls(Mapping):
    """The paper's spellings of element-wise functions, from their definitions'
    ``paper`` field: ``relu(z)`` is written as its definition ``max(0, z)``, the
    function ``max`` with the leading argument 0."""

    def _table(self) -> dict[str, tuple[str, tuple[float, ...]]]:
        return {n: row.paper for n, row in FUNCTIONS.items() if row.paper is not None}

    def __getitem__(self, name: str) -> tuple[str, tuple[float, ...]]:
        return self._table()[name]

    def get(self, name: str, default: Any = None) -> Any:
        row = FUNCTIONS.get(name)
        return row.paper if row is not None and row.paper is not None else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


#: the paper's spellings of element-wise functions (``relu(z)`` as ``max(0, z)``)
PAPER_CALLS: Mapping[str, tuple[str, tuple[float, ...]]] = _PaperCalls()


@dataclass(frozen=True)
class Style:
    """What a printout chooses beyond its format.

    ``product`` and ``quotient`` name the element-wise signs (``"odot"``/``"otimes"``
    and ``"oslash"``/``"slash"``; a format's table spells them), or give the sign
    itself; ``calls`` spells functions as others (:data:`PAPER_CALLS`);
    ``lead_quotient`` writes a row's coefficient over a scalar in front, ``(2/N)vᵀ``.
    """

    product: str = "odot"
    quotient: str = "oslash"
    calls: Mapping[str, tuple[str, tuple[float, ...]]] = field(default_factory=dict)
    lead_quotient: bool = False


#: the styles by name: ``standard`` (``⊙``, ``/``) and ``paper`` (the paper's notation)
STYLE = {
    "standard": Style("odot", "slash"),
    "paper": Style("otimes", "oslash", PAPER_CALLS, True),
}


def style_of(style: str | None, product: str = "odot", quotient: str = "oslash") -> Style:
    """The :class:`Style` named ``style``, or (``None``) the plain one with the given
    signs; an unknown name raises :class:`~matdiff.render.layout.ChoiceError`.

    >>> style_of("paper").product, style_of(None).quotient
    ('otimes', 'oslash')
    """
    if style is None:
        return Style(product, quotient)
    check_choice("style", style, STYLES)
    return STYLE[style]


class Printer:
    """One printing session: memoised texts of forms, in matrix mode (``('m', node)``)
    or index mode (``('i', node, letters, used)``: the node's axes named ``letters``,
    the letters in ``used`` taken by enclosing sums), written with the format table
    ``fmt`` in the style ``style``."""

    def __init__(self, fmt: Any, style: Style | None = None,
                 max_chars: int = MAX_CHARS) -> None:
        style = style or Style()
        self.fmt = fmt
        self.style = style
        self.had: str = fmt.SIGNS.get(style.product, style.product)
        self.div: str = fmt.SIGNS.get(style.quotient, style.quotient)
        self.cap: int = max(int(max_chars), fmt.MIN_CAP)
        self.memo: dict[tuple[Any, ...], Result] = {}
        self.count: int = 0
        self.chars = 0

    # ------------------------------------------------------------- engine
    def join(self, parts: list[str]) -> str:
        """The parts as one text, cut to the cap as the format cuts."""
        return self.fmt.join(parts, self.cap)

    def run(self, task: tuple[Any, ...]) -> Result:
        """The text of one task, printing what it needs first (without recursion)."""
        memo = self.memo
        plans: dict[tuple, tuple] = {}
        stack = [task]
        while stack:
            t = stack[-1]
            if t in memo:
                stack.pop()
                continue
            plan = plans.get(t)
            if plan is None:
                if self.count > _BUDGET:
                    memo[t] = (self.fmt.ELLIPSIS, ATOM)
                    stack.pop()
                    continue
                plan = self._plan_m(t[1]) if t[0] == "m" else self._plan_i(*t[1:])
                plans[t] = plan
            deps, finish = plan
            missing = [d for d in deps if d not in memo]
            if missing:
                stack.extend(missing)
                continue
            memo[t] = self.fmt.bound(self, *finish([memo[d] for d in deps]))
            self.count += 1
            del plans[t]
            stack.pop()
        return memo[task]

    def top(self, root: MForm, index: bool) -> str:
        """The whole printout: matrix notation, or ``(i, j) ↦ …`` in index notation."""
        rank = len(root.shape)
        if index or root.kind == "index" or (rank >= 3 and root.kind not in MATRIX_KINDS):
            letters = tuple(letter_names(rank))
            body, _ = self.run(("i", root, letters, frozenset(letters)))
            text = "(" + ", ".join(letters) + ")" + self.fmt.MAPSTO + body if rank else body
        else:
            text, _ = self.run(("m", root))
        return self.fmt.finish(text, self.cap)

    def chain(self, trees: list[MForm]) -> str:
        """Matrices written one after another as a product, unsimplified (the chain
        rule's product of local Jacobians): a factor looser than a product is put in
        parentheses, and a factor that starts with a number is set off (``· 3I``)."""
        if len(trees) == 1:
            return self.top(trees[0], False)
        out: list[str] = []
        for t in trees:
            text = self.top(t, False)
            wrap = self._loose_factor(t)
            if wrap:
                text = "(" + text + ")"
            if out:
                digit = (not wrap and self.fmt.starts_number(self, t)) \
                    or self.fmt.ends_number(out[-1])
                out.append(self.fmt.CHAIN_DOT if digit else " ")
            out.append(text)
        return self.join(out)

    def _loose_factor(self, t: MForm) -> bool:
        """Whether a form needs parentheses as a factor of a written-out product: a
        sum, a negation, an element-wise product, a quotient ``x/z`` (not the
        paper's ``(2/N)vᵀ``), a bracket of index notation."""
        if t.prec < PRODUCT or t.kind == "index" or (len(t.shape) >= 3
                                                     and t.kind not in LEAVES):
            return True
        if t.kind == "scale" and self.fmt.FRACTION_AFTER \
                and exact(abs(t.params[0])) is not None:
            return True  # (I/9) X, not I/9 X
        core = t.args[0] if t.kind == "scale" else t
        return core.kind == "smul" and core.quot and not self._lead_quotient(t)

    # ------------------------------------------------------------- shared pieces
    def scaled(self, c: float, kid: Result, dot: bool = False) -> Result:
        """``c·x``: ``2x``, ``−x``, ``−0.5(a + b)``; a number times an element-wise
        product needs no parentheses, ``−w ⊘ x² = (−w) ⊘ x² = −(w ⊘ x²)``, but a
        number times a dot product (``dot``) has them: ``2(u · v)`` reads back as the
        scaling of the dot, as written, where ``2u · v`` would read as ``(2u) · v``."""
        text, prec = kid
        if c == 1.0:
            return text, prec
        minus = self.fmt.MINUS
        ex = exact(abs(c)) if self.fmt.FRACTION_AFTER else None
        if ex is not None:
            # x/9, 2x/3, (x ⊙ y)/9, 2exp(−x²)/√π, x/√(2π), √2x, πx: an exact number
            # stays exact, its factors before the operand and its divisors after it
            top, bottom = ex.parts()
            mag = paren(text, prec, PRODUCT)
            for f in reversed([f for f in top if f != "1"]):
                mag = self.fmt.jux_text(f, mag)
            if bottom:
                den = bottom[0] if len(bottom) == 1 else \
                    "(" + functools.reduce(self.fmt.jux_text, bottom) + ")"
                mag += "/" + den
            return (minus + mag, NEG) if c < 0 else (mag, PRODUCT)
        # (cA) ⊗ B = c(A ⊗ B): a number before a Kronecker product needs no parentheses
        loose = prec in (HADAMARD, KRON) and not dot
        body = text if loose else paren(text, prec, PRODUCT)
        mag = body if abs(c) == 1.0 else self.fmt.jux_text(self.fmt.number(abs(c)), body)
        if loose:
            return (minus + mag if c < 0 else mag), prec
        return (minus + mag, NEG) if c < 0 else (mag, PRODUCT)

    def spelled(self, fn: str, args: list[Result]) -> tuple[str, list[Result]]:
        """A function as the style spells it: ``relu(z)`` as ``max(0, z)`` in the
        paper's style."""
        alias = self.style.calls.get(fn)
        if alias is None:
            return fn, args
        name, lead = alias
        return name, [(self.fmt.number(v), ATOM) for v in lead] + list(args)

    def call(self, fn: str, args: list[Result]) -> Result:
        """An element-wise function applied, as the format spells it."""
        name, args = self.spelled(fn, args)
        return self.fmt.func(self, name, args)

    # ------------------------------------------------------------- matrix mode
    def _plan_m(self, node: MForm) -> Plan:
        k = node.kind
        rank = len(node.shape)
        fmt = self.fmt
        if fmt.WHOLE:  # a syntax that writes each form whole (matrixcalculus.org's)
            return [("m", a) for a in node.args], lambda r: fmt.whole(node, r)
        if k in ("stack", "block"):  # [a, b], concat(w, [b]): the parts, in matrix mode
            return [("m", a) for a in node.args], lambda r: fmt.stack(self, node, r)
        if k == "take":  # x[0], x[1:], X[:, 0]
            return [("m", node.args[0])], lambda r: fmt.take(self, node, r[0])
        if k == "index" or (rank >= 3 and k not in LEAVES):
            letters = tuple(letter_names(rank))

            def bracket(r: list[Result]) -> Result:
                body, prec = r[0]
                if not letters:
                    return (f"({body})" if prec < ATOM else body), ATOM
                left, right = fmt.BRACKET
                return (left + "(" + ", ".join(letters) + ")" + fmt.MAPSTO + body
                        + right), ATOM

            return [("i", node, letters, frozenset(letters))], bracket
        if transposed_call(node):
            # a matrix function whose transpose has a spelling of its own: X⁻ᵀ
            return [("m", node.args[0].args[0])], \
                lambda r: fmt.call(node.args[0], r[0], transposed=True)
        if k == "call" and node.args[0].kind == "T" and call_spec(node).unicode_T \
                and len(node.args) > 1:
            # a function of a transposed first argument spelled with it: A⁻ᵀb
            return [("m", node.args[0].args[0])] + [("m", a) for a in node.args[1:]], \
                lambda r: fmt.call(node, r, transposed=True)
        if k == "matmul" and node.orient == "m":
            power = _matrix_power(node)
            if power is not None:  # XXX = X³ (matrix_power(X, 3))
                return [("m", power[0])], lambda r: fmt.matrix_power(r[0], power[1])
        if k == "add":
            return self._plan_add(node, lambda t: ("m", t), matrix=True)
        if k == "had":
            return self._plan_had(node)
        if k == "smul":
            return self._plan_smul(node)
        if k == "scale" and self._lead_quotient(node):
            return self._plan_lead_quotient(node.params[0], node.args[0])
        if k == "scale" and node.orient == "s" and float(node.params[0]).is_integer() \
                and _denominator(node.args[0]) is not None:
            return self._plan_number_over(node)
        if k == "pow":
            p = _const_exponent(node.args[1])
            matrix = node.orient == "m"
            if p is not None:
                return [("m", node.args[0])], lambda r: fmt.power(r[0], p, matrix)
            return [("m", a) for a in node.args], \
                lambda r: fmt.power_by(r[0], r[1], matrix)
        return [("m", a) for a in node.args], lambda r: self._finish_m(node, r)

    def _finish_m(self, node: MForm, r: list[Result]) -> Result:
        k, p = node.kind, node.params
        fmt = self.fmt
        if k == "sym":
            return fmt.name(p[0]), ATOM
        if k == "num":
            return fmt.number(p[0]), (NEG if p[0] < 0 else fmt.number_prec(p[0]))
        if k == "fill":
            return fmt.fill(p[0], len(node.shape))
        if k == "size":
            return fmt.size(p[0]), dim_prec(p[0])
        if k == "eye":
            return fmt.EYE, ATOM
        if k == "unit":  # eₚ, the unit vector (a scatter into zeros)
            return fmt.unit(p[0]), ATOM
        if k == "comm":  # the commutation matrix of the vec layout
            return fmt.COMM, ATOM
        if k == "kron":  # AB ⊗ C is (AB) ⊗ C: a product binds tighter than ⊗
            return paren(*r[0], PRODUCT) + fmt.KRON + paren(*r[1], PRODUCT), KRON
        if k in fmt.POSTFIX:  # Aᵀ, X⁻¹
            return paren(*r[0], ATOM) + fmt.POSTFIX[k], POSTFIX
        if k == "dot":  # w · x, as written: a product or looser operand in parentheses
            return paren(*r[0], POSTFIX) + fmt.DOT + paren(*r[1], POSTFIX), HADAMARD
        if k == "matmul":
            left, right = paren(*r[0], PRODUCT), paren(*r[1], PRODUCT)
            return left + fmt.sep(self, left, node.args[0], right, node.args[1]) + right, \
                PRODUCT
        if k == "scale":
            return self.scaled(p[0], r[0], node.args[0].kind == "dot")
        if k == "func":
            return self.call(p[0], r)
        if k == "call":  # a matrix function, spelled by its definition
            return fmt.call(node, r[0] if len(r) == 1 else r)
        if k in fmt.CALLS:  # diag(x), tr(A), det(X), …: one entry each in the table
            left, right, prec = fmt.CALLS[k]
            return left + r[0][0] + right.replace("⟨axis⟩", str(p[0]) if p else ""), prec
        return fmt.unknown(k), ATOM  # pragma: no cover

    def _plan_add(self, node: MForm, task: Callable[[MForm], tuple],
                  matrix: bool = False) -> Plan:
        # a − b: a negative term prints its magnitude after " − "
        mags: list[float | None] = []  # a negative term's magnitude, else None
        terms = []
        for t in node.args:
            if t.kind == "scale" and t.params[0] < 0 and not self._lead_quotient(t):
                mags.append(-t.params[0])
                terms.append(t.args[0])
            else:
                mags.append(None)
                terms.append(t)
        # scalar expansion, as the paper writes it: in a sum with a term of the
        # sum's own shape, a scalar spread over that shape (c𝟏, b𝟏, b𝟏𝟏ᵀ) is written
        # as the scalar, x + b for x + b𝟏 and 1 − σ(x) for 𝟏 − σ(x) (NumPy's
        # broadcasting reads it back)
        spread = [_spread_scalar(t) if matrix and node.shape else None for t in terms]
        if all(sp is not None for sp in spread):
            spread = [None] * len(terms)
        fixed: dict[int, Result] = {}
        deps = []
        for k, (t, sp) in enumerate(zip(terms, spread, strict=True)):
            if isinstance(sp, float):
                mag = mags[k]
                v = sp * (-mag if mag is not None else 1.0)  # the term's number
                mags[k] = 1.0 if v < 0 else None  # x − 2: its magnitude after " − "
                fixed[k] = (self.fmt.number(abs(v)), self.fmt.number_prec(abs(v)))
            else:
                deps.append(task(sp if sp is not None else t))
        n = len(terms)
        minus = self.fmt.MINUS

        def finish(got: list[Result]) -> Result:
            it = iter(got)
            r = [fixed[k] if k in fixed else next(it) for k in range(n)]
            out: list[str] = []
            for k, (c, res) in enumerate(zip(mags, r, strict=True)):
                if c is not None:
                    neg, (text, prec) = True, self.scaled(c, res, terms[k].kind == "dot")
                elif res[0].startswith(minus) and res[1] in (NEG, SIGMA):
                    # −2, −1, −Σⱼ …: a text of its own that starts with a minus
                    neg, text, prec = True, res[0][len(minus):], \
                        (SIGMA if res[1] == SIGMA else PRODUCT)
                else:
                    neg, (text, prec) = False, res
                if k == 0:
                    need = PRODUCT if neg else HADAMARD
                    out += [minus if neg else ""] + (["(", text, ")"] if prec < need else [text])
                    continue
                # a Σ runs to the end of the text: only the last term may go bare
                bare = prec >= HADAMARD or (k == n - 1 and prec == SIGMA)
                out += [f" {minus} " if neg else " + "] + ([text] if bare else ["(", text, ")"])
            return self.join(out), ADD

        return deps, finish

    def _plan_had(self, node: MForm) -> Plan:
        # x ⊙ y ⊘ z²: factors b⁻ᵖ go after ⊘ when some factor is not a quotient
        dens = [_denominator(a) for a in node.args]
        use_div = any(d is None for d in dens)
        deps = []
        kinds: list[float | None] = []  # the power p of a factor b⁻ᵖ after ⊘, else None
        for a, d in zip(node.args, dens, strict=True):
            if use_div and d is not None:
                deps.append(("m", d[0]))
                kinds.append(d[1])
            else:
                deps.append(("m", a))
                kinds.append(None)
        matrix = node.orient == "m"
        op, div = f" {self.had} ", f" {self.div} "

        def slot(res: Result, arg: MForm) -> str:
            # ⊙ is associative: a product inside a product needs no parentheses
            return res[0] if arg.kind == "had" else paren(*res, POSTFIX)

        def finish(r: list[Result]) -> Result:
            out: list[str] = []
            for res, p, a in zip(r, kinds, node.args, strict=True):
                if p is None:
                    if out:
                        out.append(op)
                    out.append(slot(res, a))
            for res, p in zip(r, kinds, strict=True):
                if p is not None:
                    den: Result = res if p == 1 else self.fmt.power(res, p, matrix)
                    out += [div, paren(*den, POSTFIX)]
            return self.join(out), HADAMARD

        return deps, finish

    def _plan_smul(self, node: MForm) -> Plan:
        # s₁ s₂ … x, with scalar factors b⁻ᵖ as a quotient: x/z, I/z, x/z²
        if self._lead_quotient(node):
            return self._plan_lead_quotient(1.0, node)
        scalars, x = node.args[:-1], node.args[-1]
        dens = [_denominator(s) for s in scalars]
        deps = [("m", d[0] if d is not None else s)
                for s, d in zip(scalars, dens, strict=True)]
        deps.append(("m", x))

        def finish(r: list[Result]) -> Result:
            num: list[tuple[str, MForm]] = []
            den: list[Result] = []
            for s, res, d in zip(scalars, r[:-1], dens, strict=True):
                if d is None:
                    num.append((res[0] if inline(s) else paren(*res, POSTFIX), s))
                else:
                    den.append(res if d[1] == 1 else self.fmt.power(res, d[1], False))
            num.append((paren(*r[-1], PRODUCT), x))
            return self.fmt.quotient(self, num, den), PRODUCT

        return deps, finish

    def _plan_number_over(self, node: MForm) -> Plan:
        # a whole number over a scalar, as the paper writes it: 2/x, −3/x², not 2x⁻¹
        c = node.params[0]
        base, p = _denominator(node.args[0])  # type: ignore[misc]

        def finish(r: list[Result]) -> Result:
            den = r[0] if p == 1 else self.fmt.power(r[0], p, False)
            text = self.fmt.quotient(self, [(self.fmt.number(abs(c)), node)], [den])
            return (self.fmt.MINUS + text, NEG) if c < 0 else (text, PRODUCT)

        return [("m", base)], finish

    def _lead_quotient(self, node: MForm) -> bool:
        """Whether the style writes this row's coefficient in front as a quotient:
        ``c·(x/d)`` (a ``scale`` of such a product) or ``x/d``, ``d`` scalars only."""
        if not self.style.lead_quotient or node.orient != "row":
            return False
        if node.kind == "scale":
            node = node.args[0]
        return node.kind == "smul" and all(_denominator(s) is not None
                                           for s in node.args[:-1])

    def _plan_lead_quotient(self, c: float, node: MForm) -> Plan:
        # (2/N)vᵀ: the number over the scalars, then the rest
        if node.kind == "scale":
            c, node = c * node.params[0], node.args[0]
        # every scalar factor is a power b⁻ᵖ (what _lead_quotient checked)
        dens = cast("list[tuple[MForm, float]]", [_denominator(s) for s in node.args[:-1]])
        deps = [("m", d[0]) for d in dens] + [("m", node.args[-1])]

        def finish(r: list[Result]) -> Result:
            den = [res if d[1] == 1 else self.fmt.power(res, d[1], False)
                   for res, d in zip(r[:-1], dens, strict=True)]
            return self.fmt.lead_quotient(self, c, den, paren(*r[-1], PRODUCT)), PRODUCT

        return deps, finish

    # ------------------------------------------------------------- index mode
    def _plan_i(self, node: MForm, letters: tuple, used: frozenset) -> Plan:
        k = node.kind
        fmt = self.fmt

        def same(t: MForm) -> tuple:
            return ("i", t, letters, used)

        if k == "sym":
            return [], lambda r: (fmt.indexed(fmt.name(node.params[0]), letters), ATOM)
        if k in ("num", "fill", "size"):
            v = node.params[0]
            if k == "size":
                return [], lambda r: (fmt.size(v), dim_prec(v))
            return [], lambda r: (fmt.number(v), NEG if v < 0 else ATOM)
        if k == "eye":
            return [], lambda r: (fmt.DELTA + fmt.sub(letters), ATOM)
        if k == "T":
            return [("i", node.args[0], letters[::-1], used)], lambda r: r[0]
        if k == "had":
            return [same(a) for a in node.args], \
                lambda r: (self.join(fmt.spaced([paren(*x, PRODUCT) for x in r])), PRODUCT)
        if k == "diag":
            return [("i", node.args[0], letters[:1], used)], \
                lambda r: (paren(*r[0], PRODUCT) + " " + fmt.DELTA + fmt.sub(letters),
                           PRODUCT)
        if k == "diagof":
            return [("i", node.args[0], letters * 2, used)], lambda r: r[0]
        if k == "scale":
            return [same(node.args[0])], \
                lambda r: self.scaled(node.params[0], r[0], node.args[0].kind == "dot")
        if k == "smul":
            deps = [("m", s) for s in node.args[:-1]] + [same(node.args[-1])]

            x = node.args[-1]
            ones = x.kind == "fill" and x.params[0] == 1.0  # (b𝟏)ⱼ = b 𝟏ⱼ = b

            def finish_smul(r: list[Result]) -> Result:
                if ones and len(r) == 2:
                    return r[0]
                factors = [res[0] if inline(s) else paren(*res, POSTFIX)
                           for s, res in zip(node.args, r[:-1], strict=False)]
                parts = fmt.juxtaposed(factors) + ([] if ones else
                                                   [" ", paren(*r[-1], PRODUCT)])
                return fmt.join_whole(self, parts), PRODUCT

            return deps, finish_smul
        if k == "add":
            return self._plan_add(node, same)
        if k == "func":
            return [same(a) for a in node.args], lambda r: self.call(node.params[0], r)
        if k == "pow":
            p = _const_exponent(node.args[1])
            if p is not None:
                return [same(node.args[0])], lambda r: fmt.power(r[0], p, False)
            return [same(a) for a in node.args], lambda r: fmt.power_by(r[0], r[1], False)
        if k == "index":
            return self._plan_product(node, letters, used)
        # a matrix form (Ax, tr(A), X⁻¹, …) with its axes named: (Ax)ᵢ
        deps, finish = self._plan_m_args(node)
        return deps, lambda r: (fmt.index_wrap(finish(r), letters), ATOM)

    def _plan_m_args(self, node: MForm) -> Plan:
        if node.kind in ("add", "had", "smul", "pow", "stack", "block", "take") \
                or transposed_call(node):
            return self._plan_m(node)
        return [("m", a) for a in node.args], lambda r: self._finish_m(node, r)

    def _plan_product(self, node: MForm, letters: tuple, used: frozenset) -> Plan:
        # value[out] = Σ over the other letters of Π operands: Σⱼ Aᵢⱼ xⱼ
        specs, out = node.params
        names = dict(zip(out, letters, strict=True))
        summed = []
        for s in specs:
            for c in s:
                if c not in names and c not in summed:
                    summed.append(c)
        # a summed letter must differ from the term's free letters; it avoids the
        # letters of enclosing sums too while the alphabet lasts (then an inner Σ
        # may shadow an outer one, which keeps deep texts and their count bounded)
        fresh = letter_names(len(summed), set(used) | set(letters))
        if any(len(f) > 1 for f in fresh):
            fresh = letter_names(len(summed), set(letters))
        names.update(zip(summed, fresh, strict=True))
        inner = frozenset(used | set(letters) | set(fresh))
        if len(inner) > len(LETTERS):
            inner = frozenset(letters) | frozenset(fresh)
        coef = 1.0
        deps = []
        for a, s in zip(node.args, specs, strict=True):
            if a.kind in ("num", "fill") and a.params[0] != 0.0:
                coef *= a.params[0]  # a constant factor; 1ᵢ = 1
            else:
                deps.append(("i", a, tuple(names[c] for c in s), inner))
        fmt = self.fmt
        head = fmt.sum_head(tuple(fresh)) if fresh else ""

        def finish(r: list[Result]) -> Result:
            if not r:
                return fmt.number(coef), (NEG if coef < 0 else ATOM)
            if len(r) == 1 and coef == 1.0 and not fresh:
                return r[0]  # a single factor read with other letters (Aⱼᵢ)
            body = self.join(fmt.spaced([paren(*x, PRODUCT) for x in r]))
            if coef == -1.0:
                lead = fmt.MINUS
            elif coef != 1.0:
                lead = fmt.number(coef) + " "
            else:
                lead = ""
            prec = SIGMA if fresh else (NEG if lead.startswith(fmt.MINUS) else PRODUCT)
            return lead + head + body, prec

        return deps, finish


# ===================================================================== one entry
def _spread_scalar(t: MForm) -> MForm | float | None:
    """What a term spread from a scalar prints as in a sum (see ``_plan_add``): the
    number of a filled vector or matrix (``2𝟏``: 2), the scalar of ``b𝟏`` and of
    ``b𝟏𝟏ᵀ`` (the matrix of ones as the outer product of two ones vectors); else
    ``None``."""
    if t.kind == "fill" and t.params[0] != 0.0 and len(t.shape) in (1, 2):
        return float(t.params[0])
    if t.kind == "smul" and len(t.args) == 2 and _all_ones(t.args[1]) \
            and len(t.shape) in (1, 2) and not t.args[0].shape:
        return t.args[0]
    return None


def _all_ones(x: MForm) -> bool:
    """A vector or matrix of ones: ``𝟏``, ``𝟏𝟏ᵀ`` as a fill or as the product of a
    column of ones and a row of ones (``(𝟏𝟏ᵀ)ᵢⱼ = 1``)."""
    if x.kind == "fill":
        return x.params[0] == 1.0
    return x.kind == "matmul" and x.orient == "m" and x.args[0].orient == "col" \
        and x.args[1].orient == "row" and _is_ones(x.args[0]) \
        and x.args[1].kind == "T" and _is_ones(x.args[1].args[0])


def _matrix_power(node: MForm) -> tuple[MForm, int] | None:
    """``(X, k)`` when a matrix product is one square matrix ``X`` times itself ``k``
    times, ``X X … X = Xᵏ`` (how ``matrix_power(X, k)`` is built); else None."""
    factors: list[MForm] = []
    stack = [node]
    while stack:
        f = stack.pop()
        if f.kind == "matmul":
            stack += [f.args[1], f.args[0]]
        else:
            factors.append(f)
    first = factors[0]
    if first.orient != "m" or first.kind not in ("sym", "T"):
        return None
    if first.kind == "T" and first.args[0].kind != "sym":
        return None
    same = all(f is first or (f.kind == first.kind and f.params == first.params
                              and f.args == first.args and f.shape == first.shape)
               for f in factors[1:])
    return (first, len(factors)) if same else None


def check_options(layout: str, f_ndim: int | None, rank: int) -> None:
    """Validate a layout (and, for one that transposes, ``f_ndim``) before printing."""
    check_choice("layout", layout, LAYOUTS)
    if layout != "mixed":
        transposes(layout, rank, f_ndim)  # validates f_ndim


def printout(e: Expr, fmt: Any, *, index: bool = False, style: Style | None = None,
             layout: str = "mixed", f_ndim: int | None = None,
             max_chars: int = MAX_CHARS) -> str:
    """``e`` printed in the format ``fmt``: its matrix form (or index form) in
    ``layout``, written in ``style``.  Printing never fails: a form the matrix
    printer cannot write falls back to index notation, then to the format's
    placeholder.

    >>> import matdiff as md
    >>> from matdiff.render.unicode import UNICODE
    >>> w, x = md.vector("w", "n"), md.vector("x", "n")
    >>> printout(md.relu(w * x), UNICODE, style=STYLE["paper"])
    'max(0, w ⊗ x)'
    """
    if layout == "vec":
        # ⊗ is the Kronecker product there: element-wise products print ⊙
        style = replace(style or Style(), product="odot")
    try:
        blocks = None if index or layout not in ("mixed", "vec") else hessian_blocks(e)
        if blocks is not None:  # a Hessian by [X, y]: the block matrix of its parts
            # its blocks read vec(X) with ⊗, the Kronecker product, as the vec layout
            kron = replace(style or Style(), product="odot")
            return Printer(fmt, kron, max_chars).top(blocks, False)
        tree = index_form(e) if index else matrix_form(e)
        tree = apply_layout(tree, layout, f_ndim)
        if layout == "vec" and not index:
            tree = vec_layout(tree, f_ndim) or tree
        return Printer(fmt, style, max_chars).top(tree, index)
    except Exception:  # printing must never fail: fall back to index notation
        if not index:
            try:
                tree = apply_layout(index_form(e), layout, f_ndim)
                return Printer(fmt, style, max_chars).top(tree, True)
            except Exception:  # pragma: no cover
                pass
        return fmt.fallback(e)
