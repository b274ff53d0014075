"""The movie-facts join: one card per film across sources, by normalized title + year; Flatiron by director + date."""
from __future__ import annotations

from assistant.data.facts import FactsIndex, choose, join, movie_card
from assistant.data.facts_card import (
    MovieCard,
    SourceFacts,
    first_sentences,
    line_people,
    source_label,
)
from assistant.data.records import MovieFacts
from assistant.model.prompts import format_context_item
from tests.tiny import tiny_artifacts  # noqa: F401  (pytest fixture)

KAGGLE = "data/kaggle-sample/rotten_tomatoes_movies.csv"
TOP = "data/top-movies/rotten_tomatoes_top_movies.csv"
FLATIRON = "data/flatiron/rt.movie_info.tsv.gz"


def facts(source: str, title: str | None, key: str | None = None, **fields) -> SourceFacts:
    from assistant.data.records import movie_key

    return SourceFacts(label=source_label(source), title=title, key=key or movie_key(title), **fields)


def test_source_labels():
    assert source_label("/x/kaggle-sample/rotten_tomatoes_movies.csv") == "Kaggle movies"
    assert source_label(TOP) == "top movies"
    assert source_label(FLATIRON) == "Flatiron movie info"
    assert source_label("mine/facts.csv") == "facts.csv"


def test_same_title_and_year_join_into_one_card_that_names_its_sources():
    cards = join([
        facts(KAGGLE, "Alien", year="1979", director="Ridley Scott", cast="Tom Skerritt, Sigourney Weaver",
              genre="Horror, Science Fiction", synopsis="The crew of the Nostromo answers a distress call. More."),
        facts(TOP, "ALIEN!", year="1979", director="Ridley Scott",
              cast="Tom Skerritt, Sigourney Weaver, Veronica Cartwright, Harry Dean Stanton, John Hurt",
              consensus="A modern classic."),
    ])
    (card,) = cards["alien"]
    assert card.title == "Alien" and card.year == "1979"
    assert sorted(card.sources) == ["Kaggle movies", "top movies"]
    (director,) = card.fields["director"]
    assert director.value == "Ridley Scott" and sorted(director.sources) == ["Kaggle movies", "top movies"]
    # leads from the longest list, at most four; Weaver is confirmed by both sources, Cartwright by one
    assert card.values("cast") == ["Tom Skerritt", "Sigourney Weaver", "Veronica Cartwright", "Harry Dean Stanton"]
    sources = {v.value: v.sources for v in card.fields["cast"]}
    assert len(sources["Sigourney Weaver"]) == 2 and sources["Veronica Cartwright"] == ["top movies"]
    line = card.line()
    assert line.startswith("A 1979 film directed by Ridley Scott, starring Tom Skerritt, Sigourney Weaver")
    assert "Nostromo" in line and "Critics consensus: A modern classic." in line
    assert card.names() == {"Ridley Scott": "director", "Tom Skerritt": "cast", "Sigourney Weaver": "cast",
                            "Veronica Cartwright": "cast", "Harry Dean Stanton": "cast"}
    assert line_people(line) == card.names()  # the line read back, as the decoding rules read it


def test_a_facts_line_read_back_keeps_initials_and_a_jr_in_the_name():
    line = "A 1985 film directed by George A. Romero, starring Robert Downey Jr. and Lori Cardille (horror). Dead."
    assert line_people(line) == {"George A. Romero": "director", "Robert Downey Jr.": "cast", "Lori Cardille": "cast"}
    assert line_people("The film starring Al Pacino. Critics consensus: A. Grand.") == {"Al Pacino": "cast"}
    assert line_people("Its critics name Hitchcock and Bruce Dern.") == {}  # no facts card's line


def test_films_sharing_a_title_stay_apart_and_reviews_pick_theirs():
    cards = join([
        facts(KAGGLE, "Day of the Dead", year="1985", director="George A. Romero"),
        facts(KAGGLE, "Day of the Dead", year="2008", director="Steve Miner"),
        facts(TOP, "Day of the Dead", year="2009", director="Steve Miner"),  # a year off: the same film
    ])["day of the dead"]
    assert sorted(c.year for c in cards) == ["1985", "2008"]
    assert choose(cards, "1986").first("director") == "George A. Romero"
    assert choose(cards, "2010").first("director") == "Steve Miner"
    remake = choose(cards, None)
    assert len(remake.sources) == 2  # undated reviews: the card with the most sources


