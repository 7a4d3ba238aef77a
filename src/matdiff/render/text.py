"""Unicode printers: matrix notation (:func:`to_text`) and index notation
(:func:`to_index`).

Matrix notation prints the tree of :func:`matdiff.render.mform.matrix_form`.
Vectors are columns and a row is a transposed column (``xᵀ``); ``⊙`` is the
element-wise product and ``⊘`` the element-wise quotient; ``1`` is the vector of
ones, ``I`` the identity, ``diag(x)`` the diagonal matrix of a vector and
``diag(A)`` the diagonal of a matrix (a column); ``sum(X, axis=0)`` sums down the
columns of ``X``.  Element-wise powers of vectors and scalars print as
superscripts (``x²``, ``x⁻¹``), of matrices as ``A^⊙2`` (``A²`` would read as
``AA`` and ``A⁻¹`` as the inverse).  Functions apply element-wise (``exp(A)`` is
not the matrix exponential).

Index notation names each axis of the result with a letter, ``i j k l m p r s t
…``, and writes the tensor as a function of them: ``(i, j, k, l) ↦ −(X⁻¹)ᵢₖ
(X⁻¹)ₗⱼ``.  A summed letter is written out, ``Σⱼ Aᵢⱼ xⱼ``; a sum runs to the end
of its term, so a term with a ``Σ`` inside a longer sum is put in parentheses.
Inside a matrix formula, a product that has no matrix form appears as a bracket,
``[(i, j) ↦ Σₖₗ Tᵢⱼₖₗ Aₖₗ]`` (for a scalar, ``(Σᵢⱼₖ …)``).

Both printers are iterative (no recursion on the depth of the expression), print a
shared subexpression once per use, and cut any text longer than ``max_chars`` to
its head and tail around ``…``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..expr.core import Expr
from ..expr.matrix_functions import MATRIX_FUNCTIONS
from .layout import LAYOUTS, STYLES, apply_layout, check_choice, f_ndim_of, transposes
from .mform import (
    _CALL_PREC,
    MForm,
    _const_exponent,
    _denominator,
    _int,
    index_form,
    inline,
    matrix_form,
)
from .notation import (
    ADD,
    ATOM,
    HADAMARD,
    LETTERS,
    NEG,
    POSTFIX,
    PRODUCT,
    SIGMA,
    abbreviate,
    first_word,
    fmt_number,
    join_capped,
    juxtapose,
    last_word,
    letter_names,
    paren,
    separator,
    subscript,
    superscript_int,
)

__all__ = ["to_text", "to_index", "render"]

#: the longest text a printer returns (longer texts keep their head and tail)
MAX_CHARS = 20_000
#: a session prints at most this many pieces (a node in one context); the rest
#: print as ``…`` (a safety net: contexts per node are bounded by the alphabet)
_BUDGET = 400_000
#: after this many characters in all, pieces are cut to a few characters: a deep
#: shared subexpression printed under many index letters stays fast
_CHAR_BUDGET = 400_000_000

_LEAVES = ("sym", "num", "fill", "size", "eye")

Result = tuple[str, int]  # (text, precedence)


def _fn_name(fn: str) -> str:
    """The Unicode spelling of an element-wise function, from its definition."""
    from ..expr.functions import FUNCTIONS

    row = FUNCTIONS.get(fn)
    return (row.unicode or fn) if row is not None else fn


def _is_prefix(fn: str) -> bool:
    """Whether the function prints as an operator before its argument (``√x``)."""
    from ..expr.functions import FUNCTIONS

    row = FUNCTIONS.get(fn)
    return row is not None and row.prefix


def _fill_text(v: float, rank: int) -> Result:
    # a tensor filled with v: 0; the ones vector 1 (c·1, −1); the ones matrix 11ᵀ
    if v == 0.0:
        return "0", ATOM
    if rank == 0 or rank >= 3:
        return fmt_number(v), (NEG if v < 0 else ATOM)
    base = "1" if rank == 1 else juxtapose("1", "1ᵀ")  # 1·1ᵀ, the ones matrix
    if v == 1.0:
        return base, (ATOM if rank == 1 else PRODUCT)
    if v == -1.0:
        return "−" + base, NEG
    mag = juxtapose(fmt_number(abs(v)), base)
    return ("−" + mag, NEG) if v < 0 else (mag, PRODUCT)


def _scaled(c: float, kid: Result) -> Result:
    """``c·x`` as text: ``2x``, ``−x``, ``−0.5(a + b)``; a number times an
    element-wise product needs no parentheses, ``−w ⊘ x² = (−w) ⊘ x² = −(w ⊘ x²)``."""
    text, prec = kid
    if c == 1.0:
        return text, prec
    body = text if prec == HADAMARD else paren(text, prec, PRODUCT)
    mag = body if abs(c) == 1.0 else juxtapose(fmt_number(abs(c)), body)
    if prec == HADAMARD:
        return ("−" + mag if c < 0 else mag), HADAMARD
    return ("−" + mag, NEG) if c < 0 else (mag, PRODUCT)


def _power_text(base: Result, p: float, matrix: bool) -> Result:
    """``x²``, ``x⁻¹``, ``x^0.5``; element-wise powers of matrices ``A^⊙2``."""
    if matrix:
        return paren(*base, ATOM) + "^⊙" + fmt_number(p), POSTFIX
    if _int(p):
        return paren(*base, ATOM) + superscript_int(int(p)), POSTFIX
    return paren(*base, ATOM) + "^" + fmt_number(p), POSTFIX


_CALLS = {"diag": "diag", "diagof": "diag", "trace": "tr", "sum": "sum", "sumaxis": "sum"}


def _call_spec(node: MForm) -> Any:
    """The definition of the matrix function a ``call`` form applies."""
    return MATRIX_FUNCTIONS[node.params[0]]


def _call_word(node: MForm) -> str:
    """The word a matrix function's printed call starts with (``log`` of ``log det``)."""
    head = _call_spec(node).spell("unicode", "\0").split("\0")[0]
    word = ""
    for ch in head:
        if not (ch.isalnum() or ch == "_"):
            break
        word += ch
    return word


