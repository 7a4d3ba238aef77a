"""Stacking and selection: the node kinds :class:`Concat` and :class:`Take`.

The paper builds vectors from parts (``∇f(x, y) = [∂f/∂x, ∂f/∂y]``, the stacked
functions ``y = [f₁(x), f₂(x)]``, the folded bias ``ŵ = [wᵀ, b]``) and reads parts
back (``x₀``, ``x[1:]``, ``X[:, j]``).  Both are linear (MATH.md, "Stacking, indexing
and dims arithmetic"), and each is the other's adjoint, so two node kinds close the
set under differentiation, to every order:

* ``Concat(parts, axis, rows)`` joins its parts along ``axis``.  A part marked as a
  *row* lacks that axis and takes one position on it (``stack([a, b])`` is a Concat of
  rows along a new axis: ``[a, b]``); a *block* carries the axis and takes its length
  there (``concat(w, [b])``: the block ``w`` of length ``n``, then the row ``b``;
  dims add, ``n + 1``).  In index notation, with ``o_k`` the offset of part ``k``::

      Concat[…, o_k + t, …] = part_k[…, t, …]      (a block, 0 ≤ t < n_k)
      Concat[…, o_k, …]     = part_k[…]            (a row)

  Its adjoint for part ``k`` is the selection of that part's positions:
  ``adj(part_k) = Take(adj, axis, o_k : o_k + n_k)`` (a row: ``Take(adj, axis, o_k)``).

* ``Take(x, axis, key)`` selects along ``axis``: by one position ``p`` (the axis
  goes: ``x[p]``), or by a slice ``(start, count, step)``, the positions
  ``start + step·t`` for ``0 ≤ t < count`` (the axis stays, of length ``count``:
  ``x[1:]`` of ``(n,)`` is ``(n - 1,)``).  ``Take[…, t, …] = x[…, start + step·t, …]``.
  Its adjoint scatters into zeros: ``adj(x) = Concat(0, adj, 0)`` along the axis,
  the zero blocks of lengths ``start`` and ``N − start − count`` (a strided slice
  scatters row by row, a reversed one reverses back).  Neither adjoint is ever a
  dense 0/1 matrix.

Positions and lengths are dims (:mod:`matdiff.expr.dims`): ``x[-1]`` of ``(n,)`` is
``Take(x, 0, n − 1)``.  A position beyond an int dim is a :class:`ShapeError` when the
key is made; beyond a named dim it is an :class:`EvaluationError` when the sizes are
known (:func:`resolve`), naming the index and the size.

The simplifying constructors (a selection of a concatenation is the part; a selection
of a product selects its operands; a product distributes over a concatenation it
reads on a free axis; sums of concatenations of one layout are the concatenation of
the sums) are :mod:`matdiff.expr.simplify.selection`.

>>> import matdiff as md
>>> x = md.vector("x", "n")
>>> x[1:].shape, md.concat([x, md.stack([md.scalar("b")])]).shape
((DimPoly('n - 1'),), (DimPoly('n + 1'),))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np

from ..errors import EvaluationError, ShapeError
from .core import Expr, shape_str
from .dims import Dim, DimPoly, dim_add, dim_mul, dim_size, dim_sub

__all__ = ["Concat", "Take", "Key", "index_key", "slice_key", "resolve", "key_size",
           "sign_of", "part_offsets", "key_text", "fit_sizes"]

#: a key along one axis: ``(p,)`` one position, ``(start, count, step)`` a slice
Key: TypeAlias = tuple[Any, ...]  # (Dim,) or (Dim, Dim, int)


def sign_of(d: Dim) -> int | None:
    """The sign of a dim expression, where every named dim is at least 1: ``1`` (at
    least 1), ``0``, ``-1`` (at most −1), ``None`` (it depends on the sizes).

    >>> sign_of(dim_sub("n", 1)), sign_of(dim_add("n", 1)), sign_of(dim_sub(1, "n"))
    (None, 1, None)
    """
    if isinstance(d, int):
        return (d > 0) - (d < 0)
    if isinstance(d, str):
        return 1
    cs = [c for _, c in d.terms]
    if all(c >= 0 for c in cs):
        return 1  # a non-zero polynomial with non-negative coefficients, names ≥ 1
    if all(c <= 0 for c in cs):
        return -1
    return None


def _le(a: Dim, b: Dim) -> bool | None:
    """Whether ``a ≤ b`` for every size (``None``: it depends)."""
    if isinstance(a, int) and isinstance(b, int):
        return a <= b
    s = sign_of(dim_sub(b, a))
    return None if s is None else s >= 0


def index_key(i: Any, n: Dim, where: str = "") -> Key:
    """The key of a Python int index ``i`` on an axis of dim ``n`` (``-1`` is the
    last position, ``n − 1``)."""
    if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
        kind = type(i).__name__
        raise ShapeError(f"an index must be an int or a slice, not {kind} {i!r}{where}")
    i = int(i)
    if isinstance(n, int):
        if not -n <= i < n:
            raise ShapeError(f"index {i} is out of range for an axis of size {n}{where}")
        return (i % n,)
    return (i,) if i >= 0 else (dim_add(n, i),)


def slice_key(s: slice, n: Dim, where: str = "") -> Key:
    """The key ``(start, count, step)`` of a Python slice on an axis of dim ``n``.

    On an int dim it is NumPy's own reading (``slice.indices``); an empty slice is
    a :class:`ShapeError` (a dim of size 0 would follow).  On a named dim, negative
    bounds count from the end (``x[:-1]`` is ``0, n − 1, 1``) and a step other than
    ±1 needs bounds a constant apart (``x[1:7:2]``): ``x[::2]`` of ``(n,)`` has no
    polynomial length."""
    for v in (s.start, s.stop, s.step):
        if v is not None and (isinstance(v, (bool, np.bool_))
                              or not isinstance(v, (int, np.integer))):
            raise ShapeError(f"a slice's bounds and step must be ints, not "
                             f"{type(v).__name__} {v!r}{where}")
    step = 1 if s.step is None else int(s.step)
    if step == 0:
        raise ShapeError(f"a slice's step must not be zero{where}")
    if isinstance(n, int):
        first, end, step = s.indices(n)
        size = len(range(first, end, step))
        if size == 0:
            raise ShapeError(f"the slice {_slice_text(s)} of an axis of size {n} is "
                             f"empty{where}")
        return (first, size, step)

    def pos(v: int | None, default: Dim) -> Dim:
        if v is None:
            return default
        v = int(v)
        return v if v >= 0 else dim_add(n, v)

    start: Dim
    stop: Dim
    count: Dim
    if step > 0:
        start, stop = pos(s.start, 0), pos(s.stop, n)
    else:
        start, stop = pos(s.start, dim_sub(n, 1)), pos(s.stop, -1)
    span = dim_sub(stop, start) if step > 0 else dim_sub(start, stop)
    if abs(step) == 1:
        count = span
    elif isinstance(span, int):
        count = -(-span // abs(step))
    else:
        raise ShapeError(f"the slice {_slice_text(s)} of an axis of dim {n} has no "
                         f"length in dims (step {step} over {span}); give the axis a "
                         f"size, or bounds a constant apart{where}")
    sign = sign_of(count)
    if sign is not None and sign <= 0:
        raise ShapeError(f"the slice {_slice_text(s)} of an axis of dim {n} is "
                         f"empty{where}")
    return (start, count, step)


def _slice_text(s: slice) -> str:
    def t(v: Any) -> str:
        return "" if v is None else str(v)
    return f"[{t(s.start)}:{t(s.stop)}" + (f":{s.step}]" if s.step is not None else "]")


def key_size(key: Key) -> Dim | None:
    """The length the key leaves on its axis (``None``: an index removes the axis)."""
    return None if len(key) == 1 else key[1]


def key_text(key: Key, n: Dim) -> str:
    """The key as NumPy writes it on an axis of dim ``n``: ``0``, ``-1``, ``1:``,
    ``:-1``, ``::2``, ``2:5``."""
    def num(p: Dim) -> str:
        back = dim_sub(n, p)
        if not isinstance(p, int) and isinstance(back, int) and back > 0:
            return str(-back)
        return str(p)

    if len(key) == 1:
        return num(key[0])
    start, count, step = key
    stop = dim_add(start, dim_mul(count, step))
    # the stop one step past the last position: past the end (≥ n) or before the start
    # (< 0) is the open bound, which NumPy writes empty (a written −2 would count back
    # from the end: x[::−2] of (3,) is x[2], x[0], and x[:−2:−2] only x[2])
    if step > 0:
        a = "" if start == 0 else num(start)
        b = "" if stop == n or _le(n, stop) else num(stop)
    else:
        a = "" if start == dim_sub(n, 1) else num(start)
        b = "" if sign_of(stop) == -1 else num(stop)
    return f"{a}:{b}" + ("" if step == 1 else f":{step}")


def resolve(key: Key, n: Dim, sizes: Mapping[str, int]) -> tuple[int, int, int]:
    """The key in numbers once the sizes are known: ``(start, count, step)`` (an
    index ``p`` is ``(p, 1, 1)``); a position outside the axis is an
    :class:`EvaluationError` naming the index and the size."""
    size = dim_size(n, sizes)
    dim = f"{n} = {size}" if not isinstance(n, int) else str(size)
    if len(key) == 1:
        p = dim_size(key[0], sizes)
        if not 0 <= p < size:
            raise EvaluationError(f"index {key_text(key, n)} (position {p}) is out of "
                                  f"range for an axis of size {dim}")
        return p, 1, 1
    start, count, step = (dim_size(key[0], sizes), dim_size(key[1], sizes), key[2])
    last = start + (count - 1) * step
    if count < 1 or not (0 <= start < size and 0 <= last < size):
        raise EvaluationError(f"the slice [{key_text(key, n)}] (positions {start} to "
                              f"{last}) does not fit an axis of size {dim}")
    return start, count, step


def fit_sizes(expr: Expr, sizes: Mapping[str, int], limit: int = 64) -> dict[str, int]:
    """``sizes`` raised, one step at a time, until every selection of ``expr`` fits
    its axis (``x[5]`` needs ``n ≥ 6``, ``x[-4]`` needs ``n ≥ 4``): for whoever draws
    random sizes (a check of a derivative).  A name is raised at most to ``limit``;
    the sizes are returned as they are when no selection can fit.

    >>> import matdiff as md
    >>> x = md.vector("x", "n")
    >>> fit_sizes(x[5] * x[-4], {"n": 3})
    {'n': 6}
    """
    from .core import topo_order

    out = dict(sizes)
    takes = [t for t in topo_order(expr) if isinstance(t, Take)]
    for _ in range(limit * max(1, len(out))):
        for t in takes:
            n = t.children[0].shape[t.axis]
            try:
                resolve(t.key, n, out)
            except (EvaluationError, KeyError):
                names = sorted(n_ for n_ in _names(n) if out.get(n_, 0) < limit)
                if not names:
                    return out
                for name in names:
                    out[name] = out.get(name, 1) + 1
                break
        else:
            return out
    return out


def _names(d: Dim) -> set[str]:
    from .dims import dim_names

    return dim_names(d)


def numpy_index(ndim: int, axis: int, key: tuple[int, int, int],
                is_index: bool) -> tuple[int | slice, ...]:
    """The NumPy index of a resolved key on ``axis`` of an ``ndim``-axis array."""
    start, count, step = key
    if is_index:
        sel: Any = start
    else:
        stop = start + count * step
        sel = slice(start, stop if stop >= 0 else None, step)
    return (slice(None),) * axis + (sel,)


def part_offsets(parts: Sequence[Expr], axis: int, rows: Sequence[bool]) -> list[Dim]:
    """The offset of each part along the axis, and the total length last."""
    offs: list[Dim] = [0]
    for p, row in zip(parts, rows):
        offs.append(dim_add(offs[-1], 1 if row else p.shape[axis]))
    return offs


def _s() -> Any:
    from .simplify import selection

    return selection


# ============================================================== the nodes
class Concat(Expr):
    """Parts joined along ``axis``; a row part lacks the axis (one position), a block
    part has it (its length).  ``[a, b]`` is ``Concat((a, b), 0, (True, True))``."""

    __slots__ = ()
    kind = "concat"
    order = 12

    def __new__(cls, parts: Sequence[Expr], axis: int, rows: Sequence[bool]) -> Concat:
        parts, rows = tuple(parts), tuple(bool(r) for r in rows)
        if not parts or len(parts) != len(rows):
            raise ShapeError("internal: a concatenation needs its parts and their kinds")
        base = None
        for k, (p, row) in enumerate(zip(parts, rows)):
            if not row and not 0 <= axis < len(p.shape):
                raise ShapeError(f"cannot concatenate along axis {axis} a part of shape "
                                 f"{shape_str(p.shape)} (part {k + 1})")
            other = p.shape if row else p.shape[:axis] + p.shape[axis + 1:]
            if base is None:
                base, first = other, k
            elif other != base:
                raise ShapeError(
                    f"cannot join parts of shapes {shape_str(parts[first].shape)} "
                    f"(part {first + 1}) and {shape_str(p.shape)} (part {k + 1})")
        assert base is not None
        if not 0 <= axis <= len(base):
            raise ShapeError(f"internal: axis {axis} for parts of rank {len(base)}")
        total = part_offsets(parts, axis, rows)[-1]
        shape = base[:axis] + (total,) + base[axis:]
        return cls._intern((int(axis), rows), parts, shape)  # type: ignore[return-value]

    @property
    def axis(self) -> int:
        return self._params[0]

    @property
    def rows(self) -> tuple[bool, ...]:
        return self._params[1]

    def offsets(self) -> list[Dim]:
        """Each part's offset along the axis, then the total."""
        return part_offsets(self.children, self.axis, self.rows)

    def rebuild(self, children: Sequence[Expr]) -> Expr:
        return _s().concat(children, self.axis, self.rows)

    def _eval(self, args: list, sizes: Mapping[str, int]) -> Any:
        ax = self.axis
        arrs = [np.expand_dims(np.asarray(a, dtype=np.float64), ax) if row
                else np.asarray(a, dtype=np.float64) for a, row in zip(args, self.rows)]
        return np.concatenate(arrs, axis=ax)

    def vjp(self, k: int, adj: Expr, nf: int) -> Expr:
        # adj(part_k) = adj read at the part's positions along the axis
        offs = self.offsets()
        if self.rows[k]:
            key: Key = (offs[k],)
        else:
            key = (offs[k], self.children[k].shape[self.axis], 1)
        return _s().take(adj, nf + self.axis, key)


