"""Code generation: expressions -> the source of one straight-line Python function.

The generator walks the nodes of all outputs once, children first, so a node shared
by several outputs (the forward pass that a value and its gradient share) is
computed once: one line of source per node.  Sizes are known (the code is
specialised per input-shape signature), so the contraction order of every product
is chosen here, by opt_einsum, and each pairwise step becomes a direct BLAS call
(``@``, ``tensordot``) where one fits.

Every value is held as a *view* (:class:`View`): an array (or a number) indexed by
*classes* plus each axis's class.  Axes of one class are a diagonal (``x_i δ_ij`` is
the vector ``x`` with axes ``(0, 0)``), and a class the array lacks is a broadcast
(the constant ``1``, a filled tensor, is the number ``1.0`` over any axes).  Deltas
and constants therefore never become arrays: a product absorbs them by renaming its
letters, a sum adds a diagonal into a dense accumulator through a strided view, and
only an output (or an argument of a function that needs a true array, such as
``inv``) is made dense.

Generated code refers only to: names it makes itself (``a0`` inputs, ``t3``
temporaries), the backend table ``xp``, numbers written with ``repr(float)``, and
index tuples of ints.  Variable names and dims appear only in comments, and only
after they are checked to be identifiers.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import opt_einsum as oe

from ..errors import MatdiffError
from ..expr.core import (
    Add,
    Call,
    Const,
    Delta,
    Einsum,
    Expr,
    Map,
    Size,
    Var,
)

__all__ = ["View", "generate", "num", "check_name"]


def _is_call(e: Expr, fn: str) -> bool:
    """Whether ``e`` is a call of the matrix function ``fn`` (the optimisations below
    are about particular functions: an inverse only multiplied is a solve, a softmax
    reuses its argument's logsumexp)."""
    return isinstance(e, Call) and e.fn == fn

_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def num(v: float) -> str:
    """A float as Python source: ``repr`` for finite values, the table's inf/nan else."""
    v = float(v)
    if math.isnan(v):
        return "xp.nan"
    if math.isinf(v):
        return "xp.inf" if v > 0 else "(-xp.inf)"
    r = repr(v)
    return f"({r})" if v < 0 else r


def check_name(name: object) -> str:
    """Reject a variable name that is not a plain identifier (it is never emitted as
    code, but a name with quotes, newlines or spaces is a mistake or an attack)."""
    if not isinstance(name, str) or not name or not (name[0].isalpha() or name[0] == "_") \
            or not all(c.isalnum() or c == "_" for c in name) or name.startswith("__"):
        raise MatdiffError(
            f"cannot compile: variable name {name!r} is not a valid name "
            "(letters, digits and '_', not starting with a digit or '__')"
        )
    return name


@dataclass(frozen=True)
class View:
    """A value: ``code`` (a local name or a number's source), each axis's class
    (``axes``, numbered by first appearance) and the classes the array has
    (``core``, in increasing order; the array's axes follow them)."""

    code: str
    axes: tuple
    core: tuple
    lit: float | None = None  # the number, when the value is one number over its axes

    @property
    def nclass(self) -> int:
        return max(self.axes) + 1 if self.axes else 0

    @property
    def repeats(self) -> bool:
        return len(set(self.axes)) != len(self.axes)

    @property
    def dense(self) -> bool:
        return not self.repeats and self.core == self.axes and self.lit is None


def _canon(reps: Sequence) -> tuple[tuple, dict]:
    m: dict = {}
    for r in reps:
        m.setdefault(r, len(m))
    return tuple(m[r] for r in reps), m


def _expand(code: str, have: Sequence, want: Sequence) -> str:
    """``code`` has axes ``have`` (a subsequence of ``want``, same order): index it so
    that it broadcasts over ``want``."""
    if list(have) == list(want) or not have:
        return code
    idx = ", ".join(":" if c in have else "None" for c in want)
    return f"{code}[{idx}]"


class _UF:
    def __init__(self) -> None:
        self.p: dict = {}

    def find(self, a):
        p = self.p
        p.setdefault(a, a)
        while p[a] != a:
            p[a] = p[p[a]]
            a = p[a]
        return a

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            self.p[rb] = ra


#: the cost of one NumPy call, in multiply-adds (about a microsecond of small-array
#: work): it makes the planner prefer two BLAS calls to three small einsums
_CALL = 5000
#: an einsum with a batch index runs without BLAS: its multiply-adds cost this much more
_NO_BLAS = 3
#: products of at most this many operands are planned by exhaustive search
_SEARCH = 5
#: an operand this small is scaled as readily as the result (see :meth:`contract`)
_SMALL = 16384


class _WouldEmit(Exception):
    """A dry run of a pairwise step would write a new line."""


def _pairs(sets: Sequence[frozenset], T: frozenset):
    """Each pairwise step of a product over index sets ``sets`` with target ``T``:
    ``(i, j, keep, after)``, the indices the step keeps and the sets after it (sorted:
    the planner's memo key)."""
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            rest = [x for k, x in enumerate(sets) if k not in (i, j)]
            keep = (sets[i] | sets[j]) & T.union(*rest)
            yield i, j, keep, tuple(sorted(rest + [keep], key=sorted))


def _step_cost(a: frozenset, b: frozenset, keep: frozenset, size_of: Mapping) -> float:
    """Multiply-adds plus calls (:data:`_CALL`) of contracting ``a`` with ``b`` to
    ``keep``, as :meth:`Generator.pair` writes it."""
    cost = 0.0
    needed = keep | (a & b)
    for x in (a, b):
        if x - needed:  # an index of one operand alone: summed first
            cost += math.prod(size_of[c] for c in x) + _CALL
    a, b = a & needed, b & needed
    flops = math.prod(size_of[c] for c in a | b)
    summed = (a & b) - keep
    if not summed:  # an element-wise or outer product
        return cost + flops + _CALL
    if a & b & keep:  # batched and contracted: an einsum, without BLAS
        return cost + _NO_BLAS * flops + 2 * _CALL
    if len(summed) == 1 and len(a) <= 2 and len(b) <= 2:  # a matrix product
        return cost + flops + _CALL
    return cost + flops + 4 * _CALL  # tensordot: reshapes and transposes around one


class Generator:
    """Builds the body of one function; see :func:`generate`."""

    def __init__(self, sizes: Mapping, optimize: str = "dp") -> None:
        self.sizes = dict(sizes)
        self.lines: list[str] = []
        self.ntmp = 0
        self.views: dict[int, View] = {}
        self.optimize = optimize
        self.memo: dict[str, str] = {}
        #: ids of Inv nodes whose value is only multiplied (see :func:`generate`)
        self.solvable: set[int] = set()
        #: a deferred inverse: its name -> (the matrix's code, its line index)
        self.lazy_inv: dict[str, tuple[str, int, int]] = {}
        #: while planning: no line may be written (see :meth:`dry_pair`)
        self.dry = False
        #: id of a LogSumExp's argument -> the code of its value (softmax reuses it)
        self.lse: dict[int, str] = {}
        #: a line computing −x -> the line computing x (a sum subtracts x instead)
        self.neg: dict[str, str] = {}

    # ------------------------------------------------------------------ helpers
    def size(self, d) -> int:
        return d if isinstance(d, int) else int(self.sizes[d])

    def shape(self, e: Expr) -> tuple:
        return tuple(self.size(d) for d in e.shape)

    def emit(self, code: str, comment: str = "", pure: bool = True) -> str:
        """One line ``tK = code``; the same pure code twice is one line (products
        that share a pairwise step, such as ``xᵀA`` in ``xᵀAx`` and its gradient)."""
        if pure and code in self.memo:
            return self.memo[code]
        if self.dry:
            raise _WouldEmit
        name = f"t{self.ntmp}"
        self.ntmp += 1
        self.lines.append(f"{name} = {code}" + (f"  # {comment}" if comment else ""))
        if pure:
            self.memo[code] = name
        return name

    @staticmethod
    def _shape_comment(e: Expr) -> str:
        if not e.shape:
            return "scalar"
        return "(" + ", ".join(str(d) for d in e.shape) + ("," if len(e.shape) == 1 else "") \
            + ")"

    def class_sizes(self, e: Expr, v: View) -> list[int]:
        sz = [0] * v.nclass
        for d, c in zip(e.shape, v.axes):
            sz[c] = self.size(d)
        return sz

    def dense(self, e: Expr, v: View, fresh: bool = False) -> str:
        """Code of ``v`` as a true array of ``e``'s shape (outputs, matrix functions).
        With ``fresh``, the array must not be another node's (the caller returns it)."""
        shape = self.shape(e)
        if v.dense:
            return f"xp.copy({v.code})" if fresh and not v.code.startswith("t") else v.code
        if not v.repeats:
            if v.lit is not None:
                if not shape:
                    return self.emit(f"xp.scalar({v.code})")
                return self.emit(f"xp.full({shape!r}, {v.code})")
            return self.emit(f"xp.dense({_expand(v.code, v.core, v.axes)}, {shape!r})")
        core = _expand(v.code, v.core, tuple(range(v.nclass)))
        return self.emit(f"xp.embed({core}, {shape!r}, {v.axes!r})",
                         "a structured tensor made dense")

    # ------------------------------------------------------------------ nodes
    def visit(self, e: Expr, var_code: Mapping[str, str]) -> View:
        r = len(e.shape)
        full = tuple(range(r))
        if isinstance(e, Var):
            return View(var_code[e.name], full, full)
        if isinstance(e, Const):
            return View(num(e.value), full, (), e.value)
        if isinstance(e, Size):
            n = float(self.size(e.dim))
            return View(num(n), (), (), n)
        if isinstance(e, Delta):
            return View("1.0", (0, 0), (), 1.0)
        kids = [self.views[id(c)] for c in e.children]
        if isinstance(e, Einsum):
            return self.einsum(e, kids)
        if isinstance(e, Add):
            return self.add(e, kids)
        if isinstance(e, Map):
            return self.map(e, kids)
        arg = self.dense(e.children[0], kids[0])
        if _is_call(e, "inv") and id(e) in self.solvable:
            # only multiplied: its name is reserved, products use ``solve`` with the
            # matrix, and the inverse is written (here) only if the name is used
            name = f"t{self.ntmp}"
            self.ntmp += 1
            self.lazy_inv[name] = (arg, len(self.lines), self.shape(e)[0])
            return View(name, full, full)
        lse = self.lse.get(id(e.children[0]))
        if _is_call(e, "softmax") and lse is not None:
            # softmax(z) = exp(z − logsumexp(z)), from the logsumexp already computed
            # (the value of a cross-entropy loss, whose gradient is the softmax)
            return View(self.emit(f"xp.exp({arg} - {lse}[..., None])",
                                  self._shape_comment(e)), full, full)
        assert isinstance(e, Call)
        code = self.emit(f"xp.{e.fn}({arg})", self._shape_comment(e))
        if _is_call(e, "logsumexp"):
            self.lse[id(e.children[0])] = code
        return View(code, full, full)

    # -------------------------------------------------------------- element-wise
    def _broadcast_args(self, e: Expr, kids: Sequence[View]) -> tuple[list[View], tuple]:
        """Arguments of one shape (a diagonal made dense first) and the union of their
        classes, which is the result's core."""
        views = []
        for c, v in zip(e.children, kids):
            if v.repeats:
                full = tuple(range(len(c.shape)))
                v = View(self.dense(c, v), full, full)
            views.append(v)
        core = tuple(sorted({k for v in views for k in v.core}))
        return views, core

    def map(self, e: Map, kids: Sequence[View]) -> View:
        full = tuple(range(len(e.shape)))
        fn = e.fn
        # log(1 + exp(z)) is softplus(z), computed without overflow
        if fn == "log" and isinstance(e.children[0], Add) and len(e.children[0].children) == 2:
            a, b = e.children[0].children
            if isinstance(b, Const):
                a, b = b, a
            if isinstance(a, Const) and a.value == 1.0 and isinstance(b, Map) \
                    and b.fn == "exp":
                z = b.children[0]
                zv = self.views[id(z)]
                if zv.repeats:
                    zv = View(self.dense(z, zv), full, full)
                if zv.lit is None:
                    code = self.emit(f"xp.softplus({_expand(zv.code, zv.core, zv.core)})",
                                     "log(1 + exp(.)) computed stably")
                    return View(code, full, zv.core)
        views, core = self._broadcast_args(e, kids)
        if all(v.lit is not None for v in views):
            with np.errstate(all="ignore"):
                value = float(e.spec.numpy(*[np.float64(v.lit) for v in views]))
            return View(num(value), full, (), value)
        args = [v.code if v.lit is not None or not v.core else _expand(v.code, v.core, core)
                for v in views]
        code = _map_code(fn, args, [v.lit for v in views])
        return View(self.emit(code, self._shape_comment(e)), full, core)

    # -------------------------------------------------------------------- sums
    def _negand(self, v: View) -> View | None:
        """The view of ``x`` when ``v`` is a line ``−x`` (so a sum subtracts ``x``
        instead of adding a negated copy), else ``None``."""
        if v.code in self.neg and v.lit is None:
            return View(self.neg[v.code], v.axes, v.core)
        return None

    def add(self, e: Add, kids: Sequence[View]) -> View:
        groups: dict[tuple, list[tuple[View, View | None]]] = {}
        for v in kids:
            groups.setdefault(v.axes, []).append((v, self._negand(v)))
        sums: dict[tuple, View] = {}
        for axes, pairs in groups.items():
            lit = sum(v.lit for v, _ in pairs if v.lit is not None)
            arrs = [(v, n) for v, n in pairs if v.lit is None]
            if not arrs:
                sums[axes] = View(num(lit), axes, (), lit)
                continue
            core = tuple(sorted({k for v, n in arrs for k in v.core + (n.core if n else ())}))

            def term(v: View, core: tuple = core) -> str:
                return _expand(v.code, v.core, core) if v.core else v.code

            terms = [term(v) for v, _ in arrs]
            if lit != 0.0:
                terms.append(num(lit))
            if len(terms) == 1:
                sums[axes] = arrs[0][0]
                continue
            pos = [term(v) for v, n in arrs if n is None]
            neg = [term(n) for _, n in arrs if n is not None]
            if lit != 0.0:
                pos.append(num(lit))
            if pos and neg and len(terms) <= 32:
                # a − b rather than a + (−1)·b: one operation less
                code = " + ".join(pos) + "".join(f" - {t}" for t in neg)
            else:
                code = self.chain(terms, " + ")
            sums[axes] = View(self.emit(code, self._shape_comment(e)), axes, core)
        if len(sums) == 1:
            return next(iter(sums.values()))
        # a diagonal (or other structured) term plus a dense one: add the structured
        # part into the dense accumulator, never building it as an array
        r = len(e.shape)
        full = tuple(range(r))
        shape = self.shape(e)
        base = sums.pop(full, None)
        if base is None:
            acc = self.emit(f"xp.full({shape!r}, 0.0)", pure=False)
        else:
            # The aliasing rule: an array is written in place only where no other
            # line reads it.  Here that is not known yet (a later node may reuse
            # this very line through the memo of pure code, or a transpose may be a
            # view of an input), so the dense term is copied; _steal_copies drops
            # the copy once the whole body shows the array has no other reader.
            # A broadcast is always copied out.
            acc = self.emit(f"xp.dense({_expand(base.code, base.core, full)}, {shape!r})",
                            _ACC if base.core == full and not base.repeats else
                            "broadcast out: a structured term is added into it", pure=False)
        for axes, v in sums.items():
            core = _expand(v.code, v.core, tuple(range(v.nclass))) if v.core else v.code
            acc = self.emit(f"xp.add_embed({acc}, {core}, {axes!r})",
                            "add a structured term in place", pure=False)
        return View(acc, full, full)

    # ---------------------------------------------------------------- products
    def einsum(self, e: Einsum, kids: Sequence[View]) -> View:
        uf = _UF()
        letter_size: dict = {}
        top = max([c for s in e.specs for c in s] + list(e.out) + [-1]) + 1
        coef = 1.0
        operands: list[tuple[str, list]] = []
        scalars: list[str] = []
        for child, s, v in zip(e.children, e.specs, kids):
            base = top
            top += v.nclass
            for p, (c, d) in enumerate(zip(s, child.shape)):
                letter_size[c] = self.size(d)
                letter_size[base + v.axes[p]] = self.size(d)
                uf.union(c, base + v.axes[p])
            if v.lit is not None:
                coef *= v.lit
            elif not v.core:
                scalars.append(v.code)
            else:
                operands.append((v.code, [base + k for k in v.core]))
        all_letters = set(letter_size)
        out_reps = [uf.find(c) for c in e.out]
        covered = {uf.find(c) for _, ls in operands for c in ls}
        for rep in {uf.find(c) for c in all_letters}:
            if rep not in out_reps and rep not in covered:
                coef *= letter_size[rep]
        axes, cls = _canon(out_reps)
        if coef == 0.0 or (not operands and not scalars):
            if coef == 0.0:
                axes = tuple(range(len(e.out)))
            return View(num(coef), axes, (), coef)
        if not operands:
            factor = ([num(coef)] if coef != 1.0 else []) + scalars
            return View(self.emit(" * ".join(factor), self._shape_comment(e)), axes, ())
        core_reps = [r for r in cls if r in covered]
        core = tuple(cls[r] for r in core_reps)
        ops = [(code, [uf.find(c) for c in ls]) for code, ls in operands]
        code = self.contract(ops, core_reps, coef, scalars, letter_size,
                             self._shape_comment(e))
        return View(code, axes, core)

    def contract(self, ops: list, target: list, coef: float, scalars: list[str],
                 letter_size: Mapping, comment: str) -> str:
        chars: dict = {}

        def ch(c) -> str:
            if c not in chars:
                if len(chars) >= len(_CHARS):
                    raise MatdiffError("a product with more than 52 distinct indices")
                chars[c] = _CHARS[len(chars)]
            return chars[c]

        size_of = {ch(c): letter_size[c] for _, ls in ops for c in ls}
        tgt = "".join(ch(c) for c in target)
        items: list[tuple[str, str]] = []
        for code, ls in ops:
            s = "".join(ch(c) for c in ls)
            if len(set(s)) != len(s):  # a diagonal of an operand
                u = "".join(dict.fromkeys(s))
                code = self.emit(f"xp.einsum('{s}->{u}', {code})")
                s = u
            items.append((code, s))
        factor = [num(coef)] if coef != 1.0 else []
        factor += scalars

        def nbytes(s: str) -> int:
            return math.prod(size_of[c] for c in s)

        # a scalar factor goes on the smallest array it can: an operand or the result.
        # In a product of several, a small operand takes it even where the result is
        # smaller, so that products sharing a factor and operands share their steps
        # (the gradients of W₁ and b₁ both start from δ·(cW₂)ᵀ)
        if factor and factor != ["(-1.0)"]:  # a lone −1 stays for a sum to subtract
            k = min(range(len(items)), key=lambda i: nbytes(items[i][1]))
            if nbytes(items[k][1]) <= nbytes(tgt) or (
                    len(items) > 1 and nbytes(items[k][1]) <= _SMALL):
                code, s = items[k]
                items[k] = (f"({' * '.join(factor)} * {code})", s)
                factor = []
        if len(items) == 1:
            code = self.single(items[0][0], items[0][1], tgt)
        elif all(set(s) <= set(tgt) for _, s in items):
            items.sort(key=lambda it: nbytes(it[1]))
            code = self.chain([self.align(c, s, tgt) for c, s in items], " * ")
        else:
            code = self.contract_steps(items, tgt, size_of)
        if factor == ["(-1.0)"]:
            pos = code if code.isidentifier() else self.emit(code, comment)
            name = self.emit(f"(-1.0) * {pos}", comment)
            self.neg[name] = pos
            return name
        if factor:
            code = f"{' * '.join(factor)} * ({code})" if " " in code else \
                f"{' * '.join(factor)} * {code}"
        if code.isidentifier():
            return code
        return self.emit(code, comment)

    def contract_steps(self, items: list, tgt: str, size_of: Mapping) -> str:
        """Contract ``items`` to ``tgt`` one pairwise step at a time.

        After each step, operands over the same indices are multiplied element-wise
        (free: no index is summed), and the order of the rest is chosen again.  The
        cost model of opt_einsum does not see that a letter shared by three operands
        (a hyperedge, as the ⊙ of a backward pass makes) can be closed cheaply this
        way: for Xᵀ((δW₂ᵀ) ⊙ s) it would otherwise build an (N, d₀, d₁) intermediate.
        """
        stack = list(items)
        while True:
            stack = self.merge_same_indices(stack, tgt)
            if len(stack) == 1:
                return self.single(stack[0][0], stack[0][1], tgt)
            if all(set(s) <= set(tgt) for _, s in stack):
                stack.sort(key=lambda it: math.prod(size_of[c] for c in it[1]))
                return self.chain([self.align(c, s, tgt) for c, s in stack], " * ")
            if len(stack) <= _SEARCH:
                i, j, res = self.plan_pair(stack, tgt, size_of)
                A, B = stack[i], stack[j]
                del stack[j], stack[i]
                code = self.pair(A, B, res)
                if not stack and res == tgt:
                    return code
                stack.append((self.emit(code), res))
                continue
            spec = ",".join(s for _, s in stack) + "->" + tgt
            shapes = [tuple(size_of[c] for c in s) for _, s in stack]
            opt = self.optimize if len(stack) <= 6 else "greedy"
            # no intermediate larger than the largest operand (flop ties otherwise pick
            # outer products that are a dimension too large)
            _, info = oe.contract_path(spec, *shapes, shapes=True, optimize=opt,
                                       memory_limit="max_input")
            inds, einsum_str = info.contraction_list[0][0], info.contraction_list[0][2]
            picked = [stack[i] for i in inds]
            for i in sorted(inds, reverse=True):
                del stack[i]
            ins, res = einsum_str.split("->")
            picked = [(c, s) for (c, _), s in zip(picked, ins.split(","))]
            if len(picked) == 2:
                code = self.pair(picked[0], picked[1], res)
            elif len(picked) == 1:
                code = self.single(picked[0][0], picked[0][1], res)
            else:
                args = ", ".join(c for c, _ in picked)
                code = f"xp.einsum('{einsum_str}', {args})"
            if len(info.contraction_list) == 1:
                return code
            stack.append((self.emit(code), res))

    # ------------------------------------------------------- planning products
    def plan_pair(self, stack: list, tgt: str, size_of: Mapping) -> tuple[int, int, str]:
        """The pair of ``stack`` to contract first, and the indices it keeps.

        Exhaustive search over the orders of pairwise steps (a product has few
        operands here), each step costing its multiply-adds plus one call
        (:data:`_CALL`), with operands over the same indices merged element-wise
        after each step as :meth:`contract_steps` does.  A first step whose code an
        earlier line already computed costs nothing: the gradient of ``b₁`` reuses
        the ``(δW₂ᵀ) ⊙ s`` that the gradient of ``W₁`` made."""
        T = frozenset(tgt)
        cache: dict = {}
        best = None
        for i, j, keep, after in _pairs([frozenset(s) for _, s in stack], T):
            la, lb = stack[i][1], stack[j][1]
            res = self._order(keep, la + lb, [x for k, (_, x) in enumerate(stack)
                                               if k not in (i, j)], tgt)
            cost = 0.0 if self.dry_pair(stack[i], stack[j], res) else \
                _step_cost(frozenset(la), frozenset(lb), keep, size_of)
            total = cost + self._plan_cost(after, T, size_of, cache)
            if best is None or total < best[0]:
                best = (total, i, j, res)
        assert best is not None
        return best[1], best[2], best[3]

    @staticmethod
    def _order(keep: frozenset, natural: str, rest: list[str], tgt: str) -> str:
        """The index order of a pairwise step's result: that of an operand over the
        same indices (they are multiplied next, with no transpose between), else the
        target's where it covers them, else the order of appearance."""
        for x in rest:
            if len(x) == len(keep) and set(x) == keep:
                return x
        if keep <= set(tgt):
            return "".join(c for c in tgt if c in keep)
        return "".join(dict.fromkeys(c for c in natural if c in keep))

    def dry_pair(self, A: tuple[str, str], B: tuple[str, str], res: str) -> bool:
        """Whether the step ``A``·``B`` -> ``res`` is a line already written."""
        self.dry = True
        try:
            code = self.pair(A, B, res)
        except _WouldEmit:
            return False
        finally:
            self.dry = False
        return code in self.memo

    def _plan_cost(self, sets: tuple, T: frozenset, size_of: Mapping, cache: dict) -> float:
        if sets in cache:
            return cache[sets]
        cost = 0.0
        # operands over the same indices, still needed elsewhere: one multiply each
        merged: list[frozenset] = []
        for k, x in enumerate(sets):
            others = T.union(*(y for m, y in enumerate(sets) if m != k and y != x))
            if x in merged and x <= others:
                cost += math.prod(size_of[c] for c in x) + _CALL
            else:
                merged.append(x)
        if len(merged) == 1:
            x = merged[0]
            cost += 0.0 if x == T else math.prod(size_of[c] for c in x) + _CALL
        elif all(x <= T for x in merged):
            cost += (len(merged) - 1) * (math.prod(size_of[c] for c in T) + _CALL)
        else:
            best = math.inf
            for i, j, keep, after in _pairs(merged, T):
                c = _step_cost(merged[i], merged[j], keep, size_of)
                if c < best:
                    best = min(best, c + self._plan_cost(after, T, size_of, cache))
            cost += best
        cache[sets] = cost
        return cost

    def merge_same_indices(self, stack: list, tgt: str) -> list:
        """Operands over the same set of indices, multiplied element-wise, where each
        of those indices is still needed by another operand or the result (else the
        pair is better contracted directly: xᵀy is a dot, not a product and a sum),
        or where an earlier line already holds their product."""
        out: list = []
        for i, (code, s) in enumerate(stack):
            others = set(tgt).union(*(set(t) for j, (_, t) in enumerate(stack)
                                      if j != i and set(t) != set(s)))
            for k, (c0, s0) in enumerate(out):
                if set(s0) != set(s) or len(s0) != len(s):
                    continue
                prod = f"{c0} * {self.align(code, s, s0)}"
                if set(s) <= others or prod in self.memo:
                    out[k] = (self.emit(prod), s0)
                    break
            else:
                out.append((code, s))
        return out

    def chain(self, terms: list[str], op: str, width: int = 32) -> str:
        """``t1 op t2 op ...`` as one expression of at most ``width`` terms, earlier
        terms summed (or multiplied) on lines of their own (a deep expression would
        exhaust Python's compiler)."""
        while len(terms) > width:
            head = self.emit(op.join(terms[:width]))
            terms = [head] + terms[width:]
        return op.join(terms)

    @staticmethod
    def align(code: str, s: str, tgt: str) -> str:
        """``code`` (indices ``s``, all in ``tgt``) transposed and indexed to
        broadcast over ``tgt``."""
        order = sorted(s, key=tgt.index)
        if list(s) != order:
            perm = tuple(s.index(c) for c in order)
            code = f"{code}.T" if len(s) == 2 else f"xp.transpose({code}, {perm!r})"
            s = "".join(order)
        if s != tgt and s:
            code = _expand(code, list(s), list(tgt))
        return code

    def single(self, code: str, s: str, res: str) -> str:
        gone = [i for i, c in enumerate(s) if c not in res]
        if gone:
            code = self.emit(f"xp.sum({code}, {tuple(gone)!r})")
            s = "".join(c for c in s if c in res)
        if s == res:
            return code
        return self.align(code, s, res)

    def inv_sum(self, name: str, ls: str, c: str) -> str:
        """The deferred inverse ``name`` (indices ``ls``) summed over index ``c``."""
        x, _, n = self.lazy_inv[name]
        x = f"{x}.T" if ls[0] == c else x
        return self.emit(f"xp.solve({x}, xp.full({(n,)!r}, 1.0))",
                         "an inverse summed: solve with ones")

    def pair(self, A: tuple[str, str], B: tuple[str, str], res: str) -> str:
        (a, la), (b, lb) = A, B
        # indices summed over one operand alone are summed first (over a deferred
        # inverse, as a solve with ones: 1ᵀX⁻¹ = solve(Xᵀ, 1), X⁻¹1 = solve(X, 1))
        ga = [c for c in la if c not in lb and c not in res]
        if len(ga) == 1 and a in self.lazy_inv and len(la) == 2 == len(set(la)):
            a, la = self.inv_sum(a, la, ga[0]), la.replace(ga[0], "")
            ga = []
        gb = [c for c in lb if c not in la and c not in res]
        if len(gb) == 1 and b in self.lazy_inv and len(lb) == 2 == len(set(lb)):
            b, lb = self.inv_sum(b, lb, gb[0]), lb.replace(gb[0], "")
        if ga:
            a = self.emit(f"xp.sum({a}, {tuple(la.index(c) for c in ga)!r})")
            la = "".join(c for c in la if c not in ga)
        gb = [c for c in lb if c not in la and c not in res]
        if gb:
            b = self.emit(f"xp.sum({b}, {tuple(lb.index(c) for c in gb)!r})")
            lb = "".join(c for c in lb if c not in gb)
        K = [c for c in la if c in lb and c not in res]
        batch = [c for c in la if c in lb and c in res]
        if not batch and len(K) == 1 and len(lb) == 2 == len(set(lb)) \
                and len(la) <= 2 and b in self.lazy_inv and a not in self.lazy_inv:
            (a, la), (b, lb) = (b, lb), (a, la)
        if not batch and len(K) == 1 and len(la) == 2 == len(set(la)) \
                and len(lb) <= 2 and a in self.lazy_inv:
            # X⁻¹ B as solve(X, B), B X⁻¹ as solve(Xᵀ, Bᵀ)ᵀ
            k = K[0]
            x = self.lazy_inv[a][0]
            if la[0] == k:
                x = f"{x}.T"
            keep = la.replace(k, "")
            if len(lb) == 1:
                rhs, rest = b, ""
            else:
                rest = lb.replace(k, "")
                rhs = b if lb[0] == k else f"{b}.T"
            code = f"xp.solve({x}, {rhs})"
            nat = keep + rest
            if nat != res:
                code = self.align(self.emit(code, "an inverse only multiplied: solve"),
                                  nat, res)
            return code
        if not K:
            return f"{self.align(a, la, res)} * {self.align(b, lb, res)}"
        if batch:
            return f"xp.einsum('{la},{lb}->{res}', {a}, {b})"
        if len(K) == 1 and len(la) <= 2 and len(lb) <= 2:
            k = K[0]
            ra = [c for c in la if c != k]
            rb = [c for c in lb if c != k]

            def form(code: str, ls: str, first: bool) -> str:
                # the operand with k last (first=False) or first (first=True)
                if len(ls) == 1:
                    return code
                want = (k + ls.replace(k, "")) if first else (ls.replace(k, "") + k)
                return code if ls == want else f"{code}.T"

            if "".join(ra + rb) == res:
                return f"{form(a, la, False)} @ {form(b, lb, True)}"
            if "".join(rb + ra) == res:
                return f"{form(b, lb, False)} @ {form(a, la, True)}"
        ia = tuple(la.index(c) for c in K)
        ib = tuple(lb.index(c) for c in K)
        code = f"xp.tensordot({a}, {b}, ({ia!r}, {ib!r}))"
        nat = "".join(c for c in la if c not in K) + "".join(c for c in lb if c not in K)
        if nat != res:
            code = self.align(self.emit(code), nat, res)
        return code


def _map_code(fn: str, args: list[str], lits: list) -> str:
    # a constant power is written out (x², 1/x, √x): fewer passes than xp.pow
    if fn == "pow":
        a, b = args
        p = lits[1]
        if p is not None and lits[0] is None:
            if p == 1.0:
                return a
            if p == 2.0:
                return f"{a} * {a}"
            if p == 3.0:
                return f"{a} * {a} * {a}"
            if p == -1.0:
                return f"1.0 / {a}"
            if p == -2.0:
                return f"1.0 / ({a} * {a})"
            if p == 0.5:
                return f"xp.sqrt({a})"
            if p == -0.5:
                return f"1.0 / xp.sqrt({a})"
            # an inf or nan exponent (x ** float('inf')) has no int value: xp.power
            if math.isfinite(p) and p == int(p) and abs(p) < 64:
                return f"xp.pow({a}, {int(p)})" if p > 0 else f"1.0 / xp.pow({a}, {-int(p)})"
    # every element-wise function is the backend table's entry of its name
    return f"xp.{fn}({', '.join(args)})"


@dataclass
class Generated:
    """One specialisation: its source and the function made from it."""

    source: str
    fn: object
    sizes: dict
    nodes: int
    #: per output, ``(pattern, shape)`` of a structured result (wrapped after the call)
    post: list | None = None


def generate(outputs: Sequence[Expr], inputs: Sequence[str], sizes: Mapping,
             table: object, structured: bool = False, fname: str = "compiled") -> Generated:
    """Generate, compile and return the function ``f(a0, a1, ...) -> tuple`` computing
    ``outputs`` from the variables ``inputs`` (in that order) at dims ``sizes``."""
    from ..expr.core import topo_order

    gen = Generator(sizes)
    var_code = {name: f"a{i}" for i, name in enumerate(inputs)}
    # an inverse whose value is only an operand of products (not an output, not an
    # argument of anything else) may be used through ``solve``
    only_mult: dict[int, bool] = {}
    for out in outputs:
        for node in topo_order(out):
            for c in node.children:
                if _is_call(c, "inv"):
                    only_mult[id(c)] = only_mult.get(id(c), True) and isinstance(node, Einsum)
    outs = {id(o) for o in outputs}
    gen.solvable = {i for i, ok in only_mult.items() if ok and i not in outs}
    count = 0
    seen: set[int] = set()
    for out in outputs:
        for node in topo_order(out):
            if id(node) in seen:
                continue
            seen.add(id(node))
            count += 1
            v = gen.visit(node, var_code)
            gen.views[id(node)] = v
    rets = []
    post: list = []
    for out in outputs:
        v = gen.views[id(out)]
        if structured and v.repeats:
            sizes_c = gen.class_sizes(out, v)
            every = tuple(range(v.nclass))
            if v.core == every and v.lit is None and v.code.startswith("t"):
                rets.append(v.code)
            else:
                rets.append(gen.emit(
                    f"xp.dense({_expand(v.code, v.core, every)}, {tuple(sizes_c)!r})",
                    "structured output: only the core is stored"))
            post.append((v.axes, gen.shape(out)))
        else:
            rets.append(gen.dense(out, v, fresh=True))
            post.append(None)
    # a deferred inverse that some line (or the result) still names is written
    # where its node was visited, after its matrix
    used = set(_TEMP.findall("\n".join(gen.lines + rets)))
    for name, (arg, at, _) in sorted(gen.lazy_inv.items(), key=lambda kv: -kv[1][1]):
        if name in used:
            gen.lines.insert(at, f"{name} = xp.inv({arg})")
    gen.lines = _steal_copies(_live(gen.lines, rets), rets)
    header = []
    for name, code in var_code.items():
        header.append(f"    # {code}: {check_name(name)}")
    if sizes:
        header.append("    # dims: " + ", ".join(f"{check_dim_name(d)}={int(n)}"
                                             for d, n in sorted(sizes.items())))
    body = [f"    {ln}" for ln in gen.lines]
    ret = "    return (" + ", ".join(rets) + ("," if len(rets) == 1 else "") + ")"
    args = ", ".join(var_code.values())
    src = "\n".join([f"def {fname}({args}):", *header, *body, ret]) + "\n"
    glb = {"xp": table, "__builtins__": {}}
    exec(compile(src, f"<matdiff {fname}>", "exec"), glb)  # noqa: S102 - our own code
    return Generated(src, glb[fname], dict(sizes), count,
                     post if any(p is not None for p in post) else None)


#: a temporary's name in generated code
_TEMP = re.compile(r"\bt\d+\b")


def _live(lines: list[str], rets: list[str]) -> list[str]:
    """``lines`` without those whose value nothing uses (a negation that a sum
    subtracted instead, a planning step taken another way)."""
    pat = _TEMP
    used = set(pat.findall(" ".join(rets)))
    kept = []
    for ln in reversed(lines):
        name, code = ln.split(" = ", 1)
        if name in used:
            kept.append(ln)
            used.update(pat.findall(code))
    return kept[::-1]


#: the comment on the copy a sum makes of a dense term before adding into it
_ACC = "copied: a structured term is added into it"


def _steal_copies(lines: list[str], rets: list[str]) -> list[str]:
    """A sum's accumulator copy of an array that nothing else uses, and that its line
    made fresh (the value of an arithmetic operator, never a view), becomes that
    array itself: ``diag(s) − s sᵀ`` adds ``s`` into the outer product in place rather
    than into an n × n copy of it."""
    pat = _TEMP
    uses: dict[str, int] = {}
    defs: dict[str, str] = {}
    for ln in lines:
        name, code = ln.split(" = ", 1)
        code = code.split("  # ")[0]
        defs[name] = code
        for n in pat.findall(code):
            uses[n] = uses.get(n, 0) + 1
    for n in pat.findall(" ".join(rets)):
        uses[n] = uses.get(n, 0) + 1
    out = []
    for ln in lines:
        m = re.fullmatch(r"(t\d+) = xp\.dense\((t\d+), \([\d, ]*\)\)  # " + _ACC, ln)
        if m and uses.get(m[2]) == 1 and m[2] in defs \
                and isinstance(ast.parse(defs[m[2]], mode="eval").body, ast.BinOp):
            ln = f"{m[1]} = {m[2]}  # its only use: added into in place"
        out.append(ln)
    return out


def check_dim_name(d: object) -> str:
    if not isinstance(d, str) or not d.isidentifier():
        raise MatdiffError(f"cannot compile: dim name {d!r} is not an identifier")
    return d