def _call_text(node: MForm, arg: Result, fmt: str = "unicode",
               transposed: bool = False) -> Result:
    """A matrix function's call in format ``fmt``, from its definition's spelling: a
    postfix one (``X⁻¹``) parenthesises its argument as a superscript's base."""
    spec = _call_spec(node)
    inner = paren(*arg, ATOM) if spec.prec == "postfix" else arg[0]
    return spec.spell(fmt, inner, transposed), _CALL_PREC[spec.prec]


def _transposed_call(node: MForm) -> bool:
    """A transposed matrix function that has a spelling of its own (``X⁻ᵀ``)."""
    return node.kind == "T" and node.args[0].kind == "call" \
        and bool(_call_spec(node.args[0]).unicode_T)


def _edge(node: MForm, last: bool) -> str:
    """The word a form's printed text starts (``last=False``) or ends with, read
    from the form, not the text: ``Ax`` ends with the name ``x``, not ``Ax``.
    ``""`` is a bracket, sign or superscript; ``"^"`` an exponent written after
    ``^`` (``x^0.5``), which needs a space before a following factor."""
    for _ in range(100_000):
        k = node.kind
        if k == "sym":
            return node.params[0]
        if k in ("num", "fill"):
            text = _fill_text(node.params[0], len(node.shape))[0]
            return last_word(text) if last else first_word(text)
        if k == "size":
            return str(node.params[0])
        if k == "eye":
            return "I"
        if k == "matmul":
            child = node.args[-1] if last else node.args[0]
            if child.prec < PRODUCT:
                return ""
            node = child
            continue
        if k == "smul":
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
        if k in ("T", "pow") or (k == "call" and _call_spec(node).prec == "postfix"):
            if node.args[0].prec < ATOM:
                return ""
            node = node.args[0]
            continue
        if k == "func":
            return "" if _is_prefix(node.params[0]) else _fn_name(node.params[0])
        if k == "call":
            return _call_word(node)
        return _CALLS.get(k, "")
    return ""


