"""Chat sessions in one SQLite file: LangGraph's SQLite checkpointer keeps each session's messages (thread id =
session id), and a `chat_sessions` table says whose each session is, its title and its size.

Sessions belong to an owner: a browser's random token, or "cli" for the command line; everything here takes
the owner, and another owner's session reads as missing (`ANY_OWNER` is for `sessions --all`). Sessions are
bounded: messages are stored cut to a length, the graph trims the oldest past a maximum, and superseded
checkpoints are pruned after each turn so the file does not grow with every step. A file from before
(LangChain's `message_store` table, sessions without an owner) is migrated on open, to the CLI owner.
"""
from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

from filelock import FileLock
from langchain_core.messages import AnyMessage, HumanMessage, messages_from_dict
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from assistant.chat import pending
from assistant.chat.export import render_markdown
from assistant.chat.pending import Pending

log = logging.getLogger(__name__)

CLI_OWNER = "cli"
ANY_OWNER = None  # `sessions --all`: the machine's owner of the files sees every session
SESSION_ID_RE = re.compile(r"[\w.:@\-]{1,128}")
OWNER_RE = re.compile(r"[\w\-]{1,64}")
MAX_TITLE_CHARS = 80
MAX_SESSION_MESSAGES = 400  # a session keeps its latest messages; older ones are pruned
STORED_MESSAGE_CHARS = 8000  # a message is stored up to here (a reply runs a few hundred characters)
LEGACY_TABLE = "message_store"  # LangChain's SQLChatMessageHistory, before LangGraph

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chat_sessions (session_id TEXT PRIMARY KEY, title TEXT NOT NULL, created REAL NOT NULL,
    updated REAL NOT NULL, titled_by_user INTEGER NOT NULL DEFAULT 0);