def test_flatiron_joins_only_by_director_and_release_date():
    blade = facts(TOP, "Blade Runner", year="1982", director="Ridley Scott", release_date="1982-06-25", runtime=117)
    flat_same = facts(FLATIRON, None, key="flatiron:305", year="1982", director="Ridley Scott",
                      release_date="1982-06-25", synopsis="Deckard hunts replicants.")
    flat_other_day = facts(FLATIRON, None, key="flatiron:9", year="1982", director="Ridley Scott",
                           release_date="1982-12-01", runtime=90)
    cards = join([blade, flat_same, flat_other_day])
    (card,) = cards["blade runner"]
    assert card.sources == ["top movies", "Flatiron movie info"] and "Deckard" in card.line()
    assert cards["flatiron:305"] == [card]  # its untitled reviews find the titled card
    (alone,) = cards["flatiron:9"]  # same director, same year, another date and running time: another film
    assert alone.title is None and alone.sources == ["Flatiron movie info"]
    # year + running time within three minutes is enough when the date is missing
    near = facts(FLATIRON, None, key="flatiron:11", year="1982", director="R. Scott", runtime=115)
    assert join([blade, near])["flatiron:11"][0].key == "blade runner"


def test_an_ambiguous_flatiron_match_is_not_joined():
    twins = [facts(KAGGLE, "One", year="2001", director="Ann Lee", release_date="2001-05-01"),
             facts(KAGGLE, "Two", year="2001", director="Ann Lee", release_date="2001-05-01")]
    flat = facts(FLATIRON, None, key="flatiron:1", director="Ann Lee", release_date="2001-05-01")
    assert join([*twins, flat])["flatiron:1"][0].title is None


def test_card_metadata_round_trip_and_context_rendering():
    (card,) = join([facts(KAGGLE, "Up", year="2009", director="Pete Docter", cast="Ed Asner",
                          synopsis="A widower ties balloons to his house. " + "He flies. " * 80)])["up"]
    assert MovieCard.from_metadata(card.to_metadata()).line() == card.line()
    doc = card.document()
    item = format_context_item(doc.metadata, doc.page_content)
    assert item.startswith("About Up: A 2009 film directed by Pete Docter, starring Ed Asner.")
    assert len(item) < 620  # the synopsis keeps its first sentences only


def test_first_sentences():
    assert first_sentences("One. Two three. Four.", limit=12) == "One."
    assert first_sentences("Short. Then a second sentence here.", limit=80) == "Short. Then a second sentence here."
    assert first_sentences("word " * 100, limit=20).endswith("...")
    assert first_sentences("  ") is None


def test_cards_from_the_tiny_store(tiny_artifacts):  # noqa: F811
    from assistant.data.store import ReviewStore

    store = ReviewStore.open(tiny_artifacts, check=False)
    card = movie_card(store, "toy story")
    assert card is not None and card.title == "Toy Story" and card.year == "1995"
    assert sorted(card.sources) == ["Kaggle movies", "top movies"]
    assert "John Lasseter" in card.values("director")
    assert movie_card(store, "flatiron:1").title is None  # no titled film has its director and date
    assert movie_card(store, "no such movie") is None
    assert FactsIndex.from_store(store) is FactsIndex.from_store(store)  # built once per store generation


def test_retrieval_leads_with_the_card_and_owns_up_to_a_thin_movie(tmp_path, embeddings):
    from assistant.chat.retrieval import retrieve
    from assistant.settings import Settings
    from tests.test_store import REVIEWS, build

    jaws = MovieFacts(title="Jaws", year="1975", director="Steven Spielberg", cast="Roy Scheider, Robert Shaw",
                      synopsis="A great white shark terrorizes a beach town. " * 40,
                      source="top-movies/rotten_tomatoes_top_movies.csv")
    store = build(Settings(index_dir=tmp_path / "index"), embeddings, records=REVIEWS + [jaws])
    found = retrieve(store, sentiment="positive", movie="Jaws", movie_key="jaws", k=2)
    lead = found.documents[0]
    assert lead.metadata["kind"] == "movie" and lead.metadata["facts"]["sources"] == ["top movies"]
    assert lead.page_content.startswith("A 1975 film directed by Steven Spielberg, starring Roy Scheider and Robert")
    assert len(lead.page_content) < 400  # the long synopsis as its first sentences
    assert found.sources[0].facts["fields"]["director"][0]["value"] == "Steven Spielberg"
    assert not any("little about the film" in n for n in found.notes)
    thin = retrieve(store, sentiment="negative", movie="Cats", movie_key="cats", k=2)
    assert thin.documents[0].metadata["kind"] == "review"  # no facts to lead with
    assert any("only from 1 review and has no facts" in n for n in thin.notes)
