"""The Unicode printers: pinned matrix-notation strings, index notation, parentheses,
robustness, and the numeric proof that a printed formula is the value.

Every pinned string below is derived in its comment from the mathematics (the
paper's tables, the Matrix Cookbook), in matdiff's layout: the derivative of ``f``
by ``x`` is indexed ``[f's axes..., x's axes...]``, so a gradient is a column and
``∂(Ax)/∂x = A``.  Vectors print as columns, ``⊙`` is the element-wise product.

Two independent numeric checks prove printed formulas true:

* ``to_numpy(matrix_form(e))`` evaluates the tree the printer prints by the rules
  of matrix algebra (a column times a row is an outer product, a row times a
  column a dot product, anything else an error) and must equal ``e.evaluate``;
* :class:`FormulaReader` below reads the printed Unicode text itself with 2-D
  matrix semantics (vectors are ``n x 1``) and must give the same numbers.
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import matdiff as md
from matdiff.compile.evaluate import evaluate
from matdiff.expr.simplify import einsum
from matdiff.render import index_form, matrix_form, to_index, to_numpy, to_text
from matdiff.render.notation import fmt_number, juxtapose

N = 3


@pytest.fixture(scope="module")
def v():
    return {
        "x": md.vector("x", "n"), "w": md.vector("w", "n"), "y": md.vector("y", "n"),
        "z": md.scalar("z"), "b": md.scalar("b"),
        "A": md.matrix("A", "n", "n"), "B": md.matrix("B", "n", "n"),
        "X": md.matrix("X", "n", "n"),
    }


def values(seed: int = 0) -> dict[str, np.ndarray]:
    """Values away from the kinks and poles: vectors in [0.5, 1.5], matrices
    ``I + 0.3U`` (invertible, positive determinant), scalars in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    out = {k: rng.uniform(0.5, 1.5, N) for k in "xwy"}
    out.update({k: np.eye(N) + 0.3 * rng.uniform(-1, 1, (N, N)) for k in "ABX"})
    out.update({k: rng.uniform(0.5, 1.5) for k in "zb"})
    return out


# =========================================================== a reader for the printout
class Unreadable(Exception):
    """Text outside the matrix notation the reader knows (index notation)."""


_FUNCS = ["logsumexp", "softmax", "softplus", "arcsin", "arccos", "arctan", "log det",
          "sinh", "cosh", "tanh", "relu", "step", "sign", "diag", "exp", "log", "sin",
          "cos", "tan", "abs", "max", "min", "sum", "mean", "det", "tr", "σ"]
_SUP = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹", range(10), strict=True))


