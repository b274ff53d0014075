"""How critics open a review: the first three words of the training films' quotes, counted by what came before.

A small fine-tuned model opens most replies the same few ways ("This is one ...", "The plot is ...", "A dull and
..."), though every one of those openings is plausible for a critic too; critics' own quotes spread over thousands
of openings (one quote in a hundred shares its first three words with another of the same films). The table here is
their spread, for praise and for pans apart ("A must-see", "Not even"): for the first word, and for the second and third given the words before them, how often critics
chose each word. The decoding rule `assistant/model/rules/critic_opening.py` draws a reply's opening words by these
counts among the words the model itself finds plausible.

The table (`critic_openings.json` beside this file) is written by `scripts/critic_openings.py` from the training
split's reviews only (assistant/training/examples.split_by_movie), so the evaluation's held-out films are not in it.
A context seen fewer than `min_context` times backs off: for the second word to "<rare>" (any uncommon first word,
names mostly), for the third to the second word alone ("*|film"), then to "<rare>|<rare>".

A RAG reply the named lead opens has one of the film's people for its first words ("Gilliam", "Al Pacino"), and the
model went on the same way whoever it was: "Gilliam brings a", "Kasdan crafts a", "Stallone brings together" (all the
shared openings with RAG held out were such pairs). The table also counts how critics go on after a name they open
with (`count_name_openings`): the context "<name>" for the word after it ("is" 16%, "and", "has", "gives", "makes";
"brings" 0.6%), "<name>'s" for the word after a possessive ("film", "performance", "direction", "latest"), "'s"
itself in "<name>" as how often the name was a possessive, and "<name>|is" and the like for the third word.
`lead_opening` reads a reply's opening that way.

Who the name is matters for the word after it: drawn from every name's counts, a lead that was one of the film's
actors got "Al Pacino's film is ...", "Chevy Chase's film ..." (10 of 200 replies with a facts card), crediting
an actor with the film. Where the quote's film has a facts card, the counts are also kept by the name's role
(`ROLE_MARKERS`): "<director>'s" goes on with "film", "latest", "direction", "<actor>'s" with "performance" (the
contexts exist only where enough quotes were counted; `context_key` falls back to the role-blind one).
"""
from __future__ import annotations

import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from assistant.data.facts_card import fold

log = logging.getLogger(__name__)

TABLE = Path(__file__).with_name("critic_openings.json")
OPENING_WORDS = 3  # the opening a reader compares across replies ("A beautifully crafted")
RARE = "<rare>"
ANY = "*"
NAME = "<name>"  # the film's person a quote or a reply opens with, whoever it is
NAME_POSSESSIVE = "<name>'s"
POSSESSIVE = "'s"  # in the NAME context: the name was a possessive
# The name's role, where the facts know it (facts_card: "director", "cast"): its own contexts, the role-blind beside
ROLE_MARKERS = {"director": "<director>", "cast": "<actor>"}
NAME_MARKERS = frozenset({NAME, *ROLE_MARKERS.values()})
# The roles a reply's lead is drawn by. Only actors': after an actor's name every name's counts credited the actor
# with the film ("Al Pacino's film"). A director's counts are the right ones, but drawn for every lead they made a
# formula: critics who open with a director's name go on "'s film" far more often (46% "'s", then 27% "film") than
# critics at large open with a name at all, and most replies open with one, so "X's film is ..." became the
# classifier's strongest tell of a reply (200 held-out replies, classifier 0.79 -> 0.81). Directors keep every
# name's counts, as before.
DRAWN_ROLES = frozenset({"cast"})
POSSESSIVE_MARKERS = frozenset(m + POSSESSIVE for m in NAME_MARKERS)
_ROLE_BLIND = {**{m: NAME for m in NAME_MARKERS}, **{m: NAME_POSSESSIVE for m in POSSESSIVE_MARKERS}}
_EDGE = re.compile(r"^[^\w']+|[^\w']+$")
WORD_CHARS = re.compile(r"^[\w']+$")


def opening_words(text: str, n: int = OPENING_WORDS) -> list[str]:
    """The first `n` words, lower-cased, without the punctuation around them ("Jaws," -> "jaws")."""
    words = []
    for raw in text.split():
        word = _EDGE.sub("", raw).lower()
        if word:
            words.append(word)
            if len(words) == n:
                break
    return words


def context_key(words: Sequence[str], known: frozenset[str] | set[str] | dict) -> str:
    """The table's context for the word after `words` (0-2 opening words), backed off as the module says."""
    if not words:
        return ""
    if len(words) == 1:
        if words[0] in known:
            return words[0]
        blind = _ROLE_BLIND.get(words[0])  # a role's context with too few quotes: every name's
        return blind if blind in known else RARE
    first = _ROLE_BLIND.get(words[0], words[0])  # the third word is counted role-blind
    pair = f"{first}|{words[1]}"
    if pair in known:
        return pair
    second = f"{ANY}|{words[1]}"
    return second if second in known else f"{RARE}|{RARE}"


