"""Adding an uploaded review file to the index in the background, as ui/jobs.py builds the index.

The upload is written to a private temporary folder (mode 0700, outside the repo and the data mirror) under
its own, sanitised name, so the index records where the reviews came from; the folder is deleted when the
job ends, whatever the outcome, or when the upload is replaced or removed. The job runs
`assistant.data.ingestion.ingest`, the code `ingest.py` runs, so it takes the same store lock and the live
index changes only if everything succeeds. One add at a time per server, and never beside a build.
"""
from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import streamlit as st

from assistant.data.readers import ColumnMapping
from assistant.settings import Settings
from ui.jobs import Cancelled, Job, get_builder

log = logging.getLogger(__name__)

UPLOAD_PREFIX = "mra-upload-"
STALE_AFTER_S = 24 * 3600  # a folder this old belongs to a page closed without adding its file
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Staged:
    """One uploaded file on disk, in a private folder of its own."""

    file_id: str
    name: str  # as uploaded
    path: Path

    @property
    def folder(self) -> Path:
        return self.path.parent

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def safe_name(name: str) -> str:
    """The uploaded name's last part, with only letters, digits, '.', '_' and '-' ("my reviews.csv" ->
    "my_reviews.csv"): readers pick the format by its suffix, and no name can climb out of the folder."""
    cleaned = _SAFE_NAME.sub("_", Path(name.replace("\\", "/")).name).lstrip(".")[-120:]
    return cleaned or "upload.csv"


def stage(file_id: str, name: str, data: bytes | memoryview) -> Staged:
    """Write an upload to a new private temporary folder."""
    _remove_stale()
    folder = Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX))  # mkdtemp makes it 0700
    path = folder / safe_name(name)
    with open(path, "xb") as out:
        out.write(data)
    return Staged(file_id, name, path)


def _remove_stale() -> None:
    now = time.time()
    for folder in Path(tempfile.gettempdir()).glob(f"{UPLOAD_PREFIX}*"):
        try:
            if folder.is_dir() and now - folder.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


class ReviewAdder:
    """Process-wide: one add job at a time, shared by every browser session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.job: Job | None = None
        self.summary: list[str] = []
        self.file_name = ""

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> tuple[Job | None, list[str]]:
        with self._lock:
            return (replace(self.job) if self.job else None), list(self.summary)

    def start(self, settings: Settings, staged: Staged, mapping: ColumnMapping | None) -> str | None:
        """Start adding ``staged`` (which the job then owns and deletes); the reason when it cannot start."""
        if self.busy():
            return "Another file is being added; wait for it to finish."
        if get_builder().busy():
            return "The index is being built; add the file when that has finished."
        with self._lock:
            self.job, self.summary, self.file_name = Job("add", state="running", started=time.time()), [], staged.name
        self._cancel.clear()
        self._thread = threading.Thread(target=self._run, args=(settings, staged, mapping), name="ui-add-reviews",
                                        daemon=True)
        self._thread.start()
        return None

    def cancel(self) -> None:
        self._cancel.set()

    def _update(self, **fields: object) -> None:
        with self._lock:
            for name, value in fields.items():
                setattr(self.job, name, value)

    def _run(self, settings: Settings, staged: Staged, mapping: ColumnMapping | None) -> None:
        from assistant.data.embeddings import make_embeddings
        from assistant.data.ingestion import ingest

        def progress(done: int, total: int) -> None:
            if self._cancel.is_set():
                raise Cancelled  # ingest aborts its half-built generation; the live index is untouched
            self._update(done=done, total=total, stage=f"embedding {done:,} of {total:,} new chunks")

        try:
            self._update(stage="loading the embedding model")
            embeddings = make_embeddings(settings)
            self._update(stage=f"reading {staged.name}")
            summary = ingest([staged.path], settings, mapping=mapping, embeddings=embeddings, progress=progress,
                             show_bar=False)
            with self._lock:
                self.summary = summary.lines()[:3] + [f"The index now holds {summary.total:,} chunks."]
            self._update(state="done", stage=f"added {summary.embedded:,} new chunks", done=1, total=1,
                         finished=time.time())
        except Cancelled:
            self._update(state="cancelled", stage="cancelled: the index is as it was", finished=time.time())
        except Exception as exc:  # shown on the page as one line; the log keeps the traceback
            log.exception("adding %s failed", staged.name)
            message = " ".join(str(exc).replace(str(staged.path), staged.name).split()) or type(exc).__name__
            self._update(state="failed", error=message, finished=time.time())
        finally:
            staged.discard()


@st.cache_resource(show_spinner=False)
def get_adder() -> ReviewAdder:
    return ReviewAdder()
