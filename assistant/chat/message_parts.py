"""The parts of a chat message, read deterministically: the cleaned text, its sentiment and tone, the movie it
names and what the review should be about. `intent.parse` puts them together into a request."""
from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from assistant.chat import vocabulary as vocab
from assistant.data.titles import COMMON_WORDS, TITLE_MIN_SCORE, TitleIndex, TitleMatch

MAX_TOPIC_WORDS = 12
MAX_TITLE_WORDS = 12
MAX_MESSAGE_CHARS = 2000  # longer messages are read up to here: a request fits in far less


# ---- cleaning ------------------------------------------------------------------------------------

_TAG = re.compile(r"<[^<>]{0,300}>")
_MD_LINK = re.compile(r"!?\[([^\]]{0,200})\]\([^)]{0,500}\)")
_URL = re.compile(r"\bhttps?://\S+|\bwww\.\S+", re.IGNORECASE)
_MD_CHARS = re.compile(r"[*_`~#>|\\\[\]{}^=]+")
_SAFE_PHRASE = re.compile(r"[^\w\s'&:,.!?\-]+")


def clean_message(raw: str | bytes | None, max_chars: int = MAX_MESSAGE_CHARS) -> tuple[str, int, bool]:
    """(readable text, original length, whether it was cut): decoded; control characters, HTML and markdown
    markup removed; at most max_chars long."""
    if raw is None:
        return "", 0, False
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw).decode("utf-8", errors="replace")
    original = len(raw)
    # Markup is removed before cutting, and cutting comes before the heavier regexes run on a huge message.
    cut = len(raw) > max_chars * 4
    text = raw[: max_chars * 4]
    text = "".join(ch if ch in "\n\t" or unicodedata.category(ch)[0] != "C" else " " for ch in text)
    text = text.replace("\ufffd", " ")
    text = _TAG.sub(" ", html.unescape(_TAG.sub(" ", text)))
    text = _MD_LINK.sub(r"\1", text)
    text = _URL.sub(" ", text)
    text = _MD_CHARS.sub(" ", text)
    text = " ".join(text.split())
    if len(text) > max_chars:
        text, cut = text[:max_chars].rsplit(" ", 1)[0], True
    return text, original, cut


def safe_phrase(text: str | None, max_words: int = MAX_TOPIC_WORDS) -> str | None:
    """User words fit to echo back and to put in a prompt: plain characters, a few words."""
    if not text:
        return None
    words = _SAFE_PHRASE.sub(" ", text).split()[:max_words]
    phrase = " ".join(words).strip(" ,.:;!?-'")
    return phrase or None


# ---- pieces ----------------------------------------------------------------------------------------