# Stricter than details.strip_possessive: a lone apostrophe only after an "s" ("Coens'"), not a closing quote
# ("Pacino' is"), which that one would count as a possessive here.
_POSSESSIVE_END = re.compile(r"(?:['\u2019]s|(?<=s)['\u2019])$")
# Capitalised first words that open a sentence, not a name ("If", "In", "His")
_NOT_NAMES = frozenset("""the a an this that these those it its i if in on as at by for from with of to what when
while where there here his her their one not no but and so we you he she they after like all even only just more
most how who why""".split())


class LeadingName(NamedTuple):
    possessive: bool  # "Scorsese's", "Coens'"
    rest: str  # the text after the name
    name: str  # without its possessive: "Jim Jarmusch"


def leading_name(text: str, is_word: Callable[[str], bool], title: frozenset[str] = frozenset()
                 ) -> LeadingName | None:
    """The name `text` opens with, when it opens with a person's name: one to three
    capitalised words, the last no English word (`is_word`, lower-cased: "Funny", "High-spirited" are words) and
    not all of them the quote's own title (`title`, lower-cased words). None otherwise."""
    run: list[str] = []
    raws = text.split()
    for raw in raws[:4]:
        word = _EDGE.sub("", raw)
        if not word or not word[0].isupper() or not all(part.isalpha() for part in re.split(r"[-'\u2019.]", word)
                                                         if part):
            break
        run.append(word)
        if raw.rstrip(",;:.!?)]\"") != raw or _POSSESSIVE_END.search(word):
            break  # punctuation or a possessive ends the name
    if not run or len(run) > 3 or run[0].lower() in _NOT_NAMES:
        return None
    bare = [_POSSESSIVE_END.sub("", w) for w in run]
    last = bare[-1]
    if len(last) < 3 or any(is_word(part.lower()) for part in last.split("-")):
        return None
    if all(w.lower() in title for w in bare):
        return None
    return LeadingName(bool(_POSSESSIVE_END.search(run[-1])), " ".join(raws[len(run):]), " ".join(bare))


def name_role(name: str, roles: Mapping[str, str]) -> str | None:
    """The role ("director", "cast") `roles` (a film's people by their folded last name: `film_roles`) gives the
    name, by its last word ("Pacino", "Al Pacino"). A name the roles lack, on a film whose director they know, is
    read as an actor's: most facts cards list a director and few or no actors, and of the training quotes that open
    with such a name most name an actor ("Cumberbatch's finely calibrated performance", "Josh Brolin does ...").
    None when nothing is known."""
    words = fold(name).split()
    if not words:
        return None
    return roles.get(words[-1]) or ("cast" if "director" in roles.values() else None)


def film_roles(people: Mapping[str, str]) -> dict[str, str]:
    """`name_role`'s roles from a facts card's people (name -> "director" or "cast": facts_card.MovieCard.names);
    where one surname is both, the director's ("Eastwood's film")."""
    roles: dict[str, str] = {}
    for name, role in people.items():
        words = fold(name).split()
        if words and (roles.get(words[-1]) != "director"):
            roles[words[-1]] = role
    return roles


def count_name_openings(quotes: Iterable[tuple[str, str | None, Mapping[str, str]]], is_word: Callable[[str], bool],
                        *, min_context: int = 40, top: int = 400) -> dict[str, dict[str, int]]:
    """The name contexts (the module says which) from (quote, its film's title, its film's people's roles by last
    name, `name_role`) triples; a role's or a third word's context needs `min_context` quotes, words used at least
    twice."""
    after: dict[str, Counter] = {}  # NAME, NAME_POSSESSIVE and each role's markers -> the word after the name
    thirds: dict[str, Counter] = {}
    for text, title, roles in quotes:
        found = leading_name(text, is_word, frozenset(w.lower() for w in re.findall(r"\w+", title or "")))
        if found is None:
            continue
        words = opening_words(found.rest, OPENING_WORDS - 1)
        if not words:
            continue
        role = name_role(found.name, roles)
        for marker in (NAME, ROLE_MARKERS[role]) if role in ROLE_MARKERS else (NAME,):
            if found.possessive:
                after.setdefault(marker, Counter())[POSSESSIVE] += 1
                after.setdefault(marker + POSSESSIVE, Counter())[words[0]] += 1
            else:
                after.setdefault(marker, Counter())[words[0]] += 1
        if not found.possessive and len(words) == 2:
            thirds.setdefault(f"{NAME}|{words[0]}", Counter())[words[1]] += 1
    contexts = {key: counter for key, counter in after.items()
                if key in (NAME, NAME_POSSESSIVE) or sum(counter.values()) >= min_context}
    contexts.update({key: counter for key, counter in thirds.items() if sum(counter.values()) >= min_context})
    return {key: {w: c for w, c in counter.most_common(top) if c >= 2} for key, counter in contexts.items()}


