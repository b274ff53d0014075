"""Chats: the current one lives in this browser session; saved ones come from the chain's memory, and only
this browser's: each browser has an owner id, a random token kept in the page's URL (`?owner=...`), never
derived from the address it connects from. Bookmark the page to come back to your chats; anyone given the
URL with that token sees them too, so share the page's address without it."""
from __future__ import annotations

import logging
import re
import secrets
import uuid
from typing import Any

import streamlit as st

from assistant.chat.memory import CLI_OWNER
from ui.chat_view import as_dict
from ui.markup import md_escape

log = logging.getLogger(__name__)

MAX_LISTED = 25
OWNER_PARAM = "owner"
_OWNER_TOKEN = re.compile(r"[A-Za-z0-9_\-]{16,64}")


def owner_id() -> str:
    """This browser's owner id: from the URL when it carries a well-formed one, else this session's (moving to
    another page of the app drops the URL's parameters), else a new random token; the URL is set to it, so a
    reload or the bookmarked page finds the same chats."""
    token = st.query_params.get(OWNER_PARAM)
    if not _is_owner_token(token):
        token = st.session_state.get("owner")
        if not _is_owner_token(token):
            token = secrets.token_urlsafe(18)
        st.query_params[OWNER_PARAM] = token
    return token


def _is_owner_token(token: Any) -> bool:
    return isinstance(token, str) and bool(_OWNER_TOKEN.fullmatch(token)) and token != CLI_OWNER


def new_session_id() -> str:
    return uuid.uuid4().hex


def ensure_session(owner: str) -> str:
    """This browser session's chat id; turns live beside it, never in a process-wide cache. A new owner in the
    URL starts a new chat: the open one is the previous owner's."""
    if st.session_state.get("owner") != owner:
        st.session_state.owner = owner
        st.session_state.pop("session_id", None)
    if "session_id" not in st.session_state:
        st.session_state.session_id = new_session_id()
        st.session_state.turns = []
    st.session_state.setdefault("turns", [])
    return st.session_state.session_id


def start_new_chat() -> None:
    st.session_state.session_id = new_session_id()
    st.session_state.turns = []


def _field(item: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = item.get(name) if isinstance(item, dict) else getattr(item, name, None)
        if value not in (None, ""):
            return value
    return default


def turns_from_messages(messages: list[Any]) -> list[dict[str, Any]]:
    """Stored messages -> turns for the view (assistant messages keep their reply details when stored)."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = _field(message, "role", "type", default="assistant")
        text = _field(message, "content", "text", default="")
        if role in ("user", "human"):
            turns.append({"role": "user", "text": str(text)})
            continue
        # The chain stores the reply's metadata (mode, model, sources, ...) beside the message text.
        meta = dict(message) if isinstance(message, dict) else {}
        reply = {k: v for k, v in meta.items() if k not in ("role", "content", "type", "compare")}
        reply["text"] = str(text)
        other = (meta.get("compare") or {}).get("no_rag")
        replies = {"rag": reply, "no_rag": as_dict(other)} if other else {"reply": reply}
        turns.append({"role": "assistant", "replies": replies})
    return turns


def open_chat(assistant: Any, session_id: str, owner: str) -> None:
    st.session_state.session_id = session_id
    st.session_state.turns = turns_from_messages(assistant.memory.messages(session_id, owner))


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "chat"


def render_chats(assistant: Any, box: Any, owner: str) -> None:
    """New chat, this browser's saved chats, and rename / delete / download for the open one."""
    current = ensure_session(owner)
    with box:
        st.subheader("Chats")
        if st.button("New chat", icon=":material/add_comment:", width="stretch", key="chat_new"):
            start_new_chat()
            st.rerun()
        try:
            sessions = list(assistant.memory.list_sessions(owner))
        except Exception:  # a damaged chat database must not take the page down
            log.exception("listing chats failed")
            st.caption("Saved chats could not be read (see the log).")
            return
        title_of = {}
        for item in sessions[:MAX_LISTED]:
            sid = str(_field(item, "session_id", "id", default=""))
            title = str(_field(item, "title", default="Untitled chat"))
            title_of[sid] = title
            is_open = sid == current
            # Titles are user text: escaped, since button labels render Markdown.
            if st.button(md_escape(title), key=f"chat_open_{sid}", width="stretch",
                         type="secondary" if is_open else "tertiary", icon=":material/chat:"):
                open_chat(assistant, sid, owner)
                st.rerun()
        if len(sessions) > MAX_LISTED:
            st.caption(f"and {len(sessions) - MAX_LISTED} older chats")
        if current in title_of:
            _chat_actions(assistant, current, title_of[current], owner)


def _chat_actions(assistant: Any, session_id: str, title: str, owner: str) -> None:
    with st.popover("This chat", icon=":material/more_horiz:", width="stretch"):
        name = st.text_input("Name", value=title, max_chars=80, key=f"chat_title_{session_id}")
        if st.button("Rename", icon=":material/edit:", key="chat_rename") and name.strip():
            assistant.memory.rename(session_id, name.strip(), owner)
            st.rerun()
        st.caption("Download")
        row = st.container(horizontal=True, gap="small")
        row.download_button("Markdown", data=lambda: assistant.memory.export(session_id, "markdown", owner=owner),
                            file_name=f"{_slug(title)}.md", mime="text/markdown", icon=":material/download:",
                            on_click="ignore", key="chat_download_md")
        row.download_button("JSON", data=lambda: assistant.memory.export(session_id, "json", owner=owner),
                            file_name=f"{_slug(title)}.json", mime="application/json", icon=":material/download:",
                            on_click="ignore", key="chat_download_json")
        if st.button("Delete this chat", icon=":material/delete:", type="secondary", key="chat_delete"):
            assistant.memory.delete(session_id, owner)
            start_new_chat()
            st.rerun()
