"""Shape inference: every variable's rank and dims from how the text uses it.

Inference runs on the syntax tree, before any :class:`~matdiff.expr.Expr` is
built (builders compare dims by equality, so every dim must be decided first):

1. **Ranks.**  Each variable without a declared shape gets a list of ranks in
   order of preference: matrixcalculus.org's convention (a name starting with a
   capital letter is a matrix, with a–g or a Greek letter a scalar, with h–z a
   vector), changed by usage hints
   (a variable used as an exponent, or in ``a^b``, prefers to be a scalar; one
   passed straight to ``tr``, ``det``, ``inv`` or ``logdet`` a matrix; one that is
   transposed, ``x'``, is never a scalar).  The
   assignments of ranks are tried cheapest first (the number of steps away from
   each variable's first preference; on a tie the earlier variable moves first),
   and the first that type-checks wins.
2. **Dims.**  Type-checking one assignment is an abstract evaluation of the tree
   in which every dim is a unification variable: ``X @ w`` makes ``X``'s second
   dim the same as ``w``'s only dim, a declared dim or a number fixes its class.
   Two different fixed dims in one class are a conflict: a
   :class:`~matdiff.errors.ShapeError` with a caret under each use.
3. **Names.**  Dims that nothing fixed get readable names (``n``, ``m``, ``k``,
   ``p``, ``q``, ...; never one already used): vectors' dims first, then matrices'
   rows and columns, in order of appearance.

Declarations (``shapes=``) always win: a declared variable is never searched, and
its dims seed the unification, so partial declarations name the other dims.

>>> from matdiff.parse import parse_tree
>>> text = "X @ w + b"
>>> infer_shapes(parse_tree(text), text, {}).variables
{'X': ('m', 'n'), 'w': ('n',), 'b': ()}
>>> infer_shapes(parse_tree(text), text, {"b": ("N",)}).variables
{'X': ('N', 'n'), 'w': ('n',), 'b': ('N',)}
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ShapeError
from ..expr.core import Dim, Shape
from ..expr.functions import FUNCTIONS
from ..expr.matrix_functions import MATRIX_FUNCTIONS, MatrixFunction
from .grammar import dim_value, literal_int
from .table import FUNCTION_TABLE
from .tree import Node, fold_chain

__all__ = ["infer_shapes", "Inferred", "rank_preferences", "DIM_NAMES"]

Span = tuple[int, int]

#: the names given to inferred dims, in order (then n1, n2, ...)
DIM_NAMES = ("n", "m", "k", "p", "q", "r", "s", "t", "u", "v", "l", "d")

def _matrix_function(name: str) -> MatrixFunction | None:
    """The matrix function a call's name spells (its name, or matrixcalculus.org's)."""
    fn = MATRIX_FUNCTIONS.get(name)
    if fn is None:
        fn = next((f for f in MATRIX_FUNCTIONS.values() if f.mc == name), None)
    return fn


def _prefers_matrix(name: str) -> bool:
    """Whether a variable passed straight to function ``name`` prefers to be a matrix
    (the trace, and the matrix functions whose definitions say so)."""
    fn = _matrix_function(name)
    return name in ("tr", "matrix_power") or (fn is not None and fn.arg_rank == 2)

_MAX_TRIES = 2000
_MAX_WORK = 400_000  # tries x nodes


@dataclass
class Inferred:
    """The result of :func:`infer_shapes`.

    ``variables``: every variable's shape by name, in order of first appearance;
    ``fills``: the shape of each ``vector(c)`` / ``matrix(c)`` call node (by
    ``id``) whose dims are tied to a variable's or a written dim.
    """

    variables: dict[str, Shape]
    fills: dict[int, Shape] = field(default_factory=dict)


class _Conflict(Exception):
    pass


class _Check:
    """A definition's :class:`~matdiff.expr.matrix_functions.ShapeCheck` on the
    unification classes of one call, its errors under the argument's span."""

    def __init__(self, checker: Any, fn: str, spans: list[Span]) -> None:
        self.checker, self.fn, self.spans = checker, fn, spans
        self.span = spans[0]

    def _at(self, args: tuple) -> list[Span]:
        return [self.spans[k] for k in dict.fromkeys(args) if k < len(self.spans)]

    def square(self, dims: tuple) -> None:
        self.checker.square(self.fn, _Shape(dims), self.span)

    def at_least(self, dims: tuple, rank: int) -> None:
        if len(dims) < rank:
            raise self.checker.fail(f"{self.fn} needs a vector or a matrix, got a scalar",
                                    [self.span])

    def rank(self, dims: tuple, rank: int, arg: int = 0) -> None:
        if len(dims) != rank:
            what = {0: "a scalar", 1: "a vector", 2: "a matrix"}[rank]
            raise self.checker.fail(f"{self.fn} needs {what}, got shape "
                                    f"{self.checker.show(_Shape(dims))}", self._at((arg,)))

    def equal(self, a: int, b: int, what: str, args: tuple = (0, 1)) -> None:
        c = self.checker
        c.unify(a, b, lambda: (
            f"{self.fn}: {what} differ ({c.dims.value[c.dims.find(a)]} and "
            f"{c.dims.value[c.dims.find(b)]})"), self._at(args))

    def product(self, a: int, b: int) -> int:
        # the dim a·b: known now if both are, else named once a and b are
        return self.checker.dims.product(a, b)


