"""How each evaluation number is computed: text, ranking and latency metrics, and retrieval over the store.

The text metrics are pure functions with hand-checkable answers. Words and n-grams come from
`assistant.data.ngrams.tokenize`, the same tokenizer as distinct-n and copy rate.
"""
from __future__ import annotations

import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from assistant.data.details import (
    REVIEW_WORDS,  # noqa: F401  (re-exported: what "boilerplate" means for the grounding numbers)
    STOPWORDS,
    content_words,
    fold,
    is_grounded,
    name_spans,
    words_of,
)
from assistant.data.ngrams import ngrams, tokenize

log = logging.getLogger(__name__)

def content_bigrams(text: str) -> list[tuple[str, str]]:
    """Adjacent word pairs with at least one content word ("of the" says nothing about grounding)."""
    return [g for g in ngrams(tokenize(text), 2) if any(w not in STOPWORDS and len(w) > 2 for w in g)]


# ---- sentiment -----------------------------------------------------------------------------------

def classifier_accuracy(predicted: Sequence[str], gold: Sequence[str]) -> float:
    """Share of predictions equal to the gold labels (0.0 for no items)."""
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} labels")
    return sum(p == g for p, g in zip(predicted, gold)) / len(gold) if gold else 0.0


def sentiment_accuracy(replies: Sequence[str], requested: Sequence[str],
                       predict: Callable[[Sequence[str]], Sequence[str]]) -> float:
    """Share of replies the judge reads as the requested sentiment; an empty reply is a miss, not a guess."""
    if not replies:
        return 0.0
    predicted = list(predict(list(replies)))
    hits = [bool(r.strip()) and p == want for r, p, want in zip(replies, predicted, requested)]
    return sum(hits) / len(replies)


# ---- grounding -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Overlap:
    unigram: float  # share of the reply's content words found in the reference
    bigram: float  # share of the reply's content bigrams found in the reference
    words: int  # content words in the reply (0: the shares are undefined and reported as 0)

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def overlap(reply: str, references: Iterable[str]) -> Overlap:
    """How much of the reply's content is found in the reference texts (1.0 = every word and bigram)."""
    refs = list(references)
    ref_words = {w for r in refs for w in content_words(r)}
    ref_bigrams = {g for r in refs for g in ngrams(tokenize(r), 2)}
    words, bigrams = content_words(reply), content_bigrams(reply)
    uni = sum(w in ref_words for w in words) / len(words) if words else 0.0
    bi = sum(g in ref_bigrams for g in bigrams) / len(bigrams) if bigrams else 0.0
    return Overlap(uni, bi, len(words))


def mean_overlap(pairs: Iterable[tuple[str, Sequence[str]]]) -> dict[str, float | int]:
    """Mean unigram and bigram overlap over (reply, references) pairs, skipping replies with no content words."""
    scores = [o for o in (overlap(reply, refs) for reply, refs in pairs) if o.words]
    if not scores:
        return {"unigram": 0.0, "bigram": 0.0, "n": 0}
    return {"unigram": float(np.mean([o.unigram for o in scores])),
            "bigram": float(np.mean([o.bigram for o in scores])), "n": len(scores)}


# ---- movie relevance -----------------------------------------------------------------------------

def cosine_margin(reply: np.ndarray, own: np.ndarray, others: np.ndarray) -> float:
    """Mean cosine of the reply to the movie's reviews minus its mean cosine to other movies' reviews.

    All vectors are unit length, so the mean cosine is the dot product with the (unnormalized) centroid.
    """
    if len(own) == 0 or len(others) == 0:
        return float("nan")
    reply = np.asarray(reply, dtype=np.float32).ravel()
    return float(reply @ np.asarray(own, np.float32).mean(0) - reply @ np.asarray(others, np.float32).mean(0))


def capitalized_names(text: str) -> set[str]:
    """Words of the capitalised names not opening a sentence (actors, characters, places), lower-cased
    (`assistant.data.details.name_spans`)."""
    return {fold(w) for span in name_spans(text) for w in span.split()} - STOPWORDS


def document_frequency(texts: Iterable[str]) -> tuple[Counter, int]:
    """In how many of the texts each content word occurs, and how many texts there were."""
    df: Counter = Counter()
    n = 0
    for text in texts:
        df.update(set(content_words(text)))
        n += 1
    return df, n


def specific_terms(reviews: Sequence[str], title: str | None, background: tuple[Counter, int], *,
                   facts: Sequence[str] = (), min_reviews: int = 2, max_share: float = 0.005,
                   max_name_share: float = 0.02) -> set[str]:
    """Names and details of one movie: capitalized names and content words that are rare in reviews at large,
    taken from its facts (cast, synopsis) and from words at least `min_reviews` of its reviews share.

    A rare word in a single review is usually the critic's own vocabulary, not the movie's. Names common
    across all reviews ("Hollywood", "Oscar") are dropped like common words, and so are the title's own
    words: the request already names the movie, so echoing them proves nothing.
    """
    df, n = background
    word_limit = max(1, math.floor(max_share * n))
    name_limit = max(1, math.floor(max_name_share * n))

    def rare(text: str) -> set[str]:
        names = {w for w in capitalized_names(text) if df.get(w, 0) <= name_limit}
        return names | {w for w in content_words(text) if len(w) > 3 and df.get(w, 0) <= word_limit}

    shared = Counter(t for text in reviews for t in rare(text))
    terms = {t for t, count in shared.items() if count >= min(min_reviews, len(reviews))}
    for text in facts:
        terms |= rare(text)
    title_words = set(tokenize(title or ""))
    return {t for t in terms if t not in title_words and len(t) > 2}


