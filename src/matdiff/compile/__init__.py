"""Evaluation and code generation (NumPy, JAX, PyTorch)."""

from .api import Compiled, compile, value_and_grad  # noqa: A004 - md.compile
from .evaluate import evaluate, interpret
from .structured import Diagonal, Structured

__all__ = ["evaluate", "interpret", "compile", "Compiled", "value_and_grad", "Diagonal",
           "Structured"]
