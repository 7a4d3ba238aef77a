"""Symbolic differentiation."""

from .result import Derivative
from .reverse import derive, hessian

__all__ = ["derive", "hessian", "Derivative"]
