"""One joined facts card per movie: title, year, director, main cast, genre, a one-line synopsis and the critics'
consensus, each value with the sources that give it.

The store keeps each source's facts as its own `kind="movie"` document (Kaggle movies, top movies, Flatiron movie
info). They are joined here, on reading, by normalized title (`records.movie_key`) + year, so a later ingest that
adds a source needs no rewrite of what is stored. Flatiron's movie file has no titles: a Flatiron movie joins a
titled one only when the director and the theatrical release date agree (or the director, the year and the running
time within three minutes), and otherwise keeps a card of its own under its id, for its own untitled reviews.

The card renders as one compact line (`CardDoc.page_content`), the same in training and in chat, and keeps its
structured fields in the document's metadata (`"facts"`) for the page's detail chips and the evaluation's names.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.documents import Document

from assistant.data.records import movie_key as key_of
from assistant.data.records import text_fingerprint

log = logging.getLogger(__name__)

MAIN_CAST = 4  # a critic names the leads, not the tenth name of the credits
MAX_GENRES = 2
SYNOPSIS_CHARS = 240
FIELDS: tuple[str, ...] = ("year", "director", "cast", "genre", "synopsis", "consensus")
# file name -> how a person calls the source (the page and the chips say "from Kaggle movies")
_SOURCE_LABELS = (("rotten_tomatoes_top_movies", "top movies"), ("rotten_tomatoes_movies", "Kaggle movies"),
                  ("rt.movie_info", "Flatiron movie info"), ("hub:", "Hugging Face hub"))
_PLACEHOLDER_YEAR = "1900"  # critics_*.csv date their undated reviews 1800-01-01
_SENTENCE_END = re.compile(r"(?<=[a-z0-9\"')][.!?])\s+(?=[A-Z\"'])")


def source_label(source: str | None) -> str:
    """'…/kaggle-sample/rotten_tomatoes_movies.csv' -> 'Kaggle movies'; an unknown file keeps its name."""
    name = (source or "").replace("\\", "/").rsplit("/", 1)[-1]
    for stem, label in _SOURCE_LABELS:
        if name.startswith(stem) or (source or "").startswith(stem):
            return label
    return name or "unknown source"


def _fold(name: str) -> str:
    """Case, accents and punctuation folded: 'Beyoncé' == 'beyonce', 'Lilly  Wachowski' == 'lilly wachowski'."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return " ".join(re.findall(r"[a-z0-9]+", text))


def split_names(value: str | None) -> list[str]:
    """'A, B|C' -> ['A', 'B', 'C'], duplicates (after folding) dropped, order kept."""
    seen: set[str] = set()
    out = []
    for name in re.split(r"[,|]", value or ""):
        name = " ".join(name.split())
        if name and _fold(name) and _fold(name) not in seen:
            seen.add(_fold(name))
            out.append(name)
    return out


def first_sentences(text: str | None, limit: int = SYNOPSIS_CHARS) -> str | None:
    """The synopsis' opening, whole sentences up to `limit` characters (at least the first, cut at a word)."""
    text = " ".join((text or "").split())
    if not text:
        return None
    out = ""
    for sentence in _SENTENCE_END.split(text):
        if out and len(out) + 1 + len(sentence) > limit:
            break
        out = f"{out} {sentence}".strip()
        if len(out) >= limit // 2:
            break
    if len(out) > limit:
        out = out[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "..."
    return out


@dataclass(frozen=True)
class SourceFacts:
    """One source's facts about one movie, as stored (metadata, or parsed from the text of an older store)."""

    label: str
    title: str | None
    key: str | None  # movie_key of the title, else the source's movie id
    year: str | None = None
    director: str | None = None
    cast: str | None = None
    genre: str | None = None
    synopsis: str | None = None
    consensus: str | None = None
    release_date: str | None = None
    runtime: int | None = None  # minutes

    @classmethod
    def from_stored(cls, text: str, meta: dict[str, Any]) -> SourceFacts:
        extra = meta.get("extra") or {}
        synopsis = meta.get("synopsis") or _labelled(text, "Synopsis")
        return cls(label=source_label(meta.get("source")), title=meta.get("title") or meta.get("movie"),
                   key=meta.get("movie_key"), year=_year(meta.get("year")), director=meta.get("director"),
                   cast=meta.get("cast"), genre=meta.get("genre"), synopsis=synopsis,
                   consensus=meta.get("consensus"), release_date=extra.get("release_date"),
                   runtime=_minutes(extra.get("runtime")))


def _labelled(text: str, label: str) -> str | None:
    """'Synopsis: ...' out of a facts document's text (stores written before metadata kept the synopsis)."""
    match = re.search(rf"^{label}: (.*)$", text or "", re.MULTILINE)
    return match[1].strip() if match else None


def _year(value: Any) -> str | None:
    text = str(value or "")[:4]
    return text if text.isdigit() and len(text) == 4 else None


def _minutes(value: Any) -> int | None:
    """'104 minutes', '1h 48m', '92' -> minutes."""
    text = str(value or "").strip().lower()
    hours = re.search(r"(\d+)\s*h", text)
    mins = re.search(r"(\d+)\s*m", text)
    if hours or mins:
        return (int(hours[1]) * 60 if hours else 0) + (int(mins[1]) if mins else 0)
    return int(text) if text.isdigit() else None


@dataclass
class FactValue:
    value: str
    sources: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "sources": list(self.sources)}