def lead_opening(reply: str, phrases: Sequence[str], roles: Mapping[str, str] | None = None) -> list[str] | None:
    """A reply's opening words when it opens with one of `phrases` (the named lead's: "Al Pacino", "Pacino"): the
    name as one word, NAME, or NAME_POSSESSIVE for "Pacino's" and "Coens'", then the words after it; where the
    phrase's role in `roles` (phrase -> "director" or "cast") is one of `DRAWN_ROLES`, that role's marker instead
    ("<actor>'s"). None while the name or its possessive is being written, and while a name may still grow into a
    longer one ("Jordan" of "Jordan Peele"). A reply that opened otherwise reads as usual (`opening_words`)."""
    text = reply.lstrip()
    if any(p.startswith(text) and p != text for p in phrases):
        return None  # no name yet, not the whole of one, or one that may go on
    for phrase in sorted(phrases, key=len, reverse=True):
        rest = text[len(phrase):]
        if not text.startswith(phrase) or rest[:1].isalnum():
            continue  # another phrase, or a longer word
        role = (roles or {}).get(phrase)
        marker = ROLE_MARKERS[role] if role in DRAWN_ROLES else NAME
        if rest[:1] in ("'", "\u2019"):
            if len(rest) < 2:
                return None  # the possessive is being written
            if rest[1] == "s" and not rest[2:3].isalnum():
                return [marker + POSSESSIVE] + opening_words(rest[2:], OPENING_WORDS - 1)
            if phrase.endswith("s") and rest[1].isspace():  # "Coens' film", counted so by `leading_name`
                return [marker + POSSESSIVE] + opening_words(rest[1:], OPENING_WORDS - 1)
        return [marker] + opening_words(rest, OPENING_WORDS - 1)
    return opening_words(reply, OPENING_WORDS)


def count_openings(texts: Iterable[str], *, min_context: int = 40, top: int = 400,
                   top_first: int = 4000) -> dict:
    """The table from critics' texts: each context's word counts (a context needs `min_context` quotes; its `top`
    words, `top_first` for the first word, each used at least twice)."""
    firsts: Counter = Counter()
    seconds: dict[str, Counter] = {}
    thirds: dict[str, Counter] = {}
    lengths: Counter = Counter()  # words per quote: the length a reply is drawn to (rules/critic_length.py)
    openings = []
    for text in texts:
        words = opening_words(text)
        if len(words) == OPENING_WORDS:
            openings.append(words)
            lengths[len(text.split())] += 1
    for w1, _, _ in openings:
        firsts[w1] += 1
    pair_counts = Counter(f"{w1}|{w2}" for w1, w2, _ in openings)
    second_counts = Counter(f"{ANY}|{w2}" for _, w2, _ in openings)
    for w1, w2, w3 in openings:
        key2 = w1 if firsts[w1] >= min_context else RARE
        seconds.setdefault(key2, Counter())[w2] += 1
        pair = f"{w1}|{w2}"
        if pair_counts[pair] >= min_context:
            key3 = pair
        elif second_counts[f"{ANY}|{w2}"] >= min_context:
            key3 = f"{ANY}|{w2}"
        else:
            key3 = f"{RARE}|{RARE}"
        thirds.setdefault(key3, Counter())[w3] += 1

    def kept(counter: Counter, n: int) -> dict[str, int]:
        return {w: c for w, c in counter.most_common(n) if c >= 2}

    contexts = {"": kept(firsts, top_first)}
    for table in (seconds, thirds):
        contexts.update({key: kept(counter, top) for key, counter in table.items()})
    return {"quotes": len(openings), "min_context": min_context, "contexts": contexts,
            "lengths": {str(n): c for n, c in sorted(lengths.items())}}


class CriticOpenings:
    """One sentiment's table: `whole(context_words, word)`, how often critics' next word in that context was
    `word` (a count, not normalised: the rule compares candidates within one step)."""

    def __init__(self, table: dict) -> None:
        self.contexts: dict[str, dict[str, int]] = table["contexts"]
        self.quotes = int(table.get("quotes", 0))
        # quotes by their length in words (`lengths[n]`: how many had n words); {} in a table without them
        self.lengths: dict[int, int] = {int(n): int(c) for n, c in (table.get("lengths") or {}).items()}

    @classmethod
    def read(cls, path: Path = TABLE) -> dict[str, CriticOpenings] | None:
        """The table of each sentiment ("positive", "negative") in the file; None (logged) when unreadable."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return {sentiment: cls(table) for sentiment, table in data["by_sentiment"].items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("critics' openings unreadable (%s): replies open as the model likes", exc)
            return None

    def key(self, words: Sequence[str]) -> str:
        return context_key(words, self.contexts)

    def whole(self, words: Sequence[str], word: str) -> int:
        """Critics' next words after `words` that are exactly `word`."""
        return self.contexts.get(self.key(words), {}).get(word, 0)


_LOCK = threading.Lock()
_SHIPPED: list[dict[str, CriticOpenings] | None] = []


def critic_openings() -> dict[str, CriticOpenings] | None:
    """The shipped tables by sentiment, read once per process; None (logged once) when missing or unreadable."""
    with _LOCK:
        if not _SHIPPED:
            _SHIPPED.append(CriticOpenings.read())
        return _SHIPPED[0]
