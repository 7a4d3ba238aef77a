"""The identities that put a product into normal form, one named rule each.

A product being normalised is a :class:`Product`, ``c · Σ Πₖ opsₖ[specsₖ]``, where the
sum runs over every letter that is not an output letter.  A rule's ``when`` finds where
its identity applies (``None``: nowhere) and its ``then`` rewrites the product there, in
place; a rule that settles the whole product returns its value instead.  The driver
(:func:`matdiff.expr.simplify.products.normalise`) runs :data:`PASSES` in order; a
pass applies the first of its rules that matches, again and again until none does (a
pass marked ``once`` tries each of its rules once; a pass ``about`` a kind of node runs
only on a product with such an operand).  The order is part of the normal form: each
pass relies on what the passes before it left.

In index notation (``i, j`` output letters, ``a, b`` summed ones, ``c`` a number)::

    broadcast        xᵢ read over (i, j)         = xᵢ 1ⱼ
    flatten          Aᵢₐ (Σ_b Bₐ_b C_bⱼ)          = Aᵢₐ Bₐ_b C_bⱼ           (a, b renamed apart)
    fold_constant    (c₁)(c₂ 1ᵢ) Xᵢ              = (c₁c₂) Xᵢ
    zero_factor      0 · Xᵢⱼ                     = 0ᵢⱼ
    trace_delta      δₐₐ                         = 1
    eliminate_delta  Σₐ δₐ_b gₐ                  = g_b
    duplicate_delta  δᵢⱼ δᵢⱼ = δᵢⱼ δⱼᵢ            = δᵢⱼ
    merge_powers     aᵖ aᑫ (one index string)    = aᵖ⁺ᑫ,  xᵢ xᵢ = (x²)ᵢ, a⁰ = 1 into c
    expand_letter    c over an unread output i   = c 1ᵢ
    count_letter     Σₐ c over an unread a       = n c    (n the dim of a)
    orient_symmetric Mⱼᵢ of a symmetric M        = Mᵢⱼ    (output letters first, in order)
    constant_product c 1ᵢ 1ⱼ                     = c, filled to (i, j)
    single_operand   1 · Xᵢⱼ read as ij          = X
    canonical        operands sorted, letters relabelled, so equal products are one node
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...errors import ShapeError
from ..core import Const, Delta, Dim, Einsum, Expr, Map, Size, letter_dims
from ..written import note_perm, order
from .elementwise import apply
from .structure import symmetry

__all__ = ["Product", "Rule", "Pass", "PASSES", "MAX_FLAT", "rule"]

#: the longest product that is flattened whole; longer ones keep their bulk nested
MAX_FLAT = 16


@dataclass(slots=True, eq=False)
class Product:
    """``coef · Σ Πₖ ops[k][sps[k]]`` read over the output letters ``out``.

    The sum runs over every letter of ``dims`` that is not in ``out`` or ``gone``: a
    letter no operand reads still counts its dim (until ``count_letter`` makes that a
    factor), and a letter a rule has summed away is ``gone``; ``extra`` holds the
    dims of the output letters no operand reads (broadcasting).
    """

    ops: list[Expr]
    sps: list[list[int]]
    out: list[int]
    dims: dict[int, Dim]
    extra: dict[int, Dim] = field(default_factory=dict)
    coef: float = 1.0
    gone: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, operands: Sequence[Expr], specs: Sequence[Sequence[int]],
           out: Sequence[int], extra: dict[int, Dim] | None = None) -> Product:
        ops = list(operands)
        sps = [list(s) for s in specs]
        dims = letter_dims(ops, sps)  # validates arity and dim agreement
        if len(set(out)) != len(out):
            raise ShapeError("internal: an output letter of a product appears twice")
        return cls(ops, sps, list(out), dims, extra or {}, 1.0, set())

    @property
    def shape(self) -> tuple[Dim, ...]:
        return tuple(self.dims[c] for c in self.out)

    def constant(self, value: float) -> Const:
        """The product's value when it is the constant ``value`` filled to its shape."""
        return Const(value, self.shape)

    def drop(self, k: int) -> None:
        del self.ops[k], self.sps[k]

    def covered(self) -> set[int]:
        """The letters some operand reads."""
        return {c for s in self.sps for c in s}


Match = Any  # what a rule's ``when`` found: an operand's index, a letter, a plan


@dataclass(frozen=True, slots=True)
class Rule:
    """One identity: ``when(p)`` is where it applies in ``p`` (``None``: nowhere);
    ``then(p, match)`` rewrites ``p`` there, or returns the whole product's value."""

    name: str
    when: Callable[[Product], Match]
    then: Callable[[Product, Match], Expr | None]

    @property
    def identity(self) -> str:
        return self.then.__doc__ or ""

    def __repr__(self) -> str:
        return f"<rule {self.name}>"


