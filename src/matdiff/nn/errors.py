"""Errors of :mod:`matdiff.nn` and :mod:`matdiff.optim` (all :class:`MatdiffError`),
defined in :mod:`matdiff.errors`, the layer below both."""

from __future__ import annotations

from ..errors import DataError, NNError, NonFiniteLossError, UnknownNameError

__all__ = ["NNError", "UnknownNameError", "DataError", "NonFiniteLossError"]
