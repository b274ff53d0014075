"""Flatiron gzip TSVs: rt.reviews.tsv.gz (cp1252) and rt.movie_info.tsv.gz (UTF-8); movie ids, no titles."""
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
    first_names,
)
from assistant.data.readers.rows import iter_table
from assistant.data.records import MovieFacts, Review
from assistant.data.text import clean_text, normalize_sentiment, parse_bool, parse_date

REVIEW_COLUMNS = ("id", "review", "rating", "fresh", "critic", "top_critic", "publisher", "date")
MOVIE_COLUMNS = ("id", "synopsis", "rating", "genre", "director")


def movie_id(raw: str) -> str:
    return f"flatiron:{raw.strip()}"


def read_flatiron_reviews(path: Path, stats: ReadStats, source: str) -> Iterator[Record]:
    """Reviews keyed by movie_id "flatiron:<id>" (the file has no titles)."""

    def convert(row: dict[str, str]) -> Review | str:
        text = clean_text(row["review"])
        if not text:
            return EMPTY_TEXT
        if not row["id"].strip():
            return MISSING_MOVIE
        sentiment = normalize_sentiment(row["fresh"], "words")
        if sentiment is None:
            return UNKNOWN_LABEL
        return Review(
            text=text,
            sentiment=sentiment,
            movie_id=movie_id(row["id"]),
            critic=clean_text(row["critic"]) or None,
            publication=clean_text(row["publisher"]) or None,
            score=clean_text(row["rating"]) or None,
            date=parse_date(row["date"]),
            top_critic=parse_bool(row["top_critic"]),
            source=source,
        )

    # The README declares this file cp1252, so a non-UTF-8 line is always read as cp1252.
    return emit(iter_table(path, stats, REVIEW_COLUMNS, cp1252=True), convert, stats)


def read_flatiron_movies(path: Path, stats: ReadStats, source: str) -> Iterator[Record]:
    """Untitled MovieFacts keyed "flatiron:<id>"; rows with nothing to say are skipped as empty."""

    def convert(row: dict[str, str]) -> MovieFacts | str:
        if not row["id"].strip():
            return MISSING_MOVIE
        synopsis = clean_text(row["synopsis"])
        genre = first_names(clean_text(row["genre"]), 20)
        director = first_names(clean_text(row["director"]), 20)
        if not (synopsis or genre or director):
            return EMPTY_TEXT
        released = parse_date(row.get("theater_date"))
        extra = {
            key: value
            for key, value in (
                ("writer", first_names(clean_text(row.get("writer")), 20)),
                ("release_date", released), ("dvd_date", parse_date(row.get("dvd_date"))),
                ("runtime", clean_text(row.get("runtime"))), ("studio", clean_text(row.get("studio"))),
                ("box_office", clean_text(f"{row.get('currency', '')}{row.get('box_office', '')}")),
            )
            if value
        }
        return MovieFacts(
            title=None,
            movie_id=movie_id(row["id"]),
            year=released[:4] if released else None,
            synopsis=synopsis or None,
            genre=genre or None,
            director=director or None,
            rating=clean_text(row["rating"]) or None,
            source=source,
            extra=extra,
        )

    return emit(iter_table(path, stats, MOVIE_COLUMNS), convert, stats)
