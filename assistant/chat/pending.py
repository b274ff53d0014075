"""Messages sent but not yet answered, kept in the chat database the moment they are sent (issue 29).

A turn reaches the LangGraph checkpoint only when its reply is finished, so until then the question lives here:
one row per message, in the order sent, with the options it was sent with and the process that will answer it.
The row goes when the answered turn is stored. If that process ends first (killed, crashed, or the page
server stopped), the row stays, and reads as "unanswered", so the question is shown with a way to ask it again.

States: "queued" (waiting its turn), "writing" (its reply is being written), "unanswered" (its writer is gone, or
the reply failed: `error` says why). A writer is named "pid:token": the token tells this process from an
earlier one that had the same pid (a restarted container), and a pid that no longer runs means the writer died.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

QUEUED, WRITING, UNANSWERED = "queued", "writing", "unanswered"
THIS_PROCESS = f"{os.getpid()}:{uuid.uuid4().hex[:12]}"
# A writer's pid may be reused by an unrelated process after a crash; a reply unfinished after this long is taken
# as lost whatever the pid says (a reply takes seconds to a few minutes here).
STALE_AFTER_S = 30 * 60
LOST_REPLY = "The reply to this message was not finished (the assistant stopped while writing it)."

SCHEMA = """
CREATE TABLE IF NOT EXISTS pending_messages (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,
    owner TEXT NOT NULL, text TEXT NOT NULL, options TEXT NOT NULL DEFAULT '{}', created REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued', writer TEXT NOT NULL, error TEXT);
CREATE INDEX IF NOT EXISTS pending_messages_session ON pending_messages(session_id, id);
"""
_COLUMNS = "id, session_id, owner, text, options, created, state, writer, error"


@dataclass
class Pending:
    """A message sent and not yet answered."""

    id: int
    session_id: str
    owner: str
    text: str
    options: dict[str, Any]
    created: float
    state: str
    writer: str
    error: str | None = None

    @classmethod
    def from_row(cls, row: tuple) -> Pending:
        fields = list(row)
        try:
            fields[4] = json.loads(fields[4] or "{}")
        except json.JSONDecodeError:
            fields[4] = {}
        return cls(*fields)

    def to_message(self) -> dict[str, Any]:
        """As `ChatMemory.messages` lists messages: a user message, with its state."""
        return {"role": "user", "content": self.text, "time": self.created, "pending": self.id,
                "status": self.state, **({"error": self.error} if self.error else {})}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def writer_alive(writer: str) -> bool:
    """Does the process that took this message on still run?"""
    pid_text, _, token = writer.partition(":")
    if writer == THIS_PROCESS:
        return True
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():  # our pid, another token: an earlier process that had it
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it runs
        return True
    try:  # a killed process its parent has not reaped yet still answers kill(0)
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def add(cur: sqlite3.Cursor, session_id: str, owner: str, text: str, options: dict[str, Any] | None) -> int:
    row = cur.execute("INSERT INTO pending_messages (session_id, owner, text, options, created, state, writer) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                      (session_id, owner, text, json.dumps(options or {}), time.time(), QUEUED, THIS_PROCESS))
    return int(row.fetchone()[0])


def claim_next(cur: sqlite3.Cursor, session_id: str) -> Pending | None:
    """This process's oldest queued message of the session, now marked as being written (one statement, so two
    threads never take the same one); None when the session has none, or an earlier one is still written."""
    busy = cur.execute("SELECT 1 FROM pending_messages WHERE session_id = ? AND state = ? AND writer = ?",
                       (session_id, WRITING, THIS_PROCESS)).fetchone()
    if busy:
        return None
    row = cur.execute(
        f"UPDATE pending_messages SET state = ? WHERE id = (SELECT id FROM pending_messages WHERE session_id = ? "
        f"AND state = ? AND writer = ? ORDER BY id LIMIT 1) RETURNING {_COLUMNS}",
        (WRITING, session_id, QUEUED, THIS_PROCESS)).fetchone()
    return Pending.from_row(row) if row else None


def finish(cur: sqlite3.Cursor, pending_id: int) -> None:
    cur.execute("DELETE FROM pending_messages WHERE id = ?", (pending_id,))


def fail(cur: sqlite3.Cursor, pending_id: int, error: str) -> None:
    cur.execute("UPDATE pending_messages SET state = ?, error = ? WHERE id = ?", (UNANSWERED, error, pending_id))


def requeue(cur: sqlite3.Cursor, pending_id: int, owner: str, options: dict[str, Any] | None) -> bool:
    """An unanswered message asked again, by this process, at the end of its session's queue."""
    row = cur.execute("SELECT session_id, text, options FROM pending_messages WHERE id = ? AND owner = ? "
                      "AND state = ?", (pending_id, owner, UNANSWERED)).fetchone()
    if row is None:
        return False
    cur.execute("DELETE FROM pending_messages WHERE id = ?", (pending_id,))
    add(cur, row[0], owner, row[1], options if options is not None else json.loads(row[2] or "{}"))
    return True


def of_session(cur: sqlite3.Cursor, session_id: str, answered: list[tuple[str, float]]) -> list[Pending]:
    """The session's unanswered messages, oldest first. A message whose writer is gone reads as unanswered (and
    is stored so); one whose turn was stored just before its writer died (`answered`: the stored questions'
    text and time) is dropped, as the turn is there."""
    rows = [Pending.from_row(r) for r in cur.execute(
        f"SELECT {_COLUMNS} FROM pending_messages WHERE session_id = ? ORDER BY id", (session_id,))]
    now, kept = time.time(), []
    for item in rows:
        if item.state != UNANSWERED and (not writer_alive(item.writer) or now - item.created > STALE_AFTER_S):
            if any(_same(text, item.text) and when >= item.created for text, when in answered):
                finish(cur, item.id)
                continue
            item.state, item.error = UNANSWERED, LOST_REPLY
            fail(cur, item.id, LOST_REPLY)
        kept.append(item)
    return kept


def _same(stored: str, sent: str) -> bool:
    """The stored question is the sent one read and clipped: compared on their opening, spaces aside."""
    return " ".join(stored.split())[:200] == " ".join(sent.split())[:200]


def drop_session(cur: sqlite3.Cursor, session_id: str) -> None:
    cur.execute("DELETE FROM pending_messages WHERE session_id = ?", (session_id,))
