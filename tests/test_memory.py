"""Chat sessions in LangGraph's SQLite checkpointer: isolated, owned, persisted, bounded, pruned, migrated."""
from __future__ import annotations

import json
import sqlite3
import time

import pytest
from langchain_core.messages import AIMessage, HumanMessage, message_to_dict

from assistant.chat.assistant import Assistant
from assistant.chat.memory import ANY_OWNER, CLI_OWNER, ChatMemory, UnknownSession
from tests.tiny import tiny_artifacts, tiny_chat, tiny_loaded  # noqa: F401 - fixtures

BROWSER = "browser-token-0123456789"


def chat_with(tiny_chat, memory: ChatMemory, **settings) -> Assistant:
    """The tiny assistant's store and model over another chat database."""
    settings = tiny_chat.settings.model_copy(update={"chats_db": memory.path, **settings})
    return Assistant(settings, store=tiny_chat.store,
                     titles=tiny_chat.titles, memory=memory, generators={"tuned": tiny_chat.generator("tuned")})


def test_sessions_are_isolated_and_survive_a_restart(tiny_chat, tmp_path):
    tiny_chat.reply("a", "hi")
    tiny_chat.reply("b", "thanks", owner=BROWSER)
    assert [m["content"] for m in tiny_chat.memory.messages("a", CLI_OWNER)][0] == "hi"
    assert tiny_chat.memory.messages("b", CLI_OWNER) == []  # not the CLI's
    path = tiny_chat.memory.path
    tiny_chat.memory.close()
    reopened = ChatMemory(path)
    msgs = reopened.messages("a", CLI_OWNER)
    assert [m["role"] for m in msgs] == ["user", "assistant"] and msgs[1]["mode"] == "chat"
    assert msgs[1]["request"]["kind"] == "smalltalk"
    assert [s.session_id for s in reopened.list_sessions(CLI_OWNER)] == ["a"]
    assert [s.session_id for s in reopened.list_sessions(BROWSER)] == ["b"]
    assert {s.session_id: s.owner for s in reopened.list_sessions(ANY_OWNER)} == {"a": CLI_OWNER, "b": BROWSER}
    reopened.close()


def test_another_owners_session_cannot_be_read_changed_or_continued(tiny_chat):
    memory = tiny_chat.memory
    tiny_chat.reply("mine", "hi", owner=BROWSER)
    assert memory.messages("mine", "someone-else") == [] and memory.get("mine", "someone-else") is None
    assert not memory.rename("mine", "taken", "someone-else") and not memory.delete("mine", "someone-else")
    with pytest.raises(UnknownSession) as error:
        memory.export("mine", "json", owner="someone-else")
    assert "\n" not in error.value.args[0] and "no session 'mine'" in error.value.args[0]
    with pytest.raises(KeyError):  # nor can a turn be added to it
        tiny_chat.reply("mine", "hello again", owner="someone-else")
    assert [m["content"] for m in memory.messages("mine", BROWSER)][0] == "hi"
    assert memory.get("mine", BROWSER).messages == 2 and memory.get("mine", ANY_OWNER).owner == BROWSER


def test_bounded_messages_and_stored_length(tiny_chat, tmp_path):
    memory = ChatMemory(tmp_path / "small.sqlite", max_messages=6, stored_chars=100)
    chat = chat_with(tiny_chat, memory)  # the graph keeps to the memory's limits
    for i in range(5):
        chat.reply("s", f"thanks {i} " + "x" * 500)
    messages = memory.messages("s", CLI_OWNER)
    assert len(messages) == 6 and memory.get("s", CLI_OWNER).messages == 6  # the oldest were trimmed
    assert messages[-2]["content"].startswith("thanks 4") and "more characters not kept" in messages[-2]["content"]
    assert [m.content for m in memory.recent("s", CLI_OWNER, 2)] == [messages[-2]["content"], messages[-1]["content"]]
    memory.close()


def test_superseded_checkpoints_are_pruned(tiny_chat):
    for text in ("hi", "thanks", "what can you do?"):
        tiny_chat.reply("p", text)
    with sqlite3.connect(tiny_chat.memory.path) as db:
        kept = db.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = 'p'").fetchone()[0]
        writes = db.execute("SELECT COUNT(*) FROM writes WHERE thread_id = 'p'").fetchone()[0]
    assert kept == 1 and writes == 0
    assert len(tiny_chat.memory.messages("p", CLI_OWNER)) == 6


