"""Module tables: the only thing that differs between the NumPy, JAX and PyTorch backends.

Generated code calls array operations through one name, ``xp``, bound to a table
built here.  Every table has the same entries with NumPy's meaning:

* element-wise: one entry per function of :data:`matdiff.expr.functions.FUNCTIONS`,
  under its name (``exp``, ``max``, ``pow``, a user's ``erf``), taken from its
  definition (:func:`_add_elementwise`), where the definition has an implementation
  for the backend;
* products and reductions: ``einsum(spec, *ops)``, ``tensordot(a, b, (ia, ib))``,
  ``sum(a, axes)``, ``transpose(a, perm)``;
* matrix functions: one entry per definition of
  :data:`matdiff.expr.matrix_functions.MATRIX_FUNCTIONS` (``inv``, ``det``,
  ``logdet``, ``logsumexp``, ``softmax``), from the definition
  (:func:`_add_matrix_functions`), and ``solve`` (``A⁻¹b`` compiles as one);
* building results, in the table's dtype (and, for torch, device; a table is made
  per backend, dtype and device, see :func:`get_backend`): ``asarray``,
  ``scalar(v)``, ``dim(n)`` (a size read from an input's shape as a number to
  compute with: mean's 1/N; a plain or 0-d value of the table's precision that
  scales an array without changing its dtype, symbolic under ``jax.export`` and
  ``torch.export``), ``full(shape, v)``,
  ``dense(a, shape)`` (a broadcastable ``a`` copied out at ``shape``),
  ``embed(core, shape, pattern)`` (a structured tensor made dense: ``pattern``
  gives each axis its index class, ``core`` is indexed by the classes; axes of one
  class are a diagonal), ``add_embed(acc, core, pattern)`` (the same, added into
  the dense ``acc``, which the generated code owns);
* stacking and selection: ``concat(parts, axis)``, ``flip(a, axis)`` (basic
  indexing ``a[1:]`` is the arrays' own);
* a flag for the generator, not an operation: ``tall_gemm_transposed``, whether a
  tall product of two matrices is written ``(BᵀAᵀ)ᵀ`` (NumPy float64 on OpenBLAS,
  where that is faster: :func:`matdiff.compile.plan.transposed_product`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..errors import EvaluationError, MatdiffError
from ..expr.functions import FUNCTIONS, implementation, version
from ..expr.matrix_functions import MATRIX_FUNCTIONS

__all__ = ["get_backend", "working_dtype", "BACKENDS", "DTYPES", "SINGULAR"]

#: the message of an inverse (or solve) of a singular matrix
SINGULAR = ("the matrix is singular: its inverse, which inv(X) and the derivatives of "
            "det(X) and logdet(X) need, does not exist")

BACKENDS = ("numpy", "jax", "torch")

#: (backend, dtype, device) -> its table
_TABLES: dict[tuple, SimpleNamespace] = {}

#: table key -> the version of the function table its table was brought up to
_SYNCED: dict[tuple, int] = {}
#: table key -> the matrix functions its table has
_MATRIX_SYNCED: dict[tuple, tuple] = {}

#: the dtypes generated code computes in (float16 and bfloat16 inputs compute in float32)
DTYPES = ("float64", "float32")


def _singular_is_an_error(fn: Any, linalg_error: type[Exception]) -> Any:
    """``fn`` (an inverse or a solve) with the library's singular-matrix error made an
    :class:`EvaluationError` (:data:`SINGULAR`)."""
    def checked(*args: Any) -> Any:
        try:
            return fn(*args)
        except linalg_error as exc:
            raise EvaluationError(SINGULAR) from exc

    return checked


def _class_sizes(shape: tuple, pattern: tuple) -> list[int]:
    k = max(pattern) + 1 if pattern else 0
    sizes = [0] * k
    for n, c in zip(shape, pattern):
        sizes[c] = n
    return sizes


def _openblas() -> bool:
    """Whether NumPy's BLAS is OpenBLAS (its build configuration says so)."""
    try:
        blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
    except (AttributeError, KeyError, TypeError):  # NumPy < 1.25: unknown
        return False
    return "openblas" in str(blas.get("name", "")).lower()


