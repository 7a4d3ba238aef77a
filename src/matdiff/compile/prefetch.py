"""Software prefetch for the row kernels: a Numba intrinsic for LLVM's
``llvm.prefetch``.

A row kernel (:mod:`.rowkernel`) reads each row of ``X`` from memory once, for its
dot product ``Xᵢ · w``, and uses it again from the L1 cache for its rank-1 update
``g += vᵢ Xᵢ`` a few rows later.  Its loop does more per row than a GEMV does, and
the hardware prefetcher alone kept too few of the next rows' cache lines in flight:
the dot-product pass over ``X`` took 1.05–1.12x one OpenBLAS GEMV, with the next
rows asked for ahead of the loop 0.77–0.87x, and the whole gradient loop 1.1–1.25x
instead of 1.53x (``benchmarks/README.md``, "The row kernel";
``benchmarks/row_loops.py``).  OpenBLAS's GEMV
kernels issue such prefetches themselves; Numba has no way to, hence this intrinsic.

This module imports Numba: only the generated kernels' modules import it (``import
matdiff`` and ``md.compile`` never do).

``prefetch(X, i, j)`` asks for the cache line holding ``X[i, j]`` (``X`` a 2-D array
of any layout) to be brought into every cache level, for a read; it has no other
effect (a prefetch never faults).  ``prefetch_rows(X, i, r)`` asks for rows ``i``
to ``i + r − 1`` of ``X`` (those that exist), one request per 64-byte line.

>>> import numpy as np
>>> X = np.arange(12.0).reshape(3, 4)
>>> prefetch_rows(X, 1, 4)     # rows 1 and 2 (row 3 does not exist): no effect
"""

from __future__ import annotations

from typing import Any

import numba
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

__all__ = ["prefetch", "prefetch_rows", "LINE"]

#: the bytes of a cache line
LINE = 64


def _name(ptr: ir.Type) -> str:
    # the intrinsic is overloaded on its pointer type: "p0i8" for llvmlite's typed
    # i8*, "p0" once its pointers are opaque
    return "llvm.prefetch.p0" if getattr(ptr, "is_opaque", False) else "llvm.prefetch.p0i8"


@intrinsic
def prefetch(typingctx: Any, arr: Any, i: Any, j: Any) -> Any:
    """Prefetch the line of ``arr[i, j]`` for reading, into all cache levels."""
    if not (isinstance(arr, types.Array) and arr.ndim == 2):
        return None
    sig = types.void(arr, i, j)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = [context.cast(builder, v, t, types.intp)
               for v, t in zip(args[1:], signature.args[1:])]
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx,
                                       wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            _name(i8p))
        # (address, 0: a read, 3: keep in every level, 1: the data cache)
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0),
                          ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, nogil=True)
def prefetch_rows(X: Any, i: int, r: int) -> None:
    """Prefetch rows ``i .. i + r − 1`` of ``X`` (those below ``X.shape[0]``)."""
    n, d = X.shape
    step = max(1, LINE // X.itemsize)
    for k in range(i, min(i + r, n)):
        for j in range(0, d, step):
            prefetch(X, k, j)  # type: ignore[call-arg]  # the typing context is Numba's
