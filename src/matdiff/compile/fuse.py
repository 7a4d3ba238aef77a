"""Fused element-wise chains: several NumPy passes made one loop (NumPy backend).

``1 − tanh²(x)`` is written by the generator as ``t0 = tanh(x)``, ``t1 = t0 * t0``,
``t2 = 1.0 − t1``: three passes over memory, two temporaries.  Element-wise
operations compose element by element (``(f ∘ g)(x)_i = f(g(x_i))``, and NumPy's
broadcasting of a composition is the broadcasting of its leaves), so a chain of them
is one function of its leaves applied once per element.  :func:`fuse` rewrites the
generated lines so that each chain is one call ``fx.kN(leaves...)`` of such a
function: a NumPy ufunc (same broadcasting, same dtype rules as the NumPy it
replaces) whose inner loops are compiled by Numba (see :func:`_module_source`);
over a matrix with a column operand (``s[:, None] * s[None, :]``), which NumPy's
iterator would run row by row, a Numba loop nest (:class:`Nest`).

What is fused, and why (measured, ``benchmarks/README.md``, 2-core Xeon, one thread):

* arithmetic (``+ − * /``, unary ``−``, ``**`` by an integer), comparisons, and the
  element-wise functions whose NumPy form is cheap arithmetic (``max``, ``min``,
  ``abs``, ``sign``, and a definition that gives a ``scalar`` form: ``relu``,
  ``step``).  A kernel (a NumPy ufunc) costs ~0.33 µs a call, as one NumPy
  operator does (~0.45 µs), and saves a pass and a temporary per
  operator: ``1 − a·a`` takes 2.7 µs against 5.8 µs at n = 10⁴, a 4-operator chain
  8 µs against 19 µs;
* never the transcendental functions (``tanh``, ``exp``, ...): NumPy's are SIMD
  (SVML), Numba's call libm per element, 12x slower (191 µs against 16 µs for
  ``tanh`` at n = 10⁴).  They stay NumPy calls and become leaves of the kernels;
* only chains of at least :data:`MIN_OPS` operators over at least :data:`MIN_SIZE`
  elements (where the generator knows the sizes; see :func:`element_counts`): below
  that a call saves under a microsecond, and compiling a kernel costs ~0.35 s (the
  first in a process more), which such a saving never pays back.

Compile latency: ``md.compile`` never imports Numba.  A fused line first runs its
NumPy form (the same operations in the same order: results are identical); after
:data:`settings` ``["hot_calls"]`` calls with a result of at least :data:`MIN_SIZE`
elements the kernel is compiled (once per process and expression) and replaces the
NumPy form.  Its loops are Numba ``cfunc`` functions with ``cache=True``, in a file
of the cache directory (``MATDIFF_CACHE_DIR``, else ``~/.cache/matdiff/fused``)
named by the digest of its source, so that the next process loads the machine code
instead of compiling it.  Measured (``benchmarks/fuse_cache.py``, 2-core Xeon
shared with other jobs, fresh processes; ``benchmarks/README.md`` has the ranges):
a kernel after the first compiles in 0.35 s cold (``numba.vectorize``, used
before: 0.32–0.38 s) and loads in 9 ms warm (``vectorize``: 0.21–0.25 s, as Numba
compiled its ufunc's loop wrapper again in every process); 20 kernels warm take
1.1 s in all, against 5.7 s.  The first kernel of a process costs ~0.9 s even
warm: ``import numba`` (0.3–0.5 s) and Numba's start-up (its registries, and the
SciPy BLAS it imports).  A call costs what a NumPy ufunc's does (0.33–0.6 µs at
n = 10, as the ``vectorize`` ufunc's).

Hence ``hot_calls`` stays 100 for a kernel that would be compiled or would start
Numba (a one-off evaluation should not pay a second to save microseconds), and a
kernel already on disk, in a process where Numba runs, is loaded as soon as its
NumPy form has spent ``settings["load_s"]`` (10 ms, about the load's cost) in its
calls: the rule of ski rental, never more than twice the best cost
(:class:`Kernel`).  Without Numba (it is the optional extra ``matdiff[fast]``) or
with ``MATDIFF_FUSE=0`` in the environment, the NumPy form stays.

Threads: a kernel runs on the calling thread only, and without the GIL (NumPy
releases it around a loop over non-object types; a ``cfunc`` does not take it);
nothing process-wide (Numba's or NumPy's thread settings) is changed.

>>> import numpy as np, matdiff as md
>>> x = md.vector("x", "n")
>>> f = md.compile(md.derive(md.tanh(x), x), structured=True)
>>> x0 = np.linspace(-1, 1, 5000)
>>> "fused" in (f(x=x0), f.source)[1]
True
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np

from ..expr.core import topo_order
from ..expr.functions import FUNCTIONS
from .lines import Code, Line

__all__ = ["fuse", "element_counts", "element_dims", "size_decision", "settings",
           "MIN_OPS", "MIN_SIZE", "MAX_OPS", "NEST_SIZE", "numba_available", "Kernel", "Nest"]

#: the fewest operators a fused chain has (one operator is one pass already)
MIN_OPS = 2
#: the fewest elements a fused chain runs over (below, NumPy's lower call cost wins)
MIN_SIZE = 1000
#: the fewest elements of a matrix result for which a kernel with a column operand
#: runs as a loop nest (:class:`Nest`): its call costs ~5 µs more than the ufunc's
#: (the roles checked, Numba's dispatch), which the nest wins back from ~10⁴
#: elements (measured: 32 × 32 6.9 against 2.1 µs, 100 × 100 8.9 against 9.6 µs,
#: 300 × 300 23 against 92 µs)
NEST_SIZE = 10_000
#: the most operators one kernel takes: a longer chain (a power tower, a sum of a
#: thousand terms) is cut into kernels of at most this many, which keeps Numba's
#: compile time and the trees' depth (Python's recursion limit) bounded
MAX_OPS = 32

#: ``enabled``: fuse at all (``MATDIFF_FUSE=0`` turns it off); ``hot_calls``: calls
#: of a fused line before its kernel is compiled (0 or 1: on the first call)
settings: dict[str, Any] = {"enabled": os.environ.get("MATDIFF_FUSE", "1") != "0",
                            "hot_calls": 100, "load_s": 0.01}

#: NumPy ufuncs that are cheap arithmetic (fusing them pays); by the ufunc itself, so
#: that any definition whose NumPy form is one of them fuses
_CHEAP_UFUNCS = {np.maximum: "np.maximum", np.minimum: "np.minimum",
                 np.absolute: "np.absolute", np.sign: "np.sign"}

_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div)
_CMPOPS = (ast.Gt, ast.Lt, ast.GtE, ast.LtE)


def numba_available() -> bool:
    """Whether Numba can be imported here (the ``matdiff[fast]`` extra)."""
    try:
        return importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):  # a module entry of None: blocked
        return False


# ------------------------------------------------------------ which code is element-wise
def _function(node: ast.expr) -> str | None:
    """The kernel spelling of ``xp.NAME`` when NAME is a cheap element-wise function:
    ``np.maximum`` (its NumPy form is a cheap ufunc) or ``_s_NAME`` (its definition
    gives a ``scalar`` form); else ``None``."""
    if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
            and node.value.id == "xp"):
        return None
    row = FUNCTIONS.get(node.attr)
    if row is None:
        return None
    if getattr(row, "scalar", None) is not None:
        return f"_s_{row.name}"
    impl = row.numpy
    return _CHEAP_UFUNCS.get(impl) if isinstance(impl, np.ufunc) else None


def _is_number(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, float | int) and not isinstance(node.value, bool)
    return (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and _is_number(node.operand))


def _elementwise(node: ast.expr) -> bool:
    """Whether ``node``'s outermost operation is one a kernel computes."""
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, _BINOPS):
            return True
        # a**k, k an integer: repeated products (a fractional power of a negative
        # number is nan in NumPy and an error in Python's float)
        return (isinstance(node.op, ast.Pow) and _is_number(node.right)
                and float(ast.literal_eval(node.right)).is_integer())
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, ast.USub | ast.UAdd)
    if isinstance(node, ast.Compare):
        return len(node.ops) == 1 and isinstance(node.ops[0], _CMPOPS)
    if isinstance(node, ast.Call):
        return not node.keywords and _function(node.func) is not None
    return False


