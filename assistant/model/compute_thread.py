"""One long-lived thread for the chat's heavy torch work: loading the models, every forward pass of a reply.

torch runs its parallel ops on OpenMP, and GNU OpenMP keeps a team of worker threads for every thread that ever
ran a parallel op, until that thread exits. Once the teams together hold more threads than there are cores, every
team stops spinning between ops and sleeps instead, and each of the hundreds of small ops in a forward pass then
waits for its worker to be woken. Measured on 2 cores (a 100-token prefill, two torch threads): 101-112 ms with
one team, 131-209 ms while a second, idle team merely existed. The chat made such teams without meaning to: the
models are loaded on one thread (the main thread of the CLI), and LangGraph runs each reply's nodes on a fresh
executor thread. Routing that work through this one thread keeps a single team, whichever thread asks.
"""
from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ComputeThreadClosed(RuntimeError):
    """The process is exiting: no new work is started (a job queued now would wait on a thread that cannot run)."""


_STOPPING = threading.Event()


def mark_exiting() -> None:
    """Say that the process is stopping (a server told to stop, before its main thread ends): from now on
    `exiting()` is True, so a reply cut short reads as stopped, not as broken."""
    _STOPPING.set()


def exiting() -> bool:
    """True once the process has begun to exit: a server said it is stopping (`mark_exiting`), the main thread
    has ended (`threading._shutdown` joins the other threads then) or the interpreter is finalizing (daemon
    threads are frozen: a job handed to one never ends)."""
    return _STOPPING.is_set() or sys.is_finalizing() or not threading.main_thread().is_alive()


class ComputeThread:
    """`run(fn, ...)` calls fn on the compute thread and returns what it returned (or raises what it raised)."""

    def __init__(self, name: str = "torch-compute") -> None:
        self.name = name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def _started(self) -> threading.Thread:
        with self._start_lock:
            alive = self._thread is not None and self._thread.is_alive()
            # Thread.start() at exit can wait forever for a thread that never runs, and once the interpreter is
            # finalizing even a live (daemon) compute thread is frozen: a job handed to it would never end.
            if sys.is_finalizing() or (exiting() and not alive):
                raise ComputeThreadClosed("the process is exiting; no new model work is started")
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
                self._thread.start()
            return self._thread

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if threading.current_thread() is self._thread:  # already here (a loader that warms up, say)
            return fn(*args, **kwargs)
        self._started()  # raises ComputeThreadClosed once the process is exiting
        done, result = threading.Event(), {}
        self._jobs.put((fn, args, kwargs, done, result))
        done.wait()
        if "error" in result:
            raise result["error"]
        return result["value"]

    def _serve(self) -> None:
        while True:
            fn, args, kwargs, done, result = self._jobs.get()
            try:
                result["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the caller, who re-raises it on its own thread
                result["error"] = exc
            finally:
                done.set()


compute = ComputeThread()  # one per process: the teams it avoids are the process's
