"""JSON Lines and Parquet files as rows of strings, streamed: one line, or one record batch, at a time.

Values become the strings a CSV would hold (None -> "", True -> "true", 3.0 -> "3.0", a date -> ISO), so every
reader and the column inference see one kind of row whatever the container.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from assistant.data.readers.base import (
    LINE_TOO_LONG,
    MALFORMED,
    TOO_DEEP,
    ReaderError,
    ReadStats,
)
from assistant.data.readers.bounded import BOUNDS, MAX_LINE_BYTES, header_refused
from assistant.data.readers.tabular import (
    DecodedLines,
    check_readable,
    open_binary,
    unique_names,
)

# Objects whose keys make the header of a JSON Lines file (keys first seen later still reach the rows).
HEADER_SAMPLE = 1000
# Rows per Parquet record batch: memory stays bounded by this, not by the file.
PARQUET_BATCH = 1024
# A row group's columns are inflated whole; real files hold tens to hundreds of MiB per group.
MAX_ROW_GROUP_BYTES = 1 << 30


def as_text(value: Any) -> str:
    """A JSON or Arrow value as the text a CSV cell would hold."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (int,)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _json_objects(path: Path, stats: ReadStats | None) -> Iterator[dict[str, Any] | None]:
    """Each non-blank line parsed; None for a line that is no JSON object (counted as malformed by the caller).

    A line over the bounds (readers.bounded) or nested deeper than Python's parser goes (RecursionError) is
    skipped and counted; the first line over a bound refuses the file."""
    check_readable(path)
    with open_binary(path) as fh:
        lines = DecodedLines(fh, path)
        first = True
        for line in lines:
            problem, fallback = lines.take()
            text = line.strip()
            if not text and problem not in BOUNDS:
                continue
            if first and problem in BOUNDS:
                raise header_refused(path, problem)
            if first and text.startswith("["):
                raise ReaderError(path, "a JSON array, not JSON Lines: write one object per line "
                                        "(e.g. jq -c '.[]' FILE > FILE.jsonl)")
            first = False
            if problem in BOUNDS and stats is None:
                continue
            if stats is not None and not stats.line_read(problem, fallback):
                continue
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            except RecursionError:  # "[[[[..." 100,000 deep: a hostile line, not a crash
                if stats is not None:
                    stats.skip(TOO_DEEP)
                continue
            yield parsed if isinstance(parsed, dict) else None


def jsonl_header(path: Path) -> list[str]:
    """The keys of the first HEADER_SAMPLE objects, in the order first seen."""
    keys: dict[str, None] = {}
    for count, obj in enumerate(_json_objects(path, None)):
        if count >= HEADER_SAMPLE:
            break
        for key in obj or {}:
            keys.setdefault(str(key), None)
    return unique_names(keys)


def iter_jsonl(path: Path, stats: ReadStats, required: Iterable[str] = ()) -> Iterator[dict[str, str]]:
    """Rows of a JSON Lines file keyed like its header; a line that is no JSON object is a malformed row."""
    header = jsonl_header(path)
    _check_required(path, header, required)
    for obj in _json_objects(path, stats):
        if obj is None:
            stats.skip(MALFORMED)
            continue
        row = dict.fromkeys(header, "")
        try:
            row.update((str(k), as_text(v)) for k, v in obj.items())
        except RecursionError:  # parsed just under the parser's depth, too deep to write back as text
            stats.skip(TOO_DEEP)
            continue
        yield row


def _parquet(path: Path) -> Any:
    import pyarrow.parquet as pq  # late: pyarrow is needed only for Parquet files

    check_readable(path)
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own error types for damaged or foreign files
        raise ReaderError(path, f"unreadable parquet file ({exc})") from exc


def parquet_header(path: Path) -> list[str]:
    return unique_names(_parquet(path).schema_arrow.names)


def iter_parquet(path: Path, stats: ReadStats, required: Iterable[str] = ()) -> Iterator[dict[str, str]]:
    """Rows of a Parquet file, PARQUET_BATCH at a time."""
    source = _parquet(path)
    header = unique_names(source.schema_arrow.names)
    _check_required(path, header, required)
    _check_row_groups(path, source)
    try:
        for batch in source.iter_batches(batch_size=PARQUET_BATCH):
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            for values in zip(*columns, strict=True):
                stats.rows += 1
                row = {name: as_text(value) for name, value in zip(header, values, strict=True)}
                if sum(map(len, row.values())) > MAX_LINE_BYTES:  # the bound a text line has (in characters)
                    stats.skip(LINE_TOO_LONG)
                    continue
                yield row
    except OSError as exc:  # pyarrow's read errors derive from OSError
        raise ReaderError(path, f"unreadable parquet file ({exc})") from exc


def _check_row_groups(path: Path, source: Any) -> None:
    """Refuse a file whose row groups expand past MAX_ROW_GROUP_BYTES: pyarrow inflates a group's column whole."""
    meta = source.metadata
    for i in range(meta.num_row_groups):
        if (size := meta.row_group(i).total_byte_size) > MAX_ROW_GROUP_BYTES:
            raise ReaderError(path, f"row group {i} expands to {size / (1 << 20):,.0f} MiB, over the "
                                    f"{MAX_ROW_GROUP_BYTES >> 20} MiB a group may hold; write it with smaller "
                                    "row groups")


def _check_required(path: Path, header: list[str], required: Iterable[str]) -> None:
    if missing := [c for c in required if c not in header]:
        raise ReaderError(path, f"missing column(s) {', '.join(missing)}; header: {', '.join(header)}")
