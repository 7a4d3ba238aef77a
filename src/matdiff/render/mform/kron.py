"""The vec layout: a derivative with three or four axes read as the matrix
``∂vec(F)/∂vec(X)ᵀ``, with ``⊗`` (Kronecker), ``I`` and the commutation matrix ``K``
(MATH.md, "Kronecker and vec (the vec layout)").

``vec`` stacks the columns of a matrix (column-major, as Magnus & Neudecker write it):
``vec(F)[i + m·j] = F[i, j]`` for ``F`` of shape ``(m, n)``.  A derivative ``D`` of
``F`` (``m × n``) by ``X`` (``p × q``), stored indexed ``D[i, j, k, l]`` (the mixed
layout), is in the vec layout the ``(m·n) × (p·q)`` matrix
``M[i + m·j, k + p·l] = D[i, j, k, l]``; a vector ``F`` or ``X`` is its own ``vec``
(a column), so a derivative of a vector by a matrix is ``m × (p·q)`` and of a matrix
by a vector ``(m·n) × p``.

The readings, each an identity of the Kronecker product (``(P ⊗ Q)[(i, j), (k, l)] =
Pⱼₗ Qᵢₖ`` with the row ``i + m·j`` and the column ``k + p·l``):

=========================  ================================  ========================
index form                  vec layout                         e.g.
=========================  ================================  ========================
``Qᵢₖ Pⱼₗ``                 ``P ⊗ Q``                          ``AXB``: ``Bᵀ ⊗ A``
``Qᵢₗ Pₖⱼ``                 ``(Pᵀ ⊗ Q)K``                      ``Xᵀ``: ``K``
``Gᵢⱼ Hₖₗ``                 ``vec(G)vec(H)ᵀ``                  ``tr(X)A``
``δᵢₖ δⱼₗ Gᵢⱼ``             ``diag(vec(G))``                   ``exp(X)``
``δᵢₗ δⱼₖ Gᵢⱼ``             ``diag(vec(G))K``                  ``exp(Xᵀ)``
``Gᵢⱼ Mᵢⱼₖₗ Hₖₗ``           ``diag(vec(G)) M diag(vec(H))``    ``X exp(X)``
=========================  ================================  ========================

``K`` (of ``X``, ``p × q``) is the ``(p·q) × (p·q)`` permutation with
``vec(Xᵀ) = K vec(X)``: ``K[j + q·i, i + p·j] = 1``.  The second row holds because
``((Pᵀ ⊗ Q)K)[(i, j), (k, l)] = (Pᵀ ⊗ Q)[(i, j), (l, k)] = Pₖⱼ Qᵢₗ``.  A δ factor is
``I``: ``δᵢₖ Aₗⱼ`` is ``Aᵀ ⊗ I``.  Each side of a pairing (``Q`` over ``(i, k)``,
``P`` over ``(j, l)``) is read by the product search of
:mod:`~matdiff.render.mform.reading` (so ``Aᵢₐ Xₐₖ`` is ``AX``); factors that share
no letter with the result are scalars in front.  A product that pairs otherwise (a
letter of ``F`` and of ``X`` tied in one factor that reaches both sides) has no such
reading: :meth:`KronForms.vec_reading` answers ``None`` and the printers keep index
notation.  A product with a nested product or a sum of tensors among its operands is
first expanded into a sum of flat products (``Σ A(B + C) = Σ AB + Σ AC``).

Dims of the vec layout are products of dims (:func:`matdiff.expr.dims.dim_mul`):
``(m·n, p·q)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...expr.dims import dim_mul
from .tree import FormsMixin, MForm

__all__ = ["KronForms", "commutation"]


def commutation(p: int, q: int) -> Any:
    """The commutation matrix ``K`` of a ``p × q`` matrix as a NumPy array:
    ``vec(Xᵀ) = K vec(X)`` (vec column-major).

    >>> import numpy as np
    >>> X = np.arange(6.0).reshape(2, 3)
    >>> bool(np.all(commutation(2, 3) @ X.reshape(-1, order="F") == X.T.reshape(-1, order="F")))
    True
    """
    import numpy as np

    K = np.zeros((p * q, p * q))
    i, j = np.meshgrid(np.arange(p), np.arange(q), indexing="ij")
    K[(j + q * i).ravel(), (i + p * j).ravel()] = 1.0
    return K


def _rows_cols(f: MForm) -> tuple:
    """The form as a matrix: (rows, columns); a column is ``n × 1``, a row ``1 × n``."""
    if f.orient == "m":
        return f.shape[0], f.shape[1]
    if f.orient == "col":
        return f.shape[0], 1
    if f.orient == "row":
        return 1, f.shape[0]
    return 1, 1


class KronForms(FormsMixin):
    """The constructors of the vec layout's forms (``kron``, ``comm``, ``vec``) and
    the reading of a derivative in the vec layout (:meth:`vec_reading`); a mixin of
    :class:`~matdiff.render.mform.forms.Forms` (``self`` is one)."""

    # ------------------------------------------------------------- constructors
    def kron(self, P: MForm, Q: MForm) -> MForm:
        """``P ⊗ Q``; numbers and scalars come out in front (``(cP) ⊗ Q = c(P ⊗ Q)``)
        and ``I ⊗ I = I``."""
        coef = 1.0
        scalars: list[MForm] = []
        parts = []
        for f in (P, Q):
            while f.kind in ("scale", "smul"):
                if f.kind == "scale":
                    coef *= f.params[0]
                else:
                    scalars.extend(f.args[:-1])
                f = f.args[-1]
            parts.append(f)
        P, Q = parts
        if P.kind == "eye" and Q.kind == "eye":
            out = self.eye(dim_mul(P.shape[0], Q.shape[0]))
        else:
            (rp, cp), (rq, cq) = _rows_cols(P), _rows_cols(Q)
            out = self.make("kron", (P, Q), (), (dim_mul(rp, rq), dim_mul(cp, cq)), "m")
        return self.scale(coef, self.smul(scalars, out))

    def comm(self, p: Any, q: Any) -> MForm:
        """``K``, the commutation matrix of a ``p × q`` matrix (``vec(Xᵀ) = K vec(X)``);
        of a vector it is ``I``."""
        n = dim_mul(p, q)
        if p == 1 or q == 1:
            return self.eye(n)
        return self.make("comm", (), (p, q), (n, n), "m")

    def vec(self, M: MForm) -> MForm:
        """``vec(M)``, the columns of ``M`` stacked (a vector is its own vec)."""
        if M.orient == "col":
            return M
        if M.orient == "row":
            return self.T(M)
        if M.kind == "fill":
            return self.fill(M.params[0], (dim_mul(*M.shape),))
        if M.kind == "matmul" and all(a.kind == "fill" or (a.kind == "T" and a.args[0].kind
                                                          == "fill") for a in M.args):
            # vec(c·1·1ᵀ) = c·1 (the outer product of two constant vectors)
            u, v = (a if a.kind == "fill" else a.args[0] for a in M.args)
            return self.fill(u.params[0] * v.params[0], (dim_mul(*M.shape),))
        return self.make("vecof", (M,), (), (dim_mul(*M.shape),), "col")

    # ------------------------------------------------------------- the reading
    def vec_reading(self, tree: MForm, f_ndim: int) -> MForm | None:
        """The vec-layout form of a derivative's tree with ``f_ndim`` axes of ``F``
        (the rest of ``X``), or ``None`` where a term has no such reading.

        >>> import matdiff as md
        >>> from matdiff.render.mform import Forms, matrix_form
        >>> A, X, B = md.matrix("A", "m", "p"), md.matrix("X", "p", "q"), md.matrix("B", "q", "n")
        >>> t = Forms().vec_reading(matrix_form(md.derive(A @ X @ B, X)), 2)
        >>> t.kind, [str(d) for d in t.shape]
        ('kron', ['m·n', 'p·q'])
        """
        rank = len(tree.shape)
        x_ndim = rank - f_ndim
        if rank not in (3, 4) or not (1 <= f_ndim <= 2 and 1 <= x_ndim <= 2):
            return None
        k = tree.kind
        if k == "add":
            # vec is linear: vec(F + G) = vec(F) + vec(G), each term read alone
            terms = []
            t: MForm | None  # a term here, a Kronecker term (or None) below
            for t in tree.args:
                term = self.vec_reading(t, f_ndim)
                if term is None:
                    return None
                terms.append(term)
            return self.add(terms, terms[0].shape)
        if k == "scale":
            inner = self.vec_reading(tree.args[0], f_ndim)
            return None if inner is None else self.scale(tree.params[0], inner)
        if k == "smul":
            inner = self.vec_reading(tree.args[-1], f_ndim)
            return None if inner is None else self.smul(tree.args[:-1], inner)
        if k == "fill":  # every entry the same number (0): so is every entry of M
            return self.fill(tree.params[0], (dim_mul(*tree.shape[:f_ndim]),
                                              dim_mul(*tree.shape[f_ndim:])))
        if k == "index":
            products = _expand(tree, self.num)
            if products is None:
                return None
            terms = []
            for scalars, items in products:
                t = self._kron_term(scalars, items, tuple(tree.params[1]), f_ndim)
                if t is None:
                    return None
                terms.append(t)
            return self.add(terms, terms[0].shape)
        return None

    def _kron_term(self, scalars: list, items: list, out: tuple,
                   f_ndim: int) -> MForm | None:
        """One product ``Π operands`` over the letters ``(i, j, k, l)`` (``i, j`` of
        F, ``k, l`` of X; ``j`` or ``l`` missing for a vector) in the vec layout."""
        rl = tuple(out[:f_ndim]) + (None,) * (2 - f_ndim)
        cl = tuple(out[f_ndim:]) + (None,) * (2 - (len(out) - f_ndim))
        (i, j), (k, l) = rl, cl
        dims: dict[int, Any] = {}
        for form, s in items:
            for c, d in zip(s, form.shape, strict=True):
                dims.setdefault(c, d)
        cands: list[MForm | None] = []
        for variant in _tied(items, (i, j), (k, l)):
            cands += self._readings(variant, (i, j, k, l), dims, set(out))
        found = [c for c in cands if c is not None]
        if not found:
            return None
        best = min(found, key=lambda c: c.cost())
        return self.smul(scalars, best)

    def _readings(self, items: list, letters: tuple, dims: dict, free: set) -> list:
        """Every reading of one flat product's operands (see the module docstring)."""
        i, j, k, l = letters
        comps = _components(items, free)
        cands = self._pairings(comps, letters, dims, outer=True)
        if j is not None and l is not None:
            cands.append(self._diagonal(items, letters, dims))
        # a factor over F's letters (i, j) or X's (k, l) scales rows or columns:
        # Gᵢⱼ Mᵢⱼₖₗ Hₖₗ = (diag(vec(G)) M diag(vec(H)))[(i, j), (k, l)]
        left = [c for c in comps if j is not None and c[1] == {i, j}]
        right = [c for c in comps if l is not None and c[1] == {k, l}]
        if not (left or right):
            return cands
        rest = [c for c in comps if not any(c is d for d in left + right)]
        scales = []
        for groups, pair in ((left, (i, j)), (right, (k, l))):
            g = [it for c in groups for it in c[0]]
            form = self._solve_tied(g, pair) if g else None
            if g and form is None:
                return cands
            scales.append(None if form is None else self.diag(self.vec(form)))
        for core in self._pairings(rest, letters, dims, outer=False):
            if core is not None:
                if scales[0] is not None:
                    core = self.matmul(scales[0], core)
                if scales[1] is not None:
                    core = self.matmul(core, scales[1])
                cands.append(core)
        return cands

    def _pairings(self, comps: list, letters: tuple, dims: dict, outer: bool) -> list:
        """The readings of a product's factor groups as a Kronecker product, a
        Kronecker product times ``K``, and (``outer``) an outer product of vecs."""
        i, j, k, l = letters
        out: list[MForm | None] = []
        # Qᵢₖ Pⱼₗ = (P ⊗ Q)[(i, j), (k, l)]
        sides = self._sides(comps, ((i, k), (j, l)), dims)
        if sides is not None:
            (Q, P), sc = sides
            out.append(self.smul(sc, self.kron(P, Q)))
        # Qᵢₗ Pₖⱼ = ((Pᵀ ⊗ Q)K)[(i, j), (k, l)]
        sides = self._sides(comps, ((i, l), (k, j)), dims)
        if sides is not None:
            (Q, P), sc = sides
            kron = self.kron(self.T(P), Q)
            if l is not None:
                kron = self.matmul(kron, self.comm(dims[k], dims[l]))
            out.append(self.smul(sc, kron))
        # Gᵢⱼ Hₖₗ = (vec(G) vec(H)ᵀ)[(i, j), (k, l)]
        sides = self._sides(comps, ((i, j), (k, l)), dims) if outer else None
        if sides is not None:
            (G, H), sc = sides
            out.append(self.smul(sc, self.matmul(self.vec(G), self.T(self.vec(H)))))
        return out

    def _sides(self, comps: list, pairing: tuple, dims: dict) -> tuple | None:
        """The two factors of a pairing, each side's operands read over its letters
        (a side with one letter is a column), and the scalar factors; ``None`` where a
        group of operands reaches both sides or a side has no matrix reading."""
        groups: list[list] = [[], []]
        scalars = []
        wants = [tuple(c for c in side if c is not None) for side in pairing]
        for items, free in comps:
            if not free:
                s = self._solve(items, ())
                if s is None:
                    return None
                scalars.append(s)
                continue
            for g, want in enumerate(wants):
                if free <= set(want):
                    groups[g].extend(items)
                    break
            else:
                return None
        forms = []
        for g, want in enumerate(wants):
            if not groups[g]:
                # no operand reads these letters: the product is constant along them
                if any(c not in dims for c in want):
                    return None
                groups[g] = [(self.fill(1.0, tuple(dims[c] for c in want)), want)]
            f = self._solve_tied(groups[g], want)
            if f is None:
                return None
            row, col = pairing[g]
            if row is None:
                f = self.T(f)  # a side without its row letter is a row: 1 × n
            forms.append(f)
        return tuple(forms), scalars

    def _diagonal(self, items: list, letters: tuple, dims: dict) -> MForm | None:
        """``δᵢₖ δⱼₗ Gᵢⱼ`` as ``diag(vec(G))`` and ``δᵢₗ δⱼₖ Gᵢⱼ`` as ``diag(vec(G))K``:
        an element-wise map of ``X`` (or of ``Xᵀ``)."""
        i, j, k, l = letters
        for ties, turned in ((({i, k}, {j, l}), False), (({i, l}, {j, k}), True)):
            rest = list(items)
            found = 0
            for tie in ties:
                for n, (form, s) in enumerate(rest):
                    if form.kind == "eye" and set(s) == tie and len(s) == 2:
                        del rest[n]
                        found += 1
                        break
            if found != 2 or not rest:
                continue
            # the deltas make X's letters equal to F's: rename, read G over (i, j)
            rename = {l: i, k: j} if turned else {k: i, l: j}
            rest = [(f, tuple(rename.get(c, c) for c in s)) for f, s in rest]
            G = self._solve_tied(rest, (i, j))
            if G is None:
                continue
            out = self.diag(self.vec(G))
            if turned:
                out = self.matmul(out, self.comm(dims[k], dims[l]))
            return out
        return None


