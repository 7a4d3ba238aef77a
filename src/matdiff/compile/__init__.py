"""Evaluation and (later) code generation."""

from .evaluate import evaluate

__all__ = ["evaluate"]
