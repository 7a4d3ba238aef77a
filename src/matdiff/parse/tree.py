"""The syntax tree the parser produces, before any :class:`~matdiff.expr.Expr` is built.

Parsing is two steps: text -> :class:`Node` tree (syntax only, with the span of
every subexpression), then tree -> ``Expr`` (shapes and builders).  Keeping the
tree lets a step between the two see the whole expression at once (shape
inference from usage), and lets another surface syntax reuse the second step.

Left-associative runs of one precedence level are one ``chain`` node with many
operands (``a + b - c`` is one node), so the tree of a long sum stays shallow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Node", "walk"]

Span = tuple[int, int]


@dataclass(frozen=True, eq=False, slots=True)
class Node:
    """One subexpression of the text.

    ``kind`` is one of

    * ``"num"``: a number; ``value`` is its float value, ``op_spans[0]`` the span of
      the literal itself (``span`` may include parentheses around it);
    * ``"name"``: a variable (or a dim, as an argument of ``eye``); ``value`` the name;
    * ``"unary"``: ``value`` is ``"-"`` or ``"+"``, one child;
    * ``"power"``: ``base ** exponent``, two children;
    * ``"chain"``: ``children[0] op children[1] op ...``; ``value`` is the tuple of
      operators (``"+" "-"`` or ``"*" "/" "@"``), ``op_spans`` their spans;
    * ``"transpose"``: ``x.T`` or ``x'``, one child;
    * ``"call"``: ``value`` is the function name, ``children`` the arguments and
      ``op_spans[0]`` the span of the name.

    ``span`` covers the whole subexpression (with its parentheses, if any).
    """

    kind: str
    span: Span
    children: tuple[Node, ...] = ()
    value: Any = None
    op_spans: tuple[Span, ...] = ()

    def with_span(self, span: Span) -> Node:
        """The same node covering ``span`` (to include parentheses).

        >>> Node("name", (1, 2), value="x").with_span((0, 3)).span
        (0, 3)
        """
        return Node(self.kind, span, self.children, self.value, self.op_spans)


def walk(root: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children, left to right (no recursion).

    >>> from matdiff.parse import parse_tree
    >>> [n.kind for n in walk(parse_tree("-x + 2"))]
    ['chain', 'unary', 'name', 'num']
    """
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def fold_chain(node: Node, args: Sequence[Any], binary: Callable[..., Any]) -> Any:
    """A ``chain`` node's ``a op b op c …`` folded from the left:
    ``binary(op, acc, arg, left_span, arg_span)``, where ``left_span`` runs from the
    chain's start to the end of the term folded in last (an error about ``acc`` puts
    its carets under the whole left side).  The builder and both shape inferences
    fold chains this way."""
    spans = [c.span for c in node.children]
    acc = args[0]
    for k, op in enumerate(node.value, 1):
        acc = binary(op, acc, args[k], (spans[0][0], spans[k - 1][1]), spans[k])
    return acc