def uses_terms(reply: str, terms: set[str]) -> bool:
    """Whether the reply uses any of the terms as a whole word, a possessive as its name ("Scorsese's vision" uses
    "scorsese", as the terms are counted: `content_words`)."""
    return bool(terms) and not terms.isdisjoint(w.removesuffix("'s") for w in tokenize(reply))


# ---- faithfulness and quoting -------------------------------------------------------------------

def name_check(reply: str, reference: Iterable[str]) -> tuple[list[str], list[str]]:
    """(the reply's capitalised names, those of them not found in the reference texts): a name is found when each
    of its words is a word of the references ("Ridley Scott's" is found in "directed by Ridley Scott")."""
    words = words_of(reference)
    names = name_spans(reply)
    return names, [n for n in names if not is_grounded(n, words)]


def faithfulness(checks: Iterable[tuple[list[str], list[str]]]) -> dict[str, Any]:
    """Over (names, invented) of each reply: share of names found in their reference, invented names per reply."""
    checks = list(checks)
    names = sum(len(n) for n, _ in checks)
    invented = sum(len(i) for _, i in checks)
    return {"replies": len(checks), "names": names, "names_per_reply": rounded(names / len(checks)) if checks else None,
            "grounded_share": rounded((names - invented) / names) if names else None,
            "invented_per_reply": rounded(invented / len(checks)) if checks else None,
            "replies_with_invented": rounded(sum(bool(i) for _, i in checks) / len(checks)) if checks else None}


