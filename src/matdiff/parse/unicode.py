"""matdiff's own Unicode matrix notation (``syntax="unicode"``): what ``str(expr)``
and :func:`matdiff.to_text` print, read back.

Vectors are columns and a transposed vector is a row, as the printer writes them:

* factors side by side are the matrix product: ``Ax``, ``xᵀAx``, ``AᵀB``, ``2x``,
  ``xyᵀ`` (outer), ``uᵀv`` (dot), ``s(x + y)``; ``·`` is the same product
  (``2·1``), except between two vectors, where it is their dot product as matdiff
  prints ``dot(w, x)``: ``w · x``; and ``a/b`` divides by a scalar (``x/s``,
  ``sum(x)/N``; by a vector or a matrix it is the element-wise quotient);
* a run of letters is split into the known names, longest first: ``xᵀAx`` with
  ``x`` and ``A`` declared is ``x``, ``ᵀ``, ``A``, ``x``; names are the variables of
  ``shapes=`` (Greek letters are letters), the dims of those shapes (``2N⁻¹`` is
  2/N: a dim that is not a variable stands for its size), ``I`` the identity and
  the function names (``3cos(3x)``, ``xσ(x)``);
* superscripts: ``ᵀ`` transposes; ``⁻¹`` is the inverse of a square matrix and the
  reciprocal of a scalar or (element-wise) of a vector, as matdiff prints ``x⁻¹``
  for ``1/x``; ``⁻ᵀ`` is the inverse transposed; ``²``, ``³``, ``⁻²``, ... are powers,
  element-wise for scalars and vectors (``x²``), the matrix power for a square
  matrix (``A²`` is ``AA``; matdiff prints an element-wise power of a matrix
  ``A^⊙2``); ``x^0.5`` and ``x^y`` are element-wise powers (``^`` of a matrix takes
  an integer: the matrix power), ``A^⊙p`` always element-wise;
* ``⊙`` and ``⊘`` are the element-wise product and quotient, ``+``, ``−`` (or
  ``-``) add and subtract; a scalar is added to a vector or a matrix element by
  element (``1 − σ(x)``);
* ``𝟏`` is the vector of ones and ``I`` the identity, their dims taken from where
  they are used (``1ᵀx``, ``x1ᵀ``, ``Xw + b1``, ``sI + A``); the digit ``1`` is the
  ones vector where matdiff prints it so, as a factor of a product (``b1``, ``2·1``,
  ``1·1ᵀ``) or transposed (``1ᵀ``), and the number 1 elsewhere.  A declared
  variable named ``I`` is that variable.  Where nothing around a ``𝟏`` or an ``I``
  tells its dim (``2·1`` alone: matdiff prints constants without their dims), it is
  the one dim of the shapes in play where they have one (``I/9`` with ``x`` of
  shape ``(n,)``, as matdiff prints the derivative of ``x/9``), else an error that
  says so; a number alone (``1``, ``0``) is that scalar;
* ``eₚ`` is the unit vector with 1 at index ``p`` (from 0, as ``x[p]``): ``e₀``,
  ``eₙ₋₁`` (the last, as ``x[−1]``); its dim comes from where it is used, as the
  identity's does (``xe₀ᵀ``, ``x[2]e₀``); matdiff prints the derivative of a selection
  so (``d x[0]/dx = e₀``, ``d A[1, 2]/dA = e₁e₂ᵀ``);
* exact fractions as matdiff prints them: ``x/9``, ``x^(1/2)``, ``x^(−3/2)/2``, and
  ``·`` before a number after a call (``log(2)·2^x``); the closed forms of
  :data:`matdiff.expr.numbers.CLOSED_FORMS`: ``π`` is the number (unless a variable
  or a dim is named ``π``), ``2exp(−x²)/√π``, ``x/√(2π)``, ``√2x``, ``log(2)``, and
  Euler's number as ``exp(1)`` (``e`` is a name);
* functions: ``diag tr sum`` (``sum(X, axis=0)``), ``det``, ``log det``,
  ``logsumexp``, ``softmax``, ``√x`` / ``√(…)``, and every element-wise function
  by the name matdiff prints for it (``σ``, ``exp``, ``relu``, ``max(a, b)``, ...,
  one defined with :func:`matdiff.define_function` too); numpy syntax's names
  (``sigmoid``, ``sqrt``, ``logdet``, ``inv``, ``mean``, ``dot``, ``outer``, ...) are
  read as well.

Not read (a :class:`~matdiff.errors.ParseError` with a caret that says so): index
notation (``(i, j) ↦ …``, ``Σⱼ``, subscripts; matdiff prints it for results of three
or more axes), a printout cut with ``…``, and
the operators of the other syntaxes (``*``, ``@``, ``'``).  Names are read with the
help of ``shapes=``, which every variable needs.

>>> import numpy as np, matdiff as md
>>> shapes = {"x": ("n",), "A": ("n", "n")}
>>> g = md.derive("x @ A @ x", "x", shapes=shapes)
>>> str(g)
'(A + Aᵀ)x'
>>> h = md.parse(str(g), shapes=shapes, syntax="unicode")
>>> x0, A0 = np.array([1.0, 2.0]), np.array([[1.0, 2.0], [3.0, 4.0]])
>>> np.allclose(h.evaluate(x=x0, A=A0), g.evaluate(x=x0, A=A0))
True
>>> md.parse("xᵀAx", shapes=shapes).shape     # detected: it has a ᵀ
()
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..errors import LimitError, MatdiffError, ParseError, ShapeError, UnknownFunctionError
from ..expr import builders as b
from ..expr.core import Const, Dim, Expr, Shape, shape_str
from ..expr.functions import FUNCTIONS
from ..expr.numbers import CLOSED_FORMS
from .grammar import TokenParser
from .mc import Row, _un, _what, _wrap
from .table import FUNCTION_TABLE
from .tree import Node
from .unicode_lexer import (
    _HINTS,
    _INDEX,
    _SUBSCRIPTS,
    _UNIT_SUB,
    UToken,
    looks_unicode,
    unicode_tokens,
)

__all__ = ["parse_unicode", "unicode_tree", "looks_unicode", "unicode_functions", "MAX_DEPTH"]

Span = tuple[int, int]

#: the deepest nesting of parentheses, calls, signs and powers the syntax reads
MAX_DEPTH = 80

def _matrix_functions() -> dict[str, Any]:
    """The functions of numpy syntax that are not element-wise and take expressions
    (and an axis): ``sum``, ``tr``, ``det``, ``logdet``, ``diag``, ... (from
    :data:`matdiff.parse.table.FUNCTION_TABLE`; ``eye``, ``vector`` and ``matrix``
    take dims, which this syntax does not write)."""
    return {name: spec for name, spec in FUNCTION_TABLE.items()
            if name not in FUNCTIONS and all(p in ("expr", "axis") for p in spec.params)}


def unicode_functions() -> dict[str, str]:
    """The function names of the unicode syntax -> the function they call: the
    element-wise ones by their printed name and their own name (from their
    definitions, as defined now), and the matrix functions.

    >>> f = unicode_functions()
    >>> f["σ"], f["sigmoid"], f["tr"]
    ('sigmoid', 'sigmoid', 'tr')
    """
    out = {name: name for name in _matrix_functions()}
    out["block"] = "block"  # block([[X, E], [0, X]]), as matdiff prints a block matrix
    out["zeros"] = "zeros"  # zeros(m, n): a zero block, as matdiff prints one in concat
    from ..expr.matrix_functions import MATRIX_FUNCTIONS

    for fn in MATRIX_FUNCTIONS.values():  # a printed name of its own: L_exp(Xᵀ, G)
        head = fn.spell("unicode", "\0").split("\0")[0][:-1]
        if fn.public and fn.name in out and head.replace("_", "").isalnum():
            out.setdefault(head, fn.name)
    for row in FUNCTIONS.values():
        if not row.call:
            continue
        out[row.name] = row.name
        if row.unicode and not row.prefix:
            out.setdefault(row.unicode, row.name)
    return out


def _prefix_functions() -> dict[str, str]:
    """Prefix operators (``√``) -> function name, from the definitions."""
    return {row.unicode: row.name for row in FUNCTIONS.values()
            if row.prefix and row.unicode and row.call and row.arity == 1}


# ====================================================================== names
#: the closed forms that are one letter (``π``), read as their numbers; the others
#: are written with functions the syntax reads (``√π``, ``√(2π)``, ``log(2)``,
#: ``exp(1)`` for Euler's number: ``e`` is a name), as matdiff prints them
#: (:data:`matdiff.expr.numbers.CLOSED_FORMS`)
_CONSTANTS = {c.unicode: c.value for c in CLOSED_FORMS
              if len(c.unicode) == 1 and c.unicode.isalpha()}


class _Names:
    """What a run of letters may be made of, given the declared shapes."""

    def __init__(self, declared: Mapping[str, Shape]) -> None:
        self.variables = dict(declared)
        dims: list[Dim] = []
        for shape in declared.values():
            for d in shape:
                if d not in dims:
                    dims.append(d)
        self.dims = {d for d in dims if isinstance(d, str) and d not in declared}
        self.eye = "I" not in declared and "I" not in self.dims
        #: the constants written by name (π), as matdiff prints 2/√π, x/π; a declared
        #: variable or a dim of that name is that name
        self.constants = {k: v for k, v in _CONSTANTS.items()
                          if k not in declared and k not in self.dims}
        self.functions = unicode_functions()
        self.prefix = _prefix_functions()
        words = set(self.variables) | self.dims | ({"I"} if self.eye else set()) \
            | set(self.constants)
        self.words = sorted(words, key=len, reverse=True)

    def split(self, run: str, call: bool) -> list[tuple[str, str]] | None:
        """``run`` as pieces ``(kind, text)``, kinds ``var dim eye num fn``: longest
        names first, a function only as the last piece of a run followed by ``(``."""
        n = len(run)
        failed: set[int] = set()

        def go(i: int) -> list[tuple[str, str]] | None:
            if i == n:
                return []
            if i in failed:
                return None
            if call and run[i:] in self.functions:
                return [("fn", run[i:])]
            options: list[tuple[str, str]] = []
            if run[i].isdigit():
                j = i
                while j < n and run[j].isdigit():
                    j += 1
                options.append(("num", run[i:j]))
            for w in self.words:
                if run.startswith(w, i):
                    kind = "var" if w in self.variables else "dim" if w in self.dims \
                        else "const" if w in self.constants else "eye"
                    options.append((kind, w))
            for piece in options:
                rest = go(i + len(piece[1]))
                if rest is not None:
                    return [piece, *rest]
            failed.add(i)
            return None

        return go(0)


# ====================================================================== parser
class _Parser(TokenParser):
    """Text -> :class:`~matdiff.parse.tree.Node` tree.  Node kinds: ``num``
    (``value`` the float), ``var``, ``dim``, ``eye``, ``ones`` (``𝟏``), ``neg``,
    ``sum`` / ``had`` / ``prod`` (chains: ``value`` the operators), ``post``
    (``value`` ``"T"``, ``"-T"`` or an int power), ``pow`` (``value`` ``"^"`` or
    ``"^⊙"``), ``call`` (``value`` the function, ``op_spans[1:]`` an ``axis=``)."""

    def __init__(self, text: str, names: _Names) -> None:
        self.text = text
        self.names = names
        self.tokens: Iterator[UToken] = unicode_tokens(text)
        self.queue: list[UToken] = []
        self.current = self._next()
        self.open: list[UToken] = []

    # ------------------------------------------------------------ tokens
    def _next(self) -> UToken:
        tok = self.queue.pop(0) if self.queue else next(self.tokens)
        if tok.kind == "run":
            return self._split(tok)
        return tok

    def _split(self, tok: UToken) -> UToken:
        """A run of letters as the tokens of its pieces (kinds ``piece:var``,
        ``piece:dim``, ``piece:eye``, ``piece:fn`` and ``num``); the token after the
        run (read here: a ``(`` makes the last piece a function) follows them.  A run
        after a run is split when it is reached (the queue is empty by then)."""
        after = next(self.tokens)
        call = after.kind == "("
        pieces = self.names.split(tok.text, call)
        if pieces is None:
            raise self._unknown(tok, call)
        out: list[UToken] = []
        pos = tok.start
        for kind, word in pieces:
            end = pos + len(word)
            if kind == "num":
                out.append(UToken("num", word, pos, end, float(word)))
            elif kind == "const":  # π: a number written by name
                out.append(UToken("num", word, pos, end, self.names.constants[word]))
            else:
                out.append(UToken("piece:" + kind, word, pos, end))
            pos = end
        out.append(after)
        self.queue[:0] = out[1:]
        return out[0]

    def _unknown(self, tok: UToken, call: bool) -> ParseError:
        names = self.names
        if call:
            funcs = sorted(names.functions)
            near = difflib.get_close_matches(tok.text, funcs, n=3, cutoff=0.6)
            msg = f"unknown function {tok.text!r}"
            if near:
                msg += "; did you mean " + " or ".join(near) + "?"
            msg += " The functions are: " + ", ".join(funcs) + "."
            return UnknownFunctionError(msg, self.text, [tok.span])
        if not names.variables:
            return self.error(
                f"{tok.text!r}: the unicode syntax reads names with the help of the "
                "variables' shapes: pass shapes= (like shapes={'x': ('n',), "
                "'A': ('n', 'n')})", tok.span)
        known = ", ".join(sorted(names.variables))
        dims = f"; the dims are {', '.join(sorted(names.dims))}" if names.dims else ""
        return self.error(
            f"{tok.text!r} is not a variable and does not split into known names (the "
            f"variables are {known}{dims}; declare every variable in shapes=)", tok.span)

    def unexpected(self, tok: UToken, expected: str) -> ParseError:
        if tok.kind == ")" and not self.open:
            return self.error("unmatched ')'", tok.span)
        if tok.kind == "end":
            return self.error(f"unexpected end of input: {expected}", tok.span)
        return self.error(f"unexpected '{tok.text}': {expected}", tok.span)

    # ------------------------------------------------------------ grammar
    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.error("empty expression", (0, 0))
        node = self.sum(0)
        tok = self.peek()
        if tok.kind != "end":
            raise self.unexpected(tok, "expected an operator or the end of input")
        return node

    def _chain(self, kind: str, ops: tuple[str, ...], operand: Callable[[int], Node],
               depth: int) -> Node:
        first = operand(depth)
        terms, names, spans = [first], [], []
        while self.peek().kind in ops:
            op = self.advance()
            terms.append(operand(depth))
            names.append(op.kind)
            spans.append(op.span)
        if len(terms) == 1:
            return first
        return Node(kind, (terms[0].span[0], terms[-1].span[1]), tuple(terms),
                    tuple(names), tuple(spans))

    def sum(self, depth: int) -> Node:
        return self._chain("sum", ("+", "-"), self.had, depth)

    def had(self, depth: int) -> Node:
        return self._chain("had", ("⊙", "⊘", "⊗"), self.signed, depth)

    def signed(self, depth: int) -> Node:
        tok = self.peek()
        if tok.kind in ("-", "+"):
            self.advance()
            inner = self.signed(self.deeper(depth, tok))
            if tok.kind == "+":
                return inner.with_span((tok.start, inner.span[1]))
            return Node("neg", (tok.start, inner.span[1]), (inner,), "-", (tok.span,))
        return self.product(depth)

    _STARTS = ("num", "(", "𝟏", "√", "worded", "piece:var", "piece:dim", "piece:eye",
               "piece:fn", "[", "unit")

    def product(self, depth: int) -> Node:
        terms = [self.factor(depth)]
        ops: list[str] = []
        spans: list[Span] = []
        while True:
            tok = self.peek()
            if tok.kind in ("·", "/"):
                self.advance()
                ops.append(tok.kind)
                spans.append(tok.span)
            elif tok.kind in self._STARTS:
                ops.append("jux")
                spans.append((terms[-1].span[1], tok.start))
            else:
                break
            terms.append(self.factor(depth))
        if len(terms) == 1:
            return terms[0]
        # the digit 1 as a factor beside another (b1, 2·1, 1·1ᵀ) is the ones vector
        out = list(terms)
        for k, t in enumerate(terms):
            left = k > 0 and ops[k - 1] != "/"
            right = k < len(ops) and ops[k] != "/"
            if t.kind == "num" and self.text[t.span[0]:t.span[1]] == "1" and (left or right):
                out[k] = Node("ones", t.span)
        return Node("prod", (terms[0].span[0], terms[-1].span[1]), tuple(out), tuple(ops),
                    tuple(spans))

    def factor(self, depth: int) -> Node:
        tok = self.peek()
        if tok.kind == "√":
            self.advance()
            inner = self.factor(self.deeper(depth, tok))
            name = self.names.prefix.get(tok.text, "sqrt")
            return Node("call", (tok.start, inner.span[1]), (inner,), name, (tok.span,))
        node = self.primary(depth)
        return self.postfix(node, depth)

    def postfix(self, node: Node, depth: int) -> Node:
        while True:
            tok = self.peek()
            if tok.kind == "[":  # x[0], x[1:], X[:, 0], as matdiff prints a selection
                node = self.index(node, depth)
                continue
            if tok.kind in ("T", "-T", "sup"):
                self.advance()
                value = tok.value if tok.kind == "sup" else tok.kind
                if tok.kind == "T" and node.kind == "num" and \
                        self.text[node.span[0]:node.span[1]] == "1":
                    node = Node("ones", node.span)  # 1ᵀ: the ones vector, transposed
                node = Node("post", (node.span[0], tok.end), (node,), value, (tok.span,))
                continue
            if tok.kind in ("^", "^⊙"):
                self.advance()
                sign = self.peek()
                inner_depth = self.deeper(depth, tok)
                if sign.kind in ("-", "+"):
                    self.advance()
                    exp = self.primary(inner_depth)
                    if sign.kind == "-":
                        exp = Node("neg", (sign.start, exp.span[1]), (exp,), "-",
                                   (sign.span,))
                else:
                    exp = self.primary(inner_depth)
                node = Node("pow", (node.span[0], exp.span[1]), (node, exp), tok.kind,
                            (tok.span,))
                continue
            return node

    def primary(self, depth: int) -> Node:
        tok = self.advance()
        kind = tok.kind
        if kind == "num":
            if tok.value in (float("inf"), float("-inf")) and tok.text != "∞":
                raise self.error(f"the number '{tok.text}' is too large", tok.span)
            return Node("num", tok.span, (), tok.value, (tok.span,))
        if kind == "𝟏":
            return Node("ones", tok.span)
        if kind == "unit":  # eₚ: the unit vector, its dim from where it is used
            return Node("unit", tok.span, (), tok.value)
        if kind in ("piece:var", "piece:dim", "piece:eye"):
            return Node(kind[6:], tok.span, (), tok.text)
        if kind in ("piece:fn", "worded"):
            name = tok.value if kind == "worded" else self.names.functions[tok.text]
            return self.call(tok, name, depth)
        if kind == "(":
            self.open.append(tok)
            inner = self.sum(self.deeper(depth, tok))
            end = self.close(tok, "expected an operator or ')'")
            self.open.pop()
            return inner.with_span((tok.start, end.end))
        if kind == "[":  # [a, b]: a stack, as matdiff prints one
            return self.stack(tok, depth)
        if kind == "run":  # pragma: no cover - runs are split when read
            raise AssertionError("unsplit run")
        raise self.unexpected(tok, "expected a number, a name or '('")

    def stack(self, opening: UToken, depth: int) -> Node:
        inner = self.deeper(depth, opening)
        parts, end = self.comma_list(opening, lambda: self.sum(inner), "]")
        return Node("stack", (opening.start, end.end), tuple(parts), None, (opening.span,))

    def index(self, base: Node, depth: int) -> Node:
        """``x[key, …]``: whole numbers (``−1``) and slices (``1:``, ``::−1``)."""
        opening = self.advance()
        keys: list[Any] = []
        spans: list[Span] = []
        while True:
            start = self.peek().start
            parts: list[Any] = [None, None, None]
            colons = 0
            while True:
                if self.peek().kind not in (":", ",", "]"):
                    parts[colons] = self._key_number()
                if self.peek().kind != ":" or colons == 2:
                    break
                self.advance()
                colons += 1
            keys.append(parts[0] if colons == 0 else slice(*parts))
            spans.append((start, self.peek().start))
            if self.peek().kind == ",":
                self.advance()
                continue
            end = self.close(opening, "expected an index, ':', ',' or ']'", "]")
            break
        return Node("index", (base.span[0], end.end), (base,), tuple(keys), tuple(spans))

    def _key_number(self) -> int:
        sign = self.peek()
        if sign.kind == "-":
            self.advance()
        tok = self.advance()
        if tok.kind != "num" or not tok.text.isdigit() or len(tok.text) > 18:
            raise self.error("an index must be a whole number, like 0 or −1", tok.span)
        return -int(tok.text) if sign.kind == "-" else int(tok.text)

    def call(self, name: UToken, fn: str, depth: int) -> Node:
        opening = self.peek()
        if opening.kind != "(":
            raise self.error(f"{name.text} needs its argument in parentheses: "
                             f"{name.text}(…)", name.span)
        self.advance()
        inner = self.deeper(depth, opening)
        self.open.append(opening)
        args: list[Node] = []
        axis: list[Span] = []
        while True:
            if args and self.peek().kind == "axis=":
                axis.append(self._axis(fn))
            else:
                args.append(self.sum(inner))
            if self.peek().kind == ",":
                self.advance()
                continue
            end = self.close(opening, "expected an operator, ',' or ')'")
            break
        self.open.pop()
        return Node("call", (name.start, end.end), tuple(args), fn, (name.span, *axis))

    def _axis(self, fn: str) -> Span:
        """``axis=k`` in a call: the span of the (signed) integer ``k``."""
        self.advance()
        start = self.peek().start
        sign = self.peek()
        if sign.kind == "-":
            self.advance()
        tok = self.advance()
        if tok.kind != "num" or not tok.text.isdigit() or len(tok.text) > 18:
            raise self.error(f"{fn}: the axis must be a whole number, like axis=0",
                             tok.span)
        return (start, tok.end)


def _operator(op: str) -> Any:
    """The matrix function whose definition spells the infix operator ``op`` (``⊗``
    is the Kronecker product), or None."""
    from ..expr.matrix_functions import MATRIX_FUNCTIONS

    return next((fn for fn in MATRIX_FUNCTIONS.values() if op and fn.operator == op), None)


def unicode_tree(text: str, declared: Mapping[str, Shape]) -> Node:
    """The syntax tree of ``text`` in unicode syntax (names split by ``declared``).

    >>> t = unicode_tree("xᵀAx", {"x": ("n",), "A": ("n", "n")})
    >>> t.kind, t.value, [c.kind for c in t.children]
    ('prod', ('jux', 'jux'), ['post', 'var', 'var'])
    """
    if isinstance(text, str):
        # the subscripts of a unit vector eₚ are read; any other is index notation
        units = {k for m in _UNIT.finditer(text) for k in range(m.start() + 1, m.end())}
        for k, c in enumerate(text):
            if c in _REFUSED and k not in units:
                raise ParseError(f"unexpected {c!r}: {_REFUSED[c]}", text, [(k, k + 1)])
    parser = _Parser(text, _Names(declared))
    try:
        return parser.parse()
    except RecursionError:
        raise LimitError(
            f"the expression is nested too deeply (the limit is {MAX_DEPTH} levels)",
            text, [parser.peek().span]) from None


#: a unit vector as matdiff prints it: e and its index in subscripts (e₀, eₙ₋₁)
_UNIT = re.compile("e[" + "".join(_UNIT_SUB) + "]+")
#: what the syntax refuses wherever it is in a text (index notation, a cut printout)
_REFUSED = {"↦": _INDEX, "Σ": _INDEX, "…": _HINTS["…"],
            **{c: _INDEX for c in _SUBSCRIPTS}}


# ====================================================================== building
class _Bind(Exception):
    """A dim of a ``𝟏`` or an ``I`` found: build again with it."""

    def __init__(self, fresh: str, dim: Dim) -> None:
        super().__init__(fresh)
        self.fresh = fresh
        self.dim = dim


_FRESH = "_ones_dim_"


class _Builder:
    def __init__(self, text: str, declared: Mapping[str, Shape], names: _Names,
                 bound: dict[str, Dim]) -> None:
        self.text = text
        self.declared = declared
        self.names = names
        self.bound = bound
        self.made: dict[str, Span] = {}
        #: the constants whose rank was guessed (softmax(0): a vector of zeros)
        self.guessed: list[Span] = []

    # ------------------------------------------------------------ dims of 𝟏 and I
    def fresh(self, node: Node, k: int = 0) -> Dim:
        name = f"{_FRESH}{node.span[0]}_{k}"
        self.made.setdefault(name, node.span)
        return self.resolve(name)

    def resolve(self, d: Dim) -> Dim:
        seen = 0
        while isinstance(d, str) and d in self.bound and seen < 10_000:
            d = self.bound[d]
            seen += 1
        return d

    def is_fresh(self, d: Dim) -> bool:
        r = self.resolve(d)
        return isinstance(r, str) and r.startswith(_FRESH)

    def unify(self, d1: Dim, d2: Dim) -> None:
        r1, r2 = self.resolve(d1), self.resolve(d2)
        if r1 == r2:
            return
        if isinstance(r1, str) and r1.startswith(_FRESH):
            raise _Bind(r1, r2)
        if isinstance(r2, str) and r2.startswith(_FRESH):
            raise _Bind(r2, r1)

    def unify_shapes(self, s1: tuple, s2: tuple) -> None:
        if len(s1) == len(s2):
            for d1, d2 in zip(s1, s2, strict=True):
                self.unify(d1, d2)

    # ------------------------------------------------------------ helpers
    def apply(self, fn: Callable[..., Any], args: Sequence[Any], spans: Sequence[Span]
              ) -> Any:
        try:
            return fn(*args)
        except MatdiffError as err:
            raise err.with_text(self.text, list(spans)) from None
        except (TypeError, ValueError) as err:
            raise ShapeError(str(err), self.text, list(spans)) from None

    def error(self, msg: str, *spans: Span) -> ShapeError:
        return ShapeError(msg, self.text, list(spans))

    # ------------------------------------------------------------ nodes
    def build(self, node: Node, depth: int = 0) -> Any:
        kind = node.kind
        if kind == "num":
            return b.const(node.value)
        if kind == "var":
            return self.apply(b.var, (node.value, *self.declared[node.value]), [node.span])
        if kind == "dim":
            return b.size_of((node.value,))
        if kind == "eye":
            return b.eye(self.fresh(node))
        if kind == "ones":
            return b.const(1.0, (self.fresh(node),))
        if kind == "unit":  # eₚ = row p of I (from 0); eₙ₋ₖ is row −k of an n-vector
            dim = self.fresh(node)
            m = re.fullmatch(r"(\d+)|(\w+)-(\d+)", node.value)
            if m is None or (m.group(2) and m.group(2) != dim and not self.is_fresh(dim)):
                raise ParseError(f"cannot read the unit vector's index {node.value!r}: "
                                 "write e₀, e₁, … or eₙ₋₁ (n the vector's dim)",
                                 self.text, [node.span])
            key = int(m.group(1)) if m.group(1) else -int(m.group(3))
            return self.apply(b.getitem, (b.eye(dim), key), [node.span])
        if kind == "neg":
            e, row = _un(self.build(node.children[0], depth + 1))
            return _wrap(b.neg(e), row)
        if kind in ("sum", "had", "prod"):
            spans = [c.span for c in node.children]
            acc = self.build(node.children[0], depth + 1)
            for k, op in enumerate(node.value, 1):
                arg = self.build(node.children[k], depth + 1)
                acc = self.binary(op, acc, arg, (spans[0][0], spans[k - 1][1]), spans[k])
            return acc
        if kind == "post":
            return self.post(node, self.build(node.children[0], depth + 1))
        if kind == "pow":
            base = self.build(node.children[0], depth + 1)
            exp = self.build(node.children[1], depth + 1)
            return self.power(node, base, exp)
        if kind == "call" and node.value == "block":
            return self.block(node, depth)
        if kind == "call" and node.value == "zeros":
            return self.zeros(node)
        if kind == "call":
            return self.call(node, [self.build(c, depth + 1) for c in node.children])
        if kind == "stack":
            parts = [_un(self.build(c, depth + 1))[0] for c in node.children]
            shaped = next((p for p in parts if p.shape), None)
            if shaped is not None:  # a number among matrices is a block of it: [I, 0]
                parts = [b.const(p.value, shaped.shape) if isinstance(p, Const)
                         and not p.shape else p for p in parts]
            for p in parts[1:]:
                if p.shape and parts[0].shape and len(p.shape) == len(parts[0].shape):
                    self.unify_shapes(parts[0].shape, p.shape)
            spans = [c.span for c in node.children]
            k = next((k for k, p in enumerate(parts) if p.shape != parts[0].shape), 0)
            return self.apply(b.stack, (parts,), [spans[0], spans[k]] if k else spans)
        if kind == "index":
            e, _ = _un(self.build(node.children[0], depth + 1))
            return self.apply(b.getitem, (e, node.value),
                              [node.children[0].span, *node.op_spans])
        raise AssertionError(f"unknown node kind {kind}")  # pragma: no cover

    def zeros(self, node: Node) -> Expr:
        """``zeros(n)``, ``zeros(m, n)``, ``zeros(n + 1)``: a block of zeros of those
        dims (names of the shapes' dims, integers, sums and products of them)."""
        from ..expr.dims import parse_dim

        dims: list[Dim] = []
        for c in node.children:
            text = self.text[c.span[0]:c.span[1]]
            try:
                if c.kind not in ("dim", "num", "sum", "prod"):
                    raise ShapeError("not a dim")
                d = parse_dim(text.replace("−", "-"))
            except ShapeError:
                raise ParseError(f"zeros takes dims (like zeros(n) or zeros(m, n)), not "
                                 f"{text!r}", self.text, [c.span]) from None
            if isinstance(d, int) and d < 1:
                raise ParseError("a dim of zeros must be at least 1", self.text, [c.span])
            dims.append(d)
        if not 1 <= len(dims) <= 2:
            raise ParseError("zeros takes one dim (a vector) or two (a matrix)",
                             self.text, [node.span])
        return b.const(0.0, tuple(dims))

    def block(self, node: Node, depth: int) -> Expr:
        """``block([[X, E], [0, X]])``: a block matrix (numbers are blocks of them)."""
        from .table import block

        arg = node.children[0] if len(node.children) == 1 else None
        if arg is None or arg.kind != "stack" or not all(
                r.kind == "stack" for r in arg.children) or len(
                {len(r.children) for r in arg.children}) > 1:
            raise ParseError("block takes a list of block rows of one length, like "
                             "block([[A, B], [C, D]])", self.text, [node.span])
        rows = [[self._block_cell(self.build(c, depth + 1)) for c in r.children]
                 for r in arg.children]
        return self.apply(block, (rows,), [arg.span])

    @staticmethod
    def _block_cell(built: Any) -> Expr:
        """A block of a block matrix as a matrix: a column vector ``v`` is ``n × 1``,
        a row ``vᵀ`` is ``1 × n`` (as matdiff prints a Hessian by ``[w, b]``)."""
        e, row = _un(built)
        if len(e.shape) != 1:
            return e
        one = b.const(1.0, (1,))
        return b.outer(one, e) if row else b.outer(e, one)

    def elementwise(self, op: str, a: Any, c: Any, sa: Span, sc: Span,
                    fn: Callable[..., Any]) -> Any:
        ea, ra = _un(a)
        ec, rc = _un(c)
        na, nc = len(ea.shape), len(ec.shape)
        if na and nc:
            if na == 1 and nc == 1 and ra != rc:
                raise self.error(
                    f"'{op}' of a {_what(ea, ra)} and a {_what(ec, rc)}: a row vector and "
                    "a column vector do not match (transpose one with ᵀ)", sa, sc)
            if na != nc and any(self.is_fresh(d) for d in (*ea.shape, *ec.shape)):
                raise ParseError(
                    f"cannot tell the dims of a constant here ('{op}' of a {_what(ea, ra)} "
                    f"and a {_what(ec, rc)}): matdiff prints a constant array as its "
                    "number (softmax(0)), without its dims; write it in numpy syntax "
                    "(vector(0, n), matrix(0, m, n))", self.text, [sa, sc])
            if na != nc:
                raise self.error(
                    f"'{op}' of a {_what(ea, ra)} and a {_what(ec, rc)}: the shapes differ",
                    sa, sc)
            self.unify_shapes(ea.shape, ec.shape)
        return _wrap(self.apply(fn, (ea, ec), (sa, sc)), ra or rc)

    def binary(self, op: str, a: Any, c: Any, sa: Span, sc: Span) -> Any:
        if op in ("jux", "·"):
            return self.product(op, a, c, sa, sc)
        if op == "/":
            ec, rc = _un(c)
            if ec.shape:
                return self.elementwise("/", a, c, sa, sc, b.div)
            ea, ra = _un(a)
            return _wrap(self.apply(b.div, (ea, ec), (sa, sc)), ra)
        spec = _operator(op)
        if spec is not None:  # A ⊗ B: the definition that this operator spells
            ea, ec = _un(a)[0], _un(c)[0]
            if (isinstance(ea, Const) and not ea.shape) or (isinstance(ec, Const)
                                                            and not ec.shape):
                raise ParseError(
                    f"cannot tell the dims of a constant here ('{op}' of a constant "
                    "printed as its number): write it in numpy syntax (matrix(0, m, n))",
                    self.text, [sa, sc])
            if len(ea.shape) < 2 or len(ec.shape) < 2:
                raise ParseError(
                    f"'{op}' is the Kronecker product, of two matrices, here of a "
                    f"{_what(*_un(a))} and a {_what(*_un(c))}; a printout in the paper's "
                    f"style (style='paper') writes the element-wise product as {op}: "
                    "write ⊙ for it", self.text, [sa, sc])
            out = self.apply(b.matrix_function(spec.name), (ea, ec), (sa, sc))
            self.no_hidden_products(out, (sa, sc))
            return out
        fn = {"+": b.add, "-": b.sub, "⊙": b.mul, "⊘": b.div}[op]
        return self.elementwise("−" if op == "-" else op, a, c, sa, sc, fn)

    def product(self, op: str, a: Any, c: Any, sa: Span, sc: Span) -> Any:
        ea, ra = _un(a)
        ec, rc = _un(c)
        na, nc = len(ea.shape), len(ec.shape)
        if na == 0 or nc == 0:
            return _wrap(self.apply(b.mul, (ea, ec), (sa, sc)), ra or rc)
        if na == 1 and nc == 1 and not ra and rc:
            return self.apply(b.outer, (ea, ec), (sa, sc))
        if op == "·" and na == 1 and nc == 1 and not ra and not rc:
            # w · x between two columns: their dot product, as matdiff prints dot(w, x)
            self.unify(ea.shape[0], ec.shape[0])
            return self.apply(b.dot, (ea, ec), (sa, sc))
        if (na == 1 and ra and (nc == 2 or (nc == 1 and not rc))) or \
                (na == 2 and (nc == 2 or (nc == 1 and not rc))):
            self.unify(ea.shape[-1], ec.shape[0])
            return _wrap(self.apply(b.matmul, (ea, ec), (sa, sc)), ra)
        what = "side by side" if op == "jux" else "'·'"
        raise self.error(
            f"a {_what(ea, ra)} and a {_what(ec, rc)} {what}: the left factor's columns "
            "must match the right factor's rows (vectors are columns: xᵀy is the dot "
            "product, xyᵀ the outer product; ⊙ is the element-wise product)", sa, sc)

    def post(self, node: Node, a: Any) -> Any:
        e, row = _un(a)
        span = node.children[0].span
        r = len(e.shape)
        op = node.value
        if op == "T":
            if r == 1:
                return e if row else Row(e)
            return self.apply(b.transpose, (e,), [span]) if r == 2 else e
        if op == "-T":
            if r == 1:
                raise self.error(f"'⁻ᵀ' of a {_what(e, row)}: ⁻ᵀ is the inverse of a "
                                 "square matrix, transposed", span, node.op_spans[0])
            if r == 0:
                return self.apply(b.power, (e, -1.0), [span])
            return self.apply(b.transpose, (self.apply(b.inv, (e,), [span]),), [span])
        k = int(op)
        if r == 2:
            return self.matrix_power(e, k, span, node.op_spans[0])
        return _wrap(self.apply(b.power, (e, float(k)), [span]), row)

    def matrix_power(self, a: Expr, k: int, span: Span, op: Span) -> Expr:
        if a.shape[0] != a.shape[1]:
            self.unify(a.shape[0], a.shape[1])
            raise self.error(
                f"a power of a matrix {shape_str(a.shape)}: the matrix power needs a square "
                "matrix (matdiff prints the element-wise power of a matrix A^⊙2)", span, op)
        if k == 0:
            return b.eye(a.shape[0])
        if abs(k) > 64:
            raise self.error("a matrix power must be between -64 and 64", span, op)
        base = self.apply(b.inv, (a,), [span]) if k < 0 else a
        out = base
        for _ in range(abs(k) - 1):
            out = b.matmul(out, base)
        return out

    def power(self, node: Node, a: Any, c: Any) -> Any:
        sa, sc = node.children[0].span, node.children[1].span
        ea, ra = _un(a)
        ec, _ = _un(c)
        if node.value == "^⊙" or len(ea.shape) < 2:
            return self.elementwise("^", a, c, sa, sc, b.power)
        k = _integer(ec)
        if not ec.shape and k is not None:
            return self.matrix_power(ea, k, sa, node.op_spans[0])
        raise self.error(
            f"'^' of a {_what(ea, ra)}: '^' of a matrix is its integer power; write ^⊙ "
            "for the element-wise power (A^⊙0.5)", sa, sc)

    def matrix_call(self, node: Node, spec: Any, args: list[Any], spans: list[Span],
                    axis_spans: tuple[Span, ...]) -> Any:
        fn = spec.name
        given = len(args) + len(axis_spans)
        if given not in spec.arities or (axis_spans and "axis" not in spec.params):
            raise ParseError(f"{fn} takes {spec.arity_text()}, got {given}", self.text,
                             [node.span])
        es = [_un(a)[0] for a in args]
        if axis_spans:
            s, e = axis_spans[0]
            digits = self.text[s:e].lstrip("-−")
            axis = -int(digits) if self.text[s] in "-−" else int(digits)
            return self.apply(spec.build, (es[0], axis), [spans[0]])
        if fn == "concat" and len({len(part.shape) for part in es}) == 1:
            # the parts of a concatenation share their other axes: an I among them
            # takes its dims from the others (concat(I, [zeros(n)]), concat(zeros(n, m), I))
            for part in es[1:]:
                self.unify_shapes(es[0].shape[1:], part.shape[1:])
        if len(es) == 2 and spec.params[1] == "axis":
            k = _integer(es[1])
            if k is None:
                raise ParseError(f"{fn}: the axis must be a whole number, like axis=0",
                                 self.text, [spans[1]])
            return self.apply(spec.build, (es[0], k), [spans[0]])
        if spec.fill == "matmul":  # dot(x, y): the dims must agree
            self.unify_shapes(es[0].shape, es[1].shape)
        if len(es) == 1 and isinstance(es[0], Const) and not es[0].shape:
            try:
                return spec.build(es[0])
            except MatdiffError:
                # a constant vector prints as its number (softmax(0)): read it as one,
                # its dim taken from where it is used
                self.guessed.append(node.children[0].span)
                es[0] = b.const(es[0].value, (self.fresh(node.children[0]),))
        if len(es) == 1 and len(es[0].shape) == 2:
            try:
                out = spec.build(es[0])
            except MatdiffError:
                # tr, det, diag, inv of a matrix of ones (1·1ᵀ) whose dims are not
                # known yet: a square matrix
                self.unify(*es[0].shape)
        if len(es) > 1 and any(self.is_fresh(d) for e in es for d in e.shape):
            try:
                spec.build(*es)
            except MatdiffError:
                # L_exp(X, I): the identity's dims are not printed, and this reader
                # does not take them from another argument of a matrix function
                raise ParseError(
                    f"cannot tell the dims of a constant here (an argument of {fn}): "
                    "matdiff prints a constant array as its number or as I, without its "
                    "dims; write it in numpy syntax (eye(n), matrix(0, m, n))",
                    self.text, list(spans)) from None
        out = self.apply(spec.build, tuple(es), spans)
        self.no_hidden_products(out, spans)
        if len(es) == 1 and out.shape == es[0].shape:  # softmax keeps a row a row
            return _wrap(out, _un(args[0])[1])
        return out

    def no_hidden_products(self, out: Expr, spans: Sequence[Span]) -> None:
        """A dim made of a constant's unknown dims (``vec(I)`` has ``n·n``, the ``n``
        not printed) cannot be unified by this reader: a ParseError that says so."""
        from ..expr.dims import DimPoly, dim_names

        for d in out.shape:
            if isinstance(d, DimPoly) and any(self.is_fresh(n) for n in dim_names(d)):
                raise ParseError(
                    "cannot tell the dims of a constant here (a Kronecker product or vec "
                    "of it): matdiff prints a constant array as its number or as I, "
                    "without its dims; write it in numpy syntax (eye(n), matrix(0, m, n))",
                    self.text, list(spans))

    def call(self, node: Node, args: list[Any]) -> Any:
        fn = node.value
        spans = [c.span for c in node.children]
        axis_spans = node.op_spans[1:]
        table = _matrix_functions()
        if fn in table:
            return self.matrix_call(node, table[fn], args, spans, axis_spans)
        if axis_spans:
            raise ParseError(f"{fn} takes no axis", self.text, list(axis_spans))
        row = FUNCTIONS.get(fn)
        if row is None:  # pragma: no cover - the parser knows only defined names
            raise UnknownFunctionError(f"unknown function {fn!r}", self.text, [node.span])
        if len(args) != row.arity:
            raise ParseError(f"{fn} takes {row.arity} argument{'s' if row.arity > 1 else ''}"
                             f", got {len(args)}", self.text, [node.span])
        if row.arity == 1:
            e, r = _un(args[0])
            return _wrap(self.apply(b.elementwise(fn), (e,), spans), r)
        out = args[0]
        es = [_un(a) for a in args]
        for (e1, _), (e2, _) in zip(es, es[1:], strict=False):
            if e1.shape and e2.shape:
                self.unify_shapes(e1.shape, e2.shape)
        rowmark = any(r for _, r in es)
        out = self.apply(b.elementwise(fn), tuple(e for e, _ in es), spans)
        return _wrap(out, rowmark)


def _integer(e: Expr) -> int | None:
    from ..expr.core import Const

    if isinstance(e, Const) and not e.shape and float(e.value).is_integer() and \
            abs(e.value) < 1e15:
        return int(e.value)
    return None


def _dims_of(e: Expr) -> set:
    from ..expr.core import topo_order

    out: set = set()
    for node in topo_order(e):
        out.update(d for d in node.shape if isinstance(d, str))
    return out


def parse_unicode(text: str, declared: Mapping[str, Shape]) -> tuple[Expr, dict[str, Shape]]:
    """``text`` in unicode syntax as an expression, and the shapes of the variables
    it names (``declared`` is the checked ``shapes=``).

    >>> e, used = parse_unicode("2N⁻¹Xᵀ(y − Xw)", {"X": ("N", "n"), "w": ("n",),
    ...                                            "y": ("N",), "b": ()})
    >>> e.shape, sorted(used)
    (('n',), ['X', 'w', 'y'])
    """
    names = _Names(declared)
    tree = unicode_tree(text, declared)
    bound: dict[str, Dim] = {}
    #: the dims of the shapes in play: where there is one, a 𝟏 or an I whose dim
    #: nothing shows has it
    only = {d for shape in declared.values() for d in shape}
    for _ in range(1000):
        builder = _Builder(text, declared, names, bound)
        try:
            out = _un(builder.build(tree))[0]
        except _Bind as found:
            bound[found.fresh] = found.dim
            continue
        except MatdiffError as err:
            if builder.guessed and isinstance(err, ShapeError):
                # logsumexp(0) of a matrix of zeros is a vector, read as of a vector
                # (a scalar): the shapes that then disagree are the guess's
                raise ParseError(
                    "cannot tell the dims of a constant here: matdiff prints a constant "
                    "array as its number, without its dims, and this one was read as a "
                    f"vector, which makes the shapes disagree ({err.message}); write it "
                    "in numpy syntax (matrix(0, m, n))", text,
                    [builder.guessed[0], *err.spans]) from None
            if _FRESH not in err.message:
                raise
            # a constant's unprinted dims met a rule that cannot bind them (a block
            # of I's dims add: 3 + 3 or 2 + 4): the message names no internal dim
            raise ParseError(
                "cannot tell the dims of a constant here: matdiff prints a constant "
                "array as its number or as I, without its dims; write it in numpy "
                "syntax (eye(n), matrix(0, m, n))", text, err.spans or [tree.span]
            ) from None
        except RecursionError:
            raise LimitError(
                f"the expression is nested too deeply (the limit is {MAX_DEPTH} levels)",
                text, [tree.span]) from None
        left = [name for name in builder.made if builder.resolve(name) == name]
        if not left:
            break
        if len(only) == 1:
            # nothing around it shows the dim, but the shapes in play have one dim
            # only: it is that one (I/9, the derivative of x/9 by an x of shape (n,))
            bound[left[0]] = next(iter(only))
            continue
        span = builder.made[left[0]]
        word = text[span[0]:span[1]]
        what = "the identity" if word == "I" else "a unit vector" if word[:1] == "e" \
            else "the ones vector" if word == "1" else "a constant array"
        raise ParseError(
            f"cannot tell the dim of {word!r} ({what}) here: nothing it is added to or "
            "multiplied with shows it (matdiff prints a constant without its dims); "
            "write the expression where the dim shows (1ᵀx, A1, sI + A), or in numpy "
            "syntax (vector(1, n), eye(n))", text, [span])
    else:  # pragma: no cover - each round binds one dim
        raise LimitError("too many ones vectors and identities", text, [tree.span])
    if any(d.startswith(_FRESH) for d in _dims_of(out)):  # pragma: no cover
        raise ParseError("internal: a ones vector's dim was left open", text, [tree.span])
    used = {name: declared[name] for name in _var_names(tree)}
    return out, used


def _var_names(tree: Node) -> list[str]:
    from .tree import walk

    seen: list[str] = []
    for n in walk(tree):
        if n.kind == "var" and n.value not in seen:
            seen.append(n.value)
    return seen
