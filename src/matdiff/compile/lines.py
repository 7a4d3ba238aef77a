"""Generated code as records: expressions (:class:`Code`) and lines (:class:`Line`).

The generator never handles source text it cannot see into.  Every expression it
writes is a :class:`Code`: its text together with the local names it reads (in
order, with repeats) and whether its value is a fresh array.  Every line is a
:class:`Line`: the name it assigns, its :class:`Code`, a comment, and for a sum's
accumulator the array it copies.  The passes (:mod:`.passes`) work on those fields;
the function's source is written once, from the records, by :func:`function_source`.

Generated code refers only to names it makes itself (``a0`` inputs, ``t3``
temporaries), the backend table ``xp``, numbers written with ``repr(float)``, and
index tuples of ints.  Variable names and dims appear only in comments, and only
after :func:`check_name` / :func:`check_dim_name` accept them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import MatdiffError

__all__ = ["Code", "Line", "name", "number", "num", "fmt", "join", "difference", "function_source",
           "check_name", "check_dim_name"]


@dataclass(slots=True)
class Code:
    """One Python expression of generated code.

    ``text`` is its source; ``reads`` the local names (inputs, temporaries) it reads,
    in order of appearance, with repeats; ``fresh`` whether its outermost operation
    is an arithmetic operator (``a * b``, ``a @ b``, ``a - b``), or the transpose of a
    product (``(b @ a).T``, a view of nothing but that new array): its value is then
    a new array, never a view of an operand, so a line may write into it in place.

    A Code is never changed once made (not frozen only because a frozen dataclass
    is slower to make, and the generator makes thousands).
    """

    text: str
    reads: tuple[str, ...] = ()
    fresh: bool = False

    @property
    def is_name(self) -> bool:
        """Whether the expression is one local name (an input or a temporary)."""
        return self.reads == (self.text,)

    @property
    def operator(self) -> bool:
        """Whether the outermost operation is a binary operator: as an operand of
        another operator it is put in parentheses (calls, attributes, indexing and
        numbers bind tighter than any operator and are not)."""
        return self.fresh


def name(n: str) -> Code:
    """A local name (``a0``, ``t3``) as an expression that reads it."""
    return Code(n, (n,))


def num(v: float) -> str:
    """A float as Python source: ``repr`` for finite values, the table's inf/nan else."""
    v = float(v)
    if math.isnan(v):
        return "xp.nan"
    if math.isinf(v):
        return "xp.inf" if v > 0 else "(-xp.inf)"
    r = repr(v)
    return f"({r})" if v < 0 else r


def number(v: float) -> Code:
    """A float as an expression (it reads no name)."""
    return Code(num(v))


def fmt(template: str, *args: Code | str, fresh: bool = False) -> Code:
    """``template`` with its ``{}`` slots filled: a :class:`Code` argument gives its
    text and its reads, a ``str`` argument is literal text that names nothing (an
    index tuple's ``repr``, an einsum spec).  ``fresh``: see :class:`Code`."""
    texts = []
    reads: tuple[str, ...] = ()
    for a in args:  # a plain loop: this is the generator's innermost call
        if isinstance(a, str):
            texts.append(a)
        else:
            texts.append(a.text)
            reads += a.reads
    return Code(template.format(*texts), reads, fresh)


def join(terms: Sequence[Code], op: str, fresh: bool = True) -> Code:
    """``t1 op t2 op ...``; one term is itself, several are an operator's value
    (``fresh``; ``False`` for a list of arguments, ``op`` being ``", "``)."""
    if len(terms) == 1:
        return terms[0]
    return Code(op.join(t.text for t in terms), tuple(r for t in terms for r in t.reads),
                fresh)


def difference(pos: Sequence[Code], neg: Sequence[Code]) -> Code:
    """``p1 + p2 + ... - n1 - n2 ...`` (``pos`` and ``neg`` not both empty)."""
    text = " + ".join(t.text for t in pos) + "".join(f" - {t.text}" for t in neg)
    return Code(text, tuple(r for t in [*pos, *neg] for r in t.reads), fresh=True)


@dataclass(frozen=True)
class Line:
    """One line ``target = value  # comment`` of the generated function.

    ``copy_of`` is set on the copy a sum makes of its dense term (a temporary or an
    input, named here) before adding a structured term into the copy in place."""

    target: str
    value: Code
    comment: str = ""
    copy_of: str | None = None

    @property
    def text(self) -> str:
        return f"{self.target} = {self.value.text}" + (f"  # {self.comment}"
                                                       if self.comment else "")


def check_name(n: object) -> str:
    """Reject a variable name that is not a plain identifier (it is never emitted as
    code, but a name with quotes, newlines or spaces is a mistake or an attack)."""
    if not isinstance(n, str) or not n or not (n[0].isalpha() or n[0] == "_") \
            or not all(c.isalnum() or c == "_" for c in n) or n.startswith("__"):
        raise MatdiffError(
            f"cannot compile: variable name {n!r} is not a valid name "
            "(letters, digits and '_', not starting with a digit or '__')"
        )
    return n


def check_dim_name(d: object) -> str:
    """Reject a dim name that is not an identifier (it is written in a comment)."""
    if not isinstance(d, str) or not d.isidentifier():
        raise MatdiffError(f"cannot compile: dim name {d!r} is not an identifier")
    return d


def function_source(fname: str, var_code: Mapping[str, str], sizes: Mapping,
                    lines: Sequence[Line], rets: Sequence[Code],
                    read: Mapping[str, str] | None = None) -> str:
    """The source of ``def fname(a0, a1, ...)``: a comment naming each input and the
    dims it was planned for, those it reads from its inputs at run time (``read``:
    dim -> the code reading it), the lines, and ``return`` of the outputs as a
    tuple."""
    read = read or {}
    header = [f"    # {code}: {check_name(var)}" for var, code in var_code.items()]
    if sizes:
        header.append("    # dims: " + ", ".join(f"{check_dim_name(d)}={int(n)}"
                                                 for d, n in sorted(sizes.items())))
    if read:
        header.append("    # read at run time: " + ", ".join(
            f"{d} = {code}" for d, code in sorted(read.items())))
    body = [f"    {ln.text}" for ln in lines]
    ret = "    return (" + ", ".join(r.text for r in rets) + ("," if len(rets) == 1 else "") \
        + ")"
    args = ", ".join(var_code.values())
    return "\n".join([f"def {fname}({args}):", *header, *body, ret]) + "\n"
