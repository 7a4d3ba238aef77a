"""The page's examples menu: the paper's worked examples, the Matrix Cookbook's usual
identities, logistic regression and an MLP layer.

Each is a request to :func:`matdiff.web.api.respond` (``expr``, ``shapes``, ``wrt``,
...) with a title, a group and its source.  :func:`available` keeps those that the
installed matdiff reads: an example that needs a part of the language still being
added (stacking ``[a, b]``, symmetric shapes) appears once matdiff parses it, and
the tests check that every example shown derives and passes its check.

>>> [e["id"] for e in available()][:2]
['paper-1', 'paper-2']
"""

from __future__ import annotations

from typing import Any

#: the shapes of a vector, a matrix and a scalar, as the page sends them
_V: list[str] = ["n"]
_M: list[str] = ["n", "n"]
_S: list[str] = []

#: the menu, in order; ``needs`` says what part of the language an example uses
#: beyond the basics (it is shown only where matdiff parses it)
EXAMPLES: list[dict[str, Any]] = [
    # ---- the paper (Parr & Howard), worked examples 1-10 (shared/paper/SUMMARY.md)
    {"id": "paper-1", "group": "paper", "title": "1. f(x, y) = 3x²y: ∇f = [6yx, 3x²]",
     "expr": "3*x**2*y", "shapes": {"x": _S, "y": _S}, "wrt": ["x", "y"]},
    {"id": "paper-2", "group": "paper", "title": "2. g(x, y) = 2x + y⁸: ∇g = [2, 8y⁷]",
     "expr": "2*x + y**8", "shapes": {"x": _S, "y": _S}, "wrt": ["x", "y"]},
    {"id": "paper-2-jacobian", "group": "paper",
     "title": "2. the Jacobian of [f, g]: [[6yx, 3x²], [2, 8y⁷]]",
     "expr": "[3*x**2*y, 2*x + y**8]", "shapes": {"x": _S, "y": _S}, "wrt": ["x", "y"],
     "needs": "stacking"},
    {"id": "paper-3", "group": "paper", "title": "3. the identity: ∂x/∂x = I",
     "expr": "x", "shapes": {"x": _V}, "wrt": ["x"]},
    {"id": "paper-4-product", "group": "paper",
     "title": "4. element-wise product w ⊗ x: diag(x), diag(w)",
     "expr": "w * x", "shapes": {"w": _V, "x": _V}, "wrt": ["w", "x"]},
    {"id": "paper-4-quotient", "group": "paper",
     "title": "4. element-wise quotient w ⊘ x: diag(1 ⊘ x), diag(−w ⊘ x²)",
     "expr": "w / x", "shapes": {"w": _V, "x": _V}, "wrt": ["w", "x"], "style": "paper"},
    {"id": "paper-5", "group": "paper", "title": "5. scalar expansion x z: I z and x",
     "expr": "x * z", "shapes": {"x": _V, "z": _S}, "wrt": ["x", "z"]},
    {"id": "paper-6", "group": "paper", "title": "6. sum reduction: ∂sum(x z)/∂z = sum(x)",
     "expr": "sum(x * z)", "shapes": {"x": _V, "z": _S}, "wrt": ["x", "z"]},
    {"id": "paper-7", "group": "paper",
     "title": "7. chain rule: y = [ln(x²), sin(3x)], dy/dx = [2/x, 3cos(3x)]ᵀ",
     "expr": "[log(x**2), sin(3*x)]", "shapes": {"x": _S}, "wrt": ["x"],
     "needs": "stacking"},
    {"id": "paper-7-total", "group": "paper",
     "title": "7. total derivative: f(x) = x + x², df/dx = 1 + 2x",
     "expr": "x + x**2", "shapes": {"x": _S}, "wrt": ["x"]},
    {"id": "paper-8", "group": "paper", "title": "8. dot product: ∂(w·x)/∂w = xᵀ",
     "expr": "sum(w * x)", "shapes": {"w": _V, "x": _V}, "wrt": ["w", "x"],
     "layout": "numerator", "explain": True},
    {"id": "paper-9", "group": "paper", "title": "9. a neuron: max(0, w·x + b)",
     "expr": "max(0, dot(w, x) + b)", "shapes": {"w": _V, "x": _V, "b": _S},
     "wrt": ["w", "b"], "explain": True},
    {"id": "paper-10", "group": "paper",
     "title": "10. the neuron's loss: mean((y − max(0, Xw + b))²)",
     "expr": "mean((y - max(0, X @ w + b))**2)",
     "shapes": {"X": ["N", "n"], "w": ["n"], "y": ["N"], "b": []}, "wrt": ["w", "b"],
     "explain": True},
    # ---- the Matrix Cookbook (Petersen & Pedersen), section 2: the usual identities
    {"id": "cookbook-69", "group": "cookbook", "title": "∂(aᵀx)/∂x = a  (eq. 69)",
     "expr": "a @ x", "shapes": {"a": _V, "x": _V}, "wrt": ["x"]},
    {"id": "cookbook-81", "group": "cookbook", "title": "∂(xᵀBx)/∂x = (B + Bᵀ)x  (eq. 81)",
     "expr": "x @ B @ x", "shapes": {"x": _V, "B": _M}, "wrt": ["x"]},
    {"id": "cookbook-70", "group": "cookbook", "title": "∂(aᵀXb)/∂X = abᵀ  (eq. 70)",
     "expr": "a @ X @ b", "shapes": {"a": ["m"], "X": ["m", "n"], "b": ["n"]},
     "wrt": ["X"]},
    {"id": "cookbook-100", "group": "cookbook", "title": "∂tr(AX)/∂X = Aᵀ  (eq. 100)",
     "expr": "tr(A @ X)", "shapes": {"A": _M, "X": _M}, "wrt": ["X"]},
    {"id": "cookbook-117", "group": "cookbook",
     "title": "∂tr(XᵀBX)/∂X = BX + BᵀX  (eq. 117)",
     "expr": "tr(X.T @ B @ X)", "shapes": {"X": _M, "B": _M}, "wrt": ["X"]},
    {"id": "cookbook-49", "group": "cookbook", "title": "∂det(X)/∂X = det(X)X⁻ᵀ  (eq. 49)",
     "expr": "det(X)", "shapes": {"X": _M}, "wrt": ["X"]},
    {"id": "cookbook-57", "group": "cookbook", "title": "∂log det(X)/∂X = X⁻ᵀ  (eq. 57)",
     "expr": "logdet(X)", "shapes": {"X": _M}, "wrt": ["X"]},
    {"id": "cookbook-61", "group": "cookbook",
     "title": "∂(aᵀX⁻¹b)/∂X = −X⁻ᵀabᵀX⁻ᵀ  (eq. 61)",
     "expr": "a @ inv(X) @ b", "shapes": {"a": _V, "X": _M, "b": _V}, "wrt": ["X"]},
    {"id": "cookbook-84", "group": "cookbook",
     "title": "∂‖Ax − b‖²/∂x = 2Aᵀ(Ax − b)  (least squares)",
     "expr": "norm2(A @ x - b)**2", "shapes": {"A": ["m", "n"], "x": ["n"], "b": ["m"]},
     "wrt": ["x"]},
    {"id": "cookbook-symmetric", "group": "cookbook",
     "title": "∂log det(S)/∂S = S⁻¹, S symmetric", "expr": "logdet(S)",
     "shapes": {"S": ["n", "n", "symmetric"]}, "wrt": ["S"], "needs": "symmetric shapes"},
    {"id": "mc-quadratic", "group": "cookbook",
     "title": "matrixcalculus.org's input: x'*A*x", "expr": "x'*A*x",
     "syntax": "matrixcalculus", "shapes": {}, "wrt": ["x", "A"]},
    # ---- deep learning
    {"id": "logistic", "group": "deep learning",
     "title": "logistic regression: sum(log(1 + exp(−y ⊙ Xw)))",
     "expr": "sum(log(1 + exp(-y * (X @ w))))",
     "shapes": {"X": ["N", "n"], "w": ["n"], "y": ["N"]}, "wrt": ["w"]},
    {"id": "logistic-hessian", "group": "deep learning",
     "title": "logistic regression's Hessian", "expr": "sum(log(1 + exp(-y * (X @ w))))",
     "shapes": {"X": ["N", "n"], "w": ["n"], "y": ["N"]}, "wrt": ["w"], "hessian": True},
    {"id": "mlp-layer", "group": "deep learning",
     "title": "an MLP layer: relu(Wx + b)", "expr": "relu(W @ x + b)",
     "shapes": {"W": ["m", "n"], "x": ["n"], "b": ["m"]}, "wrt": ["W", "x", "b"]},
    {"id": "mlp-loss", "group": "deep learning",
     "title": "a two-layer MLP's squared loss",
     "expr": "sum((V @ relu(W @ x + b) + c - y)**2)",
     "shapes": {"V": ["k", "m"], "W": ["m", "n"], "x": ["n"], "b": ["m"], "c": ["k"],
                "y": ["k"]}, "wrt": ["W", "b"]},
    {"id": "softmax-ce", "group": "deep learning",
     "title": "softmax cross-entropy: logsumexp(Wx) − yᵀWx",
     "expr": "logsumexp(W @ x) - y @ (W @ x)",
     "shapes": {"W": ["k", "n"], "x": ["n"], "y": ["k"]}, "wrt": ["W"]},
]

_cache: list[dict[str, Any]] | None = None


def _reads(example: dict[str, Any]) -> bool:
    from ..errors import MatdiffError
    from ..parse import parse
    from .api import RequestError, validate

    try:
        validate(request_of(example))
    except RequestError:
        return False
    shapes = {n: tuple(d) for n, d in example.get("shapes", {}).items()}
    try:
        parse(example["expr"], shapes=shapes or None,
              syntax=example.get("syntax", "numpy"))
    except (MatdiffError, TypeError, ValueError):
        return False
    return True


def available() -> list[dict[str, Any]]:
    """The examples the installed matdiff parses, in the menu's order."""
    global _cache
    if _cache is None:
        _cache = [e for e in EXAMPLES if _reads(e)]
    return list(_cache)


def request_of(example: dict[str, Any]) -> dict[str, Any]:
    """The example as a request to ``POST /api/derive``."""
    keys = ("expr", "shapes", "wrt", "syntax", "hessian", "layout", "style", "explain")
    return {k: example[k] for k in keys if k in example}
