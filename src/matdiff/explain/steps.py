"""Which parts of ``f`` become the steps of a derivation, and their local derivatives.

The nodes of ``f`` on the paths down to the variable are the candidates; a node used
once whose parent is a linear combination of it (``v = y − u``) or a sum of its
powers (``C = sum(v²)/N``) is written inside its parent rather than named, and the
core's single product ``wᵀx`` of ``sum(w ⊗ x)`` is split into the element-wise
product and its sum, as the paper writes it.  Each step is then its definition over
the names of the steps before it, with its local derivative by each of them.

A stack of element-wise functions of inner functions of the variable,
``y = [f₁(h₁(x)), …, f_K(h_K(x))]``, is the paper's vector chain rule (section 3.5):
the inner stack is one step ``g = [h₁, …, h_K]``, and ``y = [f₁(g₁), …, f_K(g_K)]``
over its components, with ``∂y/∂g = diag(f₁'(g₁), …, f_K'(g_K))`` (yₖ depends on gₖ
alone) and ``∂y/∂x = ∂y/∂g ∂g/∂x``.

>>> import matdiff as md
>>> w, x = md.vector("w", "n"), md.vector("x", "n")
>>> [u.kind for u in plan_units(md.sum(w * x), w)]
['hadamard', 'reduce']
>>> t = md.scalar("t")
>>> [u.kind for u in plan_units(md.stack([md.log(t**2), md.sin(3 * t)]), t)]
['inner', 'outer']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..derive.reverse import derive
from ..errors import MatdiffError
from ..expr import simplify as S
from ..expr.core import Add, Const, Delta, Dim, Einsum, Expr, Map, Var, topo_order
from ..expr.selection import Concat
from ..expr.simplify.selection import concat, take
from . import formulas as F
from .derivation import LocalDerivative, Step
from .differentials import differential_of

__all__ = ["Unit", "plan_units", "name_units", "define_units", "local_steps",
           "chain_paths", "depends"]

#: more paths than this and the chain rule is written as one contraction
MAX_PATHS = 12


@dataclass
class Unit:
    """A step to be: the node it names, how (``node``: the node itself; ``hadamard``
    and ``reduce``: the two halves of a reduced element-wise product; ``inner`` and
    ``outer``: the two steps of the vector chain rule on a stack, ``g = [h₁, …]`` and
    ``y = [f₁(g₁), …]``; ``self``: f is the variable), its name, the variable
    standing for it in later steps and its definition over earlier names.  ``ops``:
    the operands of a split product, or the position of each part's inner function
    among its arguments (vector chain rule); ``components``: the variables ``g₁, …``
    that an ``outer`` step reads."""

    node: Expr | None
    kind: str
    ops: list[int] = field(default_factory=list)
    name: str = ""
    placeholder: Var | None = None
    expr: Expr | None = None
    components: list[Var] = field(default_factory=list)


def _product(u: Unit) -> Einsum:
    """The product a ``hadamard`` or ``reduce`` unit splits (``sum(w ⊗ x)``, stored as
    the one product ``wᵀx``)."""
    if not isinstance(u.node, Einsum):
        raise TypeError(f"a {u.kind} step names a product, not {type(u.node).__name__}")
    return u.node


def _node(u: Unit) -> Expr:
    """The node a ``node`` unit names."""
    if u.node is None:
        raise TypeError(f"the {u.kind} step {u.name!r} names no node")
    return u.node


def depends(f: Expr, x: Var) -> set[int]:
    """The ids of the nodes of ``f`` that depend on ``x``."""
    dep: set[int] = set()
    for node in topo_order(f):
        if node is x or any(id(c) in dep for c in node.children):
            dep.add(id(node))
    return dep


def _inlinable(n: Expr, parent: Expr, dep: set[int]) -> bool:
    """Whether ``n`` (used once, by ``parent``) is written inside its parent's step
    rather than named: keeps derivations the size of the paper's."""
    if isinstance(n, Einsum) and isinstance(parent, Add):
        # a coefficient, a negation, a product linear in one path operand: the
        # parent's step is a linear combination (v = y − u, z = wᵀx + b)
        return sum(1 for c in n.children if id(c) in dep) == 1
    if isinstance(n, Map) and n.fn == "pow" and id(n.children[1]) not in dep:
        # a power summed up: C = sum(v²)/N
        return isinstance(parent, Einsum) and len(parent.shape) < len(n.shape)
    return False


