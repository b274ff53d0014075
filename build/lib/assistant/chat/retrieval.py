"""Reviews for the model's context: filtered (movie, sentiment) and diverse (MMR), with plain fallbacks, all
through the store's LangChain retriever (`as_retriever(search_type="mmr", search_kwargs={"filter": ...})`).

The context is laid out as in training (see `training.examples`): the movie's facts document first when there
is one, then reviews, other movies' reviews naming their movie.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from langchain_core.documents import Document
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from pydantic import ConfigDict

from assistant.data.critics_names import critics_names_document
from assistant.data.facts import card_document
from assistant.model.prompts import format_context_item

log = logging.getLogger(__name__)

VERDICTS = {"positive": "fresh", "negative": "rotten"}
FACTS_CANDIDATES = 8  # facts chunks looked at for one movie: a movie has one to a few
FEW_REVIEWS = 2  # a movie known from this few reviews and no facts gets a note: little to ground a review in
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
    facts: dict[str, Any] | None = None  # a facts card's fields and their sources (assistant/data/facts.py)

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
                   movie_key=meta.get("movie_key"), facts=meta.get("facts"))


@dataclass
class Retrieval:
    documents: list[Document] = field(default_factory=list)
    similarities: list[float | None] = field(default_factory=list)  # None: not found by a query (critics' names)
    query: str = ""
    filters: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    movie_key: str | None = None
    failed: bool = False  # the lookup failed: no context, and a note saying so

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


def search(store: Any, query: str, *, k: int, filter: dict[str, Any], mmr: bool = False, fetch_k: int = 20,
           lambda_mult: float = 0.6, config: RunnableConfig | None = None) -> list[tuple[Document, float]]:
    """One call of the store's retriever: documents passing the metadata filter, with their cosine to the query."""
    if mmr:
        kwargs = {"k": k, "fetch_k": max(fetch_k, k), "lambda_mult": lambda_mult, "filter": filter}
        retriever = store.as_retriever(search_type="mmr", search_kwargs=kwargs)
    else:
        retriever = store.as_retriever(search_type="similarity", search_kwargs={"k": k, "filter": filter})
    return [(doc, float(doc.metadata.get("similarity") or 0.0)) for doc in retriever.invoke(query, config)]


def movie_facts(store: Any, query: str, movie_key: str, config: RunnableConfig | None = None
                ) -> tuple[Document, float] | None:
    """The movie's facts, every source joined into one card (`assistant.data.facts`), as in training, with the
    query's cosine to the closest of the movie's own facts documents."""
    card = card_document(store, movie_key)
    if card is None:
        return None
    hits = search(store, query, k=FACTS_CANDIDATES, filter={"kind": "movie", "movie_key": movie_key}, config=config)
    return card, max((score for _, score in hits), default=0.0)


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


def clearest(store: Any, probe: Any, sentiment: str, hits: list[tuple[Document, float]], k: int
             ) -> list[tuple[Document, float]]:
    """The first k hits; for a pan, those whose text reads as negative first, order otherwise kept.

    A "rotten" quote is often lukewarm ("while it has its moments, ..."): the sentiment probe (MiniLM, on the
    store's own vectors, so no re-embedding) reads 33% of rotten reviews as positive against 18% of fresh ones as
    negative (20,000 stored reviews, 2026-12-02), and the model writes in the tone of its context. On 200 held-out
    RAG requests, reordering for pans took negative replies judged negative from 0.93 to 0.95 (words-only judge
    0.86 to 0.91); reordering praise too moved positive ones from 0.98 to 0.94 (0.85 to 0.83), so praise keeps the
    retriever's order. Without a usable probe the hits keep their order too."""
    dim = getattr(getattr(probe, "coef", None), "shape", (None,))[0]
    if probe is None or len(hits) <= k or sentiment != "negative" or dim != getattr(store, "dim", None):
        return hits[:k]
    try:
        vectors = store.vectors_for([d.metadata.get("doc_id") or d.id for d, _ in hits])
    except KeyError:  # a hit the store cannot place: keep the retriever's order
        return hits[:k]
    reads_positive = probe.positive_probability(vectors) >= 0.5
    ranked = sorted(range(len(hits)), key=lambda i: bool(reads_positive[i]))  # stable: the retriever's order within
    return [hits[i] for i in ranked[:k]]


