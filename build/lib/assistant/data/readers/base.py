"""What every reader shares: its error, its counters and the row-to-record driver."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, Union

from assistant.data.records import MovieFacts, Review

Record = Union[Review, MovieFacts]
T = TypeVar("T")

# Reasons a row is skipped; readers use these strings so counts add up across files.
EMPTY_TEXT = "empty text"
UNKNOWN_LABEL = "unknown label"
MALFORMED = "malformed row"
BAD_ENCODING = "bad encoding"
CP1252_NOTE = "decoded as cp1252"  # a note, not a skip: the row was read
MISSING_MOVIE = "missing movie"
DUPLICATE = "duplicate"


class ReaderError(Exception):
    """A file cannot be read at all: missing, unknown format, empty or unreadable. One-line message."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{path}: {self.problem}")


@dataclass
class ReadStats:
    """Counts for one read: rows == kept + sum(skipped.values()).

    ``notes`` counts things done to rows that were still read (e.g. "decoded as cp1252");
    it never takes part in that sum. ``limit`` stops the read after that many rows (a dry run).
    """

    rows: int = 0
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    limit: int | None = None

    @property
    def full(self) -> bool:
        """The read has reached ``limit``."""
        return self.limit is not None and self.rows >= self.limit

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def line_read(self, problem: str | None, fallback: bool) -> bool:
        """Count a line as read (noting a cp1252 fallback); False, with the skip counted, when it had a problem."""
        self.rows += 1
        if fallback:
            self.notes[CP1252_NOTE] += 1
        if problem:
            self.skip(problem)
            return False
        return True

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def merge(self, other: ReadStats) -> None:
        self.rows += other.rows
        self.kept += other.kept
        self.skipped.update(other.skipped)
        self.notes.update(other.notes)

    def summary(self) -> str:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items())) or "none"
        return f"{self.rows} rows, {self.kept} kept, skipped ({reasons})"


def emit(rows: Iterable[T], convert: Callable[[T], Record | str], stats: ReadStats) -> Iterator[Record]:
    """Turn rows into records; ``convert`` returns a record or a skip reason (rows are counted upstream).
    Stops once ``stats.limit`` rows are read."""
    for row in rows:
        out = convert(row)
        if isinstance(out, str):
            stats.skip(out)
        else:
            stats.kept += 1
            yield out
        if stats.full:
            return


def first_names(value: str, limit: int = 10) -> str:
    """The first ``limit`` names of a comma- or pipe-separated list, joined with ", "."""
    names = [n.strip() for n in value.replace("|", ",").split(",") if n.strip()]
    return ", ".join(names[:limit])


def number(value: str | None) -> str | None:
    """'49.0' -> '49', '' -> None: scores as short strings."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        as_float = float(text.rstrip("%"))
    except ValueError:
        return text
    return str(int(as_float)) if as_float.is_integer() else str(as_float)


def source_label(path: Path) -> str:
    """The file relative to the configured data dir when it lies there ("critics/critics_2013.csv"),
    else just its name."""
    from assistant.settings import (
        get_settings,  # late: settings are only needed for this label
    )

    try:
        return path.resolve().relative_to(get_settings().data_dir.resolve()).as_posix()
    except (ValueError, OSError):
        return path.name