@dataclass
class MovieCard:
    """Every source's facts about one movie, joined: each value says which sources give it."""

    key: str
    title: str | None
    fields: dict[str, list[FactValue]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # movie keys of the joined records (a Flatiron id, say)

    @property
    def year(self) -> str | None:
        return self.first("year")

    def first(self, name: str) -> str | None:
        values = self.fields.get(name) or []
        return values[0].value if values else None

    def values(self, name: str) -> list[str]:
        return [v.value for v in self.fields.get(name) or []]

    def names(self) -> dict[str, str]:
        """Every person the card names -> its field ('director' or 'cast'), the leads first."""
        out: dict[str, str] = {}
        for name in ("director", "cast"):
            for value in self.values(name):
                out.setdefault(value, name)
        return out

    def line(self) -> str:
        """The compact facts line the model reads: 'A 1979 film directed by ..., starring ... (sci fi, horror). ...'."""
        year = self.year
        head = f"A {year} film" if year else "The film"
        directors = self.values("director")
        if directors:
            head += " directed by " + _and(directors)
        cast = self.values("cast")
        if cast:
            head += (", starring " if directors else " starring ") + _and(cast)
        genres = ", ".join(g.lower() for g in self.values("genre"))
        if genres:
            head += f" ({genres})"
        parts = [head + "."]
        synopsis = self.first("synopsis")
        if synopsis:
            parts.append(synopsis if synopsis.endswith((".", "!", "?", "...")) else synopsis + ".")
        consensus = self.first("consensus")
        if consensus:
            parts.append(f"Critics consensus: {consensus}")
        return " ".join(parts)

    @property
    def doc_id(self) -> str:
        return f"f-{text_fingerprint(self.key + '|' + self.line())}"

    def to_metadata(self) -> dict[str, Any]:
        return {"title": self.title, "key": self.key, "sources": list(self.sources), "ids": list(self.ids),
                "fields": {k: [v.to_dict() for v in vs] for k, vs in self.fields.items() if vs}}

    @classmethod
    def from_metadata(cls, data: dict[str, Any]) -> MovieCard:
        fields = {k: [FactValue(v["value"], list(v.get("sources") or [])) for v in vs]
                  for k, vs in (data.get("fields") or {}).items()}
        return cls(key=data["key"], title=data.get("title"), fields=fields, sources=list(data.get("sources") or []),
                   ids=list(data.get("ids") or []))

    def document(self) -> Document:
        """The card as the context's lead document; `format_context_item` renders it 'About <title>: <line>'."""
        meta = {"kind": "movie", "movie": self.title, "movie_key": self.key, "doc_id": self.doc_id,
                "sentiment": "unknown", "year": self.year, "source": ", ".join(self.sources),
                "facts": self.to_metadata()}
        return Document(page_content=self.line(), metadata=meta, id=self.doc_id)


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# ---- the join ------------------------------------------------------------------------------------------------

def _add(card: MovieCard, name: str, value: str | None, label: str) -> None:
    if not value:
        return
    values = card.fields.setdefault(name, [])
    for existing in values:
        if _fold(existing.value) == _fold(value):
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
                if _fold(name) in {_fold(n) for n in names}:
                    _add(card, "cast", name, label)
    card.fields["genre"] = card.fields.get("genre", [])[:MAX_GENRES]
    for name in ("year", "synopsis", "consensus"):  # one value each: the leading source's
        card.fields[name] = card.fields.get(name, [])[:1]
    return card


def _same_year(a: str | None, b: str | None) -> bool:
    """Sources disagree by a year on festival against wide release."""
    return a is None or b is None or abs(int(a) - int(b)) <= 1


def _surnames(director: str | None) -> frozenset[str]:
    return frozenset(_fold(n).split()[-1] for n in split_names(director) if _fold(n))


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
        return _year(rows[0][0]) if rows and rows[0][0] else None


def movie_card(store: Any, movie_key: str | None) -> MovieCard | None:
    """The movie's joined facts card, or None when no source has facts about it."""
    return FactsIndex.from_store(store).card(movie_key)


def card_document(store: Any, movie_key: str | None) -> Document | None:
    card = movie_card(store, movie_key)
    return card.document() if card is not None else None
