"""The normalized records every reader produces, and how they become LangChain documents."""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from typing import Literal

Sentiment = Literal["positive", "negative", "unknown"]
SENTIMENTS: tuple[str, ...] = ("positive", "negative", "unknown")


@lru_cache(maxsize=1 << 16)  # a film's reviews repeat its title: an ingest asks for the same key thousands of times
def movie_key(title: str | None) -> str | None:
    """One key per movie, whatever the case, punctuation or spacing of its title ("toy story" == "Toy Story!")."""
    if not title:
        return None
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    text = text.lower().replace("&", " and ")
    text = re.sub(r"[^a-z0-9]+", " ", text).strip()
    text = re.sub(r"^(the|a|an) ", "", text)
    return text or None


def text_fingerprint(text: str) -> str:
    """Hash of a text after folding case, punctuation and whitespace: equal quotes hash equal."""
    folded = re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()
    if not folded:  # a text with no Latin letters or digits would fold to "" and collide with every other such text
        folded = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.sha1(folded.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Review:
    text: str
    sentiment: Sentiment
    movie: str | None = None  # display title, when the source has one
    movie_id: str | None = None  # source-scoped id ("flatiron:3", "kaggle:m/0814255") when there is no title
    critic: str | None = None
    publication: str | None = None
    score: str | None = None  # as the source wrote it: "3/5", "B+", "7/10"
    date: str | None = None  # ISO yyyy-mm-dd when parseable
    top_critic: bool | None = None
    source: str = ""  # file the row came from

    @property
    def key(self) -> str | None:
        """The movie this review is about: title key when titled, else the source's movie id."""
        return movie_key(self.movie) or self.movie_id

    @property
    def doc_id(self) -> str:
        """Deterministic id: the same quote for the same movie is one document, whichever file it came from."""
        return _review_id(self.key, self.text)

    def metadata(self) -> dict:
        # Every field is a plain value: no deep copy (asdict) needed, and the key is folded once for both uses.
        meta = {name: getattr(self, name) for name in _REVIEW_META}
        key = self.key
        meta.update(kind="review", movie_key=key, doc_id=_review_id(key, self.text))
        return meta


def _review_id(key: str | None, text: str) -> str:
    return f"r-{text_fingerprint((key or '') + '|' + text)}"


_REVIEW_META = tuple(f.name for f in fields(Review) if f.name != "text")


@dataclass(frozen=True, slots=True)
class MovieFacts:
    """What the data says about a movie as a whole: its own document in the store."""

    title: str | None
    movie_id: str | None = None
    year: str | None = None
    synopsis: str | None = None
    consensus: str | None = None
    genre: str | None = None
    director: str | None = None
    cast: str | None = None
    rating: str | None = None  # MPAA
    critic_score: str | None = None  # tomatometer, percent
    audience_score: str | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> str | None:
        return movie_key(self.title) or self.movie_id

    @property
    def doc_id(self) -> str:
        return f"m-{text_fingerprint((self.key or '') + '|' + (self.synopsis or '') + (self.consensus or ''))}"

    def to_text(self) -> str:
        parts = []
        head = self.title or "Untitled movie"
        if self.year:
            head += f" ({self.year})"
        parts.append(head + ".")
        for label, value in (
            ("Genre", self.genre), ("Directed by", self.director), ("Cast", self.cast),
            ("Rated", self.rating), ("Tomatometer", self.critic_score and f"{self.critic_score}%"),
            ("Audience score", self.audience_score and f"{self.audience_score}%"),
            ("Critics consensus", self.consensus), ("Synopsis", self.synopsis),
        ):
            if value:
                parts.append(f"{label}: {value}")
        return "\n".join(parts)

    def metadata(self) -> dict:
        """Every field, so the facts join (`assistant.data.facts`) can match release dates and running times."""
        meta = asdict(self)
        meta.update(kind="movie", movie=self.title, movie_key=self.key, doc_id=self.doc_id, sentiment="unknown")
        return meta
