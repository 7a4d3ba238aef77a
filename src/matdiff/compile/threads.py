"""Two cores where they pay: the thread policy of the compiled NumPy code.

One place decides how a compiled NumPy function uses the cores the process may run
on (:func:`threads`: 2 where two cores are free for it and BLAS was given two
threads, else 1).  With one, nothing here runs.  With two, each specialisation
(:func:`policy`, called once per generated code by ``compile/api.py``) runs as
:func:`mode` (``MATDIFF_THREAD_POLICY``) says:

* ``"auto"`` (the default): **measured where it runs** (:class:`Tuned`): the first
  calls go in turn to each of the ways below (one BLAS thread; BLAS on its own
  threads; the halves, where they apply), the fastest median is kept, and the
  measurement is taken again after :data:`RETUNE_CALLS` calls or :data:`RETUNE_S`
  seconds, or at once when the chosen way gets :data:`SLOWER` times slower (the
  machine's load changed).  No one way wins everywhere: on this 2-core machine,
  quiet, two BLAS threads took the MLP 784-512-10's training step from 13.2 to
  8.05 ms; shared with other sessions' test runs (load average 2–9), they made it
  4–5x slower than one thread, and 784-128-10's 50x.
* ``"one_blas"``: **BLAS held to one thread** (:class:`OneBlasThread`) for the
  call.  OpenBLAS splits a product over its two threads and its worker busy-waits
  after each call; on a loaded two-core machine the call then waits for a core.
  Measured here under load: the 2-thread ``X @ w`` at 10⁴ x 100 took 8–23 ms (a
  scheduler time slice or more) against 0.24–0.5 ms on one thread, the
  logistic-regression gradient 16–52 ms against 1.0–1.7 ms; the MLP 784-128-10's
  training step 6.5–120 ms against 1.4–2.3 ms, 784-512-10's 10.5–226 ms against
  14–49 ms, and one 784-1024-10 step at a batch of 1024 368 ms against 177 ms.
  XLA emits its matrix-vector products as loops on the calling thread
  (``tiled_dot_emitter.cc``) and runs its GEMMs on a pool of two Eigen threads;
  under that load its step took about the one-thread step's time (0.77–1.2 of it),
  with about one core (CPU time / wall time 0.4–1.0).
* ``"halves"``: where the products are bound by arithmetic (more than
  :data:`SPLIT_INTENSITY` multiply-adds per byte of their operands and results,
  from :data:`MIN_SPLIT_MACS` multiply-adds) and the outputs are rows or sums over
  rows of the batch (:func:`~.rowblock.analyse`, the one-pass loop's analysis,
  reused): **the batch in two halves** (:class:`~.rowblock.RowBlocked` of two
  blocks), each run by the same generated code on its own Python thread with BLAS
  on one thread, the sums added; elsewhere as ``"one_blas"``.  The element-wise
  calls run on both cores too, but under load it lost to ``"one_blas"``
  (784-128-10: 1.1–3.2x JAX against 0.84–1.2x; 784-1024-10: 217 against 177 ms): a
  half that gives up the GIL for a BLAS call waits up to the interpreter's switch
  interval (5 ms) to get it back while the other half runs Python.
* ``"off"``: the code as generated, BLAS on its own threads.

Products that OpenBLAS runs on one thread anyway (a matrix-vector product under
:data:`SMALL_MACS` entries, a matrix product under :data:`GEMM_THREADED`
multiply-adds) are left alone: holding BLAS costs 2–5 µs a call (10% of the
10-32-1 network's step).  Row-blocked code (``rowblock.py``) holds BLAS itself.
Products are costed pairwise in opt_einsum's greedy order, as ``rowblock._row_macs``
costs them.  BLAS is held through threadpoolctl's controller (made at the first
call that needs it, never at import: listing the libraries takes ~0.5 ms, a limit
through its ``limit()`` 9–14 µs, each library's own setter ~1 µs); nothing
process-wide changes outside a call, and where threadpoolctl is missing the code
runs as generated.

>>> import numpy as np, matdiff as md
>>> X, w = md.matrix("X", "N", "d"), md.vector("w", "d")
>>> f = md.mean(md.log(1 + md.exp(-(X @ w))))
>>> rng = np.random.default_rng(0)
>>> vals = {"X": rng.standard_normal((2000, 50)), "w": np.zeros(50)}
>>> fn = md.compile([f, md.derive(f, w)])
>>> v, g = fn(vals)
>>> kind = type(fn.specialised(vals)).__name__   # Tuned on two cores
>>> kind in ("function", "Tuned")
True
>>> bool(np.isclose(v, np.log(2)))
True
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..expr.core import Einsum, Expr, topo_order
from ..expr.dims import dim_size

__all__ = ["threads", "mode", "holds", "one_blas_thread", "pair", "policy", "products",
           "OneBlasThread", "Tuned", "MODES", "TUNE_CALLS", "RETUNE_CALLS", "RETUNE_S",
           "SLOWER", "SLOW_RUN",
           "SMALL_MACS", "GEMM_THREADED", "MIN_SPLIT_MACS", "SPLIT_INTENSITY",
           "MIN_HALF_ROWS", "DOT_THREADED"]

#: OpenBLAS runs a matrix-vector product of fewer than 2304·4 = 9216 entries, and a
#: matrix product of fewer than 65536·4 multiply-adds, on one thread anyway
#: (interface/gemv.c, gemm.c: GEMM_MULTITHREAD_THRESHOLD 4): where every product is
#: smaller, BLAS is left as it is (holding it costs 2–5 µs a call: 10% of the
#: 10-32-1 network's step)
SMALL_MACS = 9216
GEMM_THREADED = 262144
#: the batch is split in halves only from this many multiply-adds in all (a split
#: costs ~50 µs: two more generated calls, the other thread's wake-up; measured on
#: the neuron's step, 22 µs whole against 75 µs in halves)
MIN_SPLIT_MACS = 4_000_000
#: the policies (:func:`mode`)
MODES = ("auto", "one_blas", "halves", "off")
_MODE: list[str] = []
#: above this many multiply-adds per byte of the products' operands and results a
#: function is bound by arithmetic (policy ``"halves"`` splits its batch): a GEMV is
#: 0.125, the MLP 784-128-10's loss and gradients at a batch of 64 about 5
SPLIT_INTENSITY = 2.0
#: OpenBLAS splits a dot product over its threads from this many entries on
#: (interface/dot.c): the training step's Σg² check (``nn/train.py``) holds BLAS to
#: one thread above it
DOT_THREADED = 10000
#: the batch is split in halves only from this many rows each (a half costs a few
#: µs of Python calls and a wake-up of the other thread, ~20 µs)
MIN_HALF_ROWS = 16


# ------------------------------------------------------------------ how many threads
_THREADS: list[int] = []


def threads() -> int:
    """Threads for the compiled NumPy code: 2 where the process may run on two cores
    and BLAS was allowed two threads (``OPENBLAS_NUM_THREADS`` and friends, read
    once), else 1; ``MATDIFF_THREADS`` (or the older ``MATDIFF_ROWBLOCK_THREADS``)
    overrides, clamped to 1..2.

    >>> threads() in (1, 2)
    True
    """
    if not _THREADS:
        env = (os.environ.get("MATDIFF_THREADS", "").strip()
               or os.environ.get("MATDIFF_ROWBLOCK_THREADS", "").strip())
        if env.isdigit():
            _THREADS.append(max(1, min(2, int(env))))
        else:
            try:
                cores = len(os.sched_getaffinity(0))
            except AttributeError:  # pragma: no cover - not Linux
                cores = os.cpu_count() or 1
            _THREADS.append(2 if cores >= 2 and _blas_threads() >= 2 else 1)
    return _THREADS[0]


def _threadpoolctl() -> Any:
    """threadpoolctl (installed with scikit-learn and SciPy's stack), or ``None``."""
    try:
        import threadpoolctl  # type: ignore[import-untyped]
    except ImportError:  # threadpoolctl is optional
        return None
    return threadpoolctl


def _blas_threads() -> int:
    """The fewest threads any loaded BLAS may use (1 without threadpoolctl)."""
    tpc = _threadpoolctl()
    if tpc is None:
        return 1
    counts = [p.get("num_threads", 1) for p in tpc.threadpool_info()
              if p.get("user_api") == "blas"]
    return min(counts) if counts else 1


#: the BLAS libraries' threadpoolctl controllers, found once (``[None]``: none)
_BLAS: list[Any] = []


def _blas_libs() -> list[Any] | None:
    if not _BLAS:
        tpc = _threadpoolctl()
        libs = None
        if tpc is not None:
            libs = [lc for lc in tpc.ThreadpoolController().lib_controllers
                    if lc.user_api == "blas"] or None
        _BLAS.append(libs)
    return _BLAS[0]


class _OneBlasThread:
    """The context of :func:`one_blas_thread` (a class: ~1 µs, where a
    ``contextmanager`` generator and threadpoolctl's ``limit`` cost 9–14 µs)."""

    __slots__ = ("held",)

    def __enter__(self) -> None:
        libs = _BLAS[0] if _BLAS else _blas_libs()
        self.held: list[tuple[Any, int]] = []
        if libs is None:
            return
        for lc in libs:
            n = lc.get_num_threads()
            if n is not None and n > 1:
                lc.set_num_threads(1)
                self.held.append((lc, n))

    def __exit__(self, *exc: object) -> None:
        for lc, n in self.held:
            lc.set_num_threads(n)


def one_blas_thread() -> _OneBlasThread:
    """A context in which BLAS runs on one thread, as it was after it.  Each library's
    own setter is called (through threadpoolctl's controller, found once); a library
    already on one thread (a nested block, a user's ``threadpool_limits``) is left
    alone.

    >>> import numpy as np
    >>> with one_blas_thread():
    ...     float(np.ones(3) @ np.ones(3))
    3.0
    """
    return _OneBlasThread()


# ------------------------------------------------------------------ the second thread
class _Worker:
    """One daemon thread that runs a job while the caller runs another
    (:func:`pair`); made at its first job, again after a fork."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.done: queue.SimpleQueue = queue.SimpleQueue()
        self.busy = threading.Lock()
        self.thread: threading.Thread | None = None

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                self.done.put((True, job()))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                self.done.put((False, exc))

    def pair(self, here: Callable[[], Any], there: Callable[[], Any]) -> tuple[Any, Any]:
        if not self.busy.acquire(blocking=False):
            # the worker is taken (another thread's call, or a pair inside a pair):
            # the two jobs one after the other, on this thread
            return here(), there()
        try:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, daemon=True,
                                               name="matdiff-worker")
                self.thread.start()
            self.jobs.put(there)
            try:
                first = here()
            finally:  # the other job ends before its arrays may go (and its error wins)
                ok, second = self.done.get()
            if not ok:
                raise second
            return first, second
        finally:
            self.busy.release()


_WORKER = [_Worker()]
if hasattr(os, "register_at_fork"):  # a forked child has no worker thread: a new one
    os.register_at_fork(after_in_child=lambda: _WORKER.__setitem__(0, _Worker()))


def pair(here: Callable[[], Any], there: Callable[[], Any]) -> tuple[Any, Any]:
    """``(here(), there())``, ``there`` run on a second thread while ``here`` runs on
    this one; an error in either is raised here, after both have ended.  The two run
    one after the other where the second thread is busy.

    >>> pair(lambda: 1, lambda: 2)
    (1, 2)
    """
    return _WORKER[0].pair(here, there)


# ------------------------------------------------------------------ the policy
def products(outputs: Sequence[Expr], sizes: Mapping[str, int], itemsize: int
             ) -> tuple[float, float, bool]:
    """``(multiply-adds, bytes, threaded)`` of the matrix products (einsums of two or
    more operands) of ``outputs`` at ``sizes``: each product once, costed pairwise in
    opt_einsum's greedy order; its bytes are its operands' and its result's;
    ``threaded``: some product is one that OpenBLAS splits over its threads (a
    result of one axis or none from :data:`SMALL_MACS` multiply-adds, a matrix from
    :data:`GEMM_THREADED`).

    >>> import matdiff as md
    >>> X, w = md.matrix("X", "N", "d"), md.vector("w", "d")
    >>> products([X @ w], {"N": 1000, "d": 10}, 8)   # a GEMV: 1/8 multiply-add a byte
    (10000.0, 88080.0, True)
    """
    from .rowblock import _row_macs  # one costing of a product, the row loop's

    seen: set[int] = set()
    macs = nbytes = 0.0
    threaded = False
    for out in outputs:
        for node in topo_order(out):
            if id(node) in seen or not isinstance(node, Einsum) or len(node.children) < 2:
                continue
            seen.add(id(node))
            # no dim is called "": every dim at its full size
            m = _row_macs(node, "", sizes)
            macs += m
            threaded = threaded or m >= (SMALL_MACS if len(node.shape) <= 1 else
                                         GEMM_THREADED)
            nbytes += itemsize * sum(math.prod(dim_size(d, sizes) for d in e.shape)
                                     for e in (*node.children, node))
    return macs, nbytes, threaded


class OneBlasThread:
    """A generated function run with BLAS on one thread (:func:`one_blas_thread`);
    called like it.  ``fn`` is the function it runs."""

    def __init__(self, fn: Callable[..., tuple]) -> None:
        self.fn = fn

    def __call__(self, *arrs: Any) -> tuple:
        with one_blas_thread():
            return self.fn(*arrs)


#: the tuner's knobs: calls of each candidate before it chooses; calls (or seconds)
#: after which it measures again; :data:`SLOW_RUN` calls in a row this many times
#: slower than the chosen one's median start a new measurement at once (the
#: machine's load changed: single slow calls are noise, which under load restarted
#: it so often that the step was 1.2–1.4x the one-thread step's time), and a
#: candidate this many times slower than another's median is dropped from the
#: measurement (one such call costs 5–50x on a loaded machine: 2-thread BLAS)
TUNE_CALLS = 9
RETUNE_CALLS = 5000
RETUNE_S = 30.0
SLOWER = 4.0
SLOW_RUN = 3


class Tuned:
    """The fastest of ``candidates`` (name -> a function, all computing the same
    outputs), measured where it runs: the first calls go to each candidate in turn
    (:data:`TUNE_CALLS` each; one :data:`SLOWER` times slower than another's median
    is dropped), timed with ``clock``; then the one with the smallest median runs,
    until :data:`RETUNE_CALLS` calls or :data:`RETUNE_S` seconds have passed, or
    :data:`SLOW_RUN` calls in a row took :data:`SLOWER` times its median: then they
    are measured again.
    ``chosen`` is the name in use (``None`` while measuring).

    >>> t = Tuned({"a": lambda x: (x + 1,), "b": lambda x: (x + 1,)})
    >>> [t(1) for _ in range(2 * TUNE_CALLS + 1)][-1], t.chosen in ("a", "b")
    ((2,), True)
    """

    def __init__(self, candidates: Mapping[str, Callable[..., tuple]],
                 clock: Callable[[], float] | None = None) -> None:
        import time

        self.candidates = dict(candidates)
        self.clock = clock or time.perf_counter
        self.chosen: str | None = None
        #: the measurement's bookkeeping is one thread's at a time (calls from other
        #: threads meanwhile run the first candidate, unmeasured)
        self._lock = threading.Lock()
        self._best: Callable[..., tuple] = next(iter(self.candidates.values()))
        self._median = self._since = 0.0
        self._calls = self._slow = 0
        self._restart()

    def _restart(self) -> None:
        self.chosen = None
        self.times: dict[str, list[float]] = {k: [] for k in self.candidates}
        self._turn = 0

    def __call__(self, *arrs: Any) -> tuple:
        clock = self.clock
        if self.chosen is not None:
            t = clock()
            out = self._best(*arrs)
            now = clock()
            self._calls += 1
            self._slow = self._slow + 1 if now - t > SLOWER * self._median else 0
            if self._slow >= SLOW_RUN or self._calls >= RETUNE_CALLS \
                    or now - self._since > RETUNE_S:
                self._restart()
            return out
        if not self._lock.acquire(blocking=False):
            return next(iter(self.candidates.values()))(*arrs)
        try:
            if self.chosen is not None:  # another thread has just chosen
                return self._best(*arrs)
            names = list(self.times)
            name = names[self._turn % len(names)]
            self._turn += 1
            t = clock()
            out = self.candidates[name](*arrs)
            dt = clock() - t
            self.times[name].append(dt)
            others = [float(np.median(v)) for k, v in self.times.items()
                      if k != name and v]
            if others and dt > SLOWER * min(others):
                del self.times[name]  # far slower than another: not measured further
            if all(len(v) >= TUNE_CALLS for v in self.times.values()):
                med = {k: float(np.median(v)) for k, v in self.times.items()}
                best = min(med, key=med.__getitem__)
                self._best, self._median = self.candidates[best], med[best]
                self._calls, self._since, self._slow = 0, clock(), 0
                self.chosen = best  # last: a thread that sees it finds the rest set
            return out
        finally:
            self._lock.release()


def mode() -> str:
    """The thread policy on two threads: ``MATDIFF_THREAD_POLICY`` (``"auto"``,
    ``"one_blas"``, ``"halves"`` or ``"off"``; read once), ``"auto"`` by default.

    >>> mode() in MODES
    True
    """
    if not _MODE:
        env = os.environ.get("MATDIFF_THREAD_POLICY", "").strip().lower()
        _MODE.append(env if env in MODES else "auto")
    return _MODE[0]


def holds() -> bool:
    """Whether this process holds BLAS to one thread where it would split a product:
    two threads, a policy other than ``"off"``, a BLAS that threadpoolctl sees."""
    return threads() > 1 and mode() != "off" and _blas_libs() is not None


def policy(outputs: Sequence[Expr], inputs: Sequence[str], sizes: Mapping[str, int],
           table: Any, fn: Callable[..., tuple]) -> Callable[..., tuple]:
    """``fn`` (the whole-array code of ``outputs`` at ``sizes``, or its row-blocked
    form) as it should run on this process's cores: itself on one thread, where its
    products are small, where it is row-blocked (the loop's driver holds BLAS
    itself) or the policy is ``"off"``; else measured (``"auto"``), with BLAS on one
    thread, or in two halves of the batch, as the module's docstring says."""
    from .rowblock import RowBlocked, row_blocked

    if isinstance(fn, RowBlocked) or not holds():
        return fn
    itemsize = np.dtype(getattr(table, "precision", "float64")).itemsize
    macs, nbytes, threaded = products(outputs, sizes, itemsize)
    if not threaded:  # OpenBLAS keeps to one thread here anyway
        return fn
    halves = None
    if mode() in ("auto", "halves") and macs > SPLIT_INTENSITY * nbytes \
            and macs >= MIN_SPLIT_MACS:
        halves = row_blocked(outputs, inputs, sizes, table, blocks=2)
    if mode() == "halves":
        return halves or OneBlasThread(fn)
    if mode() == "one_blas":
        return OneBlasThread(fn)
    # auto: measured where it runs (one BLAS thread, BLAS's own threads, halves)
    candidates: dict[str, Callable[..., tuple]] = {"one_blas": OneBlasThread(fn),
                                                   "blas": fn}
    if halves is not None:
        candidates["halves"] = halves
    return Tuned(candidates)
