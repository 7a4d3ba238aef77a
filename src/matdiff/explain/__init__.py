"""Step-by-step derivations the paper's way, in English and Chinese.

``explain`` (:mod:`.build`) finds the steps (:mod:`.steps`) and returns a
:class:`Derivation` (:mod:`.derivation`), written out as text, Markdown or LaTeX by
:mod:`.formats`; every formula in it is printed by matdiff's printer (:mod:`.formulas`).
A step that is a product holding the variable in several factors, or a matrix
function, is also explained through its differential (:mod:`.differentials`).

>>> import matdiff as md
>>> d = md.explain("sum(w * x)", "w", shapes={"w": ("n",), "x": ("n",)})
>>> print(d.chain_text())
∂y/∂w = ∂y/∂u ∂u/∂w = 𝟏ᵀ diag(x) = xᵀ
"""

from .build import explain
from .derivation import Derivation, LocalDerivative, Step
from .differentials import Differential
from .lang import LANGUAGES, UnknownLanguageError
from .transliterate import to_latex_math

__all__ = ["explain", "Derivation", "Step", "LocalDerivative", "Differential", "to_latex_math",
           "LANGUAGES", "UnknownLanguageError"]
