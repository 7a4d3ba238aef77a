"""Errors raised by matdiff.

Every error a user can cause is a :class:`MatdiffError`. Errors about a piece of
text carry the text and the position(s) of the offending part, and their message
draws a caret line under it::

    >>> import matdiff as md
    >>> try:
    ...     md.parse("x + * y", shapes={"x": (), "y": ()})
    ... except md.ParseError as e:
    ...     print(e)
    unexpected '*': expected a number, a name or '('
      x + * y
          ^
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "MatdiffError",
    "ParseError",
    "NotationWarning",
    "ShapeError",
    "UnknownFunctionError",
    "UnknownVariableError",
    "EvaluationError",
    "LimitError",
    "NNError",
    "UnknownNameError",
    "DataError",
    "NonFiniteLossError",
    "caret_lines",
]


def caret_lines(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """The text followed by a line of carets under each ``(start, end)`` span.

    Only the line of ``text`` holding the first span is shown when the text has
    several lines.
    """
    if not spans:
        return ""
    start = min(s for s, _ in spans)
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    if line_end < 0:
        line_end = len(text)
    line = text[line_start:line_end]
    marks = [" "] * (len(line) + 1)
    for s, e in spans:
        s, e = s - line_start, max(e, s + 1) - line_start
        for k in range(max(s, 0), min(e, len(marks))):
            marks[k] = "^"
    return "  " + line + "\n  " + "".join(marks).rstrip()


class MatdiffError(Exception):
    """Base class of every error matdiff raises for bad input."""

    def __init__(self, message: str, text: str | None = None,
                 spans: Sequence[tuple[int, int]] = ()):
        super().__init__(message)
        self.message = message
        self.text = text
        self.spans: list[tuple[int, int]] = list(spans)

    @property
    def position(self) -> int | None:
        """Offset in the text of the first offending character, if known."""
        return self.spans[0][0] if self.spans else None

    def with_text(self, text: str, spans: Sequence[tuple[int, int]]) -> MatdiffError:
        """Attach the source text and offending spans (keeps existing ones)."""
        if self.text is None:
            self.text = text
            self.spans = list(spans)
        return self

    def __str__(self) -> str:
        if self.text is not None and self.spans:
            return self.message + "\n" + caret_lines(self.text, self.spans)
        return self.message


class NotationWarning(UserWarning):
    """A text that parses, but probably not as meant: ``x'*A*x`` in numpy syntax is an
    element-wise product (matrixcalculus.org's input needs ``syntax="matrixcalculus"``)."""


class ParseError(MatdiffError, ValueError):
    """The text is not a well-formed expression."""


class UnknownFunctionError(ParseError):
    """A call names a function the language does not have."""


class ShapeError(MatdiffError, ValueError):
    """Operand shapes do not fit the operation (both sides are named)."""


class UnknownVariableError(MatdiffError, KeyError):
    """A variable named in ``wrt`` or in values is not known."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return MatdiffError.__str__(self)


class EvaluationError(MatdiffError, ValueError):
    """Values given for evaluation are missing or of the wrong shape."""


class LimitError(MatdiffError, ValueError):
    """An expression is past a size or nesting limit."""


# ---------------------------------------------------------------- training
# (matdiff.optim and matdiff.nn raise these; they live here, below both layers)
class NNError(MatdiffError, ValueError):
    """Bad input to a model, loss, optimizer or the training loop."""


class UnknownNameError(NNError, KeyError):
    """An activation, loss or optimizer name that does not exist (lists the valid ones)."""

    kind: str
    name: object
    valid: list[str]

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

    epoch: int | None
    step: int | None


    def __init__(self, message: str, epoch: int | None = None, step: int | None = None):
        super().__init__(message)
        self.epoch, self.step = epoch, step
