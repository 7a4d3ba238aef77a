"""The row kernel: a row-blocked body compiled by Numba as one loop over the rows.

The row-blocked body (:mod:`.rowblock`) of the paper's loss gradient is, per block,
two GEMVs and eight element-wise calls (two of them fused ufuncs, :mod:`.fuse`):
``z = X_b w``, ``v = f(z)``, ``g += X_bᵀ v``, ``value += Σ r²``.  Each row ``i``
of ``X`` takes part in exactly two products, ``zᵢ = Xᵢ · w`` and ``g += vᵢ Xᵢ``,
and every other quantity of the body is a scalar per row or a sum over the rows of
such scalars.  So the body is one loop over its rows (:func:`translate` writes it
from the body's expressions), in groups of four rows, software-pipelined, and chunks
of rows for the sums::

    for each chunk c of rows, for each group G of four rows of c:
        ask for the rows 8 KiB after G                       (prefetch.py)
        q += Σ_{i ∈ G'} vᵢ Xᵢ       for the group G' before G   (X from L1)
        zᵢ = Xᵢ · w                 for i ∈ G, four sums at once  (X from memory)
        rᵢ = yᵢ − relu(zᵢ + b);  s += rᵢ²;  vᵢ = −2/N step(zᵢ + b) rᵢ   for i ∈ G
    value += s;  g += q                                      (per chunk: see below)

Why this shape (each measured at 10⁵ x 100, ``benchmarks/README.md``, "The row
kernel"): a row's rank-1 update issued right after its own dot product waits on it
(one loop per row: 1.5–2x one GEMV over X); three separate passes over a chunk
leave memory idle during the updates (1.24–1.40x); with the updates one group
behind, the next rows asked for ahead (OpenBLAS's GEMV prefetches too; a Numba loop
without prefetch read X at 1.05–1.12x a GEMV's time) and four rows a group (one
load of ``w[j]`` and of ``q[j]`` for four rows), the kernel took 1.10–1.26x one
GEMV, and the compiled gradient 1.23–1.34x in float64 (float32: 1.2–1.4x, more in
a busy table).

What it translates (anything else: :class:`Unsupported`, and the NumPy body runs):

* per-row scalars (shape ``(N,)``): the row inputs ``yᵢ``, constants, sums,
  products of per-row and free scalars, element-wise functions (their ``scalar``
  form where their definition gives one, or a cheap NumPy ufunc: ``max``, ``abs``,
  ...; with ``settings["transcendental"]`` any NumPy ufunc, which Numba compiles per
  element, and ``log(1 + exp(z))`` as ``logaddexp(0, z)``, as the NumPy code computes
  it), integer powers as products;
* ``zᵢ = Xᵢ · w``: a product of a row input ``X`` (``N × d``) and a free vector ``w``
  over ``d``, times per-row and free scalars;
* sums over the rows: ``Σᵢ (scalars)`` and ``Σᵢ vᵢ Xᵢ`` (``Xᵀv``), and linear
  functions of those sums (a free scalar times a sum, sums of sums and of ``N·c``);
* row outputs of shape ``(N,)``; free scalars (inputs, numbers, ``N``).

Arithmetic is in the inputs' precision (the table's: float32 stays float32), with
NumPy's rules for division by zero (``error_model="numpy"``), and no fast-math in the
element-wise code: the same operations as the NumPy body, in the same order, on
scalars.  Two reductions are reordered, as BLAS reorders them: the dot product
``Xᵢ · w`` (a helper compiled with ``reassoc``, so that it is vectorised) and the
sums over the rows, which are added up per chunk and the chunks' sums then added
(a two-level sum: the rounding error grows with the chunk's length plus the number
of chunks, not with ``N``; float32 sums are checked against float64 in the tests).

When it runs (measured, ``benchmarks/README.md``, "One pass over the data"): where
:mod:`.rowblock` blocks at all (at 10⁴ x 100 the whole-array code stays), in the
precisions of :data:`settings` ``["precisions"]`` (both by default;
``MATDIFF_ROWKERNEL=0`` turns it off), without transcendental functions (Numba's
are libm calls per element, NumPy's SIMD: logistic regression's body as a kernel was
level in float64 and 1.4x slower in float32).  Once it runs, the driver gives it
all of its rows in one call (the first block of an affine output excepted), not one
call a block.

Compile latency follows :mod:`.fuse`'s rule: ``md.compile`` never imports Numba;
the NumPy body runs until the compiled function has been called
``fuse.settings["hot_calls"]`` times, then the kernel is compiled (once per process
and source; cached on disk across processes through :func:`.fuse.load_module`) and
replaces it.  Without Numba, or with ``MATDIFF_FUSE=0``, the NumPy body stays.  The
kernel is ``nogil``: the row-block driver may run it on two threads, each on its own
blocks.

>>> import matdiff as md
>>> X, w = md.matrix("X", "N", "d"), md.vector("w", "d")
>>> src = translate([md.sum((X @ w) ** 2)], ["X", "w"], "N", "float64")
>>> "def kernel(a0, a1):" in src and "_dot4(a0, i0, a1, z1, k0)" in src
True
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import numpy as np

from ..expr.core import Add, Const, Einsum, Expr, Map, Size, Var, topo_order
from ..expr.functions import FUNCTIONS
from .fuse import _CHEAP_UFUNCS
from .generator import softplus_argument

__all__ = ["RowKernel", "Unsupported", "translate", "row_kernel", "disabled", "settings",
           "CHUNK_BYTES", "GROUP", "PREFETCH_BYTES"]

#: ``transcendental``: translate the element-wise functions whose only form is a
#: NumPy ufunc (exp, log, tanh, ...; ``log(1 + exp(z))`` as ``logaddexp``).  Off:
#: Numba computes them with libm, one element at a time, where NumPy's are SIMD
#: (SVML), and a body with them ran slower as a kernel than as NumPy (logistic
#: regression, 1.09–1.24x, ``benchmarks/README.md``); tests turn it on to check them
#: ``precisions``: the precisions the kernel runs in: both unless
#: ``MATDIFF_ROWKERNEL=0`` is in the environment.  Measured against the blocked NumPy
#: body (its element-wise chains fused, its two GEMVs OpenBLAS's, the second from
#: cache), the paper's loss gradient at 10⁵ x 100 (``benchmarks/README.md``, 4 runs):
#: 0.71–0.76 of its time in float64 and 0.65–0.85 in float32
settings: dict[str, Any] = {
    "transcendental": False,
    "precisions": () if os.environ.get("MATDIFF_ROWKERNEL") == "0"
    else ("float32", "float64")}

#: the bytes of a chunk of rows of one row matrix: the rows over which the sums over
#: the rows are added up before they are added to the block's (a two-level sum)
CHUNK_BYTES = 128 << 10

#: rows a group: a group's dot products are computed together (each ``w[j]`` loaded
#: once for four rows, four independent sums), as are its rank-1 updates (each
#: ``q[j]`` loaded and stored once for four rows).  The helpers of :func:`_module`
#: (``_dot4``, ``_axpy4``) are written for four rows: the loop names them by it
GROUP = 4

#: how far ahead of its dot products a group asks for its rows (``prefetch.py``):
#: at 10⁵ x 100, 8 to 24 rows ahead (6–19 KiB in float64) took the same time, 4 rows
#: ahead 5% more (``benchmarks/README.md``)
PREFETCH_BYTES = 8 << 10


class Unsupported(Exception):
    """The body has a node the row kernel does not translate (the message says
    which); the NumPy body runs instead."""


_LOCK = threading.Lock()
_COMPILED: dict[str, Any] = {}
_STATE = threading.local()


@contextmanager
def switched_off(state: threading.local) -> Iterator[None]:
    """``state.off`` is True within this block (for this thread), what it was after."""
    before = getattr(state, "off", False)
    state.off = True
    try:
        yield
    finally:
        state.off = before


def disabled() -> AbstractContextManager[None]:
    """Within this block, new row-blocked specialisations keep their NumPy body
    (benchmarks time it beside the kernel; tests compare the two)."""
    return switched_off(_STATE)


# ------------------------------------------------------------------ translation
class _Writer:
    """The kernel's source, written from the body's nodes.  Every node is one of:
    a free scalar (``f``: computed once, before the loop), a row matrix (an input
    ``X`` of shape ``(N, d)``, read only by the products), a free vector (an input of
    shape ``(d,)``), a per-row scalar (``r``: a local of the row loop), a dot product
    (``z``: a chunk array written by the first phase), or a sum over the rows (``s``:
    a scalar or a vector, accumulated per chunk, or a linear function of such sums,
    computed after the loop)."""

    def __init__(self, inputs: Sequence[str], dim: str, precision: str) -> None:
        self.dim = dim
        self.args = {name: f"a{k}" for k, name in enumerate(inputs)}
        self.T = {"float32": "np.float32", "float64": "np.float64"}.get(precision)
        if self.T is None:
            raise Unsupported(f"precision {precision}")
        self.role: dict[int, str] = {}   # node id -> f, X, w, r, z, sa, sv, ps
        self.code: dict[int, str] = {}   # node id -> its value's code
        self.pre: list[str] = []         # before the loop
        self.dots: list[tuple[str, str, str]] = []   # phase 1: z[k] = Xᵢ · w, (z, X, w)
        self.rows: list[str] = []                    # phase 2, per row i
        self.axpys: list[tuple[str, str, str]] = []  # phase 3: q += v[k] Xᵢ, (q, X, v)
        self.chunk_init: list[str] = []  # at each chunk's start
        self.chunk_end: list[str] = []   # at each chunk's end
        self.post: list[str] = []        # after the loop
        self.funcs: list[str] = []       # scalar forms used
        self.matrices: list[str] = []    # the row matrices' argument names
        self.scalar_args: list[int] = []  # positions of scalar inputs
        self.n_rowsrc: str | None = None  # an argument that has the rows
        self.chunk_arrays: list[str] = []  # arrays of one entry per row of a chunk
        self.k = 0

    def fresh(self, prefix: str) -> str:
        self.k += 1
        return f"{prefix}{self.k}"

    def num(self, v: float) -> str:
        if math.isnan(v):
            return f"{self.T}(np.nan)"
        if math.isinf(v):
            return f"{self.T}({'' if v > 0 else '-'}np.inf)"
        return f"{self.T}({float(v)!r})"

    # -- the nodes
    def visit(self, node: Expr) -> None:
        shape = node.shape
        if isinstance(node, Var):
            self.var(node)
        elif isinstance(node, Const):
            if shape not in ((), (self.dim,)):
                raise Unsupported(f"a constant of shape {shape}")
            self.set(node, "f" if not shape else "r", self.num(node.value))
        elif isinstance(node, Size):
            if node.dim != self.dim:
                raise Unsupported(f"the size of {node.dim}")
            self.set(node, "f", f"{self.T}(n)")
        elif isinstance(node, Map):
            self.map(node)
        elif isinstance(node, Add):
            self.add(node)
        elif isinstance(node, Einsum):
            self.einsum(node)
        else:
            raise Unsupported(f"a node {type(node).__name__} {getattr(node, 'fn', '')}")

    def set(self, node: Expr, role: str, code: str, line: bool = True) -> None:
        """``node`` is ``code``; a scalar of the loop or before it gets a local."""
        self.role[id(node)] = role
        if line and role in "fr" and not code.isidentifier():
            name = self.fresh(role)
            (self.pre if role == "f" else self.rows).append(f"{name} = {code}")
            code = name
        self.code[id(node)] = code

    def var(self, node: Var) -> None:
        a = self.args.get(node.name)
        if a is None:
            raise Unsupported(f"{node.name} is not an input")
        pos = int(a[1:])
        if node.shape == ():
            self.scalar_args.append(pos)
            self.set(node, "f", f"{self.T}({a})")
        elif node.shape == (self.dim,):
            self.n_rowsrc = self.n_rowsrc or a
            self.set(node, "r", f"{a}[i]")
        elif len(node.shape) == 2 and node.shape[0] == self.dim \
                and node.shape[1] != self.dim:
            self.n_rowsrc = self.n_rowsrc or a
            self.matrices.append(a)
            self.set(node, "X", a)
        elif len(node.shape) == 1:
            self.set(node, "w", a)
        else:
            raise Unsupported(f"{node.name} of shape {node.shape}")

    def scalar_kids(self, node: Expr) -> list[str]:
        """The codes of ``node``'s children, which must be scalars (free or per row);
        the node's role: ``r`` where one of them is per row, else ``f``."""
        codes = []
        for c in node.children:
            if self.role[id(c)] not in "fr":
                raise Unsupported(f"{type(node).__name__} of a {self.role[id(c)]} node")
            codes.append(self.code[id(c)])
        return codes

    def kid_role(self, node: Expr) -> str:
        return "r" if any(self.role[id(c)] == "r" for c in node.children) else "f"

    def map(self, node: Map) -> None:
        soft = softplus_argument(node) if settings["transcendental"] else None
        if soft is not None and id(soft) in self.role and self.role[id(soft)] in "fr":
            self.set(node, self.role[id(soft)],
                     f"{self.T}(np.logaddexp({self.num(0.0)}, {self.code[id(soft)]}))")
            return
        args = self.scalar_kids(node)
        role = self.kid_role(node)
        if node.fn == "pow" and isinstance(node.children[1], Const):
            code = self.power(args[0], node.children[1].value)
        else:
            spec = FUNCTIONS[node.fn]
            if getattr(spec, "scalar", None) is not None:
                if node.fn not in self.funcs:
                    self.funcs.append(node.fn)
                call = f"_s_{node.fn}"
            elif isinstance(spec.numpy, np.ufunc) and spec.numpy.nin == len(args) \
                    and (spec.numpy in _CHEAP_UFUNCS or settings["transcendental"]):
                call = f"np.{spec.numpy.__name__}"
            else:
                raise Unsupported(f"{node.fn}: no cheap scalar form")
            code = f"{self.T}({call}({', '.join(args)}))"
        self.set(node, role, code)

    def power(self, a: str, p: float) -> str:
        # a ** p for a constant p: integer powers as products (as the NumPy code
        # writes them: x², 1/x), others as np.power on scalars
        if p == 1.0:
            return a
        if math.isfinite(p) and p == int(p) and 0 < p <= 4:
            return "(" + " * ".join([a] * int(p)) + ")"
        if math.isfinite(p) and p == int(p) and -4 <= p < 0:
            return f"({self.T}(1.0) / (" + " * ".join([a] * int(-p)) + "))"
        if p == 0.5:
            return f"{self.T}(np.sqrt({a}))"
        return f"{self.T}(np.power({a}, {self.num(p)}))"

    def add(self, node: Add) -> None:
        roles = {self.role[id(c)] for c in node.children}
        if roles <= {"f", "r"}:
            self.set(node, self.kid_role(node),
                     "(" + " + ".join(self.scalar_kids(node)) + ")")
            return
        # a sum of sums over the rows (and of N·c, counted per block): after the loop
        if not roles <= {"f", "s", "sv"} or ("sv" in roles and "f" in roles):
            raise Unsupported(f"a sum of {sorted(roles)}")
        name = self.fresh("p")
        self.post.append(f"{name} = " + " + ".join(self.code[id(c)] for c in node.children))
        self.set(node, "sv" if "sv" in roles else "s", name)

    def einsum(self, node: Einsum) -> None:
        dims = node.letter_dims()
        rows = {c for c, d in dims.items() if d == self.dim}
        n = next(iter(rows)) if rows else None
        kids = list(zip(node.children, node.specs))
        roles = [self.role[id(c)] for c, _ in kids]
        if any(r in ("s", "sv") for r in roles):  # a linear function of one sum
            (k,) = [j for j, r in enumerate(roles) if r in ("s", "sv")]
            if any(r != "f" for j, r in enumerate(roles) if j != k) \
                    or tuple(node.out) != tuple(kids[k][1]):
                raise Unsupported("a product of a sum over the rows with other sums")
            name = self.fresh("p")
            self.post.append(f"{name} = " + " * ".join(self.code[id(c)] for c, _ in kids))
            self.set(node, roles[k], name)
            return
        mats = [j for j, r in enumerate(roles) if r == "X"]
        vecs = [j for j, r in enumerate(roles) if r == "w"]
        scal = [j for j, r in enumerate(roles) if r in "fr"]
        if len(scal) + len(mats) + len(vecs) != len(kids) or len(mats) > 1:
            raise Unsupported(f"a product of {roles}")
        for j in scal:
            if kids[j][1] not in ((), (n,)):
                raise Unsupported("a scalar operand indexed off the rows")
        factors = [self.code[id(kids[j][0])] for j in scal]
        out = tuple(node.out)
        if mats:
            X, xs = kids[mats[0]][0], kids[mats[0]][1]
            if xs[0] != n or len(xs) != 2:
                raise Unsupported("a row matrix indexed off its rows")
            col = xs[1]
            if vecs and len(vecs) == 1 and kids[vecs[0]][1] == (col,) and col not in out:
                # zᵢ = Xᵢ · w: phase 1 writes it into a chunk array
                z = self.fresh("z")
                self.chunk_arrays.append(z)
                self.dots.append((z, self.code[id(X)], self.code[id(kids[vecs[0]][0])]))
                factors.append(f"{z}[k]")
            elif not vecs and out == (col,):
                # Σᵢ vᵢ Xᵢ: phase 3 adds each row times its coefficient (phase 2)
                v = self.fresh("v")
                self.chunk_arrays.append(v)
                coef = " * ".join(factors) if factors else f"{self.T}(1.0)"
                self.rows.append(f"{v}[k] = {coef}")
                q, g = self.fresh("q"), self.fresh("g")
                cols = f"{self.code[id(X)]}.shape[1]"
                self.pre.append(f"{g} = np.zeros({cols}, {self.T})")
                self.pre.append(f"{q} = np.zeros({cols}, {self.T})")
                self.axpys.append((q, self.code[id(X)], v))
                self.chunk_end.append(f"_flush({g}, {q})")
                self.set(node, "sv", g)
                return
            else:
                raise Unsupported("a product of a row matrix other than Xw or Xᵀv")
        elif vecs:
            raise Unsupported("a free vector outside a dot product")
        prod = "(" + " * ".join(factors) + ")" if factors else f"{self.T}(1.0)"
        if out == (n,) and n is not None:
            self.set(node, "r", prod)
        elif out == () and n is not None:
            # Σᵢ (scalars): a per-chunk accumulator added to the block's sum
            c, s = self.fresh("c"), self.fresh("s")
            self.pre += [f"{s} = {self.T}(0.0)", f"{c} = {self.T}(0.0)"]
            self.rows.append(f"{c} += {prod}")
            self.chunk_end += [f"{s} += {c}", f"{c} = {self.T}(0.0)"]
            self.set(node, "s", s)
        elif out == () and n is None:
            self.set(node, "f", prod)
        else:
            raise Unsupported(f"a product with output letters {out}")