def _split_hadamard(n: Einsum, dep: set[int]) -> list[int] | None:
    """Operand positions of the element-wise product inside a reduction
    (``sum(w ⊗ x)``, which the core stores as the single product ``wᵀx``)."""
    letters = {c for s in n.specs for c in s}
    full = [i for i, s in enumerate(n.specs) if len(s) == len(letters) and set(s) == letters]
    if len(full) < 2 or not set(n.out) < letters:
        return None
    if len({n.specs[i] for i in full}) != 1:
        return None
    if not any(id(n.children[i]) in dep for i in full):
        return None
    return full


def _stacked_chain(f: Expr, x: Var, dep: set[int]) -> list[int] | None:
    """Where ``f`` is a stack ``[f₁(h₁), …, f_K(h_K)]`` (K ≥ 2) of element-wise
    functions each of one inner function ``hₖ`` of ``x`` (not ``x`` itself; the
    other arguments constant in ``x``): the position of ``hₖ`` among each part's
    arguments; else ``None``.  Then ``yₖ`` depends on ``gₖ = hₖ`` alone, so
    ``∂y/∂g`` is diagonal, and the vector chain rule applies (paper, section 3.5)."""
    if not isinstance(f, Concat) or f.axis != 0 or not all(f.rows) or len(f.children) < 2:
        return None
    where = []
    for part in f.children:
        if not isinstance(part, Map):
            return None
        held = [j for j, c in enumerate(part.children) if id(c) in dep]
        if len(held) != 1 or part.children[held[0]] is x:
            return None
        where.append(held[0])
    return where


def plan_units(f: Expr, x: Var, inline: set[int] | None = None) -> list[Unit]:
    """The steps of ``∂f/∂x``, inside out, before naming (``inline`` collects the
    ids of the nodes written inside their parents)."""
    inline = set() if inline is None else inline
    dep = depends(f, x)
    if f is x:
        return [Unit(f, "self")]
    if id(f) not in dep:
        return []
    where = _stacked_chain(f, x, dep)
    if where is not None:  # the vector chain rule: g = [h₁, …], y = [f₁(g₁), …]
        return [Unit(f, "inner", where), Unit(f, "outer", where)]
    order = [n for n in topo_order(f) if id(n) in dep]
    uses: dict[int, int] = {}
    parent: dict[int, Expr] = {}
    for n in order:
        for c in n.children:
            if id(c) in dep:
                uses[id(c)] = uses.get(id(c), 0) + 1
                parent[id(c)] = n
    units: list[Unit] = []
    for n in order:
        if n is x:
            continue
        if n is not f and uses.get(id(n), 0) == 1 and _inlinable(n, parent[id(n)], dep):
            inline.add(id(n))
            continue
        full = _split_hadamard(n, dep) if isinstance(n, Einsum) else None
        if full is not None:
            units.append(Unit(n, "hadamard", full))
            units.append(Unit(n, "reduce", full))
        else:
            units.append(Unit(n, "node"))
    return units


def _default_names(k: int, taken: set[str]) -> list[str]:
    if k <= 2 and not ({"u", "v"} & taken):
        return ["u", "v"][:k]
    for letter in ("u", "t", "g", "h", "q"):
        names = [letter + "".join(chr(0x2080 + int(d)) for d in str(i + 1)) for i in range(k)]
        if not set(names) & taken:
            return names
    return [f"u_tmp{i + 1}" for i in range(k)]  # pragma: no cover - absurd inputs


