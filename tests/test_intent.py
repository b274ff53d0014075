"""Request parsing: a table of messages (sentiment, title, topic, follow-ups, bad input) -> what they ask."""
from __future__ import annotations

import pytest

from assistant.chat.intent import (
    ParsedRequest,
    clean_message,
    detect_sentiment,
    parse,
    safe_phrase,
)
from assistant.data.titles import TitleIndex, choose_titles

TITLES = TitleIndex({
    "toy story": ("Toy Story", 8), "toy story 2": ("Toy Story 2", 3), "matrix": ("The Matrix", 9),
    "gigli": ("Gigli", 8), "titanic": ("Titanic", 6), "alien": ("Alien", 5), "aliens": ("Aliens", 4),
    "jaws": ("Jaws", 5), "it": ("It", 4), "up": ("Up", 4), "horror": ("Horror", 2), "fresh": ("Fresh", 2),
    "jurassic park": ("Jurassic Park", 6), "park": ("Park", 1), "ring": ("The Ring", 3), "m": ("M", 2),
    "dark knight": ("The Dark Knight", 9), "bats": ("Bats", 1), "good will hunting":
    ("Good Will Hunting", 3), "family plot": ("Family Plot", 4),
})


def prev(kind="review", sentiment="positive", movie="Toy Story", key="toy story", **kw) -> ParsedRequest:
    return ParsedRequest(kind=kind, sentiment=sentiment, movie=movie, movie_key=key, fuzzy_score=100.0, **kw)


CASES = [
    # (message, previous, expected fields)
    ("Write a positive review of Toy Story", None, dict(kind="review", sentiment="positive", movie_key="toy story")),
    ("Write a NEGATIVE review of the matrix!!", None, dict(kind="review", sentiment="negative", movie="The Matrix")),
    ("give me a scathing one for Cats", None, dict(kind="review", sentiment="negative", movie="Cats", movie_key=None)),
    ("a rave about a horror movie", None, dict(kind="review", sentiment="positive", movie=None,
                                               topic="a horror movie")),
    ("thumbs down on Titanic", None, dict(kind="review", sentiment="negative", movie_key="titanic")),
    ("thumbs up for toy story 2", None, dict(sentiment="positive", movie_key="toy story 2")),
    ("positive review of toy stroy", None, dict(sentiment="positive", movie_key="toy story")),
    ("a glowing write-up of Toystory", None, dict(sentiment="positive", movie_key="toy story")),
    ("trash Gigli", None, dict(kind="review", sentiment="negative", movie_key="gigli")),
    ("I want a good negative review of Gigli", None, dict(sentiment="negative", movie_key="gigli")),
    ("a positive review of Good Will Hunting", None, dict(sentiment="positive", movie_key="good will hunting")),
    ('a positive review of "Up"', None, dict(sentiment="positive", movie_key="up")),
    ('what do critics think of "Horror"?', None, dict(kind="opinion", movie_key="horror")),
    # a title of ordinary words is a title when written as one, a topic when written as a phrase
    ("Write a negative review of Family Plot", None, dict(movie_key="family plot", topic=None)),
    ("write a negative review of a family plot", None, dict(movie_key=None, topic="a family plot")),
    ("write a negative review of toy story focusing on the animation", None,
     dict(sentiment="negative", movie_key="toy story", topic="the animation")),
    ("Écris une critique positive de Toy Story", None, dict(kind="review", sentiment="positive",
                                                            movie_key="toy story")),
    ("Write a review of Gigli", None, dict(kind="review", sentiment=None, movie_key="gigli")),
    ("Toy Story", None, dict(kind="review", sentiment=None, movie_key="toy story")),
    ("lord of the rings", None, dict(kind="help", understood=False, movie=None)),
    ("jurasic park thumbs up", None, dict(sentiment="positive", movie_key="jurassic park")),
    ("a kind review of the dark knight", None, dict(sentiment="positive", movie_key="dark knight")),
    ("give me a savage review of a comedy", None, dict(sentiment="negative", movie=None, topic="a comedy")),
    ("what do critics think of Aliens?", None, dict(kind="opinion", movie_key="aliens")),
    ("what do critics think of Alienz?", None, dict(kind="opinion", movie="Alienz", movie_key=None)),
    # negation
    ("not a positive one", prev(), dict(kind="review", sentiment="negative", movie_key="toy story")),
    ("don't make it positive", prev(), dict(sentiment="negative", movie_key="toy story")),
    ("a negative one instead of a positive one", prev(), dict(sentiment="negative")),
    # follow-ups
    ("now a negative one", prev(), dict(kind="review", sentiment="negative", movie_key="toy story",
                                        followup="sentiment")),
    ("another", prev(sentiment="negative"), dict(kind="review", sentiment="negative", movie_key="toy story",
                                                 followup="another")),
    ("one more", prev(sentiment="negative"), dict(sentiment="negative", followup="another")),
    ("same movie but harsher", prev(), dict(kind="review", sentiment="negative", movie_key="toy story",
                                            tone="harsher")),
    ("a kinder one", prev(sentiment="negative"), dict(sentiment="positive", movie_key="toy story", tone="kinder")),
    ("the opposite", prev(), dict(sentiment="negative", movie_key="toy story", followup="flip")),
    ("what about Jaws?", prev(), dict(kind="review", sentiment="positive", movie_key="jaws", followup="movie")),
    ("and Gigli?", prev(kind="opinion", sentiment=None), dict(kind="opinion", movie_key="gigli")),
    ("what about Gigli?", prev(sentiment_from="data"), dict(kind="review", sentiment=None, movie_key="gigli")),
    ("what about Titanic?", prev(kind="opinion", sentiment=None), dict(kind="opinion", movie_key="titanic")),
    ("make it positive", prev(sentiment="negative"), dict(sentiment="positive", movie_key="toy story")),
    ("a positive review of a random movie", prev(), dict(sentiment="positive", movie=None)),
    ("is it any good?", prev(), dict(kind="opinion", movie_key="toy story")),
    ("why?", prev(), dict(kind="why")),
    ("where did that come from?", prev(), dict(kind="why")),
    # critics' opinion
    ("What do critics think of Alien?", None, dict(kind="opinion", movie_key="alien", sentiment=None)),
    ("is Titanic fresh?", None, dict(kind="opinion", movie_key="titanic")),
    ("Why is Gigli so bad?", None, dict(kind="opinion", movie_key="gigli")),
    ("what's the critics consensus on the matrix", None, dict(kind="opinion", movie_key="matrix")),
    ("what do critics think of Cats?", None, dict(kind="opinion", movie="Cats", movie_key=None)),
    # help and small talk
    ("hi", None, dict(kind="smalltalk")),
    ("thanks!", prev(), dict(kind="smalltalk")),
    ("what can you do?", None, dict(kind="help")),
    ("help", None, dict(kind="help")),
    ("?", None, dict(kind="help")),
    # bad input
    ("", None, dict(kind="empty", understood=True)),
    ("   \n\t ", None, dict(kind="empty", understood=True)),
    ("\x00\x01\x02\ufffd", None, dict(kind="empty", understood=False)),
    ("<b></b>**__**", None, dict(kind="empty", understood=False)),
    ("<script>alert('x')</script>Write a **negative** review of [Gigli](http://evil.example)", None,
     dict(kind="review", sentiment="negative", movie_key="gigli")),
    ("asdf qwerty", None, dict(kind="help", understood=False)),
    ("same movie but harsher", None, dict(kind="help", understood=False, suggestions=[])),
]


