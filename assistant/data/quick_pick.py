"""Which records a quick index takes (`ingest(limit=N)`, the page's first index): the films people ask about first.

    picked = most_asked_first(records, limit=5000)

A quick index exists so that RAG answers within the first minutes, while the full index builds. The first rows of
the first file (files sort by name, and critics_2013.csv by title) are films nobody asks about first; "a review of
Jaws" or "what do critics think of Alien?" found nothing. So the quick index takes, film by film, the titled films
that have both a facts card and reviews, most-reviewed first, then the other most-reviewed titled films, then films
known only by a facts card: each film's facts cards and up to PER_FILM of its reviews, fresh and rotten taking turns
so both sides are there. What room is left goes to those films' other reviews, then to untitled snippets, in the
order they were read. The full ingest that follows adds everything else (only new ids are embedded).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from itertools import chain, zip_longest

from assistant.data.records import MovieFacts, Review

PER_FILM = 12  # a film's reviews in the first pass: 483 films of the mirror have a facts card and reviews
SCAN_FACTOR = 40  # records read to choose from, per record taken (the mirror holds 111k: all of it for 5,000)


def scan_limit(limit: int) -> int:
    """How many records to read before choosing `limit` of them."""
    return max(limit, limit * SCAN_FACTOR)


def _titled(record: Review | MovieFacts) -> bool:
    return bool(record.movie if isinstance(record, Review) else record.title)


def _taking_turns(reviews: list[Review]) -> list[Review]:
    """Fresh, rotten, fresh, ... in the order read, then whichever side has more."""
    sides = [[r for r in reviews if r.sentiment == s] for s in ("positive", "negative")]
    others = [r for r in reviews if r.sentiment not in ("positive", "negative")]
    return [r for r in chain.from_iterable(zip_longest(*sides)) if r is not None] + others


def most_asked_first(records: Sequence[Review | MovieFacts], limit: int) -> list[Review | MovieFacts]:
    """`limit` of `records` (all when fewer), the films people ask about first (see the module's docstring)."""
    if len(records) <= limit:
        return list(records)
    facts: dict[str, list[MovieFacts]] = defaultdict(list)
    reviews: dict[str, list[Review]] = defaultdict(list)
    untitled: list[Review | MovieFacts] = []
    for record in records:
        if not _titled(record) or record.key is None:
            untitled.append(record)
        elif isinstance(record, MovieFacts):
            facts[record.key].append(record)
        else:
            reviews[record.key].append(record)

    def rank(key: str) -> tuple[int, int, str]:
        n = len(reviews.get(key, ()))
        return (0 if key in facts and n else 1 if n else 2), -n, key

    films = sorted(set(facts) | set(reviews), key=rank)
    ordered = {key: _taking_turns(reviews.get(key, [])) for key in films}
    first = [[*facts.get(key, []), *ordered[key][:PER_FILM]] for key in films]
    rest = [ordered[key][PER_FILM:] for key in films]
    picked = list(chain.from_iterable(first))[:limit]
    for more in (chain.from_iterable(rest), untitled):
        if len(picked) >= limit:
            break
        picked.extend(r for _, r in zip(range(limit - len(picked)), more))
    return picked
