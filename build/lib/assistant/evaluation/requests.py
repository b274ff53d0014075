"""The fixed, seeded set of chat requests every evaluated arm answers.

Three groups, each half positive and half negative:
- ``seen``: movies in the store whose reviews the fine-tuned model trained on,
- ``held_out``: movies in the store held out of training (the validation side of the movie-disjoint split),
- ``topic``: no movie at all, only a topic ("a haunted house").

The same seed, store and split give the same requests in the same order, so arms are compared request by
request (each request also carries the sampling seed every arm uses for it).
"""
from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

from assistant.data.records import movie_key
from assistant.data.titles import COMMON_WORDS, TitleIndex, choose_titles
from assistant.model.prompts import SENTIMENTS

log = logging.getLogger(__name__)

GROUPS: tuple[str, ...] = ("seen", "held_out", "topic")
# Each reads as a topic, not a title, to the chat's parser (tests check it); any that a store's own titles
# would capture ("A Haunted House" is a film) are dropped when the set is built.
TOPICS: tuple[str, ...] = (
    "a bank heist", "a haunted house", "a time machine", "a high school reunion", "a long road trip",
    "a boxing comeback", "an alien invasion", "a small-town murder mystery", "a musical romance",
    "a family of superheroes", "a shipwreck", "a political conspiracy", "a dog and his owner",
    "a wedding disaster", "a zombie outbreak", "a chess prodigy",
)
MIN_REVIEWS = 5  # fewer and "closer to this movie's reviews" rests on one or two quotes


@dataclass(frozen=True)
class EvalRequest:
    id: str
    text: str  # what the user types
    sentiment: str
    group: str
    seed: int
    movie: str | None = None
    movie_key: str | None = None
    topic: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RequestSet:
    requests: list[EvalRequest]
    seed: int
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        out = {g: {s: 0 for s in SENTIMENTS} for g in GROUPS}
        for r in self.requests:
            out[r.group][r.sentiment] += 1
        return out


def movie_text(sentiment: str, title: str) -> str:
    return f'Write a {sentiment} review of "{title}".'


def topic_text(sentiment: str, topic: str) -> str:
    return f"Write a {sentiment} movie review about {topic}."


def store_titles(store) -> dict[str, tuple[str, int]]:
    """movie_key -> (display title, review count) for the titled movies in the store (as the chat names them)."""
    rows = store.sql(
        "SELECT movie_key, json_extract(meta, '$.movie'), kind, COUNT(DISTINCT doc_id) FROM docs "
        "WHERE movie_key IS NOT NULL GROUP BY movie_key, json_extract(meta, '$.movie'), kind"
    )
    return choose_titles(rows)


def askable(key: str, title: str) -> bool:
    """Titles a chat parser can be expected to spot: no one-word common titles ("Up", "It"), no stray quotes."""
    if '"' in title or len(key) < 3 or movie_key(title) != key:
        return False
    return not all(w in COMMON_WORDS for w in key.split())


def names_movie(index: TitleIndex, text: str, key: str | None) -> bool:
    """Whether the chat's title spotting reads `text` as naming exactly movie `key` (None: no movie at all)."""
    found = index.scan(text)
    return (found[0].key if found else None) == key


def draw(pool: list, count: int, rng: random.Random, ok) -> list:
    """`count` items of the pool in seeded random order, those passing `ok` first; repeats when too few pass."""
    chosen = []
    for item in rng.sample(pool, k=len(pool)):
        if len(chosen) == count:
            break
        if ok(item):
            chosen.append(item)
    return [chosen[i % len(chosen)] for i in range(count)] if chosen else []


def candidates(titles: Mapping[str, tuple[str, int]], movies: Iterable[str], min_reviews: int) -> list[tuple[str, str]]:
    """(key, title) of the given movies with enough reviews, sorted so the seed alone decides the draw."""
    wanted = set(movies)
    return sorted((k, t) for k, (t, n) in titles.items() if k in wanted and n >= min_reviews and askable(k, t))


def group_sizes(n: int, available: Mapping[str, bool]) -> dict[str, int]:
    """Split n requests over the groups as evenly as possible; a group with no candidates gives its share away."""
    live = [g for g in GROUPS if available.get(g, g == "topic")]
    sizes = {g: 0 for g in GROUPS}
    for i in range(n):
        sizes[live[i % len(live)]] += 1
    return sizes


def build_request_set(titles: Mapping[str, tuple[str, int]], train_movies: Iterable[str],
                      held_out_movies: Iterable[str], n: int, seed: int = 2024,
                      min_reviews: int = MIN_REVIEWS, groups: Iterable[str] = GROUPS) -> RequestSet:
    """n requests spread over the asked groups (seen, held-out, topic-only), sentiments alternating in each."""
    rng = random.Random(seed)
    asked = set(groups)
    pools = {"seen": candidates(titles, train_movies, min_reviews),
             "held_out": candidates(titles, held_out_movies, min_reviews)}
    notes: list[str] = []
    for group, pool in pools.items():
        if not pool and group in asked:
            notes.append(f"no {group} movie with >= {min_reviews} reviews: its requests went to the other groups")
    available = {g: (bool(pools[g]) if g in pools else True) and g in asked for g in GROUPS}
    if not any(available.values()):
        available["topic"] = True
        notes.append("none of the asked groups has a movie to ask about: the requests are topic-only")
    sizes = group_sizes(n, available)
    index = TitleIndex(titles)
    requests: list[EvalRequest] = []
    for group in GROUPS:
        count = sizes[group]
        if group == "topic":
            topics = draw(list(TOPICS), count, rng, lambda t: names_movie(index, topic_text("positive", t), None))
            picks = [(None, None, t) for t in topics]
        else:
            chosen = draw(pools[group], count, rng, lambda kt: names_movie(index, movie_text("positive", kt[1]), kt[0]))
            picks = [(key, title, None) for key, title in chosen]
        if len(set(picks)) < count:
            notes.append(f"only {len(set(picks))} distinct {group} requests for {count}: some are asked twice")
        if not picks and count:
            notes.append(f"no {group} request reads unambiguously to the chat's parser: that group is empty")
        first = rng.randrange(2)  # which sentiment leads, so neither is always asked about the first movie
        for i, (key, title, topic) in enumerate(picks):
            sentiment = SENTIMENTS[(first + i) % 2]
            text = topic_text(sentiment, topic) if topic else movie_text(sentiment, title)
            requests.append(EvalRequest(id=f"{group}-{i:02d}", text=text, sentiment=sentiment, group=group,
                                        seed=seed + len(requests), movie=title, movie_key=key, topic=topic))
    log.info("evaluation requests: %s", {g: sizes[g] for g in GROUPS})
    return RequestSet(requests, seed, notes)
