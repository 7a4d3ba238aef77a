"""Misuses of the API and inputs that used to escape as NumPy's, Python's or PyTorch's
own errors (issue 10, parts 3 to 5): every error a user can cause is a MatdiffError,
or a TypeError with a clear message for a wrong Python type.  One test (or one
parametrised row) per case found; each says what the behaviour is and why."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

import matdiff as md
from matdiff import cli
from matdiff.compile.evaluate import interpret

X_SHAPES = {"x": ("n",)}


def _x(text: str = "sum(x)") -> md.Expr:
    return md.parse(text, shapes=X_SHAPES)


def _backends() -> list[str]:
    out = ["numpy"]
    for name in ("jax", "torch"):
        try:
            __import__(name)
        except ImportError:
            continue
        out.append(name)
    return out


def _num(a) -> np.ndarray:
    """An output of any backend as a NumPy array."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


# ------------------------------------------------------- infinite exponents
@pytest.mark.parametrize("p", [np.inf, -np.inf, np.nan])
def test_non_finite_exponent_evaluates_as_numpy_power(p):
    # was OverflowError / ValueError: int(p) of inf or nan in the code generator
    x = md.vector("x", "n")
    x0 = np.array([0.5, 1.0, 2.0])
    with np.errstate(all="ignore"):
        want = np.power(x0, p)
        got = (x ** p).evaluate(x=x0)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(interpret(x ** p, {"x": x0}), want)
        g = md.derive(md.sum(x ** p), x).evaluate(x=x0)  # runs, IEEE values
    assert g.shape == (3,)


@pytest.mark.parametrize("backend", _backends())
def test_infinite_exponent_compiles_on_every_backend(backend):
    x = md.vector("x", "n")
    with np.errstate(all="ignore"):
        out = md.compile(x ** np.inf, backend=backend)(x=np.array([0.5, 1.0, 2.0]))
    np.testing.assert_array_equal(_num(out), [0.0, 1.0, np.inf])


@pytest.mark.parametrize("text", ["x**(10**400)", "x**(1/0)", "x**(1e308*10)"])
def test_overflowing_constant_exponent_in_text(text):
    # 10**400 and 1/0 are beyond float64: x to that power is x**inf, as NumPy computes
    # it (0 below 1, 1 at 1, inf above), in evaluate, compiled code and derivatives
    x0 = np.array([0.5, 1.0, 2.0])
    with np.errstate(all="ignore"):
        f = md.parse(text, shapes=X_SHAPES)
        np.testing.assert_array_equal(f.evaluate(x=x0), [0.0, 1.0, np.inf])
        np.testing.assert_array_equal(md.compile(f)(x=x0), [0.0, 1.0, np.inf])
        g = md.derive(md.sum(f), "x")
        assert g.evaluate(x=x0).shape == (3,)
        assert md.compile(g)(x=x0).shape == (3,)


# ------------------------------------------------------- empty reductions
@pytest.mark.parametrize("backend", _backends())
def test_softmax_and_logsumexp_of_no_entries(backend):
    # were numpy's "zero-size array to reduction operation maximum": softmax of no
    # entries is the empty vector, logsumexp of none is log 0 = -inf
    s = md.parse("softmax(vector(1, 0))")
    assert s.shape == (0,)
    lse = _x("logsumexp(x)")
    e = np.ones(0)
    with np.errstate(divide="ignore"):
        assert s.evaluate().shape == (0,)
        assert interpret(s, {}).shape == (0,)
        assert _num(md.compile(s, backend=backend)()).shape == (0,)
        assert lse.evaluate(x=e) == -np.inf
        assert interpret(lse, {"x": e}) == -np.inf
        assert _num(md.compile(lse, backend=backend)(x=e)) == -np.inf
        g = md.derive(lse, "x")  # the gradient is softmax: empty too
        assert g.evaluate(x=e).shape == (0,)
        sm = _x("softmax(x)")
        assert md.derive(sm, "x").evaluate(x=e).shape == (0, 0)
        # a matrix of rows without entries: one -inf per row
        R = md.matrix("R", "m", "k")
        np.testing.assert_array_equal(md.logsumexp(R).evaluate(R=np.ones((2, 0))),
                                      [-np.inf, -np.inf])


