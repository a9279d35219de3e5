"""Run a function in a separate worker process with a memory limit and a wall-clock timeout.

The shared Streamlit server must survive a hostile or careless upload (a YAML alias bomb, a zip
bomb, a parser that never ends): :func:`run_limited` runs the reading and validation in a child
process whose address space is capped with ``resource.setrlimit(RLIMIT_AS, ...)`` and which is
killed when it takes longer than the timeout. The child returns its (picklable) result, or the
exception it raised, which is raised again in the parent with the same type; when the child runs
out of memory, is killed or exits without a result, or times out, :class:`WorkerStopped` says so
in one line. The parent is never at risk: it only waits on a pipe.

Workers are started by a ``forkserver`` (Linux/macOS): a small server process started once, with
the modules given in ``preload`` imported, forks each worker. Neither ``fork`` of a multi-threaded
Streamlit server (unsafe) nor ``spawn`` (a fresh interpreter importing pandas etc. for every
upload) is used. Where ``resource`` is missing (Windows) the memory limit cannot be set and only
the timeout applies.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

try:
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

T = TypeVar("T")

#: Defaults of :class:`WorkerLimits`: the worker's whole address space (a worker with matdb's readers
#: imported already maps about 0.4 GB of it) and the wall-clock time, both configurable.
DEFAULT_MEMORY_MB = 1024
DEFAULT_TIMEOUT_S = 60.0


class WorkerLimitsError(ValueError):
    """A limit given in the environment is not a number."""


class WorkerStopped(RuntimeError):
    """The worker ran out of memory, took too long, or died; ``reason`` says which in words.

    Attributes:
        kind: "memory", "timeout" or "died".
        reason: e.g. "it needed more than 1 GB of memory", "it took longer than 60 s".
        during: the last progress note of the worker (:func:`note`), e.g. "validation of a.yaml".
    """

    def __init__(self, kind: str, reason: str, during: str = "") -> None:
        super().__init__(kind, reason, during)
        self.kind, self.reason, self.during = kind, reason, during

    def __str__(self) -> str:
        return f"{self.during or 'the worker'} stopped: {self.reason}"


@dataclass(frozen=True)
class WorkerLimits:
    """Memory (MB of address space, RLIMIT_AS) and wall-clock time (s) of a worker; None: no limit."""

    memory_mb: float | None = DEFAULT_MEMORY_MB
    timeout_s: float | None = DEFAULT_TIMEOUT_S

    @classmethod
    def from_env(cls, memory_var: str, timeout_var: str, env: Mapping[str, str] | None = None) -> WorkerLimits:
        """WorkerLimits from two environment variables (unset: the defaults; ``0``: no limit)."""
        env = os.environ if env is None else env
        return cls(_number(env, memory_var, DEFAULT_MEMORY_MB), _number(env, timeout_var, DEFAULT_TIMEOUT_S))

    def memory_text(self) -> str:
        mb = self.memory_mb or 0
        return f"{mb / 1024:g} GB" if mb >= 1024 and mb % 1024 == 0 else f"{mb:g} MB"


def _number(env: Mapping[str, str], var: str, default: float) -> float | None:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise WorkerLimitsError(f"{var} must be a number >= 0 (0: no limit), got {raw!r}")
    return value or None


# --- in the worker ----------------------------------------------------------------------------

_conn: Any = None  # the worker's end of the pipe (None in any other process)


def note(text: str) -> None:
    """Tell the parent what the worker is doing now (named in :class:`WorkerStopped`); a no-op
    outside a worker."""
    if _conn is not None:
        _conn.send(("note", text))


def _worker(conn: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
            memory_mb: float | None) -> None:
    global _conn
    _conn = conn
    conn.send(("started", None))  # the modules fn needs are imported: the clock starts now
    if memory_mb is not None and resource is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = int(memory_mb * 2**20)
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        try:
            out = ("ok", fn(*args, **kwargs))
        except MemoryError:
            out = ("memory", None)
        except BaseException as exc:  # noqa: BLE001 - handed to the parent, raised there
            tb = traceback.format_exc()
            exc.__traceback__ = None
            out = ("error", (exc, tb))
        conn.send(out)
    except MemoryError:  # the result itself did not fit
        conn.send(("memory", None))
    except Exception as exc:  # noqa: BLE001 - a result or an exception that cannot be pickled
        conn.send(("error", (RuntimeError(f"the worker's result cannot be sent back: {exc}"), "")))
    finally:
        conn.close()


# --- in the parent ----------------------------------------------------------------------------

_lock = threading.Lock()


def _context(preload: Iterable[str]) -> Any:
    ctx = multiprocessing.get_context("forkserver")
    with _lock:
        from multiprocessing import forkserver

        if getattr(forkserver._forkserver, "_forkserver_pid", None) is None:  # not started yet
            ctx.set_forkserver_preload([__name__, *preload])
    return ctx


@contextlib.contextmanager
def _without_main() -> Iterator[None]:
    """Start a worker without it re-running the ``__main__`` script. multiprocessing makes each
    forkserver child import the parent's ``__main__`` from its path; inside a Streamlit script run
    that is the app itself (Streamlit installs the page script as ``__main__``), so the worker ran
    app.py — opening the default database with the fork server's environment — before ``fn``.
    ``fn`` is a module-level function of an importable module and needs no ``__main__``."""
    with _lock:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


def run_limited(fn: Callable[..., T], *args: Any, limits: WorkerLimits | None = None, preload: Iterable[str] = (),
                **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a worker process under ``limits``; its result or its exception.

    ``fn``, the arguments and the result must be picklable (``fn`` a module-level function).
    ``preload``: modules the worker needs, imported once by the fork server (when it starts).
    Raises :class:`WorkerStopped` when the worker runs out of memory, dies or times out.
    """
    limits = limits or WorkerLimits()
    ctx = _context(preload)
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_worker, args=(sender, fn, args, kwargs, limits.memory_mb), daemon=True,
                       name=f"matdb-worker-{getattr(fn, '__name__', 'fn')}")
    with _without_main():
        proc.start()
    sender.close()
    # the clock starts when the worker has started: imported what fn needs (see preload), which is
    # matdb's code, not the user's data
    deadline: float | None = None
    during = ""
    try:
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not receiver.poll(remaining):
                raise WorkerStopped("timeout", f"it took longer than {limits.timeout_s:g} s", during)
            try:
                kind, value = receiver.recv()
            except EOFError:  # the worker ended without a result
                break
            if kind == "started":
                deadline = None if limits.timeout_s is None else time.monotonic() + limits.timeout_s
            elif kind == "note":
                during = value
            elif kind == "ok":
                return value
            elif kind == "memory":
                raise WorkerStopped("memory", f"it needed more than {limits.memory_text()} of memory", during)
            else:
                exc, tb = value
                if tb:
                    exc.add_note(f"in the worker process:\n{tb}")
                raise exc
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        receiver.close()
    raise WorkerStopped("died", _death(proc.exitcode, limits), during)


def _death(code: int | None, limits: WorkerLimits) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        # SIGKILL from the kernel's OOM killer, or an abort/segfault of a C library when an
        # allocation failed under the limit: both most likely a lack of memory
        likely = f" (probably out of memory; the limit is {limits.memory_text()})" if limits.memory_mb else ""
        return f"the worker process was killed by {name}{likely}"
    return f"the worker process exited with code {code} without a result"
