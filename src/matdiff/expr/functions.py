"""The element-wise functions: one definition (one row) per function.

A row is everything matdiff knows of one function: its name and arity, its NumPy,
JAX and PyTorch implementations, the partial derivative by each argument as an
expression (element-wise, so the Jacobian is the paper's ``diag(g'(x))``), its
Unicode, LaTeX and matrixcalculus.org spellings, the input domain on which it is
smooth (used by :func:`matdiff.check` to draw values, and by the meta-test), and the
wording of its Jacobian's cases in a derivation (English and Chinese).  The parser,
the builders (``md.exp``), the backends, the printers and the explanations read the
rows; none of them names a function.  :func:`define_function` adds a row, for a
user's own function as for a built-in.

Conventions at non-differentiable points follow the paper and PyTorch:
``relu'(0) = 0``, ``abs'(0) = sign(0) = 0``, ``step' = sign' = 0`` everywhere, and a
tie of ``max(a, b)`` or ``min(a, b)`` splits the derivative evenly (½ to each side).
``step(x)`` is 1 for ``x > 0`` and 0 otherwise (so ``step(0) = 0``).

The activations of deep learning are defined as ``torch.nn.functional`` defines them,
defaults included (``leaky_relu(x)`` is ``leaky_relu(x, 0.01)``, ``elu(x)`` is
``elu(x, 1.0)``, ``gelu`` is the exact ``x Φ(x)``, torch's default ``approximate="none"``;
JAX's ``jax.nn.gelu`` defaults to the tanh approximation, and its ``gelu(x,
approximate=False)`` is this one).  At their kinks they follow PyTorch's autograd:
``leaky_relu'(0) = a`` (the negative side's slope: torch's backward is ``a`` unless
``x > 0``; JAX's ``jax.grad`` gives 1 there), ``elu'(0) = a`` (torch and JAX agree) and
``elu''(0) = 0`` (torch's double backward; JAX gives ``a``).  ``softsign`` is smooth
once: its second derivative ``−2 sign(x)/(1 + |x|)³`` is 0 at 0.  Every one is
computed without overflow for large ``|x|`` on every backend: ``log_sigmoid(x) =
−softplus(−x)``, σ through ``softplus``, ``elu`` evaluates ``expm1`` only at
``min(x, 0)``.

``erf`` is built in, and GELU's ``Φ`` is the built-in ``normal_cdf`` (printed ``Φ``).
The public contract's example of a user's own function restates ``erf`` with
``md.define_function("erf", ...)``: a definition of a built-in's name is accepted when
it agrees with the built-in (``matdiff.define``), and never replaces it.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .core import Expr

__all__ = ["Elementwise", "FUNCTIONS", "register", "unregister", "implementation", "version"]

#: an implementation: a callable, or the dotted path of one ("torch.sin"), imported on
#: first use so that the row costs nothing where that library is missing
Impl = Callable[..., Any] | str | None


@dataclass(frozen=True)
class Elementwise:
    """One element-wise function of the language."""

    name: str
    arity: int
    numpy: Callable[..., np.ndarray]
    #: one rule per argument: ``rule(*args, out=node) -> Expr`` of the node's shape
    derivs: tuple[Callable[..., Expr], ...]
    #: open interval of inputs where the function is smooth, for random test points
    #: (matdiff.check, the meta-test); a definition without one fails the meta-test
    domain: tuple[float, float] | None = None
    #: the printed name in Unicode ("" prints the name); with ``prefix``, an operator
    #: written before its argument (``√x``)
    unicode: str = ""
    #: the LaTeX command ("" is ``\operatorname{name}``); ``latex_wrap`` instead
    #: encloses the argument (``\sqrt{…}``, ``\lvert … \rvert``)
    latex: str = ""
    jax: Impl = None
    torch: Impl = None
    #: whether matrixcalculus.org's language has the function under this name
    mc: bool = False
    #: a line for the parser's list of functions
    doc: str = ""
    #: the cases of the Jacobian, per language, for a piecewise function (``{d}`` is
    #: the derivative, ``{z}`` the argument, ``{a}``, ``{b}`` the two arguments)
    notes: Mapping[str, str] = field(default_factory=dict)
    prefix: bool = False
    latex_wrap: tuple[str, str] | None = None
    #: whether the language has it as a call ``name(...)`` (``pow`` is the operator ``**``)
    call: bool = True
    #: the builder in :mod:`matdiff.expr.builders` that makes it, where one has rules
    #: of its own (``maximum``: ``max(0, z)`` is ``relu(z)``); else one is made
    build: str = ""
    builtin: bool = True
    #: the paper's spelling, where it writes the function as another with leading
    #: constant arguments: ``("max", (0.0,))`` writes ``relu(z)`` as ``max(0, z)``
    paper: tuple[str, tuple[float, ...]] | None = None
    #: other names the parser reads it by (the paper writes ``ln`` for ``log``); it
    #: always prints by its own name
    aliases: tuple[str, ...] = ()
    #: the values of the trailing arguments where a call leaves them out, as in
    #: PyTorch (``leaky_relu(x)`` is ``leaky_relu(x, 0.01)``): the builder and the
    #: parser take ``arity - len(defaults)`` to ``arity`` arguments
    defaults: tuple[float, ...] = ()
    #: for a piecewise function, the quantity whose sign tells the piece, from the
    #: arguments' NumPy values (``md.check`` draws points until each sign is seen);
    #: ``None``: the argument, or ``a − b`` for two (``max(a, b)``)
    kink: Callable[..., np.ndarray] | None = None
    #: a scalar form that Numba compiles, where the NumPy form is not a cheap ufunc
    #: and fusing it into element-wise kernels pays (:mod:`matdiff.compile.fuse`)
    scalar: Callable[..., float] | None = None

    def __post_init__(self) -> None:
        if len(self.derivs) != self.arity:
            raise ValueError(f"{self.name}: one derivative rule per argument")
        if len(self.defaults) >= max(self.arity, 1):
            raise ValueError(f"{self.name}: defaults for the trailing arguments only")

    def kink_of(self, *args: np.ndarray) -> np.ndarray:
        """The quantity whose sign tells which piece ``args`` are on (see ``kink``)."""
        if self.kink is not None:
            return np.asarray(self.kink(*args))
        return np.asarray(args[0] - args[1] if len(args) > 1 else args[0])

    def impl(self, backend: str) -> Callable[..., Any] | None:
        """The implementation for ``backend`` ("numpy", "jax", "torch"), imported if
        given by path; ``None`` where the definition has none."""
        return implementation(self, backend)


def implementation(row: Any, backend: str) -> Callable[..., Any] | None:
    """``row``'s implementation for ``backend``, a dotted path imported; ``row`` is a
    definition with ``numpy``, ``jax`` and ``torch`` fields (an :class:`Elementwise`
    or a matrix function's)."""
    impl = row.numpy if backend == "numpy" else getattr(row, backend, None)
    if isinstance(impl, str):
        module, _, attr = impl.rpartition(".")
        impl = getattr(importlib.import_module(module), attr)
    return impl


def _b():
    from . import builders

    return builders


def _zero(*args: Expr, out: Expr) -> Expr:
    return _b().zeros_like(out)


def as_float(a: Any) -> np.ndarray:
    """``a`` as an array of floats in its own precision (float32 stays float32;
    integers, booleans and Python numbers become float64)."""
    a = np.asarray(a)
    return a if a.dtype.kind == "f" else a.astype(np.float64)


def _step(a: np.ndarray) -> np.ndarray:
    a = as_float(a)
    return (a > 0).astype(a.dtype)


def _step_scalar(a: float) -> float:
    return 1.0 if a > 0.0 else 0.0


def _relu_scalar(a: float) -> float:
    return np.maximum(a, 0.0)  # nan stays nan, as in np.maximum


def _jax_step(a: Any) -> Any:
    import jax.numpy as jnp

    return jnp.where(a > 0, 1.0, 0.0)


def _torch_step(a: Any) -> Any:
    return (a > 0).to(a.dtype)


def _sigmoid(a: np.ndarray) -> np.ndarray:
    # σ(a) = exp(−softplus(−a)): no overflow for large |a|.
    return np.exp(-_softplus(-as_float(a)))


try:  # SciPy's σ is one pass over the array (and as stable)
    from scipy.special import expit as _fast_sigmoid
except ImportError:  # pragma: no cover - scipy is optional
    _fast_sigmoid = _sigmoid


def _softplus(a: np.ndarray) -> np.ndarray:
    # log(1 + eᵃ) = max(a, 0) + log(1 + e^(−|a|)): the exponential is at most 1, so
    # nothing overflows, and log1p keeps e^(−|a|) ≪ 1 exact.  The same value as
    # np.logaddexp(0, a) to an ulp, 5–9x faster (53 against 281 µs at n = 10⁴,
    # float64; NumPy's logaddexp is not vectorised)
    a = as_float(a)
    return np.maximum(a, 0) + np.log1p(np.exp(-np.abs(a)))


def _relu(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0.0)


def _jax_relu(a: Any) -> Any:
    import jax.numpy as jnp

    return jnp.maximum(a, 0.0)


def _first(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # the kink of leaky_relu(x, a) and elu(x, a) is at x = 0, whatever a is
    return np.asarray(a)


_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _ndtr_erfc(a: np.ndarray) -> np.ndarray:
    """Φ without SciPy: ``erfc(−a/√2)/2`` (erfc, not ``1 + erf``, keeps the lower
    tail's precision), vectorised over ``math.erfc``."""
    return 0.5 * _erfc(-as_float(a) / math.sqrt(2.0))


try:  # SciPy's Φ: one pass over the array, as accurate in the tails
    from scipy.special import ndtr as _ndtr
except ImportError:  # pragma: no cover - scipy is optional
    _ndtr = _ndtr_erfc

_erf_scalar = np.vectorize(math.erf, otypes=[np.float64])


def _erf_math(a: np.ndarray) -> np.ndarray:
    """erf without SciPy, vectorised over ``math.erf``."""
    return _erf_scalar(as_float(a))


try:  # SciPy's erf: one pass over the array
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover - scipy is optional
    _erf = _erf_math

#: 2/√π, erf's derivative at 0
_TWO_OVER_SQRT_PI = 1.1283791670955126


#: 1/√(2π), the normal density's constant
_INV_SQRT_2PI = 0.3989422804014327


def _normal_pdf(a: Expr) -> Expr:
    # φ(a) = exp(−a²/2)/√(2π): exp of a non-positive number, never overflows
    return _INV_SQRT_2PI * _b().exp(-0.5 * a * a)


def _gelu(a: np.ndarray) -> np.ndarray:
    a = as_float(a)
    return a * _ndtr(a)


def _jax_gelu(a: Any) -> Any:
    import jax

    return jax.nn.gelu(a, approximate=False)  # JAX's default is the tanh approximation


def _silu(a: np.ndarray) -> np.ndarray:
    a = as_float(a)
    return a * _fast_sigmoid(a)


def _log_sigmoid(a: np.ndarray) -> np.ndarray:
    # log σ(a) = −softplus(−a) = −log(1 + exp(−a)): no overflow
    return -_softplus(-as_float(a))


def _softsign(a: np.ndarray) -> np.ndarray:
    a = as_float(a)
    return a / (1.0 + np.abs(a))


def _leaky_relu(a: np.ndarray, s: np.ndarray) -> np.ndarray:
    a = as_float(a)
    return np.where(a > 0, a, s * a)


def _torch_leaky_relu(a: Any, s: Any) -> Any:
    import torch

    return torch.where(a > 0, a, s * a)


def _elu(a: np.ndarray, s: np.ndarray) -> np.ndarray:
    # a where a > 0, s(exp(a) − 1) where a ≤ 0: expm1 of min(a, 0) only, so no exp
    # overflows and no precision is lost near 0
    a = as_float(a)
    return np.where(a > 0, a, s * np.expm1(np.minimum(a, 0.0)))


def _jax_elu(a: Any, s: Any) -> Any:
    import jax.numpy as jnp

    return jnp.where(a > 0, a, s * jnp.expm1(jnp.minimum(a, 0.0)))


def _torch_elu(a: Any, s: Any) -> Any:
    import torch

    return torch.where(a > 0, a, s * torch.expm1(torch.clamp(a, max=0.0)))


def _pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.power(as_float(a), b)


#: the test interval of a function smooth everywhere (its kinks, if any, at 0)
_R = (-2.0, 2.0)

_STEP_NOTE = {"en": "{d}: 1 where {z} > 0, 0 where {z} ≤ 0",
              "zh": "{d}：当 {z} > 0 时为 1，当 {z} ≤ 0 时为 0"}
_ZERO_NOTE = {"en": "{d}: 0 everywhere (0 also at {z} = 0 by convention)",
              "zh": "{d}：处处为 0（按约定在 {z} = 0 处也为 0）"}


def _unary(name: str, numpy: Callable, deriv: Callable, domain: tuple[float, float], *,
           jax: Impl = None, torch: Impl = None, latex: str = "", **kw: Any) -> Elementwise:
    """A row of one argument; JAX and PyTorch default to ``jax.numpy.<name>`` and
    ``torch.<name>``, LaTeX to the standard command ``\\<name>``; matrixcalculus
    syntax has every built-in function of one argument."""
    kw.setdefault("mc", True)
    return Elementwise(name, 1, numpy, (deriv,), domain, jax=jax or f"jax.numpy.{name}",
                       torch=torch or f"torch.{name}", latex=latex or "\\" + name, **kw)


def _rows() -> list[Elementwise]:
    B = _b()
    E = Elementwise
    U = _unary
    return [
        # d exp(a) = exp(a)
        U("exp", np.exp, lambda a, out: out, _R, doc="exponential"),
        # d log(a) = 1/a
        U("log", np.log, lambda a, out: B.power(a, -1), (0.2, 3.0),
          doc="natural logarithm (also ln)", aliases=("ln",)),
        U("sin", np.sin, lambda a, out: B.cos(a), _R, doc="sine"),
        U("cos", np.cos, lambda a, out: -B.sin(a), _R, doc="cosine"),
        # d tan(a) = 1/cos²(a)
        U("tan", np.tan, lambda a, out: B.power(B.cos(a), -2), (-1.2, 1.2),
          doc="tangent"),
        # d arcsin(a) = (1 − a²)^(−½)
        U("arcsin", np.arcsin, lambda a, out: B.power(1 - a * a, -0.5), (-0.9, 0.9),
          torch="torch.asin", doc="inverse sine"),
        U("arccos", np.arccos, lambda a, out: -B.power(1 - a * a, -0.5), (-0.9, 0.9),
          torch="torch.acos", doc="inverse cosine"),
        # d arctan(a) = 1/(1 + a²)
        U("arctan", np.arctan, lambda a, out: B.power(1 + a * a, -1), _R, torch="torch.atan",
          doc="inverse tangent"),
        U("sinh", np.sinh, lambda a, out: B.cosh(a), _R, doc="hyperbolic sine"),
        U("cosh", np.cosh, lambda a, out: B.sinh(a), _R, doc="hyperbolic cosine"),
        # d tanh(a) = 1 − tanh²(a)
        U("tanh", np.tanh, lambda a, out: 1 - out * out, _R, doc="hyperbolic tangent"),
        # d √a = 1/(2√a)
        U("sqrt", np.sqrt, lambda a, out: 0.5 * B.power(out, -1), (0.2, 3.0), unicode="√",
          prefix=True, latex_wrap=("\\sqrt{", "}"), doc="square root"),
        # d |a| = sign(a), with abs'(0) = 0
        U("abs", np.abs, lambda a, out: B.sign(a), _R, latex="\\operatorname{abs}",
          latex_wrap=("\\lvert ", " \\rvert"), doc="absolute value",
          notes={"en": "{d}: 1 where {z} > 0, −1 where {z} < 0, 0 where {z} = 0",
                 "zh": "{d}：当 {z} > 0 时为 1，当 {z} < 0 时为 −1，当 {z} = 0 时为 0"}),
        U("sign", np.sign, _zero, _R, latex="\\operatorname{sign}",
          doc="sign: −1, 0 or 1", notes=_ZERO_NOTE),
        # relu(a) = max(0, a); d relu = step(a), so relu'(0) = 0 (the paper, PyTorch)
        U("relu", _relu, lambda a, out: B.step(a), _R, jax=_jax_relu, torch="torch.relu",
          latex="\\operatorname{relu}", doc="max(0, x), the paper's ReLU",
          notes=_STEP_NOTE, paper=("max", (0.0,)), scalar=_relu_scalar),
        U("step", _step, _zero, _R, jax=_jax_step, torch=_torch_step,
          latex="\\operatorname{step}", doc="1 where x > 0, else 0 (relu's derivative)",
          notes=_ZERO_NOTE, scalar=_step_scalar),
        # d σ(a) = σ(a)(1 − σ(a))
        U("sigmoid", _fast_sigmoid, lambda a, out: out * (1 - out), (-4.0, 4.0),
          jax="jax.nn.sigmoid", torch="torch.sigmoid", unicode="σ", latex="\\sigma",
          doc="logistic sigmoid 1/(1 + exp(−x))"),
        # softplus(a) = log(1 + exp(a)); d softplus = σ(a)
        U("softplus", _softplus, lambda a, out: B.sigmoid(a), (-4.0, 4.0),
          jax="jax.nn.softplus", torch="torch.nn.functional.softplus",
          latex="\\operatorname{softplus}", doc="log(1 + exp(x)), computed stably"),
        # ---- the activations of deep learning, as torch.nn.functional defines them
        # Φ(a), the standard normal CDF; d Φ(a) = φ(a) = exp(−a²/2)/√(2π)
        U("normal_cdf", _ndtr, lambda a, out: _normal_pdf(a), (-3.0, 3.0),
          jax="jax.scipy.special.ndtr", torch="torch.special.ndtr", unicode="Φ",
          latex="\\Phi", doc="Φ(x), the standard normal CDF (GELU's Φ)"),
        # erf(a) = (2/√π) ∫₀ᵃ exp(−t²) dt; d erf(a) = (2/√π) exp(−a²)
        U("erf", _erf, lambda a, out: _TWO_OVER_SQRT_PI * B.exp(-(a * a)), (-2.0, 2.0),
          jax="jax.scipy.special.erf", torch="torch.special.erf",
          latex="\\operatorname{erf}", doc="the error function (2/√π)∫₀ˣ exp(−t²) dt"),
        # gelu(a) = a Φ(a) (exact: torch's approximate="none");
        # d gelu = Φ(a) + a φ(a)
        U("gelu", _gelu, lambda a, out: B.normal_cdf(a) + a * _normal_pdf(a), (-3.0, 3.0),
          jax=_jax_gelu, torch="torch.nn.functional.gelu", latex="\\operatorname{GELU}",
          doc="x Φ(x), the exact GELU (torch's default)"),
        # silu(a) = a σ(a); d silu = σ(a) + a σ(a) σ(−a)  (σ' = σ(1 − σ), 1 − σ(a) = σ(−a),
        # which keeps its precision where σ(a) is near 1)
        U("silu", _silu, lambda a, out: B.sigmoid(a) + a * B.sigmoid(a) * B.sigmoid(-a),
          (-4.0, 4.0), jax="jax.nn.silu", torch="torch.nn.functional.silu",
          latex="\\operatorname{SiLU}", doc="x σ(x), the SiLU (swish)"),
        # log_sigmoid(a) = log σ(a) = −softplus(−a); d log σ(a) = 1 − σ(a) = σ(−a)
        U("log_sigmoid", _log_sigmoid, lambda a, out: B.sigmoid(-a), (-4.0, 4.0),
          jax="jax.nn.log_sigmoid", torch="torch.nn.functional.logsigmoid",
          latex="\\log\\sigma", doc="log σ(x) = −softplus(−x), computed stably"),
        # softsign(a) = a/(1 + |a|); d softsign = 1/(1 + |a|)²  (smooth once: the second
        # derivative −2 sign(a)/(1 + |a|)³ jumps at 0)
        U("softsign", _softsign, lambda a, out: B.power(1 + B.abs(a), -2), _R,
          jax="jax.nn.soft_sign", torch="torch.nn.functional.softsign",
          latex="\\operatorname{softsign}", doc="x/(1 + |x|)"),
        # leaky_relu(a, s) = a where a > 0, s a where a ≤ 0 (s the negative slope,
        # default 0.01):  ∂/∂a = step(a) + s(1 − step(a)), so leaky_relu'(0) = s
        # (PyTorch's autograd);  ∂/∂s = a(1 − step(a)) = min(a, 0)
        E("leaky_relu", 2, _leaky_relu,
          (lambda a, s, out: B.step(a) + s * (1 - B.step(a)),
           lambda a, s, out: a * (1 - B.step(a))), _R,
          latex="\\operatorname{LeakyReLU}", jax="jax.nn.leaky_relu",
          torch=_torch_leaky_relu, defaults=(0.01,), kink=_first,
          doc="leaky_relu(x, a): x where x > 0, a·x elsewhere (a = 0.01 if left out)",
          notes={"en": "{d}: by {a}, 1 where {a} > 0, {b} where {a} ≤ 0",
                 "zh": "{d}：对 {a} 而言，当 {a} > 0 时为 1，当 {a} ≤ 0 时为 {b}"}),
        # elu(a, s) = a where a > 0, s(exp(a) − 1) where a ≤ 0 (s is alpha, default 1):
        # ∂/∂a = step(a) + s(1 − step(a)) exp(min(a, 0)), so elu'(0) = s and, as
        # exp(min(a, 0)) = exp(−relu(−a)) has derivative step(−a) exp(...), elu''(0) = 0
        # (both PyTorch's autograd);  ∂/∂s = exp(min(a, 0)) − 1  (0 where a > 0)
        E("elu", 2, _elu,
          (lambda a, s, out: B.step(a) + s * (1 - B.step(a)) * B.exp(B.minimum(a, 0.0)),
           lambda a, s, out: B.exp(B.minimum(a, 0.0)) - 1), _R,
          latex="\\operatorname{ELU}", jax=_jax_elu, torch=_torch_elu, defaults=(1.0,),
          kink=_first,
          doc="elu(x, a): x where x > 0, a(exp(x) − 1) elsewhere (a = 1 if left out)",
          notes={"en": "{d}: by {a}, 1 where {a} > 0, {b}·exp({a}) where {a} ≤ 0",
                 "zh": "{d}：对 {a} 而言，当 {a} > 0 时为 1，当 {a} ≤ 0 时为 {b}·exp({a})"}),
        # a^b:  ∂/∂a = b a^(b−1),  ∂/∂b = a^b log a  (a > 0 for a variable exponent)
        E("pow", 2, _pow,
          (lambda a, b, out: b * B.power(a, b - 1), lambda a, b, out: out * B.log(a)),
          (0.2, 3.0), "^", "^", jax="jax.numpy.power", torch="torch.pow", call=False,
          build="power"),
        # max(a, b) = (a + b + |a − b|)/2:  ∂/∂a = (1 + sign(a − b))/2, ½ at a tie
        E("max", 2, np.maximum,
          (lambda a, b, out: 0.5 + 0.5 * B.sign(a - b),
           lambda a, b, out: 0.5 - 0.5 * B.sign(a - b)), _R,
          unicode="max", latex="\\max", jax="jax.numpy.maximum", torch="torch.maximum",
          build="maximum", doc="maximum; max(0, z) is relu(z)",
          notes={"en": "{d}: by {a}, 1 where {a} > {b}, 0 where {a} < {b}, ½ at a tie",
                 "zh": "{d}：对 {a} 而言，当 {a} > {b} 时为 1，当 {a} < {b} 时为 0，相等时为 ½"}),
        E("min", 2, np.minimum,
          (lambda a, b, out: 0.5 - 0.5 * B.sign(a - b),
           lambda a, b, out: 0.5 + 0.5 * B.sign(a - b)), _R,
          unicode="min", latex="\\min", jax="jax.numpy.minimum", torch="torch.minimum",
          build="minimum", doc="minimum",
          notes={"en": "{d}: by {a}, 1 where {a} < {b}, 0 where {a} > {b}, ½ at a tie",
                 "zh": "{d}：对 {a} 而言，当 {a} < {b} 时为 1，当 {a} > {b} 时为 0，相等时为 ½"}),
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

    def get(self, key: str, default: Any = None) -> Any:
        self._fill()
        return dict.get(self, key, default)

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


_VERSION = [0]


def version() -> int:
    """How many functions were added after the built-ins (backends cache their tables
    and bring them up to date when this changes)."""
    return _VERSION[0]


def register(row: Elementwise) -> Elementwise:
    """Add ``row`` to :data:`FUNCTIONS` (see :func:`matdiff.define_function`, which
    checks the name first)."""
    FUNCTIONS._fill()  # type: ignore[attr-defined]
    dict.__setitem__(FUNCTIONS, row.name, row)
    _VERSION[0] += 1
    return row


def unregister(name: str) -> None:
    """Remove a function that :func:`register` added (tests restore the table)."""
    if FUNCTIONS[name].builtin:
        raise ValueError(f"{name} is built in")
    dict.__delitem__(FUNCTIONS, name)
    _VERSION[0] += 1