def _np_sum(a: Any, axes: tuple) -> Any:
    """Σ over ``axes``: NumPy's own reduce (the ufunc's, without ``np.sum``'s wrapper),
    but over one axis of a float matrix the product with a vector of ones (a GEMV;
    where: :func:`sum_by_gemv`).
    NumPy's reduction runs an inner loop a row, which over a short row or into a
    short accumulator costs more than the additions (measured, one thread: a column
    sum at 391 × 32 takes 11 µs against 3.0 µs as 1ᵀA, 113 µs against 16 µs at
    4096 × 10, 270 µs against 166 µs at 4096 × 128)."""
    if sum_by_gemv(a, axes):
        if axes[0] in (0, -2):
            return np.ones(a.shape[0], a.dtype) @ a
        return a @ np.ones(a.shape[1], a.dtype)
    return np.add.reduce(a, axes)


#: a sum over fewer entries than this is NumPy's reduce (the product costs two calls)
GEMV_SUM = 1024
#: NumPy sums a contiguous run of more than this many entries pairwise (more accurate
#: than a GEMV's running sums); up to it, its sum is eight running sums, as a GEMV's
PAIRWISE = 128


def sum_by_gemv(a: Any, axes: tuple) -> bool:
    """Whether the NumPy table's ``sum(a, axes)`` is a product with ones: one axis of
    a float matrix of :data:`GEMV_SUM` entries or more, unless that axis is contiguous
    and longer than :data:`PAIRWISE` (NumPy's pairwise sum is kept there: its
    rounding error grows as log n, a GEMV's as n)."""
    if not (len(axes) == 1 and getattr(a, "ndim", 0) == 2 and a.dtype.kind == "f"
            and a.size >= GEMV_SUM):
        return False
    ax = axes[0] % 2
    return a.strides[ax] != a.itemsize or a.shape[ax] <= PAIRWISE


def _numpy(dtype: str = "float64", device: Any = None) -> SimpleNamespace:
    from numpy.lib.stride_tricks import as_strided

    f = np.dtype(dtype).type

    t = SimpleNamespace(name="numpy", inf=math.inf, nan=math.nan)
    t.einsum = np.einsum
    t.tensordot = np.tensordot
    t.sum = _np_sum
    t.transpose = np.transpose
    t.linalg_error = np.linalg.LinAlgError
    t.solve = _singular_is_an_error(np.linalg.solve, np.linalg.LinAlgError)
    t.dtype, t.precision = f, dtype
    # OpenBLAS's DGEMM is faster with the long side of the result first; its SGEMM
    # is not (measured: plan.transposed_product)
    t.tall_gemm_transposed = dtype == "float64" and _openblas()
    t.asarray = lambda a: np.asarray(a, dtype=f)
    t.scalar = f
    # a Python float: NumPy's weak scalar (float32 arrays stay float32), as the
    # folded constants were, and five times faster to compute with than a NumPy
    # scalar; 0 is the table's scalar, so that 1/N at N = 0 is inf as NumPy divides
    # (Python's 1.0 / 0.0 raises)
    t.dim = lambda n: float(n) if n else f(0)
    t.full = lambda shape, v: np.full(shape, v, dtype=f)
    t.copy = np.array
    t.dense = lambda a, shape: np.array(np.broadcast_to(a, shape), dtype=f)

    def _diag_view(out, shape, pattern):
        sizes = _class_sizes(shape, pattern)
        strides = [0] * len(sizes)
        for s, c in zip(out.strides, pattern):
            strides[c] += s
        return as_strided(out, shape=sizes, strides=strides)

    def embed(core, shape, pattern):
        out = np.zeros(shape, dtype=f)
        _diag_view(out, shape, pattern)[...] = core
        return out

    def add_embed(acc, core, pattern):
        view = _diag_view(acc, acc.shape, pattern)
        view += core
        return acc

    t.embed, t.add_embed = embed, add_embed
    t.concat = lambda parts, axis: np.concatenate(parts, axis=axis)
    t.flip = np.flip
    return t


