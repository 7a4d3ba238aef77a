"""Expressions: the core nodes, the function table and the builders."""

from .builders import *  # noqa: F401,F403
from .builders import __all__ as _builders_all
from .core import (
    Add,
    Const,
    Delta,
    Det,
    Einsum,
    Expr,
    Inv,
    LogDet,
    LogSumExp,
    Map,
    Size,
    Softmax,
    Var,
)
from .functions import FUNCTIONS

__all__ = [
    "Expr", "Var", "Const", "Size", "Delta", "Einsum", "Add", "Map", "Inv", "Det",
    "LogDet", "LogSumExp", "Softmax", "FUNCTIONS", *_builders_all,
]
