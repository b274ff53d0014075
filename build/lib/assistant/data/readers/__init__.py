"""Readers for every Rotten Tomatoes data format and for any other review table (CSV, TSV, JSON Lines,
Parquet, gzipped or not) whose columns are inferred (infer.py) or given, all yielding assistant.data.records.

    for path, fmt in discover([data_dir]):
        stats = ReadStats()
        for record in read_file(path, fmt, stats):
            ...
    preview_file(path)   # the dry run: format, mapping, labels and counts of the first rows
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from assistant.data.readers.base import ReaderError, ReadStats, Record
from assistant.data.readers.detect import FORMATS, detect_format, discover
from assistant.data.readers.generic import ColumnMapping
from assistant.data.readers.infer import Inference, infer_file
from assistant.data.readers.preview import Preview, preview_file, preview_paths
from assistant.data.readers.registry import read_file

__all__ = [
    "FORMATS", "ColumnMapping", "Inference", "Preview", "ReadStats", "ReaderError", "Record",
    "detect_format", "discover", "infer_file", "preview_file", "preview_paths", "read_file", "read_hub",
    "read_paths",
]


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
