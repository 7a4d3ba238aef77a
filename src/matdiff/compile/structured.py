"""Structured results: a Jacobian that is a diagonal (or, more generally, a tensor
whose axes are tied by deltas) kept as the numbers it really has.

``md.compile(..., structured=True)`` returns these for such outputs, so that the
Jacobian of ``tanh(x)`` at ``n = 10,000`` costs 10,000 numbers, not 10⁸.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["Structured", "Diagonal", "make_structured"]


class Structured:
    """A tensor of ``shape`` whose axis ``p`` is indexed by class ``pattern[p]``:
    ``T[i₀, ..., i_r] = core[classes]`` where the axes of one class agree, and 0 where
    they do not.  ``core`` holds one axis per class."""

    __array_priority__ = 20

    def __init__(self, core: Any, pattern: Sequence[int], shape: Sequence[int]) -> None:
        self.core = core
        self.pattern: tuple[int, ...] = tuple(pattern)
        self.shape: tuple[int, ...] = tuple(shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.asarray(self.core).nbytes)

    def toarray(self) -> np.ndarray:
        """The dense array (``shape``), with zeros off the structure."""
        from numpy.lib.stride_tricks import as_strided

        core = np.asarray(self.core)     # its dtype kept (float32 stays float32)
        if core.dtype.kind != "f":
            core = core.astype(np.float64)
        out = np.zeros(self.shape, dtype=core.dtype)
        strides = [0] * core.ndim
        for s, c in zip(out.strides, self.pattern):
            strides[c] += s
        as_strided(out, shape=core.shape, strides=strides)[...] = core
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.toarray()
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, pattern={self.pattern}, " \
            f"core shape={tuple(np.shape(self.core))})"


class Diagonal(Structured):
    """A square diagonal matrix, held as its diagonal (``.diagonal``)."""

    def __init__(self, diagonal: Any) -> None:
        n = int(np.shape(diagonal)[0])
        super().__init__(diagonal, (0, 0), (n, n))

    @property
    def diagonal(self) -> Any:
        return self.core

    def tosparse(self) -> Any:
        """A ``scipy.sparse`` diagonal matrix (needs scipy)."""
        import scipy.sparse as sp

        return sp.diags(np.asarray(self.core, dtype=np.float64)).tocsr()

    def __matmul__(self, other: Any) -> Any:
        d = self.core
        return d[:, None] * other if np.ndim(other) == 2 else d * other

    def __repr__(self) -> str:
        return f"Diagonal(n={self.shape[0]})"


def make_structured(core: Any, pattern: Sequence[int], shape: Sequence[int]) -> Structured:
    if tuple(pattern) == (0, 0):
        return Diagonal(core)
    return Structured(core, pattern, shape)
