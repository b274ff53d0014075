"""Garbled words: a reply word that is neither English, nor in the review store, nor in the reply's own context.

    english = english_words()                       # pyspellchecker's English list; None (and a log line) without it
    vocabulary = store_vocabulary(store, cache)     # every word the store's texts use, counted once and cached
    check = GarbledCheck(english, vocabulary)
    check.words("A craftfulness of Keoghan", context=["Barry Keoghan is superb"])   # -> ["craftfulness"]

The English list is pyspellchecker's (assistant/data/english.py says why that one). Without it no reply can be
called garbled honestly (every rare English word would count), so the measure reads null with a note instead.
The store's vocabulary lets names and film words its critics use pass ("Keoghan", "rewatchable"); the context
lets pass a word the model was shown (a name in the facts card, a word of the request). The evaluation measures
replies with it (assistant/evaluation/critic_scoring.py); the chat ranks its drafts with it
(assistant/chat/draft_words.py), so a made-up name a draft wrote from memory is caught as the reader would.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from assistant.data.english import MISSING_ENGLISH as MISSING_WORD_LIST
from assistant.data.ngrams import tokenize

log = logging.getLogger(__name__)

MISSING_ENGLISH = f"garbled words not measured: {MISSING_WORD_LIST}"
VOCABULARY_SCHEMA = 1
VOCABULARY_CACHE = ".vocabulary.json"  # in the store's folder, beside its generations (ingest ignores files)


def vocabulary_cache(store: Any) -> Path:
    """Where a store's vocabulary is kept: its folder, beside its generations (`store.directory` is one of them)."""
    return Path(store.directory).parent / VOCABULARY_CACHE


def checkable(word: str) -> bool:
    """Words worth checking: alphabetic (with apostrophes), three letters or more; numbers and 'ok' are not."""
    letters = word.replace("'", "")
    return len(letters) >= 3 and letters.isalpha()


def _forms(word: str) -> list[str]:
    """The word and what it stands on: "keoghan's" -> keoghan, "isn't" -> isn (whatever a list spells)."""
    forms = [word]
    if "'" in word:
        forms += [word.split("'")[0], word.replace("'", "")]
    return forms


class GarbledCheck:
    """Which of a reply's words no source knows: not English, not the store's, not in the reply's context."""

    def __init__(self, english: Iterable[str] | None, vocabulary: Iterable[str] = ()) -> None:
        self.english = frozenset(english) if english is not None else None
        self.vocabulary = frozenset(vocabulary)

    @property
    def available(self) -> bool:
        return self.english is not None

    def known(self, word: str, context: frozenset[str] = frozenset()) -> bool:
        return any(f in self.english or f in self.vocabulary or f in context for f in _forms(word))

    def words(self, reply: str, context: Sequence[str] = ()) -> list[str]:
        """The reply's garbled words, in order, each once; [] when none (or when the English list is missing)."""
        if self.english is None:
            return []
        shown = frozenset(w for text in context for w in tokenize(text or ""))
        out: list[str] = []
        for word in tokenize(reply):
            if checkable(word) and word not in out and not self.known(word, shown):
                out.append(word)
        return out

    def measure(self, replies: Sequence[str], contexts: Sequence[Sequence[str]]) -> dict[str, Any]:
        """Share of non-empty replies with at least one garbled word, and a few examples; null without the list."""
        if self.english is None:
            return {"n": 0, "share": None, "examples": [], "note": MISSING_ENGLISH}
        found = [self.words(r, c) for r, c in zip(replies, contexts) if r.strip()]
        hits = [w for w in found if w]
        return {"n": len(found), "share": round(len(hits) / len(found), 4) if found else None,
                "examples": sorted({w for ws in hits for w in ws})[:12], "note": None}


# ---- the store's vocabulary ----------------------------------------------------------------------

def count_words(rows: Iterable[Sequence[str | None]]) -> Counter:
    """How often each word occurs over every text field of the rows (texts, critics, outlets, titles)."""
    counts: Counter = Counter()
    for row in rows:
        for field in row:
            if field:
                counts.update(tokenize(field))
    return counts


def store_vocabulary(store: Any, cache: Path | None = None) -> frozenset[str]:
    """Every word the store's documents use (their texts, critics, outlets and titles).

    Counting 112,000 documents takes about a second here, so the counts are kept in `cache` (JSON, stamped with the
    store generation they were counted on) and counted again only when the store changed. A cache that cannot
    be read or written costs the time, never the measure."""
    stamp = {"schema": VOCABULARY_SCHEMA, "store": str(getattr(store, "directory", "")),
             "updated": float(getattr(getattr(store, "manifest", None), "updated", 0) or 0)}
    if cache is not None:
        try:
            data = json.loads(cache.read_text())
            if data.get("stamp") == stamp:
                return frozenset(data["counts"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # missing or from another store: count again
    rows = store.sql("SELECT text, json_extract(meta, '$.critic'), json_extract(meta, '$.publication'), "
                     "json_extract(meta, '$.movie') FROM docs")
    counts = count_words(rows)
    log.info("store vocabulary: %d words over %d documents", len(counts), len(rows))
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            # two processes, or two chats of one process, may write at once
            tmp = cache.with_name(f"{cache.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps({"stamp": stamp, "counts": dict(counts)}))
            tmp.replace(cache)
        except OSError as exc:
            log.warning("could not cache the store vocabulary at %s: %s", cache, exc)
    return frozenset(counts)
