"""Any table file as rows of strings keyed by column name: CSV/TSV, JSON Lines or Parquet, plain or gzip.

The container is chosen by file name; every reader reads through here, so a Kaggle reviews file works as
CSV, JSON Lines or Parquet alike.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

from assistant.data.readers.base import ReadStats
from assistant.data.readers.containers import (
    iter_jsonl,
    iter_parquet,
    jsonl_header,
    parquet_header,
)
from assistant.data.readers.tabular import csv_header, iter_csv

CSV_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
TABLE_SUFFIXES = CSV_SUFFIXES + JSONL_SUFFIXES + PARQUET_SUFFIXES


def table_kind(path: Path) -> str | None:
    """"csv", "tsv", "jsonl" or "parquet" (with " gzip" when compressed), or None for no table file."""
    name = path.name.lower()
    gz = " gzip" if name.endswith(".gz") else ""
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl" + gz
    if name.endswith(CSV_SUFFIXES):
        return ("tsv" if ".tsv" in name else "csv") + gz
    return None


def read_header(path: Path) -> list[str]:
    """The column names, unique (a repeated name gets ".1"; see tabular.unique_names)."""
    kind = table_kind(path) or "csv"
    if kind == "parquet":
        return parquet_header(path)
    if kind.startswith("jsonl"):
        return jsonl_header(path)
    return csv_header(path)


def iter_table(
    path: Path, stats: ReadStats, required: Iterable[str] = (), cp1252: bool = False
) -> Iterator[dict[str, str]]:
    """Rows as dicts keyed by header; each counts in ``stats.rows``, broken ones are skipped and counted there.

    Raises ReaderError when the header lacks a ``required`` column. ``cp1252`` (CSV/TSV only) reads every
    line that is not UTF-8 as cp1252."""
    kind = table_kind(path) or "csv"
    if kind == "parquet":
        return iter_parquet(path, stats, required)
    if kind.startswith("jsonl"):
        return iter_jsonl(path, stats, required)
    return iter_csv(path, stats, required, cp1252)


def sample_rows(path: Path, n: int) -> list[dict[str, str]]:
    """The first ``n`` readable rows (for column inference): reads no further than it needs."""
    return list(islice(iter_table(path, ReadStats()), n))