def translate(outputs: Sequence[Expr], inputs: Sequence[str], dim: str,
              precision: str) -> str:
    """The source of a module whose ``kernel(a0, a1, ...)`` computes ``outputs``
    (the body of one block, its row dim ``dim``) from the inputs ``inputs`` of one
    block, as the NumPy body does; :class:`Unsupported` where a node is not of the
    forms above."""
    w = _Writer(inputs, dim, precision)
    # log(1 + exp(z)): the sum 1 + exp(z) may be needed by nothing else; it is still
    # visited (cheap) so that every node has a role
    for out in outputs:
        for node in topo_order(out):
            if id(node) not in w.role:
                w.visit(node)
    rets = []
    for out in outputs:
        role, code = w.role[id(out)], w.code[id(out)]
        if role == "r":
            name = w.fresh("o")
            w.pre.append(f"{name} = np.empty(n, {w.T})")
            w.rows.append(f"{name}[i] = {code}")
            rets.append(name)
        elif role in ("s", "sv"):
            rets.append(code)
        else:
            raise Unsupported(f"an output that is a {role} node")
    if w.n_rowsrc is None:
        raise Unsupported("no input has the rows")
    src = [f"n = {w.n_rowsrc}.shape[0]"]
    width = f"{w.matrices[0]}.shape[1]" if w.matrices else "1"
    itemsize = 4 if w.T == "np.float32" else 8
    row = f"({itemsize} * max(1, {width}))"
    src.append(f"C = max(16, min(1024, {CHUNK_BYTES} // {row}))")
    src.append(f"C -= C % {GROUP}")
    src.append(f"P = {GROUP} * max(1, min(8, {PREFETCH_BYTES} // ({GROUP} * {row})))")
    src += w.pre
    src += [f"{a} = np.empty(C, {w.T})" for a in w.chunk_arrays]
    src += ["for lo in range(0, n, C):", "    m = min(C, n - lo)"]
    src += [f"    {ln}" for ln in _groups(w)]
    src += [f"    {ln}" for ln in w.chunk_end]
    src += w.post + ["return (" + ", ".join(rets) + ",)"]
    return _module(src, len(inputs), w.funcs)