# ------------------------------------------------------- singular matrices
SINGULAR = [
    "inv(X)", "sum(inv(X))", "det(X)", "logdet(X)", "tr(inv(X) @ A)",
]


@pytest.mark.parametrize("text", SINGULAR)
def test_singular_matrix_is_an_evaluation_error(text):
    # was numpy.linalg.LinAlgError from <matdiff compiled>
    shapes = {"X": ("n", "n"), "A": ("n", "n")}
    f = md.parse(text, shapes=shapes)
    g = md.derive(f, "X")
    values = {"X": np.array([[1.0, 2.0], [2.0, 4.0]]), "A": np.eye(2)}
    with pytest.raises(md.EvaluationError, match="singular"):
        g.evaluate(values)
    with pytest.raises(md.EvaluationError, match="singular"):
        interpret(g, values)
    with pytest.raises(md.EvaluationError, match="singular"):
        md.compile(g)(values)
    if "torch" in _backends():
        with pytest.raises(md.EvaluationError, match="singular"):
            md.compile(g, backend="torch")(values)


def test_singular_values_of_det_and_logdet_are_numbers():
    # det of a singular matrix is 0 and logdet is nan (log 0 of a sign-0 slogdet):
    # numbers, not errors; only an inverse that does not exist is an error
    X0 = np.zeros((2, 2))
    assert md.parse("det(X)", shapes={"X": ("n", "n")}).evaluate(X=X0) == 0.0
    assert np.isnan(md.parse("logdet(X)", shapes={"X": ("n", "n")}).evaluate(X=X0))


def test_singular_solve_is_an_evaluation_error():
    # inv(A) @ b is compiled as a solve: the same error
    f = md.parse("inv(A) @ b", shapes={"A": ("n", "n"), "b": ("n",)})
    with pytest.raises(md.EvaluationError, match="singular"):
        f.evaluate(A=np.zeros((2, 2)), b=np.ones(2))


# ------------------------------------------------------- axes past NumPy's limit
def test_more_than_64_axes_is_a_limit_error():
    # was numpy's "maximum supported dimension for an ndarray is currently 64"
    shape = tuple(f"d{i}" for i in range(33))
    f = md.parse("x * x", shapes={"x": shape})
    g = md.derive(f, "x")  # symbolic: 66 axes are fine
    assert len(g.shape) == 66
    x0 = np.ones((1,) * 33)
    with pytest.raises(md.LimitError, match="66 axes"):
        g.evaluate(x=x0)
    with pytest.raises(md.LimitError, match="66 axes"):
        md.compile(g)
    with pytest.raises(md.LimitError, match="66 axes"):
        interpret(g, {"x": x0})


# ------------------------------------------------------- values of the wrong type
@pytest.mark.parametrize("bad", [5, [1.0, 2.0], "x", (("x", 1.0),)])
def test_values_that_are_not_a_dict(bad):
    f = _x()
    with pytest.raises(TypeError, match="dict of values"):
        f.evaluate(bad)
    with pytest.raises(TypeError, match="dict of values"):
        md.evaluate(f, bad)
    with pytest.raises(TypeError, match="dict of values"):
        md.compile(f)(bad)
    with pytest.raises(TypeError, match="dict of values"):
        md.compile(f).call(bad)


def test_evaluate_of_text_says_parse_first():
    with pytest.raises(TypeError, match="md.parse"):
        md.evaluate("sum(x)", {"x": np.ones(2)})