def name_units(units: list[Unit], names: Sequence[str] | None, name: str,
               taken: set[str]) -> None:
    """Give each step its name (the last is ``name``, f's) and a variable standing
    for it in the later steps; ``names`` are the user's, checked."""
    k = len(units) - 1
    if names is not None:
        names = list(names)
        if len(names) != k:
            raise MatdiffError(f"names: the derivation has {k} intermediate variable(s), "
                               f"got {len(names)} name(s)")
        bad = [nm for nm in names if not isinstance(nm, str) or not nm or nm in taken
               or nm == name]
        if bad or len(set(names)) != len(names):
            raise MatdiffError(f"names: {bad or names!r} clash with the variables of f, "
                               "the function's name or each other")
    elif units and units[0].kind == "inner" and not {"g", "g₁"} & (taken | {name}):
        names = ["g"]  # the paper's name of the inner stack (section 3.5)
    else:
        names = _default_names(k, taken | {name})
    for u, nm in zip(units, [*names, name], strict=False):
        u.name = nm
        if u.node is not None and u is not units[-1]:
            shape = u.node.shape
            if u.kind == "hadamard":
                prod = _product(u)
                shape = tuple(prod.letter_dims()[c] for c in prod.specs[u.ops[0]])
            u.placeholder = Var(nm, shape)
        if u.kind == "outer":
            used = taken | {v.name for v in units} | {name}
            u.components = [Var(_component_name(units[0].name, k, used),
                                _node(units[0]).shape[1:]) for k in range(len(u.ops))]


def _component_name(g: str, k: int, taken: set[str]) -> str:
    """The name of the ``k``-th component of the stack named ``g``, counted from 1 as
    the paper does: ``g₁``; ``g_1`` where ``g`` already ends in a subscript or that
    name is taken."""
    sub = "".join(chr(0x2080 + int(d)) for d in str(k + 1))
    if g[-1:] not in "₀₁₂₃₄₅₆₇₈₉" and g + sub not in taken:
        return g + sub
    return f"{g}_{k + 1}"


def define_units(units: list[Unit], x: Var, inline: set[int]) -> None:
    """Each step's definition: its node over the variables of the earlier steps."""
    unit_of = {id(u.node): u for u in units if u.kind in ("node", "reduce")}

    def sub(c: Expr) -> Expr:
        if c is x:
            return x
        u = unit_of.get(id(c))
        if u is not None and u.placeholder is not None:
            return u.placeholder
        if id(c) in inline:
            return c.rebuild([sub(g) for g in c.children])
        return c

    for i, u in enumerate(units):
        if u.kind == "self":
            u.expr = x
        elif u.kind == "inner":  # g = [h₁, …, h_K]
            parts = _node(u).children
            u.expr = concat([sub(p.children[j]) for p, j in zip(parts, u.ops)], 0,
                            [True] * len(u.ops))
        elif u.kind == "outer":  # y = [f₁(g₁), …, f_K(g_K)]
            parts = _node(u).children
            u.expr = concat([p.rebuild([gk if k == j else sub(c)
                                        for k, c in enumerate(p.children)])
                             for p, j, gk in zip(parts, u.ops, u.components)], 0,
                            [True] * len(u.ops))
        elif u.kind == "node":
            n = _node(u)
            u.expr = n.rebuild([sub(c) for c in n.children])
        elif u.kind == "hadamard":
            prod = _product(u)
            spec = prod.specs[u.ops[0]]
            u.expr = S.einsum([sub(prod.children[j]) for j in u.ops], [spec] * len(u.ops),
                              spec)
        else:  # reduce: the sum over the product named by the unit before
            prod = _product(u)
            h = units[i - 1].placeholder
            if h is None:
                raise TypeError(f"the reduce step {u.name!r} follows an unnamed step")
            rest = [j for j in range(len(prod.children)) if j not in u.ops]
            u.expr = S.einsum([h] + [sub(prod.children[j]) for j in rest],
                              [prod.specs[u.ops[0]]] + [prod.specs[j] for j in rest],
                              prod.out)


