"""Replies written in the background, not by the page's script run (issue 29).

A Streamlit script run ends whenever the page reruns: a new message, a reload, another page of the app, a closed
tab. A reply written by the run itself died with it. Here the page only keeps the message (`memory.add_pending`)
and hands its chat to the process's `ReplyWorker`: one daemon thread per chat with messages waiting answers them
in the order sent, each turn stored in the chat database when done, whatever the page does meanwhile. The page
shows the reply being written from `live` while it lives, and the stored turn afterwards.

The threads are daemons: a server told to stop (Ctrl-C, SIGTERM) does not wait for a reply; that message is then
left unanswered, with a way to ask it again (assistant/chat/pending.py).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from assistant.chat.turns import answer_pending
from ui.runtime import generation_lock

log = logging.getLogger(__name__)

# A reply waits this long for another chat's to end (one model writes at a time), then its question is kept as
# unanswered, to ask again.
REPLY_WAIT_S = 120.0


@dataclass
class LiveReply:
    """The reply being written to one message: its text so far; gone from `live` once its turn is stored."""

    text: str = ""
    started: float = field(default_factory=time.monotonic)


class ReplyWorker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self.live: dict[int, LiveReply] = {}

    def submit(self, assistant: Any, session_id: str) -> None:
        """Answer the chat's waiting messages (kept already with `add_pending`), unless a thread does already."""
        with self._lock:
            running = self._threads.get(session_id)
            if running is not None and running.is_alive():
                return
            thread = threading.Thread(target=self._drain, args=(assistant, session_id), daemon=True,
                                      name=f"reply-{session_id[:12]}")
            self._threads[session_id] = thread
            thread.start()

    def busy(self, session_id: str) -> bool:
        with self._lock:
            running = self._threads.get(session_id)
            return running is not None and running.is_alive()

    def _drain(self, assistant: Any, session_id: str) -> None:
        memory = assistant.memory
        while True:
            with self._lock:  # the last look and the goodbye under one lock: a submit in between is not lost
                try:
                    item = memory.claim_pending(session_id)
                except Exception:
                    log.exception("reading the chat's waiting messages failed")
                    item = None
                if item is None:
                    self._threads.pop(session_id, None)
                    return
                self.live[item.id] = LiveReply()
            try:
                self._answer(assistant, item)
            except Exception:  # kept as unanswered, with why, by answer_pending; the next message still gets its turn
                log.exception("reply to a kept message failed")
            finally:
                self.live.pop(item.id, None)

    def _answer(self, assistant: Any, item: Any) -> None:
        live = self.live[item.id]
        wait = REPLY_WAIT_S
        lock = generation_lock()  # one reply at a time per process: two on 2 cores would each run at half speed
        if not lock.acquire(timeout=wait):
            why = f"Another chat's reply has taken over {wait:g} s; please ask again"
            assistant.memory.fail_pending(item.id, why)
            return
        try:
            def on_event(event: Any) -> None:
                if isinstance(event, str):
                    live.text += event

            answer_pending(assistant, item, on_event)
        finally:
            lock.release()


@st.cache_resource(show_spinner=False)
def reply_worker() -> ReplyWorker:
    """One per server process: its threads outlive every script run."""
    return ReplyWorker()
