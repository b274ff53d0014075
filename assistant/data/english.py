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
_CACHE: dict[str, frozenset[str] | None] = {}


def english_words() -> frozenset[str] | None:
    """pyspellchecker's English words, lower-cased, read once per process; None (logged once) without it."""
    with _LOCK:
        if "en" not in _CACHE:
            _CACHE["en"] = _read()
        return _CACHE["en"]


def _read() -> frozenset[str] | None:
    try:
        from importlib.resources import files

        resource = files("spellchecker") / "resources" / "en.json.gz"
        with resource.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as text:
            words = json.load(text)
    except (ModuleNotFoundError, FileNotFoundError, OSError, ValueError) as exc:
        log.warning("%s (%s)", MISSING_ENGLISH, exc)
        return None
    return frozenset(w.lower() for w in words)