def _groups(w: _Writer) -> list[str]:
    """A chunk's loop (its rows ``lo + k``, ``k < m``) in groups of :data:`GROUP`
    rows, software-pipelined: a group's dot products (rows read from memory, asked
    for :data:`PREFETCH_BYTES` ahead) and per-row scalars, and the rank-1 updates of
    the group before it (its rows still in L1), which then never wait on their own
    dot products; the last, shorter group row by row."""
    G = GROUP
    lines = [f"for k0 in range(0, m + {G if w.axpys else 0}, {G}):", "    i0 = lo + k0"]
    if w.axpys:
        lines += [f"    if k0 >= {G}:", f"        kp = k0 - {G}",
                  f"        if kp + {G} <= m:"]
        lines += [f"            _axpy{G}({q}, {X}, lo + kp, {v}, kp)" for q, X, v in w.axpys]
        lines += ["        else:", "            for k in range(kp, m):"]
        lines += [f"                _axpy({q}, {X}, lo + k, {v}[k])" for q, X, v in w.axpys]
    lines += ["    if k0 < m:"]
    lines += [f"        prefetch_rows({X}, i0 + P, {G})" for X in dict.fromkeys(w.matrices)]
    if w.dots:
        lines += [f"        if k0 + {G} <= m:"]
        lines += [f"            _dot{G}({X}, i0, {v}, {z}, k0)" for z, X, v in w.dots]
        lines += ["        else:", "            for k in range(k0, m):"]
        lines += [f"                {z}[k] = _dot({X}, lo + k, {v})" for z, X, v in w.dots]
    if w.rows:
        lines += [f"        for k in range(k0, min(k0 + {G}, m)):", "            i = lo + k"]
        lines += [f"            {ln}" for ln in w.rows]
    return lines


