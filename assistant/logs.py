"""Logging set-up shared by the command-line entry points, and what reaches a terminal made printable.

Review text, chat messages, model output and file names can carry control characters: an escape sequence
printed raw retitles the window, clears the screen or rewrites what was printed before. `printable` shows
such characters as visible `\\uXXXX` escapes instead; log lines and the CLI's output go through it.
"""
from __future__ import annotations

import logging
import os
import re
from typing import Any, TextIO

# Every C0/C1 control except newline and tab (so \r, ESC, BEL, backspace), DEL, the bidi controls that reorder
# a line's display, and the Unicode line and paragraph separators.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def printable(text: str) -> str:
    """`text` with every character that would act on a terminal shown as a visible `\\uXXXX` instead.

    In JSON text the escape reads back as the same character, so printed JSON stays exact.
    """
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class PrintableStream:
    """A text stream whose every write is made `printable` first; everything else is the wrapped stream's."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(printable(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class PrintableFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))  # newlines (tracebacks) stay


def setup_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(PrintableFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    # Third-party chatter would bury our own progress lines.
    for noisy in ("httpx", "urllib3", "sentence_transformers", "transformers", "faiss", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # No blanket warning filter: upstream deprecations must show (pyproject.toml's pytest filterwarnings turns
    # new ones raised from our code into test failures); known ones are filtered by name where they arise.