# ====================================================================== union-find of dims
class _Dims:
    def __init__(self) -> None:
        self.parent: list[int] = []
        self.value: list[Dim | None] = []
        self.bound: list[Span | None] = []  # where a fixed value came from
        self.anchored: list[bool] = []  # tied to a variable's dim or a fixed value
        #: classes that are the product of two others (kron's m·p), named from theirs
        self.derived: dict[int, tuple[int, int]] = {}

    def product(self, a: int, c: int) -> int:
        """The class of the dim ``a·c`` (fixed now where both are)."""
        from ..expr.dims import dim_mul

        va, vc = self.value[self.find(a)], self.value[self.find(c)]
        if va is not None and vc is not None:
            return self.new(dim_mul(va, vc))
        d = self.new(anchored=True)
        self.derived[d] = (a, c)
        return d

    def new(self, value: Dim | None = None, bound: Span | None = None,
            anchored: bool = False) -> int:
        self.parent.append(len(self.parent))
        self.value.append(value)
        self.bound.append(bound)
        self.anchored.append(anchored or value is not None)
        return len(self.parent) - 1

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, c: int) -> bool:
        ra, rc = self.find(a), self.find(c)
        if ra == rc:
            return True
        va, vc = self.value[ra], self.value[rc]
        if va is not None and vc is not None and va != vc:
            return False
        if va is None:  # keep the fixed one as the root
            ra, rc = rc, ra
        self.parent[rc] = ra
        self.anchored[ra] = self.anchored[ra] or self.anchored[rc]
        return True


# ====================================================================== abstract shapes
@dataclass(frozen=True)
class _Shape:
    dims: tuple[int, ...]
    row: bool = False  # matrixcalculus syntax: a transposed (row) vector

    @property
    def rank(self) -> int:
        return len(self.dims)


_SCALAR = _Shape(())


def _is_constant(node: Node) -> bool:
    stack = [node]
    while stack:
        n = stack.pop()
        if n.kind == "name":
            return False
        stack.extend(n.children)
    return True


def variable_order(tree: Node, inputs: Any) -> list[Node]:
    """The variable ``name`` nodes of ``tree``, left to right."""
    out = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if node.kind == "name":
            out.append(node)
            continue
        stack.extend(reversed(inputs(node)))
    return out


def rank_preferences(name: str, hints: set[str]) -> dict[int, int]:
    """The ranks a variable may have, each with its cost (0: the convention's choice).

    The convention is matrixcalculus.org's letters: a name starting with a capital is
    a matrix, with a–g (or a Greek letter: λ, η) a scalar, with any other letter
    (h–z) a vector; usage changes it only where it must.

    >>> rank_preferences("A", set()), rank_preferences("x", set())
    ({2: 0, 0: 2, 1: 3}, {1: 0, 0: 1, 2: 2})
    >>> rank_preferences("b", set()), rank_preferences("x", {"matrix"})
    ({0: 0, 1: 1, 2: 2}, {2: 0, 1: 1, 0: 2})
    >>> rank_preferences("x", {"transposed"})
    {1: 0, 2: 2}
    """
    capital = name[:1].isupper()
    if "scalar" in hints or (_scalar_letter(name) and not hints):
        return {0: 0, 2: 1, 1: 2} if capital else {0: 0, 1: 1, 2: 2}
    if "matrix" in hints:
        return {2: 0, 1: 1, 0: 2}
    if capital:
        return {2: 0, 0: 2, 1: 3}
    if "transposed" in hints:  # x' is a row, never a scalar
        return {1: 0, 2: 2}
    return {1: 0, 0: 1, 2: 2}


def _scalar_letter(name: str) -> bool:
    """Whether the convention makes ``name`` a scalar: it starts with one of a–g or a
    small Greek letter."""
    c = name[:1]
    return ("a" <= c <= "g") or (c.islower() and not c.isascii())


def _hints(tree: Node, inputs: Any) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    stack = [tree]
    while stack:
        node = stack.pop()
        if node.kind == "power" and node.value != ".^":
            base, exponent = node.children
            if not _is_constant(exponent):
                for n in (base, exponent):
                    if n.kind == "name":
                        out.setdefault(n.value, set()).add("scalar")
        if node.kind == "power" and (node.value != ".^" or node.children[0].kind != "num"):
            exponent = node.children[1]
            if exponent.kind == "name":
                out.setdefault(exponent.value, set()).add("scalar")
        if node.kind == "transpose" and node.children[0].kind == "name":
            out.setdefault(node.children[0].value, set()).add("transposed")
        if node.kind == "call" and _prefers_matrix(node.value) and node.children \
                and node.children[0].kind == "name":
            out.setdefault(node.children[0].value, set()).add("matrix")
        stack.extend(inputs(node))
    return out


