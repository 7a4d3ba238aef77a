"""Placeholder printer (replaced below)."""
from ..expr.core import Expr


def to_text(e: Expr) -> str:
    return f"<{e.kind}>"
