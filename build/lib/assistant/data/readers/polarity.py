"""Pang & Lee sentence polarity v1.0: rt-polarity.pos / rt-polarity.neg, one tokenized snippet a line."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from assistant.data.readers.base import EMPTY_TEXT, ReaderError, ReadStats, Record
from assistant.data.readers.tabular import iter_lines
from assistant.data.records import Review
from assistant.data.text import Label, clean_text, detokenize

SUFFIX_LABELS: dict[str, Label] = {".pos": "positive", ".neg": "negative"}


def read_polarity(path: Path, stats: ReadStats, source: str) -> Iterator[Record]:
    """Untitled reviews labelled by the file suffix; the original release is latin-1, this mirror
    UTF-8, and per-line decoding takes either."""
    sentiment = SUFFIX_LABELS.get(path.suffix.lower())
    if sentiment is None:
        raise ReaderError(path, "polarity files must end in .pos or .neg")
    return _read(path, stats, source, sentiment)


def _read(path: Path, stats: ReadStats, source: str, sentiment: Label) -> Iterator[Record]:
    for line in iter_lines(path, stats):
        text = detokenize(clean_text(line))
        if text:
            stats.kept += 1
            yield Review(text=text, sentiment=sentiment, source=source)
        else:
            stats.skip(EMPTY_TEXT)
        if stats.full:
            return
