"""One pass over the data: compiled code as a loop over cache-sized row blocks.

A gradient of a sum over examples reads its data twice: ``z = Xw``, then ``g = Xᵀv``.
When every use of the large inputs is local to their rows, the same outputs are a
loop over row blocks ``X_b`` (and ``y_b``, ...), each read from memory once and used
again while it is in cache::

    for each block b:   z_b = X_b w,   v_b = f'(z_b),   g += X_bᵀ v_b,   value += ...

The analysis (:func:`analyse`) looks for a dim ``N`` (the row, or example, axis)
carried as the first axis by the inputs, and classifies every node of the outputs:

* **rows** (``R``): the node has ``N`` once in its shape and each of its entries on
  row ``n`` depends on row ``n`` of the data only.  Inputs and constants with ``N``
  are rows; an element-wise function, a sum or a product whose operands with ``N``
  all index it by one letter kept in the result is rows; so is a function of the
  last axis (``logsumexp``, ``softmax``, by their shape rule) whose argument has its
  row axis elsewhere.
* **sums** (``S``): the node has no ``N`` and is a linear (homogeneous) function of
  sums over ``N`` of rows: a product over the row letter ``n`` of rows and
  row-free factors (``Σₙ Xₙᵢ vₙ``, ``Σₙ Xₙᵢ Xₙⱼ``), a product of one sum with
  row-free factors (``(1/N)·s``), a sum of sums.  Over blocks it is therefore the sum
  of its values on the blocks:  ``S(X) = Σ_b S(X_b)``.
* **affine** (``A``): a sum over the rows plus row-free terms, and linear functions
  of it (``Σₙ zₙ + c``, ``L(Σₙ zₙ + c)``): the first block computes it whole, the
  others leave the free terms out (:func:`_linear_parts`), so ``c`` is added once.
* **free** (``C``): the node does not depend on the rows (``w``, ``W₁ᵀ``, ``1/N``).
  ``N·c`` with ``c`` free (kind ``P``) is free too, except as a term of a sum over
  the rows, where it is ``Σₙ c`` and counted block by block (``∂/∂v`` of a mean of
  ``(z + v)·v`` has ``Σₙ zₙ + N v``).

Anything else — a non-linear function of a sum (``(Σₙ zₙ)²``), a product of two sums,
two row letters (``XXᵀ``), a function along the row axis (``softmax(Xw)``), a
diagonal over ``N``, the row axis not first — refuses, and the whole-array code runs:
blocking is only ever a faster way to compute the same outputs.

The size of ``N`` inside the body is the block's, but ``Size(N)`` (mean's ``1/N``)
is the full ``N``: it is replaced by that number before the body is generated.  Free
nodes that feed the loop are computed once, before it (the prologue), and passed in;
outputs that are rows are written block by block into the full array, sums are added
up block by block in the outputs' precision.

Blocking pays where the data leave the cache between their two reads: the row
data of a block (its inputs and intermediates) take about :data:`BLOCK_BYTES`, and
the whole-array code runs when all the row data take less than :data:`MIN_BYTES`
(measured in ``benchmarks/compare.py``, rows ``*_rowblock``), and where the products
are bound by arithmetic rather than memory (:data:`MAX_INTENSITY`: a wide MLP's
GEMMs).  With two cores free for the process and for BLAS (:func:`threads`) the
blocks are split between two threads, each with its own accumulators and BLAS on
one thread, so no BLAS pool spins against the loop's.

>>> import numpy as np, matdiff as md
>>> X, w = md.matrix("X", "N", "d"), md.vector("w", "d")
>>> f = md.mean((X @ w) ** 2)
>>> fn = md.compile([f, md.derive(f, w)])
>>> rng = np.random.default_rng(0)
>>> X0, w0 = rng.standard_normal((30_000, 100)), rng.standard_normal(100)
>>> v, g = fn(X=X0, w=w0)
>>> type(fn.specialised({"X": X0, "w": w0})).__name__
'RowBlocked'
>>> bool(np.allclose(g, 2 / 30_000 * X0.T @ (X0 @ w0)))
True
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from ..expr.core import Add, Call, Const, Delta, Einsum, Expr, Map, Size, Var, topo_order
from ..expr.dims import dim_names, dim_size, is_name
from ..expr.matrix_functions import _last_axis_kept, _last_axis_reduced
from . import threads as _threads
from .codegen import generate
from .rowkernel import RowKernel, row_kernel, switched_off
from .threads import one_blas_thread, pair, threads

__all__ = ["RowBlocked", "Refused", "analyse", "row_blocked", "block_rows", "disabled",
           "threads", "BLOCK_BYTES", "MIN_BYTES", "MAX_INTENSITY", "MIN_SPLIT"]

#: the bytes of row data (inputs and intermediates with the row axis) one block
#: should hold: well inside a core's L2 (2 MiB here), so its second read is a cache hit
BLOCK_BYTES = 1 << 20
#: below this many bytes of row data (the inputs and the intermediates with the row
#: axis: the whole-array code's working set) the whole-array code runs.  Measured
#: (benchmarks/README.md, "One pass over the data"): at ~9 MB (logistic regression,
#: 10⁴ x 100 float64) blocking was 12% slower to 21% faster from run to run, the
#: data staying in the last-level cache between their two reads; from ~38 MB on
#: (the paper's loss at 10⁵ x 100, an MLP at a batch of 16384) it won in every run
MIN_BYTES = 16 << 20
#: no block has fewer rows than this (each block costs a few µs of Python calls)
MIN_ROWS = 64
#: above this many multiply-adds per byte of row data the products are bound by
#: arithmetic, not by memory, and smaller blocks only make the GEMMs less efficient:
#: measured (benchmarks/README.md) an MLP 784-128-10 (21 per byte) 13–16% slower
#: blocked, one 100-32-10 (3.6 per byte) 11–18% faster, the paper's loss (0.3) 7–14%
MAX_INTENSITY = 8.0
#: the blocks are split between two threads only from this many blocks on: measured
#: with two threads (busy machine), 9 blocks (logistic regression 10⁴ x 100) took
#: 8.1 ms split against 1.2 ms on one thread, 85 (the paper's loss at 10⁵ x 100)
#: 36.8 against 40.5 ms (float64; float32 20.4 against 19.9)
MIN_SPLIT = 32

#: the shape rules of the functions of the last axis, batched over the leading ones
#: (logsumexp, softmax, log_softmax): row-local when the row axis is a leading one
_BATCHED = (_last_axis_reduced, _last_axis_kept)

_STATE = threading.local()


class Refused(Exception):
    """The outputs are not row-local in a dim, or blocking would not pay (the reason
    is the message); internal: :func:`row_blocked` answers ``None`` instead."""


def disabled() -> AbstractContextManager[None]:
    """Within this block, new specialisations use the whole-array code (benchmarks
    compare the two in one process; tests compare their results)."""
    return switched_off(_STATE)


# ------------------------------------------------------------------ analysis
#: a node's class: ``("R", axis)``: rows, ``N`` on ``axis``; ``("S",)``: sums;
#: ``("C",)``: free of the rows; ``("P",)``: free of the rows and ``N·c`` (``c`` free
#: of the rows and of ``N``), a sum over the rows of ``c`` where a sum has it as a term
Kind = tuple


def _classify(node: Expr, kids: Sequence[Kind], dim: str) -> Kind:
    """The class of ``node`` from its children's, or :class:`Refused`."""
    for d in node.shape:
        if not is_name(d) and dim in dim_names(d):
            raise Refused(f"a composite dim {d} holds the row dim {dim}")
    axes = [i for i, d in enumerate(node.shape) if d == dim]
    if len(axes) > 1:
        raise Refused(f"a node of shape {node.shape} has the row dim twice")
    here: Kind = ("R", axes[0]) if axes else ("C",)
    if isinstance(node, (Var, Const)):
        return here
    if isinstance(node, Size):
        # N itself is Σₙ 1, a sum over the rows where a sum takes it as a term;
        # anywhere else it is the full size (a number replaces it)
        return ("P",) if node.dim == dim else ("C",)
    if isinstance(node, Delta):
        if axes or dim in dim_names(node.dim):
            raise Refused("a diagonal over the row dim")
        return ("C",)
    rows = [k for k in kids if k[0] == "R"]
    sums = [k for k in kids if k[0] in "SA"]
    if isinstance(node, Einsum):
        return _classify_einsum(node, kids, dim, here)
    if isinstance(node, (Add, Map)):
        if axes:  # every term (argument) has the node's shape, so all are rows
            return here
        if sums and isinstance(node, Map):
            raise Refused(f"{node.fn} of a sum over the rows is not linear in it")
        props = [k for k in kids if k[0] == "P"]
        if sums:  # N·c beside sums over the rows is one too: Σₙ c; a free term
            # makes the sum affine (A): its free part is added in one block only
            affine = len(sums) + len(props) < len(kids) or any(k[0] == "A" for k in sums)
            return ("A",) if affine else ("S",)
        return ("P",) if isinstance(node, Add) and len(props) == len(kids) else ("C",)
    if isinstance(node, Call) and node.spec.shape in _BATCHED and len(kids) == 1:
        if sums:
            raise Refused(f"{node.fn} of a sum over the rows")
        if rows:
            ax = rows[0][1]
            if ax == len(node.children[0].shape) - 1:
                raise Refused(f"{node.fn} along the row axis")
            return ("R", ax)
        return ("C",)
    if rows or sums or axes:
        raise Refused(f"{type(node).__name__} {getattr(node, 'fn', '')} of the rows")
    return ("C",)


