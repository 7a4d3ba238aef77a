"""Symbolic differentiation."""

from .reverse import derive, hessian

__all__ = ["derive", "hessian"]
