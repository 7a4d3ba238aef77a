"""matdiff: the matrix calculus you need for deep learning.

>>> import matdiff as md
>>> g = md.derive("x @ A @ x", "x", shapes={"x": ("n",), "A": ("n", "n")})
>>> g.shape
('n',)
"""

from . import nn, optim
from .check import CheckResult, check, random_values
from .compile import Compiled, Diagonal, Structured, compile, value_and_grad  # noqa: A004
from .compile.evaluate import evaluate
from .define import DefinitionError, define_function
from .derive import derive, hessian
from .errors import (
    EvaluationError,
    LimitError,
    MatdiffError,
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
    "parse", "derive", "hessian", "evaluate", "check", "CheckResult", "random_values",
    "MatdiffError", "ParseError", "ShapeError", "UnknownFunctionError",
    "UnknownVariableError", "EvaluationError", "LimitError", *_expr_all,
    "compile", "Compiled", "value_and_grad", "Diagonal", "Structured",
    "explain", "Derivation", "latex", "to_text", "to_index", "ChoiceError",
    "define_function", "DefinitionError",
]
__all__ += ["nn", "optim"]

from . import transforms  # noqa: E402
from .transforms import Formula, TracingError, formula, grad, jacobian  # noqa: E402

__all__ += ["transforms", "grad", "jacobian", "formula", "Formula", "TracingError"]