def _lse(a: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    return np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m


class _One(np.ndarray):
    """The literal 1 (and a scalar times it): the number, or the ones vector where a
    product with a row needs one."""


class FormulaReader:
    """Reads matdiff's Unicode matrix notation into a NumPy value, independently of
    the printer's code: every value is 2-D (a vector is an ``n x 1`` column, a
    scalar ``1 x 1``); juxtaposition is the matrix product, or scaling when one
    side is ``1 x 1``; ``⁻¹`` of a square matrix is its inverse.  ``𝟏`` is the ones
    vector (an ``n x 1`` column); the literal ``1`` is read as the number 1 (which
    broadcasts like the ones vector)."""

    def __init__(self, text: str, vals: dict, n: int = N) -> None:
        if any(c in text for c in "↦[Σ…"):
            raise Unreadable(text)
        self.s = text
        self.i = 0
        self.vals = vals
        self.n = n

    # -- scanning
    def peek(self, k: int = 0) -> str:
        j = self.i
        while j < len(self.s) and self.s[j] == " ":
            j += 1
        return self.s[j + k] if j + k < len(self.s) else ""

    def skip(self) -> None:
        while self.i < len(self.s) and self.s[self.i] == " ":
            self.i += 1

    def eat(self, tok: str) -> bool:
        self.skip()
        if self.s.startswith(tok, self.i):
            self.i += len(tok)
            return True
        return False

    def expect(self, tok: str) -> None:
        if not self.eat(tok):
            raise AssertionError(f"expected {tok!r} at {self.i} in {self.s!r}")

    # -- grammar: sum > hadamard > product > postfix > atom
    def read(self) -> np.ndarray:
        v = self.sum()
        self.skip()
        assert self.i == len(self.s), f"unread text {self.s[self.i:]!r} in {self.s!r}"
        return v

    def sum(self) -> np.ndarray:
        neg = self.eat("−")
        v = self.had()
        v = -v if neg else v
        while True:
            if self.eat("+"):
                v = self._keep_one(v, self.had(), 1.0)
            elif self.eat("−"):
                v = self._keep_one(v, self.had(), -1.0)
            else:
                return v

    @staticmethod
    def _keep_one(a: np.ndarray, b: np.ndarray, sign: float) -> np.ndarray:
        # c1 ± d1 = (c ± d)1: still the number or the ones vector
        one = isinstance(a, _One) and isinstance(b, _One)
        v = np.asarray(a) + sign * np.asarray(b)
        return v.view(_One) if one and v.shape == (1, 1) else v

    def had(self) -> np.ndarray:
        v = self.product()
        while True:
            if self.eat("⊙") or self.eat("⊗"):
                u = self.product()
                self._check(v, u)
                v = np.asarray(v) * np.asarray(u)
            elif self.eat("⊘"):
                u = self.product()
                self._check(v, u)
                v = np.asarray(v) / np.asarray(u)
            else:
                return v

    def _check(self, a: np.ndarray, b: np.ndarray) -> None:
        assert a.shape == b.shape or a.size == 1 or b.size == 1, \
            f"⊙ of shapes {a.shape} and {b.shape} in {self.s!r}"

    def _starts_factor(self) -> bool:
        c = self.peek()
        return bool(c) and (c.isalnum() or c in "(√σ")

    def product(self) -> np.ndarray:
        v = self.postfix()
        while True:
            if self.eat("·"):
                v = self.mul(v, self.postfix())
            elif self.eat("/"):
                v = np.asarray(v) / np.asarray(self.postfix())
            elif self._starts_factor():
                v = self.mul(v, self.postfix())
            else:
                return v

    def mul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if isinstance(a, _One) and a.shape == (1, 1) and b.shape == (1, self.n):
            # c·1 times a row: the outer product (c1)bᵀ, as in 1·1ᵀ or z1xᵀ
            return np.full((self.n, 1), float(a[0, 0])) @ np.asarray(b)
        one = isinstance(a, _One) or isinstance(b, _One)
        a, b = np.asarray(a), np.asarray(b)
        if a.shape == (1, 1) and b.shape == (1, 1) and one:
            return (a * b).view(_One)  # z1: still the number or the ones vector
        if a.shape == (1, 1) or b.shape == (1, 1):
            return a * b
        assert a.shape[1] == b.shape[0], f"product of {a.shape} and {b.shape} in {self.s!r}"
        return a @ b

    def postfix(self) -> np.ndarray:
        if self.eat("√"):
            return np.sqrt(self.postfix_ops(self.atom(), allow=False))
        return self.postfix_ops(self.atom())

    def postfix_ops(self, v: np.ndarray, allow: bool = True) -> np.ndarray:
        if allow and self.peek() in "ᵀ⁻^" + "".join(_SUP):
            v = np.asarray(v)  # the literal 1 stops being special once transformed
        while allow:
            if self.eat("⁻ᵀ"):
                v = np.linalg.inv(v).T
            elif self.eat("ᵀ"):
                v = v.T
            elif self.peek() in _SUP or (self.peek() == "⁻" and self.peek(1) in _SUP):
                self.skip()
                sign = -1 if self.eat("⁻") else 1
                p = 0
                while self.i < len(self.s) and self.s[self.i] in _SUP:
                    p = 10 * p + _SUP[self.s[self.i]]
                    self.i += 1
                p *= sign
                square = v.shape[0] == v.shape[1] and v.shape != (1, 1)
                if square:  # X⁻¹ the inverse, X³ = XXX (X^⊙3 is element-wise)
                    assert p == -1 or p >= 2, f"a matrix power {p} in {self.s!r}"
                    v = np.linalg.inv(v) if p == -1 else np.linalg.matrix_power(v, p)
                else:
                    v = v ** p
            elif self.eat("^⊙") or self.eat("^"):
                if self.peek() in "−0123456789":
                    v = v ** self.number()
                else:
                    v = v ** self.atom()
            else:
                break
        return v

    def number(self) -> np.ndarray:
        self.skip()
        m = re.compile(r"−?[0-9]+(\.[0-9]+)?(e[+-][0-9]+)?").match(self.s, self.i)  # not 𝟏
        assert m, f"a number at {self.i} in {self.s!r}"
        self.i = m.end()
        v = np.array([[float(m.group().replace("−", "-"))]])
        return v.view(_One) if m.group() == "1" else v

    def atom(self) -> np.ndarray:
        self.skip()
        s, i = self.s, self.i
        if self.eat("("):
            v = self.sum()
            self.expect(")")
            return v
        if s[i] == "𝟏":  # the ones vector (a column; 𝟏ᵀ the row)
            self.i += 1
            return np.ones((self.n, 1))
        if s[i].isdigit():
            return self.number()
        if s[i] == "I":
            self.i += 1
            return np.eye(self.n)
        for f in _FUNCS:
            if s.startswith(f + "(", i):
                self.i += len(f) + 1
                args = [self.sum()]
                axis = None
                while self.eat(","):
                    if self.eat("axis="):
                        axis = int(self.number()[0, 0])
                    else:
                        args.append(self.sum())
                self.expect(")")
                return self.call(f, args, axis)
        if s[i] == "n":
            self.i += 1
            return np.array([[float(self.n)]])
        name = s[i]
        self.i += 1
        if name not in self.vals:
            raise Unreadable(f"unknown name {name!r} in {s!r}")
        a = np.asarray(self.vals[name], dtype=float)
        return a.reshape(1, 1) if a.ndim == 0 else a.reshape(-1, 1) if a.ndim == 1 else a

    def call(self, f: str, args: list, axis: int | None) -> np.ndarray:
        args = [np.asarray(t) for t in args]
        a = args[0]
        vec = a.shape[1] == 1 and a.shape[0] > 1
        if f == "diag":
            if vec or a.shape[0] == 1:
                return np.diag(a.ravel())
            return np.diagonal(a).copy().reshape(-1, 1)
        if f == "tr":
            return np.array([[np.trace(a)]])
        if f == "sum":
            if axis is None:
                return np.array([[a.sum()]])
            return a.sum(axis=axis).reshape(-1, 1)
        if f == "mean":
            return np.array([[a.mean()]])
        if f == "det":
            return np.array([[np.linalg.det(a)]])
        if f == "log det":
            return np.array([[np.linalg.slogdet(a)[1]]])
        if f in ("logsumexp", "softmax"):
            ax = 0 if vec else 1
            lse = _lse(a, ax)
            return (lse.reshape(-1, 1) if f == "logsumexp" else np.exp(a - lse))
        if f in ("max", "min"):
            return (np.maximum if f == "max" else np.minimum)(args[0], args[1])
        name = {"σ": "sigmoid"}.get(f, f)
        return md.FUNCTIONS[name].numpy(a)


def read_formula(text: str, vals: dict) -> np.ndarray:
    return FormulaReader(text, vals).read()


def as_columns(arr: np.ndarray) -> np.ndarray:
    """An evaluated expression in the reader's 2-D convention."""
    arr = np.asarray(arr, dtype=float)
    return arr.reshape(1, 1) if arr.ndim == 0 else arr.reshape(-1, 1) if arr.ndim == 1 \
        else arr


def assert_formula_value(text: str, want: np.ndarray, vals: dict) -> None:
    got = read_formula(text, vals)
    want2 = as_columns(want)
    # a lone number (the literal 1, 0) stands for the constant of any shape
    assert got.shape == want2.shape or got.size == 1, \
        f"{text!r} reads as shape {got.shape}, the value has {want2.shape}"
    np.testing.assert_allclose(np.broadcast_to(got, want2.shape), want2, rtol=1e-7,
                               atol=1e-9, err_msg=text)


def test_reader_reads_known_formulas():
    vals = values(1)
    x, A = vals["x"], vals["A"]
    assert np.allclose(read_formula("xᵀAx", vals), x @ A @ x)
    assert np.allclose(read_formula("(A + Aᵀ)x", vals).ravel(), (A + A.T) @ x)
    assert np.allclose(read_formula("diag(3cos(3x))", vals), np.diag(3 * np.cos(3 * x)))
    assert np.allclose(read_formula("x𝟏ᵀ", vals), np.outer(x, np.ones(N)))
    assert np.allclose(read_formula("2𝟏𝟏ᵀ", vals), np.full((N, N), 2.0))
    with pytest.raises(AssertionError):
        read_formula("xAx", vals)  # a column times a matrix is no product


# =========================================================== pinned strings
def test_paper_table_element_wise(v):
    x, w, z = v["x"], v["w"], v["z"]
    # ∂(wᵢxᵢ)/∂wⱼ = xᵢδᵢⱼ: the paper's diag(x) (example 4)
    assert str(md.derive(w * x, w)) == "diag(x)"
    # ∂(xᵢz)/∂xⱼ = zδᵢⱼ (example 5: "I z")
    assert str(md.derive(x * z, x)) == "zI"
    # ∂(wᵢ/xᵢ)/∂xⱼ = −wᵢ/xᵢ² δᵢⱼ (example 4: diag(−w ⊘ x²)); by w: diag(1 ⊘ x)
    assert str(md.derive(w / x, x)) == "diag(−w ⊘ x²)"
    assert str(md.derive(w / x, w)) == "diag(x⁻¹)"
    # ∂(wᵢ − xᵢ)/∂xⱼ = −δᵢⱼ
    assert str(md.derive(w - x, x)) == "−I"


def test_paper_scalar_expansion(v):
    x, z = v["x"], v["z"]
    # ∂(xᵢ + z)/∂z = 1 for every i: the ones vector 𝟏; with − it is −𝟏 (example 5)
    assert str(md.derive(x + z, z)) == "𝟏"  # the ones vector, not the number
    assert str(md.derive(x - z, z)) == "−𝟏"
    # ∂(xᵢz)/∂z = xᵢ; ∂(xᵢ/z)/∂xⱼ = δᵢⱼ/z; ∂(xᵢ/z)/∂z = −xᵢ/z²
    assert str(md.derive(x * z, z)) == "x"
    assert str(md.derive(x / z, x)) == "I/z"
    assert str(md.derive(x / z, z)) == "−x/z²"


def test_paper_reductions(v):
    x, w, z = v["x"], v["w"], v["z"]
    # ∂(Σᵢ xᵢ)/∂xⱼ = 1 (example 6; a column in matdiff's layout)
    assert str(md.derive(md.sum(x), x)) == "𝟏"
    # ∂ Σᵢ wᵢxᵢ / ∂wⱼ = xⱼ (example 8)
    assert str(md.derive(md.sum(w * x), w)) == "x"
    # ∂ Σᵢ xᵢz / ∂z = Σᵢ xᵢ;  ∂/∂xⱼ = z for every j: z times the ones vector
    assert str(md.derive(md.sum(x * z), z)) == "sum(x)"
    assert str(md.derive(md.sum(x * z), x)) == "z𝟏"


def test_paper_chain_rule(v):
    x, w, b = v["x"], v["w"], v["b"]
    # ∂ sin(3xᵢ)/∂xⱼ = 3cos(3xᵢ)δᵢⱼ (example 7)
    assert str(md.derive(md.sin(3 * x), x)) == "diag(3cos(3x))"
    # ∂ max(0, wᵀx + b)/∂w = step(wᵀx + b) x (example 9; relu'(0) = 0)
    assert str(md.derive(md.relu(w @ x + b), w)) == "step(wᵀx + b)x"


def test_quadratic_forms_and_linear_maps(v):
    x, w, A = v["x"], v["w"], v["A"]
    # xᵀAx = Σᵢⱼ xᵢAᵢⱼxⱼ
    assert str(x @ A @ x) == "xᵀAx"
    # ∂(xᵀAx)/∂x = Ax + Aᵀx, printed with x factored out (Cookbook eq. 89)
    assert str(md.derive(x @ A @ x, x)) == "(A + Aᵀ)x"
    # its Hessian: ∂²/∂xᵢ∂xⱼ = Aᵢⱼ + Aⱼᵢ
    assert str(md.hessian(x @ A @ x, x)) == "A + Aᵀ"
    # ∂(Ax)ᵢ/∂xⱼ = Aᵢⱼ
    assert str(md.derive(A @ x, x)) == "A"
    # ∂(xᵀAw)/∂Aᵢⱼ = xᵢwⱼ: the outer product xwᵀ (Cookbook eq. 70)
    assert str(md.derive(x @ A @ w, A)) == "xwᵀ"
    assert str(md.outer(x, w)) == "xwᵀ"


def test_trace_and_determinant_gradients(v):
    A, B, X = v["A"], v["B"], v["X"]
    # ∂ tr(AXB)/∂Xₖₗ = Σᵢ Aᵢₖ Bₗᵢ = (BA)ₗₖ, i.e. (BA)ᵀ = AᵀBᵀ (Cookbook eq. 102)
    assert str(md.derive(md.tr(A @ X @ B), X)) == "AᵀBᵀ"
    # ∂ log det X/∂X = X⁻ᵀ (Cookbook eq. 57), with det or logdet
    assert str(md.derive(md.log(md.det(X)), X)) == "X⁻ᵀ"
    assert str(md.derive(md.logdet(X), X)) == "X⁻ᵀ"
    # ∂ det X/∂X = det(X) X⁻ᵀ (Cookbook eq. 49)
    assert str(md.derive(md.det(X), X)) == "det(X)X⁻ᵀ"
    # ∂ tr(X)/∂X = I
    assert str(md.derive(md.tr(X), X)) == "I"


def test_softmax_family(v):
    x, A = v["x"], v["A"]
    # ∂ logsumexp(x)/∂xⱼ = softmax(x)ⱼ
    assert str(md.derive(md.logsumexp(x), x)) == "softmax(x)"
    # ∂sᵢ/∂xⱼ = sᵢδᵢⱼ − sᵢsⱼ = (diag(s) − ssᵀ)ᵢⱼ
    assert str(md.derive(md.softmax(x), x)) == "diag(softmax(x)) − softmax(x)softmax(x)ᵀ"
    # ∂ Σᵢ σ((Ax)ᵢ)/∂xⱼ = Σᵢ σ'((Ax)ᵢ) Aᵢⱼ = (Aᵀ(σ(Ax) ⊙ (1 − σ(Ax))))ⱼ
    assert str(md.derive(md.sum(md.sigmoid(A @ x)), x)) == "Aᵀ(σ(Ax) ⊙ (1 − σ(Ax)))"


def test_fourth_order_derivatives_print_in_index_notation(v):
    A, X = v["A"], v["X"]
    # ∂(X⁻¹)ᵢⱼ/∂Xₖₗ = −(X⁻¹)ᵢₖ(X⁻¹)ₗⱼ (Cookbook eq. 59)
    assert str(md.derive(md.inv(X), X)) == "(i, j, k, l) ↦ −(X⁻¹)ᵢₖ (X⁻¹)ₗⱼ"
    # ∂(AX)ᵢⱼ/∂Xₖₗ = Aᵢₖ δⱼₗ
    assert str(md.derive(A @ X, X)) == "(i, j, k, l) ↦ δⱼₗ Aᵢₖ"


def test_matrix_operations(v):
    x, w, z, A, B = v["x"], v["w"], v["z"], v["A"], v["B"]
    cases = [
        (A.T @ x, "Aᵀx"),                 # Σⱼ Aⱼᵢ xⱼ
        (x @ A, "Aᵀx"),                   # a vector result is a column: xᵀA = (Aᵀx)ᵀ
        (A.T, "Aᵀ"),
        ((A @ B).T, "BᵀAᵀ"),              # (AB)ᵀ = BᵀAᵀ
        (md.inv(A).T, "A⁻ᵀ"),
        (md.inv(A), "A⁻¹"),
        (md.tr(A), "tr(A)"),
        (md.diag(A), "diag(A)"),          # Aᵢᵢ, a column
        (md.diag(x), "diag(x)"),          # xᵢδᵢⱼ
        (md.diag(x) @ A, "diag(x)A"),     # xᵢAᵢⱼ: row scaling
        (A @ md.diag(x), "A diag(x)"),    # Aᵢⱼxⱼ: column scaling
        (A * B, "A ⊙ B"),
        (md.sum(x), "sum(x)"),
        (md.sum(A), "sum(A)"),
        (md.sum(A, axis=0), "sum(A, axis=0)"),
        (md.sum(A, axis=1), "sum(A, axis=1)"),
        (md.mean(x), "mean(x)"),        # as written (the node of sum(x)/n)
        (md.outer(x, md.ones("n")), "x𝟏ᵀ"),   # xᵢ·1
        (z * md.ones("n"), "z𝟏"),
        (x + z, "x + z"),                # scalar expansion: z·𝟏
        (md.eye("n"), "I"),
        (md.det(A), "det(A)"),
        (md.logdet(A), "log det(A)"),
        (md.logsumexp(x), "logsumexp(x)"),
        (md.softmax(x), "softmax(x)"),
        (x @ w, "xᵀw"),                   # in the order written
    ]
    for e, want in cases:
        assert str(e) == want, (str(e), want)
    assert str(x * w) in ("w ⊙ x", "x ⊙ w")


def test_scalars_signs_and_numbers(v):
    x, w, z = v["x"], v["w"], v["z"]
    assert str(2 * x) == "2x"
    assert str(-x) == "−x"
    assert str(x - w) == "x − w"
    assert str(z * x) == "zx"
    assert str(0.5 * x) == "x/2"
    assert str(md.const(1e-8) * x) == "1e-08x"
    assert str(md.const(2.0)) == "2"
    assert str(md.const(-1.0)) == "−1"
    assert str(md.const(0.0, ("n", "n"))) == "0"
    assert str(md.ones("n")) == "𝟏"  # the ones vector: bold, as the unicode syntax reads it
    assert str(2 * md.ones("n")) == "2𝟏"
    assert str(md.derive(z, x)) == "0"
    assert [fmt_number(t) for t in (2.0, 0.5, -1.0, 1e-08, 1 / 3, 1e20)] == \
        ["2", "0.5", "−1", "1e-08", "0.333333", "1e+20"]


def test_functions(v):
    x, w, z = v["x"], v["w"], v["z"]
    cases = [
        (md.exp(x), "exp(x)"), (md.relu(z), "relu(z)"), (md.sigmoid(x), "σ(x)"),
        (md.sqrt(x), "√x"), (md.abs(x), "abs(x)"), (md.step(z), "step(z)"),
        (x ** 2, "x²"), (x ** 3, "x³"), (x ** -1, "x⁻¹"), (x ** 0.5, "x^(1/2)"),
        (md.maximum(x, w), "max(x, w)"), (md.minimum(x, w), "min(x, w)"),
        (md.power(x, w), "x^w"),                      # a variable exponent
        (md.matrix("A", "n", "n") ** 2, "A^⊙2"),       # element-wise, not AA
        (md.tanh(z), "tanh(z)"), (md.softplus(z), "softplus(z)"),
    ]
    for e, want in cases:
        assert str(e) == want, (str(e), want)


def test_parentheses_from_precedence(v):
    x, w, z, A, B = v["x"], v["w"], v["z"], v["A"], v["B"]
    assert str((A + B) @ x) == "(A + B)x"             # a sum inside a product
    assert str((x + w) ** 2) in ("(x + w)²", "(w + x)²")  # a sum under a postfix
    assert str(-(x + w)) in ("−(x + w)", "−(w + x)")   # unary minus of a sum
    assert str(z * (x + w)) in ("z(x + w)", "z(w + x)")
    assert str(md.sqrt(x + w)) in ("√(x + w)", "√(w + x)")
    assert str(md.exp(A @ x)) == "exp(Ax)"
    assert str(md.inv(A + B)) == "(A + B)⁻¹"
    assert str(md.inv(A @ B)) == "(AB)⁻¹"
    assert str((A @ x) ** 2) == "(Ax)²"                # not Ax²
    assert str(md.outer(A @ x, w)) == "Axwᵀ"          # (Ax)wᵀ = A(xwᵀ)
    assert str((A @ x) * w) in ("w ⊙ (Ax)", "(Ax) ⊙ w")
    assert str((A + B).T) in ("Aᵀ + Bᵀ", "(A + B)ᵀ")


def test_factoring_common_operands(v):
    x, z, A, B = v["x"], v["z"], v["A"], v["B"]
    assert str(A @ x + B @ x) == "(A + B)x"           # right factor
    assert str(A @ x - B @ x) == "(A − B)x"
    assert str(A @ x + x) == "(A + I)x"               # x = Ix
    assert str(A @ B + A @ A) in ("A(B + A)", "A(A + B)")  # left factor
    # ∂²(z xᵀAx)/∂x² = z(A + Aᵀ)
    assert str(md.hessian(z * (x @ A @ x), x)) == "z(A + Aᵀ)"


def test_juxtaposition_spacing():
    assert juxtapose("z", "I") == "zI"
    assert juxtapose("2", "3") == "2·3"
    assert juxtapose("2", "𝟏") == "2𝟏"  # the ones vector is no number: no ·
    assert juxtapose("b", "𝟏") == "b𝟏"
    assert juxtapose("b1", "𝟏") == "b1𝟏"  # 𝟏 is never part of a name
    assert juxtapose("𝟏", "softmax(x)ᵀ") == "𝟏softmax(x)ᵀ"
    assert juxtapose("z", "cos(x)") == "z cos(x)"
    assert juxtapose("3", "cos(3x)") == "3cos(3x)"
    assert juxtapose("W1", "x") == "W1 x"
    W1, h = md.matrix("W1", "m", "n"), md.vector("h", "n")
    assert str(W1 @ h) == "W1 h"


def test_hadamard_style(v):
    x, w = v["x"], v["w"]
    assert to_text(x * w, hadamard="⊗") in ("w ⊗ x", "x ⊗ w")


# =========================================================== index notation
def test_index_notation(v):
    x, w, A = v["x"], v["w"], v["A"]
    assert to_index(x @ A @ x) == "Σᵢⱼ Aᵢⱼ xᵢ xⱼ"
    assert to_index(A @ x) == "(i) ↦ Σⱼ Aᵢⱼ xⱼ"
    assert to_index(A.T) == "(i, j) ↦ Aⱼᵢ"
    assert to_index(md.derive(w * x, w)) == "(i, j) ↦ δᵢⱼ xⱼ"
    assert to_index(md.tr(A)) == "Σᵢ Aᵢᵢ"
    assert to_index(md.exp(A @ md.exp(A @ x))) == "(i) ↦ exp(Σⱼ Aᵢⱼ exp(Σₖ Aⱼₖ xₖ))"
    # a Σ runs to the end of its term: inside a longer sum it gets parentheses
    assert to_index(md.derive(x @ A @ x, x)) == "(i) ↦ (Σⱼ Aᵢⱼ xⱼ) + Σⱼ Aⱼᵢ xⱼ"
    assert to_index(x - w) == "(i) ↦ xᵢ − wᵢ"


def test_products_without_matrix_form():
    T = md.var("T", "n", "n", "n")
    x, w = md.vector("x", "n"), md.vector("w", "n")
    # Σₖ Tᵢⱼₖ xₖ: an operand with three axes has no matrix form
    Tx = einsum([T, x], [(0, 1, 2), (2,)], (0, 1))
    assert str(Tx) == "(i, j) ↦ Σₖ Tᵢⱼₖ xₖ"
    # inside a matrix formula it is a bracket
    assert str(md.exp(Tx) @ x) == "exp([(i, j) ↦ Σₖ Tᵢⱼₖ xₖ])x"
    assert str(einsum([T, x, w, x], [(0, 1, 2), (0,), (1,), (2,)], ())) == \
        "Σᵢⱼₖ Tᵢⱼₖ wⱼ xᵢ xₖ"
    assert str(T) == "T"


# =========================================================== robustness
def _deep(n: int) -> md.Expr:
    x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    e = x
    for k in range(n):
        e = md.sin(e) if k % 3 else A @ e + x
    return e


def test_deep_expressions_print_without_recursion():
    e = _deep(10_000)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(250)
    try:
        s = to_text(e)
        t = to_index(e)
    finally:
        sys.setrecursionlimit(old)
    assert "…" in s and len(s) <= 20_100
    assert s.startswith("A sin(sin(A sin(sin(A sin(")  # A @ e + x, as built
    assert t.startswith("(i) ↦ (Σⱼ Aᵢⱼ sin(sin((Σₖ Aⱼₖ sin(sin(")
    assert len(t) <= 20_100


def test_shared_subexpressions_stay_fast():
    x, A = md.vector("x", "n"), md.matrix("A", "n", "n")
    e = x
    for k in range(400):  # the tree doubles at each level; the DAG does not
        e = e + A.T @ e if k % 2 else md.exp(e) * e
    assert len(to_text(e)) <= 20_100
    assert len(to_index(e)) <= 20_100


def test_max_chars():
    s = to_text(_deep(300), max_chars=200)
    assert "…" in s and len(s) < 260


# =========================================================== numeric proof
def _cases(v) -> list[md.Expr]:
    x, w, y, z, b, A, B, X = (v[k] for k in "x w y z b A B X".split())
    T = md.var("T", "n", "n", "n")
    fs = [
        (w * x, w), (x * z, x), (md.sum(x), x), (x @ A @ x, x), (A @ x, x),
        (md.tr(A @ X @ B), X), (md.sum(w * x), w), (md.sin(3 * x), x),
        (md.log(md.det(X)), X), (md.det(X), X), (md.inv(X), X), (A @ X, X),
        (x / z, z), (x / z, x), (w / x, x), (x - z, z), (x + z, z),
        (md.softmax(x), x), (md.logsumexp(A @ x), x), (md.sum(md.sigmoid(A @ x)), x),
        (md.relu(w @ x + b), w), (md.norm2(A @ x - y), x), (x @ A @ A @ x, A),
        (md.sum(md.exp(A @ x)), A), (md.tr(A @ B @ A.T), A), (md.sum(A, axis=1) @ x, A),
        (md.outer(x, w) @ y, x), (md.diag(A * B) @ x, A), (md.sum(md.diag(x) @ A), x),
        (md.mean((y - md.relu(A @ w + b)) ** 2), w), (z * (x @ A @ x), x),
        (md.tr(md.inv(X) @ A), X), (md.sum(A @ X @ B), X), (md.exp(x @ w) * x, w),
        (md.maximum(x, w), x), (md.sqrt(x * w), x), (md.tanh(A @ x + w), x),
    ]
    out = []
    for f, wrt in fs:
        g = md.derive(f, wrt)
        out += [f, g]
    out.append(md.hessian(x @ A @ x, x))
    out.append(md.hessian(md.logsumexp(x), x))
    out.append(md.hessian(md.sum(md.exp(A @ x)), x))
    out.append(einsum([T, x], [(0, 1, 2), (2,)], (0, 1)))
    out += [(A @ B).T, md.diag(x) @ A, A @ md.diag(x), md.sum(A, axis=0), md.outer(x, md.ones("n")),
            A @ x + B @ x + x, md.inv(A + B).T]
    return out


def _values_with_T(vals: dict) -> dict:
    rng = np.random.default_rng(5)
    return {**vals, "T": rng.uniform(-1, 1, (N, N, N))}


def value(e: md.Expr, vals: dict) -> np.ndarray:
    """``e``'s value, with ``n`` bound even where no variable carries it (``zI``)."""
    return evaluate(e, {k: vals[k] for k in e.variables()}, dims={"n": N})


def check_numeric(e: md.Expr, vals: dict) -> None:
    want = value(e, vals)
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    for tree in (matrix_form(e), index_form(e)):
        got = to_numpy(tree, vals, dims={"n": N})
        assert got.shape == want.shape, (str(e), got.shape, want.shape)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * scale, err_msg=str(e))
    tree = matrix_form(e)
    if len(e.shape) == 1:
        assert tree.orient == "col", str(e)  # a vector prints as a column


