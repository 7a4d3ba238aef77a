"""Simplifying constructors: every node a builder or a derivative rule makes goes
through :func:`einsum`, :func:`add` or :func:`apply`, so expressions are always
in a small normal form (MATH.md, "Simplification"):

* **products are flat**: an operand that is itself a product merges into its
  parent (letters renamed apart); a very long product keeps its bulk nested but
  still hands its structural factors (deltas, ones, constants) to the parent;
* **constants fold**: scalar factors collect into one coefficient, a zero factor
  makes the product zero, a product of constants is a constant;
* **deltas are eliminated**: ``Σ_a δ(a, b) g(a) = g(b)``; a delta whose two
  letters are both free stays, it is the structure (``xᵢ δᵢⱼ`` is ``diag(x)``);
* **ones are eliminated**: ``1`` over a letter some other operand covers is 1;
  a letter summed over nothing but ones gives the dim's size ``n``;
* **equal factors become powers**: ``xᵢ xᵢ = (x²)ᵢ``, ``aᵖ aᑫ = aᵖ⁺ᑫ``;
* **sums merge equal terms** (``T + T = 2T``) and drop zeros; a coefficient every
  term shares comes out (``2x − 2y = 2(x − y)``), and a small sum of small products
  takes out a factor its terms share on the same axes
  (``Xᵀdiag(a)X + Xᵀdiag(b)X = Xᵀdiag(a + b)X``, ``Y/N − S/N = (Y − S)/N``);
* **element-wise rules**: constants fold, ``a¹ = a``, ``a⁰ = 1``,
  ``(aᵖ)ᑫ = aᵖᑫ`` for integer ``q``, ``log(exp a) = a``, ``exp(log a) = a`` (on
  log's domain), ``relu(relu a) = relu a``.

Every rule here keeps the value; the tests check that on random expressions.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence

import numpy as np

from ..errors import ShapeError
from .core import (
    Add,
    Const,
    Delta,
    Einsum,
    Expr,
    Map,
    Size,
    letter_dims,
    shape_str,
)

__all__ = ["einsum", "add", "apply", "scale", "split_coef", "zeros", "MAX_FLAT"]

#: the longest product that is flattened whole; longer ones keep their bulk nested
MAX_FLAT = 16
#: common factors are taken out of sums of at most this many terms, each a product
#: of at most _FACTOR_OPS operands (see _factor)
_FACTOR_TERMS = 8
_FACTOR_OPS = 8
#: a sum of more terms is kept as one term of its parent (so that building a sum
#: term by term stays linear; equal terms are merged within each group)
MAX_FLAT_SUM = 64


def zeros(shape: Sequence) -> Const:
    return Const(0.0, tuple(shape))


def keep_context(result: Const, inputs: Sequence[Expr]) -> Const:
    """``result`` as it is: a constant that simplification made out of variables
    (``x − x = 0``) is the shared constant, and knows nothing of them (no side table:
    what evaluation accepts depends on the expression and the values alone).  Kept
    as the identity so that its callers need not change; to be removed."""
    return result


_SPLIT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def split_coef(e: Expr) -> tuple[float, Expr]:
    """``e = c · core`` with ``c`` a number: the coefficient of a product, else 1."""
    if isinstance(e, Einsum):
        hit = _SPLIT.get(e)
        if hit is None:
            hit = _SPLIT[e] = _split_coef(e)
        return hit
    return _split_coef(e)


def _split_coef(e: Expr) -> tuple[float, Expr]:
    if isinstance(e, Einsum):
        ops = e.children
        if ops and isinstance(ops[0], Const) and not ops[0].shape:
            c = ops[0].value
            rest, specs = ops[1:], e.specs[1:]
            if len(rest) == 1 and specs[0] == e.out and len(set(e.out)) == len(e.out):
                return c, rest[0]
            return c, Einsum(rest, specs, e.out)
    if isinstance(e, Const) and e.value != 0.0:
        return e.value, Const(1.0, e.shape)
    return 1.0, e


def scale(e: Expr, c: float) -> Expr:
    """``c · e``."""
    if c == 1.0:
        return e
    s = tuple(range(len(e.shape)))
    return einsum([Const(c), e], [(), s], s)


# ====================================================================== products
def einsum(operands: Sequence[Expr], specs: Sequence[Sequence[int]],
           out: Sequence[int], dims: dict | None = None) -> Expr:
    """The product ``out <- Π operands[specs]``, in normal form.

    An output letter that no operand carries is a broadcast (a factor of ones);
    its dim must then be given in ``dims``.
    """
    ops = list(operands)
    sps = [list(s) for s in specs]
    outl = list(out)
    extra = dict(dims or {})
    dims = letter_dims(ops, sps)  # validates arity and dim agreement
    for c in outl:
        if c not in dims:
            if c not in extra:
                raise ShapeError("internal: an output letter of a product is in no operand")
            ops.append(Const(1.0, (extra[c],)))
            sps.append([c])
            dims[c] = extra[c]
    if len(set(outl)) != len(outl):
        raise ShapeError("internal: an output letter of a product appears twice")
    nxt = max(list(dims) + [-1]) + 1

    # -- flatten nested products (renaming their letters apart)
    k = 0
    while k < len(ops):
        e = ops[k]
        if isinstance(e, Einsum):
            inner_ops, inner_specs = list(e.children), [list(s) for s in e.specs]
            if len(ops) - 1 + len(inner_ops) > MAX_FLAT:
                inner_ops, inner_specs, nested = _hoist(e)
                if not inner_ops:
                    k += 1
                    continue
            else:
                nested = None
            rename = {}
            for c_in, c_out in zip(e.out, sps[k]):
                rename[c_in] = c_out
            for s in inner_specs:
                for c in s:
                    if c not in rename:
                        rename[c] = nxt
                        nxt += 1
            new_ops = inner_ops + ([nested[0]] if nested else [])
            new_sps = [[rename[c] for c in s] for s in inner_specs]
            if nested:
                new_sps.append([rename[c] for c in nested[1]])
            ops[k:k + 1] = new_ops
            sps[k:k + 1] = new_sps
            dims = letter_dims(ops, sps)
            continue
        k += 1

    # -- constants: one coefficient; a zero makes the product zero
    coef = 1.0
    keep_ops, keep_sps = [], []
    for e, s in zip(ops, sps):
        if isinstance(e, Const):
            coef *= e.value
        else:
            keep_ops.append(e)
            keep_sps.append(s)
    ops, sps = keep_ops, keep_sps
    out_shape = tuple(dims[c] for c in outl)
    if coef == 0.0:
        return keep_context(zeros(out_shape), operands)

    # -- deltas: Σ_a δ(a, b) g(a) = g(b)
    gone: set[int] = set()
    changed = True
    while changed:
        changed = False
        for k, (e, s) in enumerate(zip(ops, sps)):
            if not isinstance(e, Delta):
                continue
            a, b = s
            if a == b:
                # δ(a, a) = 1 for every a (a letter left uncovered is handled below)
                del ops[k], sps[k]
                changed = True
                break
            if a in outl and b in outl:
                continue
            old, new = (a, b) if a not in outl else (b, a)
            del ops[k], sps[k]
            for t in sps:
                for i, c in enumerate(t):
                    if c == old:
                        t[i] = new
            gone.add(old)
            changed = True
            break
        if not changed:
            # a repeated delta δ(a,b)δ(a,b) is δ(a,b)
            seen = set()
            for k, (e, s) in enumerate(zip(ops, sps)):
                if isinstance(e, Delta):
                    key = tuple(s)
                    if key in seen or key[::-1] in seen:
                        del ops[k], sps[k]
                        changed = True
                        break
                    seen.add(key)

    # -- sizes and constants that became plain numbers
    keep_ops, keep_sps = [], []
    for e, s in zip(ops, sps):
        if isinstance(e, Const):
            coef *= e.value
        else:
            keep_ops.append(e)
            keep_sps.append(s)
    ops, sps = keep_ops, keep_sps

    # -- equal factors with equal index strings become one power: aᵖ aᑫ = aᵖ⁺ᑫ
    ops, sps = _merge_powers(ops, sps)
    keep_ops, keep_sps = [], []
    for e, s in zip(ops, sps):
        if isinstance(e, Const):
            coef *= e.value
        else:
            keep_ops.append(e)
            keep_sps.append(s)
    ops, sps = keep_ops, keep_sps
    if coef == 0.0:
        return keep_context(zeros(out_shape), operands)

    # -- letters covered by no operand: a free one is a vector of ones (scalar
    #    expansion), a summed one multiplies by the dim's size
    covered = {c for s in sps for c in s}
    for c in list(dims):
        if c in covered or c in gone:
            continue
        if c in outl:
            ops.append(Const(1.0, (dims[c],)))
            sps.append([c])
        elif isinstance(dims[c], int):
            coef *= dims[c]
        else:
            ops.append(Size(dims[c]))
            sps.append([])
        covered.add(c)

    if not ops:
        return keep_context(Const(coef, out_shape), operands)
    if all(isinstance(e, Const) for e in ops):
        # only ones over free letters: a filled constant
        return keep_context(Const(coef, out_shape), operands)
    if coef == 0.0:
        return keep_context(zeros(out_shape), operands)

    # -- a single operand read as it is: the operand itself
    if len(ops) == 1 and sps[0] == outl and coef == 1.0:
        return ops[0]

    return _canonical(ops, sps, outl, coef)


def _hoist(e: Einsum):
    """Split a long product into its structural factors (deltas, ones, sizes and
    coefficients) and one nested product of the rest, so that a parent can
    eliminate the structure without copying the bulk."""
    struct_ops, struct_sps, rest_ops, rest_sps = [], [], [], []
    for op, s in zip(e.children, e.specs):
        if isinstance(op, (Delta, Const, Size)):
            struct_ops.append(op)
            struct_sps.append(list(s))
        else:
            rest_ops.append(op)
            rest_sps.append(list(s))
    if not struct_ops:
        return [], [], None
    need = set(e.out) | {c for s in struct_sps for c in s}
    seen: list[int] = []
    for s in rest_sps:
        for c in s:
            if c in need and c not in seen:
                seen.append(c)
    nested = Einsum(rest_ops, rest_sps, seen) if rest_ops else None
    if nested is None:
        return struct_ops, struct_sps, None
    return struct_ops, struct_sps, (nested, seen)


def _merge_powers(ops: list, sps: list):
    groups: dict = {}
    order: list = []
    for e, s in zip(ops, sps):
        base, p = e, 1.0
        if isinstance(e, Map) and e.fn == "pow" and isinstance(e.children[1], Const):
            base, p = e.children[0], e.children[1].value
        key = (base, tuple(s))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append((e, p))
    if len(order) == len(ops):
        return ops, sps
    new_ops, new_sps = [], []
    for key in order:
        members = groups[key]
        base, s = key
        if isinstance(base, Delta):
            new_ops.append(base)  # δ·δ = δ
        elif len(members) == 1:
            new_ops.append(members[0][0])
        else:
            p = sum(m[1] for m in members)
            new_ops.append(apply("pow", (base, Const(p, base.shape))))
        new_sps.append(list(s))
    # a power can have become a constant (p = 0) or a product: re-normalise cheaply
    out_ops, out_sps = [], []
    for e, s in zip(new_ops, new_sps):
        if isinstance(e, Const) and e.shape:
            out_ops.append(Const(e.value))
            out_sps.append([])
        else:
            out_ops.append(e)
            out_sps.append(s)
    return out_ops, out_sps


def _canonical(ops: list, sps: list, outl: list, coef: float) -> Expr:
    """Sort operands and relabel letters so equal products are one node."""
    pos = {c: i for i, c in enumerate(outl)}

    def key(item):
        e, s = item
        return (e.sort_key(), tuple(pos.get(c, -1) for c in s))

    items = sorted(zip(ops, sps), key=key)
    relabel: dict[int, int] = {c: i for i, c in enumerate(outl)}
    for _, s in items:
        for c in s:
            if c not in relabel:
                relabel[c] = len(relabel)
    new_ops = [e for e, _ in items]
    new_sps = [tuple(relabel[c] for c in s) for _, s in items]
    if coef != 1.0:
        new_ops.insert(0, Const(coef))
        new_sps.insert(0, ())
    return Einsum(new_ops, new_sps, tuple(relabel[c] for c in outl))


# ====================================================================== sums
def add(terms: Sequence[Expr]) -> Expr:
    """The sum of terms of one shape, with equal terms merged and zeros dropped."""
    terms = list(terms)
    if not terms:
        raise ShapeError("internal: an empty sum")
    shape = terms[0].shape
    flat: list[Expr] = []
    stack = list(reversed(terms))
    while stack:
        t = stack.pop()
        if t.shape != shape:
            raise ShapeError(
                f"cannot add shapes {shape_str(shape)} and {shape_str(t.shape)}"
            )
        if isinstance(t, Add) and len(t.children) <= MAX_FLAT_SUM:
            stack.extend(reversed(t.children))
        else:
            flat.append(t)
    coefs: dict = {}
    first: dict = {}  # a core met once keeps its term as it was
    order: list = []
    for t in flat:
        c, core = split_coef(t)
        if isinstance(t, Const) and t.value == 0.0:
            continue
        if core not in coefs:
            coefs[core] = 0.0
            first[core] = t
            order.append(core)
        else:
            first[core] = None
        coefs[core] += c
    out = []
    for core in order:
        c = coefs[core]
        if c == 0.0:
            continue
        if first[core] is not None:
            out.append(first[core])
        elif isinstance(core, Const):
            out.append(Const(c * core.value, shape))
        else:
            out.append(scale(core, c))
    if not out:
        return keep_context(zeros(shape), terms)
    if len(out) > 1:
        out = _factor(out, len(shape))
    if len(out) == 1:
        return keep_context(out[0], terms) if isinstance(out[0], Const) else out[0]
    # a coefficient every term shares comes out: c·a − c·b = c(a − b)
    cs = [split_coef(t)[0] for t in out]
    c = abs(cs[0])
    if c != 1.0 and all(abs(ci) == c for ci in cs) \
            and not any(isinstance(t, Const) for t in out):
        return scale(add([scale(split_coef(t)[1], ci / c) for t, ci in zip(out, cs)]), c)
    out.sort(key=lambda t: split_coef(t)[1].sort_key())
    return Add(out)


def _factor(terms: list[Expr], rank: int) -> list[Expr]:
    """Common factors out of a sum: ``Σᵢ F rᵢ = F (Σᵢ rᵢ)``.

    ``F`` is an operand that several product terms share with the same output axes and
    no summed letter (so it can leave the sums inside each term); the rests ``rᵢ``
    must read the same output axes, so their sum is a plain tensor over them.  This is
    what turns the logistic Hessian ``Xᵀdiag(a)X + Xᵀdiag(b)X`` into
    ``Xᵀdiag(a + b)X`` (one weight vector, one product), and ``diag(a) + diag(b)`` into
    ``diag(a + b)``.

    Only small sums of small products take part, and never a product that already
    holds a sum: factoring the sums that reverse mode builds term by term would nest
    them Horner-fashion, one level per term, and cost quadratic time."""
    if len(terms) > _FACTOR_TERMS:
        return terms
    for _ in range(len(terms)):
        groups: dict = {}
        for t in terms:
            if not isinstance(t, Einsum) or len(t.children) > _FACTOR_OPS \
                    or any(isinstance(c, Add) for c in t.children):
                continue
            seen = set()
            for k, (e, sp) in enumerate(zip(t.children, t.specs)):
                if isinstance(e, Const) or len(set(sp)) != len(sp) \
                        or not all(c in t.out for c in sp):
                    continue
                fpos = tuple(t.out.index(c) for c in sp)
                rest = [c for i, s2 in enumerate(t.specs) if i != k for c in s2
                        if c in t.out]
                rpos = tuple(sorted({t.out.index(c) for c in rest}))
                key = (e, fpos, rpos)
                if key not in seen:
                    seen.add(key)
                    groups.setdefault(key, []).append((t, k))
        best = max(groups.items(), key=lambda kv: len(kv[1]), default=None)
        if best is None or len(best[1]) < 2:
            return terms
        (F, fpos, rpos), members = best
        rests = []
        for t, k in members:
            ops = [e for i, e in enumerate(t.children) if i != k]
            sps = [s2 for i, s2 in enumerate(t.specs) if i != k]
            by_pos = {t.out.index(c): c for s2 in sps for c in s2 if c in t.out}
            rests.append(einsum(ops, sps, [by_pos[q] for q in rpos]))
        factored = einsum([F, add(rests)], [fpos, rpos], range(rank))
        used = {id(t) for t, _ in members}
        terms = [factored] + [t for t in terms if id(t) not in used]
        if len(terms) == 1:
            return terms
    return terms


# ====================================================================== element-wise
def apply(fn: str, args: Sequence[Expr]) -> Expr:
    """The element-wise function ``fn`` of ``args`` (one shape), simplified."""
    from .functions import FUNCTIONS

    spec = FUNCTIONS[fn]
    args = tuple(args)
    if all(isinstance(a, Const) for a in args):
        with np.errstate(all="ignore"):
            v = float(spec.numpy(*[np.float64(a.value) for a in args]))
        # fold only what a float holds: exp(1000) is a finite number that overflows,
        # and folded to ∞ it would poison every derivative it meets (0·∞ = nan where
        # step' = 0 says 0).  Unfolded it stays exact, and evaluates as float does.
        if math.isfinite(v) or not all(math.isfinite(a.value) for a in args):
            return keep_context(Const(v, args[0].shape), args)
        return Map(fn, args)
    a = args[0]
    if fn == "pow" and isinstance(args[1], Const):
        p = args[1].value
        if p == 1.0:
            return a
        if p == 0.0:
            return keep_context(Const(1.0, a.shape), args)
        if isinstance(a, Map) and a.fn == "pow" and isinstance(a.children[1], Const) \
                and float(p).is_integer():
            return apply("pow", (a.children[0], Const(a.children[1].value * p, a.shape)))
        if isinstance(a, Map) and a.fn == "sqrt" and p == 2.0:
            return a.children[0]  # (√a)² = a on sqrt's domain
    if fn == "log" and isinstance(a, Map) and a.fn == "exp":
        return a.children[0]
    if fn == "exp" and isinstance(a, Map) and a.fn == "log":
        return a.children[0]
    if fn in ("relu", "abs", "step", "sign") and isinstance(a, Map) and a.fn == fn:
        return a  # idempotent
    return Map(fn, args)