def _module(body: Sequence[str], nargs: int, funcs: Sequence[str]) -> str:
    params = ", ".join(f"a{k}" for k in range(nargs))
    lines = ["# generated by matdiff.compile.rowkernel: one row-blocked body as a loop",
             "import numba", "import numpy as np",
             "from matdiff.expr.functions import FUNCTIONS",
             "from matdiff.compile.prefetch import prefetch_rows", ""]
    for f in funcs:
        # the scalar form's code in the file: a changed form is a new file (Numba's
        # disk cache knows a function by its file)
        code = FUNCTIONS[f].scalar.__code__  # type: ignore[union-attr]
        tag = hashlib.sha256(code.co_code + repr(code.co_consts).encode()).hexdigest()[:12]
        lines.append(f"_s_{f} = numba.njit(FUNCTIONS[{f!r}].scalar)  # {tag}")
    lines += [
        "",
        "",
        "# Xᵢ · w, reassociated (as BLAS's dot is) so that it is vectorised",
        "@numba.njit(cache=True, nogil=True, fastmath={'reassoc', 'contract'})",
        "def _dot(X, i, w):",
        "    s = X.dtype.type(0.0)",
        "    for j in range(w.shape[0]):",
        "        s += X[i, j] * w[j]",
        "    return s",
        "",
        "",
        "# z[k .. k+3] = X[i .. i+3] · w, four rows together",
        "@numba.njit(cache=True, nogil=True, fastmath={'reassoc', 'contract'})",
        "def _dot4(X, i, w, z, k):",
        "    s0 = X.dtype.type(0.0)",
        "    s1 = X.dtype.type(0.0)",
        "    s2 = X.dtype.type(0.0)",
        "    s3 = X.dtype.type(0.0)",
        "    for j in range(w.shape[0]):",
        "        wj = w[j]",
        "        s0 += X[i, j] * wj",
        "        s1 += X[i + 1, j] * wj",
        "        s2 += X[i + 2, j] * wj",
        "        s3 += X[i + 3, j] * wj",
        "    z[k] = s0",
        "    z[k + 1] = s1",
        "    z[k + 2] = s2",
        "    z[k + 3] = s3",
        "",
        "",
        "# q += v Xᵢ",
        "@numba.njit(cache=True, nogil=True)",
        "def _axpy(q, X, i, v):",
        "    for j in range(q.shape[0]):",
        "        q[j] += v * X[i, j]",
        "",
        "",
        "# q += v[k] X[i] + ... + v[k+3] X[i+3], four rows together",
        "@numba.njit(cache=True, nogil=True)",
        "def _axpy4(q, X, i, v, k):",
        "    v0, v1, v2, v3 = v[k], v[k + 1], v[k + 2], v[k + 3]",
        "    for j in range(q.shape[0]):",
        "        q[j] += ((v0 * X[i, j] + v1 * X[i + 1, j]) + v2 * X[i + 2, j]) + v3 * X[i + 3, j]",
        "",
        "",
        "# g += q; q = 0 (a chunk's sum added to the block's)",
        "@numba.njit(cache=True, nogil=True)",
        "def _flush(g, q):",
        "    for j in range(q.shape[0]):",
        "        g[j] += q[j]",
        "        q[j] = 0.0",
        "",
        "",
        "@numba.njit(cache=True, nogil=True, fastmath=False, error_model='numpy')",
        f"def kernel({params}):",
    ]
    lines += [f"    {ln}" for ln in body]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the callable
