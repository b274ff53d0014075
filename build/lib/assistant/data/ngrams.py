"""Text metrics for generated reviews: diversity (distinct-n) and copying (verbatim n-gram share)."""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
    """Lower-cased words; punctuation and spacing differences do not hide a copy."""
    return _WORD_RE.findall(text.lower().replace("\u2019", "'"))


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Corpus-level distinct-n: unique n-grams over all n-grams in the texts (0.0 when there are none)."""
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        grams = ngrams(tokenize(text), n)
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


class NgramIndex:
    """Hashed n-grams of a reference corpus: build once, ask many times (about 2.5M grams per 100k reviews)."""

    def __init__(self, reference_texts: Iterable[str], n: int = 8) -> None:
        self.n = n
        self._hashes: set[int] = {hash(g) for text in reference_texts for g in ngrams(tokenize(text), n)}

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, gram: tuple[str, ...]) -> bool:
        return hash(gram) in self._hashes

    def copy_rate(self, texts: Iterable[str]) -> float:
        found = total = 0
        for text in texts:
            for gram in ngrams(tokenize(text), self.n):
                total += 1
                found += hash(gram) in self._hashes
        return found / total if total else 0.0


def copy_rate(texts: Iterable[str], reference_texts: Iterable[str] | NgramIndex, n: int = 8) -> float:
    """Share of the generated n-grams found verbatim in the references (0.0 when texts have none)."""
    index = reference_texts if isinstance(reference_texts, NgramIndex) else NgramIndex(reference_texts, n)
    if index.n != n:
        raise ValueError(f"index holds {index.n}-grams, asked for {n}-grams")
    return index.copy_rate(texts)