def _jax(dtype: str = "float64", device: Any = None) -> SimpleNamespace:
    # no global flag: float64 code is traced and run inside jax.enable_x64(True)
    # (matdiff.compile.api), float32 code outside it
    import jax
    import jax.numpy as jnp

    f = jnp.dtype(dtype)

    def scoped(fn: Any) -> Any:
        """``fn`` run with 64-bit types on for its call only (float64 tables)."""
        if dtype != "float64":
            return fn

        def in_x64(*args: Any) -> Any:
            with jax.enable_x64(True):
                return fn(*args)

        return in_x64

    t = SimpleNamespace(name="jax", inf=math.inf, nan=math.nan, tall_gemm_transposed=False,
                        jit=lambda fn: scoped(jax.jit(fn)))
    t.einsum = jnp.einsum
    t.tensordot = jnp.tensordot
    t.sum = lambda a, axes: jnp.sum(a, axis=axes)
    t.transpose = jnp.transpose
    t.solve = jnp.linalg.solve
    t.dtype, t.precision = f, dtype
    t.asarray = scoped(lambda a: jnp.asarray(a, dtype=f))
    t.scalar = lambda v: jnp.asarray(v, dtype=f)
    t.dim = t.scalar  # a symbolic size (jax.export) becomes a value this way too
    t.full = lambda shape, v: jnp.full(shape, v, dtype=f)
    t.copy = jnp.array
    t.dense = lambda a, shape: jnp.broadcast_to(jnp.asarray(a, dtype=f), shape)

    def _index(shape, pattern):
        sizes = _class_sizes(shape, pattern)
        k = len(sizes)
        idx = []
        for c in pattern:
            sh = [1] * k
            sh[c] = sizes[c]
            idx.append(jnp.arange(sizes[c]).reshape(sh))
        return tuple(idx)

    t.embed = lambda core, shape, pattern: jnp.zeros(shape).at[_index(shape, pattern)].set(
        core)
    t.add_embed = lambda acc, core, pattern: acc.at[_index(acc.shape, pattern)].add(core)
    t.concat = lambda parts, axis: jnp.concatenate(parts, axis=axis)
    t.flip = jnp.flip
    return t


def _torch(dtype: str = "float64", device: Any = None) -> SimpleNamespace:
    import torch

    f64 = getattr(torch, dtype)   # the table's dtype (float64 or float32)
    dev = torch.device(device) if device is not None else None

    def _t(a: Any):
        return a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=f64,
                                                                     device=dev)

    t = SimpleNamespace(name="torch", inf=math.inf, nan=math.nan, tall_gemm_transposed=False)
    # torch's binary functions take tensors (a Python number is a constant's value)
    t.lift = lambda fn: (lambda *args: fn(*[_t(a) for a in args]))
    t.einsum = torch.einsum
    t.tensordot = lambda a, b, axes: torch.tensordot(a, b, dims=(list(axes[0]), list(axes[1])))
    t.sum = lambda a, axes: torch.sum(a, dim=axes)
    t.transpose = torch.permute
    t.linalg_error = torch.linalg.LinAlgError
    t.solve = _singular_is_an_error(torch.linalg.solve, torch.linalg.LinAlgError)
    t.dtype, t.device, t.precision = f64, dev, dtype
    t.asarray = lambda a: torch.as_tensor(a, dtype=f64, device=dev)
    t.scalar = lambda v: torch.tensor(v, dtype=f64, device=dev)
    # a Python number scales a tensor without changing its dtype; under torch.export
    # the size is a SymInt and this a SymFloat (no specialisation)
    t.dim = lambda n: n * 1.0
    t.full = lambda shape, v: torch.full(tuple(shape), v, dtype=f64, device=dev)
    t.copy = torch.clone
    t.dense = lambda a, shape: torch.broadcast_to(_t(a), tuple(shape)).clone()

    def _diag_view(out, pattern):
        sizes = _class_sizes(tuple(out.shape), pattern)
        strides = [0] * len(sizes)
        for s, c in zip(out.stride(), pattern):
            strides[c] += s
        return torch.as_strided(out, sizes, strides)

    def embed(core, shape, pattern):
        out = torch.zeros(tuple(shape), dtype=f64, device=dev)
        _diag_view(out, pattern).copy_(torch.broadcast_to(_t(core), _class_sizes(shape,
                                                                                  pattern)))
        return out

    def add_embed(acc, core, pattern):
        _diag_view(acc, pattern).add_(_t(core))
        return acc

    t.embed, t.add_embed = embed, add_embed
    t.concat = lambda parts, axis: torch.cat([_t(p) for p in parts], dim=axis)
    t.flip = lambda a, axis: torch.flip(a, dims=(axis,))
    return t