def test_list_rename_delete_export(tiny_chat):
    memory = tiny_chat.memory
    tiny_chat.reply("s1", "Write a positive review of Toy Story", max_new_tokens=4)
    time.sleep(0.01)
    tiny_chat.reply("s2", "hi")
    assert [s.session_id for s in memory.list_sessions(CLI_OWNER)] == ["s2", "s1"]  # newest first
    assert memory.get("s1", CLI_OWNER).title == "Write a positive review of Toy Story"
    assert memory.rename("s1", "  Toy   Story chat ", CLI_OWNER)
    assert memory.get("s1", CLI_OWNER).title == "Toy Story chat"
    tiny_chat.reply("s1", "thanks")  # a later turn keeps the user's title
    assert memory.get("s1", CLI_OWNER).title == "Toy Story chat"
    assert not memory.rename("nope", "x", CLI_OWNER)
    with pytest.raises(ValueError):
        memory.rename("s1", "   ", CLI_OWNER)

    md = memory.export("s1", "markdown", owner=CLI_OWNER)
    assert md.startswith("# Toy Story chat") and " on Toy Story" in md and "**Assistant** (rag, tuned)" in md
    data = json.loads(memory.export("s1", "json", owner=CLI_OWNER))
    assert data["title"] == "Toy Story chat" and [m["role"] for m in data["messages"]] == ["user", "assistant"] * 2
    with pytest.raises(KeyError):
        memory.export("nope", owner=CLI_OWNER)

    assert memory.delete("s1", CLI_OWNER) and memory.messages("s1", CLI_OWNER) == []
    assert memory.get("s1", CLI_OWNER) is None and not memory.delete("s1", CLI_OWNER)
    assert [s.session_id for s in memory.list_sessions(CLI_OWNER)] == ["s2"]
    assert memory.recent("s1", CLI_OWNER, 5) == []  # its checkpoints went too


@pytest.mark.parametrize("bad", ["", "a" * 200, "../etc", "a b", "x\x00"])
def test_invalid_session_ids_are_refused(tmp_path, bad):
    memory = ChatMemory(tmp_path / "chats.sqlite")
    with pytest.raises(ValueError):
        memory.recent(bad, CLI_OWNER, 3)
    memory.close()


def legacy_file(path) -> None:
    """A chats file as LangChain's SQLChatMessageHistory and our sessions table wrote it, before owners."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE message_store (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT, message TEXT)")
        db.execute("CREATE TABLE chat_sessions (session_id TEXT PRIMARY KEY, title TEXT NOT NULL, created REAL NOT "
                   "NULL, updated REAL NOT NULL, titled_by_user INTEGER NOT NULL DEFAULT 0)")
        request = {"kind": "review", "sentiment": "positive", "movie": "Gigli", "movie_key": "gigli",
                   "text": "Write a positive review of Gigli"}
        turn = [HumanMessage("Write a positive review of Gigli", additional_kwargs={"time": 1.0e9}),
                AIMessage("Bennifer at their best.", additional_kwargs={"time": 1.0e9, "mode": "no_rag",
                                                                        "model": "tuned", "request": request})]
        for message in turn:
            db.execute("INSERT INTO message_store (session_id, message) VALUES (?, ?)",
                       ("old", json.dumps(message_to_dict(message))))
        db.execute("INSERT INTO chat_sessions VALUES ('old', 'My Gigli chat', 1.0e9, 1.0e9, 1)")


def test_an_old_chats_file_is_migrated_to_the_cli_owner(tiny_chat, tmp_path):
    path = tmp_path / "old.sqlite"
    legacy_file(path)
    memory = ChatMemory(path)
    [info] = memory.list_sessions(CLI_OWNER)
    assert (info.session_id, info.title, info.owner, info.messages) == ("old", "My Gigli chat", CLI_OWNER, 2)
    assert [m["content"] for m in memory.messages("old", CLI_OWNER)] == ["Write a positive review of Gigli",
                                                                          "Bennifer at their best."]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'message_store'").fetchone() is None
    follow = chat_with(tiny_chat, memory).reply("old", "now a negative one", max_new_tokens=4)
    request = follow.request
    assert (request.movie, request.sentiment, request.followup) == ("Gigli", "negative", "sentiment")
    assert len(memory.messages("old", CLI_OWNER)) == 4
    memory.close()
    again = ChatMemory(path)  # opening it again changes nothing
    assert len(again.messages("old", CLI_OWNER)) == 4 and again.list_sessions(BROWSER) == []
    again.close()