def check_printed(e: md.Expr, vals: dict) -> bool:
    """The printed text, read back, is the value; False when it is index notation."""
    text = str(e)
    try:
        reader = FormulaReader(text, vals)
    except Unreadable:
        return False
    got = reader.read()
    want = as_columns(value(e, vals))
    assert got.shape == want.shape or got.size == 1, (text, got.shape, want.shape)
    # printed numbers keep 6 significant digits (e² prints 7.38906)
    np.testing.assert_allclose(np.broadcast_to(got, want.shape), want, rtol=1e-5,
                               atol=1e-5 * max(1.0, float(np.max(np.abs(want)))),
                               err_msg=text)
    return True


def test_forms_evaluate_to_the_value(v):
    vals = _values_with_T(values(3))
    for e in _cases(v):
        check_numeric(e, vals)


def test_printed_formulas_read_back_to_the_value(v):
    vals = values(4)
    read = 0
    for e in _cases(v):
        if "T" in e.variables():
            continue
        read += check_printed(e, vals)
    assert read >= 60  # all but the few in index notation


# ----------------------------------------------------------- random expressions
_FN = ["exp", "sin", "tanh", "sigmoid", "softplus", "relu", "cos"]


@st.composite
def expressions(draw, rank: int, depth: int = 3):
    """Random well-shaped expressions over x, w (vectors), A, B (matrices), z."""
    x, w = md.vector("x", "n"), md.vector("w", "n")
    A, B, z = md.matrix("A", "n", "n"), md.matrix("B", "n", "n"), md.scalar("z")
    leaves = {0: [z, md.const(2.0)], 1: [x, w], 2: [A, B]}
    if depth == 0 or draw(st.integers(0, 4)) == 0:
        return draw(st.sampled_from(leaves[rank]))
    sub = lambda r: expressions(r, depth - 1)  # noqa: E731
    if rank == 0:
        k = draw(st.integers(0, 9))
        if k == 0:
            return md.sum(draw(sub(1)))
        if k == 1:
            return draw(sub(1)) @ draw(sub(1))
        if k == 2:
            return draw(sub(1)) @ draw(sub(2)) @ draw(sub(1))
        if k == 3:
            return md.tr(draw(sub(2)))
        if k == 4:
            return draw(sub(0)) * draw(sub(0))
        if k == 5:
            return draw(sub(0)) - draw(sub(0))
        if k == 6:
            return md.logsumexp(draw(sub(1)))
        if k == 7:
            return md.sum(draw(sub(2)))
        if k == 8:
            return draw(st.sampled_from([md.det, md.logdet]))(md.matrix("A", "n", "n"))
        return getattr(md, draw(st.sampled_from(_FN)))(draw(sub(0)))
    if rank == 1:
        k = draw(st.integers(0, 12))
        if k == 0:
            return draw(sub(2)) @ draw(sub(1))
        if k == 1:
            return draw(sub(1)) @ draw(sub(2))
        if k == 2:
            return draw(sub(1)) * draw(sub(1))
        if k == 3:
            return draw(sub(1)) + draw(sub(1))
        if k == 4:
            return draw(sub(0)) * draw(sub(1))
        if k == 5:
            return draw(sub(1)) - draw(sub(0))
        if k == 6:
            return md.softmax(draw(sub(1)))
        if k == 7:
            return md.sum(draw(sub(2)), axis=draw(st.integers(0, 1)))
        if k == 8:
            return md.diag(draw(sub(2)))
        if k == 9:
            return draw(sub(1)) ** draw(st.sampled_from([2, 3, -1]))
        if k == 10:
            return md.logsumexp(draw(sub(2)))  # row by row
        if k == 11:
            return draw(sub(1)) / (1 + draw(sub(0)) ** 2)
        return getattr(md, draw(st.sampled_from(_FN)))(draw(sub(1)))
    k = draw(st.integers(0, 9))
    if k == 0:
        return draw(sub(2)) @ draw(sub(2))
    if k == 1:
        return draw(sub(2)).T
    if k == 2:
        return draw(sub(2)) * draw(sub(2))
    if k == 3:
        return md.outer(draw(sub(1)), draw(sub(1)))
    if k == 4:
        return draw(sub(0)) * draw(sub(2))
    if k == 5:
        return draw(sub(2)) + draw(sub(2))
    if k == 6:
        return md.diag(draw(sub(1)))
    if k == 7:
        return md.inv(md.matrix("A", "n", "n"))
    if k == 8:
        return md.softmax(draw(sub(2)))  # row by row
    return getattr(md, draw(st.sampled_from(_FN)))(draw(sub(2)))


