"""Products in matrix form: the search for the cheapest reading of an
:class:`~matdiff.expr.core.Einsum` (MATH.md, "Printing in matrix notation").

A product of operands with at most two letters each and at most two free letters
is built by binary steps, each a matrix operation on two partial products with at
most two letters (``uᵢvᵢ`` summed is ``uᵀv``, kept is ``u ⊙ v``; ``Aᵢⱼvⱼ`` summed is
``Av``, kept is ``A diag(v)``; ``uᵢvⱼ`` is ``uvᵀ``; ``AᵢₖBₖⱼ`` is ``AB``; a letter in
one operand only is a sum).  A dynamic program over the subsets of operands keeps,
for each subset and each order of its free letters, the cheapest reading (fewest
characters, then fewest transposes).  A delta over the two free letters ties them,
``xᵢ δᵢⱼ = diag(x)``.  A mixin of :class:`~matdiff.render.mform.forms.Forms`.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from ...expr.core import Const, Einsum
from .tree import MAX_SEARCH, FormsMixin, MForm

#: an operand of a product: its form and the index letters it is read over
Item = tuple[MForm, tuple[int, ...]]


class ProductReading(FormsMixin):
    """The reading of products (see the module docstring); ``self`` is a ``Forms``."""

    #: the written positions of the operands' forms by id while a function's product
    #: is read (see :meth:`einsum`), else None
    _ranks: dict[int, int] | None = None
    #: the operands' written positions in each form read so far (see :meth:`_seq`)
    _seqs: dict[int, tuple[int, ...]] = {}  # noqa: RUF012 - replaced per product

    # ============================================================= products
    def einsum(self, node: Einsum, kids: list[MForm],
               perm: Sequence[int] | None = None) -> MForm | None:
        """The matrix form of a product, or ``None`` where it has none; ``perm``: the
        order the operands were written in (:mod:`matdiff.expr.written`), which
        decides between readings of one cost: ``y ⊙ (Xw)``, not ``(Xw) ⊙ y``;
        ``tr(X⁻¹A)``, not ``tr(AX⁻¹)``."""
        ranks: dict[int, int] | None = None
        if perm is not None:
            ranks = {}
            for pos, k in enumerate(perm):
                ranks.setdefault(id(kids[k]), pos)
            if len(ranks) < 2:  # one operand (A A … A): no order to keep
                ranks = None
        before, self._ranks, seqs = self._ranks, ranks, self._seqs
        self._seqs = {}
        try:
            return self._einsum(node, kids)
        finally:
            self._ranks, self._seqs = before, seqs

    def _written_first(self, f: MForm, old: MForm) -> bool:
        """Whether the operands of ``f`` come in an order nearer the written one
        than those of ``old`` (their written positions, in reading order)."""
        return self._seq(f) < self._seq(old)

    def _seq(self, t: MForm) -> tuple[int, ...]:
        """The written positions of the operands in ``t``, in reading order
        (memoised per product: the forms are shared)."""
        ranks, memo = self._ranks, self._seqs
        assert ranks is not None
        stack = [(t, False)]
        while stack:
            n, done = stack.pop()
            if id(n) in memo:
                continue
            r = ranks.get(id(n))
            if r is not None:
                memo[id(n)] = (r,)
            elif done:
                memo[id(n)] = tuple(x for a in n.args for x in memo[id(a)])
            else:
                stack.append((n, True))
                stack.extend((a, False) for a in n.args)
        return memo[id(t)]

    def _einsum(self, node: Einsum, kids: list[MForm]) -> MForm | None:
        coef, scalars, items = 1.0, [], []
        for e, form, s in zip(node.children, kids, node.specs, strict=True):
            if len(s) != len(form.shape):
                return None
            if isinstance(e, Const) and not s:
                coef *= e.value
            elif not s:
                scalars.append(form)
            else:
                items.append((form, tuple(s)))
        out = tuple(node.out)
        if self._ranks and len(scalars) > 1:  # y·x as written: yx
            ranks = self._ranks
            scalars.sort(key=lambda f: ranks.get(id(f), len(ranks)))
        if items:
            core = self._solve_tied(items, out)
            if core is None:
                return None
        elif scalars:
            core = scalars.pop()
        else:
            return self.num(coef)
        return self.scale(coef, self.smul(scalars, core))

    def _diagonals(self, items: list[Item]) -> list[Item] | None:
        # Aᵢᵢ is the vector diag(A); a letter three times in one operand has no form
        fixed: list[Item] = []
        for form, s in items:
            if len(set(s)) == len(s):
                fixed.append((form, s))
            elif len(s) == 2:
                fixed.append((self.diagof(form), (s[0],)))
            else:
                return None
        return fixed

    def _solve_tied(self, items: list[Item], out: tuple) -> MForm | None:
        fixed = self._diagonals(items)
        if fixed is None or len(out) > 2 or any(len(s) > 2 for _, s in fixed):
            return None
        if len(out) == 2:
            a, b = out
            for k, (form, s) in enumerate(fixed):
                if form.kind == "eye" and set(s) == {a, b}:
                    # Π(…) δₐᵦ: the delta makes b equal to a in every other factor,
                    # so the product is diag(v) with v the rest over a (or s·I)
                    tied = [(f, tuple(a if c == b else c for c in t))
                            for j, (f, t) in enumerate(fixed) if j != k]
                    rest = self._diagonals(tied)
                    if rest is None:
                        return None
                    if not rest:
                        return form
                    has_a = any(a in t for _, t in rest)
                    v = self._solve(rest, (a,) if has_a else ())
                    if v is None:
                        return None
                    return self.diag(v) if has_a else self.smul([v], form)
        return self._solve(fixed, out)

    def _reduce_single(self, form: MForm, s: tuple, keep: set) -> dict:
        summed = [c for c in s if c not in keep]
        if len(s) == 1:
            return {(): self.sum(form)} if summed else {s: form}
        a, b = s
        if not summed:
            return {(a, b): form, (b, a): self.T(form)}
        if len(summed) == 2:
            return {(): self.sum(form)}
        if summed[0] == a:
            return {(b,): self.sumaxis(form, 0)}
        return {(a,): self.sumaxis(form, 1)}

    def _combine(self, P: MForm, p: tuple, Q: MForm, q: tuple, keep: set) -> list:
        """The matrix operations that multiply partial products ``P[p]`` and
        ``Q[q]``, summing the shared letters not in ``keep``."""
        if not p:
            return [(self.smul([P], Q), q)]
        if not q:
            return []
        if len(p) == 1 and len(q) == 1:
            a, c = p[0], q[0]
            if a != c:
                return [(self.matmul(P, self.T(Q)), (a, c))]  # uᵢvⱼ = (uvᵀ)ᵢⱼ
            if a in keep:
                return [(self.had([P, Q]), p)]  # uᵢvᵢ = (u ⊙ v)ᵢ
            return [(self.matmul(self.T(P), Q), ())]  # Σᵢ uᵢvᵢ = uᵀv
        if len(p) == 2 and len(q) == 1:
            a, b = p
            c = q[0]
            res: list[Item] = []
            if c == b:
                if b in keep:
                    res.append((self.matmul(P, self.diag(Q)), p))  # Aᵢⱼvⱼ = (A diag(v))ᵢⱼ
                else:
                    res.append((self.matmul(P, Q), (a,)))  # Σⱼ Aᵢⱼvⱼ = (Av)ᵢ
            if c == a and a in keep:
                res.append((self.matmul(self.diag(Q), P), p))  # vᵢAᵢⱼ = (diag(v)A)ᵢⱼ
            return res
        if len(p) == 2 and len(q) == 2:
            a, b = p
            c, d = q
            if b == c and a not in q and d not in p and b not in keep:
                return [(self.matmul(P, Q), (a, d))]  # Σₖ AᵢₖBₖⱼ = (AB)ᵢⱼ
            if (c, d) == (b, a) and a not in keep and b not in keep \
                    and "T" not in (P.kind, Q.kind):
                return [(self.trace(self.matmul(P, Q)), ())]  # Σᵢⱼ AᵢⱼBⱼᵢ = tr(AB)
            if p == q:
                H = self.had([P, Q])  # AᵢⱼBᵢⱼ = (A ⊙ B)ᵢⱼ, then sums
                if a in keep and b in keep:
                    return [(H, p)]
                if a in keep:
                    return [(self.sumaxis(H, 1), (a,))]
                if b in keep:
                    return [(self.sumaxis(H, 0), (b,))]
                return [(self.sum(H), ())]
        return []

    def _offer(self, table: dict, form: MForm, letters: tuple) -> None:
        if len(letters) == 1:
            form = self.col(form)
        cands = [(form, letters)]
        if len(letters) == 2:
            cands.append((self.T(form), letters[::-1]))
        for f, lt in cands:
            old = table.get(lt)
            if old is None or f.cost() < old.cost() or (
                    self._ranks and f.cost() == old.cost() and self._written_first(f, old)):
                table[lt] = f

    def _solve(self, items: list, out: tuple) -> MForm | None:
        n = len(items)
        if n > 2 and len({frozenset(s) for _, s in items}) == 1:
            # one index string for all (up to a transpose): u ⊙ v ⊙ w, then sums
            if self._ranks:  # in the order written: x ⊙ z ⊙ y as written
                ranks = self._ranks
                items = sorted(items, key=lambda it: ranks.get(id(it[0]), len(ranks)))
            s0 = items[0][1]
            H = self.had([f if s == s0 else self.T(f) for f, s in items])
            return self._reduce_single(H, s0, set(out)).get(tuple(out))
        # the operands that read each letter, as a bit mask; the output reads its
        # letters too (a bit past the operands)
        full = (1 << n) - 1
        readers: dict[int, int] = {}
        for i, (_, s) in enumerate(items):
            for c in s:
                readers[c] = readers.get(c, 0) | 1 << i
        for c in out:
            readers[c] = readers.get(c, 0) | 1 << n

        def keep_of(mask: int) -> set:
            # the letters a partial product over ``mask`` must keep: read both inside
            # and outside it (or by the output)
            return {c for c, r in readers.items() if r & mask and r & ~mask}

        best: dict[int, dict] = {}
        for i, (form, s) in enumerate(items):
            best[1 << i] = self._reduce_single(form, s, keep_of(1 << i))
        if n <= MAX_SEARCH:
            for mask in sorted(range(1, full + 1), key=lambda m: bin(m).count("1")):
                if mask in best:
                    continue
                keep = keep_of(mask)
                if len(keep) > 2:
                    continue
                low = mask & -mask
                table: dict = {}
                sub = (mask - 1) & mask
                while sub:
                    other = mask ^ sub
                    if sub & low and sub in best and other in best:
                        self._merge(best[sub], best[other], keep, table)
                    sub = (sub - 1) & mask
                if table:
                    best[mask] = table
            return best.get(full, {}).get(out)
        # a long product: merge the cheapest valid pair, greedily (on a tie, the pair
        # met first).  A pair's readings do not change when two other parts merge, so
        # each pair is read once and waits in a heap (every round reading every pair
        # cost time cubic in the operands); the letters a union keeps are among those
        # its two parts keep, so they are found from those (at most four)
        parts = dict(best)
        opens = {m: keep_of(m) for m in parts}
        order = {m: k for k, m in enumerate(parts)}
        heap: list = []

        def offer(mx: int, my: int) -> None:
            m = mx | my
            keep = {c for c in opens[mx] | opens[my] if readers[c] & ~m}
            if len(keep) > 2:
                return
            table: dict = {}
            self._merge(parts[mx], parts[my], keep, table)
            if table:
                cost = min(f.cost() for f in table.values())
                heapq.heappush(heap, (cost, order[mx], order[my], mx, my, keep, table))

        masks = list(parts)
        for x in range(len(masks)):
            for y in range(x + 1, len(masks)):
                offer(masks[x], masks[y])
        while len(parts) > 1:
            while heap and (heap[0][3] not in parts or heap[0][4] not in parts):
                heapq.heappop(heap)  # a pair with a part merged since
            if not heap:
                return None
            *_, mx, my, keep, table = heapq.heappop(heap)
            del parts[mx], parts[my]
            m = mx | my
            others = list(parts)
            parts[m], opens[m], order[m] = table, keep, len(order)
            for other in others:
                offer(other, m)
        return parts[full].get(out)

    def _merge(self, t1: dict, t2: dict, keep: set, table: dict) -> None:
        for p, P in t1.items():
            for q, Q in t2.items():
                for f, lt in self._combine(P, p, Q, q, keep) + self._combine(Q, q, P, p, keep):
                    if set(lt) == keep:
                        self._offer(table, f, lt)