def _classify_einsum(node: Einsum, kids: Sequence[Kind], dim: str, here: Kind) -> Kind:
    letters = {c for c, d in node.letter_dims().items() if d == dim}
    if len(letters) > 1:
        raise Refused("a product pairs two row letters (like X Xᵀ)")
    sums = [k for k in kids if k[0] in "SA"]
    rows = [k for k in kids if k[0] == "R"]
    if sums and (rows or len(sums) > 1):
        raise Refused("a product of a sum over the rows with rows or another sum is "
                      "not linear in the blocks")
    if sums:  # linear in its one sum (a factor N of kind P is the full size here)
        return sums[0]
    if rows:
        (n,) = letters
        for k, spec in zip(kids, node.specs):
            if k[0] == "R" and spec[k[1]] != n:  # pragma: no cover - one letter per dim
                raise Refused("rows indexed by two letters")
        return here if n in node.out else ("S",)
    # N·c (c free of the rows and of N) is proportional to N
    props = [k for k in kids if k[0] == "P"]
    return ("P",) if len(props) == 1 else ("C",)


def analyse(outputs: Sequence[Expr], dim: str) -> dict[int, Kind]:
    """The class of every node of ``outputs`` (by ``id``) for the row dim ``dim``;
    :class:`Refused` where they are not row-local.

    >>> import matdiff as md
    >>> X, w = md.matrix("X", "N", "d"), md.vector("w", "d")
    >>> s = md.sum(md.tanh(X @ w))
    >>> kinds = analyse([s], "N")
    >>> kinds[id(s)], kinds[id(X)], kinds[id(w)]
    (('S',), ('R', 0), ('C',))
    >>> analyse([md.sum(X @ w) ** 2], "N")
    Traceback (most recent call last):
    ...
    matdiff.compile.rowblock.Refused: pow of a sum over the rows is not linear in it
    """
    kinds: dict[int, Kind] = {}
    for out in outputs:
        for node in topo_order(out):
            if id(node) not in kinds:
                kinds[id(node)] = _classify(node, [kinds[id(c)] for c in node.children],
                                            dim)
    for node in (n for out in outputs for n in topo_order(out)):
        if isinstance(node, Var) and kinds[id(node)][0] == "R" and kinds[id(node)][1]:
            raise Refused(f"{node.name} has the row dim {dim} on axis "
                          f"{kinds[id(node)][1]}, not first")
    return kinds