def _jux(left: str, lnode: MForm | None, right: str, rnode: MForm | None) -> str:
    """Two factors side by side; the words at the edges come from the forms (when
    given and not in parentheses), else from the texts."""
    return left + _jux_sep(left, lnode, right, rnode) + right


def _jux_sep(left: str, lnode: MForm | None, right: str, rnode: MForm | None) -> str:
    """What :func:`_jux` puts between ``left`` and ``right``.  With ``lnode`` given it
    reads only the end of ``left``, so ``left`` may be the last factor of a longer
    text (products are written as lists of parts: a text grown factor by factor
    copied itself once per factor)."""
    lt = _edge(lnode, True) if lnode is not None and not left.endswith(")") \
        else last_word(left)
    rt = _edge(rnode, False) if rnode is not None and not right.startswith("(") \
        else first_word(right)
    if lt == "^":  # x^0.5 y, not x^0.5y
        return " "
    return separator(lt, rt)


def _juxtaposed(texts: list[str]) -> list[str]:
    """The parts of ``texts`` written side by side as :func:`juxtapose` writes them one
    after another: each separator reads the last word of all the text before it,
    kept as the parts grow (a word runs on over parts joined without a space)."""
    parts: list[str] = []
    word = ""
    for t in texts:
        sep = separator(word, first_word(t)) if parts else ""
        if parts:
            parts.append(sep)
        parts.append(t)
        tail = last_word(t)
        word = word + t if tail == t and not sep else tail
    return parts


def _parts(items: list[str], sep: str) -> list[str]:
    out: list[str] = []
    for k, t in enumerate(items):
        if k:
            out.append(sep)
        out.append(t)
    return out


