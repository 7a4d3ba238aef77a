"""The core representation: a small closed set of immutable, hash-consed nodes.

Every linear-algebra operation lowers onto :class:`Einsum` (a general tensor
product); the other kinds are leaves (:class:`Var`, :class:`Const`, :class:`Size`,
:class:`Delta`), sums (:class:`Add`), element-wise functions (:class:`Map`, one
table in :mod:`matdiff.expr.functions`) and matrix functions (:class:`Call`, one
definition each in :mod:`matdiff.expr.matrix_functions`: ``inv``, ``det``, ...); stacking and
selection are the kinds ``Concat`` and ``Take`` of :mod:`matdiff.expr.selection`.

Nodes built twice from the same parts are the same object (hash-consing), so
equality is identity and shared subexpressions are shared in memory.  The
constructors here build nodes *as given*; the simplifying constructors that every
builder uses live in :mod:`matdiff.expr.simplify`.

Each class keeps its whole behaviour together: shape rule, numeric evaluation and
its vector-Jacobian product (the adjoint rule of reverse mode, MATH.md).
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

import numpy as np

from ..errors import ShapeError
from .dims import Dim, DimPoly, dim_size, is_name, parse_dim

if TYPE_CHECKING:  # pragma: no cover
    from .functions import Elementwise

Shape: TypeAlias = tuple[Dim, ...]

__all__ = [
    "Expr", "Var", "Const", "Size", "Delta", "Einsum", "Add", "Map", "Call", "Dim", "Shape",
    "check_dim", "shape_str", "topo_order", "STRUCTURES", "check_structure", "split_shape",
    "var_nodes",
]

_TABLE: weakref.WeakValueDictionary[tuple[Any, ...], Expr] = weakref.WeakValueDictionary()


def check_dim(d: Any) -> Dim:
    """Validate one dim: a non-negative int, an identifier-like name, or a sum or
    product of dims (a :class:`~matdiff.expr.dims.DimPoly`, or text such as
    ``"n+1"`` or ``"m*n"``, read by :func:`~matdiff.expr.dims.parse_dim`)."""
    if isinstance(d, (bool, np.bool_)):
        raise ShapeError(f"a dim must be a name or an int, not {d!r}")
    if isinstance(d, (int, np.integer)):
        if d < 0:
            raise ShapeError(f"a dim must not be negative, got {d}")
        return int(d)
    if isinstance(d, DimPoly) or is_name(d):
        return d
    if isinstance(d, str) and any(c in "+-*·" for c in d) and all(
            (c.isascii() and c.isalnum()) or c in "_+-*·() " for c in d):
        value = parse_dim(d)
        if not isinstance(value, int) or value >= 0:
            return value
    raise ShapeError(f"a dim must be a name (like 'n'), an int, or a sum or product of "
                     f"dims (like 'n+1'), not {d!r}")


def shape_str(shape: Shape, structure: str | None = None) -> str:
    """Human-readable shape: ``scalar``, ``(n,)``, ``(n, m)``; with a variable's
    structure, ``(n, n) symmetric``."""
    if len(shape) == 0:
        return "scalar ()"
    text = "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    return f"{text} {structure}" if structure else text


def _digest(*parts: Any) -> bytes:
    h = hashlib.blake2b(digest_size=12)
    for p in parts:
        h.update(p if isinstance(p, bytes) else repr(p).encode())
        h.update(b"\x00")
    return h.digest()


#: what the layers above provide to every expression (dependency inversion: a node
#: never imports them): "text" and "latex" (matdiff.render), "evaluate",
#: "merge_values" and "contract" (matdiff.compile); each registers its own on import
_SERVICES: dict[str, Callable[..., Any]] = {}


def provide(name: str, fn: Callable[..., Any]) -> None:
    """Register a higher layer's service for expressions (see :data:`_SERVICES`)."""
    _SERVICES[name] = fn


