"""Reviews for the model's context: filtered (movie, sentiment) and diverse (MMR), with plain fallbacks.

The context is laid out as in training (see `training_data.store_neighbours`): the movie's facts
document first when there is one, then reviews, other movies' reviews naming their movie.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from langchain_core.documents import Document

from assistant.model.prompts import format_context_item

log = logging.getLogger(__name__)

VERDICTS = {"positive": "fresh", "negative": "rotten"}
_QUERY_WORDS = {  # how each ask is worded for the embedding model
    ("positive", None): "a glowing, enthusiastic review", ("negative", None): "a scathing, critical review",
    ("positive", "kinder"): "a warm, generous, admiring review",
    ("negative", "harsher"): "a brutal, savage, withering review",
}


@dataclass
class Source:
    """One retrieved document as shown with a reply."""

    movie: str | None
    critic: str | None
    publication: str | None
    sentiment: str | None  # positive | negative | unknown
    score: str | None  # the critic's own score when the data has it ("3/5", "B+")
    similarity: float | None  # cosine to the query; None for quotes picked without a query
    text: str
    doc_id: str
    kind: str = "review"  # or "movie": the movie's facts (synopsis, consensus)
    top_critic: bool | None = None
    date: str | None = None
    movie_key: str | None = None

    @property
    def verdict(self) -> str | None:
        return VERDICTS.get(self.sentiment or "")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Source:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_document(cls, doc: Document, similarity: float) -> Source:
        meta = doc.metadata
        return cls(movie=meta.get("movie"), critic=meta.get("critic"), publication=meta.get("publication"),
                   sentiment=meta.get("sentiment"), score=meta.get("score"),
                   similarity=None if similarity is None else round(float(similarity), 4), text=doc.page_content,
                   doc_id=meta.get("doc_id") or doc.id or "", kind=meta.get("kind", "review"),
                   top_critic=meta.get("top_critic"), date=meta.get("date") or meta.get("year"),
                   movie_key=meta.get("movie_key"))


@dataclass
class Retrieval:
    documents: list[Document] = field(default_factory=list)
    similarities: list[float] = field(default_factory=list)
    query: str = ""
    filters: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    movie_key: str | None = None

    @property
    def sources(self) -> list[Source]:
        return [Source.from_document(d, s) for d, s in zip(self.documents, self.similarities, strict=True)]

    def context_items(self) -> list[str]:
        """Formatted as in training: reviews of another movie than the requested one say which."""
        items = []
        for doc in self.documents:
            other = doc.metadata.get("movie_key")
            show = bool(other) and other != self.movie_key
            items.append(format_context_item(doc.metadata, doc.page_content, show_movie=show))
        return items


def build_query(sentiment: str, movie: str | None, topic: str | None, tone: str | None = None) -> str:
    ask = _QUERY_WORDS.get((sentiment, tone)) or _QUERY_WORDS[(sentiment, None)]
    parts = [ask]
    if movie:
        parts.append(f"of {movie}")
    if topic:
        parts.append(f"about {topic}")
    return " ".join(parts)


def movie_facts(store: Any, movie_key: str) -> Document | None:
    """The movie's facts document (first chunk), preferring one with a critics consensus."""
    rows = store.sql(
        "SELECT text, meta FROM docs WHERE movie_key = ? AND kind = 'movie' "
        "ORDER BY (json_extract(meta, '$.consensus') IS NULL), pos LIMIT 1", (movie_key,))
    return Document(page_content=rows[0][0], metadata=json.loads(rows[0][1])) if rows else None


def _dedupe(hits: Iterable[tuple[Document, float]], k: int) -> list[tuple[Document, float]]:
    """One chunk per stored review: long reviews are split into several."""
    seen: set[str] = set()
    out = []
    for doc, score in hits:
        key = doc.metadata.get("doc_id") or doc.id or ""
        if key in seen:
            continue
        seen.add(key)
        out.append((doc, score))
        if len(out) == k:
            break
    return out


def retrieve(store: Any, *, sentiment: str, movie: str | None = None, movie_key: str | None = None,
             topic: str | None = None, tone: str | None = None, k: int = 4, exclude_ids: Iterable[str] = (),
             mmr: bool = True, fetch_k: int = 20, lambda_mult: float = 0.6, min_similarity: float = 0.15,
             facts: bool = True) -> Retrieval:
    """Reviews for one request, narrowing by movie and sentiment and saying so whenever it has to widen."""
    started = time.perf_counter()
    query = build_query(sentiment, movie, topic, tone)
    result = Retrieval(query=query, movie_key=movie_key)
    vector = store.embed_query(query)
    excluded = set(exclude_ids)
    search = dict(k=2 * k, mmr=mmr, fetch_k=max(fetch_k, 2 * k), lambda_mult=lambda_mult)
    verdict = VERDICTS.get(sentiment, sentiment)

    def run(**filters: Any) -> list[tuple[Document, float]]:
        hits = store.search_vector(vector, exclude_ids=excluded, **search, **filters)
        if not hits and excluded:  # "another" ran out of unseen reviews: seen ones beat none
            hits = store.search_vector(vector, **search, **filters)
        return _dedupe(hits, k)

    hits: list[tuple[Document, float]] = []
    if movie_key:
        hits = run(movie_key=movie_key, sentiment=sentiment)
        result.filters = {"movie_key": movie_key, "sentiment": sentiment}
        if not hits:
            hits = run(movie_key=movie_key)
            result.filters = {"movie_key": movie_key}
            if hits:
                result.notes.append(f"The data has no {verdict} reviews of {movie}, so the context is its other "
                                    f"reviews.")
    if not hits:
        hits = [(d, s) for d, s in run(sentiment=sentiment) if s >= min_similarity]
        result.filters = {"sentiment": sentiment}
        if movie_key:
            result.notes.append(f"The data has no reviews of {movie}; the context is the closest {verdict} reviews "
                                f"of other movies.")
        elif movie:
            result.notes.append(f"The context is the closest {verdict} reviews of other movies.")
    if not hits:
        result.filters = {}
        result.notes.append("Retrieval found no reviews close enough to use, so the model had no context.")
    lead: list[tuple[Document, float]] = []
    if facts and movie_key:
        doc = movie_facts(store, movie_key)
        if doc is not None:
            lead.append((doc, _similarity(store, vector, doc)))
    chosen = lead + hits
    result.documents = [d for d, _ in chosen]
    result.similarities = [float(s) for _, s in chosen]
    result.seconds = time.perf_counter() - started
    log.debug("retrieved %d documents for %r with %s in %.3f s", len(chosen), query, result.filters, result.seconds)
    return result


def _similarity(store: Any, vector: np.ndarray, doc: Document) -> float:
    """Cosine of the query with a stored document, from its stored vector (no re-embedding)."""
    rows = store.sql("SELECT pos FROM docs WHERE doc_id = ? ORDER BY pos LIMIT 1", (doc.metadata.get("doc_id"),))
    if not rows:
        return 0.0
    return float(np.dot(store.vectors_at([int(rows[0][0])])[0], vector))

