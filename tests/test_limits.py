"""Texts at the parser's limits parse and print, with the right values (issue 10, part 6).

These tests are not timed (benchmarks/limits.py measures time against size); they
check that the largest inputs give the right answers, without RecursionError, and
that the faster algorithms give what the plain definitions give.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

import matdiff as md
from matdiff.parse import MAX_DEPTH, MAX_LENGTH
from matdiff.parse.infer import _assignments, rank_preferences
from matdiff.render.mform import matrix_form, to_numpy
from matdiff.render.text import MAX_CHARS


def _printed_value(e: md.Expr, values: dict, dims: dict | None = None) -> np.ndarray:
    """The value of the printed formula: its matrix form evaluated by matrix algebra,
    independently of ``Expr.evaluate``."""
    return to_numpy(matrix_form(e), values, dims)


# ---------------------------------------------------------------- parsing
def test_a_difference_chain_at_the_length_limit_parses_to_its_value():
    n = (MAX_LENGTH + 1) // 2  # x-x-…-x with n terms: 2n - 1 characters
    text = "-".join(["x"] * n)
    assert len(text) <= MAX_LENGTH
    f = md.parse(text, shapes={"x": ()})
    # x − (n − 1)x = (2 − n)x
    assert str(f) == f"−{n - 2}x"
    assert float(f.evaluate(x=2.0)) == 2.0 * (2 - n)
    with pytest.raises(md.LimitError):
        md.parse(text + "-x-x", shapes={"x": ()})


def test_a_long_sum_of_distinct_terms_keeps_every_term():
    n = 5000
    f = md.parse("-".join(f"x{i}" for i in range(n)), shapes={f"x{i}": () for i in range(n)})
    vals = {f"x{i}": float(i % 7) for i in range(n)}
    assert float(f.evaluate(vals)) == sum(
        (1.0 if i == 0 else -1.0) * (i % 7) for i in range(n))


def test_a_long_sum_reports_a_shape_error_under_the_term_that_breaks_it():
    text = "+".join(["x"] * 40) + "+A"
    with pytest.raises(md.ShapeError) as err:
        md.parse(text, shapes={"x": ("n",), "A": ("m", "k")})
    assert "do not broadcast for '+'" in str(err.value)
    assert err.value.spans[-1] == (len(text) - 1, len(text))


def test_nesting_at_the_depth_limit_parses_and_one_more_level_is_a_limit_error():
    deep = "(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH
    assert str(md.parse(deep, shapes={"x": ()})) == "x"
    with pytest.raises(md.LimitError):
        md.parse("(" + deep + ")", shapes={"x": ()})


def _tower(levels: int) -> str:
    return "**".join(["x"] * levels)


def test_the_deepest_power_tower_parses_and_its_hessian_prints():
    levels = MAX_DEPTH + 1  # each exponent nests one level
    f = md.parse(_tower(levels), shapes={"x": ()})
    with pytest.raises(md.LimitError):
        md.parse(_tower(levels + 1), shapes={"x": ()})
    h = md.hessian(f, "x")
    text = str(h)
    assert not text.startswith("<")  # not the fallback of a failed printout
    assert len(text) <= MAX_CHARS + 3 and "…" in text
    assert md.latex(h)


@pytest.mark.parametrize("levels", [3, 12, 40, MAX_DEPTH + 1])
def test_the_printed_hessian_of_a_power_tower_has_its_value(levels):
    h = md.hessian(md.parse(_tower(levels), shapes={"x": ()}), "x")
    got = _printed_value(h, {"x": 1.05})
    assert np.isfinite(got)
    assert np.allclose(got, h.evaluate(x=1.05), rtol=1e-9)


# ---------------------------------------------------------------- matrixcalculus syntax
def test_a_long_matrixcalculus_sum_with_a_row_vector_is_a_shape_error():
    n = 2000
    text = "+".join(f"x{i}" for i in range(n)) + "+x0'"
    with pytest.raises(md.ShapeError) as err:
        md.parse(text, syntax="matrixcalculus")
    assert "row vector" in str(err.value)
    ok = md.parse(text[:-4], syntax="matrixcalculus")
    assert set(ok.variables().values()) == {("n",)}


def _assignments_by_definition(prefs: list[dict[int, int]]) -> list[tuple[int, ...]]:
    """Every assignment, sorted by (total cost, the costs negated variable by variable):
    the order the search promises, computed the plain way."""
    options = [sorted(p.items(), key=lambda rc: rc[1]) for p in prefs]
    choices = itertools.product(*[range(len(o)) for o in options])

    def key(choice):
        costs = [options[i][k][1] for i, k in enumerate(choice)]
        return (sum(costs), tuple(-c for c in costs))

    return [tuple(options[i][k][0] for i, k in enumerate(c)) for c in sorted(choices, key=key)]


def test_rank_assignments_come_in_the_order_of_their_definition():
    rng = random.Random(10)
    hints = ["scalar", "matrix", "transposed"]
    for _ in range(60):
        names = [rng.choice("abxyAB") for _ in range(rng.randint(0, 7))]
        prefs = [rank_preferences(n, set(rng.sample(hints, rng.randint(0, 2)))) for n in names]
        assert list(_assignments(prefs)) == _assignments_by_definition(prefs)


def test_rank_assignments_of_many_variables_start_cheapest_first():
    prefs = [rank_preferences(f"x{i}", set()) for i in range(3000)]
    first = list(itertools.islice(_assignments(prefs), 4))
    assert first[0] == (1,) * 3000  # every variable a vector
    # then one variable a scalar (cost 1), the earliest first
    assert [c.index(0) for c in first[1:]] == [0, 1, 2]
    assert all(c.count(0) == 1 for c in first[1:])


# ---------------------------------------------------------------- printing
def test_a_long_product_of_scalars_prints_every_factor_without_parentheses():
    n = 40
    f = md.parse("*".join(f"x{i}" for i in range(n)), shapes={f"x{i}": () for i in range(n)})
    text = str(f)
    assert "(" not in text
    assert sorted(text.split()) == sorted(f"x{i}" for i in range(n))
    vals = {f"x{i}": 1.0 + i / 100 for i in range(n)}
    assert np.isclose(_printed_value(f, vals), f.evaluate(vals), rtol=1e-12)


def test_long_products_with_quotients_print_formulas_with_their_values():
    rng = random.Random(3)
    shapes = {f"a{i}": () for i in range(60)} | {"x": ("n",), "A": ("n", "n")}
    vals = {f"a{i}": 0.5 + rng.random() for i in range(60)}
    vals |= {"x": np.array([0.3, -1.2, 2.0]), "A": np.arange(9.0).reshape(3, 3) / 7}
    for _ in range(12):
        factors = [rng.choice(["a%d", "1/a%d", "a%d**2", "sin(a%d)", "(a%d+1)"])
                   % rng.randrange(60) for _ in range(rng.randint(30, 60))]
        text = "*".join(factors) + rng.choice(["", "*x", "*(A@x)", "*x/a3"])
        f = md.parse(text, shapes=shapes)
        for e in (f, md.derive(f, sorted(f.variables())[0])):
            want = np.asarray(e.evaluate(vals))
            assert np.allclose(_printed_value(e, vals, {"n": 3}), want, rtol=1e-9), text
            assert md.latex(e) and md.to_index(e)


def test_the_derivative_of_a_product_of_a_thousand_sums_prints_with_its_value():
    # ∂/∂x Π (1 + x/i) = Σᵢ (1/i) Π_{j≠i} (1 + x/j): a sum of 1,000 products of 999
    # factors; factoring it out level by level used to be cubic (out of memory)
    n = 1000
    f = md.parse("*".join(f"(1+x/{i})" for i in range(1, n + 1)), shapes={"x": ()})
    g = md.derive(f, "x")
    text = str(g)
    assert not text.startswith("<") and len(text) <= MAX_CHARS + 3
    x = 0.001
    terms = 1 + x / np.arange(1, n + 1)
    want = np.prod(terms) * np.sum((1 / np.arange(1, n + 1)) / terms)
    assert np.isclose(float(g.evaluate(x=x)), want, rtol=1e-9)
    assert np.isclose(_printed_value(g, {"x": x}), want, rtol=1e-9)


def test_a_shared_factor_tie_prints_the_same_whatever_the_memory_holds():
    # the factor taken out first went by set order (by address): abcd, cbad, badc…
    shapes = {"a": (), "b": (), "c": (), "d": (), "x": ("n",), "y": ("n",), "z": ("n",)}
    text = "a*b*c*d*x + c*a*b*d*y + d*c*b*a*z"
    first = str(md.parse(text, shapes=shapes))

    class Filler:
        __slots__ = tuple("abcdefgh")  # the size of a matrix-form node

    for k in (1, 2, 3, 5, 7):
        junk = [Filler() for _ in range(k)]
        assert str(md.parse(text, shapes=shapes)) == first
        del junk
    assert first == "abcd(x + y + z)"


def test_a_long_matrix_product_and_its_derivative_print():
    n = 400
    f = md.parse("@".join(["A"] * n), shapes={"A": ("n", "n")})
    assert str(f) == "A⁴⁰⁰"  # a matrix times itself prints as its power
    A = np.eye(3) + np.arange(9.0).reshape(3, 3) / 100
    assert np.allclose(_printed_value(f, {"A": A}), np.linalg.matrix_power(A, n))
    g = md.derive(f, "A")
    text = str(g)
    assert text.startswith("(i, j, k, l) ↦ ") and len(text) <= MAX_CHARS + 3
