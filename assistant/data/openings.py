"""How critics open a review: the first three words of the training films' quotes, counted by what came before.

A small fine-tuned model opens most replies the same few ways ("This is one ...", "The plot is ...", "A dull and
..."), though every one of those openings is plausible for a critic too; critics' own quotes spread over thousands
of openings (one quote in a hundred shares its first three words with another of the same films). The table here is
their spread, for praise and for pans apart ("A must-see", "Not even"): for the first word, and for the second and third given the words before them, how often critics
chose each word. The decoding rule `assistant/model/rules/critic_opening.py` draws a reply's opening words by these
counts among the words the model itself finds plausible.

The table (`critic_openings.json` beside this file) is written by `scripts/critic_openings.py` from the training
split's reviews only (assistant/training/examples.split_by_movie), so the evaluation's held-out films are not in it.
A context seen fewer than `min_context` times backs off: for the second word to "<rare>" (any uncommon first word,
names mostly), for the third to the second word alone ("*|film"), then to "<rare>|<rare>".
"""
from __future__ import annotations

import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

TABLE = Path(__file__).with_name("critic_openings.json")
OPENING_WORDS = 3  # the opening a reader compares across replies ("A beautifully crafted")
RARE = "<rare>"
ANY = "*"
_EDGE = re.compile(r"^[^\w']+|[^\w']+$")
WORD_CHARS = re.compile(r"^[\w']+$")


def opening_words(text: str, n: int = OPENING_WORDS) -> list[str]:
    """The first `n` words, lower-cased, without the punctuation around them ("Jaws," -> "jaws")."""
    words = []
    for raw in text.split():
        word = _EDGE.sub("", raw).lower()
        if word:
            words.append(word)
            if len(words) == n:
                break
    return words


def context_key(words: Sequence[str], known: frozenset[str] | set[str] | dict) -> str:
    """The table's context for the word after `words` (0-2 opening words), backed off as the module says."""
    if not words:
        return ""
    if len(words) == 1:
        return words[0] if words[0] in known else RARE
    pair = f"{words[0]}|{words[1]}"
    if pair in known:
        return pair
    second = f"{ANY}|{words[1]}"
    return second if second in known else f"{RARE}|{RARE}"


def count_openings(texts: Iterable[str], *, min_context: int = 40, top: int = 400,
                   top_first: int = 4000) -> dict:
    """The table from critics' texts: each context's word counts (a context needs `min_context` quotes; its `top`
    words, `top_first` for the first word, each used at least twice)."""
    firsts: Counter = Counter()
    seconds: dict[str, Counter] = {}
    thirds: dict[str, Counter] = {}
    openings = [w for w in (opening_words(t) for t in texts) if len(w) == OPENING_WORDS]
    for w1, _, _ in openings:
        firsts[w1] += 1
    pair_counts = Counter(f"{w1}|{w2}" for w1, w2, _ in openings)
    second_counts = Counter(f"{ANY}|{w2}" for _, w2, _ in openings)
    for w1, w2, w3 in openings:
        key2 = w1 if firsts[w1] >= min_context else RARE
        seconds.setdefault(key2, Counter())[w2] += 1
        pair = f"{w1}|{w2}"
        if pair_counts[pair] >= min_context:
            key3 = pair
        elif second_counts[f"{ANY}|{w2}"] >= min_context:
            key3 = f"{ANY}|{w2}"
        else:
            key3 = f"{RARE}|{RARE}"
        thirds.setdefault(key3, Counter())[w3] += 1

    def kept(counter: Counter, n: int) -> dict[str, int]:
        return {w: c for w, c in counter.most_common(n) if c >= 2}

    contexts = {"": kept(firsts, top_first)}
    for table in (seconds, thirds):
        contexts.update({key: kept(counter, top) for key, counter in table.items()})
    return {"quotes": len(openings), "min_context": min_context, "contexts": contexts}


class CriticOpenings:
    """One sentiment's table: `whole(context_words, word)`, how often critics' next word in that context was
    `word` (a count, not normalised: the rule compares candidates within one step)."""

    def __init__(self, table: dict) -> None:
        self.contexts: dict[str, dict[str, int]] = table["contexts"]
        self.quotes = int(table.get("quotes", 0))

    @classmethod
    def read(cls, path: Path = TABLE) -> dict[str, CriticOpenings] | None:
        """The table of each sentiment ("positive", "negative") in the file; None (logged) when unreadable."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return {sentiment: cls(table) for sentiment, table in data["by_sentiment"].items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("critics' openings unreadable (%s): replies open as the model likes", exc)
            return None

    def key(self, words: Sequence[str]) -> str:
        return context_key(words, self.contexts)

    def whole(self, words: Sequence[str], word: str) -> int:
        """Critics' next words after `words` that are exactly `word`."""
        return self.contexts.get(self.key(words), {}).get(word, 0)


_LOCK = threading.Lock()
_SHIPPED: list[dict[str, CriticOpenings] | None] = []


def critic_openings() -> dict[str, CriticOpenings] | None:
    """The shipped tables by sentiment, read once per process; None (logged once) when missing or unreadable."""
    with _LOCK:
        if not _SHIPPED:
            _SHIPPED.append(CriticOpenings.read())
        return _SHIPPED[0]
