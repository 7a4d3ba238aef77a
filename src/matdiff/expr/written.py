"""How a node was written: the one place that keeps what a person wrote beside the
hash-consed nodes.

Nodes are hash-consed (:class:`~matdiff.expr.core.Expr`): ``a + b`` and ``b + a`` are
one node, ``dot(w, x)`` and ``w @ x`` are one node, ``mean(v)`` is the node of
``sum(v)/n`` and ``max(0, z)`` the node of ``relu(z)``.  What the person wrote is
printing information only, and each node keeps it in its slot ``_written``, a
:class:`Written` (``None``: nothing recorded):

- ``order``: the children in the order they were written, as positions into the
  node's canonical ``children`` (a sum's terms, ``sin(x) + sin(3x) + sin(2x)``; a
  product's operands, ``y ⊙ (Xw)`` and the cyclic start of a trace, ``tr(X⁻¹A)``);
- ``spelling`` and ``args``: the builder the person used where the node is shared
  with another spelling, and its arguments as given (``("dot", (w, x))``,
  ``("mean", (v,))``, ``("mean", (X, 1))``, ``("maximum", (0, z))``, and
  ``("mul", (2, dot(w, x)))`` for a product that absorbed a spelled operand, item 5).

The rules:

1. It is never part of a node's identity: the digest, ``is`` and hashing ignore it
   (``a + b is b + a`` stays True).
2. The latest construction wins: the node is shared, so after ``dot(w, x)``, writing
   ``w @ x`` gives the same node, which prints ``wᵀx`` from then on (a plain
   construction records its order and clears the spelling; the spelling's builder
   then sets it again).  The written form cannot belong to the returned expression
   alone without giving up hash-consing (two spellings would be two objects), so
   this limitation is kept.
3. Building a derivative does not write products and spellings (:func:`unrecorded`,
   used by reverse mode and by :func:`matdiff.explain`): reverse mode rebuilds
   products of the function in orders of its own, which would otherwise overwrite
   the function's written form.  A sum records its order always (reverse mode's and
   a derivation's steps too, as before this module: the steps of ``explain`` keep
   their terms where they stood, ``y − u`` for ``y − relu(z)``), so a sum that
   reverse mode builds again is the one case where the latest construction can be
   a derivative's.
4. It travels: pickling carries it (:meth:`Expr.__reduce__
   <matdiff.expr.core.Expr.__reduce__>`), and :meth:`~matdiff.expr.core.Expr.rebuild`
   builds the new node from its children in written order.
5. The printers (:mod:`matdiff.render.mform`) use it for a function (and for the
   nodes of a derivative's function inside the derivative); derivatives otherwise
   print in their natural order.  A spelling is used only where it still holds
   (:func:`spelling_holds`: building the spelling again gives this very node).  A
   spelling belongs to the node its builder returned: ``2 * dot(u, v)`` is another
   product (the 2 joins the dot's operands, 2uᵀv).  Where a builder's normal form
   absorbs an operand whose spelling holds (the operand is neither the result nor
   one of its children), the builder records a spelling of the result itself
   (:func:`note_absorbed`): :func:`~matdiff.expr.builders.mul` records
   ``("mul", (2, dot(u, v)))``, :func:`~matdiff.expr.builders.neg`
   ``("neg", (dot(u, v),))`` (``y - dot(u, v)``) and
   :func:`~matdiff.expr.builders.sum` ``("sum", (mean(X, 1) * z,))``, and the
   printers' spelled forms print them over the operands' forms: the scaling
   ``2(u · v)`` (the parentheses say it is the dot scaled: ``2u · v`` would read as
   ``(2u) · v``), ``3mean(v)``, ``(u · v)/2``, ``mean(v)/(u · v)``, ``y − u · v``,
   ``sum(mean(X, axis=1) ⊙ z)``; each reads back as it was written (the unicode
   reader builds it with the same builders).  :func:`spelling_holds` checks them as
   it checks the others (``mul`` builds the same node again).  A product that keeps
   the spelled node as a child needs none: ``sin(dot(u, v))`` prints
   ``sin(u · v)``, ``2 * maximum(0, u)`` ``2max(0, u)``.  A spelling whose
   arguments' spellings come back to it (``N = (2/3) * M``, then ``M = 1.5 * N``)
   prints the node's own form inside it.  A sum that absorbs (``mean(u) + mean(v)``
   is ``(sum(u) + sum(v))/n``, the common factor out) records nothing.

>>> import matdiff as md
>>> w, x = md.vector("w", "n"), md.vector("x", "n")
>>> f = md.dot(w, x)
>>> spelling(f)[0], f is w @ x
('dot', True)
>>> spelling(w @ x) is None     # written last as w @ x: the spelling is gone
True
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .core import Expr

__all__ = ["Written", "note_absorbed", "note_order", "note_perm", "note_plain",
           "note_spelling", "order", "recorded_order", "written_children", "spelling",
           "spelling_holds", "unrecorded", "recording"]

_OFF: contextvars.ContextVar[int] = contextvars.ContextVar("matdiff_written_off", default=0)


@dataclass(frozen=True, slots=True)
class Written:
    """How one node was written (see the module docstring)."""

    order: tuple[int, ...] | None = None
    spelling: str | None = None
    args: tuple[Any, ...] = field(default=())


def recording() -> bool:
    """Whether constructions record how they were written now (not inside
    :func:`unrecorded`)."""
    return _OFF.get() == 0


@contextlib.contextmanager
def unrecorded() -> Iterator[None]:
    """Build without recording how nodes were written (reverse mode, the printers'
    checks): the nodes keep the written form they have."""
    token = _OFF.set(_OFF.get() + 1)
    try:
        yield
    finally:
        _OFF.reset(token)


def _get(node: Expr) -> Written | None:
    return getattr(node, "_written", None)


def note_order(node: Expr, written: Sequence[Expr], force: bool = False) -> None:
    """Record that ``node``'s children were written as ``written`` (the same nodes
    in another order); clears a spelling (a plain construction).  Nothing happens
    when ``written`` is not a permutation of the children, or while unrecorded
    (``force``: record anyway, as loading a pickle does)."""
    if not (force or recording()):
        return
    kids = node.children
    if len(written) != len(kids):
        return
    free: dict[int, list[int]] = {}
    for k, c in enumerate(kids):
        free.setdefault(id(c), []).append(k)
    perm: list[int] = []
    for t in written:
        slots = free.get(id(t))
        if not slots:
            return
        perm.append(slots.pop(0))
    node._written = Written(tuple(perm))


def note_perm(node: Expr, perm: tuple[int, ...]) -> None:
    """Record the written order as positions into the children (``perm[k]``: the
    child written ``k``-th), as the product's normal form computes it; clears a
    spelling."""
    if recording() and sorted(perm) == list(range(len(node.children))):
        node._written = Written(tuple(perm))


def note_plain(node: Expr) -> Expr:
    """Record that ``node`` was written by its own name (``relu(z)`` after
    ``max(0, z)``): a spelling is cleared, the order kept; returns ``node``."""
    old = _get(node)
    if recording() and old is not None and old.spelling is not None:
        node._written = Written(old.order)
    return node


def note_spelling(node: Expr, name: str, args: Sequence[Any]) -> Expr:
    """Record that ``node`` was built by the builder ``name`` of
    :mod:`matdiff.expr.builders` from ``args``, keeping the recorded order; returns
    ``node``."""
    if not all(_below(a, node) for a in args
               if hasattr(a, "children") and getattr(a, "kind", "") != "const"):
        # the builder gave back one of its arguments (the mean of a scalar is the
        # scalar: a spelling f(node) of node itself would print without end) or a node
        # its arguments are not part of (mean(I) is the number 1/n, which other
        # expressions share): the spelling would not say what the node is made of
        return note_plain(node)
    if recording():
        old = _get(node)
        node._written = Written(old.order if old else None, name,
                                tuple(args))
    return node


def note_absorbed(node: Expr, name: str, args: Sequence[Any]) -> Expr:
    """Record that ``node`` was built by the builder ``name`` from ``args`` where an
    argument's spelling holds and ``node``'s normal form absorbs that argument (it is
    neither ``node`` nor one of its children: ``2 * dot(u, v)`` is the product of 2, u
    and v), so that the argument's spelling prints inside ``node``'s, ``2(u · v)``;
    returns ``node``.  Nothing is recorded otherwise (the product of a spelled node
    keeps it as a child and prints it so: ``2max(0, u)``), or while unrecorded."""
    if not recording():
        return node
    for a in args:
        if a is node or not hasattr(a, "children") or spelling(a) is None \
                or any(a is c for c in node.children):
            continue
        if spelling_holds(a) is not None:
            return note_spelling(node, name, args)
    return node


def _below(a: Expr, node: Expr) -> bool:
    """Whether ``a`` is a child or a grandchild of ``node``, or a product flattened
    into it, its coefficient aside (a spelling's arguments are: ``dot(w, x)`` is the
    product of w and x, ``dot(Au, v)`` the product of A, u and v, ``mean(v)``
    sum(v)·(1/n), ``max(0, z)`` relu(z), ``2 * dot(u, v)`` the product 2uᵀv and
    ``-(2uᵀv)`` the product −2uᵀv)."""
    kids = node.children
    if a is node:
        return False
    if any(a is c or any(a is g for g in c.children) for c in kids):
        return True
    parts = [g for g in a.children if getattr(g, "kind", "") != "const"]
    return bool(parts) and all(any(g is c for c in kids) for g in parts)


def order(node: Expr) -> tuple[int, ...]:
    """The written positions of ``node``'s children (the canonical order where none
    was recorded)."""
    w = _get(node)
    if w is None or w.order is None or len(w.order) != len(node.children):
        return tuple(range(len(node.children)))
    return w.order


def recorded_order(node: Expr) -> tuple[int, ...] | None:
    """The written positions of ``node``'s children where a construction recorded
    them (None: built without recording, as reverse mode builds)."""
    w = _get(node)
    if w is None or w.order is None or len(w.order) != len(node.children):
        return None
    return w.order


def written_children(node: Expr) -> tuple[Expr, ...]:
    """``node``'s children in the order they were written."""
    return tuple(node.children[k] for k in order(node))


def spelling(node: Expr) -> tuple[str, tuple[Any, ...]] | None:
    """The builder's name and arguments ``node`` was last written with, where that
    was a spelling of its own (``dot``, ``mean``, ``maximum``); else None."""
    w = _get(node)
    if w is None or w.spelling is None:
        return None
    return w.spelling, w.args


def spelling_holds(node: Expr) -> tuple[str, tuple[Any, ...]] | None:
    """:func:`spelling`, where building it again gives ``node`` itself (so the
    spelling still says what the node is); else None."""
    sp = spelling(node)
    if sp is None:
        return None
    from . import builders

    with unrecorded():
        try:
            again = getattr(builders, sp[0])(*sp[1])
        except Exception:  # pragma: no cover - a spelling that no longer builds
            return None
    return sp if again is node else None