# ------------------------------------------------------------------ rewriting
def _rewrite(outputs: Sequence[Expr], kinds: Mapping[int, Kind], dim: str,
             sizes: Mapping[str, int], taken: set[str]
             ) -> tuple[list[Expr], list[tuple[str, Expr]]]:
    """The outputs with ``Size`` of a dim holding ``dim`` made its full number, and
    every free node that feeds a row or sum node (other than a leaf) made a new
    variable; those variables and the nodes they stand for (the prologue).

    A term ``N·c`` of a sum over the rows is ``Σₙ c``: there ``N`` stays the dim,
    which the body's generator sizes as the block's rows."""
    new: dict[int, Expr] = {}
    blk: dict[int, Expr] = {}

    def per_block(node: Expr) -> Expr:
        # a node of kind P inside a sum over the rows: N as the block's size
        if id(node) not in blk:
            blk[id(node)] = node if isinstance(node, Size) else node.rebuild(
                [per_block(c) if kinds[id(c)][0] == "P" else new[id(c)]
                 for c in node.children])
        return blk[id(node)]

    hoisted: list[tuple[str, Expr]] = []
    parents_need: set[int] = set()
    #: nodes with a delta below them stay in the body, structured (a prologue would
    #: return them as dense arrays: an identity d x d)
    delta: set[int] = set()
    #: nodes with a variable below them (the others are numbers the body folds)
    var: set[int] = set()
    for out in outputs:
        for node in topo_order(out):
            if kinds[id(node)][0] not in "CP":
                parents_need.update(id(c) for c in node.children)
            if isinstance(node, Delta) or any(id(c) in delta for c in node.children):
                delta.add(id(node))
            if isinstance(node, Var) or any(id(c) in var for c in node.children):
                var.add(id(node))
    for out in outputs:
        for node in topo_order(out):
            if id(node) in new:
                continue
            if isinstance(node, Size) and dim in dim_names(node.dim):
                new[id(node)] = Const(float(dim_size(node.dim, sizes)))
                continue
            if kinds[id(node)][0] == "C" and id(node) in parents_need \
                    and id(node) in var and id(node) not in delta \
                    and not isinstance(node, Var):
                k = len(hoisted)
                name = f"_rowblock_c{k}"
                while name in taken:
                    name += "_"
                taken.add(name)
                hoisted.append((name, node))
                new[id(node)] = Var(name, node.shape)
                continue
            if isinstance(node, Add) and kinds[id(node)][0] in "SA":
                kids = [per_block(c) if kinds[id(c)][0] == "P" else new[id(c)]
                        for c in node.children]
            else:
                kids = [new[id(c)] for c in node.children]
            same = all(a is b for a, b in zip(kids, node.children))
            new[id(node)] = node if same else node.rebuild(kids)
    return [new[id(o)] for o in outputs], hoisted


