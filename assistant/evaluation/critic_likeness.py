"""Critic-likeness: can a reader tell an arm's replies from real critics' quotes of the same films?

    two_sample_test(replies, quotes, films)   # cross-validated classifier accuracy, 95% interval; 0.5 = can't tell
    mauve_score(quote_vectors, reply_vectors) # MAUVE on MiniLM vectors: 1 = same distribution, near 0 = apart
    length_summary(texts)                     # words: 25th percentile, median, 75th percentile
    opening_share(texts)                      # share opening with the same three words as another, per 200
    pick_quotes(store, requests, shown, seed) # one real quote per request, of its film (what the arm is set beside)

Every measure compares an arm's replies to requests about held-out films with as many critics' quotes of the
same films, drawn per film (docs/critic-likeness.md explains each one).
"""
from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from assistant.data.ngrams import distinct_n, tokenize
from assistant.data.openings import OPENING_WORDS  # the opening the decoding rule draws is the one measured
from assistant.evaluation.metrics import rounded, wilson_interval

log = logging.getLogger(__name__)

OPENING_PER = 200  # the opening share is read at this many replies (fewer replies share fewer openings)
FOLDS = 5
MIN_MAUVE = 10  # fewer texts a side and MAUVE's histogram has one or two buckets: nothing to read
MISSING_MAUVE = "MAUVE not measured: the mauve-text package is not installed; pip install mauve-text"


# ---- the classifier two-sample test --------------------------------------------------------------

