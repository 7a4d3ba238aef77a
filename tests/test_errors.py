"""Bad input to the Python API: each mistake gets its own clear error (issue 2)."""

import numpy as np
import pytest

import matdiff as md


@pytest.fixture
def xa():
    return md.vector("x", "n"), md.matrix("A", "n", "n")


def test_shape_mismatch_matmul_names_both_sides():
    x, B = md.vector("x", "n"), md.matrix("B", "m", "m")
    with pytest.raises(md.ShapeError) as e:
        B @ x
    msg = str(e.value)
    assert "(m, m)" in msg and "(n,)" in msg


def test_shape_mismatch_broadcast_names_both_sides():
    with pytest.raises(md.ShapeError) as e:
        md.vector("x", "n") + md.vector("y", "m")
    assert "(n,)" in str(e.value) and "(m,)" in str(e.value)


def test_matmul_of_scalar_suggests_star():
    with pytest.raises(md.ShapeError, match=r"use '\*'"):
        md.scalar("s") @ md.vector("x", "n")


def test_square_matrix_required():
    C = md.matrix("C", "m", "n")
    for fn in (md.tr, md.det, md.logdet, md.inv):
        with pytest.raises(md.ShapeError, match="square"):
            fn(C)


def test_unknown_variable_in_wrt_lists_the_variables(xa):
    x, A = xa
    with pytest.raises(md.UnknownVariableError) as e:
        md.derive(x @ A @ x, "xx")
    msg = str(e.value)
    assert "'xx'" in msg and "A, x" in msg and "did you mean x" in msg


def test_wrt_must_be_a_variable(xa):
    x, A = xa
    with pytest.raises(TypeError):
        md.derive(x @ A @ x, A @ x)


def test_missing_value_at_evaluation(xa):
    x, A = xa
    with pytest.raises(md.EvaluationError, match=r"missing value\(s\) for A"):
        (x @ A @ x).evaluate(x=np.ones(3))


def test_wrong_rank_at_evaluation(xa):
    x, A = xa
    with pytest.raises(md.EvaluationError, match="value of A has shape"):
        (x @ A @ x).evaluate(x=np.ones(3), A=np.ones(3))


def test_inconsistent_dims_at_evaluation(xa):
    x, A = xa
    pattern = r"dim n is [34] in the value of [xA] but [34] in the value of [xA]"
    with pytest.raises(md.EvaluationError, match=pattern):
        (x @ A @ x).evaluate(x=np.ones(3), A=np.ones((4, 4)))


def test_fixed_int_dim_checked():
    x = md.var("x", 3)
    with pytest.raises(md.EvaluationError):
        md.sum(x).evaluate(x=np.ones(4))


def test_non_numeric_value():
    x = md.vector("x", "n")
    with pytest.raises(md.EvaluationError, match="not an array of numbers"):
        md.sum(x).evaluate(x=["a", "b"])


def test_non_finite_values_propagate_like_numpy():
    x = md.vector("x", "n")
    with np.errstate(all="ignore"):
        v = md.log(x).evaluate(x=np.array([-1.0, 0.0, np.inf, np.nan]))
        g = md.derive(md.sum(md.log(x)), x).evaluate(x=np.array([0.0, np.inf, 2.0]))
    assert np.isnan(v[0]) and v[1] == -np.inf and v[2] == np.inf and np.isnan(v[3])
    assert g[0] == np.inf and g[1] == 0.0 and g[2] == 0.5


def test_python_truth_value_is_refused(xa):
    x, _ = xa
    with pytest.raises(TypeError, match="symbolic"):
        if md.sum(x) > 0:  # noqa: SIM108 - the mistake under test
            pass


def test_bad_names_and_dims():
    with pytest.raises(md.ShapeError):
        md.var("1x")
    with pytest.raises(md.ShapeError):
        md.var("x", -1)
    with pytest.raises(md.ShapeError):
        md.var("x", "n m")
    with pytest.raises(TypeError):
        md.vector("x", "n") + "y"


def test_deep_python_built_expressions_do_not_hit_recursion_limit():
    x = md.vector("x", "n")
    e = x
    for _ in range(5000):
        e = md.sin(e) + x
    g = md.derive(md.sum(e), x)
    assert g.evaluate(x=np.zeros(2)).shape == (2,)
    assert isinstance(str(g), str)


def test_derivative_by_absent_variable_needs_a_dim_size_to_evaluate():
    x, q = md.vector("x", "n"), md.vector("q", "k")
    g = md.derive(md.sum(x), q)
    assert g.shape == ("k",)
    with pytest.raises(md.EvaluationError, match="dim"):
        g.evaluate(x=np.ones(2))
    assert np.array_equal(md.evaluate(g, {"x": np.ones(2)}, dims={"k": 3}), np.zeros(3))
