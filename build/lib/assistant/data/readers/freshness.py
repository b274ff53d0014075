"""freshness/rotten_tomatoes_reviews.csv: Freshness,Review with 0 = rotten, 2 = fresh; no titles."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from assistant.data.readers.base import (
    EMPTY_TEXT,
    UNKNOWN_LABEL,
    ReadStats,
    Record,
    emit,
)
from assistant.data.readers.rows import iter_table
from assistant.data.records import Review
from assistant.data.text import clean_text, normalize_sentiment

COLUMNS = ("Freshness", "Review")


def read_freshness(path: Path, stats: ReadStats, source: str) -> Iterator[Record]:
    """Untitled labelled snippets; the stray 1s mean neither label and are skipped."""

    def convert(row: dict[str, str]) -> Review | str:
        text = clean_text(row["Review"])
        if not text:
            return EMPTY_TEXT
        sentiment = normalize_sentiment(row["Freshness"], "freshness")
        if sentiment is None:
            return UNKNOWN_LABEL
        return Review(text=text, sentiment=sentiment, source=source)

    return emit(iter_table(path, stats, COLUMNS), convert, stats)
