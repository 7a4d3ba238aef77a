"""Check a derivative, matdiff's or a person's own, against central finite differences,
at points chosen to exercise it.

:func:`check` is the check the test suite runs on every rule, shipped so that a user
can verify any derivative matdiff gives them, or one they derived by hand::

    >>> import matdiff as md
    >>> r = md.check("sum(log(x**2 + 1))", "x", shapes={"x": ("n",)})
    >>> r.ok
    True
    >>> md.check("sum(x**2)", "x", shapes={"x": ("n",)}, derivative="2*x").ok
    True
    >>> md.check("sum(x**2)", "x", shapes={"x": ("n",)}, derivative="x").ok
    False

What makes a check mean something (a check that compares zeros with zeros passes any
derivative):

* **Several points, every piece.**  A piecewise function (ReLU, step, abs, sign, max,
  min: the definitions with a piecewise wording) has pieces, the two sides of its
  kink.  Points are drawn until each piecewise node has had an argument on each side
  of it at some point, or the draws run out; the result says how many pieces were
  exercised (``r.pieces``).  A ReLU that is off at every point would make every
  derivative through it zero, so a point is kept only while it exercises something
  new or more points are wanted.
* **Finite values only.**  A point where ``f`` or the derivative is not finite (the
  log of a negative number, a singular matrix) is not a check: it is dropped, other
  points (and other sizes for the dims) are tried, and when no finite point is found
  the result is *could not check* (``r.status == "unchecked"``, ``r.ok`` false), with
  the reason.  NaN never counts as agreement.
* **Well-conditioned matrices.**  Square matrices are drawn near the identity, so that
  inverses, determinants and logarithms of determinants are defined.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .compile.api import as_real_array, check_values, human_bytes, memory_limit
from .compile.evaluate import bind_sizes, evaluate
from .derive.reverse import derive, function_of, is_several, resolve_several, resolve_wrt
from .errors import EvaluationError, LimitError
from .expr.core import STRUCTURES, Expr, Map, Shape, Size, Var, shape_str, topo_order, var_nodes
from .expr.dims import Dim, dim_add, dim_mul, dim_names, dim_size
from .expr.selection import fit_sizes

__all__ = ["check", "CheckResult", "random_values", "structured"]

#: candidate points drawn at most (and size assignments tried at most) per check
MAX_DRAWS = 40
_SIZE_CHOICES = ((3, 4), (4, 3), (3, 3), (2, 5), (5, 2))


@dataclass
class CheckResult:
    """The outcome of :func:`check`.

    ``ok``: the derivative agrees with central differences at every point checked
    (``False`` also when nothing could be checked); ``status``: ``"ok"``,
    ``"mismatch"`` or ``"unchecked"``; ``points``: the values of every point checked;
    ``max_abs_error`` / ``max_rel_error``: the worst error over points and
    directions; ``pieces``: (exercised, total) sides of the piecewise functions;
    ``reason``: why nothing could be checked; for a mismatch, ``counterexample`` (the
    point), ``expected`` (central differences along ``direction``) and ``got`` (the
    derivative along it); ``hint``: what a wrong claim seems to have done, in English;
    ``hint_code`` and ``hint_params``: the same as a code and its parameters (the
    entries of :data:`matdiff.explain.lang.HINTS`), which :meth:`hint_in` writes in
    another language.
    """

    ok: bool
    max_abs_error: float
    max_rel_error: float
    directions: int
    eps: float
    values: dict[str, np.ndarray] = field(repr=False)
    #: (absolute error, size of the finite difference) per point and direction
    details: list[tuple[float, float]] = field(repr=False, default_factory=list)
    status: str = "ok"
    points: list[dict[str, np.ndarray]] = field(repr=False, default_factory=list)
    pieces: tuple[int, int] = (0, 0)
    reason: str = ""
    counterexample: dict[str, np.ndarray] | None = field(repr=False, default=None)
    direction: np.ndarray | None = field(repr=False, default=None)
    expected: np.ndarray | None = field(repr=False, default=None)
    got: np.ndarray | None = field(repr=False, default=None)
    hint: str = ""
    claim: bool = False
    hint_code: str = ""
    hint_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.hint_code and not self.hint:
            self.hint = self.hint_in("en")

    def hint_in(self, lang: str = "en") -> str:
        """The hint in ``lang`` (``"en"``, ``"zh"``), written from its code; ``""``
        without a hint.

        >>> import matdiff as md
        >>> r = md.check("sum(x**2)", "x", shapes={"x": ("n",)}, derivative="4*x")
        >>> r.hint_code, r.hint_params, r.hint_in("zh")
        ('constant_factor', {'c': 2.0}, '所声称的导数是导数的 2 倍：差一个常数因子')
        """
        from .explain.lang import hint_text

        if not self.hint_code:
            return self.hint
        return hint_text(self.hint_code, self.hint_params, lang)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        what = "the claimed derivative" if self.claim else "the derivative"
        where = (f"at {len(self.points)} point(s), {self.directions} random "
                 f"direction(s) each")
        pieces = ""
        if self.pieces[1]:
            pieces = (f"; piecewise functions: {self.pieces[0]} of {self.pieces[1]} "
                      "pieces exercised")
        if self.status == "unchecked":
            return f"COULD NOT CHECK {what}: {self.reason}"
        if not self.points:  # refused before any point: the claim's shape
            return f"MISMATCH: {self.hint}"
        errors = (f"max abs error {self.max_abs_error:.3g}, max rel error "
                  f"{self.max_rel_error:.3g} (eps {self.eps:g})")
        if self.ok:
            return f"OK: {what} agrees with central differences {where}: {errors}{pieces}"
        if self.counterexample is not None and self.direction is None:
            # right along the variable's directions, but not among its matrices
            lines = [f"MISMATCH: {what} does not have the variable's structure "
                     f"(checked {where}): {errors}"]
        else:
            lines = [f"MISMATCH: {what} differs from central differences {where}: "
                     f"{errors}{pieces}"]
        if self.counterexample is not None:
            lines.append("  at " + ", ".join(f"{k} = {_fmt(v)}"
                                             for k, v in self.counterexample.items()))
        if self.counterexample is not None and self.direction is not None:
            lines.append(f"  along {_fmt(self.direction)}: the derivative gives "
                         f"{_fmt(self.got)}, central differences give {_fmt(self.expected)}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


def _fmt(a: Any) -> str:
    return np.array2string(np.asarray(a), precision=4, suppress_small=True,
                           max_line_width=10 ** 6, threshold=12)


# ------------------------------------------------------------------ coordinates
#: what a derivative is by: one variable, or several at once (a tuple of them: the
#: derivative by their concatenation z = [vec(x); vec(y); …], column-major)
Wrt = Var | tuple[Var, ...]


def _vars(x: Wrt) -> tuple[Var, ...]:
    return x if isinstance(x, tuple) else (x,)


def _label(x: Wrt) -> str:
    return x.name if isinstance(x, Var) else "[" + ", ".join(v.name for v in x) + "]"


def _coords_shape(x: Wrt) -> Shape:
    """The shape of the coordinates: ``x``'s own, or ``(size(x) + size(y) + …,)``."""
    if isinstance(x, Var):
        return x.shape
    return (dim_add(*(dim_mul(*v.shape) for v in x)),)


