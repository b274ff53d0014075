"""The names a movie's critics share: a facts line for films no facts source knows."""
from __future__ import annotations

import pytest

from assistant.data.critics_names import critics_names_document, shared_names
from assistant.data.records import Review
from assistant.model.prompts import format_context_item

FAMILY_PLOT = [
    "The last film of Alfred Hitchcock is a lark, and Bruce Dern is a delight.",
    "A minor Hitchcock, but Karen Black and Bruce Dern make it sing.",
    "Even lesser Alfred Hitchcock beats most thrillers; the Internet would call it a vibe.",
    "A fake psychic chase with Dern and Black through The Birds country, for Family Plot fans.",
    "Barbara Harris steals every scene from Hitchcock's leads.",
]


def test_names_two_critics_share_in_their_fullest_form_most_used_first():
    names = shared_names(FAMILY_PLOT, "Family Plot")
    assert names[:2] == ["Alfred Hitchcock", "Bruce Dern"]  # "Hitchcock" (3 reviews) in its fuller form
    assert "Karen Black" in names
    assert "Internet" not in names and "Barbara Harris" not in names  # one critic's capital is not the film's
    assert not any("Birds" in n or "Family" in n for n in names)  # another film's title; this one's own


def test_a_name_that_is_also_an_ordinary_word_or_an_acronym_is_not_one():
    reviews = ["Love is all Love has, says the film, about love.", "Love again. Love wins with Love here.",
               "It plays like a TV movie, pure TV filler.", "Hardly a TV event."]
    assert shared_names(reviews, "Outlaw") == []


def test_a_name_must_be_used_by_at_least_two_critics():
    assert shared_names(FAMILY_PLOT[:1], "Family Plot") == []


def test_the_store_gives_a_facts_line_for_a_movie_without_facts(tmp_path, embeddings):
    from assistant.chat.retrieval import retrieve
    from assistant.settings import Settings
    from tests.test_store import REVIEWS, build

    plot = [Review(text, "positive" if i % 2 else "negative", movie="Family Plot", critic=f"C{i}")
            for i, text in enumerate(FAMILY_PLOT)]
    store = build(Settings(index_dir=tmp_path / "index"), embeddings, records=REVIEWS + plot)
    doc = critics_names_document(store, "family plot")
    assert doc.metadata["kind"] == "movie" and doc.metadata["movie"] == "Family Plot"
    assert doc.page_content.startswith("Its critics name Alfred Hitchcock, Bruce Dern")
    line = format_context_item(doc.metadata, doc.page_content)
    assert line.startswith("About Family Plot: Its critics name Alfred Hitchcock")
    assert critics_names_document(store, "cats") is None  # one review: nothing shared
    assert critics_names_document(store, None) is None
    found = retrieve(store, sentiment="positive", movie="Family Plot", movie_key="family plot", k=2)
    assert found.documents[0] == doc or found.documents[0].page_content == doc.page_content
    assert found.sources[0].kind == "movie" and found.sources[0].similarity is None
    assert all(d.metadata["kind"] == "review" for d in found.documents[1:])


def test_a_sentence_opening_name_counts_once_a_critic_writes_it_mid_sentence():
    rambo = ["Stallone scripts the wall-to-wall explosions too haphazardly.",
             "Always at ground zero in the chaos is Rambo, whose character is inhabited by Stallone with menace.",
             "Saturday Morning Picture Club stuff. Explosions galore."]
    assert shared_names(rambo, "Rambo III") == ["Stallone"]  # one critic opens with it, one writes it mid-sentence
    stripes = ["Mr. Murray hasn't yet reached the point of carrying a film.", "The star, Murray, coasts."]
    assert shared_names(stripes, "Stripes") == ["Murray"]  # the period of "Mr." ends no sentence
    openers_only = ["Stallone scripts the explosions.", "Stallone again. It is loud."]
    assert shared_names(openers_only, "Rambo III") == []  # never written mid-sentence: could be any opener
    quoted = ["A critic saying, 'This is war' misses it.", "This is the war film of the decade."]
    assert shared_names(quoted, "Platoon") == []  # a quoted sentence's first word is no name


def test_a_name_written_once_in_full_and_once_short_keeps_its_full_form():
    reviews = ["Williams riffs through it all.", "A showcase for Williams and little else.",
               "Only Robin Williams could sell this mess, and Producer Mark Johnson knew it."]
    for order in (reviews, reviews[::-1]):
        assert shared_names(order, "Toys") == ["Robin Williams"]
    produced = ["Only Producer Mark Johnson could sell it.", "A film for Johnson's fans.",
                "Yes, Director Alfred Joseph Hitchcock was here.", "A lark for Hitchcock fans."]
    assert shared_names(produced, "Toys") == ["Alfred Joseph Hitchcock", "Mark Johnson"]  # a job is no part of one