def _operands(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp):
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.Compare):
        return [node.left, *node.comparators]
    if isinstance(node, ast.Call):
        return list(node.args)
    return []


def _count_ops(node: ast.expr) -> int:
    if _is_number(node) or not _elementwise(node):
        return 0
    return 1 + sum(_count_ops(c) for c in _operands(node))


def _ew_names(node: ast.expr) -> list[str]:
    """The local names that are operands of the element-wise skeleton of ``node``
    (where a chain may be substituted), not those inside a leaf (``t1[:, None]``)."""
    if isinstance(node, ast.Name):
        return [node.id]
    if _is_number(node) or not _elementwise(node):
        return []
    return [n for c in _operands(node) for n in _ew_names(c)]


def _substitute(node: ast.expr, trees: Mapping[str, ast.expr]) -> ast.expr:
    """``node`` with the skeleton's names that ``trees`` has replaced by their trees."""
    if isinstance(node, ast.Name):
        return trees.get(node.id, node)
    if _is_number(node) or not _elementwise(node):
        return node
    if isinstance(node, ast.BinOp):
        return ast.BinOp(_substitute(node.left, trees), node.op, _substitute(node.right, trees))
    if isinstance(node, ast.UnaryOp):
        return ast.UnaryOp(node.op, _substitute(node.operand, trees))
    if isinstance(node, ast.Compare):
        return ast.Compare(_substitute(node.left, trees), node.ops,
                           [_substitute(c, trees) for c in node.comparators])
    assert isinstance(node, ast.Call)
    return ast.Call(node.func, [_substitute(a, trees) for a in node.args], [])