def repeats_ngram(reply: str, references: Iterable[str], n: int = 8) -> bool:
    """Whether the reply repeats n words in a row from one of the references (words as `tokenize` reads them)."""
    grams = set(ngrams(tokenize(reply), n))
    return bool(grams) and any(not grams.isdisjoint(ngrams(tokenize(ref), n)) for ref in references)


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion hits/n (sensible near 0 and 1, unlike the normal one)."""
    if n <= 0:
        return None
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def sentiment_by_direction(replies: Sequence[str], requested: Sequence[str],
                           predict: Callable[[Sequence[str]], Sequence[str]]) -> dict[str, dict[str, Any]]:
    """Accuracy per asked-for sentiment, with n and a 95% interval: the two directions can differ a lot."""
    predicted = list(predict(list(replies))) if replies else []
    out: dict[str, dict[str, Any]] = {}
    for direction in ("positive", "negative"):
        rows = [bool(r.strip()) and p == want for r, p, want in zip(replies, predicted, requested) if want == direction]
        hits = sum(rows)
        interval = wilson_interval(hits, len(rows))
        out[direction] = {"n": len(rows), "accuracy": rounded(hits / len(rows)) if rows else None,
                          "ci95": [rounded(v) for v in interval] if interval else None}
    return out


# ---- retrieval -----------------------------------------------------------------------------------

def retrieval_scores(ranked: Sequence[Sequence[str]], relevant: Sequence[set[str]],
                     ks: Sequence[int] = (4, 10), mrr_at: int = 10) -> dict[str, float]:
    """recall@k, precision@k and MRR@mrr_at averaged over queries, for "find items of the query's group".

    recall@k is the share of queries with at least one relevant item in the top k, as in retrieval
    benchmarks where every query has many right answers (a movie's other reviews); precision@k is the
    share of the top k that is relevant. Queries with no relevant item are skipped: nothing to find.
    """
    pairs = [(r, rel) for r, rel in zip(ranked, relevant) if rel]
    out: dict[str, float] = {"queries": float(len(pairs))}
    for k in ks:
        out[f"recall@{k}"] = _mean(float(any(d in rel for d in r[:k])) for r, rel in pairs)
        out[f"precision@{k}"] = _mean(sum(d in rel for d in r[:k]) / k for r, rel in pairs)
    out[f"mrr@{mrr_at}"] = _mean(next((1.0 / (i + 1) for i, d in enumerate(r[:mrr_at]) if d in rel), 0.0)
                                 for r, rel in pairs)
    return out


def retrieval_chance(relevant_counts: Sequence[int], candidates: int, ks: Sequence[int] = (4, 10)) -> dict[str, float]:
    """The same scores for a retriever that returns random items: the floor the real numbers stand on."""
    shares = [n / candidates for n in relevant_counts if n] if candidates else []
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = _mean(1.0 - (1.0 - p) ** k for p in shares)
        out[f"precision@{k}"] = _mean(shares)
    return out


def label_precision(returned: Iterable[str | None], wanted: str) -> float:
    """Share of returned items carrying the wanted label (what a filter promises is 1.0)."""
    labels = list(returned)
    return sum(label == wanted for label in labels) / len(labels) if labels else float("nan")


# ---- retrieval on its own (a ReviewStore: kinds, movie_keys, doc_ids, vectors_at, search_vector) -

def review_queries(store: Any, titles: dict, n: int, seed: int, min_reviews: int) -> list[tuple[int, str, str]]:
    """(position, doc_id, movie_key) of n sampled reviews of titled movies with at least min_reviews reviews."""
    per_movie: dict[str, set[str]] = {}
    first: dict[str, int] = {}
    for pos in np.flatnonzero(store.kinds == "review"):
        key, doc_id = store.movie_keys[pos], store.doc_ids[pos]
        if key and key in titles:
            per_movie.setdefault(key, set()).add(doc_id)
            first.setdefault(doc_id, int(pos))
    eligible = sorted(d for key, docs in per_movie.items() if len(docs) >= min_reviews for d in docs)
    picked = random.Random(seed).sample(eligible, k=min(n, len(eligible)))
    return [(first[d], d, store.movie_keys[first[d]]) for d in picked]


def evaluate_retrieval(store: Any, titles: dict, *, ks: Sequence[int], n_queries: int, n_filter: int, seed: int,
                       min_reviews: int = 5) -> dict[str, Any] | None:
    """Find other reviews of the same movie from one review's stored embedding (itself excluded); filter precision."""
    started = time.perf_counter()
    queries = review_queries(store, titles, n_queries, seed, min_reviews)
    if not queries:
        log.warning("retrieval: no titled movie has %d reviews; skipped", min_reviews)
        return None
    by_movie: dict[str, set[str]] = {}
    for pos in np.flatnonzero(store.kinds == "review"):
        by_movie.setdefault(store.movie_keys[pos], set()).add(store.doc_ids[pos])
    depth = max(max(ks), 10)
    fetch = depth + 5  # spare hits for a long review's extra chunks, counted once
    plain, mmr, relevant = [], [], []
    for pos, doc_id, key in queries:
        vector = store.vectors_at([pos])[0]
        relevant.append(by_movie[key] - {doc_id})
        plain.append(_ranked(store.search_vector(vector, fetch, kind="review", exclude_ids={doc_id}))[:depth])
        mmr.append(_ranked(store.search_vector(vector, fetch, kind="review", exclude_ids={doc_id}, mmr=True,
                                               fetch_k=2 * fetch, lambda_mult=0.6))[:depth])
    sentiment_hits, movie_hits = [], []
    for i, (pos, doc_id, key) in enumerate(queries[: n_filter]):
        vector = store.vectors_at([pos])[0]
        wanted = ("positive", "negative")[i % 2]
        hits = store.search_vector(vector, max(ks), kind="review", sentiment=wanted, exclude_ids={doc_id})
        sentiment_hits += [d.metadata.get("sentiment") == wanted for d, _ in hits]
        hits = store.search_vector(vector, max(ks), kind="review", movie_key=key, exclude_ids={doc_id})
        movie_hits += [d.metadata.get("movie_key") == key for d, _ in hits]
    scores = retrieval_scores(plain, relevant, ks)
    result: dict[str, Any] = {"queries": int(scores.pop("queries")), "ks": list(ks), "min_reviews": min_reviews,
                              "movies": len({k for _, _, k in queries}),
                              **{k: rounded(v) for k, v in scores.items()}}
    mmr_scores = retrieval_scores(mmr, relevant, ks)
    mmr_scores.pop("queries")
    result["mmr"] = {k: rounded(v) for k, v in mmr_scores.items()}
    reviews = sum(len(docs) for docs in by_movie.values())
    result["chance"] = {k: rounded(v) for k, v in retrieval_chance([len(r) for r in relevant], reviews - 1, ks).items()}
    result["sentiment_filter_precision"] = rounded(float(np.mean(sentiment_hits))) if sentiment_hits else None
    result["movie_filter_precision"] = rounded(float(np.mean(movie_hits))) if movie_hits else None
    result["filter_queries"] = min(n_filter, len(queries))
    result["seconds"] = round(time.perf_counter() - started, 1)
    log.info("retrieval: %s", {k: v for k, v in result.items() if k != "mmr"})
    return result


def _ranked(hits: Sequence[tuple[Any, float]]) -> list[str]:
    """Distinct doc ids in rank order (a long review's chunks count once)."""
    seen: dict[str, None] = {}
    for doc, _ in hits:
        seen.setdefault(doc.metadata.get("doc_id"), None)
    return list(seen)


# ---- latency and helpers -------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0-100); NaN for no values."""
    clean = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.percentile(clean, q)) if clean else float("nan")


def latency_summary(values: Sequence[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95),
            "mean": _mean(v for v in values if v is not None), "n": float(len(values))}


def rounded(value: float | None, digits: int = 4) -> float | None:
    """For JSON: NaN (nothing measured) becomes None."""
    return None if value is None or math.isnan(value) else round(float(value), digits)


def _mean(values: Iterable[float]) -> float:
    items = [v for v in values if not math.isnan(v)]
    return float(np.mean(items)) if items else float("nan")
