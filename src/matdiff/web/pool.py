"""Worker processes that answer requests under a time limit.

A derivative can take long (a Hessian of a deep expression, a check at many points),
and Python cannot stop a computation in a thread.  So each request runs in one of
``size`` worker processes; the server's event loop waits for the answer on the
worker's pipe (never blocking) and, past the time limit, kills that worker, answers
503 and starts a fresh one in its place.  The other workers go on serving, and so
does the server.  Requests beyond the number of workers wait in line for a free one
(for at most ``queue_timeout`` seconds; then 503 too).

Workers are started with the ``spawn`` method (a new interpreter: nothing of the
server's threads or sockets is inherited) and import matdiff before they say they
are ready.

>>> import asyncio
>>> async def demo():
...     async with WorkerPool(size=1, timeout=30) as pool:
...         return await pool.run({"expr": "sum(x)", "wrt": None, "shapes": {},
...             "syntax": "numpy", "hessian": False, "layout": "mixed", "style": None,
...             "lang": "en", "explain": False, "code": None, "check": False})
>>> status, doc = asyncio.run(demo())
>>> status, doc["derivatives"][0]["text"]
(200, '𝟏')
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing as mp
import os
import time
from multiprocessing.connection import Connection
from typing import Any

#: the function a worker runs on each request: ``module:name``, ``(status, body)``
TARGET = "matdiff.web.api:respond"


def _worker(conn: Connection, target: str) -> None:  # pragma: no cover - in a child
    """A worker's loop: import the target, say ready, answer requests until EOF."""
    module, name = target.split(":")
    fn = getattr(importlib.import_module(module), name)
    conn.send("ready")
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        try:
            conn.send(fn(request))
        except Exception as exc:  # an answer that cannot be sent (not picklable)
            conn.send((500, {"error": f"internal error: {type(exc).__name__}: {exc}",
                             "position": None}))


class _Worker:
    def __init__(self, ctx: Any, target: str) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker, args=(child, target), daemon=True,
                                   name="matdiff-web-worker")
        self.process.start()
        child.close()
        self.jobs = 0

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


async def _receive(conn: Connection, timeout: float) -> Any:
    """The next message on ``conn``, waited for on the event loop (the pipe's file
    descriptor is watched: no thread blocks); :class:`TimeoutError` past ``timeout``."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future = loop.create_future()
    fd = conn.fileno()

    def on_readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, on_readable)
    try:
        await asyncio.wait_for(ready, timeout)
    finally:
        loop.remove_reader(fd)
    return conn.recv()


class WorkerPool:
    """``size`` worker processes; :meth:`run` answers one request in one of them
    within ``timeout`` seconds.  Use as ``async with WorkerPool(...) as pool``, or call
    :meth:`start` and :meth:`close`."""

    def __init__(self, size: int | None = None, timeout: float = 10.0,
                 queue_timeout: float = 30.0, target: str = TARGET,
                 start_timeout: float = 120.0) -> None:
        self.size: int = size or max(1, min(4, os.cpu_count() or 1))
        self.timeout: float = float(timeout)
        self.queue_timeout: float = float(queue_timeout)
        self.start_timeout: float = float(start_timeout)
        self.target = target
        self._ctx = mp.get_context("spawn")
        self._idle: asyncio.Queue[_Worker] | None = None
        self._all: set[_Worker] = set()
        self._starting: set[asyncio.Task] = set()
        self.stats: dict[str, int] = {"served": 0, "timeouts": 0, "restarts": 0, "busy": 0}

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the workers and wait until each has imported matdiff."""
        self._idle = asyncio.Queue()
        await asyncio.gather(*[self._spawn() for _ in range(self.size)])

    async def _spawn(self) -> None:
        w = _Worker(self._ctx, self.target)
        self._all.add(w)
        try:
            hello = await _receive(w.conn, self.start_timeout)
        except (asyncio.TimeoutError, EOFError, OSError):
            hello = None
        if hello != "ready":
            self._all.discard(w)
            w.kill()
            raise RuntimeError("a matdiff worker process did not start")
        assert self._idle is not None
        self._idle.put_nowait(w)

    def _replace(self, w: _Worker) -> None:
        """Kill ``w`` and start another in its place, in the background."""
        self._all.discard(w)
        w.kill()
        self.stats["restarts"] += 1
        task = asyncio.ensure_future(self._spawn())
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    @property
    def workers(self) -> int:
        """How many workers are alive (or starting)."""
        return len(self._all)

    async def run(self, request: Any) -> tuple[int, dict[str, Any]]:
        """``(status, body)``: the target's answer, or 503 when no worker was free in
        ``queue_timeout`` seconds or the answer took more than ``timeout``."""
        if self._idle is None:
            raise RuntimeError("the pool is not started")
        try:
            w = await asyncio.wait_for(self._idle.get(), self.queue_timeout)
        except asyncio.TimeoutError:
            self.stats["busy"] += 1
            return 503, {"error": "the server is busy: no worker was free within "
                                  f"{self.queue_timeout:g} s; try again",
                         "position": None}
        started = time.monotonic()
        try:
            w.conn.send(request)
            status, body = await _receive(w.conn, self.timeout)
        except asyncio.TimeoutError:
            self.stats["timeouts"] += 1
            self._replace(w)
            return 503, {"error": f"the derivation took longer than the limit of "
                                  f"{self.timeout:g} s and was stopped; try a smaller "
                                  "expression, or leave out the Hessian, the check or "
                                  "the steps", "position": None, "timeout": self.timeout}
        except (EOFError, OSError, BrokenPipeError):
            self._replace(w)
            return 500, {"error": "internal error: the worker process ended while "
                                  "answering (it may have run out of memory)",
                         "position": None}
        except BaseException:  # the request was cancelled (the client went away)
            self._replace(w)
            raise
        w.jobs += 1
        self.stats["served"] += 1
        self._idle.put_nowait(w)
        if status == 200:
            body["elapsed_ms"] = round(1000 * (time.monotonic() - started), 1)
        return status, body

    async def close(self) -> None:
        """Stop every worker."""
        for task in list(self._starting):
            task.cancel()
        for w in list(self._all):
            w.kill()
        self._all.clear()
