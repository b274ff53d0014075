"""Chat sessions persisted in SQLite: LangChain's SQL message history per session, plus a sessions table.

Each session is isolated by its id, survives restarts, and is bounded: messages are stored cut to
a length, only the latest few are ever read for a turn, and the oldest are pruned past a maximum.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from langchain_community.chat_message_histories import SQLChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Engine

from assistant.chat.export import render_markdown

log = logging.getLogger(__name__)

MESSAGES_TABLE = "message_store"
SESSION_ID_RE = re.compile(r"[\w.:@\-]{1,128}")
MAX_TITLE_CHARS = 80
_CACHED_HISTORIES = 64

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS chat_sessions (session_id TEXT PRIMARY KEY, title TEXT NOT NULL, "
    "created REAL NOT NULL, updated REAL NOT NULL, titled_by_user INTEGER NOT NULL DEFAULT 0)",
    f"CREATE INDEX IF NOT EXISTS {MESSAGES_TABLE}_session ON {MESSAGES_TABLE}(session_id, id)",
)


@dataclass
class SessionInfo:
    session_id: str
    title: str
    created: float
    updated: float
    messages: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_session_id(session_id: str) -> str:
    if not isinstance(session_id, str) or not SESSION_ID_RE.fullmatch(session_id):
        raise ValueError("session id must be 1-128 letters, digits or . : @ _ - characters")
    return session_id


def new_session_id() -> str:
    return uuid.uuid4().hex[:12]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" [... {len(text) - limit:,} more characters not kept]"


class SessionHistory(SQLChatMessageHistory):
    """One session's messages (a LangChain BaseChatMessageHistory) with a bounded read of the latest."""

    def recent(self, n: int) -> list[BaseMessage]:
        if n <= 0:
            return []
        model = self.sql_model_class
        with self._make_sync_session() as session:
            rows = session.execute(
                select(model).where(model.session_id == self.session_id).order_by(model.id.desc()).limit(n)
            ).scalars().all()
            return [self.converter.from_sql_model(r) for r in reversed(rows)]


def _sqlite_engine(path: Path) -> Engine:
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets the UI read one session while another thread writes a turn.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


class ChatMemory:
    """All chat sessions in one SQLite file."""

    def __init__(self, path: Path | str, *, max_messages: int = 400, stored_chars: int = 8000) -> None:
        self.path = Path(path)
        self.max_messages = max_messages
        self.stored_chars = stored_chars
        self.engine = _sqlite_engine(self.path)
        self._histories: OrderedDict[str, SessionHistory] = OrderedDict()
        self._lock = threading.Lock()
        SessionHistory("_schema", table_name=MESSAGES_TABLE, connection=self.engine)  # LangChain makes its table
        with self.engine.begin() as conn:
            for statement in _SCHEMA:
                conn.execute(text(statement))

    @classmethod
    def from_settings(cls, settings: Any) -> ChatMemory:
        return cls(settings.chats_db, max_messages=settings.max_session_messages,
                   stored_chars=settings.stored_message_chars)

    # -- one session ---------------------------------------------------------------------------------
    def history(self, session_id: str) -> SessionHistory:
        """The session's LangChain message history (what RunnableWithMessageHistory-style code expects)."""
        check_session_id(session_id)
        with self._lock:
            found = self._histories.get(session_id)
            if found is None:
                found = SessionHistory(session_id, table_name=MESSAGES_TABLE, connection=self.engine)
                self._histories[session_id] = found
                while len(self._histories) > _CACHED_HISTORIES:
                    self._histories.popitem(last=False)
            else:
                self._histories.move_to_end(session_id)
            return found

    def recent(self, session_id: str, n: int) -> list[BaseMessage]:
        return self.history(session_id).recent(n)

    def add_turn(self, session_id: str, user_text: str, reply_text: str, reply_meta: dict[str, Any] | None = None,
                 *, user_meta: dict[str, Any] | None = None) -> None:
        """Store one exchange (user message, then the reply with its metadata) and keep the session bounded."""
        now = time.time()
        human = HumanMessage(content=_clip(user_text, self.stored_chars),
                             additional_kwargs={"time": now, **(user_meta or {})})
        ai = AIMessage(content=_clip(reply_text, self.stored_chars),
                       additional_kwargs={"time": now, **(reply_meta or {})})
        self.history(session_id).add_messages([human, ai])
        title = " ".join(user_text.split())[:MAX_TITLE_CHARS] or "New chat"
        with self.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO chat_sessions (session_id, title, created, updated) VALUES (:s, :t, :now, :now) "
                "ON CONFLICT(session_id) DO UPDATE SET updated = :now"), {"s": session_id, "t": title, "now": now})
            conn.execute(text(
                f"DELETE FROM {MESSAGES_TABLE} WHERE session_id = :s AND id NOT IN "
                f"(SELECT id FROM {MESSAGES_TABLE} WHERE session_id = :s ORDER BY id DESC LIMIT :keep)"),
                {"s": session_id, "keep": self.max_messages})

    def messages(self, session_id: str) -> list[dict[str, Any]]:
        """The session as plain dicts for display: role, content, time, and the reply's metadata."""
        out = []
        for message in self.history(session_id).messages[-self.max_messages:]:
            extra = dict(message.additional_kwargs or {})
            role = "user" if isinstance(message, HumanMessage) else "assistant"
            out.append({"role": role, "content": str(message.content), **extra})
        return out

    # -- all sessions --------------------------------------------------------------------------------
    def list_sessions(self) -> list[SessionInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(text(
                f"SELECT s.session_id, s.title, s.created, s.updated, "
                f"(SELECT COUNT(*) FROM {MESSAGES_TABLE} m WHERE m.session_id = s.session_id) "
                f"FROM chat_sessions s ORDER BY s.updated DESC")).all()
        return [SessionInfo(*row) for row in rows]

    def get(self, session_id: str) -> SessionInfo | None:
        check_session_id(session_id)
        return next((s for s in self.list_sessions() if s.session_id == session_id), None)

    def rename(self, session_id: str, title: str) -> bool:
        check_session_id(session_id)
        clean = " ".join(str(title).split())[:MAX_TITLE_CHARS]
        if not clean:
            raise ValueError("a session title cannot be empty")
        with self.engine.begin() as conn:
            done = conn.execute(text("UPDATE chat_sessions SET title = :t, titled_by_user = 1 WHERE session_id = :s"),
                                {"t": clean, "s": session_id})
        return done.rowcount > 0

    def delete(self, session_id: str) -> bool:
        check_session_id(session_id)
        with self.engine.begin() as conn:
            done = conn.execute(text("DELETE FROM chat_sessions WHERE session_id = :s"), {"s": session_id})
            conn.execute(text(f"DELETE FROM {MESSAGES_TABLE} WHERE session_id = :s"), {"s": session_id})
        with self._lock:
            self._histories.pop(session_id, None)
        return done.rowcount > 0

    def export(self, session_id: str, fmt: Literal["markdown", "json", "md"] = "markdown") -> str:
        info = self.get(session_id)
        if info is None:
            raise KeyError(f"no session {session_id!r}")
        messages = self.messages(session_id)
        if fmt == "json":
            return json.dumps({**info.to_dict(), "messages": messages}, indent=2, ensure_ascii=False)
        if fmt not in ("markdown", "md"):
            raise ValueError("export format must be 'markdown' or 'json'")
        return render_markdown(info, messages)

    def close(self) -> None:
        with self._lock:
            self._histories.clear()
        self.engine.dispose()