def working_dtype(raws: Iterable[Any], backend: str) -> tuple[str, Any]:
    """The dtype (``float64`` or ``float32``) and, for torch, the device the generated
    code computes in for these inputs: NumPy's promotion of the inputs' dtypes
    (float32 stays float32, float32 with float64 is float64, integers and booleans
    alone compute in float64); Python numbers and lists have no dtype of their own
    and follow the arrays, as in NumPy.  The device is the first tensor's."""
    dts: list[Any] = []
    device = None
    for r in raws:
        dt = getattr(r, "dtype", None)
        if dt is None:
            continue
        dts.append(dt)
        if device is None and backend == "torch":
            device = getattr(r, "device", None)
    key = tuple(dts)
    try:  # the promotion of these dtypes, once (str(dtype) alone costs ~3 µs a call)
        return _WORKING[key], device
    except KeyError:
        _WORKING[key] = kind = _promoted([str(dt).removeprefix("torch.") for dt in dts])
        return kind, device
    except TypeError:  # an unhashable dtype
        return _promoted([str(dt).removeprefix("torch.") for dt in dts]), device


#: the inputs' dtypes -> the dtype their code computes in (:func:`working_dtype`)
_WORKING: dict[tuple, str] = {}


def _promoted(names: list[str]) -> str:
    """NumPy's promotion of dtypes by name, as :func:`working_dtype` states it."""
    if not names:
        return "float64"
    try:
        res = np.result_type(*[np.dtype(n) for n in names])
    except TypeError:   # bfloat16 and other types NumPy does not know: float32
        return "float32"
    if res.kind == "f" and res.itemsize <= 4:
        return "float32"
    return "float64"


def get_backend(name: str, dtype: str = "float64", device: Any = None) -> SimpleNamespace:
    """The module table of backend ``name`` (``numpy``, ``jax`` or ``torch``) whose
    results are made in ``dtype`` (``float64`` or ``float32``) and, for torch, on
    ``device`` (``None``: torch's default)."""
    from ..render.layout import check_choice

    if not isinstance(name, str):
        raise TypeError(f"backend must be one of {', '.join(BACKENDS)} (a string), not "
                        f"{type(name).__name__}")
    check_choice("backend", name, BACKENDS)
    check_choice("dtype", dtype, DTYPES)
    key = (name, dtype, None if device is None else str(device))
    table = _TABLES.get(key)
    if table is None:
        try:
            table = {"numpy": _numpy, "jax": _jax, "torch": _torch}[name](dtype, device)
        except ImportError as exc:
            raise MatdiffError(f"backend {name!r} needs {name}, which is not installed "
                               f"here: pip install 'matdiff[{name}]'") from exc
        _TABLES[key] = table
    if _MATRIX_SYNCED.get(key) != tuple(MATRIX_FUNCTIONS.values()):
        _add_matrix_functions(table, name)
        _MATRIX_SYNCED[key] = tuple(MATRIX_FUNCTIONS.values())
    if _SYNCED.get(key) != version():
        _add_elementwise(table, name)
        _SYNCED[key] = version()
    return table


def _add_elementwise(t: SimpleNamespace, backend: str) -> None:
    """Give table ``t`` every element-wise function that has an implementation for
    ``backend`` (the built-ins, and those :func:`matdiff.define_function` added since),
    and take away the entries of functions no longer defined (a test's own)."""
    added: set[str] = t.__dict__.setdefault("_elementwise", set())
    for name in [n for n in added if n not in FUNCTIONS]:
        delattr(t, name)
        added.discard(name)
    for name, row in FUNCTIONS.items():
        impl = implementation(row, backend)
        if impl is None:
            continue
        if row.arity > 1 and hasattr(t, "lift"):
            impl = t.lift(impl)
        setattr(t, name, impl)
        added.add(name)


def _add_matrix_functions(t: SimpleNamespace, backend: str) -> None:
    """Give table ``t`` every matrix function that has an implementation for
    ``backend``, from its definition; the library's error for a singular matrix (where
    it raises one: JAX returns inf/nan) becomes an :class:`EvaluationError`."""
    error = getattr(t, "linalg_error", None)
    for name, fn in MATRIX_FUNCTIONS.items():
        impl = implementation(fn, backend)
        if impl is None:
            continue
        setattr(t, name, _singular_is_an_error(impl, error) if error else impl)


def missing_functions(table: SimpleNamespace, names: Iterable[str]) -> list[str]:
    """The element-wise functions of ``names`` that ``table`` has no implementation of."""
    return [n for n in names if not hasattr(table, n)]
