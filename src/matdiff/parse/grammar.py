"""The numpy syntax: tokens -> :class:`~matdiff.parse.tree.Node` tree.

A hand-written precedence-climbing (Pratt) parser; the text is never ``eval``-ed.
Precedence, low to high (as in Python)::

    + -            binary, left to right
    * / @          binary, left to right
    - +            unary (so -x**2 is -(x**2), and 2**-1 is allowed)
    ** ^           right to left; the exponent may itself be signed
    .T ' [...]     postfix transpose, indexing and slicing (x[0], X[:, 1], x[1:-1:2])
    f(...) (...)   calls, parentheses and stacks ([a, b], [[a, b], [c, d]])

Left-associative runs are parsed with loops (one ``chain`` node for ``a+b+c+...``),
so only parentheses, calls, unary signs and powers nest; they are limited to
:data:`MAX_DEPTH` levels, which keeps the recursion far from Python's limit.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from ..errors import LimitError, ParseError, UnknownFunctionError
from .lexer import Token, iter_tokens, show
from .table import FUNCTION_TABLE, FunctionSpec
from .tree import Node, walk

__all__ = ["parse_tree", "MAX_DEPTH", "literal_int", "dim_value"]

#: the deepest nesting of parentheses, calls, unary signs and powers accepted
MAX_DEPTH = 200

_SUM, _PRODUCT, _UNARY = 10, 20, 30
_POWER = 40
_BINDING = {"+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, "@": _PRODUCT, "**": _POWER}
_OPERAND = "expected a number, a name or '('"
_MAX_INT_DIGITS = 18


def parse_tree(text: str, variables: Collection[str] = (), syntax: str = "numpy") -> Node:
    """The syntax tree of ``text`` (no shapes are needed, no ``Expr`` is built).

    ``variables`` only improves error messages (``x(2)`` where ``x`` is a variable).
    ``syntax`` is ``"numpy"`` (the default) or ``"matrixcalculus"`` (matrixcalculus.org's
    input language: ``.*`` ``./`` ``.^`` are element-wise, ``*`` is the matrix product;
    see :mod:`matdiff.parse.mc`).

    >>> t = parse_tree("-x**2 + A.T @ b")
    >>> t.kind, t.value, [c.kind for c in t.children]
    ('chain', ('+',), ['unary', 'chain'])
    >>> t.children[0].children[0].kind
    'power'
    """
    if syntax == "numpy":
        parser = _Parser(text, iter_tokens(text), variables)
    elif syntax == "matrixcalculus":
        from .mc import MC_BINDING, MC_FUNCTION_TABLE, mc_tokens

        parser = _Parser(text, mc_tokens(text), variables, MC_BINDING, MC_FUNCTION_TABLE)
    else:
        raise ParseError(
            f"unknown syntax {syntax!r}: use 'numpy' or 'matrixcalculus'")
    try:
        return parser.parse()
    except RecursionError:  # MAX_DEPTH keeps well below the limit, unless called deep
        raise LimitError(
            f"the expression is nested too deeply (the limit is {MAX_DEPTH} levels)",
            text, [parser.peek().span],
        ) from None


def literal_int(node: Node, text: str) -> int | None:
    """The value of an integer literal, possibly signed (``-1``); ``None`` otherwise.

    >>> text = "sum(X, -1)"
    >>> literal_int(parse_tree(text).children[1], text)
    -1
    >>> literal_int(parse_tree("2.5"), "2.5") is None
    True
    """
    sign = 1
    if node.kind == "unary" and node.children[0].kind == "num":
        sign = -1 if node.value == "-" else 1
        node = node.children[0]
    if node.kind != "num":
        return None
    s, e = node.op_spans[0]
    raw = text[s:e]
    if not raw.isdigit() or not raw.isascii() or len(raw) > _MAX_INT_DIGITS:
        return None
    return sign * int(raw)


def power_literal(fn: str, node: Node, text: str) -> int:
    """The power of ``matrix_power(X, k)``: a whole number ``≥ 0`` written as a
    literal, else a :class:`ParseError` with a caret under it.

    >>> text = "matrix_power(X, 3)"
    >>> power_literal("matrix_power", parse_tree(text).children[1], text)
    3
    """
    k = literal_int(node, text)
    if k is None or k < 0:
        s, e = node.span
        hint = (" (a negative power is a power of the inverse: matrix_power(inv(X), k))"
                if k is not None else "")
        raise ParseError(f"{fn}: the power must be a whole number ≥ 0 written as a "
                         f"number, like {fn}(X, 3), not {text[s:e]!r}{hint}", text,
                         [node.span])
    return k


def dim_value(node: Node, text: str) -> str | int | None:
    """A dim written in the text: a name or a whole number; ``None`` otherwise.

    >>> dim_value(parse_tree("n"), "n"), dim_value(parse_tree("3"), "3")
    ('n', 3)
    >>> dim_value(parse_tree("n + 1"), "n + 1") is None
    True
    """
    if node.kind == "name":
        return node.value
    if node.kind == "num":
        return literal_int(node, text)
    return None


class TokenParser:
    """What the recursive-descent parsers of the syntaxes share: the current token
    (``peek``, ``advance``, through the subclass's ``_next``), errors with a caret, the
    nesting limit and the closing parenthesis.  A subclass sets ``text``, ``current``
    and ``open`` (the ``(`` not closed yet) and defines ``_next`` and ``unexpected``."""

    text: str
    current: Any
    open: list[Any]

    def _next(self) -> Any:
        raise NotImplementedError

    def unexpected(self, tok: Any, expected: str) -> ParseError:
        raise NotImplementedError

    def peek(self) -> Any:
        return self.current

    def advance(self) -> Any:
        tok = self.current
        if tok.kind != "end":
            self.current = self._next()
        return tok

    def error(self, message: str, *spans: tuple[int, int]) -> ParseError:
        return ParseError(message, self.text, list(spans))

    def deeper(self, depth: int, tok: Any) -> int:
        if depth >= MAX_DEPTH:
            raise LimitError(
                f"the expression is nested more than {MAX_DEPTH} levels deep (parentheses, "
                "calls, signs and powers count)", self.text, [tok.span],
            )
        return depth + 1

    def comma_list(self, opening: Any, part: Any, bracket: str = ")") -> tuple[list[Any], Any]:
        """The parts ``part()`` reads, separated by commas, up to the closing
        ``bracket`` of ``opening``: the parts and the closing token."""
        parts = []
        while True:
            parts.append(part())
            if self.peek().kind == ",":
                self.advance()
                continue
            return parts, self.close(opening, f"expected an operator, ',' or '{bracket}'",
                                     bracket)

    def close(self, opening: Any, expected: str, bracket: str = ")") -> Any:
        """The closing ``)`` (or ``]``) of ``opening``, else an error with a caret."""
        tok = self.peek()
        if tok.kind == bracket:
            return self.advance()
        if tok.kind == "end":
            first = "(" if bracket == ")" else "["
            raise self.error(f"'{first}' is never closed: expected '{bracket}' before the "
                             "end of input", opening.span)
        raise self.unexpected(tok, expected)


class _Parser(TokenParser):
    def __init__(self, text: str, tokens: Iterator[Token], variables: Collection[str],
                 binding: Mapping[str, int] | None = None,
                 table: Mapping[str, FunctionSpec] | None = None):
        self.binding: Mapping[str, int] = _BINDING if binding is None else binding
        self.table: Mapping[str, FunctionSpec] = FUNCTION_TABLE if table is None else table
        self.text = text
        self.tokens = tokens
        self.current = next(tokens)
        self.open: list[Token] = []  # '(' not closed yet
        self.variables = variables

    # ------------------------------------------------------------ tokens
    def _next(self) -> Token:
        return next(self.tokens)

    def unexpected(self, tok: Token, expected: str) -> ParseError:
        if tok.kind == ")" and not self.open:
            return self.error("unmatched ')'", tok.span)
        return self.error(f"unexpected {show(tok)}: {expected}", tok.span)

    # ------------------------------------------------------------ grammar
    def parse(self) -> Node:
        first = self.peek()
        if first.kind == "end":
            raise self.error(f"empty expression: {_OPERAND}", (0, 0))
        node = self.expr(0, 0)
        tok = self.peek()
        if tok.kind != "end":
            raise self.unexpected(tok, "expected an operator or the end of input")
        return node

    def expr(self, min_bp: int, depth: int) -> Node:
        """An expression of operators binding at least ``min_bp`` (precedence climbing)."""
        tok = self.advance()
        kind = tok.kind
        if kind in ("-", "+"):
            operand = self.expr(_UNARY, self.deeper(depth, tok))
            left = Node("unary", (tok.start, operand.span[1]), (operand,), kind, (tok.span,))
        elif kind == "num":
            left = Node("num", tok.span, (), self.number(tok), (tok.span,))
        elif kind == "name":
            if self.peek().kind == "(":
                left = self.call(tok, depth)
            else:
                left = Node("name", tok.span, (), tok.text)
        elif kind == "(":
            self.open.append(tok)
            inner = self.expr(0, self.deeper(depth, tok))
            end = self.close(tok, "expected an operator or ')'")
            self.open.pop()
            left = inner.with_span((tok.start, end.end))
        elif kind == "[":
            left = self.stack(tok, depth)
        elif kind == "end":
            raise self.error(f"unexpected end of input: {_OPERAND}", tok.span)
        else:
            raise self.unexpected(tok, _OPERAND)

        while True:
            tok = self.peek()
            kind = tok.kind
            if kind in (".T", "'"):  # postfix binds tightest
                self.advance()
                left = Node("transpose", (left.span[0], tok.end), (left,), tok.text, (tok.span,))
                continue
            if kind == "[":
                left = self.index(left, depth)
                continue
            bp = self.binding.get(kind)
            if bp is None or bp < min_bp:
                return left
            if bp == _POWER:  # right to left: the exponent is a signed power
                self.advance()
                exponent = self.expr(_UNARY, self.deeper(depth, tok))
                left = Node("power", (left.span[0], exponent.span[1]), (left, exponent),
                            tok.text, (tok.span,))
                continue
            # left to right: one chain node for the whole run, built in a loop
            terms, ops, spans = [left], [], []
            while self.binding.get(self.peek().kind) == bp:
                op = self.advance()
                terms.append(self.expr(bp + 1, depth))
                ops.append(op.kind)
                spans.append(op.span)
            left = Node("chain", (terms[0].span[0], terms[-1].span[1]), tuple(terms),
                        tuple(ops), tuple(spans))

    def stack(self, opening: Token, depth: int) -> Node:
        """``[a, b, …]``: the parts stacked along a new first axis (``stack``)."""
        inner = self.deeper(depth, opening)
        if self.peek().kind == "]":
            raise self.error("an empty '[ ]': a stack needs at least one part, like [a, b]",
                             (opening.start, self.advance().end))
        parts, end = self.comma_list(opening, lambda: self.expr(0, inner), "]")
        return Node("stack", (opening.start, end.end), tuple(parts), None, (opening.span,))

    def index(self, base: Node, depth: int) -> Node:
        """``x[key, …]``: each key a whole number or a slice ``start:stop:step`` (each
        part optional, each a whole number); ``value`` holds the keys as Python ints
        and slices, ``op_spans`` the span of each key."""
        opening = self.advance()
        inner = self.deeper(depth, opening)
        keys: list[Any] = []
        spans: list[tuple[int, int]] = []
        if self.peek().kind == "]":
            raise self.error("an empty index: write x[0], x[1:] or X[:, 0]",
                             (opening.start, self.advance().end))
        while True:
            start = self.peek().start
            parts: list[Any] = [None, None, None]
            colons = 0
            while True:
                if self.peek().kind not in (":", ",", "]"):
                    if colons > 2:
                        break
                    parts[colons] = self.key_number(self.expr(0, inner))
                if self.peek().kind != ":" or colons == 2:
                    break
                self.advance()
                colons += 1
            end = self.peek().start if self.peek().kind in (",", "]") else self.peek().end
            span = (start, max(start, self._last_end(end)))
            keys.append(parts[0] if colons == 0 else slice(*parts))
            spans.append(span)
            if self.peek().kind == ",":
                self.advance()
                continue
            close = self.close(opening, "expected an index, ':', ',' or ']'", "]")
            break
        return Node("index", (base.span[0], close.end), (base,), tuple(keys), tuple(spans))

    def _last_end(self, end: int) -> int:
        # the end of the key's text: the next token's start, less the spaces before it
        while end > 0 and self.text[end - 1].isspace():
            end -= 1
        return end

    def key_number(self, node: Node) -> int:
        """An index or a slice bound: a whole number, possibly signed."""
        value = literal_int(node, self.text)
        if value is not None:
            return value
        if node.kind == "num" or (node.kind == "unary" and node.children[0].kind == "num"):
            s, e = node.span
            raise self.error(f"an index must be a whole number, not {self.text[s:e]}",
                             node.span)
        raise self.error("an index must be a whole number, like 0 or -1 (indices that are "
                         "expressions are not part of the language)", node.span)

    def number(self, tok: Token) -> float:
        value = float(tok.text)
        if value in (float("inf"), float("-inf")):
            raise self.error(f"the number {show(tok)} is too large", tok.span)
        return value

    def call(self, name: Token, depth: int) -> Node:
        spec = self.table.get(name.text)
        if spec is None:
            raise self.unknown_function(name)
        opening = self.advance()
        inner = self.deeper(depth, opening)
        self.open.append(opening)
        args: list[Node] = []
        if self.peek().kind == ")":
            end = self.advance()
        else:
            args, end = self.comma_list(opening, lambda: self.expr(0, inner))
        self.open.pop()
        node = Node("call", (name.start, end.end), tuple(args), name.text, (name.span,))
        self.check_arguments(spec, node)
        return node

    def long_int(self, node: Node) -> bool:
        s, e = node.op_spans[0]
        return e - s > _MAX_INT_DIGITS and self.text[s:e].isdigit()

    def unknown_function(self, name: Token) -> UnknownFunctionError:
        text = name.text
        names = sorted(self.table)
        near = difflib.get_close_matches(text, names, n=3, cutoff=0.6)
        if text.lower() in self.table and text.lower() not in near:
            near.insert(0, text.lower())
        msg = f"unknown function {text!r}"
        if near:
            msg += "; did you mean " + (
                near[0] if len(near) == 1 else ", ".join(near[:-1]) + " or " + near[-1]
            ) + "?"
        elif text in self.variables:
            msg += f"; {text} is a variable: write {text} * (...) to multiply."
        else:
            msg += "."
        msg += " The functions are: " + ", ".join(names) + "."
        return UnknownFunctionError(msg, self.text, [name.span])

    def check_arguments(self, spec: FunctionSpec, node: Node) -> None:
        args = node.children
        if len(args) not in spec.arities:
            msg = f"{spec.name} takes {spec.arity_text()}, got {len(args)}"
            if len(args) > max(spec.arities):
                extra = args[max(spec.arities):]
                raise self.error(msg, (extra[0].span[0], extra[-1].span[1]))
            raise self.error(msg, node.span)
        for arg, kind in zip(args, spec.params, strict=False):
            if kind in ("axis", "dim") and arg.kind == "num" and self.long_int(arg):
                raise self.error(f"{spec.name}: the number is too large", arg.span)
            if kind == "axis" and literal_int(arg, self.text) is None:
                raise self.error(
                    f"{spec.name}: the axis must be a whole number, like 0 or -1", arg.span)
            if kind == "blocks" and not (arg.kind == "stack" and all(
                    r.kind == "stack" for r in arg.children)):
                raise self.error(f"{spec.name} takes a list of block rows, like "
                                 f"{spec.name}([[A, B], [C, D]])", arg.span)
            if kind == "blocks" and len({len(r.children) for r in arg.children}) > 1:
                raise self.error(f"{spec.name}: every block row needs the same number of "
                                 f"blocks", arg.span)
            if kind == "dim" and (dim_value(arg, self.text) is None):
                raise self.error(
                    f"{spec.name}: a dim must be a name or a whole number, like n or 3",
                    arg.span)
            if kind == "number" and any(
                    n.kind not in ("num", "unary", "power")
                    and not (n.kind == "chain" and "@" not in n.value) for n in walk(arg)):
                raise self.error(
                    f"{spec.name}: the fill value must be a number, like "
                    f"{spec.name}(1)", arg.span)
