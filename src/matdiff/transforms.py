"""JAX-style function transforms: ``grad``, ``value_and_grad``, ``jacobian``, ``hessian``.

A transform takes an ordinary Python function written with matdiff's NumPy-like
functions (``md.exp``, ``md.sum``, ``@``, ...) and returns a function on NumPy
arrays.  On a call it traces ``fn`` once per input shapes and dtypes (calling it
with :func:`matdiff.var` placeholders named after ``fn``'s parameters), derives
the result by the arguments ``argnums`` picks, compiles value and derivatives into
one :func:`matdiff.compile` function and caches it.

>>> import numpy as np, matdiff as md
>>> def loss(w, X):
...     return md.sum((X @ w) ** 2)
>>> g = md.grad(loss)
>>> g(np.array([1.0, 2.0]), np.eye(2)).tolist()
[2.0, 4.0]
>>> g.trace_count
1
"""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from .errors import MatdiffError
from .render import latex, latex_name

if TYPE_CHECKING:
    from .compile.api import Compiled
    from .expr.core import Expr, Var

__all__ = ["TracingError", "ArgnumsError", "Transformed", "Formula",
           "grad", "value_and_grad", "jacobian", "hessian", "formula"]


class TracingError(MatdiffError, TypeError):
    """A function could not be traced into a matdiff expression."""


class ArgnumsError(MatdiffError, ValueError):
    """``argnums`` does not pick arguments of the function."""


#: a function to transform: it takes arrays (traced as matdiff variables) and returns
#: one array, written with matdiff's NumPy-like functions
ArrayFunction: TypeAlias = Callable[..., Any]
#: ``argnums``: the index of an argument, or a sequence of them
Argnums: TypeAlias = int | Sequence[int]


