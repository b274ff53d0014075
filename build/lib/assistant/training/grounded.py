"""Training examples that teach the model to use its context: names come from the context, not from memory.

A retrieval-aware example is worth most when its target review really uses what its context says: the target
names the director or a lead from the facts card, or shares a rare detail ("replicants", "the Nostromo") with the
movie's other reviews. Those examples are kept and weighted up (`DataConfig.grounded_weight` copies). An example
whose target names someone its context does not (or, without context, someone other than the movie's title) would
teach the model to produce names from memory, so it is dropped. Context examples whose target uses nothing of the
context are kept only in part (`plain_context_keep`), and examples without context stay, so RAG off still works.

Longer targets where the data has them: the same critic's distinct quotes about the same movie, with the same
verdict, are joined into one target of at most three sentences. Different critics are never joined.
"""
from __future__ import annotations

import logging
import random
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document

from assistant.data.details import Rarity, details, is_grounded, name_spans, words_of
from assistant.training.examples import (
    DataConfig,
    Example,
    Neighbours,
    context_for,
    is_duplicate,
    make_example,
)

log = logging.getLogger(__name__)

MAX_SENTENCES = 3
# `--recipe plain`: every sampled review as it comes, no grounding filter (the recipe before issue 11)
PLAIN_RECIPE = {"grounded_weight": 1, "plain_context_keep": 1.0, "names_from_context": False, "join_same_critic": False}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def grounding(target: str, context: Sequence[str], title: str | None, rarity: Rarity,
              detail_share: float) -> tuple[set[str], list[str]]:
    """(the target's names and rare details that its context has too, the target's names that nothing grounds).

    Without context only the title grounds a name. Details rarer than `detail_share` of reviews count."""
    reference = words_of([*context, title or ""])
    invented = [n for n in name_spans(target) if not is_grounded(n, reference)]
    if not context:
        return set(), invented
    shared = details(target, rarity, title, detail_share) & details(" ".join(context), rarity, title, detail_share)
    return shared, invented


def select_examples(docs: Sequence[Document], neighbours: Neighbours | None, config: DataConfig, rarity: Rarity,
                    n: int) -> tuple[list[Example], dict[str, Any]]:
    """Up to n distinct examples (half of each sentiment) from `docs` in their order, filtered and weighted as the
    module says; returns them (grounded ones repeated) and counts of what was kept and dropped, for the card."""
    rng = random.Random(config.seed)
    quota = Counter({"positive": n // 2 + n % 2, "negative": n // 2})
    counts: Counter = Counter()
    examples: list[Example] = []
    for doc in docs:
        sentiment = doc.metadata.get("sentiment")
        if quota[sentiment] <= 0:
            if all(left <= 0 for left in quota.values()):
                break
            continue
        context: list[str] = []
        if neighbours is not None and rng.random() < config.context_share:
            context = context_for(doc, neighbours, config.context_k)
        used, invented = grounding(doc.page_content, context, doc.metadata.get("movie"), rarity, config.detail_share)
        if config.names_from_context and invented:
            counts["dropped_names_not_in_context" if context else "dropped_names_without_context"] += 1
            continue
        if context and not used and rng.random() >= config.plain_context_keep:
            counts["dropped_context_unused"] += 1
            continue
        copies = config.grounded_weight if used else 1
        kind = "context_grounded" if used else ("context_unused" if context else "no_context")
        counts[kind] += 1
        quota[sentiment] -= 1
        examples += [make_example(doc, context)] * copies
    stats = {"examples": len(examples), "distinct": sum(counts[k] for k in ("context_grounded", "context_unused",
                                                                            "no_context")), **counts}
    log.info("grounded examples: %s", stats)
    rng.shuffle(examples)
    return examples, stats


def join_same_critic(docs: Sequence[Document], max_chars: int = 360) -> tuple[list[Document], int]:
    """The documents with each critic's distinct quotes about one movie (same verdict) joined into one target of
    at most three sentences and `max_chars`; near-copies of a quote are dropped; quotes of different critics, or
    of no named critic, stay as they are. Returns the documents and how many joined targets there are."""
    groups: dict[tuple, list[Document]] = {}
    order: list[tuple] = []
    for doc in docs:
        meta = doc.metadata
        key = (meta.get("movie_key"), meta.get("critic"), meta.get("sentiment"))
        if not (key[0] and key[1]):
            key = ("doc", meta.get("doc_id") or id(doc))
        if key not in groups:
            order.append(key)
        groups.setdefault(key, []).append(doc)
    out: list[Document] = []
    joined = 0
    for key in order:
        group = groups[key]
        kept: list[Document] = []
        for doc in group:
            if not any(is_duplicate(doc, other) or is_duplicate(other, doc) or _same_words(doc, other)
                       for other in kept):
                kept.append(doc)
        sentences = [s for d in kept for s in _SENTENCE_END.split(" ".join(d.page_content.split())) if s]
        if len(kept) < 2 or len(sentences) > MAX_SENTENCES or len(" ".join(sentences)) > max_chars:
            out.extend(kept)
            continue
        out.append(Document(page_content=" ".join(sentences), metadata={**kept[0].metadata, "joined_quotes": len(kept)},
                            id=kept[0].id))
        joined += 1
    return out, joined


def _same_words(a: Document, b: Document) -> bool:
    """Two pulls of one quote ('Too facile.' inside a longer version of it): most words of one are in the other."""
    wa, wb = words_of([a.page_content]), words_of([b.page_content])
    small = min(len(wa), len(wb)) or 1
    return len(wa & wb) / small > 0.6
