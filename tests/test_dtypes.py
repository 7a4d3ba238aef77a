"""Generated code is dtype-generic and changes no global setting (issue 14, item 2):
float32 in gives float32 out on every backend, float64 gives float64, mixed inputs
promote as NumPy does, and arrays the code makes take the inputs' dtype and device."""

import numpy as np
import pytest

import matdiff as md
from matdiff.compile.backends import get_backend, working_dtype

SHAPES = {"X": ("N", "d"), "w": ("d",), "y": ("N",), "A": ("d", "d")}
TEXTS = [
    "mean((y - max(0, X @ w))**2)",
    "sum(log_softmax(X @ w)) + logsumexp(y)",
    "logdet(A) + sum(inv(A) @ w) + det(A)",
    "sum(gelu(X @ w) + silu(y) + elu(y) + leaky_relu(y) + softsign(y) + log_sigmoid(y))",
    "sum(softmax(X @ w) * step(y) + normal_cdf(y) + abs(y) + sigmoid(y))",
    "w @ A @ w + mean(tanh(X @ w) ** 2)",
]


def _values(f, rng):
    v = {"X": rng.standard_normal((6, 3)), "w": rng.standard_normal(3),
         "y": rng.standard_normal(6), "A": np.eye(3) + 0.1 * rng.standard_normal((3, 3))}
    return {k: a for k, a in v.items() if k in f.variables()}


def _convert(backend, dtype):
    if backend == "numpy":
        return lambda a: np.asarray(a, dtype=dtype)
    if backend == "jax":
        jnp = pytest.importorskip("jax.numpy")
        if dtype == "float64":   # a user's float64 values for JAX: NumPy arrays
            return lambda a: np.asarray(a, dtype=dtype)
        return lambda a: jnp.asarray(a, dtype=dtype)
    torch = pytest.importorskip("torch")
    return lambda a: torch.as_tensor(a, dtype=getattr(torch, dtype))


def _name(dtype):
    return str(dtype).removeprefix("torch.")


@pytest.mark.parametrize("backend", ["numpy", "jax", "torch"])
@pytest.mark.parametrize("text", TEXTS)
def test_float32_in_float32_out_and_the_same_numbers(backend, text):
    f = md.parse(text, shapes=SHAPES)
    outs = [f, md.derive(f, "w"), md.hessian(f, "w")]
    vals = _values(f, np.random.default_rng(0))
    fn = md.compile(outs, backend=backend)
    r32 = fn(**{k: _convert(backend, "float32")(a) for k, a in vals.items()})
    r64 = fn(**{k: _convert(backend, "float64")(a) for k, a in vals.items()})
    assert [_name(r.dtype) for r in r32] == ["float32"] * 3
    assert [_name(r.dtype) for r in r64] == ["float64"] * 3
    want = [md.evaluate(e, vals) for e in outs]          # the float64 reference
    for got32, got64, ref in zip(r32, r64, want):
        np.testing.assert_allclose(np.asarray(got64), ref, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(np.asarray(got32), ref, rtol=2e-3, atol=2e-4)


def test_mixed_inputs_promote_as_numpy_does():
    f = md.parse(TEXTS[0], shapes=SHAPES)
    fn = md.compile(md.derive(f, "w"))
    rng = np.random.default_rng(1)
    X, w, y = rng.standard_normal((6, 3)), rng.standard_normal(3), rng.standard_normal(6)
    f32 = np.float32
    assert fn(X=X.astype(f32), w=w, y=y.astype(f32)).dtype == np.float64
    assert fn(X=X.astype(f32), w=w.astype(f32), y=y.astype(np.float16)).dtype == np.float32
    assert fn(X=np.ones((6, 3), int), w=np.ones(3, int), y=np.ones(6, int)).dtype == np.float64
    # Python numbers and lists follow the arrays, as in NumPy
    assert working_dtype([np.zeros(2, f32), 1.5, [1.0, 2.0]], "numpy") == ("float32", None)
    assert working_dtype([1.5], "numpy") == ("float64", None)


def test_structured_results_keep_the_dtype():
    w = md.vector("w", "d")
    J = md.compile(md.derive(md.tanh(w), w), structured=True)(w=np.ones(3, np.float32))
    assert J.diagonal.dtype == np.float32 and J.toarray().dtype == np.float32


def test_jax_global_x64_is_never_changed():
    jax = pytest.importorskip("jax")
    before = jax.config.jax_enable_x64
    f = md.parse(TEXTS[0], shapes=SHAPES)
    vals = _values(f, np.random.default_rng(2))
    g = md.compile(md.derive(f, "w"), backend="jax")(**vals)       # float64 values
    assert _name(g.dtype) == "float64"
    assert jax.config.jax_enable_x64 == before
    with jax.enable_x64(False):     # a user's float32 JAX stays float32 after it
        import jax.numpy as jnp

        md.compile(md.derive(f, "w"), backend="jax")(**vals)
        assert jnp.ones(3).dtype == jnp.float32


def test_torch_arrays_are_made_on_the_inputs_device():
    torch = pytest.importorskip("torch")
    table = get_backend("torch", "float32", "meta")    # a device without data
    assert table.full((2, 3), 1.0).device.type == "meta"
    assert table.full((2,), 1.0).dtype == torch.float32
    kind = working_dtype([torch.zeros(2, device="meta")], "torch")
    assert kind[0] == "float32" and str(kind[1]) == "meta"