@given(st.data())
def test_random_derivatives_print_true(data):
    rank = data.draw(st.integers(0, 2))
    f = data.draw(expressions(rank))
    names = sorted(f.variables())
    if not names:
        return
    var = f.variables()
    wrt = data.draw(st.sampled_from(names))
    g = md.derive(f, md.var(wrt, *var[wrt]))
    if len(g.shape) <= 2 and data.draw(st.booleans()):
        second = data.draw(st.sampled_from(names))  # second derivatives too
        g = md.derive(g, md.var(second, *var[second]))
    vals = values(data.draw(st.integers(0, 5)))
    with np.errstate(all="ignore"):
        want = value(g, vals)
        if not np.all(np.isfinite(want)) or not np.all(np.isfinite(value(f, vals))):
            return
        for e in (f, g):
            check_numeric(e, vals)
            check_printed(e, vals)
            assert isinstance(to_index(e), str)


def test_equal_terms_of_a_sum_merge_in_the_printout():
    """(A + Aᵀ)x + (Aᵀ + A)x met by two paths: one term, counted (was A + A + Aᵀ + Aᵀ)."""
    from matdiff.render.mform import matrix_form, to_numpy

    shapes = {"x": ("n",), "A": ("n", "n")}
    g = md.derive(md.parse("x @ (A + A.T) @ x", shapes=shapes), "x")
    assert str(g) == "2(A + Aᵀ)x"
    rng = np.random.default_rng(0)
    vals = {"x": rng.standard_normal(3), "A": rng.standard_normal((3, 3))}
    np.testing.assert_allclose(to_numpy(matrix_form(g), vals), g.evaluate(vals), rtol=1e-12)


