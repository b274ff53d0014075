"""Best-of-n drafts for a review: sample several in one batch, keep the most critic-like of those whose
sentiment reads clearly as asked.

Two scorers read the drafts, both kept apart from what the evaluation scores with:
- the embedding sentiment probe saved beside the tuned model (never the evaluation's TF-IDF judge), so choosing
  drafts cannot game the reported sentiment; it reads the data, not the model, so it ranks the base model's
  drafts just as well;
- the critic-likeness scorer shipped with the code (assistant/model/critic_scorer.py), trained on training
  films' quotes against the model's replies about them, never on the held-out films the evaluation asks about.
A draft's sentiment comes first (a review in the wrong sentiment is wrong however well written); among the
drafts that carry it clearly, those without a made-up word (the garbled-word check, assistant/data/garbled.py:
not English, not a word of the store, not a word the model was shown; the evaluation measures the same, so its
garbled share is partly chosen for), then with retrieval those that name the film's people, places or characters
from the context (names.names_film; the evaluation's movie details count such names too, so that share is partly
chosen for as well), and of those the one a critic would most likely have written is kept.

This module holds no model: the chat hands the LLM scorers over the probe, the scorer and the store's embeddings.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

SCORER = "embedding probe"
LIKENESS_SCORER = "embedding probe, then critic-likeness"
# A draft the probe reads as the asked sentiment at least this surely may be chosen for critic-likeness. Set, not
# tuned: a floor well above the probe's 0.5 because critics' own lukewarm quotes are what the judge misreads, and
# well below 1 because that would leave one candidate, the most emphatic draft, which is what gives a small model
# away. With it, sentiment held at 1.00 / 0.99-1.00 on training and held-out films.
CLEAR_SENTIMENT = 0.75


def choose(on_target: Sequence[float | None], likeness: Sequence[float | None] = (),
           garbled: Sequence[bool | None] = (), named: Sequence[bool | None] = ()) -> int:
    """Which draft to keep: without likeness readings the most on-target; with them, of the drafts at or above
    CLEAR_SENTIMENT, those without a garbled word (`garbled`: True for a word no one uses) when any is left, of
    those the ones that name the film's people from the context (`named`) when any does, and of those the most
    critic-like. When no draft is clear, the most on-target. Empty drafts (None) are never chosen unless all are;
    ties go to the earlier draft."""
    written = [i for i, s in enumerate(on_target) if s is not None]
    if not written:
        return 0
    clear = [i for i in written if on_target[i] >= CLEAR_SENTIMENT and i < len(likeness) and likeness[i] is not None]
    if not clear:
        return max(written, key=lambda i: on_target[i])
    # A made-up word is what a reader notices first: a clear draft without one wins over a more critic-like one with
    # one (a name no review of any film mentions, written from memory without retrieval, is the usual case).
    clear = [i for i in clear if not (i < len(garbled) and garbled[i])] or clear
    # Critics name someone in most quotes, but seldom as their first word; the named lead opens only some drafts
    # (settings name_lead), so a draft that names the film's people wherever a critic would is kept before one that
    # names no one, and the scorer picks among those (a forced opening name was the replies' plainest tell).
    clear = [i for i in clear if i < len(named) and named[i]] or clear
    return max(clear, key=lambda i: likeness[i])  # max keeps the first of equals


def why_single(n: int, *, probe: Any, store: Any, embeddings_ready: Callable[[], bool], temperature: float,
               store_error: str | None) -> str | None:
    """Why n drafts cannot be ranked this time (so one is streamed instead), or None when they can.

    `embeddings_ready` is called last: it may load the embedding model, which is only worth it when the
    drafts will be ranked."""
    if n <= 1:
        return None
    if temperature <= 0:
        return "at temperature 0 every draft would be the same"
    if probe is None:
        return ("there is no sentiment probe beside the fine-tuned model to rank them (fine-tuning saves one: "
                "python -m assistant.finetune)")
    wanted = getattr(getattr(probe, "coef", None), "shape", (None,))[0]
    dim = getattr(getattr(store, "manifest", None), "embedding_dim", None)
    if wanted is not None and dim is not None and int(wanted) != int(dim):
        # Scoring would fail only after every draft was written: refuse before, and say how to fix it.
        return (f"the sentiment probe reads {wanted}-dimensional embeddings but the review store has "
                f"{dim}-dimensional ones (retrain with: python -m assistant.finetune)")
    if store is None or not embeddings_ready():
        return f"the embedding model that scores them is unavailable ({store_error or 'no review store'})"
    return None


def record(drafts: Any, *, generate_s: float, score_s: float) -> dict[str, Any]:
    """What a Reply keeps of its drafts. `chosen` indexes `on_target` (0-based); `on_target` is P(asked-for
    sentiment) per draft, None for an empty draft."""
    likeness = getattr(drafts, "likeness", None) or []
    likeness = likeness if any(s is not None for s in likeness) else []
    kept = {"n": len(drafts.texts), "chosen": drafts.chosen,
            "on_target": [None if s is None else round(s, 4) for s in drafts.on_target],
            "scorer": LIKENESS_SCORER if likeness else SCORER, "generate_s": round(generate_s, 4),
            "score_s": round(score_s, 4)}
    if likeness:
        kept["likeness"] = [None if s is None else round(s, 4) for s in likeness]
    garbled = getattr(drafts, "garbled", None) or []
    if garbled:  # what narrowed the choice, where it was read
        kept["garbled"] = list(garbled)
    named = getattr(drafts, "named", None) or []
    if named:
        kept["named"] = list(named)
    return kept


def fallback_record(asked: int, why: str) -> dict[str, Any]:
    """What a Reply keeps when n drafts were asked for but one was streamed."""
    return {"n": 1, "asked": asked, "chosen": 0, "on_target": [], "scorer": None, "why": why}


def describe(drafts: dict[str, Any] | None, sentiment: str | None) -> str | None:
    """'chose draft 2 of 4 (0.93 negative)' for people; None when no drafts were ranked."""
    if not drafts or not drafts.get("scorer") or (drafts.get("n") or 0) < 2:
        return None
    chosen, scores = int(drafts.get("chosen") or 0), list(drafts.get("on_target") or [])
    score = scores[chosen] if 0 <= chosen < len(scores) else None
    likeness = list(drafts.get("likeness") or [])
    critic = likeness[chosen] if 0 <= chosen < len(likeness) else None
    how = f" ({score:.2f} {sentiment or 'on target'}" if isinstance(score, (int, float)) else " (all were empty"
    how += f", {critic:.2f} critic-like)" if isinstance(critic, (int, float)) else ")"
    return f"chose draft {chosen + 1} of {drafts['n']}{how}"


def score_list(drafts: dict[str, Any] | None) -> str:
    """'0.93, 0.41, -, 0.12': every draft's score in order, '-' for an empty one."""
    scores: Sequence[Any] = (drafts or {}).get("on_target") or []
    return ", ".join(f"{s:.2f}" if isinstance(s, (int, float)) else "-" for s in scores)
