"""Chats: all come from the chain's memory, and only this browser's: each browser has an owner id, a random token
kept in a cookie and in the page's URL (`?owner=...&chat=...`, the open chat beside it), never derived from the
address it connects from. Bookmark the page to come back to your chats; anyone given the URL with that token
sees them too, so share the page's address without it."""
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
OWNER_PARAM, CHAT_PARAM = "owner", "chat"
OWNER_COOKIE = "mra_owner"
OWNER_COOKIE_AGE_S = 400 * 24 * 3600  # browsers cap a cookie's life at about this
_OWNER_TOKEN = re.compile(r"[A-Za-z0-9_\-]{16,64}")
_CHAT_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")


def owner_id() -> str:
    """This browser's owner id. The browser keeps its own in a cookie; a link carrying another token (someone
    else's chats, or a trap: chats written there are read by whoever chose it) does not replace it unless the
    user says so (`_offer_linked_owner`). Without a cookie: the URL's token when well-formed, else this session's
    (moving to another page of the app drops the URL's parameters), else a new random one. The URL is set to it,
    so a reload or the bookmarked page finds the same chats."""
    linked = st.query_params.get(OWNER_PARAM)
    own = st.context.cookies.get(OWNER_COOKIE) if st.context.cookies is not None else None
    chosen = st.session_state.get("owner_chosen")  # a linked token the user took, this session
    if _is_owner_token(chosen):
        token = chosen
    elif _is_owner_token(own) and _is_owner_token(linked) and linked != own:
        st.session_state.owner_offered = linked
        token = own
    elif _is_owner_token(linked):
        token = linked
    elif _is_owner_token(st.session_state.get("owner")):
        token = st.session_state.owner
    elif _is_owner_token(own):
        token = own
    else:
        token = secrets.token_urlsafe(18)
    if st.query_params.get(OWNER_PARAM) != token:
        st.query_params[OWNER_PARAM] = token
    if own != token:
        _remember_owner(token)
    _offer_linked_owner(token)
    return token


def _remember_owner(token: str) -> None:
    """The browser keeps its token (a first-party cookie, set from the page; the token is [A-Za-z0-9_-] only)."""
    from streamlit.components.v1 import html

    html(f"<script>parent.document.cookie = '{OWNER_COOKIE}={token}; path=/; max-age={OWNER_COOKIE_AGE_S}; "
         "SameSite=Strict';</script>", height=0)


def _offer_linked_owner(token: str) -> None:
    offered = st.session_state.get("owner_offered")
    if not _is_owner_token(offered) or offered == token:
        return
    with st.sidebar:
        st.info("This link carries another browser's chats key. You are on your own chats; switch only if this "
                "link is yours (its owner can read what you write there).", icon=":material/key:")
        if st.button("Use the link's chats instead", key="owner_switch"):
            st.session_state.owner_chosen = offered
            st.session_state.pop("owner_offered", None)
            st.rerun()


def _is_owner_token(token: Any) -> bool:
    return isinstance(token, str) and bool(_OWNER_TOKEN.fullmatch(token)) and token != CLI_OWNER


def new_session_id() -> str:
    return uuid.uuid4().hex


def ensure_session(owner: str, memory: Any) -> str:
    """This browser session's chat id, also in the page's address (`?chat=...`) so a reload, a bookmark or a
    second tab opens the same chat. An id from the address is taken only when it is this owner's chat; any
    other (someone else's, or none saved) leaves a new chat open. A new owner starts a new chat."""
    if st.session_state.get("owner") != owner:
        st.session_state.owner = owner
        st.session_state.pop("session_id", None)
    wanted = st.query_params.get(CHAT_PARAM)
    if wanted and wanted != st.session_state.get("session_id") and _is_chat_id(wanted):
        try:
            if memory.owner_of(wanted) == owner:
                st.session_state.session_id = wanted
        except Exception:  # a damaged chat database must not take the page down
            log.exception("looking up the chat in the address failed")
    if "session_id" not in st.session_state:
        st.session_state.session_id = new_session_id()
    if st.query_params.get(CHAT_PARAM) != st.session_state.session_id:
        st.query_params[CHAT_PARAM] = st.session_state.session_id
    return st.session_state.session_id


def _is_chat_id(value: Any) -> bool:
    return isinstance(value, str) and bool(_CHAT_ID.fullmatch(value))


def start_new_chat() -> None:
    st.session_state.session_id = new_session_id()
    st.query_params[CHAT_PARAM] = st.session_state.session_id


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
            turns.append({"role": "user", "text": str(text),
                          **{k: message[k] for k in ("pending", "status", "error") if isinstance(message, dict)
                             and k in message}})
            continue
        # The chain stores the reply's metadata (mode, model, sources, ...) beside the message text.
        meta = dict(message) if isinstance(message, dict) else {}
        reply = {k: v for k, v in meta.items() if k not in ("role", "content", "type", "compare")}
        reply["text"] = str(text)
        other = (meta.get("compare") or {}).get("no_rag")
        replies = {"rag": reply, "no_rag": as_dict(other)} if other else {"reply": reply}
        turns.append({"role": "assistant", "replies": replies})
    return turns


def open_chat(session_id: str) -> None:
    st.session_state.session_id = session_id
    st.query_params[CHAT_PARAM] = session_id


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "chat"


def render_chats(assistant: Any, box: Any, owner: str) -> None:
    """New chat, this browser's saved chats, and rename / delete / download for the open one."""
    current = ensure_session(owner, assistant.memory)
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
                open_chat(sid)
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