def test_a_name_one_critic_uses_counts_when_the_facts_know_that_person():
    from assistant.data.critics_names import KnownPeople

    known = KnownPeople(full=frozenset({"barbara harris", "bruce dern"}), surnames=frozenset({"harris", "dern"}))
    harris = ["Every scene belongs to Barbara Harris, not to Hitchcock's leads."]
    names = shared_names(FAMILY_PLOT[:4] + harris, "Family Plot", known=known)
    assert names[:2] == ["Alfred Hitchcock", "Bruce Dern"]  # the shared names still come first
    assert names[-1] == "Barbara Harris"  # one critic's, known to the facts: after them
    assert "Internet" not in names  # one critic's capital the facts do not know stays out
    assert shared_names(harris, "Family Plot", known=known) == ["Barbara Harris"]
    assert shared_names(harris, "Family Plot") == []  # without the facts: as before
    stranger = KnownPeople(full=frozenset({"barbara walters"}), surnames=frozenset({"walters"}))
    assert shared_names(harris, "Family Plot", known=stranger) == []  # someone else's first name is no one



def test_a_sentence_opening_name_counts_when_the_facts_know_that_surname():
    from assistant.data.critics_names import KnownPeople

    known = KnownPeople(full=frozenset({"claude chabrol"}), surnames=frozenset({"chabrol"}))
    ceremonie = ["Chabrol's most accomplished and popular movie in decades.",
                 "Chabrol's metier has always been tracing the cracks in the old family china.",
                 "Dire, tense, unpredictable. Satisfying."]
    assert shared_names(ceremonie, "La Ceremonie", known=known) == ["Chabrol"]  # possessive, as its first word
    assert shared_names(ceremonie, "La Ceremonie") == []  # without the facts: could be any opener
    assert shared_names(["Dire, tense. Satisfying.", "Unpredictable. Tense."], "La Ceremonie", known=known) == []

def test_known_people_come_from_the_facts_directors_and_casts_and_skip_english_surnames():
    from assistant.data.critics_names import known_people

    class Store:
        directory = "test-known-people"

        def sql(self, query, params=()):
            if "DISTINCT movie_key" in query:
                return [("persuasion",), ("heathers",)]
            assert "kind = 'movie'" in query
            return [("Roger Michell", "Amanda Root, Ciaran Hinds"), ("Unknown Director", None), ("Nick Love", "")]

    people = known_people(Store())
    assert people.films == {"persuasion", "heathers"}
    assert people.knows("Roger Michell") and people.knows("Michell") and people.knows("Ciarán Hinds")
    assert people.knows("Nick Love") and not people.knows("Love")  # "love" is an English word, not a name alone
    assert not people.knows("Unknown Director") and not people.knows("Roger")


def test_another_films_title_two_critics_compare_with_is_no_name_unless_the_facts_know_the_person():
    from assistant.data.critics_names import KnownPeople

    reviews = ["A meaner Heathers, with Rose McGowan in fine form.",
               "Not since Heathers has high school been this vicious; Rose McGowan sneers well.",
               "Hitchcock would have cut it; McGowan carries it.", "A lesser Hitchcock imitation, and McGowan is wasted."]
    known = KnownPeople(full=frozenset({"alfred hitchcock"}), surnames=frozenset({"hitchcock"}),
                        films=frozenset({"heathers", "hitchcock", "jawbreaker"}))
    assert shared_names(reviews, "Jawbreaker") == ["Rose McGowan", "Heathers", "Hitchcock"]  # without the store
    assert shared_names(reviews, "Jawbreaker", known=known) == ["Rose McGowan", "Hitchcock"]  # a person too


def test_a_surname_the_english_list_holds_but_rarely_uses_is_still_a_name():
    from assistant.data.critics_names import known_people
    from assistant.data.english import english_counts

    if english_counts() is None:
        pytest.skip("pyspellchecker is not installed")

    class Store:
        directory = "test-rare-surnames"

        def sql(self, query, params=()):
            if "DISTINCT movie_key" in query:
                return []
            return [("Martin Scorsese", "Emma Stone, Bill Murray"), ("Martin McDonagh", "Barry Keoghan")]

    people = known_people(Store())
    assert english_counts()["scorsese"] <= 1000 < english_counts()["stone"]  # what the cut reads
    assert people.knows("Scorsese") and people.knows("Murray")  # listed, yet rarely used: a surname
    assert not people.knows("Stone") and people.knows("Emma Stone")  # a common word alone names no one
    # a first name two known people share, and a surname that is no common word: a person the facts may not know
    assert people.is_person("Martin Freeman") and people.is_person("Martin Keoghan")
    assert not people.is_person("Martin Stone") and not people.is_person("Barry Freeman")  # "barry": one person's
    assert not people.is_person("Hong Kong") and not people.is_person("Upper West Side")


def test_a_new_films_one_critic_name_counts_when_it_is_written_as_a_persons():
    from assistant.data.critics_names import KnownPeople

    known = KnownPeople(full=frozenset({"martin mcdonagh", "martin scorsese"}), surnames=frozenset({"mcdonagh"}),
                        given=frozenset({"martin", "barry"}), common=frozenset({"island", "grace"}))
    banshees = ["McDonagh's best since In Bruges.", "A sad, funny island fable; McDonagh at his most humane.",
                "As ever, Barry Keoghan steals every scene he is in.", "The Irish Civil War rumbles across the water."]
    names = shared_names(banshees, "The Banshees of Inisherin", known=known)
    assert names[0] == "McDonagh" and "Barry Keoghan" in names  # shared first; one critic's person after
    assert "Irish Civil War" not in names and "In Bruges" not in names  # one critic's capitals, no person's
    assert shared_names(banshees, "The Banshees of Inisherin") == ["McDonagh"]  # without the facts: as before
