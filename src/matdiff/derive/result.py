"""What :func:`matdiff.derive` returns: a derivative that knows what it is the
derivative of.

A :class:`Derivative` is an expression (``isinstance(g, md.Expr)``), and behaves as
the shared node it stands for, its :attr:`~Derivative.body`: same kind, children,
shape and digest, and an instance of the body's node class (``isinstance(g, Const)``
for a zero derivative), so everything that reads an expression reads it unchanged.
On top it knows

- :attr:`~Derivative.f`: the function differentiated (for a derivative of a
  derivative, the first function);
- :attr:`~Derivative.wrt`: the variables of the derivation, one per order
  (``(x,)`` for ``derive(f, x)``, ``(x, x)`` for ``hessian(f, x)``); an order by
  several variables at once is a tuple of them (``((x, y),)`` for ``derive(f, [x,
  y])``, the derivative by the concatenation ``[vec(x); vec(y)]``, and ``((x, y),
  (x, y))`` for its Hessian);
- :attr:`~Derivative.order`: how many derivations (``len(wrt)``);
- :attr:`~Derivative.f_ndim`: how many of its leading axes come from the expression
  differentiated last (``f``'s for a first derivative; the gradient's for a Hessian,
  which is the Jacobian of the gradient), so that the printers write it in
  ``numerator`` or ``denominator`` layout without being told
  (:func:`matdiff.render.layout.f_ndim_of`).

What it knows is in the object, not in a table beside the shared nodes, so what
``evaluate`` and ``compile`` accept depends on the expression and the values alone:
evaluating a derivative binds dims from the values of ``f``'s variables and of the
derivation's even where the body lost them (``dx/dx = I`` still needs ``x``'s ``n``).

A derivative result is not itself hash-consed (two calls give two results over one
body: ``derive(f, x).body is derive(f, x).body``); every builder, ``derive``,
``evaluate`` and ``compile`` unwrap it to its body (:func:`matdiff.expr.builders.as_expr`),
so the shared node set stays closed: an expression built from a derivative (``g + 1``,
``g.T``) is a plain expression over the body.

>>> import matdiff as md
>>> x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
>>> g = md.derive(x @ A @ x, x)
>>> g.f is x @ A @ x, g.wrt == (x,), g.order, g.f_ndim
(True, True, 1, 0)
>>> md.to_text(g, layout="numerator")
'xᵀ(A + Aᵀ)'
>>> y = md.vector("y", "m")
>>> J = md.derive(x @ A @ x + md.sum(y), [x, y])
>>> J.wrt == ((x, y),), J.order, [str(d) for d in J.shape]
(True, 1, ['m + n'])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..expr.builders import RESULT_TYPES
from ..expr.core import Expr, Shape, Var

__all__ = ["Derivative", "derivative", "node_of", "binding_variables"]

#: the slots of a derivative result beyond those of its body's class
_OWN = ("body", "f", "wrt", "order", "f_ndim", "_binding")


class Derivative(Expr):
    """A derivative result: its body (the shared node), ``f``, ``wrt``, ``order`` and
    ``f_ndim`` (see :mod:`matdiff.derive.result`).  Concrete results are instances of
    a subclass per node class (``Derivative`` first, then the body's class), made by
    :func:`derivative`; ``isinstance(g, md.Derivative)`` tells one."""

    if not TYPE_CHECKING:
        # empty, so that Derivative can be a base beside any node class; the fields
        # below are the slots (_OWN) of each concrete subclass (_class_for), which a
        # type checker cannot see: to it they are the attributes declared here
        __slots__ = ()

    body: Expr
    f: Expr
    wrt: tuple[Var | tuple[Var, ...], ...]
    order: int  # type: ignore[misc]  # Expr.order is the kind's rank, see sort_key
    f_ndim: int
    _binding: dict[str, Shape] | None

    def sort_key(self) -> tuple[Any, ...]:
        # ``order`` here is the derivative's order, not the node kind's sorting rank
        return self.body.sort_key()

    def context(self) -> dict[str, Shape]:
        """The variables whose values bind this derivative's dims: ``f``'s and those
        of the derivation (a name in several with one shape: the first)."""
        out = dict(self.f.variables())
        for v in _flat(self.wrt):
            out.setdefault(v.name, v.shape)
        return out

    def explain(self, lang: str = "en", **kw: Any) -> Any:
        """The derivation of this first derivative step by step: ``md.explain(f,
        wrt, lang, ...)`` with the ``f`` and ``wrt`` it knows (see
        :func:`matdiff.explain`; ``kw`` are its keywords).

        >>> import matdiff as md
        >>> g = md.derive("sum(w * x)", "w", shapes={"w": ("n",), "x": ("n",)})
        >>> chain = g.explain().to_dict()["chain"]
        >>> print(chain["text"])
        ∂y/∂w = ∂y/∂u ∂u/∂w = 𝟏ᵀ diag(x) = xᵀ
        """
        from ..errors import MatdiffError
        from ..expr.core import service

        if self.order == 1 and isinstance(self.wrt[0], tuple):
            names = ", ".join(v.name for v in self.wrt[0])
            raise MatdiffError(
                f"explain shows derivatives by one variable; this one is by {names} at "
                f"once, and its parts are the derivatives by each: explain them one "
                f"at a time (md.explain(f, {self.wrt[0][0].name!r}), ...)")
        if self.order != 1 or not isinstance(self.wrt[0], Var):
            raise MatdiffError(
                f"explain shows first derivatives by one variable; this derivative is "
                f"of order {self.order}")
        return service("explain")(self.f, self.wrt[0], lang, **kw)

    def __reduce__(self) -> tuple[Any, ...]:
        # the record, by value: loading makes the result again from its body
        return (derivative, (self.body, self.f, self.wrt, self.f_ndim))

    def __copy__(self) -> Derivative:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Derivative:
        return self


def _flat(wrt: Any) -> list[Var]:
    out: list[Var] = []
    for w in wrt:
        out.extend(_flat(w) if isinstance(w, tuple) else [w])
    return out


_CLASSES: dict[type, type[Derivative]] = {}


def _class_for(cls: type) -> type[Derivative]:
    sub = _CLASSES.get(cls)
    if sub is None:
        sub = type(cls.__name__, (Derivative, cls), {
            "__slots__": _OWN, "__module__": __name__,
            "__qualname__": f"Derivative.{cls.__name__}",
            "__doc__": f"A derivative result whose body is a {cls.__name__}."})
        _CLASSES[cls] = sub
        RESULT_TYPES.add(sub)
    return sub


def _node_slots(cls: type) -> list[str]:
    names: list[str] = []
    for k in cls.__mro__:
        for s in k.__dict__.get("__slots__", ()):
            if s not in ("__weakref__", "__dict__") and s not in names:
                names.append(s)
    return names


def node_of(e: Expr) -> Expr:
    """The shared node ``e`` stands for: a derivative result's body, else ``e``."""
    return e.body if isinstance(e, Derivative) else e


def derivative(body: Expr, f: Expr, wrt: tuple[Var | tuple[Var, ...], ...],
               f_ndim: int) -> Derivative:
    """The result for ``body``, the derivative of ``f`` by the variables ``wrt`` (one
    per order), ``f_ndim`` of its leading axes from the expression differentiated
    last."""
    body = node_of(body)
    cls = _class_for(type(body))
    d = object.__new__(cls)
    for name in _node_slots(type(body)):
        setattr(d, name, getattr(body, name))
    if hasattr(body, "__dict__"):  # pragma: no cover - node classes have slots
        d.__dict__.update(body.__dict__)
    d.body = body
    d.f = node_of(f)
    d.wrt = tuple(wrt)
    d.order = len(d.wrt)
    d.f_ndim = int(f_ndim)
    d._binding = None
    return d


def binding_variables(e: Expr) -> tuple[Expr, Mapping[str, Shape]]:
    """The shared node to run for ``e`` and the variables, besides its own, whose
    values bind its dims: for a derivative result, ``f``'s and the derivation's that
    the body lost; for a plain expression, none (it binds from its own variables and
    ``dims=`` alone)."""
    if not isinstance(e, Derivative):
        return e, {}
    if e._binding is None:  # worked out once: evaluate may be called in a loop
        own = e.body.variables()
        e._binding = {n: s for n, s in e.context().items() if n not in own}
    return e.body, e._binding
