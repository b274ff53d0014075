"""Any other table, read through a ColumnMapping: inferred (readers.infer) or given (CLI: --map "text=Review,...")."""
from __future__ import annotations

import re
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
from assistant.data.readers.labels import MAPPING_SCHEMES, SCORES, to_sentiment
from assistant.data.readers.rows import iter_table, read_header
from assistant.data.records import Review
from assistant.data.text import clean_text, parse_bool, parse_date, tidy_title

NO_SCORE = "no readable score: kept as unknown"
# Items of a mapping spec: commas split them, except inside double quotes ('text="Review, full"').
_ITEMS = re.compile(r'(?:[^,"]|"(?:[^"]|"")*")+')  # a note, not a skip: the review itself is fine


@dataclass(frozen=True)
class ColumnMapping:
    """Which column holds what; only ``text`` is required. ``labels`` names the sentiment scheme ("words":
    fresh/rotten/pos/neg, "freshness": 0/2, "binary": 1/0, "scores": 3.5/5, B+ ... by a cut-off, see
    readers.labels) so 0 means one thing. With "scores" the sentiment column's text is also kept as the score."""

    text: str
    sentiment: str | None = None
    movie: str | None = None
    movie_id: str | None = None
    critic: str | None = None
    publication: str | None = None
    score: str | None = None
    date: str | None = None
    top_critic: str | None = None
    labels: str = "words"

    def __post_init__(self) -> None:
        if not self.text:
            raise ValueError("column mapping needs text=<column>")
        if self.labels not in MAPPING_SCHEMES:
            raise ValueError(f"labels={self.labels!r} is not one of {', '.join(MAPPING_SCHEMES)}")

    @classmethod
    def parse(cls, spec: str) -> ColumnMapping:
        """From 'text=Review,sentiment=Freshness,labels=freshness'; a column name holding a comma is quoted
        ('text="Review, full"'), as to_spec writes it. ValueError on a bad spec."""
        known = {f.name for f in fields(cls)}
        values: dict[str, str] = {}
        if spec.count('"') % 2:
            raise ValueError(f"bad mapping {spec!r}: unbalanced double quote")
        for part in filter(None, (p.strip() for p in _ITEMS.findall(spec))):
            key, sep, value = (s.strip() for s in part.partition("="))
            if value[:1] == '"' and value[-1:] == '"' and len(value) > 1:
                value = value[1:-1].replace('""', '"')
            if not sep or not key or not value:
                raise ValueError(f"bad mapping item {part!r}: expected field=column")
            if key not in known:
                raise ValueError(f"unknown mapping field {key!r}: use {', '.join(sorted(known))}")
            values[key] = value
        if "text" not in values:
            raise ValueError("column mapping needs text=<column>")
        return cls(**values)  # type: ignore[arg-type]

    def to_spec(self) -> str:
        """The mapping as `--map` takes it, fields in a fixed order, labels only when a sentiment is read."""
        items = [f"{name}={_quoted(column)}" for name, column in self.columns().items()]
        if self.sentiment:
            items.append(f"labels={self.labels}")
        return ",".join(items)

    def columns(self) -> dict[str, str]:
        """Record field -> source column, for the fields that are mapped."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "labels" and getattr(self, f.name)}


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"' if any(c in column for c in ',="') or column != column.strip() \
        else column


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


def read_mapped(path: Path, stats: ReadStats, source: str, mapping: ColumnMapping) -> Iterator[Record]:
    """Reviews from a table through ``mapping``. Without a sentiment column they are "unknown" (retrieval by
    movie still finds them; the sentiment filter and training skip them); an unreadable label skips the row,
    except under "scores", where a review without a readable score is kept as "unknown"."""
    cols = _resolve(path, mapping)
    scores = mapping.labels == SCORES

    def get(row: dict[str, str], name: str) -> str:
        return row[cols[name]] if name in cols else ""

    def convert(row: dict[str, str]) -> Review | str:
        text = clean_text(get(row, "text"))
        if not text:
            return EMPTY_TEXT
        sentiment = to_sentiment(get(row, "sentiment"), mapping.labels) if "sentiment" in cols else "unknown"
        if sentiment is None and scores:
            stats.notes[NO_SCORE] += 1
            sentiment = "unknown"
        elif sentiment is None:
            return UNKNOWN_LABEL
        raw_id = clean_text(get(row, "movie_id"))
        return Review(
            text=text,
            sentiment=sentiment,
            movie=tidy_title(get(row, "movie")) or None,
            movie_id=f"csv:{raw_id}" if raw_id else None,
            critic=clean_text(get(row, "critic")) or None,
            publication=clean_text(get(row, "publication")) or None,
            score=clean_text(get(row, "score") or (get(row, "sentiment") if scores else "")) or None,
            date=parse_date(get(row, "date")),
            top_critic=parse_bool(get(row, "top_critic")),
            source=source,
        )

    return emit(iter_table(path, stats, cols.values()), convert, stats)
