"""One writer at a time: an inter-process lock per store or model folder that says who holds it.

A writer (an ingest, a fine-tune, the page's builds) takes `WriterLock(folder)` before it changes anything
there; readers never take it, so they never wait. The lock is an OS file lock (`filelock`: flock on Unix), so
the lock of a killed writer goes with its process. Beside it a small JSON file names the holder (pid, command,
host, since when), so that a second writer can say whom it waits for, or fail with one line that says so.
"""
from __future__ import annotations

import json
import logging
import os
import shlex
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import filelock
import psutil

log = logging.getLogger(__name__)

LOCK_NAME = ".write.lock"
HOLDER_NAME = ".write.lock.json"
_CLOCK_SLACK_S = 1.0  # process start times are rounded; a pid whose start time differs more was reused


class LockBusy(RuntimeError):
    """Another process is writing the folder; the message is one line naming it."""


def write_text_atomic(path: Path, text: str) -> None:
    """Write beside `path`, then rename over it: a reader sees the old text or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _command_line() -> str:
    try:
        argv = psutil.Process().cmdline()
    except psutil.Error:
        argv = [sys.executable, *sys.argv]
    if argv:
        argv = [Path(argv[0]).name, *argv[1:]]
    text = shlex.join(argv)
    return text if len(text) <= 160 else text[:157] + "..."


@dataclass(frozen=True)
class Process:
    """A process as other processes can recognise it later, even after its pid is reused."""

    pid: int
    host: str
    started: float  # the process's own start time
    command: str
    since: float = 0.0  # when it took what it holds

    @classmethod
    def this(cls) -> Process:
        return cls(os.getpid(), socket.gethostname(), psutil.Process().create_time(), _command_line(), time.time())

    @classmethod
    def from_dict(cls, data: object) -> Process | None:
        try:
            return cls(int(data["pid"]), str(data["host"]), float(data["started"]), str(data["command"]),
                       float(data.get("since") or 0.0))
        except (TypeError, KeyError, ValueError, AttributeError):
            return None

    def to_dict(self) -> dict:
        return asdict(self)

    def alive(self) -> bool:
        """False only when sure: on another host, or unreadable, the process counts as alive."""
        if self.host != socket.gethostname():
            return True
        try:
            return abs(psutil.Process(self.pid).create_time() - self.started) <= _CLOCK_SLACK_S
        except psutil.NoSuchProcess:
            return False
        except psutil.Error:
            return True

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since or self.started))
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"pid {self.pid} ({self.command}){where} since {since}"


class WriterLock:
    """`with WriterLock(folder, "the review store", wait=60):` ... changes to folder ...

    `wait` is how long a second writer waits (None: until the first finishes; 0: not at all) before
    `LockBusy`; while it waits it logs whom it waits for, and calls `on_wait(holder)` every `poll` seconds
    (which may raise to give up).
    """

    def __init__(self, folder: Path, what: str, *, wait: float | None = None,
                 on_wait: Callable[[Process | None], None] | None = None, poll: float = 0.5):
        self.folder = Path(folder)
        self.what = what
        self.wait = wait
        self.on_wait = on_wait
        self.poll = poll
        self._lock = filelock.FileLock(self.folder / LOCK_NAME, thread_local=False)

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def holder(self) -> Process | None:
        """Who holds the lock now, as it wrote itself down (None when free, or not written yet)."""
        try:
            holder = Process.from_dict(json.loads((self.folder / HOLDER_NAME).read_text()))
        except (OSError, ValueError):
            return None
        return holder if holder is not None and holder.alive() else None

    def acquire(self) -> WriterLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            holder = self.holder()
            if self.wait == 0:
                raise LockBusy(self._busy(holder)) from None
            log.warning("Waiting for %s at %s: it is being written by %s", self.what, self.folder,
                        holder.describe() if holder else "another process")
            while True:
                if self.on_wait is not None:
                    self.on_wait(holder)
                left = None if self.wait is None else self.wait - (time.monotonic() - started)
                if left is not None and left <= 0:
                    raise LockBusy(self._busy(holder, waited=self.wait)) from None
                try:
                    self._lock.acquire(timeout=self.poll if left is None else min(self.poll, left))
                    break
                except filelock.Timeout:
                    holder = self.holder() or holder
            log.info("%s is free: writing it now (waited %.0f s)", self.what, time.monotonic() - started)
        try:
            write_text_atomic(self.folder / HOLDER_NAME, json.dumps(Process.this().to_dict()))
        except BaseException:
            self._lock.release()
            raise
        return self

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        try:
            (self.folder / HOLDER_NAME).unlink(missing_ok=True)  # only the holder gets here
        finally:
            self._lock.release()

    def _busy(self, holder: Process | None, waited: float | None = None) -> str:
        who = holder.describe() if holder else "another process"
        after = f" (waited {waited:g} s)" if waited else ""
        return f"{self.what} at {self.folder} is being written by {who}{after}; try again when it has finished"

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
