"""The chat's hand-offs are typed: the graph's turn state, the router's Turn in and Chunks out."""
from __future__ import annotations

from typing import get_type_hints

from assistant.chat.graph import ChatState, TurnState, reading_notes
from assistant.chat.intent import ParsedRequest, parse
from assistant.chat.router import Turn, add_chunk
from tests.tiny import tiny_artifacts, tiny_chat, tiny_loaded  # noqa: F401 - fixtures


def test_the_graphs_turn_state_is_a_typed_dict_of_plain_data():
    hints = get_type_hints(ChatState)
    assert hints["turn"] is TurnState and hints["message"] is str
    assert set(get_type_hints(TurnState)) == {"parsed", "previous", "previous_meta", "notes", "seed", "started"}


def test_chunks_merge_text_appended_and_the_rest_replaced():
    out: dict = {}
    assert add_chunk(out, {"mode": "rag", "notes": ["first"]}) == ""
    assert add_chunk(out, {"answer": ""}) == "" and out["answer"] == ""  # an empty answer still says one began
    assert add_chunk(out, {"answer": "Jaws"}) == "Jaws"
    assert add_chunk(out, {"answer": " bites.", "notes": ["second"]}) == " bites."
    assert out == {"mode": "rag", "notes": ["second"], "answer": "Jaws bites."}


def test_the_router_takes_a_turn_and_streams_chunks(tiny_chat):
    parsed = parse("help")
    turn = Turn(kind=parsed.kind, parsed=parsed, previous=None, previous_meta=None, rag=False)
    chunks = list(tiny_chat.router.stream(turn))
    merged: dict = {}
    for chunk in chunks:
        add_chunk(merged, chunk)
    assert merged["mode"] == "chat" and "review" in merged["answer"].lower()


def test_reading_notes_say_when_a_message_was_cut_or_a_title_guessed():
    long = parse("Write a positive review of Toy Story " + "really " * 600, max_chars=100)
    assert reading_notes(long)[0].startswith("Your message was long")
    guessed = ParsedRequest(kind="review", movie="Toy Story", movie_key="toy story", movie_query="toy stroy",
                            fuzzy_score=90.0)
    assert reading_notes(guessed) == ["I took \u201ctoy stroy\u201d to mean Toy Story."]
    assert reading_notes(ParsedRequest(kind="review", movie="Toy Story", movie_key="toy story",
                                       movie_query="Toy Story", fuzzy_score=100.0)) == []
