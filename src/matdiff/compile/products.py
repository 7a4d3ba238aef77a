"""Products: an Einsum node written as scalings, BLAS calls and a few einsums.

:meth:`Products.einsum` absorbs deltas and constants into the product's letters (a
union-find over letters), :meth:`Products.contract` places the scalar factor, and
:meth:`Products.contract_steps` writes the pairwise steps that :mod:`.plan` picks,
each as :meth:`Products.pair` writes it: an element-wise or outer product, ``@``,
``tensordot``, an einsum with a batch index, or, for an inverse that is only
multiplied, a ``solve``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..errors import MatdiffError
from ..expr.core import Einsum, Expr
from . import plan
from .emitter import Emitter, WouldEmit
from .lines import Code, fmt, join, number
from .views import UnionFind, View, canon

__all__ = ["Products", "shape_comment"]

_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

#: an operand of a product being contracted: its code and its index letters
Item = tuple[Code, str]


def shape_comment(e: Expr) -> str:
    """The comment on a node's line: its shape, ``(n, m)``, or ``scalar``."""
    if not e.shape:
        return "scalar"
    return "(" + ", ".join(str(d) for d in e.shape) + ("," if len(e.shape) == 1 else "") + ")"


class Products(Emitter):
    """The part of the generator that writes products (see the module)."""

    def __init__(self, sizes: Mapping, inputs: Sequence[str] = (),
                 optimize: str = "dp", dim_src: Mapping | None = None,
                 tall_transposed: bool = False) -> None:
        super().__init__(sizes, inputs, dim_src)
        self.optimize = optimize
        #: a tall product of two matrices is written (BᵀAᵀ)ᵀ where
        #: :func:`.plan.transposed_product` says so (the backend table's
        #: ``tall_gemm_transposed``: faster on OpenBLAS's DGEMM)
        self.tall_transposed = tall_transposed
        #: a deferred inverse: its name -> (the matrix's code, its size); its line
        #: ``name = xp.inv(matrix)`` is written, and dropped if every use was a solve
        self.lazy_inv: dict[str, tuple[Code, Code]] = {}
        #: a line computing −x -> the code of x (a sum subtracts x instead)
        self.neg: dict[str, Code] = {}

    # ---------------------------------------------------------------- the node
    def einsum(self, e: Einsum, kids: Sequence[View]) -> View:
        """An Einsum node from its children's views: deltas and diagonals merge
        letters, numbers multiply into one coefficient, an index no operand carries
        is a factor of its size."""
        uf = UnionFind()
        letter_size: dict = {}
        letter_dim: dict = {}
        top = max([c for s in e.specs for c in s] + list(e.out) + [-1]) + 1
        coef = 1.0
        operands: list[tuple[Code, list]] = []
        scalars: list[Code] = []
        for child, s, v in zip(e.children, e.specs, kids):
            base = top
            top += v.nclass
            for p, (c, d) in enumerate(zip(s, child.shape)):
                letter_size[c] = self.size(d)
                letter_dim[c] = d
                letter_size[base + v.axes[p]] = self.size(d)
                letter_dim[base + v.axes[p]] = d
                uf.union(c, base + v.axes[p])
            if v.lit is not None:
                coef *= v.lit
            elif not v.core:
                scalars.append(v.code)
            else:
                operands.append((v.code, [base + k for k in v.core]))
        out_reps = [uf.find(c) for c in e.out]
        covered = {uf.find(c) for _, ls in operands for c in ls}
        for rep in {uf.find(c) for c in letter_size}:
            if rep not in out_reps and rep not in covered:
                # a sum over an index nothing carries: a factor of its size, a number
                # here unless the code reads it from an input at run time
                n = self.size_scalar(letter_dim[rep])
                if n is None:
                    coef *= letter_size[rep]
                else:
                    scalars.append(n)
        axes, cls = canon(out_reps)
        if coef == 0.0 or (not operands and not scalars):
            if coef == 0.0:
                axes = tuple(range(len(e.out)))
            return View(number(coef), axes, (), coef)
        if not operands:
            factor = ([number(coef)] if coef != 1.0 else []) + scalars
            return View(self.emit(join(factor, " * "), shape_comment(e)), axes, ())
        core_reps = [r for r in cls if r in covered]
        core = tuple(cls[r] for r in core_reps)
        ops = [(code, [uf.find(c) for c in ls]) for code, ls in operands]
        code = self.contract(ops, core_reps, coef, scalars, letter_dim, shape_comment(e))
        return View(code, axes, core)

    # ------------------------------------------------------ the scalar factor
    def contract(self, ops: list, target: list, coef: float, scalars: list[Code],
                 letter_dim: Mapping, comment: str) -> Code:
        """The product of ``ops`` (code, letters; ``letter_dim``: each letter's dim)
        over ``target``'s letters, times ``coef`` and the ``scalars``: the name
        holding it."""
        chars: dict = {}

        def ch(c: object) -> str:
            if c not in chars:
                if len(chars) >= len(_CHARS):
                    raise MatdiffError("a product with more than 52 distinct indices")
                chars[c] = _CHARS[len(chars)]
            return chars[c]

        # the product's index letters -> their dims (what a decision is replayed on)
        self.dims_of = {ch(c): letter_dim[c] for _, ls in ops for c in ls}
        tgt = "".join(ch(c) for c in target)
        items: list[Item] = []
        for code, ls in ops:
            s = "".join(ch(c) for c in ls)
            if len(set(s)) != len(s):  # a diagonal of an operand
                u = "".join(dict.fromkeys(s))
                code = self.emit(fmt("xp.einsum('{}', {})", f"{s}->{u}", code))
                s = u
            items.append((code, s))
        factor = ([number(coef)] if coef != 1.0 else []) + scalars
        # a lone −1 stays for a sum to subtract (see Generator.add)
        minus = coef == -1.0 and not scalars
        # a scalar factor goes on the smallest array it can: an operand or the result.
        # In a product of several, a small operand takes it even where the result is
        # smaller, so that products sharing a factor and operands share their steps
        # (the gradients of W₁ and b₁ both start from δ·(cW₂)ᵀ)
        if factor and not minus:
            specs = [s for _, s in items]

            def operand(size_of: Mapping) -> int | None:
                def nbytes(s: str) -> int:
                    return math.prod(size_of[c] for c in s)

                k = min(range(len(specs)), key=lambda i: nbytes(specs[i]))
                if nbytes(specs[k]) <= nbytes(tgt) or (
                        len(specs) > 1 and nbytes(specs[k]) <= plan.SMALL):
                    return k
                return None

            k = self.decide(operand)
            if k is not None:
                code, s = items[k]
                items[k] = (fmt("({} * {})", join(factor, " * "), code, fresh=True), s)
                factor = []
        code = self.contract_items(items, tgt)
        if minus:
            pos = code if code.is_name else self.emit(code, comment)
            neg = self.emit(fmt("(-1.0) * {}", pos, fresh=True), comment)
            self.neg[neg.text] = pos
            return neg
        if factor:
            code = fmt("{} * ({})" if code.operator else "{} * {}", join(factor, " * "), code,
                       fresh=True)
        if code.is_name:
            return code
        return self.emit(code, comment)

    def contract_items(self, items: list[Item], tgt: str) -> Code:
        """The product of ``items`` over ``tgt``: one operand summed or aligned, an
        element-wise product where no index is summed, else pairwise steps."""
        if len(items) == 1:
            return self.single(items[0][0], items[0][1], tgt)
        if all(set(s) <= set(tgt) for _, s in items):
            items = self.smallest_first(items)
            return self.chain([self.align(c, s, tgt) for c, s in items], " * ")
        return self.contract_steps(items, tgt)

    def smallest_first(self, items: list[Item]) -> list[Item]:
        """``items`` in increasing size (an element-wise product's order)."""
        specs = [s for _, s in items]
        perm = self.decide(lambda size_of: sorted(
            range(len(specs)), key=lambda k: math.prod(size_of[c] for c in specs[k])))
        return [items[k] for k in perm]

    # ------------------------------------------------------ the pairwise steps
    def contract_steps(self, items: list[Item], tgt: str) -> Code:
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
                stack = self.smallest_first(stack)
                return self.chain([self.align(c, s, tgt) for c, s in stack], " * ")
            if len(stack) <= plan.SEARCH:
                i, j, res = self.plan_pair(stack, tgt)
                A, B = stack[i], stack[j]
                del stack[j], stack[i]
                code = self.pair(A, B, res)
                if not stack and res == tgt:
                    return code
                stack.append((self.emit(code), res))
                continue
            inds, ins, res, last = self.first_step(stack, tgt)
            picked = [(stack[i][0], s) for i, s in zip(inds, ins)]
            for i in sorted(inds, reverse=True):
                del stack[i]
            if len(picked) == 2:
                code = self.pair(picked[0], picked[1], res)
            elif len(picked) == 1:
                code = self.single(picked[0][0], picked[0][1], res)
            else:
                code = fmt("xp.einsum('{}', {})", ",".join(ins) + "->" + res,
                           join([c for c, _ in picked], ", ", fresh=False))
            if last:
                return code
            stack.append((self.emit(code), res))

    def plan_pair(self, stack: list[Item], tgt: str) -> tuple[int, int, str]:
        """:func:`.plan.plan_pair`'s first step for ``stack``, recorded as a decision
        (:meth:`~.emitter.Emitter.decide`).  Which steps are lines already written
        is found once, here; a replay on other sizes asks the same of that record."""
        specs = [s for _, s in stack]
        seen: dict[tuple[int, int, str], bool] = {}

        def reused(i: int, j: int, res: str) -> bool:
            if (i, j, res) not in seen:
                seen[i, j, res] = self.dry_pair(stack[i], stack[j], res)
            return seen[i, j, res]

        def choose(size_of: Mapping[str, int]) -> tuple[int, int, str]:
            return plan.plan_pair(specs, tgt, size_of, lambda i, j, r: seen[i, j, r])

        def first(size_of: Mapping[str, int]) -> tuple[int, int, str]:
            return plan.plan_pair(specs, tgt, size_of, reused)

        return self.decide(choose, first)

    def first_step(self, stack: list[Item], tgt: str
                   ) -> tuple[tuple[int, ...], list[str], str, bool]:
        """opt_einsum's first step for a long product (:func:`.plan.first_step`),
        recorded as a decision."""
        specs, optimize = [s for _, s in stack], self.optimize

        def choose(size_of: Mapping[str, int]) -> tuple[tuple[int, ...], list[str], str,
                                                       bool]:
            return plan.first_step(specs, tgt, size_of, optimize)

        return self.decide(choose)

    def dry_pair(self, A: Item, B: Item, res: str) -> bool:
        """Whether the step ``A``·``B`` -> ``res`` is a line already written."""
        self.dry = True
        try:
            code = self.pair(A, B, res)
        except WouldEmit:
            return False
        finally:
            self.dry = False
        return code.text in self.memo

    def merge_same_indices(self, stack: list[Item], tgt: str) -> list[Item]:
        """Operands over the same set of indices, multiplied element-wise, where each
        of those indices is still needed by another operand or the result (else the
        pair is better contracted directly: xᵀy is a dot, not a product and a sum),
        or where an earlier line already holds their product."""
        out: list[Item] = []
        for i, (code, s) in enumerate(stack):
            others = set(tgt).union(*(set(t) for j, (_, t) in enumerate(stack)
                                      if j != i and set(t) != set(s)))
            for k, (c0, s0) in enumerate(out):
                if set(s0) != set(s) or len(s0) != len(s):
                    continue
                prod = fmt("{} * {}", c0, self.align(code, s, s0), fresh=True)
                if set(s) <= others or prod.text in self.memo:
                    out[k] = (self.emit(prod), s0)
                    break
            else:
                out.append((code, s))
        return out

    def single(self, code: Code, s: str, res: str) -> Code:
        """One operand with indices ``s`` as ``res``: indices not kept summed out,
        the rest transposed and broadcast."""
        gone = [i for i, c in enumerate(s) if c not in res]
        if gone:
            code = self.emit(fmt("xp.sum({}, {})", code, repr(tuple(gone))))
            s = "".join(c for c in s if c in res)
        if s == res:
            return code
        return self.align(code, s, res)

    # ------------------------------------------------------ one pairwise step
    def pair(self, A: Item, B: Item, res: str) -> Code:
        """The product of two operands over ``res``: after summing what one operand
        alone carries, an inverse only multiplied becomes a solve; else an outer or
        element-wise product, an einsum (batched), ``@`` or ``tensordot``."""
        (a, la), (b, lb) = self.sum_alone(A, B, res)
        K = [c for c in la if c in lb and c not in res]
        batch = [c for c in la if c in lb and c in res]
        if not batch and len(K) == 1:
            if self.is_inverse(b, lb) and len(la) <= 2 and a.text not in self.lazy_inv:
                (a, la), (b, lb) = (b, lb), (a, la)
            if self.is_inverse(a, la) and len(lb) <= 2:
                return self.solve((a, la), (b, lb), K[0], res)
        if not K:
            return fmt("{} * {}", self.align(a, la, res), self.align(b, lb, res), fresh=True)
        if batch:
            return fmt("xp.einsum('{}', {}, {})", f"{la},{lb}->{res}", a, b)
        if len(K) == 1 and len(la) <= 2 and len(lb) <= 2:
            code = self.matmul((a, la), (b, lb), K[0], res)
            if code is not None:
                return code
        ia = tuple(la.index(c) for c in K)
        ib = tuple(lb.index(c) for c in K)
        code = fmt("xp.tensordot({}, {}, ({}, {}))", a, b, repr(ia), repr(ib))
        nat = "".join(c for c in la if c not in K) + "".join(c for c in lb if c not in K)
        if nat != res:
            code = self.align(self.emit(code), nat, res)
        return code

    def sum_alone(self, A: Item, B: Item, res: str) -> tuple[Item, Item]:
        """``A`` and ``B`` with the indices that one of them alone carries (and the
        result lacks) summed out: over a deferred inverse, as a solve with ones
        (1ᵀX⁻¹ = solve(Xᵀ, 1), X⁻¹1 = solve(X, 1))."""
        (a, la), (b, lb) = A, B
        ga = [c for c in la if c not in lb and c not in res]
        if len(ga) == 1 and self.is_inverse(a, la):
            a, la = self.inv_sum(a, la, ga[0]), la.replace(ga[0], "")
            ga = []
        gb = [c for c in lb if c not in la and c not in res]
        if len(gb) == 1 and self.is_inverse(b, lb):
            b, lb = self.inv_sum(b, lb, gb[0]), lb.replace(gb[0], "")
        if ga:
            a = self.emit(fmt("xp.sum({}, {})", a, repr(tuple(la.index(c) for c in ga))))
            la = "".join(c for c in la if c not in ga)
        gb = [c for c in lb if c not in la and c not in res]
        if gb:
            b = self.emit(fmt("xp.sum({}, {})", b, repr(tuple(lb.index(c) for c in gb))))
            lb = "".join(c for c in lb if c not in gb)
        return (a, la), (b, lb)

    def matmul(self, A: Item, B: Item, k: str, res: str) -> Code | None:
        """``A`` and ``B`` (at most two indices each) contracted over ``k`` as ``@``,
        where the result's order is one of the two operand orders; else ``None``.
        A tall product of two matrices may be written ``(BᵀAᵀ)ᵀ``
        (:func:`.plan.transposed_product`)."""
        (a, la), (b, lb) = A, B
        ra = [c for c in la if c != k]
        rb = [c for c in lb if c != k]

        def form(code: Code, ls: str, first: bool) -> Code:
            # the operand with k last (first=False) or first (first=True)
            if len(ls) == 1:
                return code
            want = (k + ls.replace(k, "")) if first else (ls.replace(k, "") + k)
            return code if ls == want else fmt("{}.T", code)

        if "".join(ra + rb) != res:
            if "".join(rb + ra) != res:
                return None
            (a, la), (b, lb), ra, rb = (b, lb), (a, la), rb, ra
        if len(ra) == len(rb) == 1 and self.tall_transposed:
            m, n = ra[0], rb[0]
            if self.decide(lambda size_of: plan.transposed_product(
                    size_of[m], size_of[n], size_of[k])):
                # C = AB as (BᵀAᵀ)ᵀ: the same sums, BLAS handed the tall result
                # (a transposed view of a fresh array, nobody else's)
                return fmt("({} @ {}).T", form(b, lb, False), form(a, la, True),
                           fresh=True)
        return fmt("{} @ {}", form(a, la, False), form(b, lb, True), fresh=True)

    # ------------------------------------------------- inverses only multiplied
    def is_inverse(self, code: Code, ls: str) -> bool:
        """Whether ``code`` is a deferred inverse, seen as a matrix (two indices)."""
        return code.text in self.lazy_inv and len(ls) == 2 == len(set(ls))

    def inv_sum(self, inv: Code, ls: str, c: str) -> Code:
        """The deferred inverse ``inv`` (indices ``ls``) summed over index ``c``."""
        x, n = self.lazy_inv[inv.text]
        x = fmt("{}.T", x) if ls[0] == c else x
        return self.emit(fmt("xp.solve({}, xp.full({}, 1.0))", x, self.dims_code([n])),
                         "an inverse summed: solve with ones")

    def solve(self, A: Item, B: Item, k: str, res: str) -> Code:
        """The deferred inverse ``A`` times ``B`` over ``k``: X⁻¹B as solve(X, B),
        BX⁻¹ as solve(Xᵀ, Bᵀ)ᵀ."""
        (a, la), (b, lb) = A, B
        x = self.lazy_inv[a.text][0]
        if la[0] == k:
            x = fmt("{}.T", x)
        keep = la.replace(k, "")
        if len(lb) == 1:
            rhs, rest = b, ""
        else:
            rest = lb.replace(k, "")
            rhs = b if lb[0] == k else fmt("{}.T", b)
        code = fmt("xp.solve({}, {})", x, rhs)
        nat = keep + rest
        if nat != res:
            code = self.align(self.emit(code, "an inverse only multiplied: solve"), nat, res)
        return code
