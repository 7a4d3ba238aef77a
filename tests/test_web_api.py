"""``matdiff serve``'s JSON API (shared/DESIGN.md, "Web"): the contract's fields, the
formulas it prints checked in numbers, the downloadable script run in a subprocess,
the limits (64 KB, nesting, time), bad input as JSON errors with a position, and 60
concurrent requests to a real server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the [web] extra (starlette) is not installed")
pytest.importorskip("httpx", reason="httpx (the test client) is not installed")

with warnings.catch_warnings():  # starlette 1.x would rather have httpx2 for its client
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

import matdiff as md  # noqa: E402
from matdiff.web import api, examples, server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PY = sys.executable
QUAD = {"expr": "x @ A @ x", "wrt": ["x"], "shapes": {"x": ["n"], "A": ["n", "n"]}}

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# ---------------------------------------------------------------- helpers (also targets
# of the worker processes in the time-limit tests: spawned workers import this module)
def sleepy(request: dict) -> tuple[int, dict]:
    """A worker target that takes longer than any limit of these tests."""
    time.sleep(30)
    return 200, {}


def crashing(request: dict) -> tuple[int, dict]:
    """A worker target whose process dies (as one killed for memory would)."""
    os._exit(1)


@pytest.fixture(scope="module")
def client():
    with TestClient(server.create_app(workers=2, timeout=60)) as c:
        yield c


def post(client, body: dict, status: int = 200) -> dict:
    r = client.post("/api/derive", json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def fd_gradient(fun, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of a scalar function, one coordinate at a time."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (fun(x + e) - fun(x - e)) / (2 * eps)
    return g


# ---------------------------------------------------------------- the contract
def test_the_contract_fields(client) -> None:
    doc = post(client, {**QUAD, "explain": True, "code": "numpy"})
    assert set(doc) >= {"function", "derivatives", "explanation", "code"}
    assert doc["function"]["text"] == "xᵀAx" and doc["function"]["shape"] == []
    [d] = doc["derivatives"]
    assert {"wrt", "text", "latex", "shape"} <= set(d)
    # ∂(xᵀAx)/∂x = (A + Aᵀ)x (Matrix Cookbook eq. 81)
    assert (d["wrt"], d["text"], d["shape"]) == ("x", "(A + Aᵀ)x", ["n"])
    assert d["latex"] == r"(A + A^\top) x"
    assert d["check"]["ok"] is True
    assert doc["explanation"]["derivations"][0]["wrt"] == "x"
    assert "def compiled(" in doc["code"]


def test_the_printed_gradient_is_right_in_numbers(client) -> None:
    """The text the page shows, read back and evaluated, is the finite-difference
    gradient (the check of this test is its own, not matdiff's)."""
    body = {"expr": "sum(log(1 + exp(-y * (X @ w))))", "wrt": ["w"],
            "shapes": {"X": ["N", "n"], "w": ["n"], "y": ["N"]}, "check": False}
    doc = post(client, body)
    shapes = {k: tuple(v) for k, v in body["shapes"].items()}
    printed = md.parse(doc["derivatives"][0]["text"], shapes=shapes, syntax="unicode")
    rng = np.random.default_rng(1)
    X, w, y = rng.standard_normal((5, 3)), rng.standard_normal(3), rng.standard_normal(5)

    def f(w_: np.ndarray) -> float:
        return float(np.sum(np.log1p(np.exp(-y * (X @ w_)))))

    got = printed.evaluate(X=X, w=w, y=y)
    assert np.allclose(got, fd_gradient(f, w), rtol=1e-6, atol=1e-8)
    # a planted wrong answer (the transpose left out of a square case is caught too)
    assert not np.allclose(got * 1.01, fd_gradient(f, w), rtol=1e-6, atol=1e-8)


def test_wrt_defaults_to_every_variable_in_the_order_of_the_text(client) -> None:
    doc = post(client, {"expr": "x @ A @ x", "check": False})
    assert [d["wrt"] for d in doc["derivatives"]] == ["x", "A"]
    assert doc["function"]["inferred"] == ["x", "A"]
    assert doc["function"]["variables"] == {"x": ["n"], "A": ["n", "n"]}
    # ∂(xᵀAx)/∂A = xxᵀ
    assert doc["derivatives"][1]["text"] == "xxᵀ"


def test_a_cancelled_variable_still_has_its_derivative(client) -> None:
    # x - x is the zero vector; its Jacobian by x is the n × n zero matrix
    doc = post(client, {"expr": "x - x", "shapes": {"x": ["n"]}})
    [d] = doc["derivatives"]
    assert (d["wrt"], d["text"], d["shape"]) == ("x", "0", ["n", "n"])


def test_shape_markers_are_read_or_refused(client) -> None:
    body = {"expr": "logdet(S)", "wrt": ["S"], "shapes": {"S": ["n", "n", "symmetric"]}}
    assert client.get("/api/health").json()["shape_markers"] is api.markers_supported()
    if api.markers_supported():
        assert post(client, body)["derivatives"][0]["shape"] == ["n", "n"]
    else:  # never taken for a third dim named "symmetric"
        doc = post(client, body, 400)
        assert "does not read shape markers" in doc["error"]
        assert "cookbook-symmetric" not in [e["id"] for e in examples.available()]


def test_dims_may_be_sums_and_products(client) -> None:
    # x of n + 1 elements: ∂ sum(x)/∂x = 1, a vector of n + 1 ones
    doc = post(client, {"expr": "sum(x)", "shapes": {"x": ["n+1"]}, "check": False})
    assert doc["function"]["variables"] == {"x": ["n + 1"]}
    assert doc["derivatives"][0]["shape"] == ["n + 1"]


def test_a_structured_variable_script_moves_within_its_structure(client, tmp_path) -> None:
    if not api.markers_supported():
        pytest.skip("this matdiff does not read shape markers")
    # ∂(aᵀSb)/∂S for a symmetric S is sym(abᵀ) = (abᵀ + baᵀ)/2 (MATH.md)
    for kind in ("symmetric", "diagonal"):
        body = {"expr": "a @ S @ b", "wrt": ["S"], "shapes": {"S": ["n", "n", kind]},
                "code": "numpy"}
        doc = post(client, body)
        assert doc["derivatives"][0]["check"]["ok"] is True
        ok = _run_script(doc["code"], tmp_path, f"{kind}.py")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        # a check along unstructured directions would fail: the projection matters
        plain = re.sub(r"    if STRUCTURE\.get\(w\)", "    if False and STRUCTURE.get(w)",
                       doc["code"])
        assert plain != doc["code"]
        bad = _run_script(plain, tmp_path, f"{kind}_plain.py")
        assert bad.returncode == 1 and "MISMATCH" in bad.stdout


def test_layouts_hessian_style_and_syntaxes(client) -> None:
    num = post(client, {**QUAD, "layout": "numerator", "check": False})
    # the paper's numerator layout: the gradient is a row, xᵀ(A + Aᵀ)
    assert num["derivatives"][0]["text"] == "xᵀ(A + Aᵀ)"
    assert num["layout_note"] == "(numerator layout)"
    hess = post(client, {**QUAD, "hessian": True})
    assert hess["derivatives"][0]["text"] == "A + Aᵀ"
    assert hess["derivatives"][0]["shape"] == ["n", "n"]
    assert hess["derivatives"][0]["check"]["ok"] is True
    paper = post(client, {"expr": "w / x", "wrt": ["x"], "style": "paper",
                          "shapes": {"w": ["n"], "x": ["n"]}, "check": False})
    # the paper's ∂(w ⊘ x)/∂x = diag(−w ⊘ x²)
    assert paper["derivatives"][0]["text"] == "diag(−w ⊘ x²)"
    mc = post(client, {"expr": "x'*A*x", "syntax": "matrixcalculus", "wrt": ["x"],
                       "check": False})
    assert mc["derivatives"][0]["text"] == "(A + Aᵀ)x"
    uni = post(client, {"expr": "xᵀAx", "syntax": "unicode", "wrt": ["x"], "check": False,
                        "shapes": {"x": ["n"], "A": ["n", "n"]}})
    assert uni["derivatives"][0]["text"] == "(A + Aᵀ)x"


def test_explanation_in_english_and_chinese(client) -> None:
    body = {"expr": "sum(w * x)", "wrt": ["w"], "shapes": {"w": ["n"], "x": ["n"]},
            "explain": True}
    en = post(client, body)["explanation"]
    zh = post(client, {**body, "lang": "zh"})["explanation"]
    assert en["lang"] == "en" and zh["lang"] == "zh"
    [d_en], [d_zh] = en["derivations"], zh["derivations"]
    # the paper's example 8: ∂y/∂w = 𝟏ᵀ diag(x) = xᵀ
    assert "𝟏ᵀ diag(x)" in d_en["chain"]["text"] and d_en["result"]["numerator"] == "xᵀ"
    assert "Intermediate variables" in d_en["plain"]
    assert re.search(r"[\u4e00-\u9fff]", d_zh["plain"])
    assert d_en["latex"].startswith(r"\begin{aligned}")


def test_a_hessian_has_no_steps_and_says_why(client) -> None:
    doc = post(client, {**QUAD, "hessian": True, "explain": True, "check": False})
    assert doc["explanation"] is None
    assert any("first derivatives" in n for n in doc["notes"])


def test_latex_of_every_answer_parses_in_katex(client) -> None:
    from katex import katex_errors

    items = []
    for body in (QUAD, {**QUAD, "layout": "denominator"},
                 {"expr": "mean((y - max(0, X @ w + b))**2)", "explain": True,
                  "shapes": {"X": ["N", "n"], "w": ["n"], "y": ["N"], "b": []}}):
        doc = post(client, {**body, "check": False})
        items.append(doc["function"]["latex"])
        items += [d["label_latex"] + " = " + d["latex"] for d in doc["derivatives"]]
        for der in (doc["explanation"] or {}).get("derivations", []):
            items.append(der["latex"])
    assert katex_errors(items) == []


# ---------------------------------------------------------------- the script
def _run_script(code: str, tmp_path: Path, name: str) -> subprocess.CompletedProcess:
    path = tmp_path / name
    path.write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([PY, str(path)], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)


@pytest.mark.parametrize("backend", ["numpy", "jax", "torch"])
def test_the_downloaded_script_runs_and_checks_itself(client, tmp_path, backend) -> None:
    pytest.importorskip(backend)
    body = {"expr": "sum(log(1 + exp(-y * (X @ w)))) + b * sum(w * w)",
            "wrt": ["w", "b"], "shapes": {"X": ["N", "n"], "w": ["n"], "y": ["N"],
                                         "b": []}, "code": backend, "check": False}
    code = post(client, body)["code"]
    ok = _run_script(code, tmp_path, "good.py")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "self-check: OK" in ok.stdout and "MISMATCH" not in ok.stdout
    # plant a wrong answer: the gradient by w off by 1% -- the script's own check fails
    wrong = re.sub(r"return \((\w+), (\w+), (\w+)\)", r"return (\1, 1.01 * \2, \3)", code)
    assert wrong != code
    bad = _run_script(wrong, tmp_path, "bad.py")
    assert bad.returncode == 1 and "MISMATCH" in bad.stdout, bad.stdout + bad.stderr


def test_a_hessian_script_checks_the_hessian(client, tmp_path) -> None:
    code = post(client, {**QUAD, "hessian": True, "code": "numpy", "check": False})["code"]
    ok = _run_script(code, tmp_path, "h.py")
    assert ok.returncode == 0 and "self-check d2f/dx2" in ok.stdout, ok.stdout + ok.stderr
    wrong = re.sub(r"return \((\w+), (\w+), (\w+)\)", r"return (\1, \2, 2.0 * \3)", code)
    assert wrong != code
    bad = _run_script(wrong, tmp_path, "hbad.py")
    assert bad.returncode == 1 and "MISMATCH" in bad.stdout


def test_the_script_never_carries_the_text_as_code() -> None:
    """The expression's text goes into the script's docstring only, with quotes and
    backslashes made harmless."""
    from matdiff.web.script import _doc_safe

    assert '"' not in _doc_safe('a"""b') and "\\\\" in _doc_safe("a\\b")


# ---------------------------------------------------------------- bad input
def test_a_syntax_error_has_its_position(client) -> None:
    doc = post(client, {"expr": "x +* y"}, 400)
    assert doc["position"] == [3, 4] and doc["kind"] == "ParseError"
    assert "unexpected '*'" in doc["error"]
    assert doc["caret"] == "  x +* y\n     ^"


def test_a_shape_error_names_both_sides(client) -> None:
    doc = post(client, {"expr": "x @ A @ y", "shapes": {"x": ["n"], "A": ["m", "m"],
                                                         "y": ["m"]}}, 400)
    assert doc["kind"] == "ShapeError" and doc["position"] == [0, 1]
    assert doc["spans"] == [[0, 1], [4, 5]]


def test_positions_count_characters_not_bytes(client) -> None:
    doc = post(client, {"expr": "α + * β"}, 400)
    assert doc["position"] == [4, 5]


def test_an_unknown_function_suggests_names(client) -> None:
    doc = post(client, {"expr": "sum(sine(x))"}, 400)
    assert doc["position"] == [4, 8] and "sin" in doc["error"]


@pytest.mark.parametrize("body, words", [
    ({"expr": "x", "wrt": ["y"]}, "cannot differentiate by 'y'"),
    ({"expr": ""}, "'expr' must be"),
    ({"expr": 3}, "'expr' must be"),
    ({"expr": "x", "layout": "sideways"}, "'layout' must be one of"),
    ({"expr": "x", "lang": "fr"}, "'lang' must be one of"),
    ({"expr": "x", "code": "c++"}, "'code' must be one of"),
    ({"expr": "x", "hessian": "yes"}, "'hessian' must be true or false"),
    ({"expr": "x", "shapes": {"x": "n;m"}}, "a dim of 'x' must be a name"),
    ({"expr": "x", "shapes": {"x": ["n-"]}}, "cannot read the dim 'n-'"),
    ({"expr": "x", "shapes": {"x": [[1]]}}, "a dim of 'x' must be a name or a size"),
    ({"expr": "x", "shapes": [1]}, "'shapes' must be an object"),
    ({"expr": "x", "wrt": [1]}, "'wrt' must be a list"),
    ({"expr": "x", "hesian": True}, "unknown field 'hesian'"),
    ([1, 2], "must be a JSON object"),
])
def test_bad_fields_are_400_with_a_message(client, body, words) -> None:
    r = client.post("/api/derive", json=body)
    assert r.status_code == 400
    doc = r.json()
    assert set(doc) >= {"error", "position"} and words in doc["error"], doc


def test_bodies_that_are_not_json(client) -> None:
    r = client.post("/api/derive", content=b'{"expr": ', headers={
        "content-type": "application/json"})
    assert r.status_code == 400 and "not JSON (line 1" in r.json()["error"]
    r = client.post("/api/derive", content=b"\xff\xfe", headers={
        "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["position"] is None
    r = client.post("/api/derive", content=b"expr=x", headers={
        "content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and "JSON" in r.json()["error"]


def test_routes_that_do_not_exist_answer_json(client) -> None:
    r = client.get("/api/derive")
    assert r.status_code == 405 and r.json() == {
        "error": "GET is not allowed on /api/derive", "position": None}
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.json()["error"] == "not found: /api/nothing"


# ---------------------------------------------------------------- limits
def test_a_body_over_64_kb_is_413(client) -> None:
    big = json.dumps({"expr": "x + " * 20_000 + "x"}).encode()
    assert len(big) > api.MAX_BODY
    r = client.post("/api/derive", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "64 KB" in r.json()["error"]

    def chunks():  # no Content-Length: the limit holds on the bytes read
        for k in range(0, len(big), 8192):
            yield big[k:k + 8192]

    r = client.post("/api/derive", content=chunks(),
                    headers={"content-type": "application/json"})
    assert r.status_code == 413
    # just under the limit is read (and is a long, valid sum)
    ok = json.dumps({"expr": "x + " * 15_000 + "x", "check": False})
    assert len(ok) < api.MAX_BODY
    assert client.post("/api/derive", content=ok,
                       headers={"content-type": "application/json"}).status_code == 200


def test_a_too_deep_expression_is_a_clear_400(client) -> None:
    doc = post(client, {"expr": "(" * 300 + "x" + ")" * 300}, 400)
    assert "nested more than 200 levels" in doc["error"] and doc["kind"] == "LimitError"
    doc = post(client, {"expr": "sin(" * 300 + "x" + ")" * 300}, 400)
    assert "nested more than 200 levels" in doc["error"]


def test_a_derivation_past_the_time_limit_is_stopped_and_the_server_goes_on() -> None:
    with TestClient(server.create_app(workers=1, timeout=1.0,
                                      target=f"{__name__}:sleepy")) as c:
        t0 = time.monotonic()
        r = c.post("/api/derive", json={"expr": "x"})
        assert r.status_code == 503 and "longer than the limit of 1 s" in r.json()["error"]
        assert r.json()["position"] is None
        assert time.monotonic() - t0 < 10
        assert c.app.state.pool.stats["timeouts"] == 1
        # the worker was replaced: the next request gets a fresh one (and times out too)
        assert c.post("/api/derive", json={"expr": "x"}).status_code == 503
        assert c.get("/api/health").json()["workers"] == 1


def test_a_real_slow_derivation_is_stopped_and_a_quick_one_still_served() -> None:
    e = "x"
    for k in range(40):
        e = f"tanh(A @ {e})*sin({'x' if k % 2 else 'y'})"
    slow = {"expr": f"sum({e})", "hessian": True, "code": "numpy",
            "shapes": {"x": ["n"], "A": ["n", "n"], "y": ["n"]}}
    with TestClient(server.create_app(workers=2, timeout=0.5)) as c:
        r = c.post("/api/derive", json=slow)
        assert r.status_code == 503, r.text[:300]
        r = c.post("/api/derive", json={**QUAD, "check": False})
        assert r.status_code == 200 and r.json()["derivatives"][0]["text"] == "(A + Aᵀ)x"


def test_a_worker_that_dies_is_a_json_500_and_is_replaced() -> None:
    with TestClient(server.create_app(workers=1, timeout=20,
                                      target=f"{__name__}:crashing")) as c:
        r = c.post("/api/derive", json={"expr": "x"})
        assert r.status_code == 500 and "worker process ended" in r.json()["error"]
        assert c.app.state.pool.stats["restarts"] == 1


def test_an_unknown_host_is_refused() -> None:
    with TestClient(server.create_app(workers=1, allowed_hosts=["127.0.0.1"]),
                    base_url="http://127.0.0.1") as c:
        assert c.get("/api/health").status_code == 200
        r = c.get("/api/health", headers={"host": "evil.example"})
        assert r.status_code == 400 and "unknown host" in r.json()["error"]


# ---------------------------------------------------------------- the page and its files
def test_the_page_and_its_files_are_served(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'id="expr"' in page.text
    for path in ("/static/app.js", "/static/style.css"):
        assert client.get(path).status_code == 200
    if server.katex_dir() is None:
        pytest.skip("KaTeX is not installed (npm install --prefix .katex katex)")
    assert client.get("/static/katex/katex.min.js").status_code == 200
    css = client.get("/static/katex/katex.min.css").text
    font = re.search(r"url\((fonts/KaTeX_Main-Regular\.woff2)\)", css).group(1)
    assert client.get(f"/static/katex/{font}").status_code == 200


def test_the_page_uses_no_other_site() -> None:
    """Offline: the page, its script and its style name no address outside the server."""
    static = Path(server.__file__).parent / "static"
    for name in ("index.html", "app.js", "style.css"):
        text = (static / name).read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), name
        assert "cdn" not in text.lower(), name


def test_the_built_package_ships_katex(tmp_path) -> None:
    """``pip install ".[web]"`` builds a wheel with KaTeX inside (build_katex.py)."""
    if server.katex_dir() is None and not os.environ.get("CI"):
        pytest.skip("KaTeX is not installed (npm install --prefix .katex katex)")
    out = subprocess.run([PY, "-m", "pip", "wheel", "--no-deps",
                          "-q", "-w", str(tmp_path), str(ROOT)], capture_output=True,
                         text=True, timeout=600, env={**os.environ,
                                                      "MATDIFF_KATEX_NPM": "0"})
    assert out.returncode == 0, out.stderr[-2000:]
    [wheel] = tmp_path.glob("matdiff-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for n in ("matdiff/web/static/index.html", "matdiff/web/static/app.js",
              "matdiff/web/static/katex/katex.min.js",
              "matdiff/web/static/katex/katex.min.css",
              "matdiff/web/static/katex/fonts/KaTeX_Main-Regular.woff2",
              "matdiff/web/static/katex/LICENSE"):
        assert n in names, n


# ---------------------------------------------------------------- the examples menu
def test_every_example_shown_derives_and_checks(client) -> None:
    shown = examples.available()
    assert len(shown) >= 20
    # only examples that need a part of the language still being added may be missing
    missing = [e for e in examples.EXAMPLES if e not in shown]
    assert all(e.get("needs") for e in missing), [e["id"] for e in missing]
    assert client.get("/api/examples").json()["examples"] == shown
    for e in shown:
        doc = post(client, examples.request_of(e))
        for d in doc["derivatives"]:
            assert d["check"]["status"] == "ok", (e["id"], d["wrt"], d["check"]["text"])


def test_the_paper_examples_give_the_paper_answers(client) -> None:
    by_id = {e["id"]: e for e in examples.available()}

    def texts(id_: str) -> list[str]:
        body = {**examples.request_of(by_id[id_]), "check": False, "explain": False}
        return [d["text"] for d in post(client, body)["derivatives"]]

    assert texts("paper-4-product") == ["diag(x)", "diag(w)"]
    assert texts("paper-3") == ["I"]
    assert texts("paper-8") == ["xᵀ", "wᵀ"]          # numerator layout, as the paper
    assert texts("cookbook-100") == ["Aᵀ"]
    assert texts("cookbook-57") == ["X⁻ᵀ"]
    # the paper's examples 1, 2 and 7: ∇(3x²y) = [6yx, 3x²]; the Jacobian of
    # [3x²y, 2x + y⁸] by x and by y, column by column; d[ln(x²), sin(3x)]/dx
    assert texts("paper-1") == ["6xy", "3x²"]
    if "paper-2-jacobian" in by_id:  # stacking, where matdiff reads [a, b]
        assert texts("paper-2-jacobian") == ["[6xy, 2]", "[3x², 8y⁷]"]
        assert texts("paper-7") == ["[2/x, 3cos(3x)]"]


# ---------------------------------------------------------------- the command
def test_serve_help_through_the_matdiff_command() -> None:
    out = subprocess.run([PY, "-m", "matdiff", "serve", "--help"], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=60)
    assert out.returncode == 0
    assert "--host" in out.stdout and "--port" in out.stdout and "8765" in out.stdout


def test_a_non_loopback_host_warns(monkeypatch, capsys) -> None:
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw))
    assert server.main(["--host", "0.0.0.0", "--port", "9"]) == 0
    assert seen["host"] == "0.0.0.0" and seen["port"] == 9
    assert "warning: listening on 0.0.0.0" in capsys.readouterr().err
    assert server.main(["--port", "9"]) == 0
    assert seen["host"] == "127.0.0.1" and "warning" not in capsys.readouterr().err


def test_bad_command_options_are_errors() -> None:
    from matdiff.cli import main

    assert main(["serve", "--timeout", "0"]) == 2
    assert main(["serve", "--workers", "0"]) == 2


# ---------------------------------------------------------------- a real server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([PY, "-m", "matdiff", "serve", "--port", str(port),
                                 "--workers", "2"], stderr=err, stdout=err,
                                env={**os.environ, "PYTHONPATH": str(SRC)})
    url = f"http://127.0.0.1:{port}"
    import httpx

    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
            if proc.poll() is not None:
                raise RuntimeError(log.read_text())
        yield url, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_60_concurrent_requests(live_server) -> None:
    import httpx

    url, log = live_server

    async def one(client: httpx.AsyncClient, k: int) -> tuple[int, str, str]:
        r = await client.post(url + "/api/derive", json={
            "expr": f"sum({k} * x * x)", "wrt": ["x"], "shapes": {"x": ["n"]},
            "check": False})
        return r.status_code, r.json()["derivatives"][0]["text"], str(2 * k)

    async def all_of_them() -> list:
        async with httpx.AsyncClient(timeout=120) as client:
            return await asyncio.gather(*[one(client, k) for k in range(1, 61)])

    t0 = time.monotonic()
    results = asyncio.run(all_of_them())
    elapsed = time.monotonic() - t0
    assert [s for s, _, _ in results] == [200] * 60
    # each answer is its own request's: ∂ sum(k x ⊙ x)/∂x = 2k x
    assert all(text == f"{two_k}x" for _, text, two_k in results), results
    assert elapsed < 100
    lines = [json.loads(ln) for ln in log.read_text().splitlines() if ln.startswith("{")]
    posts = [ln for ln in lines if ln.get("path") == "/api/derive"]
    assert len(posts) >= 60 and all(ln["status"] == 200 and "ms" in ln for ln in posts)