def word_list(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9][A-Za-z0-9'\-]*", text.lower())


def detect_sentiment(text: str) -> tuple[str | None, str | None]:
    """(sentiment, tone) from sentiment words, with negation ("not a positive one") flipping them."""
    tone = None
    tone_vote = 0
    for pattern, name, polarity in vocab.TONE_RE:
        if pattern.search(text):
            tone, tone_vote = name, polarity
    votes: list[tuple[int, int, int]] = []  # (position, polarity, weight)
    taken: list[tuple[int, int]] = []
    for pattern, polarity, weight in vocab.SENTIMENT_RE:
        for m in pattern.finditer(text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            taken.append((m.start(), m.end()))
            before = re.split(r"[,.;:!?]", text[: m.start()])[-1]  # negation stops at punctuation
            negated = bool(vocab.NEGATOR_RE.search(before))
            votes.append((m.start(), -polarity if negated else polarity, weight))
    score = sum(p * w for _, p, w in votes) + 3 * tone_vote
    if score > 0:
        return "positive", tone
    if score < 0:
        return "negative", tone
    if votes:  # a tie: the last word wins, being what the sentence ends on
        return ("positive" if max(votes)[1] > 0 else "negative"), tone
    return None, tone


def _cut_phrase(tail: str, trailing: frozenset[str] = vocab.TRAILING) -> str:
    m = vocab.CUT_AT.search(tail)
    phrase = tail[: m.start()] if m else tail
    words = phrase.split()[:MAX_TITLE_WORDS]
    while words and words[-1].lower().strip("'") in trailing:
        words.pop()
    return " ".join(words).strip(" '-:")


def is_topic_like(phrase: str) -> bool:
    words = word_list(phrase)
    if not words:
        return False
    return (words[0] in vocab.TOPIC_START or any(w in vocab.GENRES for w in words)
            or any(w in vocab.ASPECTS for w in words)
            or (words[0] == "the" and len(words) > 1 and words[1] in vocab.ASPECTS))


def names_something(phrase: str) -> bool:
    """Could these words be a movie's name (rather than filler like "it" or "the same one")?"""
    words = word_list(phrase)
    if not words or len(words) > MAX_TITLE_WORDS:
        return False
    content = [w for w in words if w not in COMMON_WORDS]
    if not content:
        return False
    return not any(p.fullmatch(w) for w in content for p, _, _ in vocab.SENTIMENT_RE)


@dataclass
class TitleFind:
    match: TitleMatch | None = None
    phrase: str | None = None  # the words as typed that named (or tried to name) the movie
    unknown: str | None = None  # a name that is not in the store


def _is_bare(text: str) -> bool:
    """Nothing but a name ("lord of the rings"): its "of" is part of the title, not a slot."""
    if len(text.split()) > MAX_TITLE_WORDS:
        return False
    signals = (vocab.REVIEW_RE, vocab.OPINION_RE, vocab.ASK_RE, vocab.ANOTHER_RE, vocab.FLIP_RE, vocab.MOVIE_SWITCH_RE,
               vocab.WHY_RE, vocab.HELP_RE, vocab.SMALLTALK_RE, *(p for p, _, _ in vocab.SENTIMENT_RE),
               *(p for p, _, _ in vocab.TONE_RE))
    return not any(p.search(text) for p in signals)


def find_title(text: str, titles: TitleIndex | None, min_score: float = TITLE_MIN_SCORE) -> TitleFind:
    """The movie a message names: exact titles first (longest), then small typos, else an unknown name."""
    tails: list[str] = []
    bare = _is_bare(text)
    if bare:
        tails.append(text)
    else:
        for slot in vocab.TITLE_SLOTS:
            for m in slot.finditer(text):
                tails.append(m.group("t").strip())
    found = TitleFind()
    if titles is not None and len(titles):
        best: tuple[float, int, TitleMatch, str] | None = None
        for tail in tails:
            words = tail.split()[:MAX_TITLE_WORDS]
            for size in range(len(words), 0, -1):
                phrase = " ".join(words[:size]).strip(" ,.;:!?\"'\u201c\u201d()")
                if not phrase or (not names_something(phrase) and not titles.exact(phrase)):
                    continue
                hit = titles.match(phrase, min_score)
                if hit is None:
                    continue
                if (all(w in vocab.VOCABULARY for w in hit.key.split()) and not _quoted(text, phrase)
                        and not _title_cased(phrase)):
                    continue  # "a horror movie" is not the film "Horror"; quoting or capitalising it says it is
                rank = (hit.score, size)
                if best is None or rank > best[:2]:
                    best = (hit.score, size, hit, phrase)
        scanned = titles.scan(text, vocab.VOCABULARY)
        if scanned and (best is None or len(scanned[0].key) > len(best[2].key)
                        or (len(scanned[0].key) == len(best[2].key) and best[2].score < 100)):
            best = (100.0, len(scanned[1].split()), scanned[0], scanned[1])
        if best is not None:
            return TitleFind(best[2], best[3])
    for tail in [] if bare else tails:  # an unknown bare name is more likely not a title at all: help offers some
        phrase = _cut_phrase(tail)
        if phrase and names_something(phrase) and not is_topic_like(phrase):
            found.unknown = found.phrase = safe_phrase(phrase, MAX_TITLE_WORDS)
            break
    return found


_SMALL_TITLE_WORDS = frozenset("a an and at by for in of on or the to with".split())


def _title_cased(phrase: str) -> bool:
    """Written as a title of two or more words ("Family Plot", "The Dark Knight"), not as a phrase ("family plot")."""
    words = [w for w in phrase.split() if w.lower() not in _SMALL_TITLE_WORDS]
    return len(phrase.split()) > 1 and len(words) > 0 and all(w[:1].isupper() for w in words)


def _quoted(text: str, phrase: str) -> bool:
    return bool(re.search(rf"[\"\u201c]\s*{re.escape(phrase)}\s*[\"\u201d]", text, re.IGNORECASE))


def find_topic(text: str) -> str | None:
    """What the review should be about when it is not (only) a movie: "about a horror movie", "focusing on the plot"."""
    for m in vocab.TOPIC_LEAD.finditer(text):
        if vocab.TOPIC_LEAD.match(text, m.end()):
            continue  # "of focusing on the plot": the later lead has the topic
        phrase = _cut_phrase(text[m.end():], vocab.FILLER)
        if phrase and not vocab.TOPIC_LEAD.match(phrase) and is_topic_like(phrase):
            return safe_phrase(phrase)
    return None


def display_unknown(phrase: str) -> str:
    return phrase.title() if phrase == phrase.lower() else phrase


def without_phrase(text: str, phrase: str | None) -> str:
    if not phrase:
        return text
    return re.sub(re.escape(phrase), " ", text, count=1, flags=re.IGNORECASE)