def jac_shape(fs: Sequence[Dim], xs: Sequence[Dim]) -> list[Dim]:
    """The dims of a Jacobian of an ``fs``-shaped by an ``xs``-shaped thing, as the
    numerator layout writes it: ``1 × n`` for a gradient, ``n × 1`` for a column."""
    if not fs and len(xs) == 2:  # numerator layout transposes a scalar-by-matrix one
        return [xs[1], xs[0]]
    if len(fs) + len(xs) > 2:
        return [*fs, *xs]
    return [fs[0] if fs else 1, xs[0] if xs else 1]


def _is_tensor(fs: Sequence[Dim], xs: Sequence[Dim]) -> bool:
    """A local derivative with no matrix form (of order 3 or more)."""
    return len(fs) + len(xs) > 2 and not (not fs and len(xs) == 2)


def _used(e: Expr, x: Var, placeholders: dict[int, Unit]) -> list[Var]:
    used: list[Var] = []
    for node in topo_order(e):
        if isinstance(node, Var) and (node is x or id(node) in placeholders) \
                and node not in used:
            used.append(node)
    return used


def local_steps(units: list[Unit], x: Var, p: dict[str, str], lang: str,
                taken: frozenset[str] = frozenset()
                ) -> tuple[list[Step], dict[str, list[tuple[str, Unit | None]]], bool]:
    """The steps with their local derivatives; the edges of the chain (each step's
    earlier names, and the step each stands for); whether the chain has tensors.
    ``taken``: the names a differential's direction must not take (f's variables)."""
    taken = frozenset(taken) | {u.name for u in units}
    by_placeholder = {id(u.placeholder): u for u in units if u.placeholder is not None}
    steps: list[Step] = []
    edges: dict[str, list[tuple[str, Unit | None]]] = {}
    matrix_chain = False
    for u in units:
        e = u.expr
        assert e is not None
        used = [x] if u.kind == "self" else _used(e, x, by_placeholder)
        step = Step(u.name, F.definition(e), shape_text(e.shape, p), e)
        edges[u.name] = []
        if u.kind == "outer":  # a function of the stack g through its components
            g = units[0].placeholder
            assert g is not None
            used = [g]
            step.components = {c.name: take(g, 0, (k,)) for k, c in enumerate(u.components)}
            step.notes.append(p["components"].format(
                parts=", ".join(c.name for c in u.components), g=g.name,
                stack=F.definition(concat(list(u.components), 0, [True] * len(u.components)))))
        for v in used:
            if u.kind == "outer":
                loc = stacked_derivative(u, v, p, lang)
            else:
                loc = local_derivative(u.name, e, v, p, lang, taken, powers=v is x)
            if _is_tensor(e.shape, v.shape):
                matrix_chain = matrix_chain or len(units) > 1
            step.derivatives.append(loc)
            edges[u.name].append((v.name, by_placeholder.get(id(v))))
        steps.append(step)
    return steps, edges, matrix_chain


def local_derivative(of: str, e: Expr, v: Var, p: dict[str, str], lang: str,
                     taken: frozenset[str] = frozenset(), powers: bool = True
                     ) -> LocalDerivative:
    """``∂of/∂v`` of the step ``of = e``, with its notes (no matrix form; the cases
    of a piecewise function) and its differential where it has one."""
    J = derive(e, v)
    shape = jac_shape(e.shape, v.shape)
    loc = LocalDerivative(of, v.name, F.jacobian(J, len(e.shape)), F.dims(shape), J)
    loc.f_ndim = len(e.shape)
    loc.dims = shape
    if _is_tensor(e.shape, v.shape):
        loc.add_note(p["index"], {"shape": loc.shape, "order": len(e.shape) + len(v.shape)},
                     with_value=False)
    for template, args in piecewise_notes(e, v, lang):
        loc.add_note(template, args, with_value=True)
    # a product holding v in several factors, a matrix function: its differential
    # (powers of the derivation's own variable count as repeated factors: xᵀx)
    loc.differential = differential_of(of, e, v, taken, powers, J)
    return loc