def rule(name: str, when: Callable[[Product], Match]
         ) -> Callable[[Callable[[Product, Match], Expr | None]], Rule]:
    """Decorate a rewrite (its docstring states the identity) with its matcher."""
    def make(then: Callable[[Product, Match], Expr | None]) -> Rule:
        return Rule(name, when, then)
    return make


@dataclass(frozen=True, slots=True)
class Pass:
    """Rules applied together: the first that matches, until none does (``once``: each
    tried once, in order).  ``about``: the pass runs only on a product with an operand
    of this kind (a shortcut: its rules match nothing else)."""

    name: str
    rules: tuple[Rule, ...]
    once: bool = False
    about: type | None = None
    #: the rules' ``(when, then)`` pairs, for the driver
    steps: tuple[tuple[Callable[[Product], Match],
                       Callable[[Product, Match], Expr | None]], ...] = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple((r.when, r.then) for r in self.rules))


# ====================================================================== structure
def _unread_output(p: Product) -> int | None:
    for c in p.out:
        if c not in p.dims:
            return c
    return None


@rule("broadcast", _unread_output)
def broadcast(p: Product, c: int) -> None:
    """Broadcasting: an output letter no operand reads is a factor of ones,
    ``xᵢ`` read over ``(i, j)`` is ``xᵢ 1ⱼ``."""
    if c not in p.extra:
        raise ShapeError("internal: an output letter of a product is in no operand")
    p.ops.append(Const(1.0, (p.extra[c],)))
    p.sps.append([c])
    p.dims[c] = p.extra[c]


def _nested(p: Product) -> tuple | None:
    """The first operand that is itself a product and what of it merges into ``p``:
    all of it, if the merged product has at most ``MAX_FLAT`` operands, else its
    structural factors (see :func:`_hoist`); a long product of no structure stays."""
    for k, e in enumerate(p.ops):
        if not isinstance(e, Einsum):
            continue
        if len(p.ops) - 1 + len(e.children) <= MAX_FLAT:
            # in the order its operands were written (matdiff.expr.written)
            perm = order(e)
            return k, [e.children[j] for j in perm], [list(e.specs[j]) for j in perm], None
        inner_ops, inner_specs, nested = _hoist(e)
        if inner_ops:
            return k, inner_ops, inner_specs, nested
    return None


@rule("flatten", _nested)
def flatten(p: Product, m: tuple) -> None:
    """Flattening: a product inside a product merges into it, its summed letters
    renamed apart, ``Aᵢₐ (Σ_b Bₐ_b C_bⱼ) = Σ_b Aᵢₐ Bₐ_b C_bⱼ``; of a long one only the
    structure merges, ``Aᵢₐ (δₐ_b Bulk_b) = Aᵢₐ δₐ_b Bulk_b`` with ``Bulk`` nested."""
    k, inner_ops, inner_specs, nested = m
    e = p.ops[k]
    rename = dict(zip(e.out, p.sps[k]))
    nxt = max(p.dims, default=-1) + 1
    for s in inner_specs:
        for c in s:
            if c not in rename:
                rename[c] = nxt
                nxt += 1
    if nested is not None:
        inner_ops = inner_ops + [nested[0]]
        inner_specs = inner_specs + [nested[1]]
    p.ops[k:k + 1] = inner_ops
    p.sps[k:k + 1] = [[rename[c] for c in s] for s in inner_specs]
    p.dims = letter_dims(p.ops, p.sps)


def _hoist(e: Einsum) -> tuple[list, list, tuple | None]:
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
    for sp in rest_sps:
        for c in sp:
            if c in need and c not in seen:
                seen.append(c)
    if not rest_ops:
        return struct_ops, struct_sps, None
    return struct_ops, struct_sps, (Einsum(rest_ops, rest_sps, seen), seen)


# ====================================================================== constants
def _a_constant(p: Product) -> int | None:
    for k, e in enumerate(p.ops):
        if isinstance(e, Const):
            return k
    return None


@rule("fold_constant", _a_constant)
def fold_constant(p: Product, k: int) -> None:
    """Constant folding: a constant factor joins the coefficient,
    ``(c₁)(c₂ 1ᵢ) Xᵢ = (c₁c₂) Xᵢ`` (a letter only the ones read is still summed or
    read, see ``expand_letter`` and ``count_letter``)."""
    p.coef *= p.ops[k].value  # type: ignore[attr-defined]
    p.drop(k)


def _zero_coefficient(p: Product) -> bool | None:
    return True if p.coef == 0.0 else None


@rule("zero_factor", _zero_coefficient)
def zero_factor(p: Product, _: bool) -> Expr:
    """A zero factor: ``0 · Xᵢⱼ = 0ᵢⱼ``."""
    return p.constant(0.0)


