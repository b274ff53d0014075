"""Any other CSV/TSV, read through an explicit ColumnMapping (CLI: --map "text=Review,sentiment=Freshness")."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

from assistant.data.readers.base import (
    EMPTY_TEXT,
    UNKNOWN_LABEL,
    ReaderError,
    ReadStats,
    Record,
    emit,
)
from assistant.data.readers.tabular import iter_table, read_header
from assistant.data.records import Review
from assistant.data.text import (
    LABEL_SCHEMES,
    LabelScheme,
    clean_text,
    normalize_sentiment,
    parse_bool,
    parse_date,
    tidy_title,
)


@dataclass(frozen=True)
class ColumnMapping:
    """Which column holds what; only ``text`` is required. ``labels`` names the sentiment
    scheme ("words": fresh/rotten/pos/neg, "freshness": 0/2, "binary": 1/0) so 0 means one thing."""

    text: str
    sentiment: str | None = None
    movie: str | None = None
    movie_id: str | None = None
    critic: str | None = None
    publication: str | None = None
    score: str | None = None
    date: str | None = None
    top_critic: str | None = None
    labels: LabelScheme = "words"

    def __post_init__(self) -> None:
        if not self.text:
            raise ValueError("column mapping needs text=<column>")
        if self.labels not in LABEL_SCHEMES:
            raise ValueError(f"labels={self.labels!r} is not one of {', '.join(LABEL_SCHEMES)}")

    @classmethod
    def parse(cls, spec: str) -> ColumnMapping:
        """From "text=Review,sentiment=Freshness,labels=freshness"; ValueError on a bad spec."""
        known = {f.name for f in fields(cls)}
        values: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = (s.strip() for s in part.partition("="))
            if not sep or not key or not value:
                raise ValueError(f"bad mapping item {part!r}: expected field=column")
            if key not in known:
                raise ValueError(f"unknown mapping field {key!r}: use {', '.join(sorted(known))}")
            values[key] = value
        if "text" not in values:
            raise ValueError("column mapping needs text=<column>")
        return cls(**values)  # type: ignore[arg-type]

    def columns(self) -> dict[str, str]:
        """Record field -> source column, for the fields that are mapped."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "labels" and getattr(self, f.name)}


def _resolve(path: Path, mapping: ColumnMapping) -> dict[str, str]:
    """Mapped columns matched to the header exactly, else ignoring case."""
    header = read_header(path)
    by_fold = {h.casefold(): h for h in header}
    resolved = {}
    for name, column in mapping.columns().items():
        actual = column if column in header else by_fold.get(column.casefold())
        if actual is None:
            raise ReaderError(path, f"mapped column {column!r} ({name}) not in header: {', '.join(header)}")
        resolved[name] = actual
    return resolved


def read_mapped(path: Path, stats: ReadStats, source: str, mapping: ColumnMapping | None) -> Iterator[Record]:
    """Reviews from a CSV through ``mapping``; without a sentiment column they are "unknown"."""
    if mapping is None:
        raise ReaderError(path, 'format "csv" needs a column mapping, e.g. text=Review,sentiment=Freshness')
    cols = _resolve(path, mapping)

    def get(row: dict[str, str], name: str) -> str:
        return row[cols[name]] if name in cols else ""

    def convert(row: dict[str, str]) -> Review | str:
        text = clean_text(get(row, "text"))
        if not text:
            return EMPTY_TEXT
        sentiment = normalize_sentiment(get(row, "sentiment"), mapping.labels) if "sentiment" in cols else "unknown"
        if sentiment is None:
            return UNKNOWN_LABEL
        raw_id = clean_text(get(row, "movie_id"))
        return Review(
            text=text,
            sentiment=sentiment,
            movie=tidy_title(get(row, "movie")) or None,
            movie_id=f"csv:{raw_id}" if raw_id else None,
            critic=clean_text(get(row, "critic")) or None,
            publication=clean_text(get(row, "publication")) or None,
            score=clean_text(get(row, "score")) or None,
            date=parse_date(get(row, "date")),
            top_critic=parse_bool(get(row, "top_critic")),
            source=source,
        )

    return emit(iter_table(path, stats, cols.values()), convert, stats)
