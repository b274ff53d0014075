"""Thin films: the held-out films as a user's own file of new films arrives, five reviews each and no facts card.

    with thin_store(store, settings, films, seed) as (thin_settings, cut):
        assistant = Assistant.load(thin_settings)     # the chat over the thin copy: it can see nothing else
        ...

The copy is a real store generation in a temporary folder, written by the store's own writer from the live
store's documents and vectors (nothing is embedded again): every other film as it is, each thin film with a
seeded five of its reviews (a long review's chunks stay together) and none of its facts documents. So the
retriever, the facts card, the critics' names and the page's "few reviews" note all see exactly what a user's
file would give them, through the same code as the chat. The live store is only read.
"""
from __future__ import annotations

import json
import logging
import random
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

log = logging.getLogger(__name__)

THIN_REVIEWS = 5  # what a user's file of a new film typically holds
_BATCH = 5000


@dataclass(frozen=True)
class ThinCut:
    """Which documents of the thin films the copy keeps, and how much it left out."""

    kept: dict[str, frozenset[str]]  # movie_key -> the review doc_ids kept
    dropped_reviews: int
    dropped_facts: int

    def keeps(self, doc_id: str, kind: str, movie_key: str | None) -> bool:
        if movie_key not in self.kept:
            return True
        return kind == "review" and doc_id in self.kept[movie_key]

    def to_dict(self) -> dict[str, Any]:
        return {"films": len(self.kept), "reviews_per_film": THIN_REVIEWS,
                "reviews_kept": sum(len(v) for v in self.kept.values()),
                "reviews_dropped": self.dropped_reviews, "facts_documents_dropped": self.dropped_facts}


def plan_cut(store: Any, films: Iterable[str], seed: int, per_film: int = THIN_REVIEWS) -> ThinCut:
    """A seeded `per_film` of each film's reviews (by review, not chunk), the same for the same seed."""
    kept: dict[str, frozenset[str]] = {}
    dropped_reviews = dropped_facts = 0
    for key in sorted(set(films)):
        rows = store.sql("SELECT DISTINCT doc_id, kind FROM docs WHERE movie_key = ?", (key,))
        reviews = sorted(d for d, kind in rows if kind == "review")
        chosen = random.Random(f"{seed}:thin:{key}").sample(reviews, k=min(per_film, len(reviews)))
        kept[key] = frozenset(chosen)
        dropped_reviews += len(reviews) - len(chosen)
        dropped_facts += sum(kind != "review" for _, kind in rows)
    return ThinCut(kept, dropped_reviews, dropped_facts)


def write_copy(store: Any, settings: Any, cut: ThinCut) -> None:
    """Every document of the live store that the cut keeps, with its stored vector, as a new store at
    settings.index_dir (FAISS files: the copy lives and dies in its temporary folder)."""
    from assistant.data.store_writer import StoreWriter

    writer = StoreWriter(settings, store.dim, rebuild=True)
    try:
        for start in range(0, store.total, _BATCH):
            rows = store.sql("SELECT pos, id, doc_id, kind, movie_key, text, meta FROM docs WHERE pos >= ? AND "
                             "pos < ? ORDER BY pos", (start, start + _BATCH))
            rows = [r for r in rows if cut.keeps(r[2], r[3], r[4])]
            if rows:
                docs = [Document(id=r[1], page_content=r[5], metadata=json.loads(r[6])) for r in rows]
                writer.add(docs, store.vectors_at([r[0] for r in rows]))
            log.info("thin store copy: %d of %d documents read", min(start + _BATCH, store.total), store.total)
        writer.commit(dict(getattr(store.manifest, "sources", {}) or {}))
    except BaseException:
        writer.abort()
        raise


@contextmanager
def thin_store(store: Any, settings: Any, films: Iterable[str], seed: int) -> Iterator[tuple[Any, ThinCut]]:
    """Settings pointing at a thin copy of the store (and a throwaway chat database), removed on exit."""
    cut = plan_cut(store, films, seed)
    with tempfile.TemporaryDirectory(prefix="mra-thin-") as tmp:
        thin = settings.model_copy(update={"index_dir": Path(tmp) / "index", "vector_store": "faiss",
                                           "chats_db": Path(tmp) / "chats.sqlite"})
        write_copy(store, thin, cut)
        log.info("thin films: %s", cut.to_dict())
        yield thin, cut


def run_thin(store: Any, settings: Any, options: Any, requests: Any, keys: list[str],
             open_assistant: Callable[[Any], Any], score: Callable[[dict, Any], dict]
             ) -> tuple[dict[str, Any], dict[str, list[dict]]]:
    """The held-out requests again, every arm answering through a chat over the thin copy, scored by `score`
    (turns per arm, the request set) as the full run is; the copy is gone when this returns. Also returns every
    reply per arm, marked `"thin": true`, for eval_replies.jsonl."""
    from assistant.evaluation.arms import ARMS, run_arms, unusable
    from assistant.evaluation.requests import RequestSet

    held = [r for r in requests.requests if r.group == "held_out" and r.movie_key]
    if not held or not keys:
        return {"requests": 0, "note": "no request about a held-out film: nothing to thin (use --groups held_out)"}, {}
    with thin_store(store, settings, {r.movie_key for r in held}, options.seed) as (thin_settings, cut):
        assistant = open_assistant(thin_settings)
        try:
            turns = run_arms(assistant, keys, held, options, f"{options.seed}-thin")
        finally:
            assistant.close()
            if getattr(assistant, "store", None) is not None:
                assistant.store.close()
    skipped = {k: reason for k in keys if (reason := unusable(ARMS[k], turns[k]))}
    turns = {k: v for k, v in turns.items() if k not in skipped}
    arms = score(turns, RequestSet(held, requests.seed))
    replies = {f"thin:{k}": [{"arm": k, "thin": True, **r.to_dict(), **asdict(t)} for r, t in zip(held, v)]
               for k, v in turns.items()}
    return {**cut.to_dict(), "requests": len(held), "skipped": skipped, "critics": arms.pop("critics", None),
            "arms": arms}, replies
