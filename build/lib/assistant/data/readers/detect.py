"""Which reader a file needs (by header, then by name) and which files a set of paths holds."""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

import assistant.data.readers.critics as critics
import assistant.data.readers.flatiron as flatiron
import assistant.data.readers.freshness as freshness
import assistant.data.readers.kaggle as kaggle
import assistant.data.readers.top_movies as top_movies
from assistant.data.readers.base import ReaderError
from assistant.data.readers.infer import infer_file
from assistant.data.readers.rows import TABLE_SUFFIXES, read_header
from assistant.data.readers.tabular import check_readable

log = logging.getLogger(__name__)

# "csv" is any other table (CSV, TSV, JSON Lines or Parquet): its columns are inferred or given by a mapping.
FORMATS = ("critics", "kaggle_reviews", "kaggle_movies", "flatiron_reviews", "flatiron_movies",
           "polarity", "freshness", "top_movies", "csv")
POLARITY_SUFFIXES = (".pos", ".neg")

# Most specific first: the columns each reader needs, exactly as it reads them.
_BY_HEADER: tuple[tuple[str, frozenset[str]], ...] = (
    ("kaggle_reviews", frozenset(kaggle.REVIEW_COLUMNS)),
    ("kaggle_movies", frozenset(kaggle.MOVIE_COLUMNS)),
    ("critics", frozenset(critics.COLUMNS)),
    ("flatiron_reviews", frozenset(flatiron.REVIEW_COLUMNS)),
    ("top_movies", frozenset(top_movies.COLUMNS)),
    ("flatiron_movies", frozenset(flatiron.MOVIE_COLUMNS)),
    ("freshness", frozenset(freshness.COLUMNS)),
)
# Known names whose header was changed still go to their reader, which then names the missing column.
_BY_NAME: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.I), fmt) for pattern, fmt in (
        (r"^critics.*\.csv(\.gz)?$", "critics"),
        (r"^rotten_tomatoes_critic_reviews.*\.csv(\.gz)?$", "kaggle_reviews"),
        (r"^rotten_tomatoes_movies.*\.csv(\.gz)?$", "kaggle_movies"),
        (r"^rt\.reviews\.tsv(\.gz)?$", "flatiron_reviews"),
        (r"^rt\.movie_info\.tsv(\.gz)?$", "flatiron_movies"),
        (r"^rotten_tomatoes_top_movies.*\.csv(\.gz)?$", "top_movies"),
        (r"^rotten_tomatoes_reviews.*\.csv(\.gz)?$", "freshness"),
    )
)


def is_data_file(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(TABLE_SUFFIXES) or name.endswith(POLARITY_SUFFIXES)


def detect_format(path: Path) -> str:
    """One of FORMATS; "csv" is a table no built-in reader knows (read by an inferred or given ColumnMapping).

    Raises ReaderError for a missing, empty or unreadable file, or one that is no table at all.
    """
    name = path.name.lower()
    if name.endswith(POLARITY_SUFFIXES):
        check_readable(path)
        return "polarity"
    if not name.endswith(TABLE_SUFFIXES):
        if not path.exists():
            raise ReaderError(path, "no such file or directory")
        raise ReaderError(path, "unknown format (expected .csv, .tsv, .jsonl, .ndjson, .parquet, "
                                "any of those but Parquet gzipped (.gz), or .pos/.neg)")
    header = set(read_header(path))
    for fmt, needed in _BY_HEADER:
        if needed <= header:
            return fmt
    for pattern, fmt in _BY_NAME:
        if pattern.match(path.name):
            return fmt
    return "csv"


def discover(paths: Iterable[Path], include_csv: bool = False) -> list[tuple[Path, str]]:
    """(file, format) for the given files and every data file under the given directories, sorted.

    A missing path or a named file of unknown format raises ReaderError; a named table no built-in
    reader knows is always included (its columns are inferred, or it is refused when they are unsure).
    Inside directories, non-data files are passed over quietly, and empty/unreadable ones and tables
    whose columns no reader knows and the inference is not sure of (unless ``include_csv``: a mapping
    is given) are passed over with a log line.
    """
    found: dict[Path, tuple[Path, str]] = {}  # by resolved path: a file named twice is read once
    for given in map(Path, paths):
        if not given.exists():
            raise ReaderError(given, "no such file or directory")
        if given.is_file():
            found.setdefault(given.resolve(), (given, detect_format(given)))
            continue
        for path in sorted(given.rglob("*")):
            if not path.is_file() or not is_data_file(path) or _hidden(path.relative_to(given)):
                continue
            try:
                fmt = detect_format(path)
            except ReaderError as exc:
                log.warning("skipping %s", exc)
                continue
            if fmt == "csv" and not include_csv and not _sure(path):
                continue
            found.setdefault(path.resolve(), (path, fmt))
    return sorted(found.values(), key=lambda item: str(item[0]))


def _sure(path: Path) -> bool:
    inference = infer_file(path)
    if not inference.sure:
        log.info("skipping %s: not sure of its columns (%s); name it with --dry-run to see the mapping it would "
                 "use", path, "; ".join(inference.doubts))
    return inference.sure


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)