# ------------------------------------------------------------ the kernel of a tree
def _kernel_source(tree: ast.expr) -> tuple[str, list[str], list[str]]:
    """``(body, leaves, functions)``: the scalar expression of the kernel over
    parameters ``p0, p1, ...``, the source of the leaf each parameter is (repeated
    leaves are one parameter), and the ``scalar`` forms it calls."""
    leaves: dict[str, str] = {}
    funcs: list[str] = []

    def walk(node: ast.expr) -> str:
        if _is_number(node):
            return f"({float(ast.literal_eval(node))!r})"
        if not _elementwise(node):
            text = ast.unparse(node)
            return leaves.setdefault(text, f"p{len(leaves)}")
        if isinstance(node, ast.BinOp):
            op = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/",
                  ast.Pow: "**"}[type(node.op)]
            return f"({walk(node.left)} {op} {walk(node.right)})"
        if isinstance(node, ast.UnaryOp):
            return f"({'-' if isinstance(node.op, ast.USub) else '+'}{walk(node.operand)})"
        if isinstance(node, ast.Compare):
            op = {ast.Gt: ">", ast.Lt: "<", ast.GtE: ">=", ast.LtE: "<="}[type(node.ops[0])]
            # a comparison is 1.0 or 0.0, as NumPy's bool times a float is
            return f"((1.0) if {walk(node.left)} {op} {walk(node.comparators[0])} else (0.0))"
        assert isinstance(node, ast.Call)
        fn = _function(node.func)
        assert fn is not None
        if fn.startswith("_s_") and fn[3:] not in funcs:
            funcs.append(fn[3:])
        return f"{fn}({', '.join(walk(a) for a in node.args)})"

    body = walk(tree)
    return body, list(leaves), funcs


class Kernel:
    """One fused chain: its NumPy form until it is hot, then its Numba ufunc.

    The generated code calls ``fx.kN(...)``; this object is ``fx.kN`` until it has
    decided, and then puts the chosen function there itself, so that the calls after
    it cost nothing extra.

    When: at the :data:`settings` ``["hot_calls"]``-th call over at least
    :data:`MIN_SIZE` elements, or earlier when the kernel is already on disk and
    Numba already running in this process (loading it costs ~``settings
    ["load_s"]``) and the NumPy form has taken that long in all: the rule of ski
    rental (rent until the rent paid equals the price, then buy), which never costs
    more than twice the best choice made knowing the future."""

    def __init__(self, ns: SimpleNamespace, slot: str, body: str, nparams: int,
                 funcs: Sequence[str], numpy_form: Callable[..., Any]) -> None:
        self.ns, self.slot, self.body, self.nparams = ns, slot, body, nparams
        self.funcs = tuple(funcs)
        self.numpy_form = numpy_form
        self.calls = 0
        self.spent = 0.0  # seconds in the NumPy form's calls so far
        self.on_disk: bool | None = None

    def __call__(self, *args: Any) -> Any:
        if _result_size(args) >= MIN_SIZE:
            self.calls += 1
            if self.calls >= settings["hot_calls"] or self._cheap_to_load(args):
                fn = _compiled(self.body, self.nparams, self.funcs, _invariant(args))
                roles = _roles(args)
                if fn is not None and roles is not None and roles[1] * roles[2] >= NEST_SIZE:
                    fn = _nested(fn, self.body, self.nparams, self.funcs, roles[0])
                if fn is not None:
                    try:
                        out = fn(*args)
                    except TypeError:  # inputs the kernel's loops do not take
                        fn = None
                    else:
                        setattr(self.ns, self.slot, fn)
                        return out
                setattr(self.ns, self.slot, self.numpy_form)
                return self.numpy_form(*args)
            t = time.perf_counter()
            out = self.numpy_form(*args)
            self.spent += time.perf_counter() - t
            return out
        return self.numpy_form(*args)

    def _cheap_to_load(self, args: Sequence[Any]) -> bool:
        """Whether the rent paid (time in the NumPy form) reached the price of
        loading the kernel from the disk cache, where that price is small: the
        kernel is on disk and Numba is running (else the price is a compile or
        Numba's start-up, ~0.3–1 s, and ``hot_calls`` decides)."""
        if not _STARTED or self.spent < settings["load_s"]:
            return False
        if self.on_disk is None:
            src = _module_source(self.body, self.nparams, self.funcs, _invariant(args))
            self.on_disk = is_cached(src, _PREFIX)
        return self.on_disk