class _State:
    """What the body's and the last block's wrappers share: the calls so far, and
    the compiled kernel once it is built (``False``: it cannot be)."""

    def __init__(self, source: str, nblocks: int) -> None:
        self.source, self.nblocks = source, max(1, nblocks)
        self.calls = 0
        self.kernel: Any = None


class RowKernel:
    """A block's body: the NumPy body ``numpy_fn`` until the compiled function is
    hot (:mod:`.fuse`'s ``hot_calls``, counted in calls of the whole loop: a call of
    this body is one block of one), then the row kernel; called like the body
    (the block's arrays in the inputs' order, a tuple out)."""

    def __init__(self, state: _State, numpy_fn: Callable[..., tuple],
                 scalars: Sequence[int], dtype: Any, kinds: Sequence[str]) -> None:
        self.state, self.numpy_fn = state, numpy_fn
        self.scalars = tuple(scalars)
        self.dtype = np.dtype(dtype).type
        #: the scalar outputs (made the precision's NumPy scalars)
        self.scalar_outs = tuple(k for k, kind in enumerate(kinds) if kind == "s")

    @property
    def source(self) -> str:
        """The kernel's source."""
        return self.state.source

    @property
    def active(self) -> bool:
        """Whether the compiled kernel runs now."""
        return self.state.kernel not in (None, False)

    def __call__(self, *args: Any) -> tuple:
        st = self.state
        if st.kernel is None:
            from . import fuse

            st.calls += 1
            if st.calls >= fuse.settings["hot_calls"] * st.nblocks:
                _compile(st)
        outs = self.rows(*args)
        return self.numpy_fn(*args) if outs is None else outs

    def rows(self, *args: Any) -> tuple | None:
        """The kernel's outputs for the rows given, any number of them (the
        kernel's loop takes its size from its row inputs, unlike the NumPy body,
        generated for a block's size), or ``None`` where it is not compiled or does
        not take these inputs: the row-block driver then runs the NumPy bodies."""
        kern = self.state.kernel
        if kern is None or kern is False:
            return None
        a = list(args)
        for k in self.scalars:
            a[k] = float(a[k])
        try:
            outs = kern(*a)
        except Exception:  # noqa: BLE001 - inputs the kernel does not take: NumPy
            self.state.kernel = False
            return None
        if not self.scalar_outs:
            return outs
        res = list(outs)
        for k in self.scalar_outs:  # a float of the precision (Numba boxes a float)
            res[k] = self.dtype(res[k])
        return tuple(res)


