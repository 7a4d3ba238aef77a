"""The constants that simplification makes: zeros, and what a constant made out of
variables remembers of them."""

from __future__ import annotations

from collections.abc import Sequence

from ..core import Const, Expr, context_of, remember_context


def zeros(shape: Sequence) -> Const:
    return Const(0.0, tuple(shape))


def keep_context(result: Const, inputs: Sequence[Expr]) -> Const:
    """A constant that simplification made out of variables (``x − x = 0``) remembers
    them, so that evaluation can still bind its named dims from their values."""
    if any(isinstance(d, str) for d in result.shape):
        ctx: dict = {}
        for e in inputs:
            ctx.update(context_of(e))
            ctx.update(e.variables())
        if ctx:
            remember_context(result, ctx)
    return result
