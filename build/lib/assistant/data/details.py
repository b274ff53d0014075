"""What in a text is specific to a movie: its capitalised names and its rare words.

One notion for everyone: training keeps the examples whose target reuses its context's names and details
(assistant/training/examples.py), decoding allows only the context's names (assistant/model/faithful.py), the
evaluation counts them (assistant/evaluation) and the page marks them (ui/sources.py).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from assistant.data.ngrams import tokenize

# Capitalised wherever they stand, and no one's name: allowed in any reply, never counted as a name.
COMMON_CAPITALIZED = frozenset("""
I I'm I've I'd I'll Mr Mrs Ms Dr Jr Sr St OK TV DVD CGI 3D IMAX
January February March April May June July August September October November December
Monday Tuesday Wednesday Thursday Friday Saturday Sunday Christmas Halloween Easter Thanksgiving
Oscar Oscars Academy Award Awards Hollywood God English American America British Britain French German Italian
Spanish Japanese Chinese Korean Indian Irish Scottish Australian Canadian Mexican Russian European Western Eastern
""".split())
# Review boilerplate that every review shares: counting it would make any text look grounded in any other.
REVIEW_WORDS = frozenset("""
film films movie movies review reviews story character characters director audience audiences scene scenes
make makes made like just really way does doesn don isn it's that's time times thing things one ones
""".split())
STOPWORDS = frozenset(ENGLISH_STOP_WORDS) | REVIEW_WORDS
RARE_WORD_SHARE = 0.005  # a word in at most this share of reviews at large is a detail, not vocabulary
COMMON_NAME_SHARE = 0.02  # a capitalised word in more than this share ("Hollywood") is no one's name

WORD = r"[^\W\d_](?:[^\W\d_]|['\u2019\-](?=[^\W\d_]))*"  # letters, with inner apostrophes and hyphens
WORD_RE = re.compile(WORD)
# "Mr. Stallone" is not a sentence start: the period after a title does not end one.
_SENTENCE_START = re.compile(r"(?:^|(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSt)[.!?:\n])[\s\"'\u201c\u2018(\[*-]*$")


def is_sentence_start(before: str) -> bool:
    """Whether a word written after `before` opens a sentence (or the text)."""
    return bool(_SENTENCE_START.search(before))


def capitalised(word: str) -> bool:
    return word[:1].isupper()


def strip_possessive(word: str) -> str:
    return re.sub(r"['\u2019]s?$", "", word)


def name_spans(text: str) -> list[str]:
    """Capitalised names as written ("Sigourney Weaver", "Nostromo"), in order.

    Consecutive capitalised words form one name. A sentence's first word is dropped (a name cannot be told from an
    ordinary opener there), and so are `COMMON_CAPITALIZED` words. "Tom Hanks' latest" at the start -> ["Hanks"].
    """
    spans: list[str] = []
    current: list[str] = []
    last_end = 0
    for match in WORD_RE.finditer(text or ""):
        word = match[0]
        is_name = (capitalised(word) and len(word) > 1 and strip_possessive(word) not in COMMON_CAPITALIZED
                   and not is_sentence_start(text[:match.start()]))
        adjacent = bool(re.fullmatch(r"[ \t]+", text[last_end:match.start()]))
        if current and not (is_name and adjacent):
            spans.append(" ".join(current))
            current = []
        if is_name:
            current.append(word)
        last_end = match.end()
    if current:
        spans.append(" ".join(current))
    return spans


_ARTICLES = frozenset({"The", "A", "An"})


def name_words(span: str) -> list[str]:
    """A name span as a person's name: cut after a possessive ("Ridley Scott's Alien" -> Ridley Scott), without
    common capitals; empty for what reads as a title ("The Matrix") or an acronym ("E-Z")."""
    words: list[str] = []
    for word in span.split():
        words.append(strip_possessive(word))
        if words[-1] != word:
            break
    words = [w for w in words if w and w not in COMMON_CAPITALIZED]
    if not words or words[0] in _ARTICLES or len(words) > 3 or any(w.isupper() for w in words):
        return []
    return words


def fold(word: str) -> str:
    return strip_possessive(word).lower()


def words_of(texts: Iterable[str]) -> set[str]:
    """Every word of the texts, lower-cased, possessives folded ("Scott's" -> "scott")."""
    return {fold(w) for text in texts for w in WORD_RE.findall(text or "")}


def is_grounded(name: str, reference: set[str]) -> bool:
    """A name is grounded when each of its words is a word of the reference texts (`words_of`)."""
    return all(fold(w) in reference for w in name.split())


def content_words(text: str) -> list[str]:
    """Lower-cased words that carry meaning: no stopwords, contractions, review boilerplate, short words or numbers.

    A possessive counts as its name ("Reeves's" is "reeves").
    """
    words = (w.removesuffix("'s") for w in tokenize(text))
    return [w for w in words if len(w) > 2 and "'" not in w and w not in STOPWORDS and not w.isdigit()]


@dataclass
class Rarity:
    """In how many of a background sample of reviews each content word occurs: what 'rare' means."""

    df: Counter
    n: int

    @classmethod
    def of(cls, texts: Iterable[str]) -> Rarity:
        df: Counter = Counter()
        n = 0
        for text in texts:
            df.update(set(content_words(text)))
            n += 1
        return cls(df, n)

    def rare(self, word: str, share: float = RARE_WORD_SHARE) -> bool:
        return len(word) > 3 and self.df.get(word, 0) <= max(1, math.floor(share * self.n))

    def common_name(self, word: str) -> bool:
        return self.df.get(word, 0) > max(1, math.floor(COMMON_NAME_SHARE * self.n))


def details(text: str, rarity: Rarity, title: str | None = None, share: float = RARE_WORD_SHARE) -> set[str]:
    """The text's names (lower-cased words of them; common ones like 'hollywood' aside) and words in at most
    `share` of reviews, without the title's own words: what could make it about one particular movie."""
    names = {fold(w) for span in name_spans(text) for w in span.split()}
    found = {w for w in names if not rarity.common_name(w)} | {w for w in content_words(text) if rarity.rare(w, share)}
    title_words = set(tokenize(title or ""))
    return {w for w in found if w not in title_words and len(w) > 2 and w not in STOPWORDS}