class _Printer:
    """One printing session: memoised texts of forms, in matrix mode (``('m', node)``)
    or index mode (``('i', node, letters, used)``: the node's axes named ``letters``,
    the letters in ``used`` taken by enclosing sums)."""

    def __init__(self, hadamard: str = "⊙", max_chars: int = MAX_CHARS,
                 divide: str = "⊘") -> None:
        self.had = hadamard
        self.div = divide
        self.cap = max(int(max_chars), 16)
        self.memo: dict[tuple, Result] = {}
        self.count = 0
        self.chars = 0

    # ------------------------------------------------------------- engine
    def join(self, parts: list[str]) -> str:
        return join_capped(parts, self.cap)

    # Format hooks: the LaTeX printer shares this scheduler and these planners and
    # overrides only how a piece is written.
    ELLIPSIS = "…"
    MINUS = "−"

    def _bound(self, text: str, prec: int) -> Result:
        """A finished piece, cut to the cap (tighter once the whole text is huge)."""
        text = abbreviate(text, self.cap if self.chars < _CHAR_BUDGET else 64)
        self.chars += len(text)
        return text, prec

    def _number(self, v: float) -> str:
        return fmt_number(v)

    def _sum_head(self, letters: tuple) -> str:
        return "Σ" + subscript(letters) + " "

    def _factors(self, items: list[str]) -> str:
        return self.join(_parts(items, " "))

    def run(self, task: tuple) -> Result:
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
                    memo[t] = (self.ELLIPSIS, ATOM)
                    stack.pop()
                    continue
                plan = self._plan_m(t[1]) if t[0] == "m" else self._plan_i(*t[1:])
                plans[t] = plan
            deps, finish = plan
            missing = [d for d in deps if d not in memo]
            if missing:
                stack.extend(missing)
                continue
            memo[t] = self._bound(*finish([memo[d] for d in deps]))
            self.count += 1
            del plans[t]
            stack.pop()
        return memo[task]

    def top(self, root: MForm, index: bool) -> str:
        """The whole printout: matrix notation, or ``(i, j) ↦ …`` in index notation."""
        rank = len(root.shape)
        if index or root.kind == "index" or (rank >= 3 and root.kind not in _LEAVES):
            letters = tuple(letter_names(rank))
            body, _ = self.run(("i", root, letters, frozenset(letters)))
            text = f"({', '.join(letters)}) ↦ {body}" if rank else body
        else:
            text, _ = self.run(("m", root))
        return abbreviate(text, self.cap)

    # ------------------------------------------------------------- matrix mode
    def _plan_m(self, node: MForm) -> tuple[list, Callable[[list], Result]]:
        k = node.kind
        rank = len(node.shape)
        if k == "index" or (rank >= 3 and k not in _LEAVES):
            letters = tuple(letter_names(rank))

            def bracket(r: list) -> Result:
                body, prec = r[0]
                if not letters:
                    return f"({body})" if prec < ATOM else body, ATOM
                return f"[({', '.join(letters)}) ↦ {body}]", ATOM

            return [("i", node, letters, frozenset(letters))], bracket
        if _transposed_call(node):
            # a matrix function with a spelling of its own when transposed: X⁻ᵀ
            return [("m", node.args[0].args[0])], \
                lambda r: _call_text(node.args[0], r[0], transposed=True)
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
                return [("m", node.args[0])], lambda r: _power_text(r[0], p, matrix)
            op = "^⊙" if matrix else "^"
            return [("m", a) for a in node.args], \
                lambda r: (paren(*r[0], ATOM) + op + paren(*r[1], ATOM), POSTFIX)
        return [("m", a) for a in node.args], lambda r: self._finish_m(node, r)

    def _finish_m(self, node: MForm, r: list) -> Result:
        k, p = node.kind, node.params
        if k == "sym":
            return p[0], ATOM
        if k == "num":
            return fmt_number(p[0]), (NEG if p[0] < 0 else ATOM)
        if k == "fill":
            return _fill_text(p[0], len(node.shape))
        if k == "size":
            return str(p[0]), ATOM
        if k == "eye":
            return "I", ATOM
        if k == "T":
            return paren(*r[0], ATOM) + "ᵀ", POSTFIX
        if k == "matmul":
            return _jux(paren(*r[0], PRODUCT), node.args[0], paren(*r[1], PRODUCT),
                        node.args[1]), PRODUCT
        if k == "scale":
            return _scaled(p[0], r[0])
        if k in ("diag", "diagof"):
            return f"diag({r[0][0]})", ATOM
        if k == "trace":
            return f"tr({r[0][0]})", ATOM
        if k == "sum":
            return f"sum({r[0][0]})", ATOM
        if k == "sumaxis":
            return f"sum({r[0][0]}, axis={p[0]})", ATOM
        if k == "func":
            name = _fn_name(p[0])
            if _is_prefix(p[0]):
                return name + paren(*r[0], ATOM), POSTFIX
            return self.join([name, "(", *_parts([t for t, _ in r], ", "), ")"]), ATOM
        if k == "call":
            return _call_text(node, r[0])
        return f"<{k}>", ATOM  # pragma: no cover

    #: the minus sign (the LaTeX printer's is "-")
    minus = "−"

    def _scale(self, c: float, kid: Result) -> Result:
        """``c·x`` (a hook: the LaTeX printer writes numbers and products its way)."""
        return _scaled(c, kid)

    def _plan_add(self, node: MForm, task: Callable[[MForm], tuple]):
        # a − b: a negative term prints its magnitude after " − "
        mags, deps = [], []
        for t in node.args:
            if t.kind == "scale" and t.params[0] < 0:
                mags.append(-t.params[0])
                deps.append(task(t.args[0]))
            else:
                mags.append(None)
                deps.append(task(t))
        n = len(deps)
        minus = self.minus

        def finish(r: list) -> Result:
            out: list[str] = []
            for k, (c, res) in enumerate(zip(mags, r, strict=True)):
                if c is not None:
                    neg, (text, prec) = True, self._scale(c, res)
                elif res[0].startswith(minus) and res[1] in (NEG, SIGMA):
                    # −2, −1, −Σⱼ …: a text of its own that starts with a minus
                    neg, text, prec = True, res[0][1:], (SIGMA if res[1] == SIGMA else PRODUCT)
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

    def _plan_had(self, node: MForm):
        # x ⊙ y ⊘ z²: factors b⁻ᵖ go after ⊘ when some factor is not a quotient
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
        op = f" {self.had} "

        def slot(res: Result, arg: MForm) -> str:
            # ⊙ is associative: a product inside a product needs no parentheses
            return res[0] if arg.kind == "had" else paren(*res, POSTFIX)

        def finish(r: list) -> Result:
            num = [slot(res, a) for res, p, a in zip(r, kinds, node.args, strict=True)
                   if p is None]
            out = _parts(num, op)
            for res, p in zip(r, kinds, strict=True):
                if p is not None:
                    den = res if p == 1 else _power_text(res, p, matrix)
                    out += [f" {self.div} ", paren(*den, POSTFIX)]
            return self.join(out), HADAMARD

        return deps, finish

    def _plan_smul(self, node: MForm):
        # s₁ s₂ … x, with scalar factors b⁻ᵖ as a quotient: x/z, I/z, x/z²
        scalars, x = node.args[:-1], node.args[-1]
        dens = [_denominator(s) for s in scalars]
        deps = [("m", d[0] if d is not None else s)
                for s, d in zip(scalars, dens, strict=True)]
        deps.append(("m", x))

        def finish(r: list) -> Result:
            parts: list[str] = []  # the factors and what goes between them
            prev = None
            den_parts = []
            for s, res, d in zip(scalars, r[:-1], dens, strict=True):
                if d is None:
                    t = res[0] if inline(s) else paren(*res, POSTFIX)
                    if parts:
                        parts.append(_jux_sep(parts[-1], prev, t, s))
                    parts.append(t)
                    prev = s
                else:
                    den_parts.append(res if d[1] == 1 else _power_text(res, d[1], False))
            xt = paren(*r[-1], PRODUCT)
            if parts:
                parts.append(_jux_sep(parts[-1], prev, xt, x))
            parts.append(xt)
            if den_parts:
                den = _juxtaposed([paren(*res, POSTFIX) for res in den_parts])
                parts += ["/", "(", *den, ")"] if len(den_parts) > 1 else ["/", *den]
            return self.join(parts), PRODUCT

        return deps, finish

    # ------------------------------------------------------------- index mode
    def _plan_i(self, node: MForm, letters: tuple, used: frozenset):
        k = node.kind
        sub = subscript(letters)

        def same(t: MForm) -> tuple:
            return ("i", t, letters, used)

        if k == "sym":
            return [], lambda r: (node.params[0] + sub, ATOM)
        if k in ("num", "fill", "size"):
            v = node.params[0]
            if k == "size":
                return [], lambda r: (str(v), ATOM)
            return [], lambda r: (fmt_number(v), NEG if v < 0 else ATOM)
        if k == "eye":
            return [], lambda r: ("δ" + sub, ATOM)
        if k == "T":
            return [("i", node.args[0], letters[::-1], used)], lambda r: r[0]
        if k == "had":
            return [same(a) for a in node.args], \
                lambda r: (self.join(_parts([paren(*x, PRODUCT) for x in r], " ")), PRODUCT)
        if k == "diag":
            i = letters[:1]
            return [("i", node.args[0], i, used)], \
                lambda r: (paren(*r[0], PRODUCT) + " δ" + sub, PRODUCT)
        if k == "diagof":
            return [("i", node.args[0], letters * 2, used)], lambda r: r[0]
        if k == "scale":
            return [same(node.args[0])], lambda r: _scaled(node.params[0], r[0])
        if k == "smul":
            deps = [("m", s) for s in node.args[:-1]] + [same(node.args[-1])]

            def finish_smul(r: list) -> Result:
                factors = [res[0] if inline(s) else paren(*res, POSTFIX)
                           for s, res in zip(node.args, r[:-1], strict=False)]
                parts = _juxtaposed(factors) + [" ", paren(*r[-1], PRODUCT)]
                return self.join(parts), PRODUCT

            return deps, finish_smul
        if k == "add":
            return self._plan_add(node, same)
        if k == "func":
            name = _fn_name(node.params[0])
            if _is_prefix(node.params[0]):
                return [same(node.args[0])], \
                    lambda r: (name + paren(*r[0], ATOM), POSTFIX)
            return [same(a) for a in node.args], \
                lambda r: (self.join([name, "(", *_parts([t for t, _ in r], ", "), ")"]), ATOM)
        if k == "pow":
            p = _const_exponent(node.args[1])
            if p is not None:
                return [same(node.args[0])], lambda r: _power_text(r[0], p, False)
            return [same(a) for a in node.args], \
                lambda r: (paren(*r[0], ATOM) + "^" + paren(*r[1], ATOM), POSTFIX)
        if k == "index":
            return self._plan_product(node, letters, used)
        # a matrix form (Ax, tr(A), X⁻¹, …) with its axes named: (Ax)ᵢ
        deps, finish = self._plan_m_args(node)
        return deps, lambda r: (paren(*finish(r), ATOM) + sub, ATOM)

    def _plan_m_args(self, node: MForm):
        if _transposed_call(node):
            return self._plan_m(node)
        if node.kind in ("add", "had", "smul", "pow"):
            return self._plan_m(node)
        return [("m", a) for a in node.args], lambda r: self._finish_m(node, r)

    def _plan_product(self, node: MForm, letters: tuple, used: frozenset):
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
        head = self._sum_head(tuple(fresh)) if fresh else ""

        def finish(r: list) -> Result:
            if not r:
                return self._number(coef), (NEG if coef < 0 else ATOM)
            if len(r) == 1 and coef == 1.0 and not fresh:
                return r[0]  # a single factor read with other letters (Aⱼᵢ)
            body = self._factors([paren(*x, PRODUCT) for x in r])
            if coef == -1.0:
                lead = self.MINUS
            elif coef != 1.0:
                lead = self._number(coef) + " "
            else:
                lead = ""
            prec = SIGMA if fresh else (NEG if lead.startswith(self.MINUS) else PRODUCT)
            return lead + head + body, prec

        return deps, finish