def _compile(st: _State) -> Any:
    """The compiled kernel of ``st`` (``False`` where Numba is missing, turned off,
    or fails), compiled once per process and source."""
    from . import fuse

    with _LOCK:
        if st.kernel is not None:
            return st.kernel
        kern: Any
        if not (fuse.settings["enabled"] and fuse.numba_available()):
            kern = False  # turned off (or no Numba) now, whatever was compiled before
        else:
            kern = _COMPILED.get(st.source)
        if kern is None:
            try:
                kern = fuse.load_module(st.source, "matdiff_rows").kernel
            except Exception:  # noqa: BLE001 - any failure: the NumPy body stays
                kern = False
            _COMPILED[st.source] = kern
        st.kernel = kern
        return kern


def row_kernel(outputs: Sequence[Expr], inputs: Sequence[str], dim: str, table: Any,
               body: Callable[..., tuple], last: Callable[..., tuple] | None,
               nblocks: int) -> tuple[Callable[..., tuple], Callable[..., tuple] | None]:
    """The body and the last block's body as :class:`RowKernel` s where the body
    ``outputs`` translate (:func:`translate`), else ``body`` and ``last`` as given."""
    if getattr(table, "name", None) != "numpy" or getattr(_STATE, "off", False):
        return body, last
    precision = str(np.dtype(getattr(table, "precision", "float64")))
    if precision not in settings["precisions"]:
        return body, last
    try:
        src = translate(outputs, inputs, dim, precision)
    except Unsupported:
        return body, last
    shapes = {n.name: n.shape for o in outputs for n in topo_order(o) if isinstance(n, Var)}
    scalars = [k for k, name in enumerate(inputs) if shapes.get(name) == ()]
    kinds = ["s" if o.shape == () else "a" for o in outputs]
    st = _State(src, nblocks)
    wrap = [RowKernel(st, fn, scalars, precision, kinds) if fn is not None else None
            for fn in (body, last)]
    assert wrap[0] is not None
    return wrap[0], wrap[1]
