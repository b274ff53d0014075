"""Chat message -> what the user wants, deterministically: keyword tables, regexes and fuzzy title matching.

A 135M model cannot do intent, so this never asks it. Follow-ups ("now a negative one", "another",
"what about Jaws?") are resolved against the previous request of the same session.
"""
from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from assistant.chat import vocabulary as vocab
from assistant.data.titles import COMMON_WORDS, TitleIndex, TitleMatch

KINDS: tuple[str, ...] = ("review", "opinion", "help", "smalltalk", "why", "empty")
MAX_TOPIC_WORDS = 12
MAX_TITLE_WORDS = 12


@dataclass
class ParsedRequest:
    """The interpreted message. `movie` is the store's display title when matched, else the words as typed."""

    kind: str
    sentiment: str | None = None
    movie: str | None = None
    movie_key: str | None = None  # set only when the movie is in the store
    topic: str | None = None
    fuzzy_score: float | None = None  # 100 = named exactly
    movie_query: str | None = None  # the words that named the movie
    suggestions: list[str] = field(default_factory=list)  # close titles when the movie is not in the store
    sentiment_from: str | None = None  # "message" | "previous" | "tone" | "data" | "default"
    followup: str | None = None  # "another" | "sentiment" | "movie" | "tone" | "flip" | "carried"
    tone: str | None = None  # "harsher" | "kinder"
    text: str = ""  # the message as read
    original_chars: int = 0
    truncated: bool = False  # the message was longer than what was read
    understood: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ParsedRequest | None:
        if not data or data.get("kind") not in KINDS:
            return None
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# ---- cleaning ------------------------------------------------------------------------------------

_TAG = re.compile(r"<[^<>]{0,300}>")
_MD_LINK = re.compile(r"!?\[([^\]]{0,200})\]\([^)]{0,500}\)")
_URL = re.compile(r"\bhttps?://\S+|\bwww\.\S+", re.IGNORECASE)
_MD_CHARS = re.compile(r"[*_`~#>|\\\[\]{}^=]+")
_SAFE_PHRASE = re.compile(r"[^\w\s'&:,.!?\-]+")


def clean_message(raw: str | bytes | None, max_chars: int = 2000) -> tuple[str, int, bool]:
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

def _words(text: str) -> list[str]:
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
    words = _words(phrase)
    if not words:
        return False
    return (words[0] in vocab.TOPIC_START or any(w in vocab.GENRES for w in words)
            or any(w in vocab.ASPECTS for w in words) or (words[0] == "the" and len(words) > 1 and words[1] in vocab.ASPECTS))


def _names_something(phrase: str) -> bool:
    """Could these words be a movie's name (rather than filler like "it" or "the same one")?"""
    words = _words(phrase)
    if not words or len(words) > MAX_TITLE_WORDS:
        return False
    content = [w for w in words if w not in COMMON_WORDS]
    if not content:
        return False
    return not any(p.fullmatch(w) for w in content for p, _, _ in vocab.SENTIMENT_RE)


@dataclass
class _TitleFind:
    match: TitleMatch | None = None
    phrase: str | None = None  # the words as typed that named (or tried to name) the movie
    unknown: str | None = None  # a name that is not in the store


def _is_bare(text: str) -> bool:
    """Nothing but a name ("lord of the rings"): its "of" is part of the title, not a slot."""
    if len(text.split()) > MAX_TITLE_WORDS:
        return False
    signals = (vocab.REVIEW_RE, vocab.OPINION_RE, vocab.ASK_RE, vocab.ANOTHER_RE, vocab.FLIP_RE, vocab.MOVIE_SWITCH_RE, vocab.WHY_RE, vocab.HELP_RE,
               vocab.SMALLTALK_RE, *(p for p, _, _ in vocab.SENTIMENT_RE), *(p for p, _, _ in vocab.TONE_RE))
    return not any(p.search(text) for p in signals)


def find_title(text: str, titles: TitleIndex | None, min_score: float = 85.0) -> _TitleFind:
    """The movie a message names: exact titles first (longest), then small typos, else an unknown name."""
    tails: list[str] = []
    bare = _is_bare(text)
    if bare:
        tails.append(text)
    else:
        for slot in vocab.TITLE_SLOTS:
            for m in slot.finditer(text):
                tails.append(m.group("t").strip())
    found = _TitleFind()
    if titles is not None and len(titles):
        best: tuple[float, int, TitleMatch, str] | None = None
        for tail in tails:
            words = tail.split()[:MAX_TITLE_WORDS]
            for size in range(len(words), 0, -1):
                phrase = " ".join(words[:size]).strip(" ,.;:!?\"'\u201c\u201d()")
                if not phrase or (not _names_something(phrase) and not titles.exact(phrase)):
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
            return _TitleFind(best[2], best[3])
    for tail in [] if bare else tails:  # an unknown bare name is more likely not a title at all: help offers some
        phrase = _cut_phrase(tail)
        if phrase and _names_something(phrase) and not is_topic_like(phrase):
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


def _display_unknown(phrase: str) -> str:
    return phrase.title() if phrase == phrase.lower() else phrase


