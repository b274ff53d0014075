"""Background builds of what is missing: the review index (ingest) and the fine-tuned model.

One build at a time per process, so people keep chatting (base model, no RAG) while it runs. The
index comes first as a quick one (the first reviews only, about a minute) so RAG works early, then
the full ingest adds the rest incrementally; fine-tuning runs last, as a niced subprocess bounded
by wall-clock minutes, its progress read from its output, stopped when the server stops.

Each build takes the writer lock of what it writes (the store's here, the model's in the fine-tune
process), so a terminal's ingest or fine-tune and the page's never write at once: the page says whom
it waits for, and Cancel still works while it waits.
"""
from __future__ import annotations

import atexit
import ctypes
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import streamlit as st
from pydantic import BaseModel, SecretStr

from assistant.data.locks import Process
from assistant.data.store_writer import store_lock
from assistant.settings import REPO_ROOT, Settings
from ui.runtime import probe

log = logging.getLogger(__name__)

QUICK_LIMIT = 5000  # records in the first, quick index: about a minute of embedding on 2 cores
EVAL_N = 40  # generations per evaluation cell after an in-app fine-tune (the CLI default of 200 takes long)
TRAIN_SHARE = 0.8  # of the fine-tuning bar; the evaluation after training fills the rest
_TQDM_PERCENT = re.compile(r"fine-tuning:\s*(\d+)%")
_TQDM_LOSS = re.compile(r"loss=([\d.]+)")
_LOG_LINE = re.compile(r"\b(INFO|WARNING|ERROR)\s+[\w.]+:\s*(.+)$")
_ERROR_LINE = re.compile(r"^(?:error:|[\w.]*(?:Error|Exception)\b)|\bERROR\b")


class BuildError(Exception):
    """A build that cannot run or failed; the message is one line for the page."""


class Cancelled(Exception):
    pass


@dataclass
class Job:
    kind: str  # "index" | "finetune"
    state: str = "queued"  # queued | running | done | failed | cancelled | skipped
    stage: str = "waiting"
    done: int = 0
    total: int = 0
    error: str = ""
    started: float = 0.0
    finished: float = 0.0

    @property
    def fraction(self) -> float:
        if self.state == "done":
            return 1.0
        return min(1.0, self.done / self.total) if self.total else 0.0