def retrieve(store: Any, *, sentiment: str, movie: str | None = None, movie_key: str | None = None,
             topic: str | None = None, tone: str | None = None, k: int = 4, exclude_ids: Iterable[str] = (),
             mmr: bool = True, fetch_k: int = 20, lambda_mult: float = 0.6, min_similarity: float = 0.15,
             facts: bool = True, probe: Any = None, config: RunnableConfig | None = None) -> Retrieval:
    """Reviews for one request, narrowing by movie and sentiment and saying so whenever it has to widen; with a
    sentiment probe, a pan's reviews that read as negative first (`clearest`)."""
    started = time.perf_counter()
    query = build_query(sentiment, movie, topic, tone)
    result = Retrieval(query=query, movie_key=movie_key)
    excluded = sorted(set(exclude_ids))
    verdict = VERDICTS.get(sentiment, sentiment)

    def run(**filters: Any) -> list[tuple[Document, float]]:
        def find(where: dict[str, Any]) -> list[tuple[Document, float]]:  # 2k: room for one review's chunks
            return search(store, query, k=2 * k, filter={"kind": "review", **filters, **where}, mmr=mmr,
                          fetch_k=fetch_k, lambda_mult=lambda_mult, config=config)

        hits = find({"doc_id": {"$nin": excluded}}) if excluded else find({})
        if not hits and excluded:  # "another" ran out of unseen reviews: seen ones beat none
            hits = find({})
        return clearest(store, probe, sentiment, _dedupe(hits, 2 * k), k)

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
    lead = movie_facts(store, query, movie_key, config) if facts and movie_key else None
    if facts and movie_key and lead is None:
        known = len({store.doc_ids[p] for p in store.movie_positions(movie_key, kind="review")})
        if 0 < known <= FEW_REVIEWS:
            result.notes.append(f"The data knows {movie} only from {known} review{'s' * (known > 1)} and has no "
                                f"facts about it (director, cast), so this review can say little about the film "
                                f"itself.")
        names = critics_names_document(store, movie_key)  # no facts source knows it: the names its critics share
        lead = (names, None) if names is not None else None
    chosen = ([lead] if lead else []) + hits
    result.documents = [d for d, _ in chosen]
    result.similarities = [None if s is None else float(s) for _, s in chosen]
    result.seconds = time.perf_counter() - started
    log.debug("retrieved %d documents for %r with %s in %.3f s", len(chosen), query, result.filters, result.seconds)
    return result


class ReviewRetrieval(RunnableSerializable[dict, Retrieval]):
    """The retrieval step of the review chain: {sentiment, movie, movie_key?, topic?, tone?, k?, exclude_ids?}
    -> Retrieval, with the store's retriever and the settings' MMR and filters. A movie without a key is looked
    up in `titles`. A failed lookup costs the context, not the reply: it comes back `failed`, with a note."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    store: Any
    settings: Any
    titles: Any = None
    probe: Any = None  # the sentiment probe: a pan's reviews that read as negative lead (`clearest`)

    def invoke(self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any) -> Retrieval:
        return self._call_with_config(self._retrieve, input, config, run_type="chain")

    def _retrieve(self, ask: dict[str, Any], config: RunnableConfig) -> Retrieval:
        settings = self.settings
        movie, movie_key = ask.get("movie"), ask.get("movie_key")
        if movie and "movie_key" not in ask and self.titles is not None:
            found = self.titles.match(movie, settings.fuzzy_min_score)
            movie_key = found.key if found else None
        try:
            return retrieve(self.store, sentiment=ask["sentiment"], movie=movie, movie_key=movie_key,
                            topic=ask.get("topic"), tone=ask.get("tone"), k=int(ask.get("k") or settings.top_k),
                            exclude_ids=ask.get("exclude_ids") or (), mmr=settings.mmr, fetch_k=settings.mmr_fetch_k,
                            lambda_mult=settings.mmr_lambda, min_similarity=settings.min_similarity,
                            facts=settings.context_facts,
                            probe=self.probe if settings.clear_context else None, config=config)
        except Exception as exc:  # any failure of the lookup is said in the reply
            log.exception("retrieval failed")
            return Retrieval(movie_key=movie_key, failed=True, notes=[
                f"Retrieval failed ({type(exc).__name__}: {exc}), so this review was written without context."])
