"""A movie's facts card: every source's facts about one film, joined, each value naming the sources that give it.

`MovieCard.line()` is the compact line the model reads (the same in training and chat); `to_metadata()` keeps
the structured fields for the page's detail chips and the evaluation. The join itself is `assistant.data.facts`.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.documents import Document

from assistant.data.records import text_fingerprint

MAIN_CAST = 4  # a critic names the leads, not the tenth name of the credits
MAX_GENRES = 2
SYNOPSIS_CHARS = 240
FIELDS: tuple[str, ...] = ("year", "director", "cast", "genre", "synopsis", "consensus")
# file name -> how a person calls the source (the page and the chips say "from Kaggle movies")
_SOURCE_LABELS = (("rotten_tomatoes_top_movies", "top movies"), ("rotten_tomatoes_movies", "Kaggle movies"),
                  ("rt.movie_info", "Flatiron movie info"), ("hub:", "Hugging Face hub"))
_SENTENCE_END = re.compile(r"(?<=[a-z0-9\"')][.!?])\s+(?=[A-Z\"'])")


def source_label(source: str | None) -> str:
    """'…/kaggle-sample/rotten_tomatoes_movies.csv' -> 'Kaggle movies'; an unknown file keeps its name."""
    name = (source or "").replace("\\", "/").rsplit("/", 1)[-1]
    for stem, label in _SOURCE_LABELS:
        if name.startswith(stem) or (source or "").startswith(stem):
            return label
    return name or "unknown source"


def fold(name: str) -> str:
    """Case, accents and punctuation folded: 'Beyoncé' == 'beyonce', 'Lilly  Wachowski' == 'lilly wachowski'."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return " ".join(re.findall(r"[a-z0-9]+", text))


def split_names(value: str | None) -> list[str]:
    """'A, B|C' -> ['A', 'B', 'C'], duplicates (after folding) dropped, order kept."""
    seen: set[str] = set()
    out = []
    for name in re.split(r"[,|]", value or ""):
        name = " ".join(name.split())
        if name and fold(name) and fold(name) not in seen:
            seen.add(fold(name))
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
                   key=meta.get("movie_key"), year=year_of(meta.get("year")), director=meta.get("director"),
                   cast=meta.get("cast"), genre=meta.get("genre"), synopsis=synopsis,
                   consensus=meta.get("consensus"), release_date=extra.get("release_date"),
                   runtime=_minutes(extra.get("runtime")))


def _labelled(text: str, label: str) -> str | None:
    """'Synopsis: ...' out of a facts document's text (stores written before metadata kept the synopsis)."""
    match = re.search(rf"^{label}: (.*)$", text or "", re.MULTILINE)
    return match[1].strip() if match else None


def year_of(value: Any) -> str | None:
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


# `MovieCard.line`'s head, read back: "A 1979 film directed by A and B, starring C, D and E (sci fi)."
# (the head's full stop is no initial's nor a "Jr.": "George A. Romero", "Robert Downey Jr.")
_LINE_PEOPLE = re.compile(r"(?:A \d{4} film|The film)(?: directed by (?P<director>.+?))?(?:,? starring (?P<cast>.+?))?"
                          r"(?: \([^)]*\))?(?<![ .][A-Z])(?<!\bJr)(?<!\bSr)\.(?:\s|$)")


def line_people(line: str) -> dict[str, str]:
    """Every person a facts line (`MovieCard.line`) names -> "director" or "cast"; {} for any other text."""
    match = _LINE_PEOPLE.match(line.strip())
    if match is None:
        return {}
    people: dict[str, str] = {}
    for role in ("director", "cast"):
        for name in re.split(r", | and ", match[role] or ""):
            if name.strip():
                people.setdefault(name.strip(), role)
    return people