def _assignments(prefs: list[dict[int, int]]) -> Iterator[tuple[int, ...]]:
    """Rank assignments (one rank per variable), cheapest total cost first; on a tie
    the earlier variables move away from their first preference first.

    The order is that of (total cost, the variables' costs negated, variable by
    variable).  A choice is kept sparse, as the (variable, option) pairs away from
    the first preference, by variable, and its key as (total, the pairs' (variable,
    −cost), then a sentinel past every variable): costs counted from each
    variable's first preference order choices the same way, and compare as the
    dense tuples do.  Each choice has one parent, itself with its last pair one
    option lower (or gone), so no choice is met twice; the choices that add one
    variable at its second option are made lazily, the next one in the same group
    (same cost) when one is taken.  Dense tuples of every variable, and all of a
    choice's neighbours at once, cost time and memory quadratic in the number of
    variables (a 2,000-term sum took 24 s and gigabytes)."""
    options = [sorted(p.items(), key=lambda rc: rc[1]) for p in prefs]
    n = len(options)
    first = [o[0][0] for o in options]
    extra = [[c - o[0][1] for _, c in o] for o in options]
    groups: dict[int, list[int]] = {}  # second option's extra cost -> variables
    for i, e in enumerate(extra):
        if len(e) > 1:
            groups.setdefault(e[1], []).append(i)
    end = ((n, 0),)
    Pairs = tuple[tuple[int, int], ...]

    def push(total: int, sig: tuple, moved: Pairs, group: int | None) -> None:
        heapq.heappush(heap, (total, sig + end, moved, sig, group))

    def add_new(total: int, sig: tuple, moved: Pairs) -> None:
        # the next variable after the last one moved, at its second option, per group
        after = moved[-1][0] if moved else -1
        for d, members in groups.items():
            at = bisect.bisect_right(members, after)
            if at < len(members):
                j = members[at]
                push(total + d, sig + ((j, -d),), moved + ((j, 1),), d)

    heap: list = []
    push(0, (), (), None)
    while heap:
        total, _, moved, sig, group = heapq.heappop(heap)
        ranks = list(first)
        for i, k in moved:
            ranks[i] = options[i][k][0]
        yield tuple(ranks)
        if moved:
            i, k = moved[-1]
            if k + 1 < len(options[i]):  # the last variable one option further
                push(total - extra[i][k] + extra[i][k + 1],
                     sig[:-1] + ((i, -extra[i][k + 1]),), moved[:-1] + ((i, k + 1),), None)
            if group is not None:  # the next variable of the same group instead
                members = groups[group]
                at = bisect.bisect_right(members, i)
                if at < len(members):
                    j = members[at]
                    push(total, sig[:-1] + ((j, -group),), moved[:-1] + ((j, 1),), group)
        add_new(total, sig, moved)


