"""Messages kept the moment they are sent (assistant/chat/pending.py): queued, written, finished, or unanswered
with a way to ask again once their writer is gone, a process killed with -9 included."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assistant.chat import pending
from assistant.chat.memory import CLI_OWNER, ChatMemory, UnknownSession
from assistant.chat.turns import answer_pending
from tests.tiny import tiny_artifacts, tiny_chat, tiny_loaded  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent
BROWSER = "browser-token-0123456789"


def statuses(memory: ChatMemory, session: str, owner: str = BROWSER) -> list[tuple[str, str | None]]:
    return [(m["content"], m.get("status")) for m in memory.messages(session, owner)]


def test_a_message_is_kept_and_listed_before_its_reply(tmp_path):
    memory = ChatMemory(tmp_path / "chats.sqlite")
    memory.add_pending("s1", BROWSER, "a positive review of Jaws", {"rag": True})
    memory.add_pending("s1", BROWSER, "a negative review of Alien")
    assert statuses(memory, "s1") == [("a positive review of Jaws", "queued"), ("a negative review of Alien", "queued")]
    assert [(s.session_id, s.title) for s in memory.list_sessions(BROWSER)] == [("s1", "a positive review of Jaws")]
    assert memory.messages("s1", "someone-else") == [] and memory.pending("s1", "someone-else") == []
    with pytest.raises(UnknownSession):
        memory.add_pending("s1", "someone-else", "mine now")
    memory.close()
    reopened = ChatMemory(tmp_path / "chats.sqlite")  # a restart of this same process keeps them as they were
    assert [p.text for p in reopened.pending("s1", BROWSER)] == ["a positive review of Jaws",
                                                                   "a negative review of Alien"]


def test_messages_are_answered_in_order_one_at_a_time(tmp_path):
    memory = ChatMemory(tmp_path / "chats.sqlite")
    first = memory.add_pending("s1", BROWSER, "first")
    memory.add_pending("s1", BROWSER, "second")
    taken = memory.claim_pending("s1")
    assert taken.id == first and taken.options == {}
    assert memory.claim_pending("s1") is None, "the second waits until the first is answered"
    assert statuses(memory, "s1") == [("first", "writing"), ("second", "queued")]
    memory.finish_pending(first)
    assert memory.claim_pending("s1").text == "second"


def test_a_message_whose_writer_died_is_unanswered_and_can_be_asked_again(tmp_path):
    memory = ChatMemory(tmp_path / "chats.sqlite")
    item = memory.add_pending("s1", BROWSER, "a review of Jaws", {"rag": False})
    with sqlite3.connect(memory.path) as db:  # as left by an earlier process that had this very pid
        db.execute("UPDATE pending_messages SET writer = ?, state = 'writing' WHERE id = ?", (f"{os.getpid()}:old", item))
    (message,) = memory.messages("s1", BROWSER)
    assert message["status"] == "unanswered" and "not finished" in message["error"]
    assert not memory.retry_pending(message["pending"], "someone-else")
    assert memory.retry_pending(message["pending"], BROWSER)
    (again,) = memory.pending("s1", BROWSER)
    assert again.state == "queued" and again.writer == pending.THIS_PROCESS and again.options == {"rag": False}


def test_a_failed_reply_keeps_the_question_with_why(tiny_chat):
    memory = tiny_chat.memory
    memory.add_pending("f1", CLI_OWNER, "Write a positive review of Toy Story", {"model": "no-such-model"})
    with pytest.raises(ValueError):
        answer_pending(tiny_chat, memory.claim_pending("f1"))
    (message,) = memory.messages("f1", CLI_OWNER)
    assert message["status"] == "unanswered" and "ValueError" in message["error"]


def test_a_reply_cut_by_a_stopping_server_reads_as_not_finished_not_as_broken(tiny_chat, monkeypatch):
    """A server told to stop shuts its worker pools; the reply then fails with the pool's refusal, which is the
    stop, not a bug in the reply."""
    memory = tiny_chat.memory

    def refused(*args, **kwargs):
        raise RuntimeError("cannot schedule new futures after shutdown")
        yield  # a generator, as the chat's stream is

    monkeypatch.setattr(tiny_chat, "stream", refused)
    memory.add_pending("x1", CLI_OWNER, "Write a positive review of Toy Story")
    with pytest.raises(RuntimeError):
        answer_pending(tiny_chat, memory.claim_pending("x1"))
    (message,) = memory.messages("x1", CLI_OWNER)
    assert message["status"] == "unanswered" and message["error"] == pending.LOST_REPLY


def test_an_answered_message_becomes_a_stored_turn(tiny_chat):
    memory = tiny_chat.memory
    memory.add_pending("a1", CLI_OWNER, "Write a positive review of Toy Story", {"rag": True, "max_new_tokens": 8})
    tokens: list = []
    reply = answer_pending(tiny_chat, memory.claim_pending("a1"), on_event=tokens.append)
    assert tokens[-1] is reply and memory.pending("a1", CLI_OWNER) == []
    assert [(m["role"], m.get("status")) for m in memory.messages("a1", CLI_OWNER)] == [("user", None),
                                                                                           ("assistant", None)]


KILLED = textwrap.dedent("""
    import sys, time
    from assistant.chat.memory import ChatMemory
    memory = ChatMemory(sys.argv[1])
    memory.add_pending("k1", "browser-token-0123456789", "a review of Jaws")
    memory.claim_pending("k1")
    print("writing", flush=True)
    time.sleep(60)
""")


def test_a_process_killed_while_writing_leaves_the_question_unanswered(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path / "chats.sqlite")], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    memory = ChatMemory(tmp_path / "chats.sqlite")
    assert statuses(memory, "k1") == [("a review of Jaws", "writing")], "its writer still runs"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert statuses(memory, "k1") == [("a review of Jaws", "unanswered")]