def _coords(x: Wrt, vals: Mapping[str, Any]) -> np.ndarray:
    """The point's coordinates: ``x``'s value, or the concatenation of the values of
    several variables, each flattened column-major (``vec``), as ``derive`` orders
    the last axis of a derivative by several variables."""
    conv = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    if isinstance(x, Var):
        return as_real_array(x.name, vals[x.name], conv)
    return np.concatenate([as_real_array(v.name, vals[v.name], conv).ravel(order="F")
                           for v in x])


def _at(x: Wrt, vals: Mapping[str, Any], z: np.ndarray) -> dict[str, Any]:
    """The point ``vals`` with its coordinates (see :func:`_coords`) set to ``z``."""
    if isinstance(x, Var):
        return {**vals, x.name: z}
    out, k = dict(vals), 0
    for v in x:
        shape = np.shape(vals[v.name])
        n = math.prod(shape)
        out[v.name] = z[k:k + n].reshape(shape, order="F")
        k += n
    return out


# ------------------------------------------------------------------ random points
def _domain_of(expr: Expr, name: str) -> tuple[float, float]:
    """The narrowest smooth domain of the element-wise functions applied directly to
    the variable (positive values for log/sqrt of it, ...), else (-1, 1)."""
    lo, hi = -1.0, 1.0
    for node in topo_order(expr):
        if isinstance(node, Map) and any(isinstance(c, Var) and c.name == name
                                         for c in node.children[:1]):
            a, b = node.spec.domain or (-2.0, 2.0)  # a user's function may give none
            if b > max(lo, a):
                lo, hi = max(lo, a), min(hi, b)
    if lo >= hi:
        lo, hi = 0.5, 1.5
    return lo, hi