def service(name: str) -> Callable[..., Any]:
    """The registered service ``name``; importing :mod:`matdiff` registers them all."""
    try:
        return _SERVICES[name]
    except KeyError:
        raise RuntimeError(f"matdiff's {name!r} service is not registered: "
                           "import matdiff (its layers register their services)") from None


class Expr:
    """A node of an expression over scalars, vectors and matrices.

    Build expressions with :func:`matdiff.var` and friends and Python operators
    (``+ - * / @ **``, ``.T``), or with :func:`matdiff.parse`.

    >>> import matdiff as md
    >>> x = md.vector("x", "n")
    >>> A = md.matrix("A", "n", "n")
    >>> f = x @ A @ x
    >>> f.shape
    ()
    >>> sorted(f.variables().items())
    [('A', ('n', 'n')), ('x', ('n',))]
    """

    __slots__ = ("children", "shape", "digest", "_params", "_written", "__weakref__")
    kind: ClassVar[str] = "expr"
    order: ClassVar[int] = 99          # rank of the kind when sorting operands
    __array_ufunc__ = None             # let numpy defer to our reflected operators

    children: tuple[Expr, ...]
    shape: Shape
    digest: bytes
    _params: tuple[Any, ...]
    #: how the node was written: printing information beside the node, never part of
    #: its identity (a :class:`~matdiff.expr.written.Written`; see
    #: :mod:`matdiff.expr.written`, the one place that describes it)
    _written: Any

    @classmethod
    def _intern(cls, params: tuple[Any, ...], children: tuple[Expr, ...], shape: Shape) -> Expr:
        key = (cls, params, children, tuple(shape))
        node = _TABLE.get(key)
        if node is not None:
            return node
        node = object.__new__(cls)
        node.children = children
        node.shape = tuple(shape)
        node._params = params
        node._written = None
        kind, dparams = cls._digest_kind(params)
        node.digest = _digest(kind, dparams, shape, *(c.digest for c in children))
        _TABLE[key] = node
        return node

    @classmethod
    def _digest_kind(cls, params: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        """The kind and parameters a node's digest is made of."""
        return cls.kind, params

    # ------------------------------------------------------- pickling, copying
    def __reduce__(self) -> tuple[Any, ...]:
        # by value: class, parameters, children and shape; loading interns the node
        # again (children first, as pickle builds them), so a loaded expression is
        # the very node an equal one built in that process would be; how it was
        # written travels with it (matdiff.expr.written)
        return (_reintern, (type(self), self._params, self.children, self.shape,
                            self._written))

    def __copy__(self) -> Expr:
        return self  # nodes are immutable and shared

    def __deepcopy__(self, memo: dict[int, Any]) -> Expr:
        return self

    # ------------------------------------------------------------------ basics
    @property
    def ndim(self) -> int:
        """Number of axes: 0 scalar, 1 vector, 2 matrix, more for derivatives."""
        return len(self.shape)

    def sort_key(self) -> tuple[Any, ...]:
        """A deterministic order on nodes (used to canonicalise products, sums)."""
        return (self.order, self._label(), self.digest)

    def _label(self) -> str:
        return ""

    def rebuild(self, children: Sequence[Expr]) -> Expr:
        """The same node over new children, through the simplifying constructors."""
        raise NotImplementedError

    def variables(self) -> dict[str, Shape]:
        """Each variable's name mapped to its shape, in order of first appearance."""
        out: dict[str, Shape] = {}
        for node in topo_order(self):
            if isinstance(node, Var):
                out.setdefault(node.name, node.shape)
        return out

    def count_nodes(self) -> int:
        """Number of distinct nodes (shared subexpressions count once)."""
        return len(topo_order(self))

    def evaluate(self, values: Mapping[str, Any] | None = None, **kw: Any) -> np.ndarray:
        """Evaluate on NumPy arrays (float64); named dims are bound from the arrays.

        >>> import numpy as np, matdiff as md
        >>> f = md.parse("sum(w * x)", shapes={"w": ("n",), "x": ("n",)})
        >>> float(f.evaluate(w=np.array([1., 2.]), x=np.array([3., 4.])))
        11.0
        """
        return service("evaluate")(self, service("merge_values")(values, kw))

    # ------------------------------------------------------------ operators
    def __add__(self, other: Any) -> Expr:
        return _b().add(self, other)

    def __radd__(self, other: Any) -> Expr:
        return _b().add(other, self)

    def __sub__(self, other: Any) -> Expr:
        return _b().sub(self, other)

    def __rsub__(self, other: Any) -> Expr:
        return _b().sub(other, self)

    def __mul__(self, other: Any) -> Expr:
        return _b().mul(self, other)

    def __rmul__(self, other: Any) -> Expr:
        return _b().mul(other, self)

    def __truediv__(self, other: Any) -> Expr:
        return _b().div(self, other)

    def __rtruediv__(self, other: Any) -> Expr:
        return _b().div(other, self)

    def __matmul__(self, other: Any) -> Expr:
        return _b().matmul(self, other)

    def __rmatmul__(self, other: Any) -> Expr:
        return _b().matmul(other, self)

    def __pow__(self, other: Any) -> Expr:
        return _b().power(self, other)

    def __rpow__(self, other: Any) -> Expr:
        return _b().power(other, self)

    def __neg__(self) -> Expr:
        return _b().neg(self)

    def __pos__(self) -> Expr:
        return self

    def __getitem__(self, key: Any) -> Expr:
        """NumPy's basic indexing (``x[0]``, ``x[1:]``, ``X[:, j]``): see
        :func:`matdiff.expr.builders.getitem`."""
        return _b().getitem(self, key)

    def __iter__(self) -> Any:
        # with __getitem__, Python would iterate by indexing 0, 1, … (forever over a
        # named dim): an expression is not a sequence
        raise TypeError("a matdiff expression is symbolic and cannot be iterated; "
                        "select its entries with x[i]")

    @property
    def T(self) -> Expr:  # noqa: N802 - NumPy's name
        """Transpose (reverses the axes; a vector's transpose is itself, as in NumPy)."""
        return _b().transpose(self)

    def _no_compare(self, other: Any) -> bool:
        raise TypeError(
            "matdiff expressions are symbolic and cannot be compared with < > <= >=; "
            "use max/min/relu/step to express a case split"
        )

    __lt__: ClassVar[Callable[[Expr, Any], bool]]
    __le__: ClassVar[Callable[[Expr, Any], bool]]
    __gt__: ClassVar[Callable[[Expr, Any], bool]]
    __ge__: ClassVar[Callable[[Expr, Any], bool]]
    __lt__ = __le__ = __gt__ = __ge__ = _no_compare

    def __bool__(self) -> bool:
        raise TypeError(
            "the truth value of a matdiff expression is undefined: it is symbolic; "
            "use max/min/relu/step instead of Python 'if' on expressions"
        )

    # ------------------------------------------------------------- printing
    def __str__(self) -> str:
        return service("text")(self)

    def __repr__(self) -> str:
        return f"<Expr {self}  shape={shape_str(self.shape)}>"

    def _repr_latex_(self) -> str:
        """Jupyter's display: the formula as LaTeX (``md.latex``) between ``$$``."""
        return "$$" + service("latex")(self) + "$$"

    def _repr_markdown_(self) -> str:
        """Jupyter's Markdown display: the LaTeX formula and the shape."""
        return f"$${service('latex')(self)}$$\n\nshape `{shape_str(self.shape)}`"

    # ------------------------------------------------- evaluation and rules
    def _eval(self, args: list[Any], sizes: Mapping[str, int]) -> Any:
        raise NotImplementedError

    def vjp(self, k: int, adj: Expr, nf: int) -> Expr:
        """Contribution to the adjoint of child ``k``.

        ``adj`` is the adjoint of this node, of shape ``F + self.shape`` where
        ``F`` (``nf`` axes) is the shape of the function being differentiated.
        The result has shape ``F + children[k].shape``.
        """
        raise NotImplementedError(f"no derivative rule for {self.kind}")


def _reintern(cls: type[Expr], params: tuple[Any, ...], children: tuple[Expr, ...],
              shape: Shape, written: Any = None) -> Expr:
    """Rebuild a pickled node (see :meth:`Expr.__reduce__`), with how it was written."""
    node = cls._intern(params, children, shape)
    if written is not None:
        node._written = written
    return node


def _b():
    from . import builders

    return builders


def _s():
    from . import simplify

    return simplify


def _w():
    from . import written

    return written


def _size(d: Dim, sizes: Mapping[str, int]) -> int:
    return dim_size(d, sizes)


def _sizes(shape: Shape, sizes: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(_size(d, sizes) for d in shape)


def topo_order(root: Any, children: Callable[[Any], Sequence[Any]] | None = None) -> list[Any]:
    """Distinct nodes of ``root``, children before parents (iterative DFS).

    ``children`` gives a node's children (``node.children`` by default), so other
    trees (the printers' matrix forms) are walked by the same code.
    """
    kids = children or (lambda n: n.children)
    seen: set[int] = set()
    order: list[Expr] = []
    stack: list[tuple[Expr, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for c in reversed(kids(node)):
            if id(c) not in seen:
                stack.append((c, False))
    return order


# ============================================================== leaves
class Var(Expr):
    """A variable: a name and a shape (``()`` scalar, ``(n,)`` vector, ...), and for a
    square matrix optionally a structure (MATH.md, "Symmetric (and SPD, diagonal)
    variables"): ``"symmetric"`` (``Sᵀ = S``), ``"spd"`` (symmetric positive definite)
    or ``"diagonal"``.  The structure is part of the variable's identity: ``S`` and a
    symmetric ``S`` are two nodes (two digests).

    >>> Var("S", ("n", "n"), "symmetric").structure
    'symmetric'
    >>> Var("S", ("n", "n"), "symmetric").shape_spec
    ('n', 'n', 'symmetric')
    """

    __slots__ = ()
    kind = "var"
    order = 3

    def __new__(cls, name: str, shape: Sequence[Dim] = (),
                structure: str | None = None) -> Var:
        shape = tuple(check_dim(d) for d in shape)
        if structure is None:  # a plain variable's digest is what it always was
            return cls._intern((name,), (), shape)  # type: ignore[return-value]
        structure = check_structure(structure, shape, name)
        return cls._intern((name, structure), (), shape)  # type: ignore[return-value]

    @property
    def name(self) -> str:
        return self._params[0]

    @property
    def structure(self) -> str | None:
        """``"symmetric"``, ``"spd"``, ``"diagonal"``, or ``None`` (no structure)."""
        return self._params[1] if len(self._params) > 1 else None

    @property
    def shape_spec(self) -> tuple[Dim, ...]:
        """The shape as ``shapes=`` declares it: the dims, then the structure if any."""
        return self.shape + ((self.structure,) if self.structure else ())

    def _label(self) -> str:
        return self.name

    def rebuild(self, children: Sequence[Expr]) -> Expr:
        return self

    def _eval(self, args: list[Any], sizes: Mapping[str, int]) -> Any:  # pragma: no cover
        raise AssertionError("variables are bound by the evaluator")


#: the structures a square matrix variable may have (a shape's trailing tag)
STRUCTURES = ("symmetric", "spd", "diagonal")


def check_structure(tag: Any, shape: Shape, name: str = "") -> str:
    """Validate a structure tag for a variable of ``shape``: a known tag (a near
    miss is named) on a square matrix, else a :class:`ShapeError` naming the
    variable.

    >>> check_structure("symmetric", ("n", "n"), "S")
    'symmetric'
    >>> check_structure("symetric", ("n", "n"), "S")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    matdiff.errors.ShapeError: S: unknown structure 'symetric'; did you mean 'symmetric'? ...
    >>> check_structure("spd", ("m", "n"), "S")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    matdiff.errors.ShapeError: S: the structure 'spd' needs a square matrix, ... (m, n)
    """
    who = f"{name}: " if name else ""
    if not isinstance(tag, str) or tag not in STRUCTURES:
        import difflib

        near = ([_SHORT_TAGS[str(tag).lower()]] if str(tag).lower() in _SHORT_TAGS
                else difflib.get_close_matches(str(tag).lower(), STRUCTURES, n=1))
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ShapeError(f"{who}unknown structure {tag!r}{hint} (the structures: "
                         f"{', '.join(STRUCTURES)})")
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ShapeError(f"{who}the structure {tag!r} needs a square matrix, like (n, n), "
                         f"but the shape is {shape_str(shape)}")
    return tag


def split_shape(spec: Sequence[Any], name: str = "") -> tuple[Shape, str | None]:
    """A shape as ``shapes=`` gives it, split into its dims and its structure: a
    trailing tag that is not a dim, ``("n", "n", "symmetric")``, is the structure
    (checked: a known tag, on a square matrix).

    >>> split_shape(("n", "n", "spd"), "S")
    (('n', 'n'), 'spd')
    >>> split_shape(("n",), "x")
    (('n',), None)
    """
    spec = tuple(spec)
    if spec and isinstance(spec[-1], str) and (
            spec[-1] in STRUCTURES or _looks_like_tag(spec[-1], spec)):
        dims = tuple(check_dim(d) for d in spec[:-1])
        return dims, check_structure(spec[-1], dims, name)
    return tuple(check_dim(d) for d in spec), None


def _looks_like_tag(word: str, spec: tuple[Any, ...]) -> bool:
    """A misspelt or shortened tag (``"symetric"``, ``"sym"``) rather than a dim's
    name, so that it is refused with the near name instead of read as a third dim."""
    import difflib

    w = word.lower()
    return w in _SHORT_TAGS or bool(difflib.get_close_matches(w, STRUCTURES, n=1,
                                                                cutoff=0.75))


def var_nodes(e: Expr) -> dict[str, Var]:
    """Each variable node of ``e`` by name, in order of first appearance (the node
    itself, with its structure, where :meth:`Expr.variables` gives the shape)."""
    out: dict[str, Var] = {}
    for node in topo_order(e):
        if isinstance(node, Var):
            # a derivative result that is a variable stands for its shared node
            out.setdefault(node.name, getattr(node, "body", node))
    return out


#: shortened tags, refused with the full name suggested (never read as a dim)
_SHORT_TAGS = {"sym": "symmetric", "symm": "symmetric", "pd": "spd", "psd": "spd",
               "posdef": "spd", "diag": "diagonal"}


class Const(Expr):
    """A constant tensor filled with one value (``Const(0, s)`` is zeros, ``Const(1, (n,))``
    the paper's vector of ones ``1``)."""

    __slots__ = ()
    kind = "const"
    order = 0

    def __new__(cls, value: float, shape: Sequence[Dim] = ()) -> Const:
        v = float(value)
        if v == 0.0:
            v = 0.0  # one zero, not two (-0.0)
        return cls._intern((v,), (), tuple(check_dim(d) for d in shape))  # type: ignore[return-value]

    @property
    def value(self) -> float:
        return self._params[0]

    def _label(self) -> str:
        return repr(self.value)

    def rebuild(self, children: Sequence[Expr]) -> Expr:
        return self

    def _eval(self, args: list[Any], sizes: Mapping[str, int]) -> Any:
        if not self.shape:
            return np.float64(self.value)
        return np.full(_sizes(self.shape, sizes), self.value)


class Size(Expr):
    """The size of a dim, as a scalar (``mean`` over ``N`` rows divides by ``N``)."""

    __slots__ = ()
    kind = "size"
    order = 1

    def __new__(cls, dim: Dim) -> Size:
        return cls._intern((check_dim(dim),), (), ())  # type: ignore[return-value]

    @property
    def dim(self) -> Dim:
        return self._params[0]

    def _label(self) -> str:
        return str(self.dim)

    def rebuild(self, children: Sequence[Expr]) -> Expr:
        return self

    def _eval(self, args: list[Any], sizes: Mapping[str, int]) -> Any:
        return np.float64(dim_size(self.dim, sizes))


class Delta(Expr):
    """The identity matrix ``I`` over one dim: Kronecker's ``δᵢⱼ``."""

    __slots__ = ()
    kind = "delta"
    order = 2

    def __new__(cls, dim: Dim) -> Delta:
        d = check_dim(dim)
        return cls._intern((d,), (), (d, d))  # type: ignore[return-value]

    @property
    def dim(self) -> Dim:
        return self._params[0]

    def _label(self) -> str:
        return str(self.dim)

    def rebuild(self, children: Sequence[Expr]) -> Expr:
        return self

    def _eval(self, args: list[Any], sizes: Mapping[str, int]) -> Any:
        return np.eye(_size(self.dim, sizes))


# ============================================================== the product
class Einsum(Expr):
    """``value[out] = Σ over letters not in out of Π_j operands[j][specs[j]]``.

    Letters are small ints.  Matrix product ``(0,1),(1,2)->(0,2)``, dot, outer,
    transpose, trace, sums, element-wise products and scalar expansion are all
    this one node (MATH.md, "Tensors and index strings").
    """

    __slots__ = ()
    kind = "einsum"
    order = 10

    def __new__(cls, operands: Sequence[Expr], specs: Sequence[Sequence[int]],
                out: Sequence[int]) -> Einsum:
        operands = tuple(operands)
        specs = tuple(tuple(int(c) for c in s) for s in specs)
        out = tuple(int(c) for c in out)
        dims = letter_dims(operands, specs)
        for c in out:
            if c not in dims:
                raise ShapeError("internal: output letter of a product in no operand")
        shape = tuple(dims[c] for c in out)
        return cls._intern((specs, out), operands, shape)  # type: ignore[return-value]

    @property
    def specs(self) -> tuple[tuple[int, ...], ...]:
        return self._params[0]

    @property
    def out(self) -> tuple[int, ...]:
        return self._params[1]

    def letter_dims(self) -> dict[int, Dim]:
        return letter_dims(self.children, self.specs)

    def rebuild(self, children: Sequence[Expr]) -> Expr:
        # the new operands stand where the old ones did: in written order
        # (matdiff.expr.written), so the new product is written as this one was
        perm = _w().order(self) if len(children) == len(self.children) \
            else range(len(children))
        return _s().einsum([children[k] for k in perm], [self.specs[k] for k in perm],
                           self.out)

    def _eval(self, args: list[Any], sizes: Mapping[str, int]) -> Any:
        return service("contract")(self, args, sizes)

    def vjp(self, k: int, adj: Expr, nf: int) -> Expr:
        # The product is linear in each operand:  adj(e_k)[φ, s_k] =
        #   Σ adj[φ, out] Π_{j≠k} e_j[s_j].  A letter repeated in s_k (a trace,
        # ii->) is renamed apart and tied back with a delta, so ∂tr(A)/∂A = I.
        top = max([c for s in self.specs for c in s] + list(self.out) + [-1]) + 1
        phi = tuple(range(top, top + nf))
        nxt = top + nf
        ops = [adj]
        specs: list[tuple[int, ...]] = [phi + self.out]
        for j, (e, s) in enumerate(zip(self.children, self.specs)):
            if j != k:
                ops.append(e)
                specs.append(s)
        target: list[int] = []
        dims = self.letter_dims()
        for c in self.specs[k]:
            if c in target:
                ops.append(Delta(dims[c]))
                specs.append((c, nxt))
                target.append(nxt)
                nxt += 1
            else:
                target.append(c)
        return _s().einsum(ops, specs, phi + tuple(target), dims)


def letter_dims(operands: Sequence[Expr], specs: Sequence[Sequence[int]]) -> dict[int, Dim]:
    """The dim of every letter of a product; a letter bound to two dims is an error."""
    if len(operands) != len(specs):
        raise ShapeError("internal: a product needs one index string per operand")
    dims: dict[int, Dim] = {}
    for e, s in zip(operands, specs):
        if len(s) != len(e.shape):
            raise ShapeError(
                f"internal: index string of length {len(s)} for an operand of shape "
                f"{shape_str(e.shape)}"
            )
        for c, d in zip(s, e.shape):
            if dims.setdefault(c, d) != d:
                raise ShapeError(f"dims {dims[c]} and {d} are paired in a product")
    return dims


# ============================================================== sums
class Add(Expr):
    """The sum of two or more terms of one shape.

    Its ``children`` are in the canonical order (the simplifier sorts them), so that
    ``a + b`` and ``b + a`` are one node, with one digest.  The order in which the
    terms were written is printing information only, kept beside them
    (:mod:`matdiff.expr.written`, which describes it for every node):
    :meth:`written_terms`.  It is the order of the sum's latest construction (the
    node is shared, so after ``a + b``, writing ``b + a`` gives the same node, which
    prints ``b + a`` from then on: what was written last); rebuilding a sum over new
    children (:meth:`rebuild`) and pickling keep it.  Derivatives do not print in it
    (reverse mode builds their sums in an order of its own): the printer gives their
    terms a natural order, and the sums of their function its written one (see
    :meth:`matdiff.render.mform.factoring.SumFactoring._settle`).
    """

    __slots__ = ()
    kind = "add"
    order = 11

    def __new__(cls, terms: Sequence[Expr], written: Sequence[Expr] | None = None) -> Add:
        """``terms`` in canonical order; ``written``: the same terms in the order
        they were written (left out: the canonical order)."""
        terms = tuple(terms)
        shape = terms[0].shape
        for t in terms[1:]:
            if t.shape != shape:
                raise ShapeError(
                    f"cannot add shapes {shape_str(shape)} and {shape_str(t.shape)}"
                )
        node: Add = cls._intern((), terms, shape)  # type: ignore[assignment]
        if written is not None:  # this construction's order (the latest one wins;
            # a sum records it always, reverse mode's too: see matdiff.expr.written)
            _w().note_order(node, written, force=True)
        return node

    def written_terms(self) -> tuple[Expr, ...]:
        """The terms in the order they were written (see the class docstring).

        >>> import matdiff as md
        >>> w, x, b = md.vector("w", "n"), md.vector("x", "n"), md.scalar("b")
        >>> f = w @ x + b
        >>> [str(t) for t in f.written_terms()], f is b + w @ x
        (['wᵀx', 'b'], True)
        """
        return _w().written_children(self)

    def rebuild(self, children: Sequence[Expr]) -> Expr:
        # the new children stand where the old ones did: add them in written order
        # (a rebuild with other terms than this sum's, as a pass that drops some of
        # them makes, adds them in the order given)
        perm = _w().order(self) if len(children) == len(self.children) \
            else range(len(children))
        return _s().add([children[k] for k in perm])

    def _eval(self, args: list[Any], sizes: Mapping[str, int]) -> Any:
        total = args[0]
        for a in args[1:]:
            total = total + a
        return total

    def vjp(self, k: int, adj: Expr, nf: int) -> Expr:
        return adj


# ============================================================== element-wise
class Map(Expr):
    """An element-wise function (a row of :data:`matdiff.expr.functions.FUNCTIONS`)
    of one or more arguments of one shape."""

    __slots__ = ()
    kind = "map"
    order = 5

    def __new__(cls, fn: str, args: Sequence[Expr]) -> Map:
        from .functions import FUNCTIONS

        spec = FUNCTIONS[fn]
        args = tuple(args)
        if len(args) != spec.arity:
            raise ShapeError(f"{fn} takes {spec.arity} argument(s), got {len(args)}")
        for a in args[1:]:
            if a.shape != args[0].shape:
                raise ShapeError(
                    f"{fn}: arguments of shapes {shape_str(args[0].shape)} and "
                    f"{shape_str(a.shape)}"
                )
        return cls._intern((fn,), args, args[0].shape)  # type: ignore[return-value]

    @property
    def fn(self) -> str:
        return self._params[0]

    @property
    def spec(self) -> Elementwise:
        from .functions import FUNCTIONS

        return FUNCTIONS[self.fn]

    def _label(self) -> str:
        return self.fn

    def rebuild(self, children: Sequence[Expr]) -> Expr:
        return _s().apply(self.fn, children)

    def _eval(self, args: list[Any], sizes: Mapping[str, int]) -> Any:
        return self.spec.numpy(*args)

    def vjp(self, k: int, adj: Expr, nf: int) -> Expr:
        # The paper's diagonal Jacobian: ∂g(a)ᵢ/∂aⱼ = g'(aᵢ) δᵢⱼ, applied without
        # building a matrix: adj(a)[φ, σ] += adj[φ, σ] g'(a)[σ].
        d = self.spec.derivs[k](*self.children, out=self)
        r = len(self.shape)
        sig = tuple(range(r))
        phi = tuple(range(r, r + nf))
        return _s().einsum([adj, d], [phi + sig, sig], phi + sig)


# ============================================================== matrix functions
class Call(Expr):
    """A matrix function (a definition of
    :data:`matdiff.expr.matrix_functions.MATRIX_FUNCTIONS`: ``inv``, ``det``,
    ``logdet``, ``logsumexp``, ``softmax``, ``solve``, ``kron``, ``expm``, ...) applied
    to its arguments, with the call's parameters (``params``: ints and dims, such as
    the axis and sizes of a reshape).  The definition holds the shape rule, the
    adjoint rule of each argument and the values."""

    __slots__ = ()
    kind = "call"

    def __new__(cls, fn: str, args: Sequence[Expr], params: Sequence[Any] = ()) -> Call:
        from .matrix_functions import MATRIX_FUNCTIONS

        spec = MATRIX_FUNCTIONS[fn]
        args = tuple(args)
        params = tuple(params)
        if len(args) != spec.arity:
            raise ShapeError(f"{fn} takes {spec.arity} argument"
                             f"{'s' * (spec.arity != 1)}, got {len(args)}")
        shape = spec.shape_of(*(a.shape for a in args), params=params)
        return cls._intern((fn, params), args, shape)  # type: ignore[return-value]

    @classmethod
    def _digest_kind(cls, params: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        # a call's identity is its function, its parameters and its arguments
        return params[0], params[1]

    @property
    def fn(self) -> str:
        return self._params[0]

    @property
    def params(self) -> tuple[Any, ...]:
        """The call's parameters (ints and dims), as the definition names them."""
        return self._params[1]

    @property
    def spec(self) -> Any:
        """The function's :class:`~matdiff.expr.matrix_functions.MatrixFunction`."""
        from .matrix_functions import MATRIX_FUNCTIONS

        return MATRIX_FUNCTIONS[self.fn]

    @property
    def order(self) -> int:  # type: ignore[override]
        return self.spec.sort

    def rebuild(self, children: Sequence[Expr]) -> Expr:
        from .matrix_functions import call

        return call(self.fn, children, self.params)

    def _eval(self, args: list[Any], sizes: Mapping[str, int]) -> Any:
        # a dim parameter is passed as its size
        params = [p if isinstance(p, int) else dim_size(p, sizes) for p in self.params]
        return self.spec.numpy(*args, *params)

    def vjp(self, k: int, adj: Expr, nf: int) -> Expr:
        return self.spec.rules()[k](self, adj, nf)