def _without(text: str, phrase: str | None) -> str:
    if not phrase:
        return text
    return re.sub(re.escape(phrase), " ", text, count=1, flags=re.IGNORECASE)


# ---- the parser ----------------------------------------------------------------------------------

def parse(raw: str | bytes | None, titles: TitleIndex | None = None, previous: ParsedRequest | None = None, *,
          max_chars: int = 2000, min_score: float = 85.0) -> ParsedRequest:
    """Interpret one chat message; `previous` is the session's last review or opinion request."""
    text, original, cut = clean_message(raw, max_chars)
    base = ParsedRequest(kind="empty", text=text, original_chars=original, truncated=cut)
    if re.fullmatch(r"\?+", text):
        return replace(base, kind="help")
    if not vocab.READABLE.search(text):  # blank is understood; junk or markup alone is not
        blank = not (raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else raw or "").strip()
        return replace(base, understood=blank)

    title = find_title(text, titles, min_score)
    rest = _without(text, title.phrase)
    sentiment, tone = detect_sentiment(rest)
    topic = find_topic(rest)
    words = _words(text)
    named = title.match is not None or title.unknown is not None

    if vocab.HELP_RE.search(text) and not named and not sentiment and not vocab.REVIEW_RE.search(text):
        return replace(base, kind="help")
    if vocab.WHY_RE.search(text) and not named:
        return replace(base, kind="why")
    if vocab.SMALLTALK_RE.search(text) and len(words) <= 6 and not named and not vocab.REVIEW_RE.search(text) \
            and not (sentiment and previous and vocab.FOLLOWUP_RE.search(text)):
        return replace(base, kind="smalltalk")

    request = replace(base, kind="review", sentiment=sentiment, tone=tone, topic=topic,
                      sentiment_from="message" if sentiment else None)
    if title.match is not None:
        request.movie, request.movie_key = title.match.title, title.match.key
        request.fuzzy_score, request.movie_query = title.match.score, title.phrase
    elif title.unknown:
        request.movie, request.movie_query = _display_unknown(title.unknown), title.unknown
        request.fuzzy_score = 0.0
        if titles is not None:
            request.suggestions = [m.title for m in titles.suggest(title.unknown)]
    if tone and not sentiment:
        request.sentiment, request.sentiment_from = ("negative" if tone == "harsher" else "positive"), "tone"

    opinion = bool(vocab.OPINION_RE.search(text)) or (bool(re.match(r"^why\b", text, re.IGNORECASE)) and named)
    switch = vocab.MOVIE_SWITCH_RE.match(text)
    if opinion:
        request.kind, request.sentiment, request.sentiment_from, request.tone = "opinion", None, None, None
        if not named and previous is not None and previous.movie:
            _carry_movie(request, previous)
        return request

    is_review = bool(vocab.REVIEW_RE.search(text)) or bool(
        sentiment and (named or topic or previous or vocab.ASK_RE.search(text)))
    if previous is not None:
        if vocab.ANOTHER_RE.match(text) and not named:
            carried = replace(previous, text=text, original_chars=original, truncated=cut, followup="another",
                              sentiment_from="previous" if previous.sentiment else None)
            if sentiment:  # "another, but negative"
                carried.sentiment, carried.sentiment_from = sentiment, "message"
            return carried
        if vocab.FLIP_RE.search(text) and previous.kind == "review" and not named:
            flipped = {"positive": "negative", "negative": "positive"}.get(previous.sentiment or "")
            carried = replace(previous, text=text, original_chars=original, truncated=cut, followup="flip",
                              sentiment=flipped, sentiment_from="previous")
            return carried
        if switch and named and not is_review:
            request.kind = previous.kind
            request.followup = "movie"
            # A side the user chose carries over; one taken from the data is taken afresh for the new movie.
            if previous.kind == "review" and not request.sentiment and previous.sentiment_from not in ("data",
                                                                                                      "default"):
                request.sentiment, request.sentiment_from = previous.sentiment, "previous"
            return request
        if is_review or tone or vocab.SAME_MOVIE_RE.search(text):
            if not named and not topic and not vocab.GENERIC_MOVIE_RE.search(text):
                _carry_movie(request, previous)
                request.followup = "tone" if tone else ("sentiment" if sentiment else "carried")
            if not request.sentiment and previous.kind == "review" and previous.sentiment and not named:
                request.sentiment, request.sentiment_from = previous.sentiment, "previous"
            return request
    if is_review:
        return request
    if named:  # a bare title: what was asked last about a movie, else a review
        if previous is not None and previous.kind == "opinion":
            request.kind, request.followup = "opinion", "movie"
        return request
    unsure = replace(base, kind="help", understood=False)
    if titles is not None and len(words) <= 6 and _names_something(text):
        unsure.suggestions = [m.title for m in titles.suggest(text, min_score=75.0)]
    return unsure


def _carry_movie(request: ParsedRequest, previous: ParsedRequest) -> None:
    request.movie, request.movie_key = previous.movie, previous.movie_key
    request.fuzzy_score, request.movie_query = previous.fuzzy_score, previous.movie_query
    request.suggestions = list(previous.suggestions)
    if not request.topic:
        request.topic = previous.topic
