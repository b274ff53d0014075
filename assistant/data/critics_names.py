"""The names a movie's critics share: a facts line for the many films no facts source knows.

Facts (director, cast) come from the Kaggle, top-movies and Flatiron files, which cover about one film in five of
those the reviews are about. Yet the reviews themselves name the people a critic would: of *Family Plot* they say
"Hitchcock", "Bruce Dern", "Karen Black". A name that at least two critics use of a film is almost always one of
its people, places or characters (one critic's capital is as often "Internet"); the most used of them become one
line, rendered as a facts line ("About Family Plot: Its critics name ..."), so the reply can name the film's
people whether or not a facts source has it. The reply's names rule and named lead read it as any facts line.
"""
from __future__ import annotations

import threading
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document

from assistant.data.details import (
    STOPWORDS,
    WORD_RE,
    is_sentence_start,
    name_spans,
    name_words,
    strip_possessive,
)
from assistant.data.english import english_counts
from assistant.data.facts_card import fold, split_names
from assistant.data.titles import another_films_title

MIN_REVIEWS = 2  # critics who must use a name for it to count as the film's
# a job written before a name, as critics do ("Director Alfred Hitchcock"): not part of it
ROLE_WORDS = frozenset("Director Producer Writer Screenwriter Filmmaker Actor Actress Composer Cinematographer "
                       "Novelist Playwright Narrator".split())
MAX_NAMES = 6  # the line stays short: the context's room is for the reviews
# pyspellchecker lists many surnames as words, but its corpus uses them rarely: "scorsese" 342, "spielberg" 53,
# "murray" 364, against "stone" 45,337, "wood" 26,378, "love" two million. Above this count a word is an English
# word first ("Stone", "Hill", "Cage" alone name no one); at or under it, a capitalised one is a name. Chosen by
# reading the facts' surnames the list holds: under it mostly names ("malone", "harper", "williams"), between it and
# 3,000 as many words as names ("marsh", "brook", "lee", "smith"), above it mostly words ("swift", "graves", "pace").
NAME_LIKE_COUNT = 1000
GIVEN_NAME_PEOPLE = 2  # known people with a first name before it counts as one ("Barry", not one actor's "Bai")
SOURCE = "its critics' reviews"


def _fold(word: str) -> str:
    """Lower case without accents or a possessive: "Carné's" and "Carne" are one name."""
    plain = unicodedata.normalize("NFKD", strip_possessive(word))
    return "".join(c for c in plain if not unicodedata.combining(c)).lower()


@dataclass(frozen=True)
class KnownPeople:
    """Everyone the store's facts sources list as some film's director or cast, folded ("roger michell"), and
    their surnames when they are no common English word ("michell", "scorsese", not "stone" or "love"); `films`,
    every film's key, since critics compare with other films by name ("Heathers" in two reviews of Jawbreaker);
    `given`, the first names several of them share ("barry", "martin"), and `common`, the English words too common
    to be read as a surname ("stone"), for names the facts do not know yet."""

    full: frozenset[str]
    surnames: frozenset[str]
    films: frozenset[str] = frozenset()
    given: frozenset[str] = frozenset()
    common: frozenset[str] = frozenset()

    def knows(self, name: str) -> bool:
        folded = fold(name)
        return folded in self.full if " " in folded else folded in self.surnames

    def is_person(self, name: str) -> bool:
        """Known, or written as a person's name is: a first name people share and a surname that is no common word
        ("Barry Keoghan" of a film newer than the facts; not "Hong Kong" nor "Barry Stone" ... unless known)."""
        if self.knows(name):
            return True
        words = fold(name).split()
        return len(words) >= 2 and words[0] in self.given and len(words[-1]) > 2 and words[-1] not in self.common


KEPT_GENERATIONS = 4  # stores whose people are kept in memory (the live one, a thin copy, the one before)
_PEOPLE_LOCK = threading.Lock()
_PEOPLE: dict[str, KnownPeople] = {}


def known_people(store: Any) -> KnownPeople:
    """The store's `KnownPeople`, read once per store generation (a generation never changes once written)."""
    key = str(getattr(store, "directory", id(store)))
    with _PEOPLE_LOCK:
        if key not in _PEOPLE:
            rows = store.sql("SELECT json_extract(meta, '$.director'), json_extract(meta, '$.cast') FROM docs "
                             "WHERE kind = 'movie'")
            names = {fold(n) for row in rows for value in row for n in split_names(value)}
            names = {n for n in names if n and n != "unknown director"}
            counts = english_counts() or {}
            common = frozenset(w for w, n in counts.items() if n > NAME_LIKE_COUNT)
            surnames = {n.split()[-1] for n in names if " " in n}
            firsts = Counter(n.split()[0] for n in names if " " in n)
            if len(_PEOPLE) >= KEPT_GENERATIONS:  # a long-running server sees a new generation per ingest
                del _PEOPLE[next(iter(_PEOPLE))]
            films = frozenset(k for (k,) in store.sql("SELECT DISTINCT movie_key FROM docs "
                                                      "WHERE movie_key IS NOT NULL"))
            _PEOPLE[key] = KnownPeople(
                frozenset(names), frozenset(w for w in surnames if len(w) > 2 and w not in common), films,
                given=frozenset(f for f, n in firsts.items()
                               if n >= GIVEN_NAME_PEOPLE and len(f) > 1 and f not in STOPWORDS),
                common=common)
        return _PEOPLE[key]


