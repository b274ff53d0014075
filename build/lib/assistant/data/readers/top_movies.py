"""top-movies/rotten_tomatoes_top_movies.csv: movie facts from genre top lists; no reviews."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from assistant.data.readers.base import (
    DUPLICATE,
    MISSING_MOVIE,
    ReadStats,
    Record,
    emit,
    first_names,
    number,
)
from assistant.data.readers.rows import iter_table
from assistant.data.records import MovieFacts, movie_key
from assistant.data.text import clean_text, parse_date, tidy_title

COLUMNS = ("title", "year", "synopsis", "critic_score", "people_score", "consensus")
CAST_LIMIT = 10
_RATING = re.compile(r"^\s*([A-Z0-9-]+)\s*(?:\((.*)\))?\s*$")


def read_top_movies(path: Path, stats: ReadStats, source: str) -> Iterator[Record]:
    """One MovieFacts per title+year in the file (a movie can sit in several genre lists)."""
    seen: set[tuple[str, str]] = set()

    def convert(row: dict[str, str]) -> MovieFacts | str:
        title = tidy_title(row["title"])
        key = movie_key(title)
        if not key:
            return MISSING_MOVIE
        year = clean_text(row["year"])[:4]
        if (key, year) in seen:
            return DUPLICATE
        seen.add((key, year))
        rating, rating_reasons = _split_rating(clean_text(row.get("rating")))
        extra = {
            k: v
            for k, v in (
                ("rating_reasons", rating_reasons), ("list", clean_text(row.get("type"))),
                ("language", clean_text(row.get("original_language"))),
                ("writer", clean_text(row.get("writer"))), ("producer", clean_text(row.get("producer"))),
                ("release_date", parse_date(row.get("release_date_(theaters)"))),
                ("runtime", clean_text(row.get("runtime"))), ("studio", clean_text(row.get("production_co"))),
                ("box_office", clean_text(row.get("box_office_(gross_usa)"))),
                ("link", clean_text(row.get("link"))),
            )
            if v
        }
        return MovieFacts(
            title=title,
            year=year or None,
            synopsis=clean_text(row["synopsis"]) or None,
            consensus=clean_text(row["consensus"]) or None,
            genre=clean_text(row.get("genre")) or None,
            director=clean_text(row.get("director")) or None,
            cast=first_names(clean_text(row.get("crew")), CAST_LIMIT) or None,
            rating=rating,
            critic_score=number(row["critic_score"]),
            audience_score=number(row["people_score"]),
            source=source,
            extra=extra,
        )

    return emit(iter_table(path, stats, COLUMNS), convert, stats)


def _split_rating(value: str) -> tuple[str | None, str | None]:
    """'PG-13 (Violence|Language)' -> ('PG-13', 'Violence, Language')."""
    if not value:
        return None, None
    m = _RATING.match(value)
    if not m:
        return value, None
    return m[1], (m[2].replace("|", ", ") if m[2] else None)
