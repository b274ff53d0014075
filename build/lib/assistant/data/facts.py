"""One joined facts card per movie: title, year, director, main cast, genre, a one-line synopsis and the critics'
consensus, each value with the sources that give it.

The store keeps each source's facts as its own `kind="movie"` document (Kaggle movies, top movies, Flatiron movie
info). They are joined here, on reading, by normalized title (`records.movie_key`) + year, so a later ingest that
adds a source needs no rewrite of what is stored. Flatiron's movie file has no titles: a Flatiron movie joins a
titled one only when the director and the theatrical release date agree (or the director, the year and the running
time within three minutes), and otherwise keeps a card of its own under its id, for its own untitled reviews.

The card (`assistant.data.facts_card.MovieCard`) renders as one compact line, the same in training and in chat,
and keeps its structured fields in the document's metadata (`"facts"`) for the page's detail chips and the
evaluation's names.
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.documents import Document

from assistant.data.facts_card import (
    FIELDS,
    MAIN_CAST,
    MAX_GENRES,
    FactValue,
    MovieCard,
    SourceFacts,
    first_sentences,
    fold,
    split_names,
    year_of,
)
from assistant.data.records import movie_key as key_of

log = logging.getLogger(__name__)

_PLACEHOLDER_YEAR = "1900"  # critics_*.csv date their undated reviews 1800-01-01


def _add(card: MovieCard, name: str, value: str | None, label: str) -> None:
    if not value:
        return
    values = card.fields.setdefault(name, [])
    for existing in values:
        if fold(existing.value) == fold(value):
            if label not in existing.sources:
                existing.sources.append(label)
            return
    values.append(FactValue(value, [label]))


def _join_group(key: str, group: Sequence[SourceFacts]) -> MovieCard:
    """One card from records already known to be the same movie; titled, then the richest sources lead."""
    ordered = sorted(group, key=lambda s: (s.title is None, -sum(bool(getattr(s, f)) for f in FIELDS)))
    title = next((s.title for s in ordered if s.title), None)
    card = MovieCard(key=key, title=title)
    for facts in ordered:
        if facts.label not in card.sources:
            card.sources.append(facts.label)
        if facts.key and facts.key not in card.ids:
            card.ids.append(facts.key)
        _add(card, "year", facts.year, facts.label)
        for director in split_names(facts.director):
            _add(card, "director", director, facts.label)
        for genre in split_names(facts.genre):
            _add(card, "genre", genre, facts.label)
        _add(card, "synopsis", first_sentences(facts.synopsis), facts.label)
        _add(card, "consensus", " ".join((facts.consensus or "").split()) or None, facts.label)
    # Main cast: the leads of the source that lists the most names; any source listing a lead confirms it.
    casts = [(f.label, split_names(f.cast)) for f in ordered if f.cast]
    if casts:
        longest = max(casts, key=lambda lc: len(lc[1]))[1]
        for name in longest[:MAIN_CAST]:
            for label, names in casts:
                if fold(name) in {fold(n) for n in names}:
                    _add(card, "cast", name, label)
    card.fields["genre"] = card.fields.get("genre", [])[:MAX_GENRES]
    for name in ("year", "synopsis", "consensus"):  # one value each: the leading source's
        card.fields[name] = card.fields.get(name, [])[:1]
    return card


def _same_year(a: str | None, b: str | None) -> bool:
    """Sources disagree by a year on festival against wide release."""
    return a is None or b is None or abs(int(a) - int(b)) <= 1


def _surnames(director: str | None) -> frozenset[str]:
    return frozenset(fold(n).split()[-1] for n in split_names(director) if fold(n))


def join(records: Iterable[SourceFacts]) -> dict[str, list[MovieCard]]:
    """movie key -> its cards (several when films share a title: 'Day of the Dead', 1985 and 2008)."""
    titled: dict[str, list[list[SourceFacts]]] = {}
    untitled: list[SourceFacts] = []
    for facts in records:
        key = key_of(facts.title)
        if key is None:
            untitled.append(facts)
            continue
        groups = titled.setdefault(key, [])
        # a record without a year joins the only film of that title; with several, it stays apart
        match = next((g for g in groups if all(_same_year(facts.year, o.year) for o in g)
                      and (facts.year or len(groups) == 1)), None)
        if match is None:
            groups.append([facts])
        else:
            match.append(facts)
    by_date: dict[tuple, list[list[SourceFacts]]] = {}
    for groups in titled.values():
        for group in groups:
            for facts in group:
                surnames = _surnames(facts.director)
                if surnames and facts.release_date:
                    by_date.setdefault((surnames, facts.release_date), []).append(group)
                if surnames and facts.year:
                    by_date.setdefault((surnames, facts.year), []).append(group)
    cards: dict[str, list[MovieCard]] = {}
    joined = 0
    for facts in untitled:
        group = _untitled_match(facts, by_date)
        if group is not None:
            group.append(facts)
            joined += 1
        elif facts.key:
            cards.setdefault(facts.key, []).append(_join_group(facts.key, [facts]))
    for key, groups in titled.items():
        cards[key] = [_join_group(key, g) for g in groups]
    for group_cards in list(cards.values()):
        for card in group_cards:
            for other in card.ids:  # a joined Flatiron movie's own untitled reviews find the titled card too
                if other != card.key and other not in cards:
                    cards[other] = [card]
    log.info("movie facts: %d cards; %d of %d untitled (Flatiron) movies joined to a titled one", len(cards), joined,
             len(untitled))
    return cards


def _untitled_match(facts: SourceFacts, by_date: dict[tuple, list[list[SourceFacts]]]) -> list[SourceFacts] | None:
    """The one titled film with this director and theatrical date (or year and running time within 3 minutes)."""
    surnames = _surnames(facts.director)
    if not surnames:
        return None
    exact = _distinct(by_date.get((surnames, facts.release_date), [])) if facts.release_date else []
    if len(exact) == 1:
        return exact[0]
    if facts.year and facts.runtime:
        close = [g for g in _distinct(by_date.get((surnames, facts.year), []))
                 if any(o.runtime and abs(o.runtime - facts.runtime) <= 3 for o in g)]
        if len(close) == 1:
            return close[0]
    return None


def _distinct(groups: list[list[SourceFacts]]) -> list[list[SourceFacts]]:
    out: list[list[SourceFacts]] = []
    for group in groups:
        if not any(group is g for g in out):
            out.append(group)
    return out


def choose(cards: Sequence[MovieCard], earliest_review_year: str | None) -> MovieCard | None:
    """Of films sharing a title, the one its reviews are about: the latest released before its earliest review
    (undated or ambiguous: the card with the most sources)."""
    if not cards:
        return None
    if len(cards) > 1 and earliest_review_year:
        before = [c for c in cards if c.year and c.year <= earliest_review_year]
        if before:
            return max(before, key=lambda c: c.year or "")
    return max(cards, key=lambda c: (len(c.sources), len(c.fields)))


class FactsIndex:
    """The joined cards of one store, built once per store generation (a few thousand rows, well under a second)."""

    _cache: dict[tuple[str, float], FactsIndex] = {}
    _lock = threading.Lock()

    def __init__(self, cards: dict[str, list[MovieCard]], store: Any = None) -> None:
        self.cards = cards
        self._store = store

    @classmethod
    def from_store(cls, store: Any) -> FactsIndex:
        stamp = (str(getattr(store, "directory", id(store))), float(getattr(store.manifest, "updated", 0) or 0))
        with cls._lock:
            cached = cls._cache.get(stamp)
            if cached is None:
                rows = store.sql("SELECT text, meta FROM docs WHERE kind = 'movie' AND "
                                 "COALESCE(json_extract(meta, '$.chunk'), 0) = 0")
                cached = cls(join(SourceFacts.from_stored(text, json.loads(meta)) for text, meta in rows), store)
                cls._cache = {stamp: cached}  # one store generation at a time: the newest
        return cached

    def card(self, movie_key: str | None) -> MovieCard | None:
        if not movie_key:
            return None
        cards = self.cards.get(movie_key) or []
        if len(cards) > 1 and self._store is not None:
            return choose(cards, self._earliest_review_year(movie_key))
        return choose(cards, None)

    def _earliest_review_year(self, movie_key: str) -> str | None:
        rows = self._store.sql("SELECT MIN(json_extract(meta, '$.date')) FROM docs WHERE movie_key = ? AND "
                               "kind = 'review' AND json_extract(meta, '$.date') >= ?", (movie_key, _PLACEHOLDER_YEAR))
        return year_of(rows[0][0]) if rows and rows[0][0] else None


def movie_card(store: Any, movie_key: str | None) -> MovieCard | None:
    """The movie's joined facts card, or None when no source has facts about it."""
    return FactsIndex.from_store(store).card(movie_key)


def card_document(store: Any, movie_key: str | None) -> Document | None:
    card = movie_card(store, movie_key)
    return card.document() if card is not None else None
