"""The constants that simplification makes."""

from __future__ import annotations

from collections.abc import Sequence

from ..core import Const


def zeros(shape: Sequence) -> Const:
    """The zero constant of ``shape``."""
    return Const(0.0, tuple(shape))
