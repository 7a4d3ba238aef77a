"""matrixcalculus.org's input language (``syntax="matrixcalculus"``).

The text is read as it is typed on matrixcalculus.org:

* ``*`` is the matrix product (or a scalar's product with anything), ``/`` divides
  by a scalar, ``.*`` ``./`` ``.^`` are element-wise, ``^`` is the power of a scalar
  or a square matrix's integer power (``A^2`` is ``A*A``);
* ``'`` transposes, and vectors are columns: ``x'`` is a row vector, so ``x'*A*x``
  is a scalar, ``x*y'`` an outer product and ``x'*A`` a row vector;
* the functions are ``sum norm1 norm2 tr det logdet inv diag`` and the element-wise
  ``exp log sin cos tan arcsin arccos arctan tanh abs sign relu ...``;
  ``vector(c)`` and ``matrix(c)`` are constants that take their shape from where
  they are used.

matdiff's vectors are 1-D, so a row vector is a 1-D expression marked as a row
while the expression is built (:class:`Row`); the marks only decide what ``*``
means (``row * column`` is a dot product, ``column * row`` an outer product,
``row * matrix`` is ``vᵀA``) and are gone from the result.

>>> import matdiff as md
>>> f = md.parse("x'*A*x", syntax="matrixcalculus")
>>> f.shape, f.variables() == {"x": ("n",), "A": ("n", "n")}
((), True)
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import MatdiffError, ParseError, ShapeError
from ..expr import builders as b
from ..expr.core import Const, Expr, Shape, shape_str
from .grammar import literal_int
from .lexer import _HINTS, Token
from .table import ELEMENTWISE, FunctionSpec, FunctionTable, _matrix, _vector
from .tree import Node, fold_chain

__all__ = ["mc_tokens", "MC_BINDING", "MC_FUNCTION_TABLE", "Row", "build_mc", "mc_inputs"]

Span = tuple[int, int]

_SUM, _PRODUCT, _UNARY, _POWER = 10, 20, 30, 40

#: binding power of each binary operator token kind (``^`` and ``.^`` are ``**``)
MC_BINDING = {"+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, ".*": _PRODUCT,
              "./": _PRODUCT, "**": _POWER}

# a number; "2." is a number unless an element-wise operator follows (2.^x is 2 .^ x)
_NUMBER = re.compile(
    r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+|[0-9]+\.(?![*/^]))(?:[eE][+-]?[0-9]+)?")
_SINGLE = frozenset("+-*/^(),'")
_MC_HINTS = {
    **_HINTS,
    "@": "in matrixcalculus syntax '*' is the matrix product; '@' is numpy syntax",
    ".": "'.' starts an element-wise operator: .* ./ .^",
    # matrixcalculus.org's language has no stacking, indexing or slicing
    "[": "matrixcalculus.org's language has no stacking or indexing ([a, b], x[0]); "
         "use the numpy syntax (syntax='numpy') for them",
    "]": "matrixcalculus.org's language has no stacking or indexing ([a, b], x[0]); "
         "use the numpy syntax (syntax='numpy') for them",
    ":": "matrixcalculus.org's language has no slicing (x[1:]); use the numpy syntax "
         "(syntax='numpy') for it",
}

_E1 = ("expr",)

_MC_ROWS: list[FunctionSpec] = [
    FunctionSpec("sum", b.sum, _E1, (1,), "sum of all entries"),
    FunctionSpec("norm1", b.norm1, _E1, (1,), "1-norm: sum of absolute values"),
    FunctionSpec("norm2", b.norm2, _E1, (1,), "Euclidean (Frobenius) norm"),
    FunctionSpec("tr", b.tr, _E1, (1,), "trace of a square matrix"),
    FunctionSpec("diag", b.diag, _E1, (1,),
                 "diagonal matrix of a vector, or the diagonal of a matrix"),
    FunctionSpec("vector", _vector, ("number", "dim"), (1, 2),
                 "constant vector: vector(1) takes its shape from where it is used"),
    FunctionSpec("matrix", _matrix, ("number", "dim", "dim"), (1, 3),
                 "constant matrix: matrix(1) takes its shape from where it is used"),
]

#: the functions of matrixcalculus syntax by name
MC_FUNCTION_TABLE: Mapping[str, FunctionSpec] = FunctionTable(
    _MC_ROWS, lambda row: row.mc and row.arity == 1, lambda fn: fn.mc)


def mc_inputs(node: Node) -> tuple[Node, ...]:
    """The children of ``node`` that are expressions (not the dims of ``vector(1, n)``).

    >>> from matdiff.parse import parse_tree
    >>> len(mc_inputs(parse_tree("vector(1, n)", syntax="matrixcalculus")))
    1
    """
    if node.kind != "call":
        return node.children
    params = MC_FUNCTION_TABLE[node.value].params
    return tuple(a for a, kind in zip(node.children, params, strict=False)
                 if kind in ("expr", "number"))


def mc_tokens(text: str) -> Iterator[Token]:
    """The tokens of ``text`` in matrixcalculus syntax, one by one.

    ``^`` and ``.^`` are both of kind ``"**"`` (their text tells them apart).

    >>> [(t.kind, t.text) for t in mc_tokens("x.^2'")][:3]
    [('name', 'x'), ('**', '.^'), ('num', '2')]
    """
    from .lexer import check_text

    return _scan(check_text(text))


def _scan(text: str) -> Iterator[Token]:
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            m = _NUMBER.match(text, i)
            if m is None or not m.group():  # pragma: no cover - a digit always matches
                raise ParseError("invalid number", text, [(i, i + 1)])
            j = m.end()
            if j < n and (text[j].isalnum() or text[j] == "_"):
                k = j
                while k < n and (text[k].isalnum() or text[k] == "_"):
                    k += 1
                raise ParseError(
                    f"invalid number {text[i:k]!r}: to multiply, write "
                    f"{text[i:j]}*{text[j:k]}", text, [(i, k)])
            yield Token("num", text[i:j], i, j)
            i = j
            continue
        if c.isalpha() or c == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            if text.startswith("__", i):
                raise ParseError("names starting with '__' are not allowed", text, [(i, j)])
            yield Token("name", text[i:j], i, j)
            i = j
            continue
        if c == "." and i + 1 < n and text[i + 1] in "*/^":
            op = text[i:i + 2]
            yield Token("**" if op == ".^" else op, op, i, i + 2)
            i += 2
            continue
        if c == "*" and text.startswith("**", i):
            raise ParseError("'**' is not an operator in matrixcalculus syntax: write ^ "
                             "(or .^ element-wise)", text, [(i, i + 2)])
        if c in _SINGLE:
            yield Token("**" if c == "^" else c, c, i, i + 1)
            i += 1
            continue
        hint = _MC_HINTS.get(c)
        msg = f"unexpected character {c!r}" + (f": {hint}" if hint else "")
        raise ParseError(msg, text, [(i, i + 1)])
    yield Token("end", "", n, n)


# ====================================================================== building
@dataclass(frozen=True)
class Row:
    """A 1-D expression that is a row vector (``x'``) while an expression is built."""

    expr: Expr


def _un(v: Any) -> tuple[Expr, bool]:
    if isinstance(v, Row):
        return v.expr, True
    return v, False


def _wrap(e: Expr, row: bool) -> Any:
    return Row(e) if row and len(e.shape) == 1 else e


def _what(e: Expr, row: bool) -> str:
    r = len(e.shape)
    if r == 0:
        return "scalar"
    if r == 1:
        return f"{'row' if row else 'column'} vector {shape_str(e.shape)}"
    return f"matrix {shape_str(e.shape)}"


def build_mc(tree: Node, text: str, shapes: Mapping[str, Shape],
             fills: Mapping[int, Shape]) -> Expr:
    """The expression of a matrixcalculus-syntax ``tree``.

    ``shapes`` gives every variable's shape and ``fills`` the shape of each
    ``vector(c)`` / ``matrix(c)`` call node (by ``id``), as shape inference found
    them.

    >>> from matdiff.parse import parse_tree
    >>> text = "x'*y"
    >>> build_mc(parse_tree(text, syntax="matrixcalculus"), text,
    ...          {"x": ("n",), "y": ("n",)}, {}).shape
    ()
    """
    return _MCBuilder(text, shapes, fills).build(tree)


class _MCBuilder:
    def __init__(self, text: str, shapes: Mapping[str, Shape], fills: Mapping[int, Shape]):
        self.text = text
        self.shapes = shapes
        self.fills = fills

    def build(self, root: Node) -> Expr:
        values: dict[int, Any] = {}
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, ready = stack.pop()
            if not ready:
                stack.append((node, True))
                stack.extend((c, False) for c in reversed(mc_inputs(node)))
                continue
            args = [values.pop(id(c)) for c in mc_inputs(node)]
            values[id(node)] = self.node(node, args)
        return _un(values[id(root)])[0]

    def apply(self, fn: Any, args: Sequence[Any], spans: Sequence[Span]) -> Any:
        try:
            return fn(*args)
        except MatdiffError as err:
            raise err.with_text(self.text, spans) from None

    def error(self, msg: str, *spans: Span) -> ShapeError:
        return ShapeError(msg, self.text, list(spans))

    def node(self, node: Node, args: list[Any]) -> Any:
        kind = node.kind
        if kind == "num":
            return b.const(node.value)
        if kind == "name":
            return self.apply(b.var, (node.value, *self.shapes[node.value]), [node.span])
        if kind == "unary":
            if node.value == "+":
                return args[0]
            e, row = _un(args[0])
            return _wrap(b.neg(e), row)
        if kind == "transpose":
            e, row = _un(args[0])
            if len(e.shape) == 1:
                return e if row else Row(e)
            return b.transpose(e)
        if kind == "power":
            return self.power(node, args[0], args[1])
        if kind == "chain":
            return fold_chain(node, args, self.binary)
        if kind == "call":
            return self.call(node, args)
        raise AssertionError(f"unknown node kind {kind}")  # pragma: no cover

    def binary(self, op: str, a: Any, c: Any, sa: Span, sc: Span) -> Any:
        ea, ra = _un(a)
        ec, rc = _un(c)
        na, nc = len(ea.shape), len(ec.shape)
        if op == "*":
            if na == 0 or nc == 0:
                return _wrap(self.apply(b.mul, (ea, ec), (sa, sc)), ra or rc)
            if na == 1 and nc == 1 and not ra and rc:
                return self.apply(b.outer, (ea, ec), (sa, sc))
            if (na == 1 and ra and (nc == 2 or (nc == 1 and not rc))) or \
                    (na == 2 and (nc == 2 or (nc == 1 and not rc))):
                out = self.apply(b.matmul, (ea, ec), (sa, sc))
                return _wrap(out, ra)
            raise self.error(
                f"'*' of a {_what(ea, ra)} and a {_what(ec, rc)}: the left operand's "
                "columns must match the right operand's rows (vectors are columns; "
                "use ' to transpose, or .* for the element-wise product)", sa, sc)
        if op == "/":
            if nc != 0:
                raise self.error(
                    f"'/' divides by a scalar, not a {_what(ec, rc)}: use ./ for the "
                    "element-wise quotient", sa, sc)
            return _wrap(self.apply(b.div, (ea, ec), (sa, sc)), ra)
        # element-wise: + - .* ./ (and .^)
        if op in "+-" and (na == 0) != (nc == 0):
            raise self.error(
                f"'{op}' of a {_what(ea, ra)} and a {_what(ec, rc)}: a scalar is added to a "
                "vector or a matrix as vector(c) or matrix(c)", sa, sc)
        if na and nc and ra != rc:
            raise self.error(
                f"'{op}' of a {_what(ea, ra)} and a {_what(ec, rc)}: a row vector and a "
                "column vector do not match (transpose one with ')", sa, sc)
        if na and nc and na != nc:
            raise self.error(
                f"'{op}' of a {_what(ea, ra)} and a {_what(ec, rc)}: the shapes differ",
                sa, sc)
        fn = {"+": b.add, "-": b.sub, ".*": b.mul, "./": b.div, ".^": b.power}[op]
        return _wrap(self.apply(fn, (ea, ec), (sa, sc)), ra or rc)

    def power(self, node: Node, a: Any, c: Any) -> Any:
        base, exponent = node.children
        sa, sc = base.span, exponent.span
        if node.value == ".^":
            return self.binary(".^", a, c, sa, sc)
        ea, ra = _un(a)
        ec, rc = _un(c)
        if not ea.shape and not ec.shape:
            return self.apply(b.power, (ea, ec), (sa, sc))
        k = literal_int(exponent, self.text)
        if len(ea.shape) == 2 and not ec.shape and k is not None:
            if ea.shape[0] != ea.shape[1]:
                raise self.error(
                    f"'^' of a {_what(ea, ra)}: a matrix power needs a square matrix", sa)
            return self.matrix_power(ea, k, sa)
        raise self.error(
            f"'^' of a {_what(ea, ra)} and a {_what(ec, rc)}: '^' is the power of a "
            "scalar, or a square matrix's integer power; use .^ for the element-wise "
            "power", sa, sc)

    def matrix_power(self, a: Expr, k: int, span: Span) -> Expr:
        if k == 0:
            return b.eye(a.shape[0])
        if abs(k) > 64:
            raise self.error("a matrix power must be between -64 and 64", span)
        base = b.inv(a) if k < 0 else a
        out = base
        for _ in range(abs(k) - 1):
            out = b.matmul(out, base)
        return out

    def call(self, node: Node, args: list[Any]) -> Any:
        name = node.value
        if name in ("vector", "matrix"):
            shape = self.fills.get(id(node))
            spec = MC_FUNCTION_TABLE[name]
            value = args[0]
            if not isinstance(value, Const) or value.shape:
                # a number that does not fold to a finite constant (1/0 stays 1/0)
                raise ParseError(f"{name}: the fill value must be a finite number, like "
                                 f"{name}(1)", self.text, [node.children[0].span])
            if len(node.children) > 1:
                dims = [c.value if c.kind == "name" else literal_int(c, self.text)
                        for c in node.children[1:]]
                return self.apply(spec.build, (value.value, *dims), [node.span])
            if shape is None:
                src = self.text[node.span[0]:node.span[1]]
                like = "n" if name == "vector" else "m, n"
                raise ParseError(
                    f"cannot tell the shape of {src} here: write its dims, like "
                    f"{src[:-1]}, {like})", self.text, [node.span])
            return b.const(value.value, shape)
        e, row = _un(args[0])
        span = node.children[0].span
        spec = MC_FUNCTION_TABLE[name]
        out = self.apply(spec.build, (e,), [span])
        if name in ELEMENTWISE:
            return _wrap(out, row)
        return out