def random_values(expr: Expr, rng: np.random.Generator | int | None = None,
                  sizes: Mapping[str, int] | None = None, default_size: int = 3
                  ) -> dict[str, np.ndarray]:
    """Random float64 values for every variable of ``expr``.

    Named dims get ``sizes[dim]`` or ``default_size`` (and ``default_size + 1`` for
    every other new dim); square matrices are made well conditioned (near the
    identity) so that inverses and determinants are safe.

    >>> import matdiff as md
    >>> v = random_values(md.parse("x @ A @ x", shapes={"x": ("n",), "A": ("n", "n")}), 0)
    >>> v["A"].shape, v["x"].shape
    ((3, 3), (3,))
    """
    rng = np.random.default_rng(rng)
    sizes = dict(sizes or {})
    out = {}
    total, limit = 0, memory_limit()
    for name, node in var_nodes(expr).items():
        shape = node.shape
        for d in shape:   # a dim n + 1 binds its name n
            for n in sorted(dim_names(d)):
                sizes.setdefault(n, default_size + len(sizes) % 2)
        dims = [dim_size(d, sizes) for d in shape]
        # a declared size like x: (10**11,) is refused before NumPy is asked for it
        total += 8 * math.prod(dims)
        if total > limit:
            raise LimitError(
                f"random values for {name} of shape {tuple(dims)} would take "
                f"{human_bytes(total)} in all, more than the limit of "
                f"{human_bytes(limit)}: give smaller sizes")
        lo, hi = _domain_of(expr, name)
        v = rng.uniform(lo, hi, size=dims)
        if node.structure == "spd":
            # B Bᵀ/n + I: symmetric, eigenvalues at least 1 (positive definite)
            v = v @ v.T / dims[0] + np.eye(dims[0])
        elif len(shape) == 2 and shape[0] == shape[1]:
            v = np.eye(dims[0]) + 0.3 * structured(v, node.structure)
        out[name] = np.asarray(v, dtype=np.float64)
    return out


def structured(v: np.ndarray, structure: str | None) -> np.ndarray:
    """``v`` projected onto a structure's matrices (MATH.md, "Symmetric (and SPD,
    diagonal) variables"): ``(v + vᵀ)/2`` for a symmetric or SPD variable,
    ``v ⊙ I`` for a diagonal one; as it is without a structure.  The directions of a
    check by a structured variable lie there: a symmetric ``S`` moves only along
    symmetric ``E``.

    >>> structured(np.array([[0., 2.], [0., 1.]]), "symmetric").tolist()
    [[0.0, 1.0], [1.0, 1.0]]
    >>> structured(np.array([[0., 2.], [0., 1.]]), "diagonal").tolist()
    [[0.0, 0.0], [0.0, 1.0]]
    """
    v = np.asarray(v, dtype=np.float64)
    if structure in ("symmetric", "spd"):
        return (v + v.T) / 2
    if structure == "diagonal":
        return np.diag(np.diag(v))
    return v


def _off_structure(D: np.ndarray, structure: str | None) -> float:
    """How far the derivative's last two axes (the variable's) are from its
    structure's matrices: a gradient by a symmetric ``S`` is symmetric, by a diagonal
    one diagonal."""
    if not structure or D.ndim < 2:
        return 0.0
    if structure == "diagonal":
        off = D * (1 - np.eye(D.shape[-1]))
    else:
        off = D - np.swapaxes(D, -1, -2)
    return float(np.max(np.abs(off))) if off.size else 0.0


