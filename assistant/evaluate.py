"""Fine-tuning or RAG? Run a fixed request set through the chat chain and measure both, as a 2x2 table.

    python -m assistant.evaluate            # a few minutes on CPU: 24 requests per arm, 60 new tokens
    python -m assistant.evaluate --quick    # about one minute: 6 requests per arm, 40 new tokens
    python -m assistant.evaluate --retrieval-only   # only the retrieval numbers (no language model)

Arms (rows of the table), each answering the same seeded requests with the same sampling seeds:
``base_no_rag`` "neither", ``base_rag`` "RAG alone", ``no_rag`` "fine-tuning alone", ``rag`` "both".
The base arms are skipped when the base was trained from scratch (a random network has no "before");
the fine-tuned arms when no fine-tuned model exists yet. What was skipped and why is in ``skipped``.

Writes ``eval.md`` (paste-ready table), ``eval.json``, ``eval_replies.jsonl`` (every reply) and
``eval_arms.png``, ``eval_latency.png``, ``eval_retrieval.png`` into ``--out`` (default settings.reports_dir).

eval.json (schema 1; rates are 0-1 floats, times seconds; a metric that could not be measured is null)::

    schema, generated_at, command, quick, seed, minutes
    options        {n_requests, max_new_tokens, temperature, top_k, retrieval_queries}
    counts         {requests, generations, by_group: {seen|held_out|topic: {positive, negative}}}
    models         {tuned: {available, path, base, method, card_judge_acc, ...}, base: {available, name, kind}}
    chain_status   what Assistant.status() said (free-form)
    split          {val_share, seed, train_reviews, val_reviews, val_movies, from_model_card}: the fine-tuning
                   run's movie-disjoint split (training_data.split_by_movie), or null when no arm ran
    judge          {source, accuracy, card_accuracy, train_reviews, test_reviews, train_seconds}: trained on the
                   held-out movies' reviews (never seen in fine-tuning), accuracy on training-split reviews;
                   card_accuracy = the model card's judge (trained on the training split), a cross-check
    arm_order      ["base_no_rag", "base_rag", "no_rag", "rag"]
    rag | no_rag | base_rag | base_no_rag     one arm each, or null when skipped:
        label, model ("tuned"|"base"), rag (bool), n, empty, errors, mean_words, modes {chain mode: count}
        sentiment_accuracy, sentiment_accuracy_by_group {seen, held_out, topic},
        sentiment_accuracy_card_judge (null without a model card judge)
        request_understood          share whose parsed sentiment and movie match the request
        movie_relevance {n, cosine_margin, closer_share, uses_movie_detail, uses_movie_detail_chance}
        grounding {context ("own sources"|"sources of arm X"), n, unigram, bigram, unigram_chance, bigram_chance}
        distinct_1, distinct_2, copy_rate_8gram (vs training reviews), copy_rate_8gram_context (RAG arms)
        sources {n, movie_match, sentiment_match}        (RAG arms, requests naming a movie)
        latency {first_token_s: {p50, p95, mean, n}, total_s: {...}, retrieval_s: {...}}
        samples [{id, group, request, reply}]            the first few replies
    skipped        {arm key: reason}
    retrieval      {queries, movies, ks, min_reviews, recall@4, recall@10, precision@4, precision@10, mrr@10,
                    mmr: {same scores}, chance: {recall@k, precision@k of random retrieval},
                    sentiment_filter_precision, movie_filter_precision, filter_queries, seconds} or null;
                    recall@k = share of query reviews with another review of the same movie in the top k
    notes          [strings]
    machine        {platform, cpus, torch_threads, cuda, load_avg_start, load_avg_end}: context for the latencies
    store          {reviews, chunks, titled_movies}
    charts         {arms, latency, retrieval}: PNG file names beside eval.json
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from assistant import eval_metrics as em
from assistant.eval_set import EvalRequest, RequestSet, build_request_set, store_titles
from assistant.guidance import guidance_arg
from assistant.metrics import NgramIndex, distinct_n, tokenize
from assistant.prompts import format_context_item
from assistant.records import movie_key as key_of

log = logging.getLogger(__name__)

SCHEMA = 1
COMMAND = "python -m assistant.evaluate"


@dataclass(frozen=True)
class ArmSpec:
    key: str
    label: str
    model: str  # the chain's model argument
    rag: bool


ARMS: dict[str, ArmSpec] = {a.key: a for a in (
    ArmSpec("base_no_rag", "neither", "base", False),
    ArmSpec("base_rag", "RAG alone", "base", True),
    ArmSpec("no_rag", "fine-tuning alone", "tuned", False),
    ArmSpec("rag", "both", "tuned", True),
)}
ARM_ORDER: tuple[str, ...] = tuple(ARMS)
PAIRED_RAG = {"no_rag": ("rag", "base_rag"), "base_no_rag": ("base_rag", "rag")}


@dataclass(frozen=True)
class EvalOptions:
    n_requests: int = 24
    max_new_tokens: int = 60
    temperature: float = 0.8  # the chat's default: measure what users get
    top_k: int | None = None  # None: settings.top_k, as in the chat
    retrieval_queries: int = 300
    filter_queries: int = 100
    seed: int = 2024
    quick: bool = False
    samples: int = 4
    guidance: float | None = None  # sentiment guidance; None: settings.sentiment_guidance, as in the chat

    @classmethod
    def quick_run(cls, **overrides: Any) -> EvalOptions:
        return cls(**{"n_requests": 6, "max_new_tokens": 40, "retrieval_queries": 60, "filter_queries": 30,
                      "quick": True, **overrides})


@dataclass
class Turn:
    """One request answered by one arm, as the chat returned it."""

    request_id: str
    text: str = ""
    sources: list[dict] = field(default_factory=list)
    parsed: dict = field(default_factory=dict)
    mode: str | None = None
    model: str | None = None
    first_token_s: float | None = None
    total_s: float | None = None
    retrieval_s: float | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None


def as_dict(obj: Any) -> dict:
    """Reply parts may be dicts, dataclasses or objects with to_dict(); read them all the same way."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if is_dataclass(obj):
        return asdict(obj)
    return dict(vars(obj))