# ===================================================================== entry points
def render(tree: MForm, *, index: bool = False, hadamard: str = "⊙",
           max_chars: int = MAX_CHARS, divide: str = "⊘") -> str:
    """Print a matrix-form tree (see :mod:`matdiff.render.mform`); ``index=True``
    prints it in index notation.

    >>> import matdiff as md
    >>> from matdiff.render import matrix_form
    >>> x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    >>> render(matrix_form(A.T @ x)), render(matrix_form(A.T @ x), index=True)
    ('Aᵀx', '(i) ↦ (Aᵀx)ᵢ')
    """
    return _Printer(hadamard, max_chars, divide).top(tree, index)


#: the element-wise product and quotient of each style
STYLE_SIGNS = {"standard": ("⊙", "/"), "paper": ("⊗", "⊘")}


def _safe(e: Expr, index: bool, hadamard: str, max_chars: int, divide: str = "⊘",
          layout: str = "mixed", f_ndim: int | None = None) -> str:
    try:
        tree = index_form(e) if index else matrix_form(e)
        tree = apply_layout(tree, layout, f_ndim)
        return render(tree, index=index, hadamard=hadamard, max_chars=max_chars,
                      divide=divide)
    except Exception:  # printing must never fail: fall back to index notation
        if not index:
            try:
                tree = apply_layout(index_form(e), layout, f_ndim)
                return render(tree, index=True, hadamard=hadamard,
                              max_chars=max_chars, divide=divide)
            except Exception:  # pragma: no cover
                pass
        return f"<{e.kind} of shape {e.shape}>"


