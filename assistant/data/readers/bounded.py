"""Reading a file's lines in bounded memory, whatever the file: a line, a file and its expansion have a ceiling.

    for line, problem in bounded_lines(fh, path):   # problem: None, LINE_TOO_LONG or REST_TOO_BIG
        ...

A line is read in pieces of at most MAX_LINE_BYTES: a longer one is passed over piece by piece (never held
whole) and reported as LINE_TOO_LONG, so its row is skipped and counted. A file that expands past its bound (a
gzip "bomb": 2 MB that inflate to gigabytes) ends with REST_TOO_BIG, counted once, and nothing after it is read.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO

from assistant.data.readers.base import LINE_TOO_LONG, REST_TOO_BIG, ReaderError

# A review, a synopsis or a row of a table is a few kilobytes; a megabyte is far beyond any real one.
MAX_LINE_BYTES = 1 << 20
# On disk, compressed or plain (the page's uploads are smaller still).
MAX_FILE_BYTES = 4 << 30
# Expanded: no more than this, and a gzip file no more than MAX_GZIP_RATIO times its size once past
# RATIO_FREE_BYTES. Review text compresses 2-5 times (the mirror's .tsv.gz files: 2.4 and 2.8); 100 times
# is a file made to expand.
MAX_EXPANDED_BYTES = 4 << 30
MAX_GZIP_RATIO = 100
RATIO_FREE_BYTES = 64 << 20
# Read size while passing over the rest of a line that is too long.
_PIECE = 1 << 20
BOUNDS = (LINE_TOO_LONG, REST_TOO_BIG)


def check_size(path: Path) -> None:
    """ReaderError for a file over MAX_FILE_BYTES on disk."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ReaderError(path, f"{size / (1 << 30):.1f} GiB, over the {MAX_FILE_BYTES >> 30} GiB a file may hold; "
                                "split it into smaller files")


def expanded_limit(path: Path) -> int:
    """How many bytes reading ``path`` may produce: MAX_EXPANDED_BYTES, less for a small gzip file."""
    if not path.name.lower().endswith(".gz"):
        return MAX_EXPANDED_BYTES
    return min(MAX_EXPANDED_BYTES, max(RATIO_FREE_BYTES, MAX_GZIP_RATIO * path.stat().st_size))


def bounded_lines(fh: IO[bytes], path: Path) -> Iterator[tuple[bytes, str | None]]:
    """(line, problem) for each line of ``fh``; a line over the bound comes as (b"\\n", LINE_TOO_LONG), and
    once the file has expanded past its bound (b"\\n", REST_TOO_BIG) ends the lines."""
    limit, total = expanded_limit(path), 0
    while line := fh.readline(MAX_LINE_BYTES + 1):
        total += len(line)
        if total > limit:
            yield b"\n", REST_TOO_BIG
            return
        if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
            yield line, None
            continue
        # Said before the rest is passed over: a reader that stops here (a header too long) reads no further.
        yield b"\n", LINE_TOO_LONG
        while piece := fh.readline(_PIECE):  # passed over, never held whole
            total += len(piece)
            if total > limit:
                yield b"\n", REST_TOO_BIG
                return
            if piece.endswith(b"\n"):
                break


def header_refused(path: Path, problem: str) -> ReaderError:
    """The one-line error for a file whose first line (its header) is already over a bound."""
    what = (f"its first line is over {MAX_LINE_BYTES >> 20} MiB" if problem == LINE_TOO_LONG
            else "it expands past the size a review file may have")
    return ReaderError(path, f"not a review table: {what} (a damaged or hostile file?)")