# ------------------------------------------------------------------ helpers
def _fn_name(fn: ArrayFunction) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _param_names(fn: ArrayFunction, n: int) -> list[str]:
    """Names for ``n`` positional arguments: ``fn``'s parameter names where usable,
    else ``a0, a1, ...`` (also for ``*args`` and for clashes)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    names: list[str] = []
    k = 0
    for p in params:
        if k >= n:
            break
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
            k += 1
        else:
            break
    used: set[str] = set()
    out = []
    for i in range(n):
        nm = names[i] if i < len(names) else f"a{i}"
        if (not nm.isidentifier() or keyword.iskeyword(nm) or nm.startswith("__")
                or nm in used):
            nm = f"a{i}"
        while nm in used:
            nm = "_" + nm
        used.add(nm)
        out.append(nm)
    return out


def _as_array(x: Any, i: int) -> np.ndarray:
    from .expr.core import Expr
    if isinstance(x, Expr):
        raise TracingError(
            f"argument {i} is a matdiff expression; transformed functions take "
            "NumPy arrays (use md.derive on expressions)")
    from .compile.api import as_real_array

    # evaluate's conversion: complex, None, text and ragged lists are refused, not
    # converted into something else
    out: np.ndarray = as_real_array(f"argument {i}", x,
                                    lambda a: np.asarray(a, dtype=np.float64))
    return out


def _norm_argnums(argnums: Any, nargs: int | None) -> tuple[tuple[int, ...], bool]:
    """``(indices, is_tuple)``; checks types now and ranges when ``nargs`` is known."""
    idx: tuple[int, ...]
    if isinstance(argnums, (bool, np.bool_)):
        raise ArgnumsError(f"argnums must be an int or a tuple of ints, not {argnums!r}")
    if isinstance(argnums, (int, np.integer)):
        idx, multi = (int(argnums),), False
    elif isinstance(argnums, (tuple, list)):
        if not argnums:
            raise ArgnumsError("argnums is empty: name at least one argument to derive by")
        for a in argnums:
            if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
                raise ArgnumsError(
                    f"argnums must be an int or a tuple of ints, not {argnums!r}")
        idx, multi = tuple(int(a) for a in argnums), True
        if len(set(idx)) != len(idx):
            raise ArgnumsError(f"argnums {argnums!r} repeats an argument")
    else:
        raise ArgnumsError(
            f"argnums must be an int or a tuple of ints, not {type(argnums).__name__}")
    if nargs is not None:
        for a in idx:
            if not -nargs <= a < nargs:
                raise ArgnumsError(
                    f"argnums {a} is out of range: the function was called with "
                    f"{nargs} argument{'s' if nargs != 1 else ''}")
        idx = tuple(a % nargs for a in idx)
        if len(set(idx)) != len(idx):
            raise ArgnumsError(f"argnums {argnums!r} repeats an argument")
    return idx, multi


def _trace(fn: ArrayFunction, arrays: Sequence[np.ndarray]) -> tuple[Expr, list[Var]]:
    """Call ``fn`` on placeholders shaped like ``arrays``: ``(expr, vars)``."""
    from .expr.builders import var
    from .expr.core import Expr

    names = _param_names(fn, len(arrays))
    vs = [var(nm, *(int(d) for d in a.shape)) for nm, a in zip(names, arrays)]
    name = _fn_name(fn)
    try:
        out = fn(*vs)
    except MatdiffError:
        raise
    except TypeError as exc:
        msg = str(exc)
        if "truth value of a matdiff expression" in msg or "cannot be compared" in msg:
            raise TracingError(
                f"{name} uses Python control flow (if/while/comparison) on a traced "
                "array; use md.maximum/md.relu/md.step instead") from exc
        if "does not support ufuncs" in msg or "cannot use ndarray" in msg:
            raise TracingError(
                f"{name} called a NumPy function on a traced array; use matdiff's "
                f"functions instead (md.exp, md.sum, md.maximum, ...): {msg}") from exc
        raise
    if not isinstance(out, Expr):
        if isinstance(out, (int, float, np.number)) and not isinstance(out, bool):
            from .expr.builders import as_expr
            out = as_expr(out)
        else:
            raise TracingError(
                f"{name} returned {type(out).__name__}, not a matdiff expression: "
                "write it with matdiff's functions (md.exp, md.sum, md.maximum, ...) "
                "rather than NumPy's, and return a single array")
    return out, vs


# --------------------------------------------------------------- transforms
@dataclass
class _Entry:
    value: Expr
    vars: list[Var]
    #: one derivative, a tuple of them (a tuple ``argnums``), or a Hessian's tuple of
    #: tuples of blocks
    grads: Any
    compiled: Compiled


#: a cache key: each argument's shape and dtype
_Key: TypeAlias = tuple[tuple[tuple[int, ...], str], ...]


class Transformed:
    """A transformed function: call it with NumPy arrays (positionally).

    ``trace_count`` counts traces (one per distinct input shapes and dtypes);
    ``formula(*args)`` gives the traced expressions for those inputs.
    """

    def __init__(self, fn: ArrayFunction, argnums: Argnums, kind: str) -> None:
        if not callable(fn):
            raise TracingError(f"{kind} needs a function, not {type(fn).__name__}")
        self.fn = fn
        self.argnums = argnums
        self.kind = kind
        _norm_argnums(argnums, None)
        self.trace_count: int = 0
        self._cache: dict[_Key, _Entry] = {}
        self.__name__: str = f"{kind}({_fn_name(fn)})"
        self.__doc__ = getattr(fn, "__doc__", None)

    def __repr__(self) -> str:
        return f"<matdiff {self.__name__}, argnums={self.argnums!r}>"

    def _entry(self, args: tuple[Any, ...]) -> tuple[_Entry, list[np.ndarray]]:
        if not args:
            raise TracingError(f"{self.__name__} was called without arguments")
        arrays = [_as_array(a, i) for i, a in enumerate(args)]
        raw = [np.asarray(a) if not hasattr(a, "shape") else a for a in args]
        key: _Key = tuple((tuple(a.shape), str(getattr(r, "dtype", "")))
                          for a, r in zip(arrays, raw))
        entry = self._cache.get(key)
        if entry is None:
            entry = self._build(arrays)
            self._cache[key] = entry
        return entry, arrays

    def _build(self, arrays: list[np.ndarray]) -> _Entry:
        from .compile.api import Compiled
        from .derive.reverse import derive

        idx, multi = _norm_argnums(self.argnums, len(arrays))
        f, vs = _trace(self.fn, arrays)
        self.trace_count += 1
        if self.kind in ("grad", "value_and_grad") and f.shape != ():
            raise TracingError(
                f"{self.kind} needs {_fn_name(self.fn)} to return a scalar, but it "
                f"returned shape {tuple(f.shape)}; use md.jacobian for non-scalar "
                "outputs (or reduce with md.sum/md.mean)")
        ws = [vs[i] for i in idx]
        if self.kind == "hessian":
            firsts = [derive(f, w) for w in ws]
            gs: Any = tuple(tuple(derive(d, w2) for w2 in ws) for d in firsts)
            grads = gs if multi else gs[0][0]
        else:
            gs = tuple(derive(f, w) for w in ws)
            grads = gs if multi else gs[0]
        compiled = Compiled((f, grads))
        return _Entry(f, vs, grads, compiled)

    def __call__(self, *args: Any) -> Any:
        entry, arrays = self._entry(args)
        value, grads = entry.compiled({v.name: a for v, a in zip(entry.vars, arrays)})
        grads = _to_numpy(grads)
        if self.kind == "value_and_grad":
            return _to_numpy(value), grads
        return grads

    def formula(self, *args: Any) -> Formula:
        """The traced expression and derivatives for inputs shaped like ``args``."""
        entry, _ = self._entry(args)
        idx, multi = _norm_argnums(self.argnums, len(args))
        gs = entry.grads if multi else (entry.grads,)
        return Formula(entry.value, {entry.vars[i].name: g for i, g in zip(idx, gs)},
                       tuple(entry.vars), kind=self.kind)


def _to_numpy(x: Any) -> Any:
    if isinstance(x, tuple):
        return tuple(_to_numpy(y) for y in x)
    return np.asarray(x, dtype=np.float64)


def grad(fn: ArrayFunction, argnums: Argnums = 0) -> Transformed:
    """The gradient of a scalar-valued ``fn`` by argument ``argnums`` (a tuple of ints
    gives a tuple of gradients), as a function on NumPy arrays."""
    return Transformed(fn, argnums, "grad")


def value_and_grad(fn: ArrayFunction, argnums: Argnums = 0) -> Transformed:
    """Like :func:`grad` but returns ``(value, gradient)``; one compiled function
    computes both."""
    return Transformed(fn, argnums, "value_and_grad")


def jacobian(fn: ArrayFunction, argnums: Argnums = 0) -> Transformed:
    """The Jacobian of ``fn`` by argument ``argnums``: shape ``out.shape +
    arg.shape`` (JAX's ``jacrev`` convention)."""
    return Transformed(fn, argnums, "jacobian")


def hessian(fn: ArrayFunction, argnums: Argnums = 0) -> Transformed:
    """The Hessian of ``fn``: shape ``out.shape + arg.shape + arg.shape``; with a
    tuple ``argnums`` a nested tuple ``H[i][j]`` of blocks, as in JAX."""
    return Transformed(fn, argnums, "hessian")


# ------------------------------------------------------------------ formula
@dataclass(repr=False)
class Formula:
    """A traced function: ``value`` (the expression), ``grads`` (name -> its
    derivative by that argument), ``variables`` (the placeholders).  It prints as
    its formulas, and displays in Jupyter as LaTeX."""

    value: Expr
    #: an argument's name -> its derivative (a Hessian's: a tuple of blocks)
    grads: dict[str, Any] = field(default_factory=dict)
    variables: tuple[Var, ...] = ()
    kind: str = "grad"

    def __str__(self) -> str:
        lines = [f"f = {self.value}"]
        for name, g in self.grads.items():
            if isinstance(g, tuple):  # hessian blocks
                for sub, h in zip(self.grads, g):
                    lines.append(f"d2f/d{name}d{sub} = {h}")
            elif self.kind == "hessian":
                lines.append(f"d2f/d{name}2 = {g}")
            else:
                lines.append(f"df/d{name} = {g}")
        return "\n".join(lines)

    __repr__ = __str__

    def _lines(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = [("f", self.value)]
        for name, g in self.grads.items():
            n = latex_name(name)
            if isinstance(g, tuple):  # hessian blocks
                out += [(rf"\frac{{\partial^2 f}}{{\partial {n}\, \partial "
                         rf"{latex_name(sub)}}}", h) for sub, h in zip(self.grads, g)]
            elif self.kind == "hessian":
                out.append((rf"\frac{{\partial^2 f}}{{\partial {n}^2}}", g))
            else:
                out.append((rf"\frac{{\partial f}}{{\partial {n}}}", g))
        return out

    def to_latex(self) -> str:
        r"""The formulas as one ``aligned`` LaTeX block (valid KaTeX)."""
        rows = [f"{lhs} &= {latex(e)}" for lhs, e in self._lines()]
        return r"\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}"

    def _repr_latex_(self) -> str:
        return "$$" + self.to_latex() + "$$"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def formula(fn: ArrayFunction, *example_args: Any, argnums: Argnums | None = None) -> Formula:
    """Trace ``fn`` on inputs shaped like ``example_args``; return its expression and
    derivatives (by every argument unless ``argnums`` says otherwise).

    >>> import numpy as np, matdiff as md
    >>> print(md.formula(lambda x: md.sum(x * x), np.ones(3)))
    f = sum(x²)
    df/dx = 2x
    """
    if not example_args:
        raise TracingError("formula needs example arguments (arrays) to trace with")
    if argnums is None:
        argnums = tuple(range(len(example_args)))
    kind = "jacobian"
    return Transformed(fn, argnums, kind).formula(*example_args)
