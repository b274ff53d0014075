"""Chat sessions: isolated, persisted across restarts, bounded, listable, renamable, deletable, exportable."""
from __future__ import annotations

import json

import pytest
from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import AIMessage, HumanMessage

from assistant.chat.memory import ChatMemory


@pytest.fixture
def memory(tmp_path):
    mem = ChatMemory(tmp_path / "chats.sqlite", max_messages=6, stored_chars=100)
    yield mem
    mem.close()


def test_sessions_are_isolated_and_survive_a_restart(tmp_path, memory):
    memory.add_turn("a", "review Toy Story", "Great toys.", {"mode": "rag", "request": {"kind": "review"}})
    memory.add_turn("b", "review Gigli", "Awful.", {"mode": "no_rag"})
    assert [m["content"] for m in memory.messages("a")] == ["review Toy Story", "Great toys."]
    assert [m["content"] for m in memory.messages("b")] == ["review Gigli", "Awful."]
    memory.close()
    reopened = ChatMemory(tmp_path / "chats.sqlite")
    msgs = reopened.messages("a")
    assert msgs[1]["role"] == "assistant" and msgs[1]["mode"] == "rag" and msgs[1]["request"] == {"kind": "review"}
    assert {s.session_id for s in reopened.list_sessions()} == {"a", "b"}
    reopened.close()


def test_history_is_a_langchain_message_history(memory):
    history = memory.history("lc")
    assert isinstance(history, BaseChatMessageHistory)
    history.add_messages([HumanMessage("hi"), AIMessage("hello")])
    assert [type(m) for m in memory.recent("lc", 5)] == [HumanMessage, AIMessage]


def test_bounded_messages_and_stored_length(memory):
    for i in range(10):
        memory.add_turn("s", f"message {i} " + "x" * 500, f"reply {i}")
    messages = memory.messages("s")
    assert len(messages) == 6  # max_messages: the oldest were pruned
    assert messages[-1]["content"] == "reply 9"
    assert len(messages[-2]["content"]) < 200 and "more characters not kept" in messages[-2]["content"]
    assert [m.content for m in memory.recent("s", 2)] == [messages[-2]["content"], "reply 9"]
    assert memory.get("s").messages == 6


def test_list_rename_delete_export(memory):
    memory.add_turn("s1", "Write a positive review of Toy Story", "A delight.",
                    {"mode": "rag", "model": "tuned", "notes": ["a note"],
                     "sources": [{"critic": "Ada Lumen", "publication": "Evening Ledger", "movie": "Toy Story",
                                  "verdict": "fresh", "similarity": 0.61, "text": "Joyous."}]})
    memory.add_turn("s2", "hi", "Hello.")
    assert [s.session_id for s in memory.list_sessions()] == ["s2", "s1"]  # newest first
    assert memory.get("s1").title == "Write a positive review of Toy Story"
    assert memory.rename("s1", "  Toy   Story chat ") and memory.get("s1").title == "Toy Story chat"
    assert not memory.rename("nope", "x")
    with pytest.raises(ValueError):
        memory.rename("s1", "   ")

    md = memory.export("s1", "markdown")
    assert md.startswith("# Toy Story chat") and "Ada Lumen (Evening Ledger) on Toy Story, fresh" in md
    assert "> a note" in md
    data = json.loads(memory.export("s1", "json"))
    assert data["title"] == "Toy Story chat" and [m["role"] for m in data["messages"]] == ["user", "assistant"]
    with pytest.raises(KeyError):
        memory.export("nope")

    assert memory.delete("s1") and memory.messages("s1") == [] and memory.get("s1") is None
    assert not memory.delete("s1")
    assert [s.session_id for s in memory.list_sessions()] == ["s2"]


@pytest.mark.parametrize("bad", ["", "a" * 200, "../etc", "a b", "x\x00"])
def test_invalid_session_ids_are_refused(memory, bad):
    with pytest.raises(ValueError):
        memory.messages(bad)
