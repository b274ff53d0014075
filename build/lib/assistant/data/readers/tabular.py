"""Bytes in, rows out: open plain or gzip files, decode each line on its own, parse CSV/TSV.

Decoding per line means one bad byte costs one row, never the file. `assistant.data.readers.rows` picks this
module or the JSON Lines / Parquet one by file name.
"""
from __future__ import annotations

import csv
import gzip
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from assistant.data.readers.base import BAD_ENCODING, MALFORMED, ReaderError, ReadStats

# Large enough for any real review or synopsis, small enough that an unterminated quote
# cannot swallow a whole 1 GB file into memory.
FIELD_LIMIT = 64 * 1024 * 1024
csv.field_size_limit(FIELD_LIMIT)

# A lead byte followed by a continuation byte: the line was meant as UTF-8 and is damaged.
_UTF8_LIKE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")
_READ_ERRORS = (OSError, EOFError, zlib.error)


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, gunzipped when its name ends in .gz."""
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def check_readable(path: Path) -> None:
    """Raise ReaderError unless ``path`` is a readable file with some non-blank content."""
    if not path.exists():
        raise ReaderError(path, "no such file or directory")
    if not path.is_file():
        raise ReaderError(path, "not a regular file")
    try:
        with open_binary(path) as fh:
            while chunk := fh.read(1 << 16):
                if chunk.strip():
                    return
    except _READ_ERRORS as exc:
        raise ReaderError(path, f"unreadable file ({exc})") from exc
    raise ReaderError(path, "empty file")


class DecodedLines:
    """Text lines of a byte stream; remembers what went wrong since the last ``take()``.

    Each line is tried as UTF-8. A line that fails is read as cp1252 when the source is
    declared cp1252 or the line holds no UTF-8-like sequence (a lone latin-1/cp1252 byte);
    otherwise it is damaged UTF-8 and its row is skipped as "bad encoding".
    """

    def __init__(self, raw: Iterable[bytes], path: Path, cp1252: bool = False) -> None:
        self.raw, self.path, self.cp1252 = raw, path, cp1252
        self.problem: str | None = None
        self.fallback = False

    def __iter__(self) -> Iterator[str]:
        try:
            for line in self.raw:
                yield self._decode(line)
        except _READ_ERRORS as exc:
            raise ReaderError(self.path, f"unreadable file ({exc})") from exc

    def _decode(self, line: bytes) -> str:
        if b"\0" in line:
            self.problem = self.problem or MALFORMED
            line = line.replace(b"\0", b"")
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            if self.cp1252 or not _UTF8_LIKE.search(line):
                self.fallback = True
                return line.decode("cp1252", errors="replace")
            self.problem = self.problem or BAD_ENCODING
            return line.decode("utf-8", errors="replace")

    def take(self) -> tuple[str | None, bool]:
        """(problem, used fallback) for the lines read since the last call; then reset."""
        out = (self.problem, self.fallback)
        self.problem, self.fallback = None, False
        return out


_DELIMITERS = (",", "\t", ";", "|")


def delimiter_for(path: Path) -> str:
    """Tab for .tsv; for other files the separator the first line uses most (",", tab, ";" or "|")."""
    if ".tsv" in path.name.lower():
        return "\t"
    try:
        with open_binary(path) as fh:
            first = fh.readline(1 << 16).decode("utf-8", errors="replace")
    except _READ_ERRORS:
        return ","  # the reader that opens it next says what is wrong, in one line
    counts = {d: first.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


def unique_names(cells: Iterable[str]) -> list[str]:
    """Header names stripped of whitespace and BOM, made unique: a second "reviews" becomes "reviews.1"
    (as pandas names it), an empty name "column_3" (its position), so every column can be mapped by name."""
    names: list[str] = []
    taken: set[str] = set()
    for position, cell in enumerate(cells, start=1):
        base = str(cell).strip().lstrip("\ufeff").strip() or f"column_{position}"
        name, n = base, 0
        while name in taken:
            n += 1
            name = f"{base}.{n}"
        taken.add(name)
        names.append(name)
    return names


def iter_lines(path: Path, stats: ReadStats, cp1252: bool = False) -> Iterator[str]:
    """Non-blank text lines; each is a row (counted), bad ones skipped here."""
    check_readable(path)
    with open_binary(path) as fh:
        lines = DecodedLines(fh, path, cp1252)
        for line in lines:
            problem, fallback = lines.take()
            if not line.strip():
                continue
            if stats.line_read(problem, fallback):
                yield line.rstrip("\r\n")


def csv_header(path: Path) -> list[str]:
    """The first CSV/TSV record as unique column names (see unique_names)."""
    check_readable(path)
    with open_binary(path) as fh:
        for cells in csv.reader(DecodedLines(fh, path), delimiter=delimiter_for(path)):
            if cells:
                return unique_names(cells)
    return []


def iter_csv(
    path: Path, stats: ReadStats, required: Iterable[str] = (), cp1252: bool = False
) -> Iterator[dict[str, str]]:
    """Rows of a CSV (or TSV, by name) as dicts keyed by header; every record after the header
    counts in ``stats.rows``, and wrong field counts, NUL bytes and damaged bytes are skipped here.
    Raises ReaderError when the header lacks a ``required`` column."""
    check_readable(path)
    with open_binary(path) as fh:
        lines = DecodedLines(fh, path, cp1252)
        reader = csv.reader(lines, delimiter=delimiter_for(path))
        header: list[str] | None = None
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error:
                lines.take()
                stats.rows += 1
                stats.skip(MALFORMED)
                continue
            problem, fallback = lines.take()
            if not cells:
                continue
            if header is None:
                header = unique_names(cells)
                if missing := [c for c in required if c not in header]:
                    raise ReaderError(path, f"missing column(s) {', '.join(missing)}; header: {', '.join(header)}")
                continue
            if not stats.line_read(problem, fallback):
                continue
            if len(cells) != len(header):
                stats.skip(MALFORMED)
            else:
                yield dict(zip(header, cells))