def stacked_derivative(u: Unit, g: Var, p: dict[str, str], lang: str) -> LocalDerivative:
    """``∂y/∂g`` of the step ``y = [f₁(g₁), …, f_K(g_K)]`` (the vector chain rule):
    ``yₖ`` depends on the component ``gₖ`` alone, element-wise, so the Jacobian is
    ``∂yₖ[σ]/∂gₗ[τ] = δₖₗ δ_στ fₖ'(gₖ)[σ]``: ``diag(f₁'(g₁), …, f_K'(g_K))``, written
    over the components (each ``fₖ'`` is the diagonal of ``∂yₖ/∂gₖ``)."""
    e = u.expr
    assert e is not None
    rank = len(g.shape) - 1          # the components' rank
    sig = tuple(range(rank))
    slopes = []
    for part, gk in zip(e.children, u.components, strict=True):
        Jk = derive(part, gk)        # δ_στ fₖ'(gₖ)[σ]: its diagonal is fₖ'(gₖ)
        slopes.append(S.einsum([Jk], [sig + sig], sig))
    D = concat(slopes, 0, [True] * len(slopes))
    # J[k, σ, l, τ] = D[k, σ] δₖₗ Π δ_στ
    dims = (g.shape[0], *g.shape[1:])
    out = tuple(range(2 * len(dims)))
    half = len(dims)
    J = S.einsum([D] + [Delta(d) for d in dims], [out[:half]] + [(a, a + half)
                                                                  for a in range(half)], out)
    shape = jac_shape(e.shape, g.shape)
    loc = LocalDerivative(u.name, g.name, F.jacobian(J, len(e.shape)), F.dims(shape), J)
    loc.f_ndim, loc.dims = len(e.shape), shape
    if _is_tensor(e.shape, g.shape):
        loc.add_note(p["index"], {"shape": loc.shape, "order": len(e.shape) + len(g.shape)},
                     with_value=False)
    loc.add_note(p["stacked_diagonal"], {"y": u.name, "g": g.name}, with_value=False)
    for gk in u.components:
        for template, args in piecewise_notes(e, gk, lang):
            loc.add_note(template, args, with_value=True)
    return loc


def piecewise_notes(e: Expr, v: Var, lang: str) -> list[tuple[str, dict[str, str]]]:
    """The cases of a piecewise step (``max(0, z)``, ``abs``, ...), as the paper shows
    them: the wording is the function's definition's (``notes``), in ``lang``, with
    the arguments it names (``z``, ``a``, ``b``)."""
    notes = []
    dv = depends(e, v)
    for node in topo_order(e):
        if not isinstance(node, Map) or lang not in node.spec.notes:
            continue
        if not any(id(c) in dv for c in node.children):
            continue
        # the notes speak of one element: a constant argument is its number (elu's
        # α = 1 is "1·exp(u)", not the ones vector's "𝟏·exp(u)")
        args = [F.definition(Const(c.value) if isinstance(c, Const) else c)
                for c in node.children]
        a, b = (args + [""])[:2]
        notes.append((node.spec.notes[lang], {"z": args[0], "a": a, "b": b}))
    return notes


def chain_paths(units: list[Unit], edges: dict[str, list[tuple[str, Unit | None]]],
                x: Var) -> tuple[list[list[tuple[str, str]]], bool]:
    """The chain rule's paths from f down to ``x``, outside in, as (of, wrt) pairs;
    and whether there were too many to list (then one contraction, f by x)."""
    paths: list[list[tuple[str, str]]] = []

    def walk(u: Unit, prefix: list[tuple[str, str]]) -> None:
        if len(paths) > MAX_PATHS:
            return
        for vname, src in edges[u.name]:
            edge = prefix + [(u.name, vname)]
            if src is None:
                paths.append(edge)
            else:
                walk(src, edge)

    walk(units[-1], [])
    if len(paths) > MAX_PATHS:  # too many to list: the recursive form instead
        return [[(units[-1].name, x.name)]], True
    return paths, False


def shape_text(shape: Sequence[Dim], p: dict[str, str]) -> str:
    """A step's shape: ``scalar`` (in the language), ``n × 1``, ``m × n``."""
    if len(shape) == 0:
        return p["scalar"]
    if len(shape) == 1:
        return f"{shape[0]} × 1"
    return " × ".join(str(d) for d in shape)
