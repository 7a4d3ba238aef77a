"""Syntax tree -> :class:`~matdiff.expr.Expr`, through the builders only.

Two steps: :func:`variable_shapes` finds the shape of every variable the tree
uses (today from the ``shapes`` the caller declares; shape inference from usage
plugs in here), then :func:`build_expr` builds the expression bottom-up without
recursion.  A :class:`~matdiff.errors.ShapeError` a builder raises is given the
text and the spans of the operands, so it prints carets under both sides.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..errors import MatdiffError, ParseError, ShapeError
from ..expr import builders as b
from ..expr.builders import _broadcast_shape  # the rule b.add and b.sub apply
from ..expr.core import Const, Dim, Expr, Shape, shape_str, split_shape
from .grammar import dim_value, literal_int, power_literal
from .table import FUNCTION_TABLE, Filled
from .tree import Node, fold_chain

__all__ = ["declared_shapes", "declared_structures", "variable_nodes", "variable_shapes",
           "build_expr"]

Span = tuple[int, int]
Value = Any  # Expr | Filled

#: a run of + and - longer than this is summed as a balanced tree (fast for long sums)
_BALANCE_FROM = 16

_BINARY = {
    "+": b.add, "-": b.sub, "*": b.mul, "/": b.div, "@": b.matmul,
    "**": b.power, "^": b.power,
}
_MATMUL_LIKE = ("@",)


def declared_shapes(shapes: Mapping[str, Sequence[Dim]] | None) -> dict[str, Shape]:
    """Check a ``shapes`` mapping (name -> tuple of dims) and return it normalised.

    >>> declared_shapes({"x": ["n"], "A": ("n", 3), "b": ()})
    {'x': ('n',), 'A': ('n', 3), 'b': ()}

    A square matrix may end in a structure tag (``("n", "n", "symmetric")``, also
    ``"spd"`` and ``"diagonal"``): the dims are returned here, the tag by
    :func:`declared_structures`.
    """
    if shapes is None:
        return {}
    if not isinstance(shapes, Mapping):
        raise ShapeError(
            "shapes must be a dict mapping each variable's name to a tuple of dims, like "
            f"{{'x': ('n',), 'A': ('n', 'n'), 'b': ()}}, not {type(shapes).__name__}"
        )
    out: dict[str, Shape] = {}
    for name, dims in shapes.items():
        if not isinstance(name, str):
            raise ShapeError(f"shapes: a variable's name must be a string, not {name!r}")
        if not isinstance(dims, (tuple, list)):
            raise ShapeError(
                f"shapes[{name!r}] must be a tuple of dims, like ('n',) for a vector, "
                f"('m', 'n') for a matrix or () for a scalar, not {dims!r}"
            )
        try:
            out[name] = split_shape(dims)[0]
        except ShapeError as err:
            raise ShapeError(f"shapes[{name!r}]: {err.message}") from None
    return out


def declared_structures(shapes: Mapping[str, Sequence[Dim]] | None) -> dict[str, str]:
    """The structures that ``shapes`` gives, by name: a trailing tag
    ``"symmetric"``, ``"spd"`` or ``"diagonal"`` on a square matrix (checked as
    :func:`declared_shapes` checks the dims).

    >>> declared_structures({"S": ("n", "n", "symmetric"), "x": ("n",)})
    {'S': 'symmetric'}
    """
    declared_shapes(shapes)  # the checks and their messages
    out: dict[str, str] = {}
    for name, dims in (shapes or {}).items():
        structure = split_shape(dims, name)[1]
        if structure:
            out[name] = structure
    return out


def variable_nodes(tree: Node) -> Iterator[Node]:
    """The ``name`` nodes that are variables (not the dims of ``eye(n)``, ...).

    >>> from matdiff.parse import parse_tree
    >>> [nd.value for nd in variable_nodes(parse_tree("eye(n) @ x + n"))]
    ['x', 'n']
    """
    stack = [tree]
    while stack:
        node = stack.pop()
        if node.kind == "name":
            yield node
            continue
        stack.extend(reversed(_inputs(node)))


def variable_shapes(tree: Node, text: str, declared: Mapping[str, Shape]) -> dict[str, Shape]:
    """The shape of each variable ``tree`` uses, by name.

    Declared shapes are used as they are; the others are inferred from how the
    variables are used (:func:`~matdiff.parse.infer.infer_shapes`), with
    matrixcalculus.org's convention (capital letter: matrix; a–g and Greek letters:
    scalar; h–z: vector) where usage leaves a rank open.

    >>> from matdiff.parse import parse_tree
    >>> text = "x @ A @ x"
    >>> variable_shapes(parse_tree(text), text, {"x": ("n",), "A": ("n", "n"), "b": ()})
    {'x': ('n',), 'A': ('n', 'n')}
    >>> variable_shapes(parse_tree(text), text, {})
    {'x': ('n',), 'A': ('n', 'n')}
    """
    out: dict[str, Shape] = {}
    missing = False
    for node in variable_nodes(tree):
        name = node.value
        if name in declared:
            out[name] = declared[name]
        elif name in FUNCTION_TABLE:
            raise ParseError(
                f"{name!r} is a function: call it, like {name}(x)", text, [node.span]
            )
        else:
            missing = True
    if not missing:
        return out
    from .infer import infer_shapes

    return infer_shapes(tree, text, declared).variables


def _inputs(node: Node) -> tuple[Node, ...]:
    """The children that are built as expressions (a call's dims and axes are not)."""
    if node.kind != "call":
        return node.children
    params = FUNCTION_TABLE[node.value].params
    out: list[Node] = []
    for a, kind in zip(node.children, params, strict=False):
        if kind in ("expr", "number"):
            out.append(a)
        elif kind == "blocks":  # block([[A, B], [C, D]]): the cells
            out.extend(c for row in a.children for c in row.children)
    return tuple(out)


def build_expr(tree: Node, text: str, shapes: Mapping[str, Shape]) -> Expr:
    """The expression of ``tree``, with ``shapes`` giving every variable's shape.

    >>> from matdiff.parse import parse_tree
    >>> build_expr(parse_tree("sum(x) + 1"), "sum(x) + 1", {"x": ("n",)}).shape
    ()
    """
    return _Builder(text, shapes).build(tree)


class _Builder:
    def __init__(self, text: str, shapes: Mapping[str, Shape]):
        self.text = text
        self.shapes = shapes

    def build(self, root: Node) -> Expr:
        values: dict[int, Value] = {}
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:  # post-order without recursion
            node, ready = stack.pop()
            if not ready:
                stack.append((node, True))
                stack.extend((c, False) for c in reversed(_inputs(node)))
                continue
            args = [values.pop(id(c)) for c in _inputs(node)]
            values[id(node)] = self.node(node, args)
        out = values[id(root)]
        if isinstance(out, Filled):
            raise self.unknown_fill(out)
        return out

    # ------------------------------------------------------------ errors
    def apply(self, fn: Any, args: Sequence[Any], spans: Sequence[Span]) -> Value:
        """``fn(*args)``; an error from the builder gets the text and ``spans``."""
        try:
            return fn(*args)
        except MatdiffError as err:
            raise err.with_text(self.text, spans) from None

    def unknown_fill(self, p: Filled) -> ParseError:
        return ParseError(
            f"cannot tell the shape of {p.source} here: write its dims, like {p.example()}",
            self.text, [p.span],
        )

    # ------------------------------------------------------------ nodes
    def node(self, node: Node, args: list[Value]) -> Value:
        kind = node.kind
        if kind == "num":
            return b.const(node.value)
        if kind == "name":
            return self.apply(b.var, (node.value, *self.shapes[node.value]), [node.span])
        if kind == "unary":
            a = args[0]
            if node.value == "+":
                return a
            if isinstance(a, Filled):
                return replace(a, value=-a.value)
            return b.neg(a)
        if kind == "transpose":
            a = args[0]
            if isinstance(a, Filled):
                return a
            return self.apply(b.transpose, (a,), [node.children[0].span])
        if kind == "power":
            base, exponent = node.children
            return self.binary(node.value, args[0], args[1], base.span, exponent.span)
        if kind == "chain":
            return self.chain(node, args)
        if kind == "call":
            return self.call(node, args)
        if kind == "stack":
            return self.stack(node, args)
        if kind == "index":
            if isinstance(args[0], Filled):
                raise self.unknown_fill(args[0])
            return self.apply(b.getitem, (args[0], node.value),
                              [node.children[0].span, *node.op_spans])
        raise AssertionError(f"unknown node kind {kind}")  # pragma: no cover

    def stack(self, node: Node, args: list[Value]) -> Expr:
        """``[a, b, …]``; parts of different shapes get carets under the first part
        and the first that differs."""
        spans = [c.span for c in node.children]
        for a in args:
            if isinstance(a, Filled):
                raise self.unknown_fill(a)
        k = next((k for k, a in enumerate(args) if a.shape != args[0].shape), 0)
        return self.apply(b.stack, (list(args),), [spans[0], spans[k]] if k else spans)

    def binary(self, op: str, a: Value, c: Value, sa: Span, sc: Span,
               fn: Any = None, mode: str = "elementwise") -> Expr:
        if op in _MATMUL_LIKE:
            mode = "matmul"
        if isinstance(a, Filled) or isinstance(c, Filled):
            a, c = self.fill(op, a, c, sa, sc, mode)
        return self.apply(fn or _BINARY[op], (a, c), (sa, sc))

    def fill(self, op: str, a: Value, c: Value, sa: Span, sc: Span,
             mode: str) -> tuple[Expr, Expr]:
        """Give ``vector(c)`` / ``matrix(c)`` the shape the other operand implies."""
        if isinstance(a, Filled) and isinstance(c, Filled):
            raise ParseError(
                f"cannot tell the shapes of {a.source} and {c.source}: write their dims, "
                f"like {a.example()}", self.text, [a.span, c.span],
            )
        left = isinstance(a, Filled)
        p, e, se = (a, c, sc) if left else (c, a, sa)
        if mode == "elementwise" and len(e.shape) == p.rank:
            r = p.resolve(e.shape)
        elif mode == "matmul" and p.rank == 1 and len(e.shape) >= 1:
            r = p.resolve((e.shape[0] if left else e.shape[-1],))
        else:
            raise ParseError(
                f"cannot tell the shape of {p.source} from the other operand of '{op}', of "
                f"shape {shape_str(e.shape)}: write its dims, like {p.example()}",
                self.text, [p.span, se],
            )
        return (r, c) if left else (a, r)

    def chain(self, node: Node, args: list[Value]) -> Expr:
        if len(args) > _BALANCE_FROM and node.value[0] in "+-":
            return self.long_sum(node, args)
        return fold_chain(node, args, self.binary)

    def long_sum(self, node: Node, args: list[Value]) -> Expr:
        """``t0 ± t1 ± ...`` for many terms: the shapes are checked left to right, as a
        chain of ``+`` would check them, then the terms are added as a balanced tree
        (adding one term at a time to a long sum costs time quadratic in its length).

        The check is the builders' broadcasting rule on the shapes alone (building a
        sum of stand-ins per term cost more than the sum itself), and equal operands
        are negated, and equal pairs added, once: a run of one term (``x - x - …``)
        makes the same pairs at every level of the tree."""
        ops = node.value
        spans = [c.span for c in node.children]
        start = spans[0][0]
        terms = list(args)
        acc: Value = terms[0]
        for k, op in enumerate(ops, 1):
            left_span = (start, spans[k - 1][1])
            a, t = acc, terms[k]
            if isinstance(a, Filled) or isinstance(t, Filled):
                a, t = self.fill(op, a, t, left_span, spans[k], "elementwise")
                if k == 1:
                    terms[0] = a
                terms[k] = t
            # the shape only: a stand-in of the sum so far
            acc = Const(0.0, self.apply(_broadcast_shape, (a, t, op), (left_span, spans[k])))
        negated: dict[int, Expr] = {}
        signed = [terms[0]]
        for op, t in zip(ops, terms[1:], strict=True):
            if op == "-":
                if id(t) not in negated:
                    negated[id(t)] = b.neg(t)
                t = negated[id(t)]
            signed.append(t)
        while len(signed) > 1:
            sums: dict[tuple[int, int], Expr] = {}
            pairs = []
            for i in range(0, len(signed) - 1, 2):
                key = (id(signed[i]), id(signed[i + 1]))
                if key not in sums:
                    sums[key] = self.apply(b.add, (signed[i], signed[i + 1]), [node.span])
                pairs.append(sums[key])
            if len(signed) % 2:
                pairs.append(signed[-1])
            signed = pairs
        return signed[0]

    def call(self, node: Node, args: list[Value]) -> Value:
        spec = FUNCTION_TABLE[node.value]
        built = iter(args)
        values: list[Any] = []
        for arg, kind in zip(node.children, spec.params, strict=False):
            if kind == "expr":
                values.append(next(built))
            elif kind == "number":
                values.append(self.number(spec.name, next(built), arg))
            elif kind == "axis":
                values.append(literal_int(arg, self.text))
            elif kind == "blocks":
                rows = [[next(built) for _ in row.children] for row in arg.children]
                for cell in (c for r in rows for c in r):
                    if isinstance(cell, Filled):
                        raise self.unknown_fill(cell)
                values.append(rows)
            elif kind == "power":
                values.append(power_literal(spec.name, arg, self.text))
            else:  # dim
                values.append(dim_value(arg, self.text))
        spans = [a.span for a in node.children]
        fills = [v for v in values if isinstance(v, Filled)]
        if fills:
            if spec.fill is None or len(values) != 2:
                raise self.unknown_fill(fills[0])
            mode = spec.fill
            return self.binary(spec.name, values[0], values[1], spans[0], spans[1],
                               fn=spec.build, mode=mode)
        out = self.apply(spec.build, values, spans)
        if isinstance(out, Filled):
            s, e = node.span
            out = replace(out, span=node.span, source=self.text[s:e])
        return out

    def number(self, fn: str, value: Value, arg: Node) -> float:
        if isinstance(value, Const) and not value.shape:
            return value.value
        raise ParseError(  # pragma: no cover - the grammar allows numbers only
            f"{fn}: the fill value must be a number, like {fn}(1)", self.text, [arg.span]
        )
