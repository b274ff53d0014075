"""The page's detail chips: which names of the sources a reply used, and from which sources (escaped)."""
from __future__ import annotations

from ui.sources import Detail, chip_markdown, facts_markdown, used_details

FACTS = {"kind": "movie", "movie": "Alien", "text": "A 1979 film directed by Ridley Scott.",
         "facts": {"key": "alien", "sources": ["Kaggle movies", "top movies"], "fields": {
             "year": [{"value": "1979", "sources": ["Kaggle movies", "top movies"]}],
             "director": [{"value": "Ridley Scott", "sources": ["Kaggle movies", "top movies"]}],
             "cast": [{"value": "Sigourney Weaver", "sources": ["top movies"]},
                      {"value": "John Hurt", "sources": ["top movies"]}]}}}
REVIEW = {"kind": "review", "critic": "Ada Lumen", "sentiment": "positive",
          "text": "Weaver is fierce as the crew of the Nostromo fall one by one."}


def test_chips_name_each_detail_and_every_source_that_gives_it():
    reply = "Ridley Scott's 1979 chiller gives Weaver her finest hour aboard the Nostromo, not Tom Hanks."
    chips = {d.field + ":" + d.value: d for d in used_details(reply, [FACTS, REVIEW])}
    assert set(chips) == {"director:Ridley Scott", "year:1979", "cast:Sigourney Weaver", "name:Nostromo"}
    assert chips["director:Ridley Scott"].label == "director: Ridley Scott · from 2 sources"
    assert chips["cast:Sigourney Weaver"].sources == ["top movies", "Ada Lumen's review"]
    assert chips["name:Nostromo"].label == "name: Nostromo · from Ada Lumen's review"
    assert used_details("A fine, tense film.", [FACTS, REVIEW]) == []  # nothing of the sources: no chips
    assert used_details("Tom Hanks is great.", [FACTS, REVIEW]) == []  # a name no source gives: no chip


def test_a_name_from_the_critics_shared_names_line_gets_its_chip():
    names = {"kind": "movie", "movie": "Family Plot", "text": "Its critics name Alfred Hitchcock and Bruce Dern."}
    review = {"kind": "review", "critic": "Bo Quill", "text": "A lark, and Bruce Dern is a delight."}
    chips = {d.value: d for d in used_details("Dern is wasted. Hitchcock knew better.", [names, review])}
    assert chips["Alfred Hitchcock"].label == "name: Alfred Hitchcock · from its critics' reviews"
    assert chips["Bruce Dern"].sources == ["its critics' reviews", "Bo Quill's review"]
    assert "Its" not in chips and used_details("A lark.", [names, review]) == []


def test_chips_and_facts_are_escaped():
    evil = Detail("name", "[click](http://x.example) **bold** :red[x]", ["a critic's review"])
    markdown = chip_markdown(evil)
    assert markdown.startswith(":violet-badge[") and "](http" not in markdown and "\\*\\*bold" in markdown
    facts = facts_markdown({"fields": {"director": [{"value": "<b>Ann</b>", "sources": ["top movies"]}]}})
    assert facts == "- director: \\<b\\>Ann\\<\\/b\\> (top movies)"
