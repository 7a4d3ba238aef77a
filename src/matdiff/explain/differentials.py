"""A step explained through its differential, as a textbook does.

Two kinds of step have a differential worth showing before their local derivative:

- a **product whose factors hold the variable more than once** (``xᵀAx``, ``XᵀX``,
  ``tr(XAXᵀ)``, ``(Ax)ᵀ(Bx)``, ``xᵀx``): the product rule gives one term per factor
  that holds it, the factor replaced by its differential,
  ``d(xᵀAx) = dxᵀAx + xᵀA dx``;
- a **matrix function** (``X⁻¹``, ``det``, ``log det``, ``logsumexp``, ``softmax``,
  ...): its definition's ``differential`` field, ``d log det X = tr(X⁻¹ dX)``.  This
  module reads the field and never names a function.

The terms are then collected as ``(∂y/∂x) dx`` (numerator layout: ``xᵀ(A + Aᵀ) dx``;
``tr(M dX)`` for a scalar of a matrix, the identification rule ``dy = tr(M dX)`` ⇔
``∂y/∂X = M``), from which the local derivative and, for a scalar, the gradient are
read off.  Every member is an expression (the terms and the collected form hold a
variable ``dx`` for the direction), printed by matdiff's printer and checked in
numbers by the tests: along a random ``dx`` each member equals the directional
derivative.

>>> import matdiff as md
>>> x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
>>> d = differential_of("y", x @ A @ x, x)
>>> print(d.line())
dy = dxᵀAx + xᵀA dx = xᵀ(A + Aᵀ) dx
>>> print(md.to_text(d.gradient))
(A + Aᵀ)x
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ..derive.reverse import derive
from ..expr import simplify as S
from ..expr.core import Call, Const, Einsum, Expr, Map, Var, topo_order
from ..render.mform import matrix_form
from . import formulas as F

__all__ = ["Differential", "differential_of"]

#: a power ``v**k`` of the derivation's own variable, ``k`` an integer up to this, is
#: written as the element-wise product of ``k`` factors ``v`` for the product rule
#: (``xᵀx``, which the core stores as ``sum(x²)``); the power of an intermediate
#: (the paper's ``C = sum(v²)/N``) keeps the paper's element-wise rule
MAX_POWER = 4


@dataclass
class Differential:
    """``d(of)`` along ``d(wrt)``: the product rule's terms or a matrix function's
    differential, then ``(∂of/∂wrt) d(wrt)`` collected."""

    of: str
    wrt: str
    #: ``"product"`` (the product rule) or ``"function"`` (a matrix function's)
    rule: str
    dvar: Var = field(repr=False)              #: the direction, ``dx``
    terms: list[Expr] = field(repr=False)      #: their sum is ``d(of)``, linear in dvar
    #: ``(∂of/∂wrt) d(wrt)`` as one expression, where it has a matrix form
    collected: Expr | None = field(default=None, repr=False)
    #: the gradient (the variable's shape), where ``of`` is a scalar
    gradient: Expr | None = field(default=None, repr=False)
    #: the local derivative and its leading axes (for the numerator layout)
    jacobian: Expr | None = field(default=None, repr=False)
    f_ndim: int = 0
    #: how many factors hold the variable (product rule)
    count: int = 0
    #: the matrix function's call, printed (function rule): ``log det(X)``
    call: Expr | None = field(default=None, repr=False)

    # -------------------------------------------------------------- printing
    def lhs(self, fmt: str = "text") -> str:
        """``dy``."""
        return F.name("d" + self.of, fmt)

    def sum_text(self, fmt: str = "text") -> str:
        """The terms, written one after another: ``dxᵀAx + xᵀA dx``."""
        return F.sum_of(self.terms, fmt)

    def collected_text(self, fmt: str = "text") -> str:
        """``(∂of/∂wrt) d(wrt)``: the local derivative written before the direction
        (``xᵀ(A + Aᵀ) dx``) where the variable is a vector or a scalar, else the
        printer's reading of the contraction (``tr(M dX)``); "" where none."""
        if self.collected is None or self.jacobian is None:
            return ""
        if len(self.dvar.shape) <= 1:
            return F.chain([(self.jacobian, self.f_ndim), (self.dvar, len(self.dvar.shape))],
                           fmt)
        return F.definition(self.collected, fmt)

    def members(self, fmt: str = "text") -> list[str]:
        """The members of the line after ``dy``: the terms, then the collected form
        where it reads differently."""
        out = [self.sum_text(fmt)]
        c = self.collected_text(fmt)
        if c and c.replace(" ", "") != out[0].replace(" ", ""):
            out.append(c)
        return out

    def line(self, fmt: str = "text") -> str:
        """``dy = dxᵀAx + xᵀA dx = xᵀ(A + Aᵀ) dx``."""
        return " = ".join([self.lhs(fmt), *self.members(fmt)])

    def rows(self, p: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
        """What an explanation writes, as ``(kind, template, parts)``: the rule in
        words, the line ``dy = …``, and what it gives (``hence ∂y/∂x = …``).  A part
        is prose (a str) or math (a dict of its text and its LaTeX)."""
        def math(text: str, tex: str) -> dict[str, str]:
            return {"text": text, "latex": tex}

        x = math(F.name(self.wrt), F.name(self.wrt, "latex"))
        if self.rule == "product":
            out = [("prose", p["product_rule"], {"x": x, "k": str(self.count)})]
        else:
            assert self.call is not None
            out = [("prose", p["function_rule"],
                    {"call": math(F.definition(self.call), F.definition(self.call, "latex"))})]
        out.append(("line", "{line}", {"line": math(self.line(), self.line("latex"))}))
        if self.collected is not None and self.jacobian is not None:
            d = math(f"{F.partial(self.of, self.wrt)} = "
                     f"{F.jacobian(self.jacobian, self.f_ndim)}",
                     f"{F.partial(self.of, self.wrt, 'latex')} = "
                     f"{F.jacobian(self.jacobian, self.f_ndim, 'latex')}")
            if self.gradient is not None:
                g = math(F.result(self.gradient), F.result(self.gradient, "latex"))
                out.append(("prose", p["read_off_gradient"], {"d": d, "g": g}))
            else:
                out.append(("prose", p["read_off"], {"d": d}))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "of": self.of, "wrt": self.wrt,
                "direction": self.dvar.name,
                "terms": [F.definition(t) for t in self.terms],
                "collected": self.collected_text(),
                "gradient": F.result(self.gradient) if self.gradient is not None else "",
                "text": self.line(), "latex": self.line("latex")}


