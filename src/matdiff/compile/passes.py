"""Passes over the generated lines, once the whole body is known.

Each pass reads and rewrites :class:`~.lines.Line` records by their fields (the name a
line assigns, the names its expression reads, whether its value is a fresh array),
never the source text.  :func:`finish` runs them in order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from .lines import Code, Line

__all__ = ["drop_dead", "steal_copies", "finish", "read_counts"]


def read_counts(lines: Sequence[Line], rets: Sequence[Code]) -> Counter:
    """How many times each name is read, by the lines and by the returned outputs."""
    counts: Counter = Counter()
    for ln in lines:
        counts.update(ln.value.reads)
    for r in rets:
        counts.update(r.reads)
    return counts


def drop_dead(lines: Sequence[Line], rets: Sequence[Code]) -> list[Line]:
    """``lines`` without those whose value nothing returned depends on (a negation
    that a sum subtracted instead, a planning step taken another way, a deferred
    inverse that every product used through a solve).

    Liveness, from the last line up: a line is live when a live line or an output
    reads its target."""
    live = {n for r in rets for n in r.reads}
    kept = []
    for ln in reversed(lines):
        if ln.target in live:
            kept.append(ln)
            live.update(ln.value.reads)
    return kept[::-1]


def steal_copies(lines: Sequence[Line], rets: Sequence[Code]) -> list[Line]:
    """A sum's accumulator copy of an array is dropped, and the array is made under
    the accumulator's name, where writing into it is safe: ``diag(s) − s sᵀ`` adds
    ``s`` into the outer product in place rather than into an n × n copy of it.

    The aliasing rule: an array may be written in place only where no other line
    (and no output) reads it, and only an array that its own line made fresh (the
    value of an arithmetic operator) is known to be nobody else's: an input, or a
    view such as a transpose, is another array's memory.  A sum copies its dense
    term (:meth:`~.generator.Generator.add_structured`) because at that time later
    lines are unknown; here the copy goes when it is the array's only reader.  Run
    it after :func:`drop_dead`, so that a dead line's read does not count.

    Renaming the array's own line is safe: no line reads the array but the copy,
    and no line before the copy reads the accumulator."""
    counts = read_counts(lines, rets)
    fresh = {ln.target for ln in lines if ln.value.fresh}
    into = {ln.copy_of: ln.target for ln in lines
            if ln.copy_of in fresh and counts[ln.copy_of] == 1}
    out = []
    for ln in lines:
        if ln.target in into:  # the array, made as the accumulator
            out.append(Line(into[ln.target], ln.value, ln.comment))
        elif ln.copy_of not in into:  # (the copy itself is dropped)
            out.append(ln)
    return out


def finish(lines: Sequence[Line], rets: Sequence[Code]) -> list[Line]:
    """The body's passes in order: dead lines out, then copies stolen."""
    return steal_copies(drop_dead(lines, rets), rets)