def _options(layout: str, style: str | None, hadamard: str, f_ndim: int | None,
             rank: int) -> tuple[str, str]:
    check_choice("layout", layout, LAYOUTS)
    if layout != "mixed":
        transposes(layout, rank, f_ndim)  # validates f_ndim
    if style is None:
        return hadamard, "⊘"
    check_choice("style", style, STYLES)
    return STYLE_SIGNS[style]


def to_text(e: Expr, *, hadamard: str = "⊙", max_chars: int = MAX_CHARS,
            layout: str = "mixed", style: str | None = None,
            f_ndim: int | None = None) -> str:
    """An expression in matrix notation (Unicode), as ``str(e)`` prints it.

    Vectors are columns; products without a matrix form (tensors of three or more
    axes) print in index notation.  ``hadamard`` is the element-wise product's sign
    (the paper writes ``⊗``).  ``style`` picks both element-wise signs: ``paper``
    (``⊗``, ``⊘``) or ``standard`` (``⊙``, ``/``); left out, ``hadamard`` and ``⊘``.
    ``layout`` (``mixed``, ``numerator``, ``denominator``; see
    :mod:`matdiff.render.layout`) prints a derivative transposed as that layout
    writes it, given ``f_ndim``, the number of leading axes that come from the
    function differentiated.  Never raises on an expression (bad options raise
    :class:`~matdiff.render.layout.ChoiceError`); texts longer than ``max_chars``
    keep their head and tail around ``…``.

    >>> import matdiff as md
    >>> x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    >>> to_text(x @ A @ x), to_text(md.derive(x @ A @ x, x))
    ('xᵀAx', '(A + Aᵀ)x')
    >>> to_text(md.derive(x @ A @ x, x), layout="numerator", f_ndim=0)
    'xᵀ(A + Aᵀ)'
    >>> to_text(md.derive(md.sin(3 * x), x))
    'diag(3cos(3x))'
    >>> to_text(md.derive(md.inv(A), A))
    '(i, j, k, l) ↦ −(A⁻¹)ᵢₖ (A⁻¹)ₗⱼ'
    """
    _check_expr(e, "to_text")
    f_ndim = f_ndim_of(e, f_ndim)
    had, div = _options(layout, style, hadamard, f_ndim, len(e.shape))
    return _safe(e, False, had, max_chars, div, layout, f_ndim)


def _check_expr(e: object, what: str) -> None:
    if not isinstance(e, Expr):
        raise TypeError(f"md.{what} wants an expression (md.parse makes one from text), "
                        f"not {type(e).__name__}")


def to_index(e: Expr, *, max_chars: int = MAX_CHARS, layout: str = "mixed",
             style: str | None = None, f_ndim: int | None = None) -> str:
    """An expression in index notation: ``(i, j) ↦ …`` names the result's axes
    (nothing for a scalar), ``Σⱼ`` writes each summed letter out.  ``layout`` and
    ``f_ndim`` as for :func:`to_text` (a transposed result swaps its letters).

    >>> import matdiff as md
    >>> x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    >>> to_index(x @ A @ x)
    'Σᵢⱼ Aᵢⱼ xᵢ xⱼ'
    >>> to_index(A @ x)
    '(i) ↦ Σⱼ Aᵢⱼ xⱼ'
    """
    _check_expr(e, "to_index")
    f_ndim = f_ndim_of(e, f_ndim)
    had, div = _options(layout, style, "⊙", f_ndim, len(e.shape))
    return _safe(e, True, had, max_chars, div, layout, f_ndim)