def test_diagonal_terms_of_a_sum_merge_into_one_diag(v):
    """diag(u) + diag(v) = diag(u + v), and diag(u)diag(v) = diag(u ⊙ v): the derivative
    of σ(x)(1 − σ(x)) is one diag (was (diag(−σ(x)) + diag(1 − σ(x)))diag(…))."""
    x, w = v["x"], v["w"]
    vals = values(2)
    g = md.derive(md.sigmoid(x) * (1 - md.sigmoid(x)), x)
    assert str(g) == "diag((1 − 2σ(x)) ⊙ σ(x) ⊙ (1 − σ(x)))"
    g2 = md.derive(md.exp(x) * (1 - md.exp(x)), x)
    assert str(g2) == "diag((1 − 2exp(x)) ⊙ exp(x))"
    g3 = md.derive(md.sin(x) + w * x, x)
    assert str(g3).startswith("diag(") and str(g3).count("diag") == 1
    for e in (g, g2, g3):
        check_numeric(e, vals)
        assert check_printed(e, vals)


def test_exact_constants_print_exactly(v):
    """A number from integers prints exactly: x/9, not 0.111111x; log(2), not 0.693147;
    2^x, not (2·1)^x (issue 13, item 3)."""
    x, w = v["x"], v["w"]
    vals = values(3)
    two = md.parse("2**x", shapes={"x": ("n",)})
    cases = [
        (x / 9, "x/9"), (md.derive(x / 9, x), "I/9"), (2 * x / 3, "2x/3"),
        (-x / 9, "−x/9"), ((x * w) / 9, "(x ⊙ w)/9"), (md.const(1 / 9), "1/9"),
        (md.const(1 / 3) * md.ones("n"), "(1/3)𝟏"), (two, "2^x"),
        (md.derive(two, "x"), "diag(log(2)·2^x)"),
        (md.log(md.const(2.0)), "log(2)"),
        (0.5 * x, "x/2"), (md.const(8.0), "8"), (x ** 0.5, "x^(1/2)"),
        (md.derive(md.sum(md.sqrt(x)), x), "(√x)⁻¹/2"), (x ** (-1.5), "x^(−3/2)"),
    ]
    for e, want in cases:
        assert str(e) == want, (str(e), want)
        check_numeric(e, vals)
    for e, _ in cases[:4]:
        assert check_printed(e, vals)
    # folding that stays exact still folds: 2³ = 8, 2⁻¹ = 1/2
    assert str(md.const(2.0) ** md.const(3.0)) == "8"
    assert str(md.const(2.0) ** md.const(-1.0)) == "1/2"
    # a decimal no integers make stays one
    assert str(0.1 * x) == "0.1x" and str(x ** 0.1) == "x^0.1"


