"""Unicode matrix notation, as a person types it, turned into LaTeX math.

matdiff's own printouts never pass through here: the printer writes LaTeX itself
(:func:`matdiff.latex`, :meth:`Derivation.to_latex`).  :func:`to_latex_math` is for
texts that exist only as text, a formula a person wrote in Unicode.
"""

from __future__ import annotations

import re

from ..expr.functions import FUNCTIONS
from ..expr.matrix_functions import MATRIX_FUNCTIONS
from ..render.latex import LATEX
from ..render.unicode import UNICODE
from .formats import SUBSCRIPTS, greek, tex_text

__all__ = ["to_latex_math"]

_SUP = {"⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5", "⁶": "6", "⁷": "7",
        "⁸": "8", "⁹": "9", "⁻": "-", "⁺": "+", "ᵀ": r"\top ", "⁽": "(", "⁾": ")",
        "ⁿ": "n", "ⁱ": "i", "ᵏ": "k"}
_SYMBOLS = {"⊗": r"\otimes ", "⊙": r"\odot ", "⊘": r"\oslash ", "·": r"\cdot ",
            "−": "-", "×": r"\times ", "≤": r"\le ", "≥": r"\ge ", "∂": r"\partial ",
            "𝟏": r"\mathbf{1}",
            "↦": r"\mapsto ", "½": r"\tfrac{1}{2}", "Σ": r"\sum ", "∑": r"\sum ",
            "∞": r"\infty ", "…": r"\dots ", "⋯": r"\cdots ", "≠": r"\ne ",
            "{": r"\{", "}": r"\}", "#": r"\#", "$": r"\$", "%": r"\%", "&": r"\&",
            "_": r"\_", "^": r"\hat{}", "\\": r"\backslash ", "~": r"\sim "}
# the words of the notation that are not element-wise functions (those are spelled as
# their definitions say): the calls of the printer's tables (diag tr sum), and the
# matrix functions by their definitions' spellings (det softmax …)
_WORDS = {UNICODE.CALLS[k][0][:-1]: LATEX.CALLS[k][0][:-1] for k in UNICODE.CALLS
          if UNICODE.CALLS[k][0][:-1].isalpha()}
for _fn in MATRIX_FUNCTIONS.values():
    _u, _l = (_fn.spell(f, "\0").split("\0")[0] for f in ("unicode", "latex"))
    if _u.endswith("(") and _u[:-1].isalpha() and _l.endswith("("):
        _WORDS.setdefault(_u[:-1], _l[:-1])


def to_latex_math(s: str) -> str:
    r"""Unicode matrix notation as LaTeX math (KaTeX): ``ᵀ`` -> ``^{\top}``,
    ``⊗`` -> ``\otimes``, sub- and superscripts, ``√``, function names.

    >>> to_latex_math("𝟏ᵀ diag(x)")
    '\\mathbf{1}^{\\top} \\operatorname{diag}(x)'
    >>> to_latex_math("u₁ = x² ⊗ √(y)")
    'u_{1} = x^{2} \\otimes \\sqrt{y}'
    """
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in _SUP:
            j = i
            while j < n and s[j] in _SUP:
                j += 1
            body = "".join(_SUP[ch] for ch in s[i:j]).strip()
            out.append("^{" + body + "}")
            i = j
        elif c in SUBSCRIPTS:
            j = i
            while j < n and s[j] in SUBSCRIPTS:
                j += 1
            out.append("_{" + "".join(SUBSCRIPTS[ch] for ch in s[i:j]) + "}")
            i = j
        elif c == "√":
            j = i + 1
            if j < n and s[j] == "(":
                depth, k = 0, j
                while k < n:
                    if s[k] == "(":
                        depth += 1
                    elif s[k] == ")":
                        depth -= 1
                        if depth == 0:
                            break
                    k += 1
                out.append(r"\sqrt{" + to_latex_math(s[j + 1:k]) + "}")
                i = k + 1
            else:
                k = j
                while k < n and (s[k].isalnum() or s[k] in SUBSCRIPTS or s[k] == "."):
                    k += 1
                out.append(r"\sqrt{" + to_latex_math(s[j:k]) + "}")
                i = k
        elif c.isascii() and c.isalpha():
            j = i
            while j < n and s[j].isascii() and (s[j].isalnum()):
                j += 1
            word = s[i:j]
            row = FUNCTIONS.get(word)
            if row is not None and row.latex.startswith("\\") and row.call:
                cmd = row.latex
                out.append(cmd + ("" if cmd.startswith(r"\operatorname") else " "))
            elif word in _WORDS:
                cmd = _WORDS[word]
                out.append(cmd + ("" if cmd.startswith(r"\operatorname") else " "))
            elif len(word) > 1 and not word.isdigit() and j < n and s[j] == "(":
                out.append(r"\operatorname{" + word + "}")
            else:
                out.append(word)
            i = j
        elif c in _SYMBOLS:
            out.append(_SYMBOLS[c])
            i += 1
        elif c.isascii():
            out.append(c)
            i += 1
        else:
            g = greek(c)
            if g is not None:
                out.append(g)
            elif c.isspace():
                out.append(" ")
            else:
                out.append(r"\text{" + tex_text(c) + "}")
            i += 1
    text = "".join(out)
    text = re.sub(r" +", " ", text).strip()
    # a command followed by a letter needs its space; elsewhere drop spaces before ^ _ }
    text = re.sub(r" (?=[\^_})(,])", "", text)
    return text