"""
_COLUMNS = {"owner": f"TEXT NOT NULL DEFAULT '{CLI_OWNER}'",  # sessions from before owners are the CLI's
            "messages": "INTEGER NOT NULL DEFAULT 0"}


class MemoryState(TypedDict, total=False):
    """What a session keeps between turns (the chat graph's state extends it)."""

    messages: Annotated[list[AnyMessage], add_messages]


class UnknownSession(KeyError):
    """No such session for this owner (another owner's session reads the same: it is not theirs to see)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"no session {session_id!r} here (a chat belongs to the browser or the command line that "
                         "started it)")


@dataclass
class SessionInfo:
    session_id: str
    title: str
    created: float
    updated: float
    messages: int
    owner: str = CLI_OWNER

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_session_id(session_id: str) -> str:
    if not isinstance(session_id, str) or not SESSION_ID_RE.fullmatch(session_id):
        raise ValueError("session id must be 1-128 letters, digits or . : @ _ - characters")
    return session_id


def check_owner(owner: str | None) -> str | None:
    if owner is not ANY_OWNER and (not isinstance(owner, str) or not OWNER_RE.fullmatch(owner)):
        raise ValueError("a chat owner must be 1-64 letters, digits, _ or - characters")
    return owner


def new_session_id() -> str:
    return uuid.uuid4().hex[:12]


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" [... {len(text) - limit:,} more characters not kept]"


def thread(session_id: str) -> dict[str, Any]:
    """The LangGraph config of a session's thread."""
    return {"configurable": {"thread_id": check_session_id(session_id), "checkpoint_ns": ""}}


class ChatMemory:
    """All chat sessions in one SQLite file; `saver` is the checkpointer the chat graph is compiled with."""

    def __init__(self, path: Path | str, *, max_messages: int = MAX_SESSION_MESSAGES,
                 stored_chars: int = STORED_MESSAGE_CHARS) -> None:
        self.path = Path(path)
        self.max_messages = max_messages
        self.stored_chars = stored_chars
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        conn.execute("PRAGMA busy_timeout=30000")
        # Strict msgpack: a swapped chats file can revive only plain data and messages, never arbitrary objects.
        self.saver = SqliteSaver(conn, serde=JsonPlusSerializer(allowed_msgpack_modules=None))
        with self._cursor() as cur:
            cur.executescript(_SCHEMA)
            have = {row[1] for row in cur.execute("PRAGMA table_info(chat_sessions)")}
            for column, spec in _COLUMNS.items():
                if column not in have:
                    cur.execute(f"ALTER TABLE chat_sessions ADD COLUMN {column} {spec}")
            cur.execute("CREATE INDEX IF NOT EXISTS chat_sessions_owner ON chat_sessions(owner, updated)")
            cur.executescript(pending.SCHEMA)
        self._migrate_legacy()

    @classmethod
    def from_settings(cls, settings: Any) -> ChatMemory:
        return cls(settings.chats_db)

    def _cursor(self) -> Any:
        return self.saver.cursor()  # the saver's connection and lock: one writer per process at a time

    # -- ownership -------------------------------------------------------------------------------------------
    def owner_of(self, session_id: str) -> str | None:
        check_session_id(session_id)
        with self._cursor() as cur:
            row = cur.execute("SELECT owner FROM chat_sessions WHERE session_id = ?", (session_id,)).fetchone()
        return row[0] if row else None

    def check_access(self, session_id: str, owner: str | None) -> None:
        """UnknownSession when the session exists and is someone else's; a new id is free to take."""
        found = self.owner_of(session_id)
        if found is not None and check_owner(owner) is not ANY_OWNER and found != owner:
            raise UnknownSession(session_id)

    def _visible(self, session_id: str, owner: str | None) -> bool:
        found = self.owner_of(session_id)
        return found is not None and (check_owner(owner) is ANY_OWNER or found == owner)

    def record_turn(self, session_id: str, owner: str, first_text: str, stored: int) -> None:
        """A remembered turn: the session's row (title from its first message), and its superseded checkpoints
        pruned. A session another owner holds is left alone."""
        now = time.time()
        title = " ".join(first_text.split())[:MAX_TITLE_CHARS] or "New chat"
        with self._cursor() as cur:
            cur.execute(
                "INSERT INTO chat_sessions (session_id, title, created, updated, owner, messages) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(session_id) DO UPDATE SET updated = excluded.updated, "
                "messages = excluded.messages WHERE owner = excluded.owner",
                (session_id, title, now, now, check_owner(owner), stored))
            self._prune(cur, session_id)

    def prune(self, session_id: str) -> None:
        """Drop the thread's superseded checkpoints (after a turn's last checkpoint is written)."""
        with self._cursor() as cur:
            self._prune(cur, check_session_id(session_id))

    @staticmethod
    def _prune(cur: sqlite3.Cursor, session_id: str) -> None:
        """Keep the thread's latest checkpoint only: it holds the whole (bounded) state; the older ones are
        superseded steps. Latest = highest id, as the checkpointer reads it."""
        latest = cur.execute("SELECT MAX(checkpoint_id) FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ''",
                             (session_id,)).fetchone()[0]
        if latest is None:
            return
        cur.execute("DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = '' AND checkpoint_id < ?",
                    (session_id, latest))
        cur.execute("DELETE FROM writes WHERE thread_id = ? AND checkpoint_ns = '' AND checkpoint_id < ?",
                    (session_id, latest))

    # -- reading ---------------------------------------------------------------------------------------------
    def _stored_messages(self, session_id: str) -> list[AnyMessage]:
        saved = self.saver.get_tuple(thread(session_id))
        return list((saved.checkpoint.get("channel_values") or {}).get("messages") or []) if saved else []

    def recent(self, session_id: str, owner: str | None, n: int) -> list[AnyMessage]:
        """The latest n messages of a session this owner may read ([] for a new one)."""
        self.check_access(session_id, owner)
        return self._stored_messages(session_id)[-n:] if n > 0 else []

    def messages(self, session_id: str, owner: str | None) -> list[dict[str, Any]]:
        """The session as plain dicts for display: role, content, time, and the reply's metadata; then the
        messages sent and not yet answered, with their "pending" id and "status" (pending.py)."""
        if not self._visible(session_id, owner):
            return []
        out = []
        stored = self._stored_messages(session_id)
        for message in stored:
            role = "user" if isinstance(message, HumanMessage) else "assistant"
            out.append({"role": role, "content": str(message.content), **dict(message.additional_kwargs or {})})
        return out + [item.to_message() for item in self._pending(session_id, stored)]

    # -- messages not yet answered (pending.py) ----------------------------------------------------------------
    def add_pending(self, session_id: str, owner: str, text: str, options: dict[str, Any] | None = None) -> int:
        """Keep a message the moment it is sent, before its reply is written; the session is listed from now
        on, named after its first message. UnknownSession for another owner's session."""
        self.check_access(session_id, owner)
        now, title = time.time(), " ".join(str(text).split())[:MAX_TITLE_CHARS] or "New chat"
        with self._cursor() as cur:
            cur.execute("INSERT INTO chat_sessions (session_id, title, created, updated, owner) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT(session_id) DO UPDATE SET updated = excluded.updated WHERE owner = excluded.owner",
                        (session_id, title, now, now, check_owner(owner)))
            return pending.add(cur, session_id, owner, clip(str(text), self.stored_chars), options)

    def claim_pending(self, session_id: str) -> Pending | None:
        """The session's next message for this process to answer (marked as being written), or None."""
        with self._cursor() as cur:
            return pending.claim_next(cur, check_session_id(session_id))

    def finish_pending(self, pending_id: int) -> None:
        """Its turn is stored: the message is no longer pending."""
        with self._cursor() as cur:
            pending.finish(cur, pending_id)

    def fail_pending(self, pending_id: int, error: str) -> None:
        """Its reply failed: the message stays, unanswered, with why."""
        with self._cursor() as cur:
            pending.fail(cur, pending_id, error)

    def retry_pending(self, pending_id: int, owner: str, options: dict[str, Any] | None = None) -> bool:
        """Ask an unanswered message again (queued for this process); False if it is not this owner's or is
        not unanswered."""
        check_owner(owner)
        with self._cursor() as cur:
            return pending.requeue(cur, int(pending_id), owner, options)

    def pending(self, session_id: str, owner: str | None) -> list[Pending]:
        """The session's messages not yet answered, oldest first ([] for another owner's session)."""
        if not self._visible(session_id, owner):
            return []
        return self._pending(session_id, self._stored_messages(session_id))

    def _pending(self, session_id: str, stored: list[AnyMessage]) -> list[Pending]:
        answered = [(str(m.content), float((m.additional_kwargs or {}).get("time") or 0)) for m in stored
                    if isinstance(m, HumanMessage)]
        with self._cursor() as cur:
            return pending.of_session(cur, session_id, answered)

    def list_sessions(self, owner: str | None) -> list[SessionInfo]:
        """The owner's sessions, newest first; ANY_OWNER: everyone's."""
        where, params = ("", ()) if check_owner(owner) is ANY_OWNER else ("WHERE owner = ?", (owner,))
        with self._cursor() as cur:
            rows = cur.execute(f"SELECT session_id, title, created, updated, messages, owner FROM chat_sessions "
                               f"{where} ORDER BY updated DESC", params).fetchall()
        return [SessionInfo(*row) for row in rows]

    def get(self, session_id: str, owner: str | None) -> SessionInfo | None:
        check_session_id(session_id)
        return next((s for s in self.list_sessions(owner) if s.session_id == session_id), None)

    # -- changing --------------------------------------------------------------------------------------------
    def rename(self, session_id: str, title: str, owner: str | None) -> bool:
        clean = " ".join(str(title).split())[:MAX_TITLE_CHARS]
        if not clean:
            raise ValueError("a session title cannot be empty")
        if not self._visible(session_id, owner):
            return False
        with self._cursor() as cur:
            cur.execute("UPDATE chat_sessions SET title = ?, titled_by_user = 1 WHERE session_id = ?",
                        (clean, session_id))
        return True

    def delete(self, session_id: str, owner: str | None) -> bool:
        if not self._visible(session_id, owner):
            return False
        self.saver.delete_thread(session_id)
        with self._cursor() as cur:
            cur.execute("DELETE FROM chat_sessions WHERE session_id = ?", (session_id,))
            pending.drop_session(cur, session_id)
        return True

    def export(self, session_id: str, fmt: Literal["markdown", "json", "md"] = "markdown", *,
               owner: str | None) -> str:
        info = self.get(session_id, owner)
        if info is None:
            raise UnknownSession(session_id)
        messages = self.messages(session_id, owner)
        if fmt == "json":
            return json.dumps({**info.to_dict(), "messages": messages}, indent=2, ensure_ascii=False)
        if fmt not in ("markdown", "md"):
            raise ValueError("export format must be 'markdown' or 'json'")
        return render_markdown(info, messages)

    def close(self) -> None:
        self.saver.conn.close()

    # -- the file from before LangGraph --------------------------------------------------------------------------
    def _migrate_legacy(self) -> None:
        """LangChain's `message_store` rows -> one checkpoint per session (the CLI's); then the table goes."""
        if not self._has_legacy():
            return
        with FileLock(f"{self.path}.migrate.lock"):  # two processes opening an old file migrate it once
            if not self._has_legacy():
                return
            with self._cursor() as cur:
                rows = cur.execute(f"SELECT session_id, message FROM {LEGACY_TABLE} ORDER BY session_id, id").fetchall()
            sessions: dict[str, list[dict[str, Any]]] = {}
            for session_id, raw in rows:
                try:
                    sessions.setdefault(session_id, []).append(json.loads(raw))
                except json.JSONDecodeError:
                    log.warning("skipped an unreadable stored message of session %r", session_id)
            writer = StateGraph(MemoryState)
            writer.add_node("remember", lambda state: {})
            writer.add_edge(START, "remember")
            writer.add_edge("remember", END)
            graph = writer.compile(checkpointer=self.saver)
            for session_id, data in sessions.items():
                if not SESSION_ID_RE.fullmatch(session_id) or self.saver.get_tuple(thread(session_id)):
                    continue
                messages = messages_from_dict(data)[-self.max_messages:]
                graph.update_state(thread(session_id), {"messages": messages}, as_node="remember")
                first = next((str(m.content) for m in messages if isinstance(m, HumanMessage)), "")
                stamp = float((messages[-1].additional_kwargs or {}).get("time") or time.time()) if messages else 0
                with self._cursor() as cur:
                    cur.execute("INSERT OR IGNORE INTO chat_sessions (session_id, title, created, updated, owner) "
                                "VALUES (?, ?, ?, ?, ?)", (session_id, " ".join(first.split())[:MAX_TITLE_CHARS]
                                                           or "New chat", stamp, stamp, CLI_OWNER))
                    cur.execute("UPDATE chat_sessions SET messages = ? WHERE session_id = ?",
                                (len(messages), session_id))
                    self._prune(cur, session_id)
            with self._cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {LEGACY_TABLE}")
            log.info("migrated %d chat sessions to LangGraph checkpoints in %s", len(sessions), self.path)

    def _has_legacy(self) -> bool:
        with self._cursor() as cur:
            return cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (LEGACY_TABLE,)).fetchone() is not None
