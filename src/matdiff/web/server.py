"""``matdiff serve``: the Starlette application and the command that runs it on uvicorn.

Routes:

* ``GET /`` the page (``static/index.html``; ``/?expr=...&wrt=...&shapes=...&syntax=...``
  is a permalink that the page's script reads);
* ``GET /static/...`` its script and style, ``/static/katex/...`` KaTeX (shipped in the
  package: :func:`katex_dir`);
* ``POST /api/derive`` the JSON API (:mod:`matdiff.web.api`), answered in a pool of
  worker processes under a time limit (:mod:`matdiff.web.pool`);
* ``GET /api/examples`` the examples menu, ``GET /api/health`` the server's state.

Every error is JSON ``{"error": message, "position": [start, end] | null}``: 400 bad
input, 404, 405, 413 a body over 64 KB, 415 a body that is not JSON, 503 past the time
limit or with every worker busy.  Each request is logged as one JSON line on standard
error.  Starlette and uvicorn come with ``pip install "matdiff[web]"``; this module
imports them only when an application is made.

>>> from starlette.testclient import TestClient
>>> with TestClient(create_app(workers=1)) as client:
...     r = client.post("/api/derive", json={"expr": "sum(x * x)", "check": False})
>>> r.status_code, r.json()["derivatives"][0]["text"]
(200, '2x')
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import api
from .examples import available

STATIC = Path(__file__).resolve().parent / "static"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")

log: logging.Logger = logging.getLogger("matdiff.web")


# ---------------------------------------------------------------- logging
class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's
    ``fields`` (``log.info("request", extra={"fields": {...}})``)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                    + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def log_config(level: str = "info") -> dict[str, Any]:
    """The logging setup (``logging.config.dictConfig``) of the server and uvicorn: JSON
    lines on standard error."""
    handler = {"class": "logging.StreamHandler", "formatter": "json",
               "stream": "ext://sys.stderr"}
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": handler},
        "loggers": {name: {"handlers": ["json"], "level": level.upper(), "propagate": False}
                    for name in ("matdiff.web", "uvicorn", "uvicorn.error")},
    }


# ---------------------------------------------------------------- KaTeX
def katex_dir() -> Path | None:
    """Where KaTeX's ``katex.min.js``, ``katex.min.css`` and ``fonts/`` are: in the
    package (``static/katex``, copied from npm's katex when the package is built), else
    ``$MATDIFF_KATEX`` (a ``node_modules/katex`` folder), else a source checkout's
    ``.katex/node_modules/katex`` (``npm install --prefix .katex katex``); ``None``
    without KaTeX (the page then shows formulas as Unicode text)."""
    candidates = [STATIC / "katex"]
    if os.environ.get("MATDIFF_KATEX"):
        candidates.append(Path(os.environ["MATDIFF_KATEX"]) / "dist")
    for up in Path(__file__).resolve().parents:
        candidates.append(up / ".katex" / "node_modules" / "katex" / "dist")
    candidates.append(Path.cwd() / ".katex" / "node_modules" / "katex" / "dist")
    for c in candidates:
        if (c / "katex.min.js").is_file() and (c / "katex.min.css").is_file():
            return c
    return None


# ---------------------------------------------------------------- the app
def create_app(workers: int | None = None, timeout: float = 10.0,
               queue_timeout: float = 30.0, allowed_hosts: Sequence[str] | None = None,
               target: str | None = None) -> Any:
    """The ASGI application.  ``workers`` processes (default: up to 4) answer
    ``/api/derive``, each request within ``timeout`` seconds; ``allowed_hosts``, where
    given, are the only ``Host`` headers served (a page elsewhere cannot reach a
    loopback server through a name that points to it); ``target`` replaces the
    function the workers run (``module:name``, for tests)."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import BaseRoute, Mount, Route
    from starlette.staticfiles import StaticFiles

    from .pool import TARGET, WorkerPool

    pool = WorkerPool(size=workers, timeout=timeout, queue_timeout=queue_timeout,
                      target=target or TARGET)
    katex = katex_dir()

    def error(status: int, message: str, **extra: Any) -> JSONResponse:
        return JSONResponse({"error": message, "position": None, **extra}, status)

    async def read_body(request: Request) -> bytes | JSONResponse:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > api.MAX_BODY):
            return error(413, f"the request body is over {api.MAX_BODY // 1024} KB")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > api.MAX_BODY:
                return error(413, f"the request body is over {api.MAX_BODY // 1024} KB")
            chunks.append(chunk)
        return b"".join(chunks)

    async def derive(request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            return error(415, "send the request as JSON (Content-Type: application/json)")
        body = await read_body(request)
        if isinstance(body, Response):
            return body
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            where = f" (line {exc.lineno}, column {exc.colno})" \
                if isinstance(exc, json.JSONDecodeError) else ""
            return error(400, f"the request body is not JSON{where}: "
                              f"{getattr(exc, 'msg', exc)}")
        try:
            req = api.validate(doc)
        except api.RequestError as exc:
            return JSONResponse(exc.body(), exc.status)
        request.state.fields = {"expr_chars": len(req["expr"]), "wrt": req["wrt"],
                                "hessian": req["hessian"], "code": req["code"]}
        status, answer = await pool.run(req)
        if status != 200:
            request.state.fields["error"] = str(answer.get("error", ""))[:200]
        return JSONResponse(answer, status)

    async def examples(request: Request) -> Response:
        return JSONResponse({"examples": available()})

    async def health(request: Request) -> Response:
        from .. import __version__

        return JSONResponse({"ok": True, "version": __version__, "workers": pool.workers,
                             "timeout": pool.timeout, "katex": katex is not None,
                             "shape_markers": api.markers_supported(),
                             "stats": pool.stats})

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = {404: f"not found: {request.url.path}",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(
            exc.status_code, str(exc.detail))
        return error(exc.status_code, message)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("internal error", extra={"fields": {"path": request.url.path}})
        return error(500, f"internal error: {type(exc).__name__}")

    @asynccontextmanager
    async def lifespan(app: Any):
        await pool.start()
        log.info("workers started", extra={"fields": {"workers": pool.workers,
                                                      "timeout": pool.timeout,
                                                      "katex": str(katex)}})
        try:
            yield
        finally:
            await pool.close()

    routes: list[BaseRoute] = [
        Route("/", index, methods=["GET"]),
        Route("/api/derive", derive, methods=["POST"]),
        Route("/api/examples", examples, methods=["GET"]),
        Route("/api/health", health, methods=["GET"]),
    ]
    if katex is not None:
        routes.append(Mount("/static/katex", StaticFiles(directory=katex), name="katex"))
    routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
    middleware = [Middleware(_LogRequests)]
    if allowed_hosts:
        middleware.append(Middleware(_HostCheck, allowed=allowed_hosts))
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error, 500: server_error})
    app.state.pool = pool
    return app


