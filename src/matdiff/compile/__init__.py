"""Evaluation and code generation (NumPy, JAX, PyTorch)."""

from ..expr import core as _core
from . import evaluate as _evaluate
from .api import Compiled, compile, value_and_grad  # noqa: A004 - md.compile
from .evaluate import evaluate, interpret
from .structured import Diagonal, Structured

__all__ = ["evaluate", "interpret", "compile", "Compiled", "value_and_grad", "Diagonal",
           "Structured"]

# evaluation, for e.evaluate(...) and the interpreter's products
_core.provide("evaluate", _evaluate.evaluate)
_core.provide("merge_values", _evaluate.merge_values)
_core.provide("contract", _evaluate.contract)
