"""Critic-likeness of each arm, against critics' quotes of the same films drawn from the store.

    likeness = CriticLikeness(store, requests, turns, seed, vocabulary_cache=path)
    result["critics"] = likeness.critics()          # the quotes' own length, variety and openings
    result[arm]["critic_likeness"] = likeness.arm(spec, turns[arm], requests)
    likeness.pairs(turns["rag"], requests)          # ten shuffled quote / reply pairs for the report

Only requests about held-out films count (the model never trained on their reviews); when a run asked about
none, every request naming a film does, and `group` says so.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.data.english import english_words
from assistant.data.garbled import GarbledCheck, store_vocabulary
from assistant.evaluation import critic_likeness as cl
from assistant.evaluation.arms import ArmSpec, Turn
from assistant.evaluation.requests import EvalRequest

log = logging.getLogger(__name__)


def focus(requests: Sequence[EvalRequest]) -> tuple[list[int], str]:
    """Positions of the requests critic-likeness reads, and which group they are."""
    held = [i for i, r in enumerate(requests) if r.group == "held_out" and r.movie_key]
    return (held, "held_out") if held else ([i for i, r in enumerate(requests) if r.movie_key], "all movies")


def shown_documents(requests: Sequence[EvalRequest], turns: Mapping[str, Sequence[Turn]]) -> dict[str, set[str]]:
    """Per request, the documents any arm retrieved for it."""
    shown: dict[str, set[str]] = {r.id: set() for r in requests}
    for arm_turns in turns.values():
        for r, t in zip(requests, arm_turns):
            shown[r.id].update(s.get("doc_id") for s in t.sources if s.get("doc_id"))
    return shown


def reply_context(request: EvalRequest, turn: Turn) -> list[str]:
    """What the model was shown for this reply: the request, and its retrieved documents with their labels."""
    fields = ("text", "critic", "publication", "movie")
    return [request.text, *(str(s.get(f)) for s in turn.sources for f in fields if s.get(f))]


class CriticLikeness:
    """The critics' side (one quote per request, the same for every arm) and the checks shared by the arms."""

    def __init__(self, store: Any, requests: Sequence[EvalRequest], turns: Mapping[str, Sequence[Turn]],
                 seed: int, *, vocabulary_cache: Path | None = None, garbled: GarbledCheck | None = None) -> None:
        self.store, self.seed = store, seed
        self.idx, self.group = focus(requests)
        chosen = [requests[i] for i in self.idx]
        self.quotes = cl.pick_quotes(store, chosen, shown_documents(requests, turns), seed)
        self.garbled = garbled or GarbledCheck(english_words(), store_vocabulary(store, vocabulary_cache))
        paired = [r for r in chosen if r.id in self.quotes]
        self.quote_vectors = dict(zip([r.id for r in paired], self._embed([self.quotes[r.id].text for r in paired])))
        log.info("critic-likeness: %d quotes of %d films", len(self.quotes),
                 len({q.movie_key for q in self.quotes.values()}))

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        embeddings = getattr(self.store, "embeddings", None)
        if not texts or embeddings is None:
            return np.zeros((len(texts), getattr(self.store, "dim", 0)), dtype=np.float32)
        return np.asarray(embeddings.embed_documents(list(texts)), dtype=np.float32)

    def critics(self) -> dict[str, Any]:
        """The critics' quotes read like the arms: the baseline each arm's writing numbers stand beside."""
        texts = [q.text for q in self.quotes.values()]
        return {"group": self.group, "n": len(texts), "films": len({q.movie_key for q in self.quotes.values()}),
                **cl.writing_summary(texts)}

    def arm(self, spec: ArmSpec, turns: Sequence[Turn], requests: Sequence[EvalRequest]) -> dict[str, Any]:
        """Every critic-likeness number of one arm, on the requests that have a critic's quote beside them."""
        pairs = [(requests[i], turns[i]) for i in self.idx if requests[i].id in self.quotes]
        replies = [t.text for _, t in pairs]
        quotes = [self.quotes[r.id] for r, _ in pairs]
        films = [r.movie_key or "" for r, _ in pairs]
        critic_length = cl.length_summary([q.text for q in quotes])["median"]
        writing = cl.writing_summary(replies)
        reply_median = writing["length_words"]["median"]
        with_text = [(r, t) for r, t in pairs if t.text]
        reply_vectors = self._embed([t.text for _, t in with_text])
        quote_vectors = (np.stack([self.quote_vectors[r.id] for r, _ in with_text]) if with_text
                         else np.zeros((0, reply_vectors.shape[1]), dtype=np.float32))
        return {
            "group": self.group, "n": len(pairs), "films": len(set(films)),
            "classifier": cl.two_sample_test(replies, [q.text for q in quotes], films + films, self.seed),
            "mauve": cl.mauve_score(quote_vectors, reply_vectors),
            **writing,
            "length_ratio": cl.rounded(reply_median / critic_length) if critic_length and reply_median is not None
            else None,
            "garbled": self.garbled.measure(replies, [reply_context(r, t) for r, t in pairs]),
            "rag": spec.rag,
        }

    def pairs(self, turns: Sequence[Turn], requests: Sequence[EvalRequest], n: int = 10) -> list[dict[str, str]]:
        """Ten (film, quote, reply) pairs in shuffled order each, for a reader to guess which is which."""
        rows = [(requests[i].movie or requests[i].movie_key or "", self.quotes[requests[i].id].text, turns[i].text)
                for i in self.idx if requests[i].id in self.quotes and turns[i].text]
        return cl.shuffled_pairs(rows, n, self.seed)
