"""The conversation: past turns, messages waiting for their reply, the reply being written (streamed from the
background worker, ui/reply_worker.py), or two replies side by side (compare mode)."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import streamlit as st

from assistant.model.compute_thread import exiting
from assistant.model.drafts import describe, score_list
from ui.markup import md_escape
from ui.sidebar import Controls
from ui.sources import render_opinion, render_sources

log = logging.getLogger(__name__)

ASSISTANT_AVATAR = ":material/movie:"
MODE_LABELS = {"rag": "with RAG", "no_rag": "without RAG", "data": "counted from the review data (no model)"}
COLUMN_TITLES = {"rag": "With RAG", "no_rag": "Without RAG"}


def as_dict(reply: Any) -> dict[str, Any]:
    """A Reply (or its stored JSON) as a plain dict: live and restored replies render the same way."""
    if isinstance(reply, dict):
        return reply
    data = reply.to_json() if hasattr(reply, "to_json") else reply
    data = json.loads(data) if isinstance(data, str) else dict(data)
    if "text" not in data and "reply" in data:  # Reply.to_json() names the text "reply"
        data["text"] = data.pop("reply")
    return data


def model_label(reply: dict[str, Any]) -> str:
    """'fine-tuned, shipped (name)' / 'your fine-tune (name)' / 'base model (name)': every generated reply says
    which model wrote it."""
    kind = {"tuned": "fine-tuned", "base": "base model"}.get(reply.get("model") or "")
    kind = {"shipped": "fine-tuned, shipped", "own": "your fine-tune"}.get(reply.get("tuned_origin") or "", kind)
    if not kind:
        return ""
    name = str(reply.get("model_name") or "")
    name = name.rstrip("/").rsplit("/", 1)[-1]  # a checkpoint path reads better as its folder name
    return f"{kind} ({name})" if name else kind


def _asked(request: dict[str, Any]) -> str:
    """How the chain read the message, so a surprising reply can be traced to the reading."""
    movie = request.get("movie")
    if request.get("kind") == "review":
        return f"{request.get('sentiment') or ''} review".strip() + (f" of {movie}" if movie else "")
    if request.get("kind") == "opinion" and movie:
        return f"critics on {movie}"
    return ""


def _meta_line(reply: dict[str, Any]) -> str:
    parts = [MODE_LABELS.get(reply.get("mode") or "", "")]
    if reply.get("model"):
        parts.append(md_escape(model_label(reply)))
    asked = _asked(reply.get("request") or {})
    if asked:
        parts.append(f"read as: {md_escape(asked)}")
    timings = reply.get("timings") or {}
    total, first = timings.get("total_s"), timings.get("first_token_s")
    if isinstance(total, (int, float)):
        took = f"{total:.1f} s" if total >= 0.1 else "under 0.1 s"
        if reply.get("model") and isinstance(first, (int, float)):
            took += f" (first words after {first:.1f} s)"
        parts.append(took)
    if reply.get("model") and float(reply.get("guidance") or 1.0) > 1.0:
        parts.append(f"sentiment guidance {float(reply['guidance']):g}")
    return " · ".join(p for p in parts if p)


def render_reply_extras(reply: dict[str, Any]) -> None:
    """Everything under a reply's text: how it was made, notes, critics' counts, sources."""
    st.caption(_meta_line(reply))
    drafts = reply.get("drafts")
    chose = describe(drafts, (reply.get("request") or {}).get("sentiment"))
    if chose:
        scores = f"all drafts: {score_list(drafts)}, read by the {drafts.get('scorer')}"
        st.caption(f":material/filter_none: {md_escape(chose)} · {md_escape(scores)}")
    for note in reply.get("notes") or []:
        st.caption(f":material/info: {md_escape(note)}")
    if reply.get("opinion"):
        render_opinion(reply["opinion"])
    if reply.get("sources"):
        render_sources(reply["sources"], reply.get("text"))


def render_reply(reply: dict[str, Any]) -> None:
    st.markdown(md_escape(reply.get("text") or "") or "*(empty reply)*")
    render_reply_extras(reply)


def render_replies(replies: dict[str, dict[str, Any]]) -> None:
    """One reply, or the compare pair in two columns."""
    if len(replies) == 1:
        render_reply(next(iter(replies.values())))
        return
    for column, (mode, reply) in zip(st.columns(len(replies), gap="medium"), replies.items()):
        with column:
            st.markdown(f"**{COLUMN_TITLES.get(mode, md_escape(mode))}**")
            render_reply(reply)


WAITING = {"queued": "Waiting for the reply before it; answered next.",
           "writing": "Being written…"}
POLL_S = 0.2  # how often a reply being written is redrawn (each redraw also lets a new message interrupt the run)


def options_for(controls: Controls) -> dict[str, Any]:
    """What a message is answered with, kept beside it: the reply is written after this script run has ended."""
    return dict(rag=controls.rag, compare=controls.compare, top_k=controls.top_k, temperature=controls.temperature,
                max_new_tokens=controls.max_new_tokens, model=controls.model, drafts=controls.drafts,
                guidance=controls.guidance)


def render_history(turns: list[dict[str, Any]], on_retry: Callable[[int], None] | None = None) -> Any:
    """The chat; messages not answered yet show their state, an unanswered one a button to ask again. Returns a
    place under the message being written, for `follow` to stream its reply into (None when none is)."""
    live_slot = None
    for turn in turns:
        if turn["role"] == "user":
            with st.chat_message("user"):
                st.markdown(md_escape(turn["text"]))
                status = turn.get("status")
                if status == "unanswered":
                    st.warning(md_escape(turn.get("error") or "Not answered."), icon=":material/error:")
                    if on_retry is not None and st.button("Ask again", key=f"retry_{turn['pending']}",
                                                          icon=":material/refresh:"):
                        on_retry(turn["pending"])
                elif status in WAITING and not (status == "writing" and live_slot is None):
                    st.caption(WAITING[status])
            if turn.get("status") == "writing" and live_slot is None:
                live_slot = st.empty()
        else:
            with st.chat_message("assistant", avatar=ASSISTANT_AVATAR):
                if turn.get("error"):
                    st.error(md_escape(turn["error"]), icon=":material/error:")
                else:
                    render_replies(turn["replies"])
    return live_slot


def follow(worker: Any, pending: list[Any], slot: Any, timeout_s: float,
           still_pending: Callable[[int], bool]) -> bool:
    """Show the reply being written to the first waiting message until its turn is stored (True then: rerun to
    show it, and the next one, from the chat database). False when nothing of this chat is being written here."""
    writing = next((p for p in pending if p.state == "writing"), None)
    waiting = [p for p in pending if p.state in ("queued", "writing")]
    if not waiting:
        return False
    target = writing or waiting[0]
    box = slot if slot is not None else st.empty()
    deadline = time.monotonic() + timeout_s
    seen = False
    while time.monotonic() < deadline:
        if exiting():  # the server is stopping: this run must not hold the process up (the reply is daemon work)
            return False
        live = worker.live.get(target.id)
        if live is not None:
            seen = True
            with box.container():
                with st.chat_message("assistant", avatar=ASSISTANT_AVATAR):
                    if live.text:
                        st.markdown(md_escape(live.text) + "▌")
                    else:
                        st.caption("Reading critics' reviews and writing…")
        elif seen or not worker.busy(target.session_id):
            # stored, or failed and kept as unanswered: the chat database has it now. A message left "writing"
            # with no thread on it (the worker died) is not rerun for, or the page would rerun without end.
            return seen or not still_pending(target.id)
        else:
            box.caption("Waiting for its turn…")
        time.sleep(POLL_S)
    return True