def infer_shapes(tree: Node, text: str, declared: Mapping[str, Shape],
                 syntax: str = "numpy") -> Inferred:
    """Every variable's shape, from ``declared`` and from how ``tree`` uses it.

    Raises :class:`~matdiff.errors.ShapeError` with a caret under each of the two
    uses that conflict when no assignment of ranks fits.

    >>> from matdiff.parse import parse_tree
    >>> text = "x'*A*x"
    >>> infer_shapes(parse_tree(text, syntax="matrixcalculus"), text, {},
    ...              "matrixcalculus").variables
    {'x': ('n',), 'A': ('n', 'n')}
    """
    if syntax == "matrixcalculus":
        from .mc import mc_inputs as inputs
    else:
        from .build import _inputs as inputs
    occurrences = variable_order(tree, inputs)
    names = list(dict.fromkeys(n.value for n in occurrences))
    free = [n for n in names if n not in declared]
    hints = _hints(tree, inputs)
    prefs = [rank_preferences(n, hints.get(n, set())) for n in free]
    size = sum(1 for _ in _walk(tree, inputs))
    budget = max(8, min(_MAX_TRIES, _MAX_WORK // max(size, 1)))
    first_error: ShapeError | None = None
    plan = _post_order(tree, inputs)
    for tries, choice in enumerate(_assignments(prefs)):
        if tries >= budget:
            break
        ranks = dict(zip(free, choice, strict=True))
        checker = _Checker(text, syntax, declared, ranks, inputs, occurrences)
        try:
            checker.run(tree, plan)
        except ShapeError as err:
            if first_error is None:
                first_error = err
            continue
        return checker.result(names)
    assert first_error is not None
    raise first_error


def _post_order(root: Node, inputs: Any) -> list[tuple[Node, tuple[int, ...]]]:
    """The nodes, children first, each with the positions of its inputs: every try
    evaluates the same tree, so its order is found once, not once per try."""
    out: list[tuple[Node, tuple[int, ...]]] = []
    pos: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:  # post-order without recursion
        node, ready = stack.pop()
        if not ready:
            stack.append((node, True))
            stack.extend((c, False) for c in reversed(inputs(node)))
            continue
        out.append((node, tuple(pos.pop(id(c)) for c in inputs(node))))
        pos[id(node)] = len(out) - 1
    return out


def _walk(tree: Node, inputs: Any) -> Iterator[Node]:
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(inputs(node))


def _divide(d: Dim, k: int) -> Dim | None:
    """``d / k`` where it is a dim (``2·n / 2 = n``, ``4 / 2 = 2``), else ``None``."""
    from ..expr.dims import DimPoly, normal

    if k == 1:
        return d
    if isinstance(d, int):
        return d // k if d % k == 0 and d >= 0 else None
    if isinstance(d, DimPoly) and all(c % k == 0 for _, c in d.terms):
        return normal({m: c // k for m, c in d.terms})
    return None


# ====================================================================== the checker
class _Checker:
    """Abstract evaluation of a tree with one rank per variable."""

    def __init__(self, text: str, syntax: str, declared: Mapping[str, Shape],
                 ranks: Mapping[str, int], inputs: Any, occurrences: Sequence[Node] = ()):
        self.text = text
        self.occurrences = occurrences
        self.mc = syntax == "matrixcalculus"
        self.declared = declared
        self.ranks = ranks
        self.inputs = inputs
        self.dims = _Dims()
        self.vars: dict[str, _Shape] = {}
        self.fill_nodes: dict[int, _Shape] = {}
        #: dims that are sums or slices of others (concat, x[1:]), solved as their
        #: inputs become known: (kind, result class, input classes, data, span)
        self.pending: list[tuple] = []

    # ------------------------------------------------------------ driving
    def run(self, root: Node, plan: list | None = None) -> _Shape:
        """The shape of ``root`` (``plan``: its :func:`_post_order`, if known)."""
        values: list[_Shape] = []
        for node, kids in plan if plan is not None else _post_order(root, self.inputs):
            values.append(self.node(node, [values[k] for k in kids]))
        return values[-1]

    def result(self, names: list[str]) -> Inferred:
        self.settle(names)
        naming = self.name_dims(names)
        variables = {n: tuple(naming[self.dims.find(d)] for d in self.vars[n].dims)
                     for n in names}
        fills = {}
        for key, shape in self.fill_nodes.items():
            roots = [self.dims.find(d) for d in shape.dims]
            if all(self.dims.anchored[r] for r in roots):
                fills[key] = tuple(naming[r] for r in roots)
        return Inferred(variables, fills)

    def name_dims(self, names: list[str]) -> dict[int, Dim]:
        dims = self.dims
        naming: dict[int, Dim] = {}
        used = {str(v) for v in dims.value if v is not None} | set(names)
        pool = itertools.chain(DIM_NAMES, (f"n{i}" for i in itertools.count(1)))

        def fresh() -> str:
            for cand in pool:
                if cand not in used:
                    used.add(cand)
                    return cand
            raise AssertionError  # pragma: no cover

        for i in range(len(dims.parent)):
            r = dims.find(i)
            if dims.value[r] is not None:
                naming[r] = dims.value[r]  # type: ignore[assignment]
        products = {dims.find(d) for d in dims.derived}
        ordered = sorted(names, key=lambda n: (self.vars[n].rank != 1, self.vars[n].rank))
        for n in ordered:
            for d in self.vars[n].dims:
                r = dims.find(d)
                if r not in naming and r not in products:
                    naming[r] = fresh()
        self.name_products(naming, fresh)
        for i in range(len(dims.parent)):  # dims of constants tied to nothing
            r = dims.find(i)
            if r not in naming:
                naming[r] = fresh()
        return naming

    def name_products(self, naming: dict[int, Dim], fresh: Any) -> None:
        """Name each product class ``a·c`` from its factors' names (a class tied to a
        fixed dim must have that value)."""
        from ..expr.dims import dim_mul

        dims = self.dims

        def name(i: int) -> Dim:
            r = dims.find(i)
            if r not in naming:
                own = [k for k, ac in dims.derived.items() if dims.find(k) == r]
                if own:
                    a, c = dims.derived[own[0]]
                    naming[r] = dim_mul(name(a), name(c))
                else:
                    naming[r] = fresh()
            return naming[r]

        for k, (a, c) in dims.derived.items():
            value = dim_mul(name(a), name(c))
            if name(k) != value:
                raise ShapeError(f"cannot tell the dims: a Kronecker product or vec makes "
                                 f"{value} equal to {name(k)}; declare the variables' "
                                 "shapes (shapes={...})", self.text, [])

    # ------------------------------------------------------------ helpers
    def show(self, s: _Shape) -> str:
        parts = []
        for d in s.dims:
            v = self.dims.value[self.dims.find(d)]
            parts.append("?" if v is None else str(v))
        out = "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        if self.mc:
            if s.rank == 0:
                return "scalar"
            if s.rank == 1:
                return ("row vector " if s.row else "column vector ") + out
            return "matrix " + out
        return out

    def fail(self, msg: str, spans: list[Span], *dims: int) -> ShapeError:
        extra: list[Span] = []
        # a variable whose rank does not fit here: show another use of it too
        at = {n.span: n.value for n in self.occurrences}
        for sp in spans:
            name = at.get(sp)
            if name is None or name in self.declared:
                continue
            other = next((n.span for n in self.occurrences
                          if n.value == name and n.span not in spans), None)
            if other is not None and other not in extra:
                extra.append(other)
        for d in dims:
            bound = self.dims.bound[self.dims.find(d)]
            if bound is not None and not any(s <= bound[0] and bound[1] <= e
                                             for s, e in spans + extra):
                extra.append(bound)
        return ShapeError(msg, self.text, spans + extra)

    def unify(self, a: int, c: int, msg: Any, spans: list[Span]) -> None:
        if not self.dims.union(a, c):
            raise self.fail(msg(), spans, a, c)
        if self.pending:
            self.solve()

    # ------------------------------------------------------------ dims arithmetic
    def value_of(self, d: int) -> Dim | None:
        return self.dims.value[self.dims.find(d)]

    def set_value(self, d: int, value: Dim, span: Span, what: str) -> bool:
        """Give class ``d`` the dim ``value``; a class already fixed to another dim is
        a conflict (``what`` says where the dim comes from).  Whether it changed."""
        r = self.dims.find(d)
        old = self.dims.value[r]
        if old is not None:
            if old != value:
                raise self.fail(f"{what}: the dim is {value} here but {old} elsewhere",
                                [span], d)
            return False
        if isinstance(value, int) and value < 0:
            raise self.fail(f"{what}: the dim would be {value}, which is negative", [span])
        self.dims.value[r] = value
        self.dims.bound[r] = span
        self.dims.anchored[r] = True
        return True

    def solve(self) -> None:
        """The sums (``concat``) and slices (``x[1:]``) whose inputs are known, to a
        fixpoint: a sum's one unknown part is the total less the others (dims are
        polynomials: ``n + 1 − 1 = n``), a slice's axis the slice's length less its
        constant (``x[1:]`` of length ``m`` has ``m + 1``)."""
        from ..expr.dims import dim_add, dim_sub

        changed = True
        while changed:
            changed = False
            for kind, res, ins, data, span in self.pending:
                if kind == "sum":
                    const, label = data
                    vals = [self.value_of(d) for d in ins]
                    known = [v for v in vals if v is not None]
                    total = self.value_of(res)
                    unknown = {self.dims.find(d) for d, v in zip(ins, vals) if v is None}
                    if len(known) == len(vals):
                        changed |= self.set_value(res, dim_add(const, *known), span, label)
                    elif total is not None and len(unknown) == 1:
                        # k equal unknown parts: each is (total − the others) / k
                        k = len(vals) - len(known)
                        part = _divide(dim_sub(total, dim_add(const, *known)), k)
                        if part is not None:
                            changed |= self.set_value(next(iter(unknown)), part, span, label)
                else:  # a slice: res = its count on the axis ins[0]
                    n = self.value_of(ins[0])
                    if n is not None:
                        changed |= self.set_value(res, self.slice_count(data, n, span),
                                                  span, "the slice")
                    elif (count := self.value_of(res)) is not None:
                        back = self.slice_back(data)
                        if back is not None:
                            changed |= self.set_value(
                                ins[0], dim_sub(count, back), span, "the slice")

    def slice_count(self, key: slice, n: Dim, span: Span) -> Dim:
        from ..expr.selection import slice_key

        try:
            return slice_key(key, n)[1]
        except ShapeError as err:
            raise ShapeError(err.message, self.text, [span]) from None

    @staticmethod
    def slice_back(key: slice) -> Dim | None:
        """``c`` where the slice's length is the axis's dim plus ``c`` (``x[1:]``:
        −1), ``None`` where it is not of that form."""
        from ..expr.dims import dim_sub

        probe = "_axis"
        try:
            from ..expr.selection import slice_key

            c = dim_sub(slice_key(key, probe)[1], probe)
        except ShapeError:
            return None
        return c if isinstance(c, int) else None

    def settle(self, names: list[str]) -> None:
        """Give the unknown inputs of sums and slices left pending fresh names, so
        that the dims built from them (``n + 1``) are known."""
        used = {str(v) for v in self.dims.value if v is not None} | set(names)
        pool = (c for c in itertools.chain(DIM_NAMES, (f"n{i}" for i in itertools.count(1)))
                if c not in used)
        for kind, _res, ins, _data, span in self.pending:
            for d in ins:
                if self.value_of(d) is None:
                    self.set_value(d, next(pool), span, kind)
                    self.solve()

    def stack_shape(self, node: Node, args: list[_Shape]) -> _Shape:
        """``[a, b, …]``: parts of one shape, a new first axis of their number."""
        first = args[0]
        spans = [c.span for c in node.children]
        for k, a in enumerate(args[1:], 1):
            if a.rank != first.rank:
                raise self.fail(f"[…] stacks parts of one shape, but part 1 has shape "
                                f"{self.show(first)} and part {k + 1} {self.show(a)}",
                                [spans[0], spans[k]])
            for da, db in zip(first.dims, a.dims):
                self.unify(da, db, lambda a=a, k=k: (
                    f"[…] stacks parts of one shape, but part 1 has shape "
                    f"{self.show(first)} and part {k + 1} {self.show(a)}"),
                    [spans[0], spans[k]])
        return _Shape((self.fixed(len(args), node.span),) + first.dims)

    def concat_shape(self, node: Node, args: list[_Shape]) -> _Shape:
        """``concat(a, b, …)``: joined along the first axis, whose dims add."""
        spans = [c.span for c in node.children]
        first = args[0]
        for k, a in enumerate(args):
            if a.rank == 0:
                raise self.fail(f"concat: part {k + 1} is a scalar, which has no axis to "
                                f"join along; write it as [b]", [spans[k]])
            if a.rank != first.rank:
                raise self.fail(f"concat: parts of shapes {self.show(first)} and "
                                f"{self.show(a)} cannot be joined", [spans[0], spans[k]])
            for da, db in zip(first.dims[1:], a.dims[1:]):
                self.unify(da, db, lambda a=a: (
                    f"concat: parts of shapes {self.show(first)} and {self.show(a)} "
                    f"cannot be joined along axis 0: their other dims differ"),
                    [spans[0], spans[k]])
        res = self.dims.new(anchored=True)
        self.pending.append(("sum", res, tuple(a.dims[0] for a in args), (0, "concat"),
                             node.span))
        self.solve()
        return _Shape((res,) + first.dims[1:])

    def block_shape(self, node: Node, args: list[_Shape]) -> _Shape:
        """``block([[A, B], [C, D]])``: the blocks of a row share their rows, of a
        column their columns; the dims add (a number is a block of any size)."""
        rows = [r.children for r in node.children[0].children]
        cells = iter(zip(args, [c.span for r in rows for c in r]))
        grid = [[next(cells) for _ in r] for r in rows]
        heights: list[int] = []
        widths: list[int | None] = []  # a column's dim class, once a block gives it
        for row in grid:
            h = None
            for j, (s, span) in enumerate(row):
                if s.rank == 0:
                    continue
                if s.rank != 2:
                    raise self.fail(f"block: the blocks are matrices, not {self.show(s)}",
                                    [span])
                if h is None:
                    h = s.dims[0]
                else:
                    self.unify(h, s.dims[0], lambda s=s: (
                        f"block: the blocks of a row have one number of rows, not "
                        f"{self.show(s)}"), [row[0][1], span])
                while len(widths) <= j:
                    widths.append(None)
                w = widths[j]
                if w is None:
                    widths[j] = s.dims[1]
                else:
                    self.unify(w, s.dims[1], lambda s=s: (
                        f"block: the blocks of a column have one number of columns, not "
                        f"{self.show(s)}"), [span])
            heights.append(h if h is not None else self.dims.new(anchored=True))
        columns = [w if w is not None else self.dims.new(anchored=True) for w in widths]
        out = []
        for parts in (heights, columns):
            res = self.dims.new(anchored=True)
            self.pending.append(("sum", res, tuple(parts), (0, "block"), node.span))
            out.append(res)
        self.solve()
        return _Shape(tuple(out))

    def index_shape(self, node: Node, args: list[_Shape]) -> _Shape:
        """``x[key, …]``: an index removes its axis (checked against an int dim), a
        slice keeps it with the slice's length."""
        from ..expr.selection import index_key

        s = args[0]
        keys, spans = node.value, node.op_spans
        if len(keys) > s.rank:
            raise self.fail(f"too many indices: {len(keys)} for a value of shape "
                            f"{self.show(s)}", [node.children[0].span, spans[s.rank]])
        out: list[int] = []
        for ax, d in enumerate(s.dims):
            if ax >= len(keys):
                out.append(d)
                continue
            key, span = keys[ax], spans[ax]
            n = self.value_of(d)
            if not isinstance(key, slice):
                if n is not None:
                    try:
                        index_key(key, n)
                    except ShapeError as err:
                        raise ShapeError(err.message, self.text, [span]) from None
                continue
            if n is not None:
                out.append(self.fixed(self.slice_count(key, n, span), span))
                continue
            res = self.dims.new(anchored=True)
            self.pending.append(("slice", res, (d,), key, span))
            out.append(res)
        return _Shape(tuple(out))

    def fixed(self, value: Dim | None, span: Span) -> int:
        """A new dim class with the dim written at ``span`` (``None``: a dim not
        written as a name or a number, left to be inferred)."""
        return self.dims.new(value, span)

    # ------------------------------------------------------------ leaves
    def variable(self, node: Node) -> _Shape:
        name = node.value
        if name in FUNCTION_TABLE and name not in self.declared and not self.mc:
            from ..errors import ParseError

            raise ParseError(f"{name!r} is a function: call it, like {name}(x)",
                             self.text, [node.span])
        s = self.vars.get(name)
        if s is None:
            if name in self.declared:
                s = _Shape(tuple(self.fixed(d, node.span) for d in self.declared[name]))
            else:
                s = _Shape(tuple(self.dims.new(anchored=True)
                                 for _ in range(self.ranks[name])))
            self.vars[name] = s
        return s

    # ------------------------------------------------------------ nodes
    def node(self, node: Node, args: list[_Shape]) -> _Shape:
        kind = node.kind
        if kind == "num":
            return _SCALAR
        if kind == "name":
            return self.variable(node)
        if kind == "unary":
            return args[0]
        if kind == "transpose":
            s = args[0]
            if s.rank == 1:
                return _Shape(s.dims, not s.row) if self.mc else s
            return _Shape(tuple(reversed(s.dims)))
        if kind == "power":
            base, exponent = node.children
            if self.mc:
                return self.mc_power(node, args[0], args[1])
            return self.broadcast("**", args[0], args[1], base.span, exponent.span)
        if kind == "chain":
            return fold_chain(node, args, self.binary)
        if kind == "call":
            return self.call(node, args)
        if kind == "stack":
            return self.stack_shape(node, args)
        if kind == "index":
            return self.index_shape(node, args)
        raise AssertionError(f"unknown node kind {kind}")  # pragma: no cover

    def binary(self, op: str, a: _Shape, c: _Shape, sa: Span, sc: Span) -> _Shape:
        if self.mc:
            return self.mc_binary(op, a, c, sa, sc)
        if op == "@":
            return self.matmul(a, c, sa, sc)
        return self.broadcast(op, a, c, sa, sc)

    def broadcast(self, op: str, a: _Shape, c: _Shape, sa: Span, sc: Span) -> _Shape:
        n = max(a.rank, c.rank)
        out = []
        for k in range(1, n + 1):
            da = a.dims[-k] if k <= a.rank else None
            dc = c.dims[-k] if k <= c.rank else None
            if da is not None and dc is not None:
                self.unify(da, dc, lambda da=da, dc=dc: (
                    f"shapes {self.show(a)} and {self.show(c)} do not broadcast for "
                    f"'{op}': dim {self.dims.value[self.dims.find(da)]} (left) against dim "
                    f"{self.dims.value[self.dims.find(dc)]} (right)"), [sa, sc])
            out.append(da if da is not None else dc)
        return _Shape(tuple(reversed(out)), a.row or c.row)  # type: ignore[arg-type]

    def matmul(self, a: _Shape, c: _Shape, sa: Span, sc: Span) -> _Shape:
        if a.rank == 0 or c.rank == 0:
            side = "left" if a.rank == 0 else "right"
            raise self.fail(
                f"'@' needs vectors or matrices, but the {side} operand is a scalar "
                f"(shapes {self.show(a)} and {self.show(c)}); use '*' to scale", [sa, sc])
        if a.rank > 2 or c.rank > 2:  # pragma: no cover - ranks are at most 2
            raise self.fail("'@' takes vectors and matrices", [sa, sc])
        self.unify(a.dims[-1], c.dims[0], lambda: (
            f"'@' of shapes {self.show(a)} and {self.show(c)}: the left operand's last dim "
            f"{self.dims.value[self.dims.find(a.dims[-1])]} differs from the right "
            f"operand's first dim {self.dims.value[self.dims.find(c.dims[0])]}"), [sa, sc])
        out = a.dims[:-1] + c.dims[1:]
        return _Shape(out)

    def square(self, fn: str, s: _Shape, span: Span) -> None:
        if s.rank != 2:
            raise self.fail(f"{fn} needs a square matrix, got shape {self.show(s)}", [span])
        self.unify(s.dims[0], s.dims[1], lambda: (
            f"{fn} needs a square matrix, got shape {self.show(s)}"), [span])

    def call(self, node: Node, args: list[_Shape]) -> _Shape:
        name = node.value
        if not self.mc and name in FUNCTION_TABLE:
            name = FUNCTION_TABLE[name].name  # an alias (ln) is its function (log)
        children = node.children
        spans = [c.span for c in children]
        if name in ("vector", "matrix"):
            rank = 1 if name == "vector" else 2
            if len(children) > 1:
                dims = tuple(self.fixed(dim_value(c, self.text), c.span)
                             for c in children[1:])
            else:
                dims = tuple(self.dims.new() for _ in range(rank))
            s = _Shape(dims)
            self.fill_nodes[id(node)] = s
            return s
        if name == "eye":
            d = self.fixed(dim_value(children[0], self.text), spans[0])
            return _Shape((d, d))
        a = args[0]
        if name in FUNCTIONS:
            # an element-wise function: its arguments broadcast to its result's shape
            # (the builders' rule, expr.builders.elementwise)
            for arg, span in zip(args[1:], spans[1:]):
                a = self.broadcast(name, a, arg, spans[0], span)
            return a
        if name in ("sum", "mean"):
            if len(children) == 1:
                return _SCALAR
            axis = literal_int(children[1], self.text)
            if axis is None or not -a.rank <= axis < a.rank:
                raise self.fail(f"{name}: axis {axis} is out of range for shape "
                                f"{self.show(a)}", [spans[1]])
            axis %= a.rank
            return _Shape(tuple(d for i, d in enumerate(a.dims) if i != axis))
        if name in ("norm1", "norm2"):
            return _SCALAR
        fn = _matrix_function(name)
        if fn is not None:
            # the definition's shape rule, checked on unification classes
            return _Shape(tuple(fn.shape(_Check(self, fn.name, spans),
                                         *(x.dims for x in args))))
        if name == "matrix_power":
            self.square(name, a, spans[0])
            return a
        if name == "dot":
            if a.rank == 0 or args[1].rank == 0:
                return self.broadcast("*", a, args[1], spans[0], spans[1])
            return self.matmul(a, args[1], spans[0], spans[1])
        if name == "outer":
            c = args[1]
            if a.rank != 1 or c.rank != 1:
                raise self.fail(f"outer needs two vectors, got shapes {self.show(a)} and "
                                f"{self.show(c)}", [spans[0], spans[1]])
            return _Shape((a.dims[0], c.dims[0]))
        if name == "tr":
            self.square(name, a, spans[0])
            return _SCALAR
        if name == "diag":
            if a.rank == 1:
                return _Shape((a.dims[0], a.dims[0]))
            if a.rank == 2:
                self.square(name, a, spans[0])
                return _Shape(a.dims[:1])
            raise self.fail(f"diag needs a vector or a square matrix, got shape "
                            f"{self.show(a)}", [spans[0]])
        if name == "transpose":
            return _Shape(tuple(reversed(a.dims)))
        if name == "concat":
            return self.concat_shape(node, args)
        if name == "block":
            return self.block_shape(node, args)
        raise AssertionError(f"no shape rule for {name}")  # pragma: no cover

    # ------------------------------------------------------------ matrixcalculus syntax
    def mc_binary(self, op: str, a: _Shape, c: _Shape, sa: Span, sc: Span) -> _Shape:
        if op == "*":
            if a.rank == 0:
                return c
            if c.rank == 0:
                return a
            if a.rank == 1 and c.rank == 1 and not a.row and c.row:  # outer
                return _Shape((a.dims[0], c.dims[0]))
            left_ok = (a.rank == 1 and a.row) or a.rank == 2
            right_ok = (c.rank == 1 and not c.row) or c.rank == 2
            if not (left_ok and right_ok):
                raise self.fail(
                    f"'*' of a {self.show(a)} and a {self.show(c)}: the left operand's "
                    "columns must match the right operand's rows (vectors are columns; "
                    "use ' to transpose, or .* for the element-wise product)", [sa, sc])
            self.unify(a.dims[-1], c.dims[0], lambda: (
                f"'*' of a {self.show(a)} and a {self.show(c)}: the left operand's "
                f"{self.dims.value[self.dims.find(a.dims[-1])]} columns differ from the "
                f"right operand's {self.dims.value[self.dims.find(c.dims[0])]} rows"),
                [sa, sc])
            out = a.dims[:-1] + c.dims[1:]
            return _Shape(out, a.row and len(out) == 1)
        if op == "/":
            if c.rank != 0:
                raise self.fail(f"'/' divides by a scalar, not a {self.show(c)}: use ./ "
                                "for the element-wise quotient", [sa, sc])
            return a
        if op in "+-" and (a.rank == 0) != (c.rank == 0):
            raise self.fail(
                f"'{op}' of a {self.show(a)} and a {self.show(c)}: a scalar is added to a "
                "vector or a matrix as vector(c) or matrix(c)", [sa, sc])
        if a.rank and c.rank and (a.row != c.row or a.rank != c.rank):
            raise self.fail(
                f"'{op}' of a {self.show(a)} and a {self.show(c)}: the shapes differ"
                + (" (transpose one with ')" if a.rank == c.rank == 1 else ""), [sa, sc])
        return self.broadcast(op, a, c, sa, sc)

    def mc_power(self, node: Node, a: _Shape, c: _Shape) -> _Shape:
        base, exponent = node.children
        sa, sc = base.span, exponent.span
        if node.value == ".^":
            return self.mc_binary(".^", a, c, sa, sc)
        if a.rank == 0 and c.rank == 0:
            return _SCALAR
        if a.rank == 2 and c.rank == 0 and literal_int(exponent, self.text) is not None:
            self.square("a matrix power", a, sa)
            return a
        raise self.fail(
            f"'^' of a {self.show(a)} and a {self.show(c)}: '^' is the power of a "
            "scalar, or a square matrix's integer power; use .^ for the element-wise "
            "power", [sa, sc])
