"""ASCII output for terminals that cannot encode matdiff's Unicode.

The command writes Unicode (``xᵀ(A + Aᵀ)``, ``∂f/∂x``, ``⊙``).  Where the terminal's
encoding cannot hold it (an ASCII locale, ``PYTHONIOENCODING=ascii``, a Windows code
page) or with ``--ascii``, :func:`ascii_stream` wraps the output stream so that what
is written reaches it in ASCII: the symbols of the notation by their usual ASCII
spellings (``x^T``, ``A^-1``, ``x^2``, ``A_ij``, ``d``, ``.*``, ``./``, ``->``),
Greek letters by name, and anything else that has no ASCII form as a ``\\uXXXX``
escape.  It is the encoding of the whole output (prose included), applied where the
text is written, not a printer of formulas: the formulas themselves are printed by
:mod:`matdiff.render.printer`.

>>> to_ascii("∂f/∂x = xᵀ(A + Aᵀ) ⊙ w⁻¹")
'df/dx = x^T(A + A^T) .* w^-1'
>>> to_ascii("(i, j) ↦ Σₖ Aᵢₖ Bₖⱼ")
'(i, j) -> sum_k A_ik B_kj'
>>> to_ascii("2exp(−x²)/√π + x/√(2π) + √2x")
'2exp(-x^2)/sqrt(pi) + x/sqrt(2*pi) + sqrt(2)x'
>>> to_ascii("Xw + b𝟏 + 2𝟏 + 𝟏𝟏ᵀx")
'Xw + b*1 + 2*1 + 1*1^Tx'
"""

from __future__ import annotations

import unicodedata
from typing import Any, TextIO

__all__ = ["to_ascii", "ascii_stream", "needs_ascii"]

_SUPER = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺ᵀⁿⁱᵏ⁽⁾", "0123456789-+Tnik()"))
_SUB = dict(zip("₀₁₂₃₄₅₆₇₈₉ᵢⱼₖₗₘₙₚₐₑₒₓₕₛₜ₊₋₍₎",
                "0123456789ijklmnpaeoxhst+-()"))
_SYMBOLS = {
    "⊙": ".*", "⊘": "./", "⊗": "(x)", "−": "-", "·": "*", "×": "x", "∂": "d",
    "Σ": "sum", "∑": "sum", "↦": "->", "…": "...", "⋯": "...", "√": "sqrt",
    "𝟏": "1", "≤": "<=", "≥": ">=", "≠": "!=", "½": "1/2", "∞": "inf", "→": "->",
    "‖": "||", "⟨": "<", "⟩": ">", "“": '"', "”": '"', "‘": "'", "’": "'", "—": "--",
    "–": "-", "•": "*", "✓": "ok", "✗": "x",
}
#: characters whose encodability tells whether a stream can take matdiff's output
_PROBE = "ᵀ⊙−∂Σ"


def _greek(c: str) -> str | None:
    name = unicodedata.name(c, "")
    if name.startswith("GREEK SMALL LETTER "):
        return name[len("GREEK SMALL LETTER "):].lower()
    if name.startswith("GREEK CAPITAL LETTER "):
        return name[len("GREEK CAPITAL LETTER "):].capitalize()
    return None


def to_ascii(text: str) -> str:
    """``text`` with every character outside ASCII replaced by its ASCII spelling: a
    run of superscripts is one ``^…`` (``x⁻¹²`` is ``x^-12``), a run of subscripts
    one ``_…``."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isascii():
            out.append(c)
            i += 1
            continue
        for table, lead in ((_SUPER, "^"), (_SUB, "_")):
            if c in table:
                j = i
                while j < n and text[j] in table:
                    j += 1
                out.append(lead + "".join(table[ch] for ch in text[i:j]))
                i = j
                break
        else:
            if c == "√":  # √π, √2, √x: sqrt(pi), sqrt(2), sqrt(x); √(…): sqrt(…)
                j = i + 1
                if j < n and _greek(text[j]) is not None:
                    j += 1
                elif j < n and text[j].isascii() and text[j].isdigit():  # √2x is (√2)x
                    while j < n and text[j].isascii() and (text[j].isdigit() or text[j] == "."):
                        j += 1
                else:
                    while j < n and text[j].isascii() and (text[j].isalnum() or text[j] == "_"):
                        j += 1
                out.append("sqrt" if j == i + 1 else "sqrt(" + to_ascii(text[i + 1:j]) + ")")
                i = j
                continue
            word = _char(c)
            if c == "𝟏" and out and (out[-1][-1:].isascii() and out[-1][-1:].isalnum()
                                     or out[-1].endswith(")")):
                word = "*" + word  # b𝟏, 2𝟏, (1/9)𝟏, 𝟏𝟏ᵀ: b*1, 2*1, (1/9)*1, 1*1^T
            if _greek(c) is not None:  # 2π, πx: 2*pi, pi*x (not 2pi, pix)
                if out and out[-1][-1:].isascii() and out[-1][-1:].isalnum():
                    word = "*" + word
                if i + 1 < n and (_greek(text[i + 1]) is not None
                                  or text[i + 1].isascii() and text[i + 1].isalnum()):
                    word += "*"
            out.append(word)
            i += 1
    return "".join(out)


def _char(c: str) -> str:
    if c in _SYMBOLS:
        return _SYMBOLS[c]
    greek = _greek(c)
    if greek is not None:
        return greek
    plain = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
    return plain or f"\\u{ord(c):04x}"


def needs_ascii(stream: Any) -> bool:
    """Whether ``stream`` cannot encode matdiff's Unicode output (its ``encoding``
    rejects the notation's symbols)."""
    encoding = getattr(stream, "encoding", None)
    if not encoding:
        return False
    try:
        _PROBE.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return True
    return False


class _AsciiStream:
    """A text stream that writes :func:`to_ascii` of what it is given."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(to_ascii(text))

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def ascii_stream(stream: Any, force: bool = False) -> Any:
    """``stream``, or a wrapper that writes ASCII where ``force`` or where the stream
    cannot encode matdiff's Unicode (:func:`needs_ascii`)."""
    if force or needs_ascii(stream):
        return _AsciiStream(stream)
    return stream