# ---- which arms can run --------------------------------------------------------------------------

def read_card(settings: Any) -> dict | None:
    from assistant.bases import CARD_FILENAME, tuned_dir

    folder = tuned_dir(settings)
    if not (folder / "config.json").exists() or not any(folder.glob("*.safetensors")):
        return None
    path = folder / CARD_FILENAME
    return json.loads(path.read_text()) if path.exists() else {}


def plan_arms(card: dict | None, status: dict, settings: Any) -> tuple[list[str], dict[str, str], dict]:
    """Arms to run, arms skipped with the reason, and what is known about the two models.

    A model the chain cannot serve is skipped rather than run: the chain would quietly answer with the
    other model, and the row would measure the wrong thing.
    """
    models = status.get("models") if isinstance(status.get("models"), dict) else {}
    tuned_status, base_status = as_dict(models.get("tuned")), as_dict(models.get("base"))
    tuned = card is not None and tuned_status.get("available", True) is not False
    base_name = str((card or {}).get("base") or base_status.get("name") or settings.base_model)
    base_kind = "scratch" if "scratch" in base_name.lower() else base_name
    skipped: dict[str, str] = {}
    run: list[str] = []
    for key in ARM_ORDER:
        spec = ARMS[key]
        if spec.model == "tuned" and card is None:
            skipped[key] = "no fine-tuned model yet (train one: python -m assistant.finetune)"
        elif spec.model == "tuned" and not tuned:
            skipped[key] = f"the chain could not load the fine-tuned model ({tuned_status.get('error')})"
        elif spec.model == "base" and base_kind == "scratch":
            skipped[key] = "the base was trained from scratch: an untrained network has no 'before' row"
        elif spec.model == "base" and base_status.get("available") is False:
            skipped[key] = f"the chain could not load the base model ({base_status.get('error')})"
        else:
            run.append(key)
    info = {"tuned": {"available": tuned, **_card_summary(card, settings)},
            "base": {"available": not any(ARMS[k].model == "base" for k in skipped), "name": base_name,
                     "kind": base_kind}}
    return run, skipped, info


