"""Expressions: the core nodes, the definitions of the functions and the builders."""

from .builders import *  # noqa: F401,F403
from .builders import __all__ as _builders_all
from .core import (
    Add,
    Call,
    Const,
    Delta,
    Einsum,
    Expr,
    Map,
    Size,
    Var,
)
from .functions import FUNCTIONS
from .matrix_functions import MATRIX_FUNCTIONS
from .selection import Concat, Take

__all__ = [
    "Expr", "Var", "Const", "Size", "Delta", "Einsum", "Add", "Map", "Call", "Concat", "Take",
    "FUNCTIONS",
    "MATRIX_FUNCTIONS", *_builders_all,
]
