"""The conversation: past turns, a streamed reply, or two replies side by side (compare mode)."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from assistant.model.drafts import describe, score_list
from ui.markup import md_escape
from ui.runtime import current_settings, generation_lock
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
    """'fine-tuned (name)' / 'base model (name)': every generated reply says which model wrote it."""
    kind = {"tuned": "fine-tuned", "base": "base model"}.get(reply.get("model") or "")
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


def render_history(turns: list[dict[str, Any]]) -> None:
    for turn in turns:
        if turn["role"] == "user":
            st.chat_message("user").markdown(md_escape(turn["text"]))
        else:
            with st.chat_message("assistant", avatar=ASSISTANT_AVATAR):
                if turn.get("error"):
                    st.error(md_escape(turn["error"]), icon=":material/error:")
                else:
                    render_replies(turn["replies"])


@contextmanager
def _locked() -> Iterator[None]:
    lock = generation_lock()
    if not lock.acquire(blocking=False):
        wait = current_settings().reply_wait_s
        with st.spinner("Another chat is writing a reply; yours starts right after…"):
            if not lock.acquire(timeout=wait):
                raise TimeoutError(f"Another chat's reply has taken over {wait:g} s; please send yours again")
    try:
        yield
    finally:
        lock.release()


def answer(assistant: Any, session_id: str, text: str, controls: Controls, owner: str) -> dict[str, Any]:
    """Write the reply to `text` on the page (streamed, or the compare pair) and return the turn to keep."""
    from assistant.chat.assistant import AssistantError

    options = dict(top_k=controls.top_k, temperature=controls.temperature, max_new_tokens=controls.max_new_tokens,
                   model=controls.model, drafts=controls.drafts, guidance=controls.guidance, owner=owner)
    # The chain writes one draft without a probe to rank them or at temperature 0 (and says so in a note).
    drafting = controls.drafts > 1 and controls.temperature > 0 and getattr(assistant, "probe", None) is not None
    started = time.perf_counter()
    with st.chat_message("assistant", avatar=ASSISTANT_AVATAR):
        try:
            with _locked():
                if controls.compare:
                    each = f", {controls.drafts} drafts each" if drafting else ""
                    with st.spinner(f"Writing both answers{each}: with RAG, then without…", show_time=True):
                        both = assistant.compare(session_id, text, **options)
                    # Not a review (help, critics' counts): the chain answers once, so show it once.
                    pair = ("rag", "no_rag") if both.get("no_rag") is not both.get("rag") else ("rag",)
                    replies = {mode: as_dict(both[mode]) for mode in pair}
                    render_replies(replies)
                else:
                    replies = {"reply": _stream(assistant, session_id, text, controls.rag, options,
                                                _waiting(controls.rag, controls.drafts if drafting else 1))}
            log.info("answered in %.1f s (compare=%s, rag=%s, model=%s, drafts=%d)", time.perf_counter() - started,
                     controls.compare, controls.rag, controls.model, controls.drafts)
            return {"role": "assistant", "replies": replies}
        except (AssistantError, TimeoutError) as exc:
            st.error(md_escape(str(exc)), icon=":material/error:")
            return {"role": "assistant", "error": str(exc)}
        except Exception as exc:  # a reply failing must not take the page down; the log has the traceback
            log.exception("reply failed")
            message = f"Something went wrong while answering ({type(exc).__name__}: {exc})"
            st.error(md_escape(message), icon=":material/error:")
            return {"role": "assistant", "error": message}


def _waiting(rag: bool, drafts: int) -> str:
    """What the spinner says until the first words: with drafts nothing streams, so the wait is longer."""
    if drafts > 1:
        read = "Reading critics' reviews, then writing" if rag else "Writing"
        return f"{read} {drafts} drafts to keep the one that reads clearest…"
    return "Reading critics' reviews…" if rag else "Thinking…"


def _stream(assistant: Any, session_id: str, text: str, rag: bool, options: dict[str, Any],
            waiting: str = "Thinking…") -> dict[str, Any]:
    """Stream the tokens (escaped as they come), then show the rest of the finished Reply."""
    final: list[Any] = []

    def tokens() -> Iterator[str]:
        for event in assistant.stream(session_id, text, rag=rag, **options):
            if isinstance(event, str):
                yield md_escape(event)
            else:
                final.append(event)

    with st.spinner(waiting, show_time=True):
        first = _first(tokens())
    streamed = st.write_stream(first, cursor="▌")
    if not final:
        raise RuntimeError("the reply stream ended without its Reply")
    reply = as_dict(final[-1])
    if not streamed and reply.get("text"):
        st.markdown(md_escape(reply["text"]))
    render_reply_extras(reply)
    return reply


def _first(stream: Iterator[str]) -> Iterator[str]:
    """Pull the first chunk inside the spinner (retrieval and prompt time), then hand on the rest."""
    try:
        head = next(stream)
    except StopIteration:
        return iter(())

    def rest() -> Iterator[str]:
        yield head
        yield from stream

    return rest()
