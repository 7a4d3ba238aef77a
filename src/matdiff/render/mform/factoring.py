"""Sums in matrix form: the common factors of their terms come out.

``Σₖ cₖ Pₖ F = (Σₖ cₖ Pₖ) F`` and ``Σₖ cₖ F Pₖ = F (Σₖ cₖ Pₖ)`` (a shared factor
of matrix products, :meth:`SumFactoring._factor_chains`), and a scalar factor shared
by terms comes out of them (:meth:`SumFactoring._factor_scalar`); positive terms
print first, shorter first.  A mixin of :class:`~matdiff.render.mform.forms.Forms`,
whose constructors it uses.
"""

from __future__ import annotations

import heapq
from collections import Counter

from .tree import FormsMixin, MForm, _is_neg


class _Term:
    """A term of a sum read as ``c · s₁ s₂ … sₖ · x`` (a number, scalar factors, a
    core) while :meth:`Forms._factor_scalar` takes shared factors out: ``mult``
    counts the factors left by id, ``taken`` those taken out (always the first
    occurrences), ``form`` is the term as a form (made when it is needed)."""

    __slots__ = ("c", "sc", "x", "form", "keys", "mult", "taken", "left")

    def __init__(self, c: float, sc: tuple, x: MForm, form: MForm | None) -> None:
        self.c, self.sc, self.x, self.form = c, sc, x, form
        self.keys = {id(s): s for s in sc}
        self.mult = Counter(map(id, sc))
        self.taken: dict[int, int] = {}
        self.left = len(sc)

    def factors(self) -> list[MForm]:
        """The factors left, in their order."""
        if not self.taken:
            return list(self.sc)
        skip = dict(self.taken)
        out = []
        for s in self.sc:
            key = id(s)
            if skip.get(key):
                skip[key] -= 1
            else:
                out.append(s)
        return out


def _rank(t: MForm) -> tuple:
    """A derivative's term's place in its sum: positive first, shorter first, numbers
    last."""
    return (_is_neg(t), t.width, t.kind in ("eye", "fill", "num"))


def _content(t: MForm, limit: int = 24) -> tuple:
    """What a form is made of, in reading order: its kinds, names and numbers (the
    first ``limit`` of them), a key that orders sums the same way however their
    expressions were built."""
    out: list = []
    stack = [t]
    while stack and len(out) < limit:
        f = stack.pop()
        out.append((f.kind, tuple(str(p) for p in f.params)))
        stack.extend(reversed(f.args))
    return tuple(out)