# ====================================================================== building
def _direction_name(v: Var, e: Expr, taken: Collection[str]) -> str:
    taken = set(e.variables()) | set(taken)
    for prefix in ("d", "δ", "d_"):
        if prefix + v.name not in taken:
            return prefix + v.name
    return "d_" + v.name + "_"  # pragma: no cover - absurd inputs


def _along(e: Expr, v: Var, dv: Var) -> Expr:
    """The differential of ``e`` along ``dv``: ``dv`` itself for the variable, else
    the derivative contracted with the direction, ``Σ_χ (∂e/∂v)[σ, χ] dv[χ]``."""
    if e is v:
        return dv
    J = derive(e, v)
    r, k = len(e.shape), len(v.shape)
    sigma, chi = tuple(range(r)), tuple(range(r, r + k))
    return S.einsum([J, dv], [sigma + chi, chi], sigma)


def _holds(e: Expr, v: Var) -> bool:
    return any(n is v for n in topo_order(e))


def _power_of(c: Expr, v: Var) -> int:
    """``k`` where ``c`` is ``v**k`` with an integer ``2 ≤ k ≤ MAX_POWER``, else 0."""
    if isinstance(c, Map) and c.fn == "pow" and c.children[0] is v \
            and isinstance(c.children[1], Const):
        k = c.children[1].value
        if k == int(k) and 2 <= k <= MAX_POWER:
            return int(k)
    return 0


def _product_terms(e: Einsum, v: Var, dv: Var, powers: bool
                   ) -> tuple[list[Expr], int] | None:
    """The product rule on ``e``: one term per factor holding ``v`` (with ``powers``,
    a power ``v**k`` counted as ``k`` factors ``v``), the factor replaced by its
    differential; ``None`` unless at least two factors hold ``v``."""
    ops: list[Expr] = []
    specs: list[tuple[int, ...]] = []
    for c, s in zip(e.children, e.specs, strict=True):
        k = _power_of(c, v) if powers else 0
        ops += [v] * k if k else [c]
        specs += [s] * k if k else [s]
    holding = [j for j, c in enumerate(ops) if _holds(c, v)]
    if len(holding) < 2:
        return None
    terms = []
    for j in holding:
        parts = list(ops)
        parts[j] = _along(ops[j], v, dv)
        terms.append(S.einsum(parts, specs, e.out))
    return terms, len(holding)


def _collected(J: Expr, e: Expr, dv: Var) -> Expr | None:
    """``(∂e/∂v) dv`` as one product, where it has a matrix form: a vector or scalar
    ``e`` by a vector or scalar, or a scalar by a matrix (``tr(M dX)``)."""
    r, k = len(e.shape), len(dv.shape)
    if r + k > 2 and not (r == 0 and k == 2):
        return None
    sigma, chi = tuple(range(r)), tuple(range(r, r + k))
    out = S.einsum([J, dv], [sigma + chi, chi], sigma)
    try:
        matrix_form(out)
    except Exception:  # noqa: BLE001 - no matrix reading: leave it out
        return None
    return out


def differential_of(of: str, e: Expr, v: Var, taken: Collection[str] = (),
                    powers: bool = True, J: Expr | None = None) -> Differential | None:
    """The differential of the step ``of = e`` along its variable ``v``, where ``e``
    is a product with ``v`` in several factors or a matrix function of ``v``; else
    ``None`` (the local derivative is explained as it is).  The direction is named
    ``dv`` unless that is in ``taken`` or a variable of ``e``; ``powers``: count a
    power ``v**k`` as ``k`` factors (for the derivation's own variable); ``J``: the
    local derivative ``∂e/∂v``, where the caller has it."""
    if not _holds(e, v) or e is v:
        return None
    dv = Var(_direction_name(v, e, taken), v.shape)
    call = None
    if isinstance(e, Einsum):
        found = _product_terms(e, v, dv, powers)
        if found is None:
            return None
        (terms, count), rule = found, "product"
    elif isinstance(e, Call) and e.spec.differential is not None:
        (arg,) = e.children  # dF = the definition's differential at arg along d(arg)
        terms = [e.spec.differential(arg, _along(arg, v, dv))]
        count, rule, call = 1, "function", e
    else:
        return None
    J = derive(e, v) if J is None else J
    return Differential(of, v.name, rule, dv, terms, _collected(J, e, dv),
                        J if not e.shape else None, J, len(e.shape), count, call)
