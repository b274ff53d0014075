"""The English word list the project reads words against: the decoding rule that keeps reply words real
(assistant/model/rules/real_words.py) and the garbled-word check (assistant/data/garbled.py: the evaluation
measures it, the chat ranks drafts by it).

It is pyspellchecker's (MIT, a gzipped JSON of about 160,000 words with their frequencies, read without
unpickling anything), chosen over Debian's `wamerican` (/usr/share/dict/words), which an apt step would have to
install on every machine, and over `english-words`, which ships pickles.
"""
from __future__ import annotations

import gzip
import json
import logging
import threading

log = logging.getLogger(__name__)

MISSING_ENGLISH = ("the English word list (the pyspellchecker package) is not installed; "
                   "pip install pyspellchecker")

_LOCK = threading.Lock()
_CACHE: dict[str, dict[str, int] | None] = {}
_WORDS: dict[str, frozenset[str] | None] = {}


def english_counts() -> dict[str, int] | None:
    """pyspellchecker's English words, lower-cased, with how often its corpus uses each (a surname it lists,
    "scorsese" 342, is rare beside "stone" 45,337); read once per process; None (logged once) without it.
    Read-only by convention: every caller shares the one dict."""
    with _LOCK:
        if "en" not in _CACHE:
            _CACHE["en"] = _read()
        return _CACHE["en"]


def english_words() -> frozenset[str] | None:
    """pyspellchecker's English words, lower-cased, read once per process; None (logged once) without it."""
    counts = english_counts()
    with _LOCK:
        if "en" not in _WORDS:
            _WORDS["en"] = None if counts is None else frozenset(counts)
        return _WORDS["en"]


def _read() -> dict[str, int] | None:
    try:
        from importlib.resources import files

        resource = files("spellchecker") / "resources" / "en.json.gz"
        with resource.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as text:
            words = json.load(text)
    except (ModuleNotFoundError, FileNotFoundError, OSError, ValueError) as exc:
        log.warning("%s (%s)", MISSING_ENGLISH, exc)
        return None
    counts: dict[str, int] = {}
    for word, count in words.items():
        counts[word.lower()] = counts.get(word.lower(), 0) + int(count)
    return counts
