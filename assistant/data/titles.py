"""The movie titles the store knows, for naming a movie with fuzzy matching (case, punctuation, small typos)."""
from __future__ import annotations

import logging
import re
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz, process

from assistant.data.records import movie_key

log = logging.getLogger(__name__)

# Single words that are also film titles ("It", "Up", "Her") would hijack ordinary sentences when the
# title is spotted anywhere in a message; they still match where a sentence names a movie ("review of Up").
COMMON_WORDS = frozenset("""
a about after again all also an and another any are as at away back bad be because best better big but by can
could critics day do does dont down even ever every fan fans film films for fresh from funny get give go good great
had harsh harsher has have he her here him his how i if in into is it its just kind kinder last let like little
love make me mean more most movie movies much my new nice nicer nine no not now of off on once one only or other
our out over pan people please positive negative rave really review reviews right rotten same say scathing see
she should show so some something still story such take than that the their them then there these they thing
think this those time to too two up us very want was way we well what when where which who why will with without
word words world would write yes yet you your
""".split())


MIN_FUZZY_CHARS = 6
# rapidfuzz score (0-100) for a phrase to name a title: lets a typo or a missing article through, not another film.
TITLE_MIN_SCORE = 85.0


@dataclass(frozen=True)
class TitleMatch:
    key: str
    title: str
    score: float  # 100 = the key itself
    reviews: int = 0

    @property
    def exact(self) -> bool:
        return self.score >= 100.0


def _words(key: str) -> list[str]:
    return key.split()


class TitleIndex:
    """Display titles by movie key, with exact, fuzzy and in-text lookup."""

    def __init__(self, titles: Mapping[str, tuple[str, int]]) -> None:
        self._titles = dict(titles)  # key -> (display title, review count)
        self._keys = list(self._titles)
        self._longest = max((len(_words(k)) for k in self._keys), default=0)

    @classmethod
    def from_store(cls, store: Any) -> TitleIndex:
        """Titles per movie key: the movie document's title first, else the most common cased review title."""
        rows = store.sql(
            "SELECT movie_key, json_extract(meta, '$.movie'), kind, COUNT(DISTINCT doc_id) FROM docs "
            "WHERE movie_key IS NOT NULL GROUP BY movie_key, json_extract(meta, '$.movie'), kind"
        )
        return cls(choose_titles(rows))

    def __len__(self) -> int:
        return len(self._titles)

    def __contains__(self, key: object) -> bool:
        return key in self._titles

    def title(self, key: str) -> str | None:
        entry = self._titles.get(key)
        return entry[0] if entry else None

    def _match(self, key: str, score: float) -> TitleMatch:
        title, reviews = self._titles[key]
        return TitleMatch(key, title, round(float(score), 1), reviews)

    def exact(self, phrase: str) -> TitleMatch | None:
        key = movie_key(phrase)
        return self._match(key, 100.0) if key and key in self._titles else None

    def match(self, phrase: str, min_score: float = TITLE_MIN_SCORE) -> TitleMatch | None:
        """The title the phrase names: exactly, or within a small typo (ties go to the most reviewed).

        Short names must be exact: one letter off in "Alien" or "Rings" is another film, not a typo."""
        found = self.exact(phrase)
        if found or not self._keys:
            return found
        key = movie_key(phrase)
        if not key or len(key) < MIN_FUZZY_CHARS:
            return None
        hits = process.extract(key, self._keys, scorer=fuzz.ratio, score_cutoff=min_score, limit=5)
        hits = [h for h in hits if len(h[0]) >= MIN_FUZZY_CHARS]
        if not hits:
            return None
        best = max(hits, key=lambda h: (round(h[1], 1), self._titles[h[0]][1]))
        return self._match(best[0], best[1])

    def suggest(self, phrase: str, n: int = 3, min_score: float = 60.0) -> list[TitleMatch]:
        """Close titles for a phrase that named none: spelling first, then shared words."""
        key = movie_key(phrase)
        if not key or len(key) < 3 or not self._keys:
            return []
        scored: dict[str, float] = {}
        for scorer in (fuzz.ratio, fuzz.token_set_ratio, fuzz.partial_ratio):
            for hit_key, score, _ in process.extract(key, self._keys, scorer=scorer, score_cutoff=min_score,
                                                     limit=n + 5):
                if scorer is not fuzz.ratio and len(hit_key) < max(3, len(key) // 2):
                    continue  # "M" is inside every sentence with an m in it
                penalty = 0 if scorer is fuzz.ratio else 5  # a whole-title likeness beats a shared word
                scored[hit_key] = max(scored.get(hit_key, 0.0), score - penalty)
        ranked = sorted(scored.items(), key=lambda kv: (-kv[1], -self._titles[kv[0]][1]))
        return [self._match(k, s) for k, s in ranked[:n]]

    def scan(self, text: str, ignore: frozenset[str] = COMMON_WORDS) -> tuple[TitleMatch, str] | None:
        """The longest known title written anywhere in the text, with the words it spans as written there.

        Titles made only of `ignore` words ("It", "Up", "Fresh") are not spotted this way."""
        words = [w for w in re.split(r"\s+", text.strip()) if w]
        folded = [movie_key(w) or "" for w in words]
        for size in range(min(self._longest, len(words)), 0, -1):
            for start in range(len(words) - size + 1):
                span = " ".join(f for f in folded[start:start + size] if f)
                key = movie_key(span)
                if not key or key not in self._titles:
                    continue
                if len(key) < 3 or all(w in ignore for w in key.split()):
                    continue
                return self._match(key, 100.0), " ".join(words[start:start + size])
        return None

    def popular(self, n: int = 3) -> list[str]:
        ranked = sorted(self._titles.values(), key=lambda tv: -tv[1])
        return [t for t, _ in ranked[:n]]


def choose_titles(rows: Iterable[tuple[str, str | None, str, int]]) -> dict[str, tuple[str, int]]:
    """(movie_key, title, kind, count) rows -> key -> (display title, review count); untitled keys are dropped."""
    by_key: dict[str, dict[str, Any]] = {}
    for key, title, kind, count in rows:
        entry = by_key.setdefault(key, {"reviews": 0, "movie": None, "titles": {}})
        if kind == "review":
            entry["reviews"] += int(count)
        if not title:
            continue
        if kind == "movie" and entry["movie"] is None:
            entry["movie"] = title
        entry["titles"][title] = entry["titles"].get(title, 0) + int(count)
    out: dict[str, tuple[str, int]] = {}
    for key, entry in by_key.items():
        title = entry["movie"]
        if title is None and entry["titles"]:
            # Lower-cased pulls ("toy story") lose to any cased spelling of the same title.
            title = max(entry["titles"].items(), key=lambda tc: (tc[0] != tc[0].lower(), tc[1]))[0]
            if title == title.lower():
                title = title.title()
        if title:
            out[key] = (title, entry["reviews"])
    log.debug("title index: %d titled movies", len(out))
    return out


def another_films_title(name: str, title: str | None, films: Container[str]) -> bool:
    """Whether `name` is the title of a film other than `title` (`films`: the store's movie keys): critics compare
    with other films by name ("Heathers" in two reviews of Jawbreaker), which reads like one of the film's people."""
    key = movie_key(name)
    return key is not None and key != movie_key(title) and key in films
