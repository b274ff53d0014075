"""CS109 critics CSVs: critic,fresh,imdb,publication,quote,review_date,rtid,title."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from assistant.data.readers.base import (
    EMPTY_TEXT,
    MISSING_MOVIE,
    UNKNOWN_LABEL,
    ReadStats,
    Record,
    emit,
)
from assistant.data.readers.rows import iter_table
from assistant.data.records import Review
from assistant.data.text import clean_text, normalize_sentiment, parse_date, tidy_title

COLUMNS = ("critic", "fresh", "publication", "quote", "review_date", "title")
# The Rotten Tomatoes API filled unknown dates with these; 2000-01-01 alone is 40% of the 2013 pull.
PLACEHOLDER_DATES = frozenset({"1800-01-01", "2000-01-01"})


def read_critics(path: Path, stats: ReadStats, source: str) -> Iterator[Record]:
    """Reviews from a CS109 critics file.

    fresh="none" rows with a real quote are kept as sentiment "unknown": the quote is still a
    critic's words about a titled movie, good for retrieval, and training code filters on the label.
    """

    def convert(row: dict[str, str]) -> Review | str:
        text = clean_text(row["quote"])
        if not text:
            return EMPTY_TEXT
        title = tidy_title(row["title"])
        if not title:
            return MISSING_MOVIE
        label = row["fresh"].strip().lower()
        sentiment = normalize_sentiment(label, "words") or ("unknown" if label == "none" else None)
        if sentiment is None:
            return UNKNOWN_LABEL
        imdb = row.get("imdb", "").strip()
        return Review(
            text=text,
            sentiment=sentiment,
            movie=title,
            movie_id=f"imdb:tt{int(imdb):07d}" if imdb.isdigit() else None,
            critic=clean_text(row["critic"]) or None,
            publication=clean_text(row["publication"]) or None,
            date=parse_date(row["review_date"], PLACEHOLDER_DATES),
            source=source,
        )

    return emit(iter_table(path, stats, COLUMNS), convert, stats)
