"""Kaggle "Rotten Tomatoes movies and critic reviews": the reviews file (streamed, up to 1.1M rows)
joined on rotten_tomatoes_link to the movies file in the same folder."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from assistant.data.readers.base import (
    EMPTY_TEXT,
    MISSING_MOVIE,
    UNKNOWN_LABEL,
    ReaderError,
    ReadStats,
    Record,
    emit,
    first_names,
    number,
)
from assistant.data.readers.rows import iter_table
from assistant.data.records import MovieFacts, Review
from assistant.data.text import (
    clean_text,
    normalize_sentiment,
    parse_bool,
    parse_date,
    tidy_title,
)

log = logging.getLogger(__name__)

REVIEW_COLUMNS = ("rotten_tomatoes_link", "critic_name", "top_critic", "publisher_name",
                  "review_type", "review_score", "review_date", "review_content")
MOVIE_COLUMNS = ("rotten_tomatoes_link", "movie_title")
MOVIES_FILE_NAMES = ("rotten_tomatoes_movies.csv", "rotten_tomatoes_movies.csv.gz")
CAST_LIMIT = 10


def movie_id(link: str) -> str:
    return f"kaggle:{link.strip()}"


def find_movies_file(reviews_path: Path) -> Path | None:
    for name in MOVIES_FILE_NAMES:
        candidate = reviews_path.with_name(name)
        if candidate.is_file():
            return candidate
    return None


def load_titles(movies_path: Path | None) -> dict[str, str]:
    """rotten_tomatoes_link -> display title; {} when there is no readable movies file."""
    if movies_path is None:
        return {}
    titles: dict[str, str] = {}
    try:
        for row in iter_table(movies_path, ReadStats(), MOVIE_COLUMNS):
            title = tidy_title(row["movie_title"])
            if title and row["rotten_tomatoes_link"].strip():
                titles[row["rotten_tomatoes_link"].strip()] = title
    except ReaderError as exc:
        log.warning("kaggle reviews load without titles: %s", exc)
        return {}
    return titles


def read_kaggle_reviews(path: Path, stats: ReadStats, source: str) -> Iterator[Record]:
    """Reviews, titled from the sibling movies file when present, else with movie_id only."""
    movies_path = find_movies_file(path)
    titles = load_titles(movies_path)
    if not titles:
        log.info("%s: no movies file beside it; reviews keep movie_id 'kaggle:<link>' and no title", path)

    def convert(row: dict[str, str]) -> Review | str:
        text = clean_text(row["review_content"])
        if not text:
            return EMPTY_TEXT
        link = row["rotten_tomatoes_link"].strip()
        if not link:
            return MISSING_MOVIE
        sentiment = normalize_sentiment(row["review_type"], "words")
        if sentiment is None:
            return UNKNOWN_LABEL
        return Review(
            text=text,
            sentiment=sentiment,
            movie=titles.get(link),
            movie_id=movie_id(link),
            critic=clean_text(row["critic_name"]) or None,
            publication=clean_text(row["publisher_name"]) or None,
            score=clean_text(row["review_score"]) or None,
            date=parse_date(row["review_date"]),
            top_critic=parse_bool(row["top_critic"]),
            source=source,
        )

    return emit(iter_table(path, stats, REVIEW_COLUMNS), convert, stats)


def read_kaggle_movies(path: Path, stats: ReadStats, source: str) -> Iterator[Record]:
    """One MovieFacts per titled movie row."""

    def convert(row: dict[str, str]) -> MovieFacts | str:
        title = tidy_title(row["movie_title"])
        link = row["rotten_tomatoes_link"].strip()
        if not title or not link:
            return MISSING_MOVIE
        released = parse_date(row.get("original_release_date"))
        extra = {
            key: value
            for key, value in (
                ("writer", clean_text(row.get("authors"))), ("runtime", clean_text(row.get("runtime"))),
                ("studio", clean_text(row.get("production_company"))),
                ("tomatometer_status", clean_text(row.get("tomatometer_status"))),
                ("tomatometer_count", number(row.get("tomatometer_count"))),
                ("release_date", released),
            )
            if value
        }
        return MovieFacts(
            title=title,
            movie_id=movie_id(link),
            year=released[:4] if released else None,
            synopsis=clean_text(row.get("movie_info")) or None,
            consensus=clean_text(row.get("critics_consensus")) or None,
            genre=clean_text(row.get("genres")) or None,
            director=clean_text(row.get("directors")) or None,
            cast=first_names(clean_text(row.get("actors")), CAST_LIMIT) or None,
            rating=clean_text(row.get("content_rating")) or None,
            critic_score=number(row.get("tomatometer_rating")),
            audience_score=number(row.get("audience_rating")),
            source=source,
            extra=extra,
        )

    return emit(iter_table(path, stats, MOVIE_COLUMNS), convert, stats)