def _check_structured_value(x: Var, value: Any) -> None:
    """A value given for a structured variable must have the structure (a symmetric
    ``S`` evaluated at a matrix that is not symmetric means nothing)."""
    if not x.structure:
        return
    v = np.asarray(value, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] != v.shape[1]:
        return  # the shape check says what is wrong
    gap = _off_structure(v, x.structure)
    if gap > 1e-9 * max(1.0, float(np.max(np.abs(v)))):
        raise EvaluationError(f"{x.name} is declared {x.structure}, but its value is not "
                              f"(it is off by up to {gap:.3g})")
    if x.structure == "spd" and np.min(np.linalg.eigvalsh(v)) <= 0:
        raise EvaluationError(f"{x.name} is declared spd (symmetric positive definite), "
                              "but its value has an eigenvalue ≤ 0")


def _size_plans(expr: Expr, x: Wrt) -> list[dict[str, int]]:
    """Sizes for the named dims, one plan per try: the first is the usual (3, 4, 3,
    …); the others change which dims are larger, so that a function singular at one
    choice (``logdet(XᵀX)`` with fewer rows than columns) is tried at another."""
    names: list[str] = []
    for shape in [*expr.variables().values(), *(v.shape for v in _vars(x))]:
        for d in shape:
            names.extend(n for n in sorted(dim_names(d)) if n not in names)
    # each plan raised until every selection fits its axis (x[5] needs n ≥ 6)
    return [fit_sizes(expr, {d: pair[k % 2] for k, d in enumerate(names)})
            for pair in _SIZE_CHOICES]


# ------------------------------------------------------------------ pieces
def _piecewise(expr: Expr) -> list[Map]:
    """The piecewise element-wise nodes of ``expr`` (their definitions word their
    pieces), whose arguments must fall on both sides of the kink."""
    return [n for n in topo_order(expr) if isinstance(n, Map) and n.spec.notes]


def _sides(node: Map, vals: Mapping[str, Any], sizes: Mapping[str, int]) -> set[int]:
    """Which sides of its kink the argument of ``node`` takes at a point: +1 where
    ``z > 0`` (of ``a − b`` for ``max(a, b)``, of ``x`` for ``leaky_relu(x, a)``: the
    definition's ``kink``), −1 where ``z < 0``."""
    with np.errstate(all="ignore"):
        args = [np.asarray(evaluate(c, vals, dims=sizes)) for c in node.children]
        z = node.spec.kink_of(*args)
    return {s for s, hit in ((1, np.any(z > 0)), (-1, np.any(z < 0))) if hit}


# ------------------------------------------------------------------ claims
def _claim(f: Expr, x: Wrt, derivative: Expr | str) -> Expr:
    """A person's derivative as an expression over f's variables: text is parsed with
    the shapes of f's variables (and of ``x``), and a name that is one of their dims
    (the ``N`` of ``2/N``) stands for that dim's size."""
    if isinstance(derivative, Expr):
        return derivative
    if not isinstance(derivative, str):
        raise TypeError(f"derivative must be an expression or its text, not "
                        f"{type(derivative).__name__}")
    from .parse import parse, tokenize

    shapes: dict[str, Any] = {**{n: v.shape_spec for n, v in var_nodes(f).items()},
                              **{v.name: v.shape_spec for v in _vars(x)}}
    dims = {n for s in shapes.values() for d in s[:len(s) - bool(_tag(s))]
            for n in dim_names(d)}
    sizes = set()
    for tok in tokenize(derivative):
        if tok.kind == "name" and tok.text in dims and tok.text not in shapes:
            sizes.add(tok.text)
    claim = parse(derivative, shapes={**shapes, **{d: () for d in sizes}})
    if sizes:  # the dims' names, read as scalars, become their sizes
        claim = _substitute(claim, {d: Size(d) for d in sizes})
    return claim


def _tag(spec: tuple) -> str | None:
    return spec[-1] if spec and spec[-1] in STRUCTURES else None


