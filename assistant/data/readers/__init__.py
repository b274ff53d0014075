"""Readers for every Rotten Tomatoes data format, all yielding assistant.data.records types.

    for path, fmt in discover([data_dir]):
        stats = ReadStats()
        for record in read_file(path, fmt, stats):
            ...
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from assistant.data.readers.base import ReaderError, ReadStats, Record, source_label
from assistant.data.readers.critics import read_critics
from assistant.data.readers.detect import FORMATS, detect_format, discover
from assistant.data.readers.flatiron import read_flatiron_movies, read_flatiron_reviews
from assistant.data.readers.freshness import read_freshness
from assistant.data.readers.generic import ColumnMapping, read_mapped
from assistant.data.readers.kaggle import read_kaggle_movies, read_kaggle_reviews
from assistant.data.readers.polarity import read_polarity
from assistant.data.readers.tabular import check_readable
from assistant.data.readers.top_movies import read_top_movies

__all__ = [
    "FORMATS", "ColumnMapping", "ReadStats", "ReaderError", "Record",
    "detect_format", "discover", "read_file", "read_hub", "read_paths",
]

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

    A missing, empty or unreadable file, an unknown format or a "csv" without mapping raises
    ReaderError at once; bad rows never raise, they are counted in ``stats.skipped``.
    """
    path = Path(path)
    if fmt != "csv" and fmt not in _READERS:
        raise ReaderError(path, f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    check_readable(path)
    label = source or source_label(path)
    if fmt == "csv":
        return read_mapped(path, stats, label, mapping)
    return _READERS[fmt](path, stats, label)


def read_paths(
    paths: Iterable[Path], mapping: ColumnMapping | None = None, stats: dict[Path, ReadStats] | None = None
) -> Iterator[Record]:
    """Every record under ``paths`` (see discover); per-file counts land in ``stats`` if given.

    With a mapping, tables no built-in reader knows are read through it.
    """
    for path, fmt in discover(list(paths), include_csv=mapping is not None):
        file_stats = ReadStats()
        if stats is not None:
            stats[path] = file_stats
        yield from read_file(path, fmt, file_stats, mapping)


def read_hub(stats: ReadStats, **kwargs) -> Iterator[Record]:
    """The Hugging Face `rotten_tomatoes` dataset (needs internet); see assistant.data.readers.hub."""
    from assistant.data.readers.hub import (
        read_hub as _read_hub,  # late: keeps huggingface_hub off the import path
    )

    return _read_hub(stats, **kwargs)
