"""Review documents -> training examples: filtering, movie-disjoint split, retrieval-aware context.

A share of the examples carries a context block (the movie's facts card, then neighbouring reviews of the same
movie when known), never the target itself or a near-copy of it, so one model serves RAG on and off and learns to
use what retrieval hands it without learning to recite it. Which examples are kept, and how they are weighted, is
`assistant.training.grounded`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from assistant.data.facts import card_document
from assistant.data.ngrams import ngrams, tokenize
from assistant.data.records import text_fingerprint
from assistant.model.prompts import SENTIMENTS, ReviewRequest, format_context_item

log = logging.getLogger(__name__)

Neighbours = Callable[[Document, int], Sequence[Document | tuple[Document, float]]]

DEFAULT_SEED = 1234
DUPLICATE_COSINE = 0.95
DUPLICATE_NGRAM_SHARE = 0.2  # a neighbour quoting a fifth of the target's 8-grams is a copy of it


@dataclass(frozen=True)
class DataConfig:
    context_share: float = 0.5
    context_k: int = 3
    val_share: float = 0.05  # of movies (untitled, movie-less snippets split by their own id)
    seed: int = DEFAULT_SEED
    min_chars: int = 40
    max_chars: int = 360
    titled_share: float = 0.6  # of sampled training examples, when enough titled reviews exist
    min_label_confidence: float = 0.0  # keep training reviews whose label a cross-fitted probe finds this clear
    # Grounding (assistant/training/grounded.py): targets that use their context count double; targets naming
    # someone their context does not are dropped; a share of context examples whose target uses nothing of it stay.
    grounded_weight: int = 2
    plain_context_keep: float = 0.25
    names_from_context: bool = True
    detail_share: float = 0.001  # a shared word this rare in reviews is a detail of the movie ("replicants")
    join_same_critic: bool = True


@dataclass(frozen=True)
class Example:
    request: ReviewRequest
    review: str
    doc_id: str
    movie_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        r = self.request
        return {"sentiment": r.sentiment, "movie": r.movie, "topic": r.topic, "context": list(r.context),
                "review": self.review, "doc_id": self.doc_id, "movie_key": self.movie_key}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Example:
        request = ReviewRequest(d["sentiment"], d.get("movie"), d.get("topic"), list(d.get("context") or []))
        return cls(request, d["review"], d["doc_id"], d.get("movie_key"))


@dataclass
class Split:
    train: list[Document] = field(default_factory=list)
    val: list[Document] = field(default_factory=list)

    @property
    def val_movies(self) -> set[str]:
        return {movie_group(d) for d in self.val}


def looks_tokenized(text: str) -> bool:
    """Pang & Lee style snippets ("it is n't , really"): fine for a classifier, bad style to imitate."""
    return text == text.lower() and bool(re.search(r" n't\b| [,.;:!?](?: |$)|\( | \)|-lrb-|-rrb-", text))


def looks_cut(text: str) -> bool:
    """Quotes cut mid-word by the source, or placeholders like '[Full review in Spanish]'."""
    return bool(re.search(r"[A-Za-z0-9,]$", text)) or "full review" in text.lower()


def review_docs(documents: Iterable[Document], config: DataConfig = DataConfig()) -> Iterator[Document]:
    """Positive/negative reviews of a trainable length and style, one per doc_id."""
    seen: set[str] = set()
    for doc in documents:
        meta = doc.metadata
        text = (doc.page_content or "").strip()
        if meta.get("kind", "review") != "review" or meta.get("sentiment") not in SENTIMENTS:
            continue
        if not (config.min_chars <= len(text) <= config.max_chars) or looks_tokenized(text) or looks_cut(text):
            continue
        doc_id = meta.get("doc_id") or f"r-{text_fingerprint(text)}"
        if doc_id in seen:
            continue
        seen.add(doc_id)
        yield doc


def movie_group(doc: Document) -> str:
    """The unit the split keeps together: the movie, or the document itself when it has no movie."""
    return doc.metadata.get("movie_key") or f"doc:{doc.metadata.get('doc_id') or text_fingerprint(doc.page_content)}"


def is_validation(group: str, share: float, seed: int) -> bool:
    """Stable across runs, machines and document order: a hash of (seed, movie)."""
    digest = hashlib.sha1(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def split_by_movie(documents: Iterable[Document], config: DataConfig = DataConfig()) -> Split:
    """Movie-disjoint train/validation split with a fixed seed."""
    split = Split()
    for doc in documents:
        (split.val if is_validation(movie_group(doc), config.val_share, config.seed) else split.train).append(doc)
    log.info("split: %d training reviews, %d validation reviews (%d held-out movies)",
             len(split.train), len(split.val), len(split.val_movies))
    return split


def sample_balanced(docs: Sequence[Document], n: int, *, titled_share: float, seed: int) -> list[Document]:
    """n documents, half positive and half negative, about `titled_share` of them with a movie title."""
    rng = random.Random(seed)
    picked: list[Document] = []
    for i, sentiment in enumerate(SENTIMENTS):
        want = n // 2 + (n % 2 if i == 0 else 0)
        pool = [d for d in docs if d.metadata.get("sentiment") == sentiment]
        titled = [d for d in pool if d.metadata.get("movie")]
        untitled = [d for d in pool if not d.metadata.get("movie")]
        rng.shuffle(titled)
        rng.shuffle(untitled)
        n_titled = min(len(titled), max(round(want * titled_share), want - len(untitled)))
        picked += titled[:n_titled] + untitled[: want - n_titled]
    rng.shuffle(picked)
    return picked


def _ngram_set(text: str, n: int = 8) -> set[tuple[str, ...]]:
    return set(ngrams(tokenize(text), n))


def is_duplicate(target: Document, other: Document, score: float | None = None) -> bool:
    """Same id, same folded text, near-identical embedding, or a large verbatim overlap."""
    t_meta, o_meta = target.metadata, other.metadata
    if t_meta.get("doc_id") and t_meta.get("doc_id") == o_meta.get("doc_id"):
        return True
    if text_fingerprint(target.page_content) == text_fingerprint(other.page_content):
        return True
    if score is not None and score > DUPLICATE_COSINE:
        return True
    target_grams = _ngram_set(target.page_content)
    if target_grams:
        shared = len(target_grams & _ngram_set(other.page_content))
        return shared / len(target_grams) > DUPLICATE_NGRAM_SHARE
    return False


def context_for(doc: Document, neighbours: Neighbours, k: int) -> list[str]:
    """Up to k formatted context items for `doc`, duplicates of it removed."""
    items: list[str] = []
    for hit in neighbours(doc, k + 3):  # a few spare for the ones dropped as duplicates
        other, score = hit if isinstance(hit, tuple) else (hit, None)
        if is_duplicate(doc, other, score):
            continue
        other_movie = other.metadata.get("movie_key")
        show_movie = bool(other_movie) and other_movie != doc.metadata.get("movie_key")
        items.append(format_context_item(other.metadata, other.page_content, show_movie=show_movie))
        if len(items) == k:
            break
    return items


def make_example(doc: Document, context: list[str]) -> Example:
    meta = doc.metadata
    request = ReviewRequest(meta["sentiment"], meta.get("movie") or None, None, context)
    return Example(request, re.sub(r"\s+", " ", doc.page_content).strip(), meta.get("doc_id", ""), meta.get("movie_key"))


MIN_CLEAR_SHARE = 0.2  # the full store keeps about half its reviews; a share under this means the probe cannot tell


def keep_clear_labels(docs: Sequence[Document], store: Any, threshold: float,
                      seed: int = DEFAULT_SEED) -> tuple[list[Document], dict[str, Any]]:
    """The reviews whose sentiment reads clearly from their embedding (out-of-fold probe), and counts.

    Many "rotten" quotes are lukewarm; a model trained on them writes lukewarm text. Imitating the clear
    cases teaches the contrast the user asks for. The probe reads MiniLM vectors, not the judge's words.
    """
    from assistant.model.sentiment_probe import label_confidence

    if threshold <= 0 or not docs:
        return list(docs), {"threshold": threshold, "kept": len(docs), "of": len(docs)}
    vectors = store.vectors_for([d.metadata["doc_id"] for d in docs])
    confidence = label_confidence(vectors, [d.metadata["sentiment"] for d in docs], seed=seed)
    kept = [d for d, c in zip(docs, confidence) if c >= threshold]
    if len(kept) < MIN_CLEAR_SHARE * len(docs):
        # A probe cross-fitted on a user's few reviews reads nothing clearly: training on none of them would publish
        # a model that learned nothing, so all are kept.
        log.warning("label filter: only %d of %d training reviews read clearly (>= %.2f): too few to filter on, "
                    "keeping all", len(kept), len(docs), threshold)
        return list(docs), {"threshold": threshold, "kept": len(docs), "of": len(docs), "too_few_clear": len(kept)}
    stats = {"threshold": threshold, "kept": len(kept), "of": len(docs),
             **{f"kept_{s}": sum(d.metadata["sentiment"] == s for d in kept) for s in SENTIMENTS}}
    log.info("label filter: kept %d of %d training reviews whose sentiment reads clearly (>= %.2f)",
             len(kept), len(docs), threshold)
    return kept, stats


def store_neighbours(store: Any, *, with_facts: bool = True) -> Neighbours:
    """Adapter from the ReviewStore to the `neighbours(doc, k)` callable.

    Same-movie reviews by stored vector when the movie is known (led by its joined facts card, which carries
    names and plot, as in chat), otherwise the nearest reviews of any movie.
    """

    def neighbours(doc: Document, k: int) -> list[tuple[Document, float]]:
        meta = doc.metadata
        doc_id, key = meta.get("doc_id"), meta.get("movie_key")
        hits: list[tuple[Document, float]] = []
        if with_facts and key:
            facts = card_document(store, key)
            if facts is not None:
                hits.append((facts, 0.0))
        if key:
            hits += store.neighbours(doc_id, k=k, same_movie=True, exclude_ids=(doc_id,))
        if not hits:
            hits = store.neighbours(doc_id, k=k, same_movie=False, exclude_ids=(doc_id,))
        return hits

    return neighbours


def write_examples(path: Path, header: dict[str, Any], examples: Sequence[Example]) -> None:
    """JSON lines: a header (data settings, split sizes) then one example per line; written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        f.write(json.dumps(header, sort_keys=True) + "\n")
        for example in examples:
            f.write(json.dumps(example.to_dict()) + "\n")
    os.replace(tmp, path)


def read_examples(path: Path) -> tuple[dict[str, Any], list[Example]]:
    """What `write_examples` wrote; ValueError (one line) for a file that is not an examples file."""
    try:
        with path.open() as f:
            header = json.loads(f.readline())
            examples = [Example.from_dict(json.loads(line)) for line in f if line.strip()]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a prepared examples file ({exc}); write one with --export-examples") from exc
    if not isinstance(header, dict) or "data" not in header:
        raise ValueError(f"{path} has no examples header; write one with --export-examples")
    return header, examples


def open_split(settings: Any, config: DataConfig = DataConfig()) -> tuple[Any, Split]:
    """The review store and its movie-disjoint split (raises StoreError, one line, when the store is missing)."""
    from assistant.data.store import ReviewStore

    store = ReviewStore.open(settings)
    return store, split_by_movie(review_docs(store.iter_documents(kind="review"), config), config)