def _rewrite(e: Expr, visit: Any) -> Expr:
    """``e`` rebuilt bottom up: ``visit(node, new_children)`` gives each node's
    replacement (:func:`_rebuilt` keeps a node whose children stayed)."""
    out: dict[int, Expr] = {}
    for node in topo_order(e):
        out[id(node)] = visit(node, [out[id(c)] for c in node.children])
    return out[id(e)]


def _rebuilt(node: Expr, kids: list[Expr]) -> Expr:
    return node if all(k is c for k, c in zip(kids, node.children)) else node.rebuild(kids)


def _substitute(e: Expr, by: Mapping[str, Expr]) -> Expr:
    """``e`` with each scalar variable named in ``by`` replaced."""
    return _rewrite(e, lambda n, kids: by.get(n.name, n) if isinstance(n, Var)
                    else _rebuilt(n, kids))


#: a hint: its code (an entry of matdiff.explain.lang.HINTS) and parameters; ("", {})
#: is none
Hint = tuple[str, dict[str, Any]]
_NO_HINT: Hint = ("", {})


def _structure_hint(x: Wrt, claim: np.ndarray, truth: np.ndarray) -> Hint:
    """What a wrong claim by a symmetric variable seems to be: the handbooks'
    ``G + Gᵀ − G ⊙ I`` (which is ``2 sym(G) − sym(G) ⊙ I``), or the unconstrained
    ``G`` (not symmetric)."""
    if not isinstance(x, Var) or x.structure not in ("symmetric", "spd") \
            or claim.shape != truth.shape:
        return _NO_HINT
    sym_g = truth  # the true gradient is sym(G); its diagonal is G's
    handbook = 2 * sym_g - sym_g * np.eye(sym_g.shape[-1])
    if np.allclose(claim, handbook, rtol=1e-6, atol=1e-9):
        return "handbook_symmetric", {"x": x.name}
    if _off_structure(claim, x.structure) > 1e-9 * max(1.0, float(np.max(np.abs(claim)))):
        return "not_symmetric", {"x": x.name}
    return _NO_HINT


def _hint(claim: np.ndarray, truth: np.ndarray) -> Hint:
    """What a wrong claim seems to have done at a point: a transpose, a constant
    factor."""
    if claim.shape == truth.shape[::-1] and claim.ndim == 2 and claim.shape != truth.shape:
        return "transposed_shape", {}
    if claim.shape == truth.shape:
        if claim.ndim == 2 and np.allclose(claim, truth.T, rtol=1e-6, atol=1e-9):
            return "transpose", {}
        flat_t, flat_c = truth.ravel(), claim.ravel()
        denom = float(flat_t @ flat_t)
        if denom > 0:
            c = float(flat_c @ flat_t) / denom
            if abs(c) > 1e-9 and abs(c - 1) > 1e-6 and np.allclose(
                    flat_c, c * flat_t, rtol=1e-6, atol=1e-9):
                return "constant_factor", {"c": float(f"{c:.6g}")}
    return _NO_HINT


def _piece_hint(f: Expr, x: Wrt, p: _Point) -> Hint:
    """Whether the claim is the derivative with every piecewise factor taken as 1 (a
    ReLU's step(z) left out): each piecewise node ``g(a, …)`` becomes ``a + r``, with
    ``r`` a new variable holding ``g − a`` at the point, so the value stays and the
    derivative through ``g`` becomes the derivative of ``a``."""
    nodes = _piecewise(f)
    if not nodes:
        return _NO_HINT
    rest: dict[int, Expr] = {}
    extra: dict[str, np.ndarray] = {}
    with np.errstate(all="ignore"):
        for k, node in enumerate(nodes):
            r = Var(f"_piece{k}", node.shape)
            a = node.children[0]
            rest[id(node)] = r
            extra[r.name] = np.asarray(evaluate(node, p.vals, dims=p.sizes)
                                       - evaluate(a, p.vals, dims=p.sizes))
    flat_f = _rewrite(f, lambda n, kids: kids[0] + rest[id(n)] if id(n) in rest
                      else _rebuilt(n, kids))
    flat = derive(flat_f, x)
    with np.errstate(all="ignore"):
        want = evaluate(flat, {**p.vals, **extra}, dims=p.sizes)
    if np.allclose(p.D, want, rtol=1e-6, atol=1e-9):
        names = sorted({n.fn for n in nodes})
        return "piecewise_as_one", {"names": ", ".join(names)}
    return _NO_HINT