class Builder:
    """Process-wide build queue (one per server, shared by every browser session)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self.jobs: list[Job] = []

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> list[Job]:
        with self._lock:
            return [replace(j) for j in self.jobs]

    def start(self, settings: Settings, kinds: list[str], minutes: float) -> bool:
        if self.busy():
            return False
        with self._lock:
            self.jobs = [Job(kind) for kind in kinds]
        self._cancel.clear()
        self._thread = threading.Thread(target=self._run, args=(settings, minutes), name="ui-build", daemon=True)
        self._thread.start()
        return True

    def cancel(self) -> None:
        self._cancel.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()  # fine-tuning checkpoints as it goes; a later run resumes

    def _update(self, job: Job, **fields: object) -> None:
        with self._lock:
            for name, value in fields.items():
                setattr(job, name, value)

    def _run(self, settings: Settings, minutes: float) -> None:
        failed = False
        for job in self.jobs:
            if failed or self._cancel.is_set():
                self._update(job, state="skipped" if failed else "cancelled", stage="not run")
                continue
            self._update(job, state="running", started=time.time())
            try:
                if job.kind == "index":
                    self._index(job, settings)
                else:
                    self._finetune(job, settings, minutes)
                self._update(job, state="done", finished=time.time())
            except Cancelled:
                self._update(job, state="cancelled", stage="cancelled", finished=time.time())
            except Exception as exc:  # shown on the page; the log keeps the traceback
                log.exception("build step %s failed", job.kind)
                self._update(job, state="failed", error=str(exc).strip().splitlines()[0] if str(exc).strip()
                             else type(exc).__name__, finished=time.time())
                failed = True

    # -- steps ------------------------------------------------------------------------------------
    def _index(self, job: Job, settings: Settings) -> None:
        from assistant.data.embeddings import make_embeddings
        from assistant.data.ingestion import ingest

        data = Path(settings.data_dir)
        if not data.exists():
            raise BuildError(f"No review data at {data}: set MRA_DATA_DIR, or run `python ingest.py FILES`")
        self._update(job, stage="loading the embedding model")
        embeddings = make_embeddings(settings)
        phase = ""

        def progress(done: int, total: int) -> None:
            if self._cancel.is_set():
                raise Cancelled  # ingest aborts its half-built generation; the live store is untouched
            self._update(job, done=done, total=total, stage=f"{phase}: embedding {done:,} of {total:,} chunks")

        if not probe(settings).has_index:
            phase = f"quick index of the first {QUICK_LIMIT:,} reviews"
            self._wait_for_store(job, settings)
            self._update(job, stage=f"{phase}: reading", done=0, total=0)
            ingest([data], settings, limit=QUICK_LIMIT, embeddings=embeddings, progress=progress, show_bar=False)
        phase = "full index"
        self._wait_for_store(job, settings)
        self._update(job, stage=f"{phase}: reading every file (RAG already works meanwhile)", done=0, total=0)
        summary = ingest([data], settings, embeddings=embeddings, progress=progress, show_bar=False)
        self._update(job, stage=f"{summary.total:,} chunks in the index", done=1, total=1)

    def _wait_for_store(self, job: Job, settings: Settings) -> None:
        """Wait (cancellably, saying for whom) while another process, a terminal's ingest say, writes the store."""
        def waiting(holder: Process | None) -> None:
            if self._cancel.is_set():
                raise Cancelled
            who = holder.describe() if holder else "another process"
            self._update(job, stage=f"waiting: {who} is writing the review store", done=0, total=0)

        with store_lock(settings, wait=None, on_wait=waiting):
            pass  # free now; ingest takes the lock itself for as long as it writes

    def _finetune(self, job: Job, settings: Settings, minutes: float) -> None:
        if not probe(settings).has_index:
            raise BuildError("Fine-tuning reads its examples from the review index: build the index first")
        cmd = [sys.executable, "-m", "assistant.finetune", "--max-minutes", f"{minutes:g}", "--eval-n", str(EVAL_N)]
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("MRA_")}  # the page's settings only
        env = {**inherited, **settings_env(settings), "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
        log_path = Path(settings.models_dir) / "finetune-ui.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._update(job, stage="starting: loading the data and the base model", done=0, total=100)
        log.info("starting %s (log: %s)", " ".join(cmd), log_path)
        with log_path.open("w") as out:
            self._proc = start_child(cmd, env)
            last_line = last_error = ""
            pending = ""
            assert self._proc.stdout is not None
            while True:
                chunk = os.read(self._proc.stdout.fileno(), 4096).decode("utf-8", "replace")
                if not chunk:
                    break
                out.write(chunk)
                out.flush()
                pending += chunk
                *lines, pending = re.split(r"[\r\n]", pending)
                for line in filter(None, (s.strip() for s in lines)):
                    last_line = line
                    if _ERROR_LINE.search(line):
                        last_error = line
                    self._progress_line(job, line)
            code = self._proc.wait()
            self._proc = None
        if self._cancel.is_set():
            raise Cancelled
        if code != 0:
            reason = (last_error or last_line)[:200]
            raise BuildError(f"fine-tuning stopped (exit {code}): {reason} (full log: {log_path})")
        self._update(job, stage="saved the fine-tuned model and its evaluation", done=100, total=100)

    def _progress_line(self, job: Job, line: str) -> None:
        """Training fills the bar to TRAIN_SHARE; the evaluation after it shows its log lines."""
        percent = _TQDM_PERCENT.search(line)
        if percent:
            loss = _TQDM_LOSS.search(line)
            self._update(job, done=int(int(percent.group(1)) * TRAIN_SHARE), total=100,
                         stage=f"training, loss {loss.group(1)}" if loss else "training")
            return
        logged = _LOG_LINE.search(line)
        if not logged or "checkpoint" in logged.group(2):
            return
        message = logged.group(2)[:140]
        if message.startswith("step "):
            return  # the bar's own loss figure says the same, more often
        if job.done > 0:  # training has begun, so what follows it is the evaluation
            self._update(job, done=max(job.done, int(100 * TRAIN_SHARE)), stage=f"evaluating: {message}")
        else:
            self._update(job, stage=message)


def settings_env(settings: Settings) -> dict[str, str]:
    """The page's settings as MRA_* variables, so a subprocess builds exactly what the page reads: nested ones
    (sampling) as the JSON pydantic-settings reads back, secrets as themselves, unset ones (None) left out."""
    env = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif isinstance(value, BaseModel):
            text = value.model_dump_json()
        elif isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, (dict, list, tuple)):
            text = json.dumps(value)
        else:
            text = str(value)
        env[f"MRA_{name.upper()}"] = text
    return env


_CHILDREN: weakref.WeakSet[subprocess.Popen] = weakref.WeakSet()
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def start_child(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    """A build subprocess that does not outlive the server: niced (chat replies keep priority), terminated at
    the server's exit, and on Linux sent SIGTERM by the kernel when the thread that started it dies, even
    by SIGKILL. (That thread waits for the child, so it lives as long as the child is wanted.)"""
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=_child_setup())
    _CHILDREN.add(proc)
    return proc


def _child_setup() -> Callable[[], None] | None:
    if not hasattr(os, "nice"):
        return None
    parent = os.getpid()
    prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None  # not in the child

    def setup() -> None:  # runs in the child between fork and exec
        os.nice(10)
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # the server died before the kernel was told
                os._exit(1)

    return setup


@atexit.register
def _stop_children() -> None:
    for proc in list(_CHILDREN):
        if proc.poll() is None:
            proc.terminate()  # fine-tuning checkpoints as it goes; a later run resumes


@st.cache_resource(show_spinner=False)
def get_builder() -> Builder:
    return Builder()
