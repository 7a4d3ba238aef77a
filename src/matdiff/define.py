"""``md.define_function``: a user's own element-wise function, as one definition.

A definition is a row of :data:`matdiff.expr.functions.FUNCTIONS`, the same kind of
row as every built-in function.  Once defined, the function parses (in numpy syntax),
derives to any order (by the chain rule through the derivative given), prints in
Unicode and LaTeX, evaluates, compiles on every backend it has an implementation for,
and appears in step-by-step derivations.

>>> import math, numpy as np, matdiff as md
>>> gauss = md.define_function(
...     "gauss", derivative=lambda u: -2 * u * md.exp(-u ** 2),
...     numpy=lambda a: np.exp(-np.square(a)), domain=(-2.0, 2.0))
>>> x = md.vector("x", "n")
>>> print(md.derive(md.sum(gauss(x)), x))
−2x ⊙ exp(−x²)
>>> float(md.parse("gauss(t)", shapes={"t": ()}).evaluate(t=1.0)) == math.exp(-1)
True
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import MatdiffError
from .expr import builders
from .expr.core import Expr, Var
from .expr.functions import FUNCTIONS, Elementwise, register

__all__ = ["define_function", "DefinitionError"]


class DefinitionError(MatdiffError, ValueError):
    """A function definition that cannot be added (a taken name, a wrong rule)."""


def _reserved() -> set[str]:
    """Names a new function may not take: the language's functions in either syntax,
    the entries of the backends' tables (generated code calls ``xp.<name>``), and
    Python's keywords."""
    from .compile.backends import get_backend
    from .parse.mc import MC_FUNCTION_TABLE
    from .parse.table import FUNCTION_TABLE

    names = set(FUNCTION_TABLE) | set(MC_FUNCTION_TABLE) | set(FUNCTIONS)
    names |= {n for n in vars(get_backend("numpy")) if not n.startswith("_")}
    names |= set(keyword.kwlist) | {"T", "ln"}
    return names


def define_function(name: str, derivative: Callable[..., Any] | Sequence[Callable[..., Any]],
                    *, numpy: Callable[..., Any], jax: Callable[..., Any] | str | None = None,
                    torch: Callable[..., Any] | str | None = None, latex: str = "",
                    unicode: str = "", domain: tuple[float, float] | None = None,
                    doc: str = "", notes: Mapping[str, str] | None = None
                    ) -> Callable[..., Expr]:
    r"""Add the element-wise function ``name`` to the language; return its builder.

    ``derivative`` is the derivative as a function of the argument, written with
    matdiff's builders (``lambda u: md.cos(u)`` for ``sin``); for a function of
    several arguments, a sequence of them, one partial derivative per argument, each
    taking every argument.  ``numpy`` (required), ``jax`` and ``torch`` compute the
    function on arrays of each backend (a callable, or a dotted path such as
    ``"torch.special.erf"`` imported when first used); compiling for a backend without
    one is an error that names both.  ``latex`` is its LaTeX command (default
    ``\operatorname{name}``), ``unicode`` its printed name (default the name), ``domain``
    an interval where it is smooth, for random test points (``md.check``; the
    built-ins all have one), ``notes`` the wording of its Jacobian's cases per
    language, for a piecewise function (``{d}`` the derivative, ``{z}`` the argument).

    The name must be an identifier that is not already a function of the language (or
    a Python keyword): a definition is never replaced.  The one exception restates a
    built-in element-wise function (the public contract's ``erf``): that is accepted
    when it agrees with the built-in in values and derivatives, and returns the
    built-in's builder.
    """
    if not isinstance(name, str) or not name.isidentifier() or not name.isascii() \
            or name.startswith("_"):
        raise DefinitionError(f"a function name must be an identifier of ASCII letters, "
                              f"digits and '_' (not starting with '_'), not {name!r}")
    restated = FUNCTIONS.get(name)
    if name in _reserved() and not (restated is not None and restated.builtin):
        raise DefinitionError(f"{name!r} is already a name of the language: a definition "
                              "is never replaced; choose another name")
    rules = [derivative] if callable(derivative) else \
        list(derivative) if isinstance(derivative, (list, tuple)) else []
    if not rules or not all(callable(r) for r in rules):
        raise TypeError("derivative must be a function of the argument(s) (or one per "
                        "argument), like lambda u: md.cos(u)")
    if not callable(numpy):
        raise TypeError(f"numpy must be a function on arrays (the definition of {name} "
                        "needs it to evaluate), like scipy.special.erf")
    for label, impl in (("jax", jax), ("torch", torch)):
        if impl is not None and not callable(impl) and not isinstance(impl, str):
            raise TypeError(f"{label} must be a function on arrays or a dotted path, "
                            f"not {type(impl).__name__}")
    if domain is not None:
        lo, hi = (float(v) for v in domain)
        if not lo < hi:
            raise DefinitionError(f"domain must be an interval (lo, hi) with lo < hi, "
                                  f"not {domain!r}")
        domain = (lo, hi)
    arity = len(rules)

    def wrap(rule: Callable[..., Any]) -> Callable[..., Expr]:
        # the table's rules take the node too (out=): tanh' = 1 − out²
        def d(*args: Expr, out: Expr) -> Expr:
            r = builders.as_expr(rule(*args))
            if r.shape != out.shape:
                r = builders.broadcast_to(r, out.shape)
            return r

        return d

    row = Elementwise(name, arity, numpy, tuple(wrap(r) for r in rules), domain,
                      unicode=unicode, latex=latex, jax=jax, torch=torch, doc=doc,
                      notes=dict(notes or {}), builtin=False)
    _try(row)
    if restated is not None:  # a built-in's name: accepted only as the same function
        _same_as_builtin(row, restated)
        return builders.elementwise(name)
    register(row)
    return builders.elementwise(name)


