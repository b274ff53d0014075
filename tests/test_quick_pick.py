"""The first quick index takes the films people ask about first, not the first rows of the first file."""
from __future__ import annotations

from pathlib import Path

from assistant.data import quick_pick
from assistant.data.ingestion import IngestSummary, read_records
from assistant.data.quick_pick import most_asked_first
from assistant.data.records import MovieFacts, Review
from tests.fixtures_data import write_rt_fixtures


def _reviews(movie: str | None, n: int, start: str = "positive") -> list[Review]:
    other = "negative" if start == "positive" else "positive"
    # read in runs of one side: the pick must still let both sides in
    return [Review(f"{movie} review {i}", start if i < n - 1 else other, movie=movie) for i in range(n)]


def test_most_reviewed_films_with_facts_come_first_both_sides_taking_turns(monkeypatch):
    monkeypatch.setattr(quick_pick, "PER_FILM", 2)
    snippets = [Review(f"untitled snippet {i}", "positive") for i in range(5)]
    few = _reviews("Obscure Short", 1)
    many = _reviews("Busy Blockbuster", 6)
    jaws = [MovieFacts(title="Jaws", director="Steven Spielberg"), *_reviews("Jaws", 3, start="negative")]
    facts_only = [MovieFacts(title="Unreviewed Gem")]
    records = [*snippets, *few, *facts_only, *many, *jaws]  # the order files were read in

    picked = most_asked_first(records, limit=9)
    assert [r.key for r in picked] == ["jaws"] * 3 + ["busy blockbuster"] * 2 + ["obscure short"] + \
        ["unreviewed gem"] + ["jaws", "busy blockbuster"]
    assert isinstance(picked[0], MovieFacts) and [r.sentiment for r in picked[1:3]] == ["positive", "negative"]
    assert {r.sentiment for r in picked[3:5]} == {"positive", "negative"}  # Busy's one rotten review got in
    assert most_asked_first(records, limit=len(records) + 1) == records  # everything fits: nothing reordered
    rest = most_asked_first(records, limit=len(records) - 2)
    assert rest[-3:] == snippets[:3]  # untitled snippets fill what room is left, in the order read


def test_a_quick_ingest_of_the_fixture_mirror_takes_facts_cards_and_both_sides(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(quick_pick, "PER_FILM", 2)
    write_rt_fixtures(tmp_path)
    everything, _ = read_records([tmp_path], None, None, IngestSummary())
    titled = {r.key for r in everything if isinstance(r, MovieFacts) and r.title} & \
        {r.key for r in everything if isinstance(r, Review) and r.movie}
    assert titled, "the fixtures have films with both a facts card and reviews"
    limit = sum(1 for r in everything if isinstance(r, MovieFacts) and r.key in titled) + 2 * len(titled)
    summary = IngestSummary()
    picked, _ = read_records([tmp_path], None, limit, summary)
    assert len(picked) == limit == summary.kept
    for key in titled:  # each such film: its facts card and a fresh and a rotten review, within the first few
        mine = [r for r in picked if r.key == key]
        assert any(isinstance(r, MovieFacts) for r in mine)
        assert {r.sentiment for r in mine if isinstance(r, Review)} >= {"positive", "negative"}
    assert all((r.movie if isinstance(r, Review) else r.title) for r in picked)  # no untitled snippet yet
