"""The table of element-wise functions: one row per function.

A row gives the NumPy implementation, the partial derivative by each argument as
an expression (element-wise, so the Jacobian is the paper's ``diag(g'(x))``), how
the function prints, and the input domain on which it is smooth (used by
:func:`matdiff.check` to draw values, and by the tests).

Conventions at non-differentiable points follow the paper and PyTorch:
``relu'(0) = 0``, ``abs'(0) = sign(0) = 0``, ``step' = sign' = 0`` everywhere, and a
tie of ``max(a, b)`` or ``min(a, b)`` splits the derivative evenly (½ to each side).
``step(x)`` is 1 for ``x > 0`` and 0 otherwise (so ``step(0) = 0``).

Adding a function is adding one row to :data:`FUNCTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .core import Expr

__all__ = ["Elementwise", "FUNCTIONS"]


@dataclass(frozen=True)
class Elementwise:
    """One element-wise function of the language."""

    name: str
    arity: int
    numpy: Callable[..., np.ndarray]
    #: one rule per argument: ``rule(*args, out=node) -> Expr`` of the node's shape
    derivs: tuple[Callable[..., Expr], ...]
    #: open interval of inputs where the function is smooth (for random checks)
    domain: tuple[float, float] = (-2.0, 2.0)
    unicode: str = ""
    latex: str = ""

    def __post_init__(self) -> None:
        if len(self.derivs) != self.arity:
            raise ValueError(f"{self.name}: one derivative rule per argument")


def _b():
    from . import builders

    return builders


def _zero(*args: Expr, out: Expr) -> Expr:
    return _b().zeros_like(out)


def _step(a: np.ndarray) -> np.ndarray:
    return (np.asarray(a) > 0).astype(np.float64)


def _sigmoid(a: np.ndarray) -> np.ndarray:
    # σ(a) = exp(−softplus(−a)): no overflow for large |a|.
    return np.exp(-np.logaddexp(0.0, -np.asarray(a, dtype=np.float64)))


def _pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.power(np.asarray(a, dtype=np.float64), b)


def _rows() -> list[Elementwise]:
    B = _b()
    E = Elementwise
    return [
        # d exp(a) = exp(a)
        E("exp", 1, np.exp, (lambda a, out: out,), unicode="exp", latex=r"\exp"),
        # d log(a) = 1/a
        E("log", 1, np.log, (lambda a, out: B.power(a, -1),), (0.2, 3.0),
          "log", r"\log"),
        E("sin", 1, np.sin, (lambda a, out: B.cos(a),), unicode="sin", latex=r"\sin"),
        E("cos", 1, np.cos, (lambda a, out: -B.sin(a),), unicode="cos", latex=r"\cos"),
        # d tan(a) = 1/cos²(a)
        E("tan", 1, np.tan, (lambda a, out: B.power(B.cos(a), -2),), (-1.2, 1.2),
          "tan", r"\tan"),
        # d arcsin(a) = (1 − a²)^(−½)
        E("arcsin", 1, np.arcsin, (lambda a, out: B.power(1 - a * a, -0.5),), (-0.9, 0.9),
          "arcsin", r"\arcsin"),
        E("arccos", 1, np.arccos, (lambda a, out: -B.power(1 - a * a, -0.5),), (-0.9, 0.9),
          "arccos", r"\arccos"),
        # d arctan(a) = 1/(1 + a²)
        E("arctan", 1, np.arctan, (lambda a, out: B.power(1 + a * a, -1),),
          unicode="arctan", latex=r"\arctan"),
        E("sinh", 1, np.sinh, (lambda a, out: B.cosh(a),), unicode="sinh", latex=r"\sinh"),
        E("cosh", 1, np.cosh, (lambda a, out: B.sinh(a),), unicode="cosh", latex=r"\cosh"),
        # d tanh(a) = 1 − tanh²(a)
        E("tanh", 1, np.tanh, (lambda a, out: 1 - out * out,), unicode="tanh",
          latex=r"\tanh"),
        # d √a = 1/(2√a)
        E("sqrt", 1, np.sqrt, (lambda a, out: 0.5 * B.power(out, -1),), (0.2, 3.0),
          "√", r"\sqrt"),
        # d |a| = sign(a), with abs'(0) = 0
        E("abs", 1, np.abs, (lambda a, out: B.sign(a),), unicode="abs",
          latex=r"\operatorname{abs}"),
        E("sign", 1, np.sign, (_zero,), unicode="sign", latex=r"\operatorname{sign}"),
        # relu(a) = max(0, a); d relu = step(a), so relu'(0) = 0 (the paper, PyTorch)
        E("relu", 1, lambda a: np.maximum(a, 0.0), (lambda a, out: B.step(a),),
          unicode="relu", latex=r"\operatorname{relu}"),
        E("step", 1, _step, (_zero,), unicode="step", latex=r"\operatorname{step}"),
        # d σ(a) = σ(a)(1 − σ(a))
        E("sigmoid", 1, _sigmoid, (lambda a, out: out * (1 - out),), (-4.0, 4.0),
          "σ", r"\sigma"),
        # softplus(a) = log(1 + exp(a)); d softplus = σ(a)
        E("softplus", 1, lambda a: np.logaddexp(0.0, a), (lambda a, out: B.sigmoid(a),),
          (-4.0, 4.0), "softplus", r"\operatorname{softplus}"),
        # a^b:  ∂/∂a = b a^(b−1),  ∂/∂b = a^b log a  (a > 0 for a variable exponent)
        E("pow", 2, _pow,
          (lambda a, b, out: b * B.power(a, b - 1), lambda a, b, out: out * B.log(a)),
          (0.2, 3.0), "^", "^"),
        # max(a, b) = (a + b + |a − b|)/2:  ∂/∂a = (1 + sign(a − b))/2, ½ at a tie
        E("max", 2, np.maximum,
          (lambda a, b, out: 0.5 + 0.5 * B.sign(a - b),
           lambda a, b, out: 0.5 - 0.5 * B.sign(a - b)),
          unicode="max", latex=r"\max"),
        E("min", 2, np.minimum,
          (lambda a, b, out: 0.5 - 0.5 * B.sign(a - b),
           lambda a, b, out: 0.5 + 0.5 * B.sign(a - b)),
          unicode="min", latex=r"\min"),
    ]


class _Table(dict):
    """Filled on first use, so rules may refer to the builders."""

    def _fill(self) -> None:
        if not dict.__len__(self):
            for row in _rows():
                dict.__setitem__(self, row.name, row)

    def __getitem__(self, key: str) -> Elementwise:
        self._fill()
        return dict.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        self._fill()
        return dict.__contains__(self, key)

    def __iter__(self):
        self._fill()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._fill()
        return dict.__len__(self)

    def keys(self):
        self._fill()
        return dict.keys(self)

    def values(self):
        self._fill()
        return dict.values(self)

    def items(self):
        self._fill()
        return dict.items(self)


#: name -> :class:`Elementwise`, every element-wise function of the language
FUNCTIONS: dict[str, Elementwise] = _Table()