# ------------------------------------------------------------------ options
def _check_options(directions: Any, eps: Any, rtol: Any, atol: Any, seed: Any,
                   points: Any) -> None:
    """Refuse options that would make the check vacuous (0 directions passes
    anything) or meaningless (a step of 0), with a message, before any work."""
    for name, v in (("directions", directions), ("points", points)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must be an int, not {type(v).__name__}")
        if v < 1:
            raise EvaluationError(f"{name} must be at least 1, not {v}")
    for name, v in (("eps", eps), ("rtol", rtol), ("atol", atol)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name} must be a number, not {type(v).__name__}")
        if not math.isfinite(v) or v < 0 or (name == "eps" and v == 0):
            raise EvaluationError(
                f"{name} must be a finite number {'> 0' if name == 'eps' else '>= 0'}, "
                f"not {v}")
    if seed is not None and not isinstance(seed, (numbers.Integral, np.random.Generator)) \
            or isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"seed must be an int, a numpy Generator or None, not "
                        f"{type(seed).__name__}")


# ------------------------------------------------------------------ the check
@dataclass
class _Point:
    vals: dict[str, np.ndarray]
    sizes: dict[str, int]
    D: np.ndarray


def _finite_point(f: Expr, D: Expr, x: Wrt, vals: dict[str, np.ndarray],
                  rng: np.random.Generator) -> _Point | None:
    """The point ``vals`` with the derivative's value, or ``None`` where ``f`` or the
    derivative is not finite there (or cannot be evaluated: a singular matrix)."""
    for v in _vars(x):
        if v.name not in vals:
            # a variable f lacks: its dims take the sizes f's values gave them (x: (m,)
            # against B: (n, m) is B's m), else 3
            _, known = bind_sizes(f, vals)
            known = {**{n: 3 for d in v.shape for n in dim_names(d)}, **known}
            vals[v.name] = structured(rng.standard_normal(
                [dim_size(d, known) for d in v.shape]), v.structure)
    _, sizes = bind_sizes(D, vals)
    _, fsizes = bind_sizes(f, vals)
    sizes.update(fsizes)
    x0 = _coords(x, vals)
    try:
        with np.errstate(all="ignore"):  # a value that is not finite is answered below
            f0 = evaluate(f, vals, dims=sizes)
            Dv = evaluate(D, vals, dims=sizes)
    except EvaluationError:
        return None
    coords = _coords_shape(x)
    want = Dv.shape[Dv.ndim - len(coords):]
    if x0.shape != want or x0.ndim != len(coords):
        # f lacks x, so evaluation bound x's dims from the other values only
        raise EvaluationError(
            f"value of {_label(x)} has shape {x0.shape}, but the other values make its "
            f"shape {shape_str(coords)} = {want}")
    if not (np.all(np.isfinite(f0)) and np.all(np.isfinite(Dv))):
        return None
    return _Point(vals, sizes, Dv)