# ====================================================================== deltas
def _a_trace_delta(p: Product) -> int | None:
    for k, e in enumerate(p.ops):
        if isinstance(e, Delta) and p.sps[k][0] == p.sps[k][1]:
            return k
    return None


@rule("trace_delta", _a_trace_delta)
def trace_delta(p: Product, k: int) -> None:
    """A delta on its diagonal: ``δₐₐ = 1`` for every ``a`` (the letter, if nothing
    else reads it, still counts, ``Σₐ δₐₐ = n``)."""
    p.drop(k)


def _a_summed_delta(p: Product) -> int | None:
    for k, e in enumerate(p.ops):
        if isinstance(e, Delta) and not (p.sps[k][0] in p.out and p.sps[k][1] in p.out):
            return k
    return None


@rule("eliminate_delta", _a_summed_delta)
def eliminate_delta(p: Product, k: int) -> None:
    """Delta elimination: ``Σₐ δₐ_b gₐ = g_b``, the summed letter renamed to the other
    one everywhere.  A delta between two output letters stays: it is the structure
    (``xᵢ δᵢⱼ`` is ``diag(x)``)."""
    a, b = p.sps[k]
    old, new = (a, b) if a not in p.out else (b, a)
    p.drop(k)
    for s in p.sps:
        for i, c in enumerate(s):
            if c == old:
                s[i] = new
    p.gone.add(old)


def _a_duplicate_delta(p: Product) -> int | None:
    seen: set[tuple[int, ...]] = set()
    for k, (e, s) in enumerate(zip(p.ops, p.sps)):
        if isinstance(e, Delta):
            key = tuple(s)
            if key in seen or key[::-1] in seen:
                return k
            seen.add(key)
    return None


@rule("duplicate_delta", _a_duplicate_delta)
def duplicate_delta(p: Product, k: int) -> None:
    """A repeated delta: ``δᵢⱼ δᵢⱼ = δᵢⱼ δⱼᵢ = δᵢⱼ``."""
    p.drop(k)


# ====================================================================== powers
def _equal_factors(p: Product) -> dict | None:
    """The operands grouped by base and index string (``e = baseᵖ``, ``p = 1`` unless
    ``e`` is a constant power), if two share both."""
    groups: dict = {}
    for e, s in zip(p.ops, p.sps):
        base, q = e, 1.0
        if isinstance(e, Map) and e.fn == "pow" and isinstance(e.children[1], Const):
            base, q = e.children[0], e.children[1].value
        key = (base, tuple(s))
        if key in groups:
            groups[key].append((e, q))
        else:
            groups[key] = [(e, q)]
    return groups if len(groups) != len(p.ops) else None


@rule("merge_powers", _equal_factors)
def merge_powers(p: Product, groups: dict) -> None:
    """Equal factors become one power: ``aᵖ aᑫ = aᵖ⁺ᑫ`` on one index string,
    ``xᵢ xᵢ = (x²)ᵢ``; ``aᵢ aᵢ⁻¹ = 1``, a number, joins the coefficient.  A merged
    power is not merged again: ``√a √a`` is ``a`` and stays beside another ``a``.
    (Equal deltas are gone already, ``duplicate_delta``.)"""
    p.ops, p.sps = [], []
    for (base, s), members in groups.items():
        e = members[0][0] if len(members) == 1 else \
            apply("pow", (base, Const(sum(q for _, q in members), base.shape)))
        if isinstance(e, Const):  # a⁰ = 1 joins the coefficient
            p.coef *= e.value
        else:
            p.ops.append(e)
            p.sps.append(list(s))


# ====================================================================== letters
def _unread_free(p: Product) -> int | None:
    if not p.out:
        return None
    covered = p.covered()
    for c in p.out:
        if c not in covered:
            return c
    return None


def _unread_summed(p: Product) -> int | None:
    if len(p.dims) == len(p.out) + len(p.gone):  # it sums no letter
        return None
    covered = p.covered()
    for c in p.dims:
        if c not in covered and c not in p.gone and c not in p.out:
            return c
    return None


@rule("expand_letter", _unread_free)
def expand_letter(p: Product, c: int) -> None:
    """Scalar expansion: an output letter no operand reads (any more) is a factor of
    ones, ``c`` read over ``i`` is ``c 1ᵢ``."""
    p.ops.append(Const(1.0, (p.dims[c],)))
    p.sps.append([c])


@rule("count_letter", _unread_summed)
def count_letter(p: Product, c: int) -> None:
    """Counting: a summed letter no operand reads multiplies by its dim,
    ``Σₐ c = n c`` (``n`` a number, or the size of a named dim)."""
    d = p.dims[c]
    if isinstance(d, int):
        p.coef *= d
    else:
        p.ops.append(Size(d))
        p.sps.append([])
    p.gone.add(c)


# ====================================================================== structure
def _letter_key(p: Product, c: int) -> tuple[int, int]:
    return (0, p.out.index(c)) if c in p.out else (1, c)