class SumFactoring(FormsMixin):
    """The factoring of sums (see the module docstring); ``self`` is a ``Forms``."""

    def _settle(self, terms: list[MForm], orient: str) -> MForm:
        """The sum of terms already factored.  A function's terms keep the order they
        were written in (``self.written``, see :class:`Forms`); a derivative's take
        a natural order, the same in every run and for every way of building it:
        positive terms first, shorter first, numbers last, then by the names and
        numbers they are made of (:func:`_content`), never by the expression's
        digest (``cos(x) + 2cos(2x) + 3cos(3x)``)."""
        if len(terms) == 1:
            return terms[0]
        if not getattr(self, "written", False):
            terms = sorted(terms, key=_rank)
            ranks = [_rank(t) for t in terms]
            if len(set(ranks)) < len(ranks):  # ties: by content (only then: it walks)
                terms = sorted(terms, key=lambda t: (_rank(t), _content(t)))
        return self.make("add", terms, (), terms[0].shape, orient)

    def _chain(self, t: MForm) -> tuple[float, list[MForm]]:
        """``t = c · F₁ F₂ … Fₖ``."""
        c = 1.0
        if t.kind == "scale":
            c, t = t.params[0], t.args[0]
        factors: list[MForm] = []
        stack = [t]
        while stack:
            f = stack.pop()
            if f.kind == "matmul":
                stack.append(f.args[1])
                stack.append(f.args[0])
            else:
                factors.append(f)
        return c, factors

    def _product(self, factors: list[MForm]) -> MForm:
        out = factors[0]
        for f in factors[1:]:
            out = self.matmul(out, f)
        return out

    def _factor(self, terms: list[MForm]) -> list[MForm]:
        if len(terms) < 2:
            return terms
        return self._factor_chains(self._factor_scalar(terms))

    def _factor_chains(self, terms: list[MForm]) -> list[MForm]:
        # Σₖ cₖ Pₖ F = (Σₖ cₖ Pₖ) F  and  Σₖ cₖ F Pₖ = F (Σₖ cₖ Pₖ)
        if len(terms) < 2 or terms[0].orient not in ("col", "m"):
            return terms
        chains = [self._chain(t) for t in terms]
        for side in (-1, 0):
            groups: dict[int, list[int]] = {}
            for k, (_, fs) in enumerate(chains):
                f = fs[side]
                if side == 0 and f.orient != "m":
                    continue  # a left factor is a matrix
                if len(fs) == 1 and f.orient not in ("col", "m"):
                    continue  # F alone is I F only for a column or a matrix F
                groups.setdefault(id(f), []).append(k)
            best = None
            for idx in groups.values():
                if len(idx) >= 2 and any(len(chains[k][1]) >= 2 for k in idx):
                    if best is None or len(idx) > len(best):
                        best = idx
            if best is None:
                continue
            F = chains[best[0]][1][side]
            rems = []
            for k in best:
                c, fs = chains[k]
                rest = fs[:-1] if side == -1 else fs[1:]
                if rest:
                    r = self._product(rest)
                else:  # the term is F itself: F = I F = F I
                    r = self.eye(F.shape[0] if side == -1 else F.shape[1])
                rems.append(self.scale(c, r))
            o = rems[0].orient
            if any(r.orient != o for r in rems):
                continue
            inner = self.add(rems, rems[0].shape)
            new = self.matmul(inner, F) if side == -1 else self.matmul(F, inner)
            inside = set(best)
            return [new] + [terms[k] for k in range(len(terms)) if k not in inside]
        return terms

    def _factor_scalar(self, terms: list[MForm]) -> list[MForm]:
        """Scalar factors out of a sum of terms of one orientation.

        Two rules, tried in this order (then again on the terms that came out):

        * ``Σₖ sₖ X = (Σₖ sₖ) X`` for scalars ``sₖ`` and a non-scalar core ``X`` that
          most terms share: ``a1 − b1 = (a − b)1``;
        * ``Σₖ cₖ s Xₖ = s Σₖ cₖ Xₖ`` for the scalar ``s`` (not a number) in the most
          terms (on a tie, the form made first): ``zA + zAᵀ = z(A + Aᵀ)``; the terms
          that had ``s`` are factored again without it, the others stay as they are.

        The nested sums are levels of one loop, and each level costs only what
        changes: the count of terms that have each factor is kept (a heap finds the
        largest), a term that leaves takes its factors' counts with it, and a factor
        taken out is removed from the terms' lists once, when they are made.
        Recomputing every level from its terms cost time quadratic in the terms'
        lengths and cubic overall (the Hessian of ``x^x^…^x``, the derivative of a
        product of sums).  Levels where every term has ``s`` make one product
        ``s₁ s₂ … (Σ …)`` rather than one per level."""
        orient = terms[0].orient
        count: Counter = Counter()  # factor id -> number of live terms that have it
        factor: dict[int, MForm] = {}
        heap: list[tuple[int, int, int]] = []  # (-count, serial, id), stale ones skipped

        def enter(ts: list[_Term]) -> list[_Term]:
            for t in ts:
                for key, s in t.keys.items():
                    count[key] += 1
                    factor[key] = s
                    heapq.heappush(heap, (-count[key], s.serial, key))
            return ts

        def leave(t: _Term) -> None:
            for key, k in t.mult.items():
                if k:
                    count[key] -= 1
                    heapq.heappush(heap, (-count[key], factor[key].serial, key))

        def take(t: _Term, key: int) -> list[_Term]:
            # t without (the first occurrence of) the factor ``key``; with no factor
            # left it is c x, read again (a sum x is its terms).  A core x that is the
            # nested bulk of a long product stays one factor: spreading its factors
            # into the term would bring every level of the nesting back (quadratic)
            t.mult[key] -= 1
            t.taken[key] = t.taken.get(key, 0) + 1
            t.left -= 1
            t.form = None
            if not t.mult[key]:
                count[key] -= 1
                heapq.heappush(heap, (-count[key], factor[key].serial, key))
            if t.left:
                return [t]
            return enter(self._terms(self.scale(t.c, t.x)))

        # each level: (the factors all its terms shared, the factor s or None, the
        # terms without s; for the innermost level, its result)
        frames: list[tuple[list[MForm], MForm | None, list[MForm]]] = []
        items = enter([t for form in terms for t in self._terms(form)])
        run: list[MForm] = []
        while True:
            done = self._common_core(items)
            if done is None:
                while heap and -heap[0][0] != count[heap[0][2]]:
                    heapq.heappop(heap)
                if not (heap and -heap[0][0] >= 2):
                    done = [self._form(t) for t in items]
            if done is not None:
                frames.append((run, None, done))
                break
            # the factor most terms share (at least two of them): it comes out
            s = factor[heap[0][2]]
            key = id(s)
            members = [t for t in items if t.mult.get(key)]
            if len(members) < len(items):
                others = []
                for t in items:
                    if not t.mult.get(key):
                        leave(t)
                        others.append(self._form(t))
                frames.append((run, s, others))
                run = []
            else:  # every term has s: this level and the next make one product
                run.append(s)
            items = []
            for t in members:
                items += take(t, key)
        # the levels' results, from the innermost out: s·(Σ inner) + the others, and
        # a level's shared factors s₁ s₂ … (Σ …) around it
        out: list[MForm] = []
        for shared, level_s, rest in reversed(frames):
            res = rest if level_s is None else \
                [self.smul([level_s], self._settle(self._factor_chains(out), orient))] + rest
            out = [self.smul(shared, self._settle(self._factor_chains(res), orient))] \
                if shared else res
        return out

    def _terms(self, form: MForm) -> list[_Term]:
        """A term (a sum: each of its terms) read as ``c · s₁ … sₖ · x``."""
        out = []
        for t in (form.args if form.kind == "add" else (form,)):
            c, u = (t.params[0], t.args[0]) if t.kind == "scale" else (1.0, t)
            if u.kind == "smul":
                out.append(_Term(c, u.args[:-1], u.args[-1], t))
            else:
                out.append(_Term(c, (), u, t))
        return out

    def _form(self, t: _Term) -> MForm:
        if t.form is None:
            t.form = self.scale(t.c, self.smul(t.factors(), t.x))
        return t.form

    def _common_core(self, items: list[_Term]) -> list[MForm] | None:
        # Σₖ sₖ X = (Σₖ sₖ) X for scalars sₖ: a1 − b1 = (a − b)1
        if items[0].x.orient == "s":
            return None
        byx: dict[int, list[int]] = {}
        for k, t in enumerate(items):
            byx.setdefault(id(t.x), []).append(k)
        group = max(byx.values(), key=len)
        if len(group) < 2 or not any(items[k].left for k in group):
            return None
        coefs = []
        for k in group:
            sc = items[k].factors()
            s = self.smul(sc[:-1], sc[-1]) if sc else self.num(1.0)
            coefs.append(self.scale(items[k].c, s))
        new = self.smul([self.add(coefs, ())], items[group[0]].x)
        inside = set(group)
        return [new] + [self._form(t) for k, t in enumerate(items) if k not in inside]