def _card_summary(card: dict | None, settings: Any) -> dict:
    from assistant.bases import tuned_dir

    if card is None:
        return {}
    keys = ("base", "method", "params", "train_minutes", "train_examples", "judge_acc", "sentiment_acc",
            "evaluated_at")
    return {"path": str(tuned_dir(settings)), **{k: card.get(k) for k in keys if k in card}}


# ---- asking the chain ----------------------------------------------------------------------------

def ask(assistant: Any, session_id: str, request: EvalRequest, spec: ArmSpec, options: EvalOptions,
        max_new_tokens: int | None = None) -> Turn:
    """One request through the chain's stream, timed as the user sees it (first text, then the whole reply)."""
    turn = Turn(request.id)
    kwargs = dict(rag=spec.rag, model=spec.model, top_k=options.top_k, temperature=options.temperature,
                  max_new_tokens=max_new_tokens or options.max_new_tokens, seed=request.seed, remember=False,
                  drafts=1,  # the model as it streams, whatever MRA_DRAFTS says: best-of-n would be its own arm
                  guidance=options.guidance)
    started = time.perf_counter()
    reply = None
    try:
        for item in assistant.stream(session_id, request.text, **kwargs):
            if isinstance(item, str):
                if item.strip() and turn.first_token_s is None:
                    turn.first_token_s = time.perf_counter() - started
            else:
                reply = item
    except Exception as exc:  # one failed reply is a miss in every metric, not the end of the run
        log.warning("%s %s failed: %s", spec.key, request.id, exc)
        turn.error = f"{type(exc).__name__}: {exc}"
    turn.total_s = time.perf_counter() - started
    if reply is not None:
        turn.text = (getattr(reply, "text", "") or "").strip()
        turn.sources = [as_dict(s) for s in getattr(reply, "sources", None) or []]
        turn.parsed = as_dict(getattr(reply, "request", None))
        turn.mode, turn.model = getattr(reply, "mode", None), getattr(reply, "model", None)
        timings = as_dict(getattr(reply, "timings", None))
        turn.retrieval_s = timings.get("retrieval_s")
        turn.notes = [str(n) for n in getattr(reply, "notes", None) or []]
    if turn.first_token_s is None and turn.text:
        turn.first_token_s = turn.total_s  # the whole reply arrived at once
    return turn


def run_arms(assistant: Any, keys: Sequence[str], requests: Sequence[EvalRequest], options: EvalOptions,
             run_id: str) -> dict[str, list[Turn]]:
    """Every request through every arm, one at a time (what a chat user waits for), each in a fresh session.

    Arms take turns request by request, so a machine that gets busier or quieter during the run, or a model
    that speeds up once warm, weighs on every arm alike instead of on whichever ran first.
    """
    for key in keys:  # untimed warm-up: models and the embedding model load on first use
        ask(assistant, f"eval-{run_id}-{key}-warmup", requests[0], ARMS[key], options, max_new_tokens=1)
    turns: dict[str, list[Turn]] = {key: [] for key in keys}
    started = time.perf_counter()
    for i, request in enumerate(requests):
        for key in keys:
            turns[key].append(ask(assistant, f"eval-{run_id}-{key}-{request.id}", request, ARMS[key], options))
            log.info("[%d/%d] %s %s -> %r", i + 1, len(requests), key, request.id, turns[key][-1].text[:70])
    log.info("%d replies in %.0f s", len(requests) * len(keys), time.perf_counter() - started)
    return turns


def unusable(spec: ArmSpec, turns: Sequence[Turn]) -> str | None:
    """Why an arm's replies do not measure the arm: the chain fell back to the other model, or every request failed."""
    wrong = [t.model for t in turns if t.model and t.model != spec.model]
    if wrong:
        return (f"the chain answered {len(wrong)} of {len(turns)} requests with the {wrong[0]} model instead of "
                f"the {spec.model} model")
    if turns and all(t.error for t in turns):
        return f"every request failed ({turns[0].error})"
    return None


# ---- scoring -------------------------------------------------------------------------------------