#: a product with a sum of tensors inside is expanded into at most this many products
MAX_TERMS = 32


def _expand(node: MForm, number: Callable[[float], MForm]) -> list | None:
    """A product in index notation as a sum of flat products ``(scalars, items)``:
    a nested product's operands join the outer one (its summed letters renamed
    apart), a sum of tensors among the operands is distributed,
    ``Σ A (B + C) = Σ AB + Σ AC``, and numbers come out.  ``None`` where an operand
    does not fit its index string or the expansion grows past :data:`MAX_TERMS`
    (``number`` makes a number's form)."""
    specs, out = node.params
    fresh = 1 + max([c for sp in specs for c in sp] + list(out) + [-1])
    todo: list[tuple[list[MForm], list[tuple[MForm, tuple]]]] = [
        ([], list(zip(node.args, (tuple(sp) for sp in specs), strict=True)))]
    done: list = []
    while todo:
        scalars, items = todo.pop()
        for n, (form, s) in enumerate(items):
            if len(s) != len(form.shape):
                return None
            if not s:
                scalars = scalars + [form]
                items = items[:n] + items[n + 1:]
                break
            if form.kind == "index":
                ispecs, iout = form.params
                rename = dict(zip(iout, s, strict=True))
                for sp in ispecs:
                    for c in sp:
                        if c not in rename:
                            rename[c] = fresh
                            fresh += 1
                inner = [(a, tuple(rename[c] for c in sp))
                         for a, sp in zip(form.args, ispecs, strict=True)]
                items = items[:n] + inner + items[n + 1:]
                break
            if len(s) >= 3 and form.kind in ("scale", "smul"):
                lead = [number(form.params[0])] if form.kind == "scale" \
                    else list(form.args[:-1])
                scalars = scalars + lead
                items = items[:n] + [(form.args[-1], s)] + items[n + 1:]
                break
            if len(s) >= 3 and form.kind == "add":
                for t in form.args:
                    todo.append((scalars, items[:n] + [(t, s)] + items[n + 1:]))
                if len(todo) + len(done) > MAX_TERMS:
                    return None
                items = None  # type: ignore[assignment]
                break
        else:
            done.append((scalars, items))
            continue
        if items is not None:
            todo.append((scalars, items))
    return done