def _same_as_builtin(row: Elementwise, builtin: Elementwise) -> None:
    """Accept a restatement of a built-in function (the public contract defines the
    built-in ``erf``) when it is the same function: the same number of arguments, and
    at points inside the built-in's domain the same values and the same derivatives
    (to 1e-9, relative).  Anything else is an error naming the point; the built-in
    stays, so no derivative, printout or compiled code changes meaning."""
    name = builtin.name
    if row.arity != builtin.arity:
        raise DefinitionError(f"{name!r} is a built-in function of {builtin.arity} "
                              f"argument(s), and this definition takes {row.arity}")
    from .compile.evaluate import evaluate

    lo, hi = builtin.domain or (-1.0, 1.0)
    probe = np.linspace(lo, hi, 7)[1:-1]
    args = [Var(f"_u{k}", ()) for k in range(row.arity)]
    with np.errstate(all="ignore"):
        mine = np.asarray(row.numpy(*([probe] * row.arity)), dtype=np.float64)
        theirs = np.asarray(builtin.numpy(*([probe] * row.arity)), dtype=np.float64)
    checks = [("value", mine, theirs)]
    out_user = builders.elementwise(name)(*args)
    for k, (rule, ref) in enumerate(zip(row.derivs, builtin.derivs)):
        d_user = rule(*args, out=out_user)
        d_ref = ref(*args, out=out_user)
        vals = [[float(evaluate(d, {a.name: t for a in args})) for t in probe]
                for d in (d_user, d_ref)]
        checks.append((f"derivative by argument {k + 1}", np.array(vals[0]),
                       np.array(vals[1])))
    for what, a, b in checks:
        bad = ~np.isclose(a, b, rtol=1e-9, atol=1e-12)
        if bad.any():
            i = int(np.argmax(bad))
            raise DefinitionError(
                f"{name!r} is a built-in function, and this definition differs from it: "
                f"its {what} at {probe[i]:g} is {a[i]:.12g}, the built-in's "
                f"{b[i]:.12g}; a definition never replaces a built-in, so choose "
                "another name")


def _try(row: Elementwise) -> None:
    """Run the rules and the NumPy implementation once, on scalars, so that a mistake
    shows at definition, with the function's name, not deep inside a derivative."""
    args = [Var(f"_u{k}", ()) for k in range(row.arity)]
    for k, rule in enumerate(row.derivs):
        try:
            rule(*args, out=args[0])
        except Exception as exc:  # a user's rule: any failure is reported as such
            raise DefinitionError(
                f"the derivative of {row.name} by argument {k + 1} does not build an "
                f"expression: {type(exc).__name__}: {exc}") from exc
    lo, hi = row.domain or (-1.0, 1.0)
    probe = np.linspace(lo, hi, 5)[1:-1]
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(row.numpy(*([probe] * row.arity)), dtype=np.float64)
    except Exception as exc:  # a user's implementation
        raise DefinitionError(f"numpy implementation of {row.name} fails on an array: "
                              f"{type(exc).__name__}: {exc}") from exc
    if out.shape != probe.shape:
        raise DefinitionError(f"numpy implementation of {row.name} is not element-wise: "
                              f"{probe.shape} in, {out.shape} out")