@pytest.mark.parametrize("message,previous,expected", CASES, ids=[c[0][:40] or "blank" for c in CASES])
def test_parse_table(message, previous, expected):
    parsed = parse(message, TITLES, previous)
    got = {k: getattr(parsed, k) for k in expected}
    assert got == expected, parsed


def test_fuzzy_match_is_scored_and_suggestions_offered_for_unknown_titles():
    typo = parse("positive review of toy stroy", TITLES)
    assert typo.movie == "Toy Story" and 85 <= typo.fuzzy_score < 100 and typo.movie_query == "toy stroy"
    assert parse("positive review of Toy Story", TITLES).fuzzy_score == 100
    unknown = parse("what do critics think of Cats?", TITLES)
    assert unknown.movie_key is None and "Bats" in unknown.suggestions


def test_common_word_titles_are_not_spotted_in_ordinary_sentences():
    assert parse("write it up as a positive review please", TITLES).movie is None
    assert parse("Write a positive review of Toy Story", TITLES).movie == "Toy Story"


def test_huge_message_is_cut_and_still_understood():
    message = "write a positive review of toy story " + "blah " * 20_000
    parsed = parse(message, TITLES, max_chars=2000)
    assert parsed.truncated and len(parsed.text) <= 2000 and parsed.original_chars == len(message)
    assert (parsed.kind, parsed.sentiment, parsed.movie_key) == ("review", "positive", "toy story")
    assert parsed.topic is None or len(parsed.topic.split()) <= 12


def test_bytes_and_binary_junk_never_raise():
    assert parse(b"\xff\xfe\x00write a negative review of gigli", TITLES).sentiment == "negative"
    for junk in (bytes(range(256)), "\udcff" * 10, "\x1b[31m" * 50, None):
        parse(junk, TITLES)


@pytest.mark.parametrize("text,sentiment", [
    ("not bad at all", "positive"), ("anything but positive", "negative"), ("no, negative", "negative"),
    ("a rave, not a pan", "positive"), ("critical acclaim", None), ("positive and negative", "negative"),
    ("so bad it's good", "positive"), ("less harsh", "positive"),
])
def test_sentiment_words_with_negation(text, sentiment):
    assert detect_sentiment(text)[0] == sentiment


def test_cleaning_strips_markup_and_echoes_only_plain_words():
    text, original, cut = clean_message("<img src=x onerror=alert(1)>Hello &amp; <i>bye</i> `rm -rf` # done")
    assert "<" not in text and "onerror" not in text and "&amp;" not in text and original > len(text) and not cut
    assert safe_phrase("<b>Cats</b> [link](x) {{7*7}}") == "b Cats b link x 7 7"
    assert safe_phrase("one two three four five six seven eight nine ten eleven twelve thirteen").count(" ") == 11


def test_titles_prefer_movie_records_and_cased_spellings():
    rows = [("toy story", "toy story", "review", 5), ("toy story", "Toy Story", "review", 2),
            ("matrix", "the matrix", "review", 4), ("matrix", "The Matrix", "movie", 1),
            ("flatiron:1", None, "review", 7)]
    chosen = choose_titles(rows)
    assert chosen == {"toy story": ("Toy Story", 7), "matrix": ("The Matrix", 4)}