def check(f: Expr | str, wrt: Expr | str | Sequence[Expr | str],
          values: Mapping[str, Any] | None = None,
          shapes: Mapping[str, Sequence[Dim]] | None = None, *,
          derivative: Expr | str | None = None, points: int = 3, directions: int = 3,
          eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-7,
          seed: int | None = 0) -> CheckResult:
    """Compare the derivative of ``f`` by ``wrt`` with central finite differences.

    The derivative is matdiff's, ``derive(f, wrt)``, or with ``derivative=`` a
    person's own claim (an expression, or text over f's variables, in which a dim's
    name such as the ``N`` of ``2/N`` is that dim's size; in matdiff's layout:
    f's axes, then wrt's).  Along each random direction ``v`` at each point, it
    compares ``D·v`` (contracted over ``wrt``'s axes) with
    ``(f(x + εv) − f(x − εv)) / 2ε``.  ``values`` fixes the one point to check; left
    out, ``points`` random points (more while a piecewise function has a piece that
    no point has reached; see the module docstring) are drawn.

    ``wrt`` may be a list of variables, as for :func:`matdiff.derive`: the derivative
    by their concatenation ``z = [vec(x); vec(y); …]`` is checked along random
    directions in the space of ``z`` (every variable moves at once, so the cross
    terms of a Hessian are checked too); ``direction`` is then such a ``z``.

    >>> import numpy as np, matdiff as md
    >>> f = md.parse("x @ A @ x", shapes={"x": ("n",), "A": ("n", "n")})
    >>> md.check(f, "x", {"x": np.ones(3), "A": np.eye(3)}).ok
    True
    >>> r = md.check("max(0, dot(w, x) + b)", "w", shapes={"w": ("n",), "x": ("n",), "b": ()})
    >>> r.ok, r.pieces
    (True, (2, 2))
    >>> md.check("sum(x**2)", "x", shapes={"x": ("n",)}, derivative="4*x").hint
    'the claim is the derivative times 2: a constant factor is off'
    >>> md.check("x**2 * y + sin(y)", ["x", "y"], shapes={"x": (), "y": ()}).ok
    True
    """
    _check_options(directions, eps, rtol, atol, seed, points)
    f, known = function_of(f, shapes)
    x: Wrt = (resolve_several(f, wrt, shapes, known) if is_several(wrt)
              else resolve_wrt(f, wrt, shapes, known))
    rng = np.random.default_rng(seed)
    D = derive(f, x) if derivative is None else _claim(f, x, derivative)
    claim = derivative is not None
    if claim and D.shape != f.shape + _coords_shape(x):
        truth = derive(f, x)
        return _wrong_shape(D, truth, x, directions, eps, values)
    pieces = _piecewise(f)
    total = 2 * len(pieces)
    seen: set[tuple[int, int]] = set()
    chosen: list[_Point] = []
    plans = _size_plans(f, x)
    if values is not None:
        vals = dict(check_values(values, "check"))
        for v in _vars(x):
            if v.name not in vals and v.name in f.variables():
                raise EvaluationError(f"no value given for {v.name}")
        for name, node in var_nodes(f).items():
            if name in vals:
                _check_structured_value(node, vals[name])
        p = _finite_point(f, D, x, vals, rng)
        if p is not None:
            chosen.append(p)
            for k, piece in enumerate(pieces):
                seen |= {(k, s) for s in _sides(piece, p.vals, p.sizes)}
    else:
        for draw in range(MAX_DRAWS):
            if len(chosen) >= points and len(seen) == total:
                break
            # other sizes of the dims until a point is finite, then those sizes
            plan = chosen[0].sizes if chosen else plans[draw % len(plans)]
            p = _finite_point(f, D, x, random_values(f, rng, sizes=plan), rng)
            if p is None:
                continue
            new = set()
            for k, piece in enumerate(pieces):
                new |= {(k, s) for s in _sides(piece, p.vals, p.sizes)}
            if len(chosen) < points or new - seen:
                chosen.append(p)
                seen |= new
    if not chosen:
        return CheckResult(False, math.nan, math.nan, directions, eps,
                           dict(values or {}), status="unchecked", claim=claim,
                           pieces=(0, total), reason=(
                               "f or its derivative is not finite (or not defined) at "
                               f"any of the points tried ({MAX_DRAWS} draws, several "
                               "sizes of the dims): give values where f is defined"))
    return _compare(f, D, x, chosen, directions, eps, rtol, atol, rng, claim,
                    (len(seen), total), bool(pieces))


