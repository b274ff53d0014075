""""What do critics think of X?" answered from the data itself: counts, consensus and typical quotes.

No language model is involved: the numbers are counted in the store, and the quotes are those
closest to the average embedding of their side (fresh or rotten), kept diverse with MMR.
"""
from __future__ import annotations

import json
import logging
import re
from typing import Any

import numpy as np
from langchain_core.vectorstores.utils import maximal_marginal_relevance

log = logging.getLogger(__name__)

FRESH_THRESHOLD = 60  # percent of positive reviews at which Rotten Tomatoes calls a movie fresh
QUOTE_CHARS = (30, 320)
_YES_NO = re.compile(r"^(?:is|was|are|were)\b.*\b(?:fresh|rotten|good|bad|worth|liked|overrated|underrated)\b|"
                     r"\bshould i\b", re.IGNORECASE)
_ASKS_ROTTEN = re.compile(r"\b(?:rotten|bad|overrated)\b", re.IGNORECASE)


def review_counts(store: Any, movie_key: str) -> dict[str, int]:
    rows = store.sql("SELECT sentiment, COUNT(DISTINCT doc_id) FROM docs WHERE movie_key = ? AND kind = 'review' "
                     "GROUP BY sentiment", (movie_key,))
    counts = {"positive": 0, "negative": 0, "unknown": 0}
    for sentiment, n in rows:
        counts[sentiment if sentiment in counts else "unknown"] += int(n)
    return counts


def _facts(store: Any, movie_key: str) -> dict[str, Any]:
    """Consensus, tomatometer and year from the movie's facts documents (several sources may have one)."""
    facts: dict[str, Any] = {}
    for (meta,) in store.sql("SELECT meta FROM docs WHERE movie_key = ? AND kind = 'movie' ORDER BY pos",
                             (movie_key,)):
        data = json.loads(meta)
        for key in ("consensus", "critic_score", "year", "title"):
            if data.get(key) and key not in facts:
                facts[key] = data[key]
    return facts


def representative_quotes(store: Any, movie_key: str, sentiment: str, n: int) -> list[dict[str, Any]]:
    """The n reviews of one side most like that side as a whole (nearest its mean vector), not near-copies."""
    if n <= 0:
        return []
    rows = store.sql("SELECT pos, text, meta FROM docs WHERE movie_key = ? AND kind = 'review' AND sentiment = ? "
                     "ORDER BY pos", (movie_key, sentiment))
    seen: set[str] = set()
    candidates = []
    for pos, text, meta in rows:
        data = json.loads(meta)
        if data.get("doc_id") in seen or not QUOTE_CHARS[0] <= len(text) <= QUOTE_CHARS[1]:
            continue
        seen.add(data.get("doc_id"))
        candidates.append((int(pos), text, data))
    if not candidates:
        return []
    named = [c for c in candidates if c[2].get("critic")]
    candidates = named if len(named) >= n else candidates  # a quote with its critic is worth more
    vectors = store.vectors_at([pos for pos, _, _ in candidates])
    centre = vectors.mean(axis=0)
    centre /= np.linalg.norm(centre) or 1.0
    chosen = maximal_marginal_relevance(centre, vectors, k=min(n, len(candidates)), lambda_mult=0.7)
    quotes = []
    for i in chosen:
        _, text, data = candidates[i]
        quotes.append({"critic": data.get("critic"), "publication": data.get("publication"),
                       "sentiment": sentiment, "verdict": "fresh" if sentiment == "positive" else "rotten",
                       "score": data.get("score"), "top_critic": data.get("top_critic"), "text": text,
                       "doc_id": data.get("doc_id"), "movie": data.get("movie")})
    return quotes


def critics_opinion(store: Any, movie_key: str, title: str, *, quotes: int = 3) -> dict[str, Any]:
    """Fresh/rotten counts, share fresh, the critics consensus when the data has one, and a few quotes."""
    counts = review_counts(store, movie_key)
    fresh, rotten = counts["positive"], counts["negative"]
    rated = fresh + rotten
    facts = _facts(store, movie_key)
    pct = round(100 * fresh / rated) if rated else None
    if fresh >= rotten:  # the majority side gets the extra quotes; the other side one, when it has any
        n_rotten = min(rotten, 1)
        n_fresh = min(fresh, quotes - n_rotten)
    else:
        n_fresh = min(fresh, 1)
        n_rotten = min(rotten, quotes - n_fresh)
    picked = (representative_quotes(store, movie_key, "positive", n_fresh)
              + representative_quotes(store, movie_key, "negative", n_rotten))
    return {
        "movie": title, "movie_key": movie_key, "fresh": fresh, "rotten": rotten, "unrated": counts["unknown"],
        "total": rated, "fresh_pct": pct,
        "verdict": None if pct is None else ("fresh" if pct >= FRESH_THRESHOLD else "rotten"),
        "consensus": facts.get("consensus"), "tomatometer": facts.get("critic_score"), "year": facts.get("year"),
        "quotes": picked,
    }


def opinion_text(opinion: dict[str, Any], question: str = "") -> str:
    """The answer in a few plain lines; a yes/no question ("is X fresh?") gets its yes or no first."""
    movie = opinion["movie"] + (f" ({opinion['year']})" if opinion.get("year") else "")
    lines: list[str] = []
    if opinion["total"]:
        verdict, pct = opinion["verdict"], opinion["fresh_pct"]
        head = (f"Critics on {movie}, in this data: {opinion['fresh']} fresh and {opinion['rotten']} rotten "
                f"reviews, {pct}% fresh, so {verdict} (Rotten Tomatoes calls {FRESH_THRESHOLD}% or more fresh).")
        if question and _YES_NO.search(question):
            wants_rotten = bool(_ASKS_ROTTEN.search(question))
            yes = (verdict == "rotten") if wants_rotten else (verdict == "fresh")
            head = ("Yes. " if yes else "No. ") + head
        lines.append(head)
    else:
        lines.append(f"The data has no fresh or rotten critic reviews of {movie}.")
    if opinion.get("consensus"):
        lines.append(f"Critics consensus: \u201c{opinion['consensus']}\u201d")
    if opinion.get("tomatometer"):
        lines.append(f"Tomatometer on record: {opinion['tomatometer']}%.")
    if opinion["quotes"]:
        lines.append("What critics wrote:")
        for q in opinion["quotes"]:
            who = q.get("critic") or "A critic"
            if q.get("publication"):
                who += f" ({q['publication']})"
            score = f", {q['score']}" if q.get("score") else ""
            lines.append(f"- {q['verdict']}{score}: \u201c{' '.join(q['text'].split())}\u201d \u2014 {who}")
    return "\n".join(lines)


def unknown_movie_text(name: str, suggestions: list[str], movies: int) -> str:
    text = f"\u201c{name}\u201d is not in the review data ({movies:,} titled movies)."
    if suggestions:
        text += " Close titles: " + ", ".join(suggestions) + f". Try: what do critics think of {suggestions[0]}?"
    else:
        text += " Nothing close to it either."
    return text