def _misoriented(p: Product) -> int | None:
    for k, (e, s) in enumerate(zip(p.ops, p.sps)):
        if len(s) == 2 and s[0] != s[1] and _letter_key(p, s[0]) > _letter_key(p, s[1]) \
                and symmetry(e) > 0:
            return k
    return None


@rule("orient_symmetric", _misoriented)
def orient_symmetric(p: Product, k: int) -> None:
    """A symmetric operand reads its letters in one order: ``Mⱼᵢ = Mᵢⱼ`` for every
    ``M`` that :func:`~matdiff.expr.simplify.structure.is_symmetric` knows (a symmetric,
    SPD or diagonal variable, ``(XᵀX)⁻¹``, ``A + Aᵀ``, ``BᵀSB`` and what keeps the
    symmetry), output letters first and in the output's order, so ``Sᵀ = S``,
    ``S⁻ᵀ = S⁻¹`` and ``(XᵀX)⁻ᵀ = (XᵀX)⁻¹``: equal products become one node and
    their sums merge (``X(XᵀX)⁻¹ + X(XᵀX)⁻ᵀ = 2X(XᵀX)⁻¹``)."""
    p.sps[k].reverse()


# ====================================================================== the result
def _sums_nothing(p: Product) -> bool:
    """Every letter the product sums is gone (summed away by a rule): it reads only
    its output letters."""
    return len(p.dims) == len(p.out) + len(p.gone)


def _only_ones(p: Product) -> bool | None:
    if not _sums_nothing(p):
        return None
    for e in p.ops:
        if not isinstance(e, Const) or e.value != 1.0:
            return None
    return True


@rule("constant_product", _only_ones)
def constant_product(p: Product, _: bool) -> Expr:
    """A product of ones over output letters is its coefficient: ``c 1ᵢ 1ⱼ = c``
    filled to ``(i, j)`` (and the empty product is its coefficient)."""
    return p.constant(p.coef)


def _plain_operand(p: Product) -> bool | None:
    if len(p.ops) == 1 and p.coef == 1.0 and p.sps[0] == p.out and _sums_nothing(p):
        return True
    return None


@rule("single_operand", _plain_operand)
def single_operand(p: Product, _: bool) -> Expr:
    """One operand read as it is: ``1 · Xᵢⱼ`` read as ``ij`` is ``X``."""
    return p.ops[0]


@rule("canonical", lambda p: True)
def canonical(p: Product, _: bool) -> Expr:
    """The product itself, operands sorted and letters relabelled in order of first
    appearance, so that equal products are one node (``yⱼ Aᵢⱼ`` and ``Aᵢⱼ yⱼ``).  It
    sums only the letters its operands read: ``count_letter`` has run."""
    pos = {c: i for i, c in enumerate(p.out)}

    def key(item: tuple[Expr, list[int]]) -> tuple:
        e, s = item
        return (e.sort_key(), tuple(pos.get(c, -1) for c in s))

    ranked = sorted(range(len(p.ops)), key=lambda k: key((p.ops[k], p.sps[k])))
    items = [(p.ops[k], p.sps[k]) for k in ranked]
    relabel: dict[int, int] = {c: i for i, c in enumerate(p.out)}
    for _e, s in items:
        for c in s:
            if c not in relabel:
                relabel[c] = len(relabel)
    if len(relabel) + len(p.gone) != len(p.dims):
        raise AssertionError("internal: a product sums a letter no operand reads")
    ops = [e for e, _s in items]
    sps = [tuple(relabel[c] for c in s) for _e, s in items]
    lead = 0
    if p.coef != 1.0:
        ops.insert(0, Const(p.coef))
        sps.insert(0, ())
        lead = 1
    node = Einsum(ops, sps, tuple(relabel[c] for c in p.out))
    # the operands as they were written, beside the sorted ones (the coefficient
    # first): y ⊙ (Xw) stays so, tr(X⁻¹A) keeps its cyclic start
    place = {k: lead + j for j, k in enumerate(ranked)}
    note_perm(node, tuple(range(lead)) + tuple(place[k] for k in range(len(p.ops))))
    return node


#: the product rules, pass by pass
PASSES: tuple[Pass, ...] = (
    Pass("broadcast", (broadcast,)),
    Pass("flatten", (flatten,)),
    Pass("constants", (fold_constant, zero_factor)),
    Pass("deltas", (trace_delta, eliminate_delta, duplicate_delta), about=Delta),
    Pass("powers", (merge_powers,), once=True),
    Pass("letters", (expand_letter, count_letter)),
    Pass("structure", (orient_symmetric,)),
    Pass("result", (constant_product, zero_factor, single_operand, canonical)),
)

#: every rule, by name
RULES: dict[str, Rule] = {r.name: r for ps in PASSES for r in ps.rules}