def _compare(f: Expr, D: Expr, x: Wrt, chosen: list[_Point], directions: int, eps: float,
             rtol: float, atol: float, rng: np.random.Generator, claim: bool,
             pieces: tuple[int, int], piecewise: bool) -> CheckResult:
    """Central differences against the derivative at each chosen point."""
    worst_abs = worst_rel = 0.0
    details: list[tuple[float, float]] = []
    bad: tuple | None = None
    unstructured: _Point | None = None  # a point where D is not in x's structure
    agreed = differed = 0
    unchecked = ""
    # a structured variable moves only in its space (a symmetric S along symmetric E),
    # and its gradient must lie there too (sym(G), not G); by several variables at
    # once, each part is projected by derive and the directions are the concatenation's
    xs = x.structure if isinstance(x, Var) else None
    for p in chosen:
        x0 = _coords(x, p.vals)
        k = x0.ndim
        good_here = True
        off = _off_structure(np.asarray(p.D), xs)
        if off > atol + rtol * max(1.0, float(np.max(np.abs(p.D)))):
            good_here = False
            if unstructured is None:
                unstructured = p
            worst_abs = max(worst_abs, off)
            worst_rel = max(worst_rel, off / max(float(np.max(np.abs(p.D))), 1e-12))
        for _ in range(directions):
            v = structured(rng.standard_normal(x0.shape), xs)
            jv = np.tensordot(p.D, v, axes=k) if k else p.D * v
            with np.errstate(all="ignore"):
                plus = evaluate(f, _at(x, p.vals, x0 + eps * v), dims=p.sizes)
                minus = evaluate(f, _at(x, p.vals, x0 - eps * v), dims=p.sizes)
            fd = (plus - minus) / (2 * eps)
            if not np.all(np.isfinite(fd)):
                unchecked = "f is not finite next to a point (a step of eps leaves its domain)"
                continue
            err = float(np.max(np.abs(jv - fd))) if np.size(fd) else 0.0
            scale = float(np.max(np.abs(fd))) if np.size(fd) else 0.0
            worst_abs = max(worst_abs, err)
            worst_rel = max(worst_rel, err / max(scale, 1e-12))
            details.append((err, scale))
            if not err <= atol + rtol * max(1.0, scale):
                good_here = False
                if bad is None:
                    bad = (p, v, fd, jv)
        agreed += good_here
        differed += not good_here
    # the fields every outcome shares
    result = functools.partial(CheckResult, directions=directions, eps=eps,
                               values=chosen[0].vals, details=details,
                               points=[p.vals for p in chosen], pieces=pieces, claim=claim)
    if not details:
        return result(False, math.nan, math.nan, status="unchecked", reason=unchecked)
    if bad is None and unstructured is None:
        return result(True, worst_abs, worst_rel)
    if bad is None:  # right along every direction of x's space, but not in it
        # (only a structured variable has such points: one Var, never several at once)
        assert unstructured is not None and isinstance(x, Var)
        p = unstructured
        truth = evaluate(derive(f, x), p.vals, dims=p.sizes)
        code, params = _structure_hint(x, np.asarray(p.D), np.asarray(truth))
        if not code:
            code, params = "not_structured", {"structure": x.structure, "x": x.name}
        return result(False, worst_abs, worst_rel, status="mismatch",
                      counterexample=p.vals, hint_code=code, hint_params=params)
    p, v, fd, jv = bad
    code, params = _NO_HINT
    if claim:
        truth = evaluate(derive(f, x), p.vals, dims=p.sizes)
        for guess in (lambda: _structure_hint(x, np.asarray(p.D), np.asarray(truth)),
                      lambda: _hint(np.asarray(p.D), np.asarray(truth)),
                      lambda: _piece_hint(f, x, p)):
            code, params = guess()
            if code:
                break
        if not code and piecewise and agreed and differed:
            code, params = "piecewise_some_points", {}
    return result(False, worst_abs, worst_rel, status="mismatch",
                  counterexample=p.vals, direction=v, expected=np.asarray(fd),
                  got=np.asarray(jv), hint_code=code, hint_params=params)


def _wrong_shape(claim: Expr, truth: Expr, x: Wrt, directions: int, eps: float,
                 values: Mapping[str, Any] | None) -> CheckResult:
    """A claim whose shape is not the derivative's: wrong, with the shapes."""
    transposed = len(claim.shape) == 2 and claim.shape == truth.shape[::-1]
    return CheckResult(False, math.nan, math.nan, directions, eps, dict(values or {}),
                       status="mismatch", claim=True,
                       hint_code="wrong_shape_transposed" if transposed else "wrong_shape",
                       hint_params={"claim": shape_str(claim.shape), "x": _label(x),
                                    "shape": shape_str(truth.shape)})
