"""matdiff: the matrix calculus you need for deep learning.

>>> import matdiff as md
>>> g = md.derive("x @ A @ x", "x", shapes={"x": ("n",), "A": ("n", "n")})
>>> g.shape
('n',)
"""

from typing import Any

from . import nn, optim
from .check import CheckResult, check, random_values
from .compile import Compiled, Diagonal, Structured, compile  # noqa: A004
from .compile.evaluate import evaluate
from .define import DefinitionError, define_function
from .derive import Derivative, derive
from .errors import (
    EvaluationError,
    LimitError,
    MatdiffError,
    NotationWarning,
    ParseError,
    ShapeError,
    UnknownFunctionError,
    UnknownVariableError,
)
from .explain import Derivation, explain
from .expr import *  # noqa: F401,F403
from .expr import __all__ as _expr_all
from .parse import parse
from .render import ChoiceError, latex, to_index, to_text

__version__ = "0.1.0"

__all__ = [
    "parse", "derive", "Derivative", "hessian", "evaluate", "check", "CheckResult", "random_values",
    "MatdiffError", "ParseError", "ShapeError", "UnknownFunctionError",
    "UnknownVariableError", "EvaluationError", "LimitError", "NotationWarning", *_expr_all,
    "compile", "Compiled", "value_and_grad", "Diagonal", "Structured",
    "explain", "Derivation", "latex", "to_text", "to_index", "ChoiceError",
    "define_function", "DefinitionError",
]
__all__ += ["nn", "optim"]

from .expr.core import provide as _provide  # noqa: E402

# a derivative result explains itself (md.derive(f, x).explain()): the service comes
# from above, the derive layer does not import explain
_provide("explain", explain)

from . import transforms  # noqa: E402
from .transforms import Formula, TracingError, formula, grad, jacobian  # noqa: E402

# ``hessian`` and ``value_and_grad`` take an expression (the symbolic layers) or a
# Python function (a JAX-style transform, matdiff.transforms): the choice is made
# here, above both, so that neither layer imports the other.


def _is_function(f: object) -> bool:
    from .expr.core import Expr

    return callable(f) and not isinstance(f, (Expr, str))


def hessian(f: Any, wrt: Any = None, shapes: Any = None, syntax: str = "numpy", *,
            argnums: Any = None) -> Any:
    """The Hessian of an expression (:func:`matdiff.derive.reverse.hessian`:
    ``derive(derive(f, wrt), wrt)``), or of a Python function of arrays
    (:func:`matdiff.transforms.hessian`, like ``jax.hessian``; ``argnums``).

    >>> import matdiff as md
    >>> md.hessian("x @ A @ x", "x", shapes={"x": ("n",), "A": ("n", "n")}).shape
    ('n', 'n')
    """
    from .derive.reverse import hessian as _symbolic

    if _is_function(f):
        return transforms.hessian(f, argnums=argnums if argnums is not None
                                  else (0 if wrt is None else wrt))
    return _symbolic(f, wrt, shapes, syntax)


def value_and_grad(f: Any, wrt: Any = None, backend: str = "numpy", structured: bool = False,
                   shapes: Any = None, *, argnums: Any = None) -> Any:
    """A compiled ``(value, derivatives)`` of an expression
    (:func:`matdiff.compile.api.value_and_grad`), or of a Python function of arrays
    (:func:`matdiff.transforms.value_and_grad`, like ``jax.value_and_grad``)."""
    from .compile.api import value_and_grad as _symbolic

    if _is_function(f):
        return transforms.value_and_grad(f, argnums=argnums if argnums is not None
                                         else (0 if wrt is None else wrt))
    return _symbolic(f, wrt, backend, structured, shapes)

__all__ += ["transforms", "grad", "jacobian", "formula", "Formula", "TracingError"]