def two_sample_test(replies: Sequence[str], quotes: Sequence[str], films: Sequence[str] | None = None,
                    seed: int = 0) -> dict[str, Any]:
    """Accuracy of a classifier telling replies from quotes, each text predicted by a model that never saw it.

    TF-IDF on words (1-2 grams) and characters (2-5 grams, punctuation and spacing included) feeds a logistic
    regression. With `films` (one per text, replies then quotes), folds keep a film whole, so the classifier must
    learn how replies are written, not which films they are about. 0.5 = indistinguishable."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline, make_union

    texts = [*replies, *quotes]
    labels = np.array([1] * len(replies) + [0] * len(quotes))
    smaller = min(len(replies), len(quotes))
    if smaller < 2:
        return {"n_replies": len(replies), "n_quotes": len(quotes), "accuracy": None, "ci95": None, "folds": 0}
    groups = list(films) if films is not None else None
    if groups is not None and len(groups) != len(texts):
        raise ValueError(f"{len(groups)} films for {len(texts)} texts")
    if groups is not None and len(set(groups)) >= 2:
        folds = min(FOLDS, len(set(groups)))
        cv = GroupKFold(n_splits=folds)
    else:
        folds = min(FOLDS, smaller)
        cv, groups = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed), None
    features = make_union(
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, lowercase=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=False))
    # Lightly regularized: the test asks whether any difference can be learned, not for a cautious verdict.
    model = make_pipeline(features, LogisticRegression(max_iter=2000, C=4.0))
    predicted = cross_val_predict(model, texts, labels, cv=cv, groups=groups)
    hits = int((predicted == labels).sum())
    interval = wilson_interval(hits, len(texts))
    return {"n_replies": len(replies), "n_quotes": len(quotes), "accuracy": rounded(hits / len(texts)),
            "ci95": [rounded(v) for v in interval] if interval else None, "folds": folds}


# ---- MAUVE ---------------------------------------------------------------------------------------

def mauve_score(quote_vectors: np.ndarray, reply_vectors: np.ndarray, seed: int = 25) -> dict[str, Any]:
    """MAUVE (Pillutla et al. 2021, the authors' `mauve-text` package) between the critics' quotes (P) and the
    replies (Q) on precomputed embeddings: both are quantized into about n/10 k-means buckets after PCA, and
    the area under the divergence frontier of the two histograms is the score (1 = same distribution)."""
    p, q = np.asarray(quote_vectors, dtype=np.float32), np.asarray(reply_vectors, dtype=np.float32)
    if min(len(p), len(q)) < MIN_MAUVE:
        return {"mauve": None, "buckets": None, "note": f"fewer than {MIN_MAUVE} texts a side"}
    try:
        import mauve
    except ImportError:
        log.warning(MISSING_MAUVE)
        return {"mauve": None, "buckets": None, "note": MISSING_MAUVE}
    out = mauve.compute_mauve(p_features=p, q_features=q, seed=seed, verbose=False)
    return {"mauve": rounded(float(out.mauve)), "buckets": int(out.num_buckets), "note": None}


# ---- length, variety, openings -------------------------------------------------------------------

def length_summary(texts: Sequence[str]) -> dict[str, Any]:
    """Words per text: 25th percentile, median and 75th percentile (linear interpolation, as numpy does)."""
    if not texts:
        return {"n": 0, "p25": None, "median": None, "p75": None}
    counts = np.array([len(tokenize(t)) for t in texts], dtype=float)
    p25, median, p75 = np.percentile(counts, [25, 50, 75])
    return {"n": len(texts), "p25": float(p25), "median": float(median), "p75": float(p75)}


def opening(text: str) -> tuple[str, ...]:
    return tuple(tokenize(text)[:OPENING_WORDS])


def opening_share(texts: Sequence[str], per: int = OPENING_PER) -> dict[str, Any]:
    """Share of texts that open with the same three words as another text of the set, read at `per` texts.

    The more texts, the more chances to share: a set larger than `per` is read as the expected share in a random
    `per` of them (rarefaction: a text with c - 1 twins keeps at least one of them with probability
    1 - C(n-c, per-1) / C(n-1, per-1)), so 1,000 replies compare with 200. A smaller set is read as it is,
    and `per` says at how many."""
    openings = [opening(t) for t in texts if tokenize(t)]
    n = len(openings)
    if n < 2:
        return {"n": n, "per": n, "share": None}
    size = min(per, n)
    twins = Counter(openings)
    total = math.comb(n - 1, size - 1)
    keep = [1 - math.comb(n - twins[o], size - 1) / total for o in openings]
    return {"n": n, "per": size, "share": rounded(float(np.mean(keep)))}


def top_openings(texts: Sequence[str], n: int = 3) -> list[list[Any]]:
    """The most repeated three-word openings, with how many texts open with each (only those shared)."""
    counts = Counter(" ".join(opening(t)) for t in texts if tokenize(t))
    return [[o, c] for o, c in counts.most_common(n) if c > 1]


def writing_summary(texts: Sequence[str]) -> dict[str, Any]:
    """What a reader sees of a set of texts at a glance: length, variety of words, openings."""
    nonempty = [t for t in texts if t.strip()]
    return {"length_words": length_summary(texts), "distinct_1": rounded(distinct_n(nonempty, 1)),
            "distinct_2": rounded(distinct_n(nonempty, 2)), "opening": opening_share(texts),
            "top_openings": top_openings(texts)}


# ---- the critics' side ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Quote:
    request_id: str
    movie_key: str
    doc_id: str
    text: str
    sentiment: str | None


def film_reviews(store: Any, movie_key: str) -> list[tuple[str, str, str | None]]:
    """(doc_id, text, sentiment) of a film's reviews, a review's chunks joined back together."""
    rows = store.sql("SELECT doc_id, text, sentiment FROM docs WHERE movie_key = ? AND kind = 'review' ORDER BY pos",
                     (movie_key,))
    joined: dict[str, list[Any]] = {}
    for doc_id, text, sentiment in rows:
        joined.setdefault(doc_id, [[], sentiment])[0].append(text)
    return [(d, " ".join(parts), sentiment) for d, (parts, sentiment) in joined.items()]


def pick_quotes(store: Any, requests: Sequence[Any], shown: Mapping[str, set[str]], seed: int) -> dict[str, Quote]:
    """One critic's quote per request naming a film: a review of that film, each drawn once, in the asked
    sentiment when the film has one left, and preferably one no arm was shown for that request (a reply that
    copies its context must not meet its own source on the critics' side). Requests without a film get none."""
    by_film: dict[str, list[Any]] = {}
    for r in requests:
        if r.movie_key:
            by_film.setdefault(r.movie_key, []).append(r)
    quotes: dict[str, Quote] = {}
    for key in sorted(by_film):
        pool = film_reviews(store, key)
        random.Random(f"{seed}:{key}").shuffle(pool)
        used: set[str] = set()
        for r in by_film[key]:
            seen = shown.get(r.id, set())
            fresh = [p for p in pool if p[0] not in used]
            ranked = sorted(fresh, key=lambda p: (p[2] != r.sentiment, p[0] in seen))  # stable: the shuffle within
            if not ranked:
                continue  # the film has fewer reviews than requests: this request goes unpaired
            doc_id, text, sentiment = ranked[0]
            used.add(doc_id)
            quotes[r.id] = Quote(r.id, key, doc_id, text, sentiment)
    return quotes


def shuffled_pairs(pairs: Sequence[tuple[str, str, str]], n: int = 10, seed: int = 0) -> list[dict[str, str]]:
    """Ten (film, quote, reply) pairs with the two texts in a coin-flip order each; `reply` says which is the
    reply (the key a reader checks after guessing)."""
    rng = random.Random(seed)
    chosen = rng.sample(list(pairs), k=min(n, len(pairs)))
    out = []
    for film, quote, reply in chosen:
        reply_first = rng.random() < 0.5
        a, b = (reply, quote) if reply_first else (quote, reply)
        out.append({"film": film, "a": a, "b": b, "reply": "A" if reply_first else "B"})
    return out