# ------------------------------------------------------------------ blocks and threads
def block_rows(n: int, row_bytes: int, target: int | None = None) -> int:
    """Rows per block for ``n`` rows of ``row_bytes`` each: about ``target`` bytes,
    at least :data:`MIN_ROWS`, and blocks of equal size (the last at most
    ``nblocks − 1`` rows smaller).

    >>> block_rows(100_000, 800 + 8 * 6)
    1235
    """
    target = BLOCK_BYTES if target is None else target
    want = max(MIN_ROWS, target // max(row_bytes, 1))
    nblocks = max(1, math.ceil(n / want))
    return math.ceil(n / nblocks)


# ------------------------------------------------------------------ the driver
class RowBlocked:
    """The compiled outputs as a loop over row blocks; called like the whole-array
    function it replaces (arrays in the order of the inputs, a tuple out).

    ``source`` is the body of one block; ``rows`` the rows of each block; ``dim``
    the row dim."""

    def __init__(self, dim: str, n: int, rows: int, row_args: Sequence[bool],
                 kinds: Sequence[Kind], where: Sequence[int],
                 prologue: Callable[..., tuple] | None, nhoisted: int,
                 body: Callable[..., tuple], last: Callable[..., tuple] | None,
                 first: Callable[..., tuple] | None, source: str, nthreads: int = 1,
                 halves: bool = False) -> None:
        self.dim, self.n, self.rows = dim, n, rows
        self.row_args = tuple(row_args)
        #: per output: its class, and its index among the prologue's results (a free
        #: output) or the body's (rows, sums)
        self.kinds, self.where = tuple(kinds), tuple(where)
        self.body_kinds = tuple(k for k in kinds if k[0] != "C")
        self.prologue, self.nhoisted = prologue, nhoisted
        #: ``body`` for a full block, ``last`` for the shorter last one; where an
        #: output is affine in the sums (``Σₙ sₙ + c``), ``body`` and ``last`` leave
        #: out the free part ``c`` and ``first`` (the first block's) keeps it
        self.body, self.last, self.first = body, last, first
        self.source = source
        self.nthreads = nthreads
        #: two blocks, the halves of the batch, one a thread (``compile/threads.py``'s
        #: data-parallel split of compute-bound code), not a loop over cache blocks
        self.halves = halves
        self.starts = list(range(0, n, rows))
        self._lock = threading.Lock()  # the two threads make the row outputs once

    def _run(self, arrs: Sequence[Any], pre: tuple, starts: Sequence[int],
             acc: list, first: Callable[..., tuple] | None = None,
             rows_out: list | None = None) -> list:
        """The body's outputs over the blocks starting at ``starts``, into ``acc``
        (one entry per body output): sums added up (an entry ``None`` starts a new
        sum), rows written into full arrays (made at the first block when ``None``)
        held in ``rows_out`` (default ``acc``; the two threads share one);
        ``first``: the function for the first of ``starts`` instead of ``body``."""
        n, rows, row_args = self.n, self.rows, self.row_args
        rows_out = acc if rows_out is None else rows_out

        def block(s: int, e: int) -> list:
            return [a[s:e] if r else a for a, r in zip(arrs, row_args)]

        if isinstance(self.body, RowKernel) and self.body.active:
            # the row kernel streams any number of rows in one call: one call for
            # these blocks (after the first block's own function, a NumPy body made
            # for a block's size), not one a block (~15 µs of Python each)
            s = starts[0]
            if first is not None:
                self._add(first(*block(s, min(s + rows, n)), *pre), s, acc, rows_out)
                s += rows
            e = min(starts[-1] + rows, n)
            outs = self.body.rows(*block(s, e), *pre) if s < e else ()
            if outs is not None:
                if s < e:
                    self._add(outs, s, acc, rows_out)
                return acc
            starts, first = [b for b in starts if b >= s], None  # not taken: blocks
        for i, s in enumerate(starts):
            e = min(s + rows, n)
            fn = first if i == 0 and first is not None else \
                self.body if e - s == rows or self.last is None else self.last
            self._add(fn(*block(s, e), *pre), s, acc, rows_out)
        return acc

    def _add(self, outs: Sequence[Any], s: int, acc: list, rows_out: list) -> None:
        """The body's outputs ``outs`` for the rows from ``s`` into ``acc``: sums
        added up, rows written into the full arrays of ``rows_out``."""
        for k, (o, kind) in enumerate(zip(outs, self.body_kinds)):
            if kind[0] in "SA":
                if acc[k] is None:
                    acc[k] = np.array(o, copy=True)  # owned: added into in place
                else:
                    acc[k] += o
            else:  # rows: these rows of the full array
                if rows_out[k] is None:
                    with self._lock:
                        if rows_out[k] is None:
                            shape = list(np.shape(o))
                            shape[kind[1]] = self.n
                            rows_out[k] = np.empty(shape, dtype=np.asarray(o).dtype)
                e = s + np.shape(o)[kind[1]]
                rows_out[k][(slice(None),) * kind[1] + (slice(s, e),)] = o

    def __call__(self, *arrs: Any) -> tuple:
        # the blocks are memory-bound (or each a half of the batch on its own
        # thread): BLAS on one thread, so that no BLAS worker spins against them
        with one_blas_thread():
            pre = self.prologue(*arrs) if self.prologue is not None else ()
            hoisted = pre[:self.nhoisted]
            starts = self.starts
            acc: list = [None] * len(self.body_kinds)
            if self.nthreads > 1 and len(starts) >= (2 if self.halves else
                                                     max(MIN_SPLIT, 4)):
                self._two_threads(arrs, hoisted, starts, acc)
            else:
                self._run(arrs, hoisted, starts, acc, self.first)
        out = []
        for k, kind in enumerate(self.kinds):
            if kind[0] == "C":
                out.append(pre[self.where[k]])
                continue
            a = acc[self.where[k]]
            out.append(a[()] if kind[0] in "SA" and a.ndim == 0 else a)  # a scalar
        return tuple(out)

    def _two_threads(self, arrs: Sequence[Any], pre: tuple, starts: Sequence[int],
                     acc: list) -> None:
        """The blocks ``starts`` on two threads (:func:`~.threads.pair`), the first
        half here (with the first block's function), the second on the other
        thread: each adds its own sums, ``S(X) = S(X_first) + S(X_second)``; both
        write their rows into the same arrays (different rows)."""
        half = (len(starts) + 1) // 2
        other: list = [None] * len(acc)
        pair(lambda: self._run(arrs, pre, starts[:half], acc, self.first),
             lambda: self._run(arrs, pre, starts[half:], other, rows_out=acc))
        for k, kind in enumerate(self.body_kinds):
            if kind[0] in "SA" and other[k] is not None:
                acc[k] += other[k]


def _row_macs(node: Einsum, dim: str, sizes: Mapping[str, int]) -> float:
    """The multiply-adds of the product ``node`` per row (the row dim as size 1),
    contracted pairwise in opt_einsum's greedy order (as the planner would, roughly:
    a product of several operands is never the product of all its letters' sizes)."""
    import opt_einsum as oe

    letters = {c: oe.get_symbol(i) for i, c in enumerate(sorted(node.letter_dims()))}
    size = {c: 1 if d == dim else dim_size(d, sizes) for c, d in node.letter_dims().items()}
    spec = ",".join("".join(letters[c] for c in s) for s in node.specs) + "->" + "".join(
        letters[c] for c in node.out)
    if len(node.children) == 1:
        return float(math.prod(size.values()))
    shapes = [tuple(size[c] for c in s) for s in node.specs]
    info = oe.contract_path(spec, *shapes, shapes=True, optimize="greedy")[1]
    return float(info.opt_cost) / 2  # opt_einsum counts a multiply-add as two


def _all_nodes(outputs: Sequence[Expr]) -> list[Expr]:
    """Every node of ``outputs`` once, children first."""
    seen: set[int] = set()
    out: list[Expr] = []
    for o in outputs:
        for node in topo_order(o):
            if id(node) not in seen:
                seen.add(id(node))
                out.append(node)
    return out


def _row_dims(outputs: Sequence[Expr], inputs: Sequence[str], sizes: Mapping[str, int]
              ) -> list[str]:
    """Candidate row dims: the named dims on the first axis of some input, those
    whose inputs hold the most entries first."""
    shapes: dict[str, tuple] = {}
    for out in outputs:
        for node in topo_order(out):
            if isinstance(node, Var):
                shapes.setdefault(node.name, node.shape)
    found: dict[str, int] = {}
    for name in inputs:
        shape = shapes.get(name, ())
        if shape and is_name(shape[0]):
            found[shape[0]] = found.get(shape[0], 0) + math.prod(
                dim_size(d, sizes) for d in shape)
    return sorted(found, key=lambda d: -found[d])


def row_blocked(outputs: Sequence[Expr], inputs: Sequence[str], sizes: Mapping[str, int],
                table: Any, min_bytes: int | None = None,
                block_bytes: int | None = None, blocks: int | None = None
                ) -> RowBlocked | None:
    """The outputs compiled as a loop over row blocks, or ``None`` where they are not
    row-local in any dim or blocking does not pay (the caller keeps its whole-array
    code).  ``inputs`` and ``sizes`` as for :func:`~.codegen.generate`;
    ``min_bytes`` and ``block_bytes`` default to :data:`MIN_BYTES` and
    :data:`BLOCK_BYTES` (read at the call: tests and benchmarks set them).
    ``blocks=2``: the batch in two halves, one a thread (the thread policy's
    data-parallel split, ``compile/threads.py``, which decides where it pays: the
    size and intensity checks are skipped), ``None`` where a half would have fewer
    than :data:`~.threads.MIN_HALF_ROWS` rows."""
    if getattr(_STATE, "off", False):
        return None
    min_bytes = MIN_BYTES if min_bytes is None else min_bytes
    itemsize = np.dtype(getattr(table, "precision", "float64")).itemsize
    for dim in _row_dims(outputs, inputs, sizes):
        try:
            return _build(outputs, inputs, sizes, table, dim, itemsize, min_bytes,
                          block_bytes, blocks)
        except Refused:
            continue
    return None


def _build(outputs: Sequence[Expr], inputs: Sequence[str], sizes: Mapping[str, int],
           table: Any, dim: str, itemsize: int, min_bytes: int,
           block_bytes: int | None, blocks: int | None = None) -> RowBlocked:
    kinds = analyse(outputs, dim)
    new_outs, hoisted = _rewrite(outputs, kinds, dim, sizes, set(inputs))
    # the rewritten graph (rebuilt through the simplifying constructors) is analysed
    # again: its classes are the ones the loop relies on
    new_kinds = analyse(new_outs, dim)
    # an output proportional to N (P) is a free one: the full size, once
    out_kinds = [("C",) if new_kinds[id(o)][0] == "P" else new_kinds[id(o)]
                 for o in new_outs]
    n = sizes[dim]
    # a block's working set: every distinct node with the row axis, per row
    row_bytes = 0
    for node in _all_nodes(new_outs):
        if new_kinds[id(node)][0] == "R":
            row_bytes += itemsize * math.prod(
                dim_size(d, sizes) for d in node.shape if d != dim)
    if blocks is None:  # cache blocks: where the data's second read would miss
        if row_bytes * n < min_bytes:
            raise Refused(f"{row_bytes * n} bytes of row data: blocking does not pay")
        macs = sum(_row_macs(node, dim, sizes) for node in _all_nodes(new_outs)
                   if isinstance(node, Einsum)
                   and any(new_kinds[id(c)][0] == "R" for c in node.children))
        if macs > MAX_INTENSITY * row_bytes:
            raise Refused(f"{macs / row_bytes:.1f} multiply-adds a byte: bound by "
                          "arithmetic")
        rows = block_rows(n, row_bytes, block_bytes)
    else:  # the batch in ``blocks`` parts, one a thread (the caller's choice)
        rows = math.ceil(n / blocks)
        if rows < _threads.MIN_HALF_ROWS:
            raise Refused(f"{rows} rows a part: too few to split")
    if rows >= n:
        raise Refused("one block holds every row")
    shapes = {node.name: node.shape for out in outputs for node in topo_order(out)
              if isinstance(node, Var)}
    row_args = [bool(shapes.get(name)) and shapes[name][0] == dim for name in inputs]
    if all(k[0] == "C" for k in out_kinds):
        raise Refused("no output depends on the rows")
    # the prologue: the hoisted free nodes, then the free outputs, at the full sizes;
    # the body: the other outputs, at the block's size
    pre_exprs = [e for _, e in hoisted]
    body_outs: list[Expr] = []
    where: list[int] = []
    for o, new_o, k in zip(outputs, new_outs, out_kinds):
        group, item = (pre_exprs, o) if k[0] == "C" else (body_outs, new_o)
        where.append(len(group))
        group.append(item)
    prologue = generate(pre_exprs, list(inputs), sizes, table,
                        fname="prologue").fn if pre_exprs else None
    body_inputs = list(inputs) + [name for name, _ in hoisted]
    first = None
    if any(k[0] == "A" for k in out_kinds):  # the free parts in the first block only
        first = generate(body_outs, body_inputs, {**sizes, dim: rows}, table,
                         fname="block").fn
        body_outs = _linear_parts(body_outs, new_kinds)
    body = generate(body_outs, body_inputs, {**sizes, dim: rows}, table, fname="block")
    tail = n - (len(range(0, n, rows)) - 1) * rows
    last = None
    if tail != rows:
        last = generate(body_outs, body_inputs, {**sizes, dim: tail}, table,
                        fname="block").fn
    # the body as one Numba loop over its rows, where it translates (rowkernel.py)
    body_fn, last = row_kernel(body_outs, body_inputs, dim, table, body.fn, last,
                               len(range(0, n, rows)))
    return RowBlocked(dim, n, rows, row_args, out_kinds, where, prologue, len(hoisted),
                      body_fn, last, first, body.source, threads(),
                      halves=blocks is not None)


def _linear_parts(outputs: Sequence[Expr], kinds: Mapping[int, Kind]) -> list[Expr]:
    """The outputs with the free terms of every affine sum (kind A) left out: of
    ``L(Σₙ sₙ + c)`` (``L`` linear), ``L(Σₙ sₙ)``, which the blocks after the first
    add up."""
    new: dict[int, Expr] = {}
    for out in outputs:
        for node in topo_order(out):
            if id(node) in new:
                continue
            if kinds[id(node)][0] != "A":
                new[id(node)] = node
            elif isinstance(node, Add):
                new[id(node)] = node.rebuild([new[id(c)] for c in node.children
                                              if kinds[id(c)][0] in "SAP"])
            else:  # a product linear in its one affine factor
                new[id(node)] = node.rebuild([new[id(c)] for c in node.children])
    return [new[id(o)] for o in outputs]
