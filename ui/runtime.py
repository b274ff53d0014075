"""What the page runs on: settings, what is built on disk, and the one Assistant per process."""
from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from assistant.model import shipped
from assistant.model.compute_thread import mark_exiting
from assistant.model.tuned_layout import TUNED_DIRNAME, live_model_dir
from assistant.settings import Settings

if TYPE_CHECKING:
    from assistant.chat.assistant import Assistant

log = logging.getLogger(__name__)



def current_settings() -> Settings:
    """Read per run, so MRA_* variables set by tests or the shell always apply."""
    return Settings()


@dataclass(frozen=True)
class Artifacts:
    """What has been built: the live index generation and the tuned model's timestamp (None = missing), and whose
    fine-tune that is ("own": the user's, "shipped": the repo's adapter) with the user's own model's timestamp."""

    index: str | None
    tuned: float | None
    tuned_origin: str | None = None
    own: float | None = None

    @property
    def has_own(self) -> bool:
        return self.own is not None

    @property
    def has_index(self) -> bool:
        return self.index is not None

    @property
    def has_tuned(self) -> bool:
        return self.tuned is not None


def probe(settings: Settings) -> Artifacts:
    """A cheap look at the disk; its value keys the Assistant cache, so a finished build reloads it."""
    pointer = Path(settings.index_dir) / "CURRENT"
    index = None
    try:
        name = pointer.read_text().strip()
        if name and (Path(settings.index_dir) / name).is_dir():
            index = name
    except OSError:
        pass
    # tuned_layout imports no torch (first paint); its pointer switches only once a model is complete
    live = live_model_dir(Path(settings.models_dir) / TUNED_DIRNAME)
    own = (live / "config.json").stat().st_mtime if live is not None else None
    if own is not None and settings.tuned_model == "own":
        return Artifacts(index=index, tuned=own, tuned_origin="own", own=own)
    stamp = shipped.stamp() if shipped.applies_to(settings) else None  # loading.py decides if it is usable
    return Artifacts(index=index, tuned=stamp, tuned_origin="shipped" if stamp else None, own=own)


@st.cache_resource(show_spinner=False, max_entries=1)
def _load(settings_json: str, artifacts: Artifacts, _api_key: Any = None) -> Assistant:
    from assistant.chat.assistant import Assistant

    log.info("Loading the assistant (%s)", artifacts)
    settings = Settings.model_validate_json(settings_json)
    # The JSON key masks the model server's key; the key itself is not part of the cache key.
    assistant = Assistant.load(settings.model_copy(update={"llm_api_key": _api_key}) if _api_key else settings)
    # The default model, the embedding model and the store are readied in the background, so the first request is
    # as fast as the rest: the page is up meanwhile, and a first message waits its turn.
    from assistant.chat.loading import warm_up_chat

    threading.Thread(target=warm_up_chat, args=(assistant,), name="chat-warm-up", daemon=True).start()
    return assistant


def load_assistant(settings: Settings, artifacts: Artifacts) -> Assistant:
    """Model and store, loaded once per process and again only when what is on disk changed. The one it replaces
    is not closed: a reply still running on it writes its turn, and its chat database connection closes when
    it is collected."""
    return _load(settings.model_dump_json(), artifacts, settings.llm_api_key)


EXIT_GRACE_S = 0.25  # after Streamlit starts stopping (Ctrl-C, SIGTERM): time to close the browsers' connections


def _end_now() -> None:
    log.info("the server stopped; ending the process")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@st.cache_resource(show_spinner=False)
def exit_promptly() -> threading.Thread:
    """Once the server is stopping, end the process promptly. Two things held a stopped server up (issue 29: one
    needed SIGKILL): threads Python waits for at exit (a script run, a library's worker pool), and the garbage
    collection of interpreter finalization, which can wait forever on torch state held by a frozen daemon thread
    (seen here: "Garbage-collecting", no Python frame). So a watcher ends the process EXIT_GRACE_S after the
    server begins to stop, and an atexit hook (run before finalization) ends a stopped server at once.
    Nothing is lost: messages and finished turns are in the chat database, and a reply cut here reads as
    unanswered, with Ask again."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.runtime import RuntimeState

    stopping = (RuntimeState.STOPPING, RuntimeState.STOPPED)

    def watch() -> None:
        while Runtime.instance().state not in stopping:
            time.sleep(0.1)
        mark_exiting()  # a reply its executors now refuse is cut by the stop, not broken
        time.sleep(EXIT_GRACE_S)
        _end_now()

    def at_exit() -> None:
        if Runtime.exists() and Runtime.instance().state in stopping:
            _end_now()

    watcher = threading.Thread(target=watch, name="exit-promptly", daemon=True)
    if Runtime.exists() and isinstance(Runtime.instance().state, RuntimeState):  # AppTest's is a mock: no server
        watcher.start()
        atexit.register(at_exit)
    return watcher


@st.cache_resource(show_spinner=False)
def generation_lock() -> threading.Lock:
    """One generation at a time per process: two on 2 CPU cores would each run at half speed."""
    return threading.Lock()


def format_count(n: Any) -> str:
    """135000000 -> '135M', 15563 -> '15,563'."""
    if not isinstance(n, (int, float)):
        return str(n) if n is not None else "?"
    if n >= 1e9:
        return f"{n / 1e9:.1f}B"
    if n >= 1e6:
        return f"{n / 1e6:.0f}M"
    return f"{int(n):,}"