def _result_size(args: Sequence[Any]) -> int:
    """The number of elements of the broadcast result (an outer product
    ``t[:, None] * t[None, :]`` has n² of them, from operands of n)."""
    shapes = [a.shape for a in args if getattr(a, "ndim", 0)]
    if not shapes:
        return 1
    nd = max(len(sh) for sh in shapes)
    return math.prod(max((sh[i - nd + len(sh)] for sh in shapes if i - nd + len(sh) >= 0),
                         default=1) for i in range(nd))


def _roles(args: Sequence[Any]) -> tuple[tuple[str, ...], int, int] | None:
    """``(roles, n, m)`` where the result is an n × m matrix (n, m ≥ 2) that NumPy's
    iterator would run row by row with an operand of step 0 (a column ``(n, 1)``):
    each operand's role, ``S`` scalar, ``F`` full ``(n, m)``, ``C`` column, ``R`` row
    ``(1, m)``, ``V`` vector ``(m,)``; ``None`` for any other call."""
    shapes: list[tuple[int, ...]] = [tuple(getattr(a, "shape", ())) for a in args]
    if any(len(sh) > 2 for sh in shapes):
        return None
    n = max((sh[0] for sh in shapes if len(sh) == 2), default=0)
    m = max((sh[-1] for sh in shapes if sh), default=0)
    if n < 2 or m < 2:
        return None
    kinds = {(): "S", (n, m): "F", (n, 1): "C", (1, m): "R", (m,): "V"}
    roles = tuple(kinds.get(tuple(sh), "?") for sh in shapes)
    return (roles, n, m) if "C" in roles and "?" not in roles else None


def _invariant(args: Sequence[Any]) -> tuple[int, ...]:
    """The operands that the ufunc's inner loop reads with step 0: scalars, and
    operands of length 1 along the last axis (``t[:, None]``) where the result's
    last axis is longer (the inner loop runs along it)."""
    last = max((a.shape[-1] for a in args if getattr(a, "ndim", 0) > 0), default=1)
    if last == 1:
        return ()
    return tuple(i for i, a in enumerate(args)
                 if getattr(a, "ndim", 0) == 0 or a.shape[-1] == 1)


