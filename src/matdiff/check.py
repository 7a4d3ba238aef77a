"""Check a symbolic derivative against central finite differences.

:func:`check` is the check the test suite runs on every rule, shipped so that a
user can verify any derivative matdiff gives them::

    >>> import matdiff as md
    >>> r = md.check("sum(log(x**2 + 1))", "x", shapes={"x": ("n",)})
    >>> r.ok
    True
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .compile.api import as_real_array, check_values, human_bytes, memory_limit
from .compile.evaluate import bind_sizes, evaluate
from .derive.reverse import derive, resolve_wrt, to_expr
from .errors import EvaluationError, LimitError
from .expr.core import Expr, Map, Var, shape_str, topo_order

__all__ = ["check", "CheckResult", "random_values"]


@dataclass
class CheckResult:
    """Outcome of :func:`check`: the worst error over the directions tried."""

    ok: bool
    max_abs_error: float
    max_rel_error: float
    directions: int
    eps: float
    values: dict[str, np.ndarray] = field(repr=False)
    #: (absolute error, size of the finite difference) per direction
    details: list[tuple[float, float]] = field(repr=False, default_factory=list)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        verdict = "OK" if self.ok else "MISMATCH"
        return (f"{verdict}: derivative vs central differences along {self.directions} "
                f"random direction(s): max abs error {self.max_abs_error:.3g}, "
                f"max rel error {self.max_rel_error:.3g} (eps {self.eps:g})")


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

    Named dims get ``sizes[dim]`` or ``default_size``; square matrices are made well
    conditioned (near the identity) so that ``inv``, ``det`` and ``logdet`` are safe.
    """
    rng = np.random.default_rng(rng)
    sizes = dict(sizes or {})
    out = {}
    total, limit = 0, memory_limit()
    for name, shape in expr.variables().items():
        dims = []
        for d in shape:
            if isinstance(d, int):
                dims.append(d)
            else:
                dims.append(sizes.setdefault(d, default_size + len(sizes) % 2))
        # a declared size like x: (10**11,) is refused before NumPy is asked for it
        total += 8 * math.prod(dims)
        if total > limit:
            raise LimitError(
                f"random values for {name} of shape {tuple(dims)} would take "
                f"{human_bytes(total)} in all, more than the limit of "
                f"{human_bytes(limit)}: give smaller sizes")
        lo, hi = _domain_of(expr, name)
        v = rng.uniform(lo, hi, size=dims)
        if len(shape) == 2 and shape[0] == shape[1]:
            v = np.eye(dims[0]) + 0.3 * v
        out[name] = np.asarray(v, dtype=np.float64)
    return out


def _check_options(directions: Any, eps: Any, rtol: Any, atol: Any, seed: Any) -> None:
    """Refuse options that would make the check vacuous (0 directions passes
    anything) or meaningless (a step of 0), with a message, before any work."""
    if isinstance(directions, (bool, np.bool_)) or not isinstance(directions,
                                                                  numbers.Integral):
        raise TypeError(f"directions must be an int, not {type(directions).__name__}")
    if directions < 1:
        raise EvaluationError(f"directions must be at least 1, not {directions}")
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


def check(f: Expr | str, wrt: Expr | str, values: Mapping[str, Any] | None = None,
          shapes: Mapping[str, Sequence] | None = None, *, directions: int = 3,
          eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-7,
          seed: int | None = 0) -> CheckResult:
    """Compare ``derive(f, wrt)`` with central finite differences.

    Along each random direction ``v`` it compares ``D·v`` (the derivative contracted
    with ``v`` over ``wrt``'s axes) with ``(f(x + εv) − f(x − εv)) / 2ε``.  Values not
    given are drawn at random (see :func:`random_values`).

    >>> import numpy as np, matdiff as md
    >>> f = md.parse("x @ A @ x", shapes={"x": ("n",), "A": ("n", "n")})
    >>> md.check(f, "x", {"x": np.ones(3), "A": np.eye(3)}).ok
    True
    """
    _check_options(directions, eps, rtol, atol, seed)
    f = to_expr(f, shapes)
    x = resolve_wrt(f, wrt, shapes)
    rng = np.random.default_rng(seed)
    vals = dict(check_values(values, "check")) if values is not None \
        else random_values(f, rng)
    if x.name not in vals:
        if x.name in f.variables():
            raise EvaluationError(f"no value given for {x.name}")
        # a variable f lacks: its dims take the sizes f's values gave them (x: (m,)
        # against B: (n, m) is B's m), else 3
        _, known = bind_sizes(f, vals)
        vals[x.name] = rng.standard_normal(
            [d if isinstance(d, int) else known.get(d, 3) for d in x.shape])
    D = derive(f, x)
    _, sizes = bind_sizes(D, {**vals})
    _, fsizes = bind_sizes(f, vals)
    sizes.update(fsizes)
    x0 = as_real_array(x.name, vals[x.name], lambda a: np.asarray(a, dtype=np.float64))
    Dv = evaluate(D, vals, dims=sizes)
    k = x0.ndim
    want = Dv.shape[Dv.ndim - len(x.shape):]
    if x0.shape != want or k != len(x.shape):
        # f lacks x, so evaluation bound x's dims from the other values only
        raise EvaluationError(
            f"value of {x.name} has shape {x0.shape}, but the other values make its "
            f"shape {shape_str(x.shape)} = {want}")
    worst_abs = worst_rel = 0.0
    details = []
    for _ in range(directions):
        v = rng.standard_normal(x0.shape)
        jv = np.tensordot(Dv, v, axes=k) if k else Dv * v
        plus = evaluate(f, {**vals, x.name: x0 + eps * v}, dims=sizes)
        minus = evaluate(f, {**vals, x.name: x0 - eps * v}, dims=sizes)
        fd = (plus - minus) / (2 * eps)
        err = float(np.max(np.abs(jv - fd))) if np.size(fd) else 0.0
        scale = float(np.max(np.abs(fd))) if np.size(fd) else 0.0
        rel = err / max(scale, 1e-12)
        worst_abs, worst_rel = max(worst_abs, err), max(worst_rel, rel)
        details.append((err, scale))
    ok = bool(np.isfinite(worst_abs)) and all(e <= atol + rtol * max(1.0, s)
                                              for e, s in details)
    return CheckResult(ok, worst_abs, worst_rel, directions, eps, vals, details)
