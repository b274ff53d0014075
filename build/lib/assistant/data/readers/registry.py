"""One file's records by format: the built-in readers, and any other table through its column mapping."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from assistant.data.readers.base import ReaderError, ReadStats, Record, source_label
from assistant.data.readers.critics import read_critics
from assistant.data.readers.detect import FORMATS
from assistant.data.readers.flatiron import read_flatiron_movies, read_flatiron_reviews
from assistant.data.readers.freshness import read_freshness
from assistant.data.readers.generic import ColumnMapping, read_mapped
from assistant.data.readers.infer import sure_mapping
from assistant.data.readers.kaggle import read_kaggle_movies, read_kaggle_reviews
from assistant.data.readers.polarity import read_polarity
from assistant.data.readers.tabular import check_readable
from assistant.data.readers.top_movies import read_top_movies

_READERS: dict[str, Callable[[Path, ReadStats, str], Iterator[Record]]] = {
    "critics": read_critics,
    "kaggle_reviews": read_kaggle_reviews,
    "kaggle_movies": read_kaggle_movies,
    "flatiron_reviews": read_flatiron_reviews,
    "flatiron_movies": read_flatiron_movies,
    "polarity": read_polarity,
    "freshness": read_freshness,
    "top_movies": read_top_movies,
}


def read_file(
    path: Path, fmt: str, stats: ReadStats, mapping: ColumnMapping | None = None, *, source: str | None = None
) -> Iterator[Record]:
    """Stream the Reviews or MovieFacts of one file, counting into ``stats``.

    A "csv" (a table no built-in reader knows) is read through ``mapping``, or without one through the
    columns inferred from its header and first rows; when the inference is not sure, ReaderError gives the
    mapping it would use as a `--map` to paste. A missing, empty or unreadable file or an unknown format
    raises ReaderError at once too; bad rows never raise, they are counted in ``stats``.
    """
    path = Path(path)
    if fmt != "csv" and fmt not in _READERS:
        raise ReaderError(path, f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    check_readable(path)
    label = source or source_label(path)
    if fmt == "csv":
        return read_mapped(path, stats, label, mapping or sure_mapping(path))
    return _READERS[fmt](path, stats, label)