BAD_VALUES = [
    ("None", None, "None"),
    ("text", "1.5", "text"),
    ("bytes", b"12", "text"),
    ("ragged list", [[1.0, 2.0], [3.0]], "not an array of numbers"),
    ("list of text", ["a", "b"], "not an array of numbers"),
    ("dict", {"a": 1.0}, "not an array of real numbers"),
    ("object array with None", np.array([1.0, None], dtype=object), "None"),
    ("object array with text", np.array([1.0, "a"], dtype=object), "real numbers"),
    ("dates", np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"), "dates"),
    ("records", np.zeros(2, dtype=[("a", float)]), "records"),
    ("masked entries", np.ma.array([1.0, 2.0], mask=[False, True]), "masked"),
    ("complex", 1j * np.ones(2), "complex"),
    ("complex list", [1j, 2.0], "complex"),
    ("an expression", md.vector("x", "n"), "matdiff expression"),
]


@pytest.mark.parametrize("label,value,match", BAD_VALUES, ids=[r[0] for r in BAD_VALUES])
def test_values_that_would_convert_silently_wrong_are_refused(label, value, match):
    # np.asarray(v, dtype=float64) reads None as nan, "1.5" as 1.5, dates as day
    # counts, drops imaginary parts and masks: each is refused instead
    f = _x()
    with pytest.raises(md.EvaluationError, match=match):
        f.evaluate(x=value)
    with pytest.raises(md.EvaluationError, match=match):
        interpret(f, {"x": value})
    for backend in _backends():
        with pytest.raises(md.EvaluationError, match=match):
            md.compile(f, backend=backend)(x=value)


def test_scalar_values_none_and_text_are_refused():
    # a scalar variable made these silent: None -> nan, "2" -> 2.0
    p = md.parse("p * 2", shapes={"p": ()})
    with pytest.raises(md.EvaluationError, match="None"):
        p.evaluate(p=None)
    with pytest.raises(md.EvaluationError, match="text"):
        p.evaluate(p="2")
    with pytest.raises(md.EvaluationError, match="too large"):
        p.evaluate(p=10**400)  # was OverflowError: int too large to convert to float


def test_complex_input_is_refused_not_silently_real():
    # x @ x at x = 1j·1 is −3; matdiff used to return 0.0 (the real part of x)
    f = md.parse("x @ x", shapes=X_SHAPES)
    x0 = 1j * np.ones(3)
    with pytest.raises(md.EvaluationError, match="complex"):
        f.evaluate(x=x0)
    with pytest.raises(md.EvaluationError, match="complex"):
        md.grad(lambda x: x @ x)(x0)
    for backend in _backends():
        with pytest.raises(md.EvaluationError, match="complex"):
            md.compile(f, backend=backend)(x=x0)


def test_complex_tensors_of_jax_and_torch_are_refused():
    f = md.parse("x @ x", shapes=X_SHAPES)
    if "torch" in _backends():
        import torch

        t = torch.ones(3, dtype=torch.complex128)
        with pytest.raises(md.EvaluationError, match="complex"):
            md.compile(f, backend="torch")(x=t)
        with pytest.raises(md.EvaluationError, match="complex"):
            f.evaluate(x=t)
    if "jax" in _backends():
        import jax.numpy as jnp

        with pytest.raises(md.EvaluationError, match="complex"):
            md.compile(f, backend="jax")(x=jnp.ones(3) * 1j)


def test_torch_tensor_that_requires_grad_says_why():
    torch = pytest.importorskip("torch")
    with pytest.raises(md.EvaluationError, match="requires grad"):
        _x().evaluate(x=torch.ones(2, requires_grad=True))


def test_real_values_of_other_types_still_work():
    # bools are 0 and 1, as in NumPy; ints, float32, object arrays of numbers and
    # lists convert; values for names the expression lacks are ignored
    f = _x()
    assert f.evaluate(x=np.array([True, False, True])) == 2.0
    assert f.evaluate(x=np.array([1, 2], dtype=np.int32)) == 3.0
    assert f.evaluate(x=np.ones(2, dtype=np.float32)) == 2.0
    assert f.evaluate(x=np.array([1, 2], dtype=object)) == 3.0
    assert f.evaluate(x=[1, 2.5]) == 3.5
    assert f.evaluate(x=np.ma.array([1.0, 2.0])) == 3.0  # masked array, nothing masked
    assert f.evaluate(x=np.ones(2), unused=object()) == 2.0


def test_ragged_value_of_a_context_variable():
    # dx/dx = I keeps x as context: a ragged x is refused with the same message
    g = md.derive(md.vector("x", "n"), "x")
    with pytest.raises(md.EvaluationError, match="not an array of numbers"):
        g.evaluate(x=[[1.0], [1.0, 2.0]])


# ------------------------------------------------------- dims
def _unbound():
    return md.derive(md.sum(md.vector("x", "n")), md.vector("q", "k"))


@pytest.mark.parametrize("size", ["a", -1, 2.5, None, True, "3"])
def test_bad_dim_sizes(size):
    # "a" was ValueError from int(), -1 numpy's negative dimensions, 2.5 silently 2,
    # True silently 1, None a TypeError from int()
    g = _unbound()
    with pytest.raises(md.EvaluationError, match=r"dims\['k'\] must be a size"):
        md.evaluate(g, {"x": np.ones(2)}, dims={"k": size})
    with pytest.raises(md.EvaluationError, match=r"dims\['k'\] must be a size"):
        md.compile(g, dims={"k": size})
    with pytest.raises(md.EvaluationError, match=r"dims\['k'\] must be a size"):
        md.compile(g).call({"x": np.ones(2)}, dims={"k": size})
    with pytest.raises(md.EvaluationError, match=r"dims\['k'\] must be a size"):
        interpret(g, {"x": np.ones(2)}, dims={"k": size})


def test_dims_of_the_wrong_type():
    g = _unbound()
    with pytest.raises(TypeError, match="dims must be a dict"):
        md.compile(g, dims=[3])
    with pytest.raises(TypeError, match="dims must be a dict"):
        md.evaluate(g, {"x": np.ones(2)}, dims=[3])
    with pytest.raises(TypeError, match="name must be a string"):
        md.compile(g, dims={1: 3})
    # a NumPy integer is a size
    assert md.evaluate(g, {"x": np.ones(2)}, dims={"k": np.int64(2)}).shape == (2,)


def test_unbound_dim_message_names_an_argument_that_exists():
    # the message said "pass dims={...} to evaluate", which Expr.evaluate does not
    # take; it names md.evaluate(..., dims=) (and md.compile's dims=), and following
    # it works
    g = _unbound()
    with pytest.raises(md.EvaluationError) as e:
        g.evaluate(x=np.ones(2))
    msg = str(e.value)
    assert "md.evaluate(expr, values, dims={'k': 3})" in msg
    assert np.array_equal(md.evaluate(g, {"x": np.ones(2)}, dims={"k": 3}), np.zeros(3))
    with pytest.raises(md.EvaluationError, match=r"md.compile\(\.\.\., dims=") as e:
        md.compile(g)(x=np.ones(2))
    assert md.compile(g, dims={"k": 3})(x=np.ones(2)).shape == (3,)
    assert md.compile(g).call({"x": np.ones(2)}, dims={"k": 3}).shape == (3,)


# ------------------------------------------------------- memory
def test_dense_jacobian_past_memory_is_refused_before_allocating():
    # the dense Jacobian of exp(x) at n = 10⁶ asked NumPy for 7.28 TiB (MemoryError)
    x = md.vector("x", "n")
    J = md.derive(md.exp(x), x)
    x0 = np.zeros(10**6)
    with pytest.raises(md.LimitError) as e:
        J.evaluate(x=x0)
    msg = str(e.value)
    assert "7.28 TiB" in msg and "structured=True" in msg
    with pytest.raises(md.LimitError, match="7.28 TiB"):
        md.compile(J)(x=x0)
    # the suggestion works: the diagonal alone is 8 MB
    D = md.compile(J, structured=True)(x=x0)
    assert D.diagonal.shape == (10**6,)


def test_huge_dims_are_refused_by_size():
    g = _unbound()
    for k in (10**12, 10**20):  # 10**20 was numpy's "Maximum allowed dimension exceeded"
        with pytest.raises(md.LimitError, match="more than the limit"):
            md.evaluate(g, {"x": np.ones(2)}, dims={"k": k})


@pytest.mark.parametrize("backend", [b for b in _backends() if b != "jax"])
def test_array_too_big_for_the_index_type_is_a_limit_error(backend):
    # det(eye(10**11)) makes the identity: NumPy's "array is too big" (a ValueError)
    # and PyTorch's "Storage size calculation overflowed" (a RuntimeError) were raw.
    # (JAX dispatches asynchronously: its allocation error may surface later.)
    f = md.parse("det(eye(99999999999))")
    with pytest.raises(md.LimitError):
        md.compile(f, backend=backend)()
    if backend == "numpy":
        with pytest.raises(md.LimitError):
            f.evaluate()
        with pytest.raises(md.LimitError):
            interpret(f, {})


def test_memory_limit_is_overridable(monkeypatch):
    x = md.vector("x", "n")
    J = md.derive(md.exp(x), x)
    monkeypatch.setenv("MATDIFF_MAX_BYTES", "1KiB")
    with pytest.raises(md.LimitError, match="1 KiB"):
        J.evaluate(x=np.zeros(20))  # 3.2 KB
    assert J.evaluate(x=np.zeros(10)).shape == (10, 10)  # 800 bytes
    monkeypatch.setenv("MATDIFF_MAX_BYTES", "lots")
    with pytest.raises(md.EvaluationError, match="MATDIFF_MAX_BYTES"):
        md.compile(J)(x=np.zeros(3))


def test_intermediate_past_memory_is_a_limit_error(monkeypatch):
    # outputs are checked before running; an intermediate larger than the machine
    # is NumPy's MemoryError (raised before it allocates), reported as ours.  The
    # MemoryError is planted: a real 8 TB request could succeed under overcommit
    # and be killed later, taking the test run with it
    from matdiff.compile.backends import get_backend

    def no_memory(a):
        raise MemoryError("Unable to allocate 7.28 TiB for an array")

    x = md.vector("x", "n")
    f = md.sum(md.exp(md.outer(x, x)))
    monkeypatch.setattr(get_backend("numpy"), "exp", no_memory)
    with pytest.raises(md.LimitError, match="not enough memory.*7.28 TiB"):
        f.evaluate(x=np.ones(3))
    with pytest.raises(md.LimitError, match="not enough memory"):
        md.compile(f)(x=np.ones(3))


# ------------------------------------------------------- compile's options
def test_unknown_backend_is_a_choice_error():
    with pytest.raises(md.ChoiceError, match="unknown backend 'tf'"):
        md.compile(_x(), backend="tf")
    with pytest.raises(md.ChoiceError):
        md.value_and_grad(_x(), "x", backend="TORCH")
    with pytest.raises(TypeError, match="backend must be"):
        md.compile(_x(), backend=None)


def test_structured_must_be_a_bool():
    with pytest.raises(TypeError, match="structured must be True or False"):
        md.compile(_x(), structured="yes")


# ------------------------------------------------------- derive's wrt and shapes
def test_derivative_by_a_variable_simplification_cancelled():
    # p / p is the constant 1, a node shared by every text that cancels to it, so the
    # expression cannot know p.  It once did through a side table beside the shared
    # node (what derive accepted then depended on what had been parsed before, and on
    # which shapes other texts gave p).  Now: the text with shapes=, or without them
    # (derive parses it and sees every name), or the variable itself give 0 of p's
    # shape; the parsed constant by the name p is an error that says what to pass.
    g = md.derive("p / p", "p", shapes={"p": ()})
    assert g.shape == () and g.evaluate(p=2.0) == 0.0
    assert md.derive("p / p", "p", shapes={"p": ("n",)}).shape == ("n", "n")
    assert md.derive("sum(p) / sum(p)", "p").shape == ("n",)  # p's inferred shape
    g = md.derive("x - x", "x", shapes={"x": ("n",)})
    assert g.shape == ("n", "n")
    np.testing.assert_array_equal(g.evaluate(x=np.ones(2)), np.zeros((2, 2)))
    g = md.derive("sum(y) + sum(x) - sum(x)", "x", shapes={"x": ("n",), "y": ("m",)})
    assert g.shape == ("n",)
    g = md.derive("x'*y - y'*x", "x", syntax="matrixcalculus")
    assert g.shape == ("n",)
    g = md.derive(md.parse("p / p", shapes={"p": ()}), md.scalar("p"))
    assert g.shape == () and g.evaluate(p=2.0) == 0.0
    with pytest.raises(md.UnknownVariableError,
                       match=r"cannot differentiate by 'p'.*md\.var\('p'.*shapes=.*the text"):
        md.derive(md.parse("p / p", shapes={"p": ()}), "p")
    assert isinstance(md.UnknownVariableError("x"), md.MatdiffError)
    # a name the text never had is still unknown
    with pytest.raises(md.UnknownVariableError):
        md.derive("p / p", "q", syntax="numpy")


def test_cancelled_variable_with_two_shapes_is_not_guessed():
    # two texts give the same node (the scalar 0) with q of different shapes: what the
    # derivative by q is comes from what is passed, never from which text came first
    f = md.parse("q - q", shapes={"q": ()})
    f2 = md.parse("sum(q) - sum(q)", shapes={"q": ("n",)})
    assert f is f2
    with pytest.raises(md.UnknownVariableError, match="shapes="):
        md.derive(f, "q")
    assert md.derive(f, "q", shapes={"q": ("n",)}).shape == ("n",)
    assert md.derive("q - q", "q", shapes={"q": ()}).shape == ()
    assert md.derive("sum(q) - sum(q)", "q", shapes={"q": ("n",)}).shape == ("n",)


def test_issue_case_p_over_p_in_a_fresh_interpreter():
    code = ("import matdiff as md; g = md.derive('p / p', 'p', shapes={'p': ()}); "
            "assert g.shape == () and float(g.evaluate(p=3.0)) == 0.0; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("shapes", [{"y": None}, {"y": "n"}, {"y": 3}, ["y"], "y"])
def test_bad_shapes_for_wrt_of_an_expression(shapes):
    # shapes given with an expression (not text) were used unchecked: tuple(None)
    with pytest.raises(md.ShapeError):
        md.derive(_x(), "y", shapes=shapes)


@pytest.mark.parametrize("wrt", [3, None, {"x"}, 1.5])
def test_wrt_of_the_wrong_type(wrt):
    with pytest.raises(TypeError, match="wrt must be a variable"):
        md.derive(_x(), wrt)
    with pytest.raises(TypeError, match="wrt must be a variable"):
        md.hessian(_x(), wrt)


# ------------------------------------------------------- check's options
@pytest.mark.parametrize("kw,err", [
    ({"directions": 0}, md.EvaluationError),     # would pass anything
    ({"directions": "3"}, TypeError),
    ({"eps": 0.0}, md.EvaluationError),
    ({"eps": float("nan")}, md.EvaluationError),
    ({"rtol": -1.0}, md.EvaluationError),
    ({"seed": "a"}, TypeError),
])
def test_check_options(kw, err):
    with pytest.raises(err):
        md.check(_x(), "x", **kw)


def test_check_values_must_be_a_dict():
    with pytest.raises(TypeError, match="dict of values"):
        md.check(_x(), "x", 5)


# ------------------------------------------------------- the command line
def _cli(argv, monkeypatch=None, stdin=None):
    out, err = io.StringIO(), io.StringIO()
    if monkeypatch is not None:
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", stdin)
    code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("shape,match", [
    ("x=²", "a dim must be a name"),          # was ValueError: invalid literal for int()
    ("x=n,,m", "an empty dim"),               # was read as x=n,m
    ("=n", "not a variable name"),            # was accepted and ignored
    ("1x=n", "not a variable name"),
    ("x=-1", "a dim must be a name"),
])
def test_cli_bad_shapes_exit_2(shape, match, monkeypatch):
    code, out, err = _cli(["x @ x", "--shape", shape], monkeypatch)
    assert code == 2 and "Traceback" not in err and match in err


def test_cli_conflicting_shapes_exit_2(monkeypatch):
    code, _, err = _cli(["x @ x", "--shape", "x=n", "--shape", "x=m"], monkeypatch)
    assert code == 2 and "twice" in err
    code, _, _ = _cli(["x @ x", "--shape", "x=n", "--shape", "x=(n,)"], monkeypatch)
    assert code == 0  # the same shape twice is fine


def test_cli_trailing_comma_and_unicode_digits(monkeypatch):
    code, out, _ = _cli(["sum(x)", "--shape", "x=(n,)"], monkeypatch)
    assert code == 0 and "shape (n,)" in out
    code, out, _ = _cli(["sum(x)", "--shape", "x=3"], monkeypatch)
    assert code == 0 and "(3,)" in out


def test_cli_memory_and_axes_limits_exit_2(monkeypatch):
    code, _, err = _cli(["exp(x)", "--check", "--shape", "x=1000000"], monkeypatch)
    assert code == 2 and "TiB" in err and "Traceback" not in err
    code, _, err = _cli(["x", "--check", "--shape", "x=" + ",".join(["1"] * 40)],
                        monkeypatch)
    assert code == 2 and "80 axes" in err


def test_cli_stdin_that_is_not_text_exit_2(monkeypatch):
    stdin = io.TextIOWrapper(io.BytesIO(b"\xff\xfe\xfa"), encoding="utf-8")
    code, _, err = _cli(["-"], monkeypatch, stdin=stdin)
    assert code == 2 and "not text" in err


def test_cli_internal_error_is_one_line_exit_3(monkeypatch):
    # a bug must not show a traceback to a user either; MATDIFF_DEBUG shows it
    def boom(*a, **k):
        raise KeyError("planted")

    monkeypatch.setattr(cli, "run", boom)
    monkeypatch.delenv("MATDIFF_DEBUG", raising=False)
    code, _, err = _cli(["x"], monkeypatch)
    assert code == 3 and "internal error" in err and "Traceback" not in err
    monkeypatch.setenv("MATDIFF_DEBUG", "1")
    with pytest.raises(KeyError):
        cli.main(["x"])


def test_cli_check_of_a_huge_declared_size_exit_2(monkeypatch):
    # found by the command-line fuzz: --check drew random values of 10¹¹ x 10¹¹
    # (NumPy's "array is too big", exit 3); it is refused with the size, exit 2
    code, _, err = _cli(["x @ A @ x", "--shape", "x=99999999999", "--check"], monkeypatch)
    assert code == 2 and "EiB" in err and "Traceback" not in err


@pytest.mark.parametrize("args", [("a",), ("1.5",), (True,), ([1.0, 2.0],), (None,),
                                  (1.0, "nm")])
def test_const_of_the_wrong_type(args):
    # md.const("a") was a ValueError from float(); md.const("1.5") and md.const(True)
    # were accepted, and md.const(1, "nm") made a matrix of the dims n and m
    with pytest.raises(TypeError, match="const"):
        md.const(*args)


def test_check_by_a_variable_the_expression_lacks_shares_its_dims():
    # found by the command-line fuzz: matdiff B --shape A=m --wrt A --check drew A
    # with 3 entries while B's m was 4 (NumPy's "shape-mismatch for sum", exit 3)
    f = md.parse("B", shapes={"A": ("m",)})
    assert md.check(f, "A", shapes={"A": ("m",)}).ok
    # evaluating the derivative checks the values of f's variables too: A's m
    # against B's
    with pytest.raises(md.EvaluationError,
                       match=r"dim m is 3 in the value of B but 2 in the value of A"):
        md.check(f, "A", {"B": np.ones((2, 3)), "A": np.ones(2)}, shapes={"A": ("m",)})
    code, out, err = _cli(["B", "--shape", "A=m", "--wrt", "A", "--check"], None)
    assert code == 0


@pytest.mark.parametrize("syntax", ["numpy", "matrixcalculus"])
@pytest.mark.parametrize("text", ["vector(1/0, 3)", "vector(1/0) + x", "matrix(1/0, 2, 2)"])
def test_fill_value_that_is_not_a_finite_number(text, syntax):
    # found by the text fuzz (hunt profile): 1/0 stays unevaluated, not a constant, and
    # the matrixcalculus builder read its .value (AttributeError)
    with pytest.raises(md.ParseError, match="fill value"):
        md.parse(text, syntax=syntax)


def test_printers_say_what_they_want() -> None:
    """md.to_text(5) was an AttributeError from deep in the printer."""
    for fn in (md.to_text, md.to_index):
        with pytest.raises(TypeError, match="wants an expression"):
            fn(5)
