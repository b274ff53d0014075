"""Scoring the 2x2 evaluation's replies: sentiment, relevance, grounding, copying, sources and latency."""
from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from assistant.data.facts import movie_card
from assistant.data.ngrams import NgramIndex, distinct_n, tokenize
from assistant.data.records import movie_key as key_of
from assistant.evaluation import metrics as em
from assistant.evaluation.arms import ArmSpec, Turn
from assistant.evaluation.requests import EvalRequest
from assistant.model.prompts import format_context_item

log = logging.getLogger(__name__)


class Scorer:
    """What scoring needs from the store and training data, built once and shared by every arm."""

    def __init__(self, store: Any, judge: Any, train_texts: Sequence[str], background: Sequence[Any],
                 seed: int, n_other: int = 2000, card_judge: Any = None) -> None:
        self.store, self.judge, self.card_judge = store, judge, card_judge
        self._words_judge = getattr(judge, "words", judge)  # the panel's TF-IDF half, reported on its own too
        started = time.perf_counter()
        self.copy_index = NgramIndex(train_texts, n=8)
        self.background = [d.page_content for d in background]
        # Chance-level context is laid out as the model sees retrieved reviews, critic names included.
        self.background_items = [format_context_item(d.metadata, d.page_content, show_movie=True) for d in background]
        self.df, _ = em.document_frequency(self.background)
        reviews = np.flatnonzero(store.kinds == "review")
        rng = np.random.default_rng(seed)
        self.other_positions = np.sort(rng.choice(reviews, size=min(n_other, len(reviews)), replace=False))
        self.other_vectors = self._vectors(self.other_positions)
        self.other_keys = store.movie_keys[self.other_positions]
        self._terms: dict[str, set[str]] = {}
        self._data: dict[str, list[str]] = {}
        self._own: dict[str, np.ndarray] = {}
        log.info("scorer ready: %d training 8-grams, %d background reviews (%.0f s)",
                 len(self.copy_index), len(self.background), time.perf_counter() - started)

    def _vectors(self, positions: Sequence[int]) -> np.ndarray:
        if len(positions) == 0:
            return np.zeros((0, self.store.dim), dtype=np.float32)
        return self.store.vectors_at(positions)

    def terms(self, key: str, title: str | None) -> set[str]:
        if key not in self._terms:
            rows = self.store.sql("SELECT text, kind FROM docs WHERE movie_key = ?", (key,))
            self._terms[key] = em.specific_terms([t for t, kind in rows if kind == "review"], title,
                                                 (self.df, len(self.background)),
                                                 facts=[t for t, kind in rows if kind == "movie"])
        return self._terms[key]

    def own_vectors(self, key: str) -> np.ndarray:
        if key not in self._own:
            positions = self.store.movie_positions(key, kind="review")[:500]
            self._own[key] = self._vectors(positions)
        return self._own[key]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.store.dim), dtype=np.float32)
        return np.asarray(self.store.embeddings.embed_documents(list(texts)), dtype=np.float32)

    # -- per arm ---------------------------------------------------------------------------------
    def score(self, spec: ArmSpec, turns: Sequence[Turn], requests: Sequence[EvalRequest],
              context: dict[str, list[str]], context_from: str | None, samples: int,
              retrieved: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """Every number of one arm. `context` holds each request's context lines as the model saw them (the
        paired RAG arm's for an arm without retrieval), `retrieved` the same documents' plain texts."""
        texts = [t.text for t in turns]
        nonempty = [t for t in texts if t]
        wanted = [r.sentiment for r in requests]
        by_group = {g: [i for i, r in enumerate(requests) if r.group == g] for g in ("seen", "held_out", "topic")}
        held = [i for i in by_group["held_out"] if requests[i].movie_key]
        focus = held or [i for i, r in enumerate(requests) if r.movie_key]
        result: dict[str, Any] = {
            "label": spec.label, "model": spec.model, "rag": spec.rag, "n": len(turns),
            "specificity": self.specificity(texts, requests, focus, "held_out" if held else "all movies"),
            "faithfulness": self.faithfulness(spec, turns, requests, focus),
            "retrieved_copy": _retrieved_copy(turns, requests, retrieved or {}, context_from),
            "sentiment": em.sentiment_by_direction(texts, wanted, self.judge.predict),
            "sentiment_words_judge": em.sentiment_by_direction(texts, wanted, self._words_judge.predict),
            "empty": len(texts) - len(nonempty), "errors": sum(t.error is not None for t in turns),
            "mean_words": em.rounded(float(np.mean([len(tokenize(t)) for t in texts])) if texts else None),
            "modes": dict(Counter(str(t.mode) for t in turns)),
            "sentiment_accuracy": em.rounded(em.sentiment_accuracy(texts, wanted, self.judge.predict)),
            "sentiment_accuracy_by_group": {
                g: em.rounded(em.sentiment_accuracy([texts[i] for i in idx], [wanted[i] for i in idx],
                                                    self.judge.predict))
                if idx else None for g, idx in by_group.items()},
            "sentiment_accuracy_card_judge": em.rounded(em.sentiment_accuracy(texts, wanted, self.card_judge.predict))
            if self.card_judge is not None else None,
            "request_understood": em.rounded(_understood(turns, requests)),
            "movie_relevance": self.relevance(texts, requests),
            "grounding": self.grounding(turns, requests, context, context_from),
            "distinct_1": em.rounded(distinct_n(nonempty, 1)), "distinct_2": em.rounded(distinct_n(nonempty, 2)),
            "copy_rate_8gram": em.rounded(self.copy_index.copy_rate(nonempty)),
            "copy_rate_8gram_context": em.rounded(_context_copy_rate(turns)) if spec.rag else None,
            "sources": _source_match(turns, requests) if spec.rag else None,
            "latency": {"first_token_s": _latency([t.first_token_s for t in turns if t.text]),
                        "total_s": _latency([t.total_s for t in turns]),
                        "retrieval_s": _latency([t.retrieval_s for t in turns if t.retrieval_s is not None])},
            "samples": [{"id": r.id, "group": r.group, "request": r.text, "reply": t.text}
                        for r, t in list(zip(requests, turns))[:samples]],
        }
        return result

    def specificity(self, texts: Sequence[str], requests: Sequence[EvalRequest], idx: Sequence[int],
                    group: str) -> dict[str, Any]:
        """Share of replies using a name or rare detail of their movie (its facts and reviews); chance: the same
        replies checked against another requested movie's names and details."""
        if not idx:
            return {"group": group, "n": 0, "rate": None, "chance": None, "ci95": None}
        keys = [requests[i].movie_key for i in idx]
        terms = [self.terms(requests[i].movie_key, requests[i].movie) for i in idx]
        uses = [em.uses_terms(texts[i], t) for i, t in zip(idx, terms)]
        chance = [em.uses_terms(texts[i], terms[_other(keys, j)]) for j, i in enumerate(idx) if _other(keys, j) != j]
        interval = em.wilson_interval(sum(uses), len(uses))
        return {"group": group, "n": len(idx), "rate": em.rounded(float(np.mean(uses))),
                "chance": em.rounded(float(np.mean(chance))) if chance else None,
                "ci95": [em.rounded(v) for v in interval] if interval else None}

    def movie_data(self, key: str) -> list[str]:
        """Everything the data says about a movie: its reviews, their critics and outlets, its facts card."""
        if key not in self._data:
            rows = self.store.sql("SELECT text, json_extract(meta, '$.critic'), json_extract(meta, '$.publication'), "
                                  "json_extract(meta, '$.movie') FROM docs WHERE movie_key = ?", (key,))
            card = movie_card(self.store, key)
            self._data[key] = [x for row in rows for x in row if x] + ([card.line()] if card else [])
        return self._data[key]

    def faithfulness(self, spec: ArmSpec, turns: Sequence[Turn], requests: Sequence[EvalRequest],
                     idx: Sequence[int]) -> dict[str, Any]:
        """Capitalised names in the replies found in the movie's facts and retrieved context (RAG arms), or in any
        of its data (arms without retrieval); invented names per reply."""
        checks = []
        for i in idx:
            turn, request = turns[i], requests[i]
            if spec.rag:
                reference = [x for s in turn.sources for x in (s.get("text"), s.get("critic"), s.get("publication"),
                                                               s.get("movie")) if x]
            else:
                reference = self.movie_data(request.movie_key)
            checks.append(em.name_check(turn.text, [*reference, request.movie or "", request.topic or ""]))
        return {"group": "held_out" if all(requests[i].group == "held_out" for i in idx) and idx else "all movies",
                "reference": "facts and retrieved context" if spec.rag else "all of the movie's data",
                **em.faithfulness(checks)}

    def relevance(self, texts: Sequence[str], requests: Sequence[EvalRequest]) -> dict[str, Any]:
        """For requests naming a movie: cosine margin to its reviews, and use of its names and details."""
        idx = [i for i, r in enumerate(requests) if r.movie_key]
        if not idx:
            return {"n": 0, "cosine_margin": None, "closer_share": None, "uses_movie_detail": None,
                    "uses_movie_detail_chance": None}
        keys = [requests[i].movie_key for i in idx]
        terms = [self.terms(requests[i].movie_key, requests[i].movie) for i in idx]
        uses = [em.uses_terms(texts[i], t) for i, t in zip(idx, terms)]
        # Chance: the same reply checked against another requested movie's names and details.
        chance = [em.uses_terms(texts[i], terms[_other(keys, j)]) for j, i in enumerate(idx)
                  if _other(keys, j) != j]
        embedded = [i for i in idx if texts[i]]
        vectors = self.embed([texts[i] for i in embedded])
        margins = []
        for vec, i in zip(vectors, embedded):
            others = self.other_vectors[self.other_keys != requests[i].movie_key]
            margins.append(em.cosine_margin(vec, self.own_vectors(requests[i].movie_key), others))
        margins = [m for m in margins if not np.isnan(m)]
        return {"n": len(idx), "cosine_margin": em.rounded(float(np.mean(margins))) if margins else None,
                "closer_share": em.rounded(float(np.mean([m > 0 for m in margins]))) if margins else None,
                "uses_movie_detail": em.rounded(float(np.mean(uses))),
                "uses_movie_detail_chance": em.rounded(float(np.mean(chance))) if chance else None}

    def grounding(self, turns: Sequence[Turn], requests: Sequence[EvalRequest], context: dict[str, list[str]],
                  context_from: str | None) -> dict[str, Any]:
        """Reply words and bigrams found in the retrieved context, and in as many random reviews (chance)."""
        pairs, chance = [], []
        for turn, request in zip(turns, requests):
            refs = context.get(request.id) or []
            if not refs or not turn.text:
                continue
            rng = random.Random(request.seed)
            pairs.append((turn.text, refs))
            chance.append((turn.text, rng.sample(self.background_items, k=min(len(refs), len(self.background)))))
        grounded, random_refs = em.mean_overlap(pairs), em.mean_overlap(chance)
        return {"context": context_from, "n": grounded["n"],
                "unigram": em.rounded(grounded["unigram"]) if grounded["n"] else None,
                "bigram": em.rounded(grounded["bigram"]) if grounded["n"] else None,
                "unigram_chance": em.rounded(random_refs["unigram"]) if random_refs["n"] else None,
                "bigram_chance": em.rounded(random_refs["bigram"]) if random_refs["n"] else None}


def _other(keys: Sequence[str], j: int) -> int:
    """The next position (cyclically) whose movie differs from position j's; j itself when all are the same."""
    for step in range(1, len(keys)):
        k = (j + step) % len(keys)
        if keys[k] != keys[j]:
            return k
    return j


def _retrieved_copy(turns: Sequence[Turn], requests: Sequence[EvalRequest], retrieved: dict[str, list[str]],
                    context_from: str | None) -> dict[str, Any]:
    """Share of replies that repeat 8 words in a row from one of the documents retrieved for them (for an arm
    without retrieval: those the paired RAG arm retrieved for the same request)."""
    hits = [em.repeats_ngram(t.text, retrieved[r.id]) for t, r in zip(turns, requests)
            if t.text and retrieved.get(r.id)]
    return {"context": context_from, "n": len(hits), "rate": em.rounded(float(np.mean(hits))) if hits else None}


def _understood(turns: Sequence[Turn], requests: Sequence[EvalRequest]) -> float | None:
    parsed = [(t.parsed, r) for t, r in zip(turns, requests) if t.parsed]
    if not parsed:
        return None
    ok = [p.get("sentiment") == r.sentiment and (p.get("movie_key") or None) == r.movie_key for p, r in parsed]
    return float(np.mean(ok))


def _context_copy_rate(turns: Sequence[Turn]) -> float | None:
    found = total = 0
    for turn in turns:
        if not turn.text or not turn.sources:
            continue
        index = NgramIndex([s.get("text") or "" for s in turn.sources], n=8)
        grams = len(tokenize(turn.text)) - 7
        if grams > 0:
            found += round(index.copy_rate([turn.text]) * grams)
            total += grams
    return found / total if total else None


def _source_match(turns: Sequence[Turn], requests: Sequence[EvalRequest]) -> dict[str, Any]:
    movie, sentiment, n = [], [], 0
    for turn, request in zip(turns, requests):
        if not request.movie_key:
            continue
        n += bool(turn.sources)
        # The movie's facts document leads the context by design and has no sentiment: count reviews only.
        reviews = [s for s in turn.sources if s.get("kind", "review") == "review"]
        movie += [key_of(s.get("movie")) == request.movie_key for s in reviews]
        sentiment += [s.get("sentiment") == request.sentiment for s in reviews]
    return {"n": n, "movie_match": em.rounded(float(np.mean(movie))) if movie else None,
            "sentiment_match": em.rounded(float(np.mean(sentiment))) if sentiment else None}


def _latency(values: Sequence[float | None]) -> dict[str, float | None]:
    summary = em.latency_summary([v for v in values if v is not None])
    out: dict[str, float | None] = {k: (None if np.isnan(v) else round(v, 3)) for k, v in summary.items()}
    out["n"] = int(summary["n"])
    return out


# ---- the judge and the data split ----------------------------------------------------------------

def load_split(store: Any, card: dict | None) -> tuple[Any, Any]:
    """The fine-tuning run's own movie-disjoint split (its data config from the card), else the default one."""
    from assistant.training.examples import DataConfig, review_docs, split_by_movie

    data = DataConfig(**(card or {}).get("data_config", {}))
    return data, split_by_movie(review_docs(store.iter_documents(kind="review"), data), data)


def load_judge(settings: Any, card: dict | None, split: Any, seed: int, store: Any,
               n_test: int = 5000) -> tuple[Any, Any, dict[str, Any]]:
    """(judge, card judge or None, info): the judge is trained on reviews the fine-tuned model never saw.

    Those are the held-out movies' reviews. A judge trained on the fine-tuning data could reward a model
    for echoing phrases it memorized with it, favouring the fine-tuned arms. Its accuracy is measured on
    training-split reviews: other movies, and texts the judge never saw. The judge is a panel (TF-IDF words and
    an embedding probe on the store's stored vectors, `judge_panel.JudgePanel`); its words-only half is kept
    for a column of its own. The model card's judge (trained on the training split) is kept as a cross-check.
    """
    from assistant.evaluation.judge import SentimentJudge
    from assistant.evaluation.judge_panel import JudgePanel
    from assistant.evaluation.sentiment_control import JUDGE_BASENAME
    from assistant.model.bases import tuned_dir
    from assistant.model.sentiment_probe import SentimentProbe

    test_docs = random.Random(seed).sample(split.train, k=min(n_test, len(split.train)))
    train_docs, source = split.val, "trained here on the held-out movies' reviews (never seen in fine-tuning)"
    if len({d.metadata["sentiment"] for d in train_docs}) < 2:
        train_docs, test_docs = split.train, []  # a toy store: no usable held-out movies
        source = "trained here on the training split (too few held-out reviews); accuracy on a 10% holdout"
    started = time.perf_counter()
    texts, labels = [d.page_content for d in train_docs], [d.metadata["sentiment"] for d in train_docs]
    test_texts, test_labels = [d.page_content for d in test_docs], [d.metadata["sentiment"] for d in test_docs]
    words = SentimentJudge.train(texts, labels, eval_texts=test_texts or None, eval_labels=test_labels or None,
                                 seed=seed)
    test_vectors = _stored_vectors(store, test_docs)
    meaning = SentimentProbe.train(_stored_vectors(store, train_docs), labels,
                                   eval_vectors=test_vectors if test_docs else None, eval_labels=test_labels or None)
    judge = JudgePanel(words, meaning, store.embeddings.embed_documents)
    if test_docs:
        judge.accuracy = judge.score(test_texts, test_labels, vectors=test_vectors)
    info: dict[str, Any] = {"source": source, "kind": "panel", "accuracy": em.rounded(judge.accuracy),
                            "words_accuracy": em.rounded(words.accuracy), "meaning_accuracy": em.rounded(meaning.accuracy),
                            "train_reviews": len(train_docs), "test_reviews": len(test_docs),
                            "train_seconds": round(time.perf_counter() - started, 1), "card_accuracy": None}
    card_judge = None
    path = tuned_dir(settings) / JUDGE_BASENAME
    if card is not None and path.with_suffix(".json").exists():
        card_judge = SentimentJudge.load(path)
        info["card_accuracy"] = em.rounded(card_judge.accuracy)  # its own number: on the held-out movies
    return judge, card_judge, info


def _stored_vectors(store: Any, docs: Sequence[Any]) -> np.ndarray:
    """The store's own vectors of these reviews (first chunk each): no re-embedding of thousands of texts."""
    if not docs:
        return np.zeros((0, store.dim), dtype=np.float32)
    return np.asarray(store.vectors_for([d.metadata["doc_id"] for d in docs]), dtype=np.float32)