def shared_names(reviews: Iterable[str], title: str | None, *, min_reviews: int = MIN_REVIEWS,
                 limit: int = MAX_NAMES, known: KnownPeople | None = None) -> list[str]:
    """The names at least `min_reviews` of the reviews use, most used first, each in its fullest common form
    ("Alfred Hitchcock" where some write "Hitchcock"). The title's own words and common capitals do not count.
    With `known`, a name one review uses counts too when it is a person's (after the shared ones): one the facts
    sources know, or a first name and an uncommon surname (`KnownPeople.is_person`): a film the data knows from five
    reviews rarely has two critics naming the same person; and a name that is another of its films' title is not
    the film's unless the facts sources know it as a person's ("Hitchcock")."""
    title_words = {part for w in WORD_RE.findall(title or "") for part in _fold(w).split("-")}
    reviews_using: Counter = Counter()  # a name's last word, folded ("hitchcock") -> reviews that use it
    forms: dict[str, Counter] = defaultdict(Counter)  # ... -> how it is written
    lower: set[str] = set()  # words the reviews also write in lower case: "love", "state", not "sandler"
    openers: list[dict[str, str]] = []  # per review: its sentences' first words, folded -> as written
    for text in reviews:
        lower.update(w for w in WORD_RE.findall(text) if w.islower())
        openers.append({_fold(m[0]): m[0] for m in WORD_RE.finditer(text)
                        if m[0][:1].isupper() and is_sentence_start(text[:m.start()])})
        seen: set[str] = set()
        for span in name_spans(text):
            parts = span.split()
            while len(parts) > 1 and parts[0] in ROLE_WORDS:  # before name_words' length rule
                parts = parts[1:]
            words = name_words(" ".join(parts))
            if not words or all(part in title_words for w in words for part in _fold(w).split("-")):
                continue
            key = _fold(words[-1])
            forms[key][" ".join(words)] += 1
            seen.add(key)
        reviews_using.update(seen)
        for key in seen:
            openers[-1].pop(key, None)
    # A sentence's first word may be a name or an ordinary opener; once some critic writes it mid-sentence as a
    # name, a critic opening a sentence with it uses the name too ("Stallone scripts ...", "... by Stallone"). So
    # does one the facts sources know as a person's surname: five reviews of a new film often name its director
    # only as their first word ("Chabrol's most accomplished ...", "Spielberg seems to ...").
    for opened in openers:
        for key, written in opened.items():
            if key not in forms and known is not None and known.knows(strip_possessive(written)):
                forms[key][strip_possessive(written)] += 1
            if key in forms:
                reviews_using[key] += 1
    def fullest(key: str) -> str:
        # the longest form at least two critics wrote, else the most written one, the fuller of equals: one critic's
        # "Robin Williams" and another's "Williams" (or a sentence opened with it) name one man, in full
        common = [f for f, n in forms[key].items() if n >= min_reviews]
        return max(common, key=len) if common else max(forms[key].items(), key=lambda kv: (kv[1], len(kv[0])))[0]

    ranked = sorted((k for k, n in reviews_using.items()
                     if n >= min_reviews or (known is not None and known.is_person(fullest(k)))),
                    key=lambda k: (-reviews_using[k], k))
    names: list[str] = []
    for key in ranked:
        name = fullest(key)
        if any(set(name.split()) <= set(kept.split()) for kept in names):  # "Denzel" of "Denzel Washington"
            continue
        if " " not in name and (name.lower() in lower or name.lower() in STOPWORDS):  # ordinary: "Love", "This"
            continue
        if known is not None and another_films_title(name, title, known.films) and not known.knows(name):
            continue  # a film compared with, unless the facts know the name as a person's ("Hitchcock")
        names.append(name)
        if len(names) == limit:
            break
    return names


def names_sentence(names: list[str]) -> str:
    return "Its critics name " + (", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]) + "."


def critics_names_document(store: Any, movie_key: str | None) -> Document | None:
    """The movie's shared names as a facts document (kind "movie"), or None when its critics share none."""
    if not movie_key:
        return None
    rows = store.sql("SELECT doc_id, text, json_extract(meta, '$.movie') FROM docs WHERE movie_key = ? AND "
                     "kind = 'review' ORDER BY pos", (movie_key,))
    reviews: dict[str, list[str]] = defaultdict(list)  # a long review is stored as several chunks
    for doc_id, text, _ in rows:
        reviews[doc_id].append(text)
    if len(reviews) < MIN_REVIEWS:
        return None
    titles = Counter(title for _, _, title in rows if title)
    title = titles.most_common(1)[0][0] if titles else None
    names = shared_names((" ".join(chunks) for chunks in reviews.values()), title, known=known_people(store))
    if not names:
        return None
    return Document(page_content=names_sentence(names),
                    metadata={"kind": "movie", "movie": title, "movie_key": movie_key, "source": SOURCE,
                              "doc_id": f"critics-names-{movie_key}", "names": names})