# ------------------------------------------------------------ compiling, cached
_CACHE: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def _cache_dir() -> str:
    base = os.environ.get("MATDIFF_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "matdiff")
    return os.path.join(base, "fused")


#: the loops' element types: float32 first, as NumPy tries a ufunc's loops in order
#: and takes the first its inputs cast to safely (float64 first would promote float32)
_TYPES = (("float32", 4), ("float64", 8))


def _module_source(body: str, nparams: int, funcs: Sequence[str],
                   invariant: Sequence[int] = ()) -> str:
    """The module of one kernel: a NumPy ufunc whose inner loops (one per element
    type) are Numba ``cfunc``s, cached on disk (``cache=True``).

    A ufunc's inner loop is ``loop(args, dims, steps, data)``: ``out[i·so] =
    f(p0[i·s0], p1[i·s1], ...)`` for ``i < dims[0]``, the steps in bytes (NumPy
    hands a legacy loop aligned data, so a step is a multiple of the item size).
    The loop itself is the cached code: Numba's ``vectorize`` compiles its loop
    wrapper again in every process (0.2–0.25 s a kernel), a cached ``cfunc`` is
    loaded (~9 ms; measured in ``benchmarks/fuse_cache.py``).  A loop is one for
    any steps, which LLVM versions for unit steps (the contiguous case, vectorised);
    where ``invariant`` names operands (a scalar, or an operand broadcast along the
    last axis: step 0), a fast path first reads them once and the others
    contiguously (without it a scalar operand took 2x as long; with it for every
    kernel, compiling took 1.7x as long).  float32 loops compute in float32,
    constants too, as NumPy does with a Python float.
    """
    params = [f"p{i}" for i in range(nparams)]
    lines = _header(funcs)
    inv = sorted(set(invariant))
    for tname, size in _TYPES:
        # a float32 loop's constants are float32 (NumPy casts a Python float to the
        # array's type): the same rounding, operation by operation
        tbody = body if tname == "float64" else re.sub(
            _CONSTANT, lambda m: f"np.float32({m.group(1)})", body)
        ptr = f"types.CPointer(types.{tname})"
        lines += [f"@numba.cfunc(types.void(types.CPointer({ptr}), types.CPointer(types.intp),"
                  " types.CPointer(types.intp), types.voidptr), cache=True,"
                  " error_model='numpy')",
                  f"def loop_{tname}(args, dims, steps, data):",
                  "    n = dims[0]",
                  *(f"    a{i} = args[{i}]" for i in range(nparams)),
                  f"    o = args[{nparams}]",
                  *(f"    s{i} = steps[{i}] // {size}" for i in range(nparams + 1))]
        general = ["        for i in range(n):",
                   *(f"            {p} = a{i}[i * s{i}]" for i, p in enumerate(params)),
                   f"            o[i * s{nparams}] = {tbody}", "", ""]
        if not inv:  # LLVM versions this loop for unit steps: the contiguous fast path
            lines += [ln[4:] for ln in general]
            continue
        # the fast path: the operands in ``invariant`` read once, the others and the
        # result contiguous
        cond = " and ".join(f"s{i} == {0 if i in inv else 1}" for i in range(nparams + 1))
        lines += [f"    if {cond}:",
                  *(f"        p{i} = a{i}[0]" for i in inv),
                  "        for i in range(n):",
                  *(f"            {p} = a{i}[i]" for i, p in enumerate(params) if i not in inv),
                  f"            o[i] = {tbody}",
                  "    else:", *general]
    nums = [[int(np.dtype(t).num)] * (nparams + 1) for t, _ in _TYPES]
    loops = [f"loop_{t}" for t, _ in _TYPES]
    addresses = ", ".join(f"{n}.address" for n in loops)
    lines += [f"kernel = _internal.fromfunc(\"kernel\", None, [{addresses}],",
              f"                            {nums!r}, {nparams}, 1, {[None] * len(loops)!r},",
              f"                            [{', '.join(loops)}], _internal.PyUFunc_None)", ""]
    return "\n".join(lines)


def _header(funcs: Sequence[str]) -> list[str]:
    """The first lines of a kernel's module: imports, and the ``scalar`` forms it
    calls, each tagged with its code (a changed form is a new file: Numba's disk
    cache knows a function by its file, not by what it calls)."""
    lines = ["# generated by matdiff.compile.fuse: one fused element-wise chain",
             "import numba", "import numpy as np", "from numba import types",
             "from numba.np.ufunc import _internal",
             "from matdiff.expr.functions import FUNCTIONS", ""]
    for f in funcs:
        code = FUNCTIONS[f].scalar.__code__  # type: ignore[union-attr]
        tag = hashlib.sha256(code.co_code + repr(code.co_consts).encode()).hexdigest()[:12]
        lines.append(f"_s_{f} = numba.njit(FUNCTIONS[{f!r}].scalar, error_model='numpy')"
                     f"  # {tag}")
    return [*lines, ""]


def _nest_source(body: str, nparams: int, funcs: Sequence[str],
                 roles: Sequence[str]) -> str:
    """The module of a kernel's loop nest over an n × m result, for operands in the
    roles of :func:`_roles`: ``out[i, j] = f(...)`` with a column read once a row and
    a scalar once; one function per element type (float32 computes in float32)."""
    lines = _header(funcs)
    read = {"F": "[i, j]", "R": "[0, j]", "V": "[j]"}
    for tname, _ in _TYPES:
        tbody = body if tname == "float64" else re.sub(
            _CONSTANT, lambda m: f"np.float32({m.group(1)})", body)
        args = ", ".join(f"a{i}" for i in range(nparams))
        lines += ["@numba.njit(cache=True, nogil=True, error_model='numpy')",
                  f"def nest_{tname}(out, {args}):",
                  "    n, m = out.shape",
                  *(f"    p{i} = a{i}" for i, r in enumerate(roles) if r == "S"),
                  "    for i in range(n):",
                  *(f"        p{i} = a{i}[i, 0]" for i, r in enumerate(roles) if r == "C"),
                  "        for j in range(m):",
                  *(f"            p{i} = a{i}{read[r]}" for i, r in enumerate(roles)
                    if r in read),
                  f"            out[i, j] = {tbody}",
                  "    return out", "", ""]
    return "\n".join(lines)


class Nest:
    """A kernel over a matrix with a column operand: its loop nest (Numba), which
    reads the column once a row, where the ufunc would be called by NumPy's
    iterator once a row (the logsumexp Hessian's ``−s_i s_j`` at n = 300: ~1.8x a
    flat loop of as many elements through the ufunc, ~5x through the nest,
    measured).  A call in other roles, or of another dtype, goes to the ufunc."""

    def __init__(self, ufunc: Any, nests: Mapping[Any, Any], roles: tuple[str, ...]) -> None:
        self.ufunc, self.nests, self.roles = ufunc, dict(nests), roles

    def __call__(self, *args: Any) -> Any:
        found = _roles(args)
        if found is None or found[0] != self.roles:
            return self.ufunc(*args)
        dt = np.result_type(*args)
        nest = self.nests.get(dt)
        # (operands of another type: NumPy's ufunc casts them first, the nest would not)
        if nest is None or any(getattr(a, "dtype", dt) != dt for a in args):
            return self.ufunc(*args)
        # a 0-d array as its NumPy scalar (Numba types np.float32(·) as float32)
        scalars = [a[()] if isinstance(a, np.ndarray) and a.ndim == 0 else a for a in args]
        try:
            return nest(np.empty(found[1:], dt), *scalars)
        except Exception:  # noqa: BLE001 - Numba cannot compile it for these: the ufunc
            del self.nests[dt]
            return self.ufunc(*args)


def _nested(ufunc: Any, body: str, nparams: int, funcs: Sequence[str],
            roles: tuple[str, ...]) -> Any:
    """The :class:`Nest` of a kernel in these roles, or ``ufunc`` where Numba fails."""
    key = ("nest", body, nparams, tuple(funcs), roles)
    with _LOCK:
        if key not in _CACHE:
            try:
                mod = load_module(_nest_source(body, nparams, funcs, roles), _PREFIX)
                _CACHE[key] = {np.dtype(t): getattr(mod, f"nest_{t}") for t, _ in _TYPES}
            except Exception:  # noqa: BLE001 - any failure: the ufunc stays
                _CACHE[key] = None
    nests = _CACHE[key]
    return ufunc if nests is None else Nest(ufunc, nests, roles)


#: a constant of a kernel's body, as :func:`_kernel_source` writes it: ``(2.0)``
_CONSTANT = r"\((-?[0-9][0-9.e+-]*)\)"


def _compiled(body: str, nparams: int, funcs: Sequence[str],
              invariant: Sequence[int] = ()) -> Any:
    """The kernel's ufunc, compiled once per process (and cached on disk across
    processes); ``None`` where Numba is missing or fails."""
    key = (body, nparams, tuple(funcs), tuple(invariant))
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        fn = None
        if settings["enabled"] and numba_available():
            try:
                fn = _load(_module_source(body, nparams, funcs, invariant))
            except Exception:  # noqa: BLE001 - any failure: the NumPy form stays
                fn = None
        _CACHE[key] = fn
        return fn


#: the prefix of the kernels' module names (and files) in the cache directory
_PREFIX = "matdiff_fused"
#: whether a kernel was loaded in this process (Numba started: the next costs ms)
_STARTED = False


def _load(src: str) -> Any:
    global _STARTED
    fn = load_module(src, _PREFIX).kernel
    _STARTED = True
    return fn


def _module_path(src: str, prefix: str) -> tuple[str, str]:
    """``(module name, file)`` of generated source ``src`` in the cache directory."""
    modname = f"{prefix}_{hashlib.sha256(src.encode()).hexdigest()[:20]}"
    return modname, os.path.join(_cache_dir(), modname + ".py")


def is_cached(src: str, prefix: str) -> bool:
    """Whether Numba's disk cache holds the compiled code of ``src``'s module (its
    file, and the index Numba writes beside it, ``__pycache__/NAME.*.nbi``)."""
    modname, path = _module_path(src, prefix)
    if modname in sys.modules:
        return True
    cache = os.path.join(os.path.dirname(path), "__pycache__")
    try:
        return os.path.exists(path) and any(
            f.startswith(modname + ".") and f.endswith(".nbi") for f in os.listdir(cache))
    except OSError:
        return False


def load_module(src: str, prefix: str) -> Any:
    """The module of generated source ``src``, imported from a file of the cache
    directory named by its digest (so that Numba's ``cache=True``, which knows a
    function by its file, finds it again in the next process); where the directory
    cannot be written, executed in memory without ``cache=True``.

    >>> mod = load_module("answer = 42\\n", "matdiff_doc")
    >>> mod.answer
    42
    """
    modname, path = _module_path(src, prefix)
    if modname in sys.modules:
        return sys.modules[modname]
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w") as fh:
                fh.write(src)
            os.replace(tmp, path)
    except OSError:  # no writable cache: compile in memory, without the disk cache
        mod = ModuleType(modname)
        exec(compile(src.replace(", cache=True", ""), f"<{modname}>", "exec"),  # noqa: S102
             mod.__dict__)
        return mod
    spec = importlib.util.spec_from_file_location(modname, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        # not a half-made module for the next call to find (a kernel whose
        # compile failed would be looked up there, and lack its ``kernel``)
        del sys.modules[modname]
        raise
    return mod


# ------------------------------------------------------------ the pass
def element_dims(gen: Any, outputs: Sequence[Any]) -> dict[str, list[Any]]:
    """The dims whose sizes multiply to the number of elements of each temporary the
    generator made for a node (its view's core array, one dim per class); lines made
    without a node (a product's pairwise step) are not counted."""
    out_dims: dict[str, list[Any]] = {}
    for out in outputs:
        for node in topo_order(out):
            v = gen.views.get(id(node))
            if v is None or not v.code.is_name or v.lit is not None:
                continue
            dims: list[Any] = [1] * v.nclass
            for d, c in zip(node.shape, v.axes):
                dims[c] = d
            out_dims[v.code.text] = [dims[c] for c in v.core]
    return out_dims


def element_counts(gen: Any, outputs: Sequence[Any]) -> dict[str, int]:
    """The number of elements of each temporary at the sizes the code is generated
    for (see :func:`element_dims`)."""
    return {t: math.prod(gen.size(d) for d in ds)
            for t, ds in element_dims(gen, outputs).items()}


def size_decision(gen: Any, outputs: Sequence[Any], table: Any) -> Any:
    """The pass's one choice on sizes, for the generator's record of them (code
    reused at other sizes must have made the same choices, see
    :func:`~.emitter.replay`): which temporaries have at least :data:`MIN_SIZE`
    elements.  ``None`` where the pass does not run."""
    if not settings["enabled"] or getattr(table, "name", None) != "numpy":
        return None
    temps = element_dims(gen, outputs)
    index: dict[Any, str] = {}  # each dim the counts use -> its letter
    for ds in temps.values():
        for d in ds:
            index.setdefault(d, f"f{len(index)}")
    letters = {k: d for d, k in index.items()}

    def big(sz: Mapping[str, int]) -> frozenset[str]:
        return frozenset(t for t, ds in temps.items()
                         if math.prod(sz[index[d]] for d in ds) >= MIN_SIZE)

    return (letters, big, big({k: gen.size(d) for k, d in letters.items()}))


def fuse(lines: Sequence[Line], rets: Sequence[Code], table: Any,
         counts: Mapping[str, int] | None = None) -> tuple[list[Line], SimpleNamespace]:
    """``lines`` with each element-wise chain made one line ``t = fx.kN(leaves)``,
    and the namespace ``fx`` of the kernels (NumPy backend only; other backends, and
    ``settings["enabled"]`` false, get ``lines`` back).

    A line joins the line that reads it when it is element-wise, its value is read
    once, by an operand of that line's element-wise skeleton, and it is not an
    output; the joined line becomes a kernel when it has :data:`MIN_OPS` operators
    and the largest of its lines known has at least :data:`MIN_SIZE` elements.
    Moving a line down to its reader is safe: a value read once is written in place
    by nobody else (the aliasing rule of :mod:`.passes`)."""
    fx = SimpleNamespace()
    if not settings["enabled"] or getattr(table, "name", None) != "numpy":
        return list(lines), fx
    counts = counts or {}
    reads: dict[str, int] = {}
    for ln in lines:
        for r in ln.value.reads:
            reads[r] = reads.get(r, 0) + 1
    returned = {r for c in rets for r in c.reads}
    trees: dict[int, ast.expr] = {}
    for i, ln in enumerate(lines):
        try:
            trees[i] = ast.parse(ln.value.text, mode="eval").body
        except SyntaxError:  # pragma: no cover - generated code parses
            continue
    # a line is joined into its one reader, where that reader is element-wise
    joinable = {ln.target: i for i, ln in enumerate(lines)
                if i in trees and ln.copy_of is None and _elementwise(trees[i])
                and reads.get(ln.target) == 1 and ln.target not in returned}
    into: dict[str, int] = {}  # a joined line's target -> the line that reads it
    for i, tree in trees.items():
        if _elementwise(tree):
            for n in _ew_names(tree):
                if n in joinable:
                    into[n] = i
    out: list[Line] = []
    merged: dict[str, ast.expr] = {}   # joined target -> its tree, chains substituted
    members: dict[str, list[str]] = {}  # joined target -> the targets in its tree
    for i, ln in enumerate(lines):
        if i not in trees:
            out.append(ln)
            continue
        tree = trees[i]
        subs = {n: merged.pop(n) for n in _ew_names(tree)
                if n in merged and into.get(n) == i}
        mem = [ln.target] + [m for n in subs for m in members.pop(n)]
        if subs:
            tree = _substitute(tree, subs)
        if ln.target in into and _count_ops(tree) < MAX_OPS:
            merged[ln.target], members[ln.target] = tree, mem
            continue
        # a chain at MAX_OPS operators stays a line of its own, which its reader
        # reads by name, as it was written
        # the chain's result is the broadcast of its lines: at least as large as the
        # largest (a scalar line such as 1/n does not make the chain small)
        big = max((counts[m] for m in mem if m in counts), default=MIN_SIZE) >= MIN_SIZE
        # (a comparison at the root is NumPy's bool array: not the kernel's float)
        if not (_elementwise(tree) and not isinstance(tree, ast.Compare)
                and _count_ops(tree) >= MIN_OPS and big):
            out.append(Line(ln.target, Code(ast.unparse(tree), _names(tree), ln.value.fresh),
                            ln.comment, ln.copy_of) if subs else ln)
            continue
        out.append(_kernel_line(fx, ln, tree, table))
    return out, fx


def _kernel_line(fx: SimpleNamespace, ln: Line, tree: ast.expr, table: Any) -> Line:
    """The line ``target = fx.kN(leaves)`` of the fused ``tree``, ``fx.kN`` made."""
    body, leaves, funcs = _kernel_source(tree)
    slot = f"k{len(vars(fx))}"
    params = ", ".join(f"p{i}" for i in range(len(leaves)))
    numpy_text = ast.unparse(_with_params(tree, leaves))
    glb: dict[str, Any] = {"xp": table, "__builtins__": {}}
    exec(compile(f"def numpy_form({params}):\n    return {numpy_text}\n",  # noqa: S102
                 f"<matdiff fused {slot}>", "exec"), glb)
    setattr(fx, slot, Kernel(fx, slot, body, len(leaves), funcs, glb["numpy_form"]))
    call = f"fx.{slot}({', '.join(leaves)})"
    names = tuple(n for leaf in leaves for n in _names(ast.parse(leaf, mode="eval").body))
    head = (ln.comment + "  " if ln.comment else "") + "fused"
    comment = f"{head}: {ast.unparse(tree)}"
    if len(f"    {ln.target} = {call}  # {comment}") > 88:  # the source stays lint-clean
        comment = f"{head} element-wise chain"
    return Line(ln.target, Code(call, names, fresh=True), comment)


def _names(tree: ast.expr) -> tuple[str, ...]:
    """The local names ``tree`` reads, in order of appearance, with repeats (the
    ``reads`` of a :class:`~.lines.Code`; ``xp``, the table, is not one)."""
    found: list[tuple[int, int, str]] = [
        (n.lineno, n.col_offset, n.id) for n in ast.walk(ast.parse(ast.unparse(tree),
                                                                   mode="eval"))
        if isinstance(n, ast.Name) and n.id not in ("xp", "fx")]
    return tuple(name for *_, name in sorted(found))


def _with_params(tree: ast.expr, leaves: Sequence[str]) -> ast.expr:
    """``tree`` with each leaf (by its source) replaced by its parameter's name: the
    NumPy form of the kernel, the same operations in the same order."""
    index = {text: i for i, text in enumerate(leaves)}

    def walk(node: ast.expr) -> ast.expr:
        if _is_number(node):
            return node
        if not _elementwise(node):
            return ast.Name(f"p{index[ast.unparse(node)]}", ast.Load())
        if isinstance(node, ast.BinOp):
            return ast.BinOp(walk(node.left), node.op, walk(node.right))
        if isinstance(node, ast.UnaryOp):
            return ast.UnaryOp(node.op, walk(node.operand))
        if isinstance(node, ast.Compare):
            return ast.Compare(walk(node.left), node.ops, [walk(c) for c in node.comparators])
        assert isinstance(node, ast.Call)
        return ast.Call(node.func, [walk(a) for a in node.args], [])

    return walk(tree)
