"""``md.explain``: a derivation of ``∂f/∂x`` the paper's way (MATH.md, "Explaining, the
paper's way").

It names the intermediate variables of ``f`` on the paths down to the variable, gives
each its definition and shape, its local derivative (Jacobian) by each earlier name in
numerator layout, multiplies them by the chain rule (summing over paths where a name
feeds several later ones) and ends with the simplified result, in numerator layout
and in the default (mixed) layout that ``evaluate`` returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..derive.reverse import derive, function_of, resolve_wrt
from ..errors import MatdiffError
from ..expr.core import Dim, Expr, Var
from ..expr.written import unrecorded
from . import formulas as F
from .derivation import Derivation
from .lang import phrases
from .steps import chain_paths, define_units, local_steps, name_units, plan_units

__all__ = ["explain"]


def _function_name(name: str | None, taken: set[str]) -> str:
    if name is None:
        return next(c for c in ("y", "f", "F", "y_out") if c not in taken)
    if not isinstance(name, str) or not name or name in taken:
        raise MatdiffError(f"cannot name the function {name!r}: it is a variable of f "
                           "or empty")
    return name


def _structure_notes(x: Var, p: Mapping[str, str]) -> list[str]:
    """Why the derivative by a structured variable is ``sym(G)`` (or ``diag(G)``),
    and why ``G + Gᵀ − G ⊙ I`` is not a gradient (MATH.md, "Symmetric (and SPD,
    diagonal) variables")."""
    if x.structure == "diagonal":
        return [p["diag_gradient"].format(x=x.name)]
    if x.structure in ("symmetric", "spd"):
        notes = [p["sym_gradient"].format(x=x.name, structure=p[x.structure])]
        return notes + ([p["spd_domain"]] if x.structure == "spd" else [])
    return []


def explain(f: Expr | str, wrt: Expr | str, lang: str = "en",
            shapes: Mapping[str, Sequence[Dim]] | None = None, *, name: str | None = None,
            names: Sequence[str] | None = None) -> Derivation:
    """The derivation of ``∂f/∂wrt`` the paper's way: intermediate variables, local
    Jacobians, the chain rule, the result.

    ``f`` is an expression or its text (parsed with ``shapes``).  ``name`` names
    ``f`` in the derivation (default ``y``, else ``f`` when ``y`` is a variable);
    ``names`` gives the intermediate variables' names, inside out (default ``u, v``
    for short chains, ``u₁, u₂, …`` otherwise).  ``lang`` is ``"en"`` or ``"zh"``.
    The steps are printed in the paper's notation; the result line is the derivative
    as ``md.to_text`` and ``md.latex`` print it.

    >>> import matdiff as md
    >>> d = md.explain("max(0, w @ x + b)", "w", shapes={"w": ("n",), "x": ("n",), "b": ()},
    ...                names=["z"])
    >>> [(s.name, s.definition) for s in d.steps]
    [('z', 'wᵀx + b'), ('y', 'max(0, z)')]
    >>> print(d.steps[1].derivatives[0].notes[0])
    ∂y/∂z = step(z): 1 where z > 0, 0 where z ≤ 0
    >>> d.numerator, d.mixed == md.to_text(md.derive(d.f, "w"))
    ('step(wᵀx + b)xᵀ', True)
    >>> print(md.explain("sum(w * x)", "w", lang="zh",
    ...                  shapes={"w": ("n",), "x": ("n",)}).to_dict()["chain"]["text"])
    ∂y/∂w = ∂y/∂u ∂u/∂w = 𝟏ᵀ diag(x) = xᵀ
    """
    p = phrases(lang)
    f, known = function_of(f, shapes)
    # the derivation's own expressions do not write: the nodes of f keep how the
    # person wrote them, the others print as matdiff builds them (matdiff.expr.written)
    with unrecorded():
        x = resolve_wrt(f, wrt, shapes, known)
        taken = set(f.variables()) | {x.name}
        name = _function_name(name, taken)
        inline: set[int] = set()
        units = plan_units(f, x, inline)
        name_units(units, names, name, taken)
        define_units(units, x, inline)
        steps, edges, matrix_chain = local_steps(units, x, p, lang, frozenset(taken))
        paths: list[list[tuple[str, str]]] = []
        notes: list[str] = []
        if not units:
            notes.append(p["no_dependence"].format(f=name, x=x.name))
        else:
            paths, collapsed = chain_paths(units, edges, x)
            matrix_chain = matrix_chain or collapsed
        if units and units[-1].kind == "self":
            notes.append(p["identity"])
        if units and units[0].kind == "inner":
            notes.append(p["vector_chain"].format(f=name, expr=F.definition(f), x=x.name,
                                                  g=units[0].name, inner=steps[0].definition))
        notes += _structure_notes(x, p)
        locals_ = {(loc.of, loc.wrt): loc for s in steps for loc in s.derivatives}
        products = [F.chain([(locals_[e].expr, locals_[e].f_ndim) for e in path])
                    for path in paths if all(e in locals_ for e in path)]
        result = derive(f, x)
        return Derivation(f=f, wrt=x, lang=lang, name=name, steps=steps, paths=paths,
                          products=products, result=result,
                          numerator=F.jacobian(result, len(f.shape)), mixed=F.result(result),
                          notes=notes, matrix_chain=matrix_chain)