class Scorer:
    """What scoring needs from the store and training data, built once and shared by every arm."""

    def __init__(self, store: Any, judge: Any, train_texts: Sequence[str], background: Sequence[Any],
                 seed: int, n_other: int = 2000, card_judge: Any = None) -> None:
        self.store, self.judge, self.card_judge = store, judge, card_judge
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
        self._own: dict[str, np.ndarray] = {}
        log.info("scorer ready: %d training 8-grams, %d background reviews (%.0f s)",
                 len(self.copy_index), len(self.background), time.perf_counter() - started)

    def _vectors(self, positions: Sequence[int]) -> np.ndarray:
        if len(positions) == 0:
            return np.zeros((0, self.store.index.d), dtype=np.float32)
        return np.vstack([self.store.index.reconstruct(int(p)) for p in positions])

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
            return np.zeros((0, self.store.index.d), dtype=np.float32)
        return np.asarray(self.store.embeddings.embed_documents(list(texts)), dtype=np.float32)

    # -- per arm ---------------------------------------------------------------------------------
    def score(self, spec: ArmSpec, turns: Sequence[Turn], requests: Sequence[EvalRequest],
              context: dict[str, list[str]], context_from: str | None, samples: int) -> dict[str, Any]:
        texts = [t.text for t in turns]
        nonempty = [t for t in texts if t]
        wanted = [r.sentiment for r in requests]
        by_group = {g: [i for i, r in enumerate(requests) if r.group == g] for g in ("seen", "held_out", "topic")}
        result: dict[str, Any] = {
            "label": spec.label, "model": spec.model, "rag": spec.rag, "n": len(turns),
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
    from assistant.training_data import DataConfig, review_docs, split_by_movie

    data = DataConfig(**(card or {}).get("data_config", {}))
    return data, split_by_movie(review_docs(store.iter_documents(kind="review"), data), data)


def load_judge(settings: Any, card: dict | None, split: Any, seed: int,
               n_test: int = 5000) -> tuple[Any, Any, dict[str, Any]]:
    """(judge, card judge or None, info): the judge is trained on reviews the fine-tuned model never saw.

    Those are the held-out movies' reviews. A judge trained on the fine-tuning data could reward a model
    for echoing phrases it memorized with it, favouring the fine-tuned arms. Its accuracy is measured on
    training-split reviews: other movies, and texts the judge never saw. The model card's judge (trained on
    the training split) is kept as a cross-check.
    """
    from assistant.bases import tuned_dir
    from assistant.judge import SentimentJudge
    from assistant.model_card import JUDGE_BASENAME

    test_docs = random.Random(seed).sample(split.train, k=min(n_test, len(split.train)))
    train_docs, source = split.val, "trained here on the held-out movies' reviews (never seen in fine-tuning)"
    if len({d.metadata["sentiment"] for d in train_docs}) < 2:
        train_docs, test_docs = split.train, []  # a toy store: no usable held-out movies
        source = "trained here on the training split (too few held-out reviews); accuracy on a 10% holdout"
    started = time.perf_counter()
    judge = SentimentJudge.train([d.page_content for d in train_docs], [d.metadata["sentiment"] for d in train_docs],
                                 eval_texts=[d.page_content for d in test_docs] or None,
                                 eval_labels=[d.metadata["sentiment"] for d in test_docs] or None, seed=seed)
    info: dict[str, Any] = {"source": source, "accuracy": em.rounded(judge.accuracy), "train_reviews": len(train_docs),
                            "test_reviews": len(test_docs), "train_seconds": round(time.perf_counter() - started, 1),
                            "card_accuracy": None}
    card_judge = None
    path = tuned_dir(settings) / JUDGE_BASENAME
    if card is not None and path.with_suffix(".json").exists():
        card_judge = SentimentJudge.load(path)
        info["card_accuracy"] = em.rounded(card_judge.accuracy)  # its own number: on the held-out movies
    return judge, card_judge, info


# ---- the whole run -------------------------------------------------------------------------------

def _open_assistant(settings: Any) -> Any:
    from assistant.chain import Assistant

    return Assistant.load(settings)


def _store_of(assistant: Any, settings: Any) -> Any:
    """The chain's own store, with its embedding model loaded (the chain then uses that one), else a fresh one."""
    from assistant.embeddings import make_embeddings
    from assistant.store import ReviewStore

    store = getattr(assistant, "store", None) if assistant is not None else None
    if store is None:
        return ReviewStore.open(settings, make_embeddings(settings))
    if store.embeddings is None:  # the chain loads it on the first retrieval; one copy in memory, not two
        store.embeddings = make_embeddings(settings)
    return store


def _status(assistant: Any) -> dict:
    try:
        status = assistant.status()
    except Exception as exc:  # a status report is informative only
        return {"error": str(exc)}
    return as_dict(status) if not isinstance(status, dict) else status


def run_evaluation(settings: Any, options: EvalOptions, *, retrieval_only: bool = False,
                   assistant: Any = None) -> tuple[dict[str, Any], dict[str, list[dict]]]:
    """Everything measured, as the eval.json dict, plus every reply per arm (for eval_replies.jsonl)."""
    started = time.perf_counter()
    machine = _machine()
    notes: list[str] = []
    card = read_card(settings)
    with tempfile.TemporaryDirectory(prefix="mra-eval-") as tmp:
        if assistant is None and not retrieval_only:
            # A throwaway chat database: evaluation sessions must not appear among the user's saved chats.
            assistant = _open_assistant(settings.model_copy(update={"chats_db": Path(tmp) / "chats.sqlite"}))
        store = _store_of(assistant, settings)
        top_k = options.top_k or settings.top_k
        if options.guidance is None:
            options = replace(options, guidance=settings.sentiment_guidance)
        titles = store_titles(store)
        ks = sorted({top_k, 10})
        retrieval = em.evaluate_retrieval(store, titles, ks=ks, n_queries=options.retrieval_queries,
                                          n_filter=options.filter_queries, seed=options.seed)
        status = _status(assistant) if assistant is not None else {}
        run, skipped, models = plan_arms(card, status, settings)
        if retrieval_only:
            skipped = {k: "--retrieval-only" for k in ARM_ORDER}
            run = []
        result: dict[str, Any] = {
            "schema": SCHEMA, "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([COMMAND] + ["--quick"] * options.quick + ["--retrieval-only"] * retrieval_only),
            "quick": options.quick, "seed": options.seed,
            "options": {"n_requests": options.n_requests, "max_new_tokens": options.max_new_tokens,
                        "temperature": options.temperature, "top_k": top_k, "guidance": options.guidance,
                        "retrieval_queries": options.retrieval_queries},
            "models": models, "chain_status": status, "arm_order": list(ARM_ORDER),
            **{k: None for k in ARM_ORDER}, "skipped": skipped, "retrieval": retrieval,
            "store": {"reviews": int((store.kinds == "review").sum()), "chunks": int(store.total),
                      "titled_movies": len(titles)},
        }
        replies: dict[str, list[dict]] = {}
        if run:
            data, split = load_split(store, card)
            result["split"] = {"val_share": data.val_share, "seed": data.seed, "train_reviews": len(split.train),
                               "val_reviews": len(split.val), "val_movies": len(split.val_movies),
                               "from_model_card": bool(card and card.get("data_config"))}
            if card is None:
                notes.append("No fine-tuned model: only the base model's arms were run; the split is the default one.")
            judge, card_judge, result["judge"] = load_judge(settings, card, split, options.seed)
            requests = build_request_set(titles, {d.metadata.get("movie_key") for d in split.train},
                                         split.val_movies, options.n_requests, options.seed)
            notes += requests.notes
            result["counts"] = {"requests": len(requests.requests), "generations": len(requests.requests) * len(run),
                                "by_group": requests.counts()}
            turns = run_arms(assistant, run, requests.requests, options, str(options.seed))
            for key in list(run):
                reason = unusable(ARMS[key], turns[key])
                if reason:
                    skipped[key] = reason
                    run.remove(key)
                    del turns[key]
                elif any(t.error for t in turns[key]):
                    notes.append(f"{key}: {sum(bool(t.error) for t in turns[key])} requests failed and count as "
                                 f"misses (first: {next(t.error for t in turns[key] if t.error)})")
            background = _background(split.train + split.val, options.seed)
            scorer = Scorer(store, judge, [d.page_content for d in split.train], background, options.seed,
                            card_judge=card_judge)
            for key in run:
                context, context_from = _context_for(key, turns, requests)
                result[key] = scorer.score(ARMS[key], turns[key], requests.requests, context, context_from,
                                           options.samples)
                replies[key] = [{"arm": key, **r.to_dict(), **asdict(t)} for r, t in zip(requests.requests, turns[key])]
        else:
            result["judge"], result["split"] = None, None
            result["counts"] = {"requests": 0, "generations": 0, "by_group": {}}
        for key, reason in skipped.items():
            notes.append(f"{key} ({ARMS[key].label}) not run: {reason}")
        result["notes"] = notes
        result["minutes"] = round((time.perf_counter() - started) / 60, 2)
        result["machine"] = {**machine, "load_avg_end": _load_avg()}
    return result, replies


def _load_avg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not on every platform
        return None


def _machine() -> dict[str, Any]:
    """Latency depends on the machine and on what else runs on it: recorded beside the numbers."""
    import torch

    return {"platform": platform.platform(terse=True), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(), "load_avg_start": _load_avg()}


def _background(docs: Sequence[Any], seed: int, n: int = 3000) -> list[Any]:
    """A fixed sample of reviews: what 'rare' means for movie details, and the chance level of grounding."""
    return random.Random(seed).sample(list(docs), k=min(n, len(docs)))


def _context_for(key: str, turns: dict[str, list[Turn]],
                 requests: RequestSet) -> tuple[dict[str, list[str]], str | None]:
    """The context each reply is checked against, laid out as the model saw it: its own sources, or (no-RAG
    arms) those a RAG arm retrieved for the same request."""
    sources_arm = key if ARMS[key].rag else next((k for k in PAIRED_RAG[key] if k in turns), None)
    if sources_arm is None:
        return {}, None
    context = {r.id: [format_context_item(s, s["text"], show_movie=key_of(s.get("movie")) != r.movie_key)
                      for s in t.sources if s.get("text")]
               for r, t in zip(requests.requests, turns[sources_arm])}
    return context, "own sources" if sources_arm == key else f"sources of arm {sources_arm}"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="about one minute: 6 requests per arm, 40 new tokens")
    p.add_argument("--out", type=Path, default=None, help="report folder (default: settings.reports_dir)")
    p.add_argument("--n", type=int, default=None, help="requests per arm (default 24, quick 6)")
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--retrieval-queries", type=int, default=None)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--guidance", type=guidance_arg, default=None, metavar="G",
                   help="sentiment guidance for every arm (default: settings.sentiment_guidance, as the chat)")
    p.add_argument("--retrieval-only", action="store_true", help="only the retrieval metrics (no language model)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice, as the app runs; 1 is steadier on a busy machine)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def options_from(args: argparse.Namespace) -> EvalOptions:
    overrides = {k: v for k, v in (("n_requests", args.n), ("max_new_tokens", args.max_new_tokens),
                                   ("retrieval_queries", args.retrieval_queries)) if v is not None}
    overrides["seed"] = args.seed
    overrides["guidance"] = args.guidance
    return EvalOptions.quick_run(**overrides) if args.quick else EvalOptions(**overrides)


def main(argv: Sequence[str] | None = None, settings: Any = None) -> int:
    from assistant.eval_report import write_reports
    from assistant.logs import setup_logging
    from assistant.settings import get_settings
    from assistant.chain import AssistantError
    from assistant.store import StoreError

    args = parse_args(argv)
    setup_logging(args.verbose)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    settings = settings or get_settings()
    out = args.out or Path(settings.reports_dir)
    try:
        result, replies = run_evaluation(settings, options_from(args), retrieval_only=args.retrieval_only)
    except (StoreError, AssistantError) as exc:
        log.error("%s", exc)
        return 2
    paths = write_reports(result, replies, out)
    log.info("wrote %s", ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
