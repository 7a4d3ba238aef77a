"""Step-by-step derivations the paper's way, in English and Chinese.

>>> import matdiff as md
>>> d = md.explain("sum(w * x)", "w", shapes={"w": ("n",), "x": ("n",)})
>>> print(d.chain_text())
∂y/∂w = ∂y/∂u ∂u/∂w = 1ᵀ diag(x) = xᵀ
"""

from .derivation import Derivation, LocalDerivative, Step, explain, to_latex_math
from .lang import LANGUAGES, UnknownLanguageError

__all__ = ["explain", "Derivation", "Step", "LocalDerivative", "to_latex_math",
           "LANGUAGES", "UnknownLanguageError"]