class _LogRequests:
    """ASGI middleware: one JSON log line per HTTP request (method, path, status,
    milliseconds, and what the route added in ``request.state.fields``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.monotonic(), [0]

        async def send_logged(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            fields = {"method": scope.get("method"), "path": scope.get("path"),
                      "status": status[0],
                      "ms": round(1000 * (time.monotonic() - started), 1)}
            client = scope.get("client")
            if client:
                fields["client"] = client[0]
            fields.update(scope.get("state", {}).get("fields", {}) if isinstance(
                scope.get("state"), dict) else {})
            log.info("request", extra={"fields": fields})


class _HostCheck:
    """ASGI middleware: a request whose ``Host`` header names none of ``allowed`` gets a
    JSON 400 (a web page elsewhere cannot reach a loopback server through a DNS name
    that points to it: DNS rebinding)."""

    def __init__(self, app: Any, allowed: Sequence[str]) -> None:
        self.app, self.allowed = app, {h.lower() for h in allowed}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name.lower() not in self.allowed:
                from starlette.responses import JSONResponse

                response = JSONResponse({"error": f"unknown host {host!r}: this server "
                                         "answers to " + ", ".join(sorted(self.allowed)),
                                         "position": None}, 400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# ---------------------------------------------------------------- the command
def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or name (only this machine reaches it).

    >>> [is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "10.1.2.3")]
    [True, True, True, False, False]
    """
    if host.strip("[]") in ("localhost", "::1"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="matdiff serve",
        description="Serve matdiff's web page and JSON API: type an expression, get its\n"
                    "derivative typeset (KaTeX ships inside the package: no internet\n"
                    "needed), step by step, checked in numbers, and as NumPy/JAX/PyTorch "
                    "code.",
        epilog="examples:\n"
               "  matdiff serve                      http://127.0.0.1:8765/\n"
               "  matdiff serve --port 9000 --workers 2 --timeout 20\n"
               "  curl -s localhost:8765/api/derive -H 'Content-Type: application/json' \\\n"
               "       -d '{\"expr\": \"x @ A @ x\", \"wrt\": [\"x\"]}'\n"
               "  http://127.0.0.1:8765/?expr=x%20%40%20A%20%40%20x&wrt=x   a permalink\n\n"
               "Requests are parsed, never run: the code on the page is generated as text.\n"
               "Each derivation runs in a worker process and is stopped past --timeout.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; "
                        "another address is reachable from the network, with a warning)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes that compute derivatives (default: the CPUs, "
                        "at most 4)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds a derivation may take before it is stopped (default 10)")
    p.add_argument("--log-level", default="info",
                   choices=("debug", "info", "warning", "error"),
                   help="log level of the JSON log lines on standard error")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``matdiff serve [--host 127.0.0.1] [--port 8765]``; returns the exit status."""
    import logging.config

    from ..errors import MatdiffError

    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if not 0 <= args.port <= 65535:
        raise MatdiffError(f"--port must be from 0 to 65535, not {args.port}")
    if args.timeout <= 0:
        raise MatdiffError(f"--timeout must be a positive number of seconds, not "
                           f"{args.timeout:g}")
    if args.workers is not None and not 1 <= args.workers <= 64:
        raise MatdiffError(f"--workers must be from 1 to 64, not {args.workers}")
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ModuleNotFoundError:
        raise MatdiffError("'matdiff serve' needs Starlette and uvicorn: pip install "
                           "\"matdiff[web]\"") from None
    logging.config.dictConfig(log_config(args.log_level))
    loopback = is_loopback(args.host)
    if not loopback:
        print(f"matdiff serve: warning: listening on {args.host}, which is not a "
              "loopback address: other machines can reach this server and use its CPU "
              "(it runs no code from requests, but it has no authentication)",
              file=sys.stderr)
    host_for_url = f"[{args.host}]" if ":" in args.host else args.host
    allowed = None
    if loopback:
        allowed = sorted({*LOOPBACK_NAMES, args.host, "127.0.0.1"})
    app = create_app(workers=args.workers, timeout=args.timeout, allowed_hosts=allowed)
    if katex_dir() is None:
        print("matdiff serve: note: KaTeX is not installed with this package, so formulas "
              "show as Unicode text (see README, 'matdiff serve')", file=sys.stderr)
    print(f"matdiff serve: http://{host_for_url}:{args.port}/  (Ctrl+C stops it)",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_config=log_config(args.log_level),
                access_log=False, server_header=False)
    return 0