def test_trace_of_a_product_stays_a_trace(v):
    """Σᵢⱼ AᵢⱼXⱼᵢ reads as tr(AX), shorter than sum(A ⊙ Xᵀ) (issue 13, item 3)."""
    A, B, X = v["A"], v["B"], v["X"]
    vals = values(4)
    cases = [(md.tr(A @ X), "tr(AX)"), (md.tr(A @ X @ B), "tr(AXB)"),
             (md.tr(X @ X), "tr(X²)"), (md.sum(A * X), "sum(A ⊙ X)")]
    for e, want in cases:
        assert str(e) == want
        check_numeric(e, vals)
        assert check_printed(e, vals)


def test_the_ones_vector_prints_bold_and_reads_back(v):
    """The ones vector prints ``𝟏`` (issue 13), never ``1`` (``b1`` reads as a variable
    ``b1``); in a sum with a term of its shape a spread scalar is written as the
    scalar, as the paper writes scalar expansion (``x + b``, ``relu(W1 x + b1)``).
    Each printout is read back by the unicode syntax (an independent parser) and by
    this file's reader, and both are its value; the ASCII encoding keeps the product
    visible (``2*1``)."""
    from matdiff.render.ascii import to_ascii

    x, z, b = v["x"], v["z"], v["b"]
    vals = values(7)
    b1, W1 = md.scalar("b1"), md.matrix("W1", "n", "n")
    vals = {**vals, "b1": 0.7, "W1": vals["A"]}
    cases = [
        (x + b, "x + b", "x + b"),
        (x - 2 * b, "x − 2b", "x - 2b"),
        (1 - md.sigmoid(x), "1 − σ(x)", "1 - sigma(x)"),
        (md.derive(md.sum(x), x), "𝟏", "1"),
        (md.derive(md.sum(x) / 9, x), "(1/9)𝟏", "(1/9)*1"),
        (md.derive(2 * md.sum(x), x), "2𝟏", "2*1"),
        (md.hessian(md.sum(x) * md.sum(x), x), "2𝟏𝟏ᵀ", "2*1*1^T"),
        (md.outer(md.ones("n"), x), "𝟏xᵀ", "1x^T"),
        (md.derive(md.sum(x * z), x), "z𝟏", "z*1"),
        (md.relu(W1 @ x + b1), "relu(W1 x + b1)", "relu(W1 x + b1)"),
        (md.derive(md.log_softmax(x), x), "I − 𝟏softmax(x)ᵀ", "I - 1softmax(x)^T"),
    ]
    for e, text, ascii_text in cases:
        assert str(e) == text, (str(e), text)
        assert to_ascii(text) == ascii_text, (to_ascii(text), ascii_text)
        want = value(e, vals)
        shapes = {"x": ("n",), **{k: tuple(s) for k, s in e.variables().items()}}
        back = md.parse(text, shapes=shapes, syntax="unicode")
        got = evaluate(back, {k: vals[k] for k in back.variables()}, dims={"n": N})
        np.testing.assert_allclose(np.broadcast_to(got, want.shape), want, rtol=1e-12,
                                   err_msg=text)
        if "softmax" not in text and "relu" not in text:
            assert check_printed(e, vals), text
    # the old printout x + b1 is ambiguous: beside a variable b1 it reads as b1
    sh = {"x": ("n",), "b": (), "b1": ("n",)}
    assert set(md.parse("x + b1", shapes=sh, syntax="unicode").variables()) == {"x", "b1"}
    assert set(md.parse("x + b", shapes=sh, syntax="unicode").variables()) == {"x", "b"}
