"""The constants that simplification makes."""

from __future__ import annotations

from collections.abc import Sequence

from ..core import Const, Dim


def zeros(shape: Sequence[Dim]) -> Const:
    """The zero constant of ``shape``."""
    return Const(0.0, tuple(shape))
