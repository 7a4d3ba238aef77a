"""Errors of :mod:`matdiff.nn` and :mod:`matdiff.optim` (all :class:`MatdiffError`)."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import MatdiffError

__all__ = ["NNError", "UnknownNameError", "DataError", "NonFiniteLossError"]


class NNError(MatdiffError, ValueError):
    """Bad input to a model, loss, optimizer or the training loop."""


class UnknownNameError(NNError, KeyError):
    """An activation, loss or optimizer name that does not exist (lists the valid ones)."""

    def __init__(self, kind: str, name: object, valid: Iterable[str]) -> None:
        valid = sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(valid)}")
        self.kind, self.name, self.valid = kind, name, valid

    def __str__(self) -> str:  # KeyError would repr() the message
        return MatdiffError.__str__(self)


class DataError(NNError):
    """Arrays of the wrong shape or dtype, non-finite values, labels out of range."""


class NonFiniteLossError(NNError, FloatingPointError):
    """The loss became NaN or infinite during training (names the epoch and step)."""

    def __init__(self, message: str, epoch: int | None = None, step: int | None = None):
        super().__init__(message)
        self.epoch, self.step = epoch, step