def _tied(items: list, fl: tuple, xl: tuple) -> list:
    """The operands as they are, and with the letters a δ ties renamed in the other
    operands (``δᵢₖ Eₖⱼ = δᵢₖ Eᵢⱼ``): X's letter to F's, and F's to X's."""
    out = [items]
    for to_f in (True, False):
        rename: dict[int, int] = {}
        for form, s in items:
            if form.kind == "eye" and len(s) == 2 and len(set(s)) == 2:
                a, b = s if s[0] in fl else s[::-1]
                if a in fl and b in xl and a is not None and b is not None:
                    src, dst = (b, a) if to_f else (a, b)
                    if src not in rename and dst not in rename:
                        rename[src] = dst
        if not rename:
            continue
        out.append([(f, s if f.kind == "eye" and len(s) == 2 and set(s) & set(rename)
                     else tuple(rename.get(c, c) for c in s)) for f, s in items])
    return out


def _components(items: list, free: set) -> list:
    """The operands grouped by the summed letters they share (a group is one factor
    of the product), each with the free letters it reads."""
    parent = list(range(len(items)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    owner: dict[int, int] = {}
    for n, (_, s) in enumerate(items):
        for c in s:
            if c in free:
                continue
            if c in owner:
                parent[find(n)] = find(owner[c])
            else:
                owner[c] = n
    groups: dict[int, tuple[list, set]] = {}
    for n, (form, s) in enumerate(items):
        g = groups.setdefault(find(n), ([], set()))
        g[0].append((form, s))
        g[1].update(c for c in s if c in free)
    return list(groups.values())