class Take(Expr):
    """A selection along ``axis`` by ``key``: one position ``(p,)`` (the axis goes)
    or a slice ``(start, count, step)`` (the axis has length ``count``)."""

    __slots__ = ()
    kind = "take"
    order = 4

    def __new__(cls, x: Expr, axis: int, key: Key) -> Take:
        if not 0 <= axis < len(x.shape):
            raise ShapeError(f"internal: axis {axis} of shape {shape_str(x.shape)}")
        key = tuple(key)
        if len(key) == 1:
            shape = x.shape[:axis] + x.shape[axis + 1:]
        elif len(key) == 3 and isinstance(key[2], int) and key[2] != 0:
            shape = x.shape[:axis] + (key[1],) + x.shape[axis + 1:]
        else:
            raise ShapeError(f"internal: a key is (p,) or (start, count, step), not {key}")
        for d in key:
            if not isinstance(d, (int, str, DimPoly)):
                raise ShapeError(f"internal: a position must be a dim, not {d!r}")
        return cls._intern((int(axis), key), (x,), shape)  # type: ignore[return-value]

    @property
    def axis(self) -> int:
        return self._params[0]

    @property
    def key(self) -> Key:
        return self._params[1]

    @property
    def is_index(self) -> bool:
        return len(self.key) == 1

    def _label(self) -> str:
        return f"{self.axis}:{self.key}"

    def text(self) -> str:
        """The key as NumPy writes it (``1:``, ``-1``)."""
        return key_text(self.key, self.children[0].shape[self.axis])

    def rebuild(self, children: Sequence[Expr]) -> Expr:
        return _s().take(children[0], self.axis, self.key)

    def resolved(self, sizes: Mapping[str, int]) -> tuple[int, int, int]:
        """The key in numbers (:func:`resolve`)."""
        return resolve(self.key, self.children[0].shape[self.axis], sizes)

    def _eval(self, args: list, sizes: Mapping[str, int]) -> Any:
        a = np.asarray(args[0], dtype=np.float64)
        return a[numpy_index(a.ndim, self.axis, self.resolved(sizes), self.is_index)]

    def vjp(self, k: int, adj: Expr, nf: int) -> Expr:
        # adj(x) = adj scattered into zeros at the selected positions
        return _s().place(adj, nf + self.axis, self.key, self.children[0].shape[self.axis])
