"""Text helpers: cleaning, detokenizing, labels, dates, booleans, titles."""
from __future__ import annotations

import pytest

from assistant.data.records import movie_key
from assistant.data.text import (
    clean_text,
    detokenize,
    normalize_sentiment,
    parse_bool,
    parse_date,
    tidy_title,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("it is n't funny . ", "It isn't funny."),
        ("it does n't work , and it ca n't . ", "It doesn't work, and it can't."),
        ("wo n't stop", "Won't stop"),
        ("the film 's star and they 're great", "The film's star and they're great"),
        ("the 21st century's new \" conan \" and more", 'The 21st century\'s new "conan" and more'),
        ("a film -lrb- sort of -rrb- about nothing", "A film (sort of) about nothing"),
        ("a film ( sort of ) about nothing", "A film (sort of) about nothing"),
        ("it's loud . . . and dull . ", "It's loud... and dull."),
        ("funny ; sad : odd ! right ? yes", "Funny; sad: odd! Right? Yes"),
        ("first sentence . second one . ", "First sentence. Second one."),
        ("i think i'm right", "I think I'm right"),
        ("'the ring . ' is scary", "'The ring.' is scary"),
        ("`hey arnold ! ' has wit", "'Hey arnold!' has wit"),
        (" . . . plays like a trailer", "... Plays like a trailer"),
        ("already clean.", "Already clean."),
        ("the l . a . scene with ms . mirren . wow", "The l. a. scene with ms. mirren. Wow"),
        ("", ""),
    ],
)
def test_detokenize(raw: str, expected: str) -> None:
    assert detokenize(raw) == expected


@pytest.mark.parametrize(
    ("value", "scheme", "expected"),
    [
        ("fresh", "words", "positive"),
        ("Fresh", "words", "positive"),
        (" ROTTEN ", "words", "negative"),
        ("Rotten", "words", "negative"),
        ("pos", "words", "positive"),
        ("neg", "words", "negative"),
        ("positive", "words", "positive"),
        ("none", "words", None),
        ("", "words", None),
        (None, "words", None),
        ("0", "words", None),  # digits mean nothing without a scheme that says what they mean
        ("0", "freshness", "negative"),
        ("2", "freshness", "positive"),
        (2, "freshness", "positive"),
        ("1", "freshness", None),  # the freshness file's stray 1s
        ("fresh", "freshness", None),
        ("1", "binary", "positive"),
        ("0", "binary", "negative"),
        (1, "binary", "positive"),
        (0, "binary", "negative"),
        (True, "binary", "positive"),
        ("False", "binary", "negative"),
        ("2", "binary", None),
        (-1, "binary", None),
    ],
)
def test_normalize_sentiment(value: object, scheme: str, expected: str | None) -> None:
    assert normalize_sentiment(value, scheme) == expected  # type: ignore[arg-type]


def test_normalize_sentiment_rejects_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="label scheme"):
        normalize_sentiment("1", "stars")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Itâ€™s great", "It's great"),
        ("cafÃ© society", "café society"),
        ("Law &amp; Order &#8212; again", "Law & Order — again"),
        ("Tom &notably stays", "Tom &notably stays"),
        ("  lots \n of\t space\u2028here\xa0too ", "lots of space here too"),
        ('"Great fun."', "Great fun."),
        ("\u201cGreat fun.\u201d", "Great fun."),
        ('"Conan" meets "Red Sonja"', '"Conan" meets "Red Sonja"'),
        (" ", ""),
        ("none", ""),
        ("NaN", ""),
        (None, ""),
        ("nul\x00byte", "nulbyte"),
    ],
)
def test_clean_text(raw: str | None, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2011-09-07", "2011-09-07"),
        ("2011-09-07 00:00:00", "2011-09-07"),
        ("November 10, 2018", "2018-11-10"),
        ("Oct 9, 1971", "1971-10-09"),
        ("Sept. 5, 2001", "2001-09-05"),
        ("Feb 16, 2018 wide", "2018-02-16"),
        ("9 Oct 1971", "1971-10-09"),
        ("10/9/1971", "1971-10-09"),
        ("1800-01-01", None),
        ("2018-02-30", None),
        ("2018", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_date(raw: str | None, expected: str | None) -> None:
    assert parse_date(raw) == expected


def test_parse_date_extra_placeholders() -> None:
    assert parse_date("2000-01-01") == "2000-01-01"
    assert parse_date("2000-01-01", frozenset({"2000-01-01"})) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("True", True), ("false", False), ("1", True), ("0", False), ("yes", True), (True, True), (0, False),
     ("", None), (None, None), ("maybe", None)],
)
def test_parse_bool(raw: object, expected: bool | None) -> None:
    assert parse_bool(raw) is expected


def test_tidy_title_capitalizes_lower_case_only() -> None:
    assert tidy_title("toy story") == "Toy Story"
    assert tidy_title("it's a wonderful life") == "It's A Wonderful Life"
    assert tidy_title("Toy story") == "Toy story"
    assert tidy_title(" mission: impossible -- fallout ") == "Mission: Impossible -- Fallout"


@pytest.mark.parametrize("variant", ["toy story", "Toy Story", "TOY STORY!", " Toy  Story ", "The Toy Story",
                                     "toy-story"])
def test_movie_key_variants_resolve_equal(variant: str) -> None:
    assert movie_key(variant) == movie_key("Toy Story") == movie_key(tidy_title("toy story"))
