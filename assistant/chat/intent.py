"""Chat message -> what the user wants, deterministically: keyword tables, regexes and fuzzy title matching.

A 135M model cannot do intent, so this never asks it. Follow-ups ("now a negative one", "another",
"what about Jaws?") are resolved against the previous request of the same session.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from assistant.chat import vocabulary as vocab
from assistant.chat.message_parts import (  # clean_message, detect_sentiment, safe_phrase: also read from here
    MAX_MESSAGE_CHARS,
    TitleFind,
    clean_message,
    detect_sentiment,
    display_unknown,
    find_title,
    find_topic,
    names_something,
    safe_phrase,
    without_phrase,
    word_list,
)
from assistant.data.titles import TITLE_MIN_SCORE, TitleIndex

__all__ = ["KINDS", "ParsedRequest", "clean_message", "detect_sentiment", "parse", "safe_phrase"]

KINDS: tuple[str, ...] = ("review", "opinion", "help", "smalltalk", "why", "empty")


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




# ---- the parser ----------------------------------------------------------------------------------

def parse(raw: str | bytes | None, titles: TitleIndex | None = None, previous: ParsedRequest | None = None, *,
          max_chars: int = MAX_MESSAGE_CHARS, min_score: float = TITLE_MIN_SCORE) -> ParsedRequest:
    """Interpret one chat message; `previous` is the session's last review or opinion request.

    Steps, the first that settles it wins: nothing readable, a chat message (help, why, small talk), a question
    about the critics' opinion, a follow-up to `previous`, else a request of its own."""
    text, original, cut = clean_message(raw, max_chars)
    base = ParsedRequest(kind="empty", text=text, original_chars=original, truncated=cut)
    if (settled := _unreadable(raw, base)) is not None:
        return settled
    said = _read(text, titles, min_score)
    if (settled := _chat(said, base, previous)) is not None:
        return settled
    request = _review_request(said, base, titles)
    if (settled := _opinion(said, request, previous)) is not None:
        return settled
    if (settled := _followup(said, request, base, previous)) is not None:
        return settled
    return _standalone(said, request, base, previous, titles)


@dataclass(frozen=True)
class _Said:
    """What a message says on its own, before the session's previous request is consulted."""

    text: str
    title: TitleFind
    sentiment: str | None
    tone: str | None
    topic: str | None
    words: list[str]

    @property
    def named(self) -> bool:
        """A movie is named, whether or not the store knows it."""
        return self.title.match is not None or self.title.unknown is not None


def _read(text: str, titles: TitleIndex | None, min_score: float) -> _Said:
    """The message's title, sentiment, tone and topic (sentiment and topic read without the title's words)."""
    title = find_title(text, titles, min_score)
    rest = without_phrase(text, title.phrase)
    sentiment, tone = detect_sentiment(rest)
    return _Said(text=text, title=title, sentiment=sentiment, tone=tone, topic=find_topic(rest),
                 words=word_list(text))


def _unreadable(raw: str | bytes | None, base: ParsedRequest) -> ParsedRequest | None:
    """Question marks alone ask for help; blank is understood as nothing, junk or markup alone is not."""
    if re.fullmatch(r"\?+", base.text):
        return replace(base, kind="help")
    if not vocab.READABLE.search(base.text):
        blank = not (raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else raw or "").strip()
        return replace(base, understood=blank)
    return None


def _chat(said: _Said, base: ParsedRequest, previous: ParsedRequest | None) -> ParsedRequest | None:
    """Help, why, or small talk: messages that name no movie and ask for no review."""
    text, named = said.text, said.named
    if vocab.HELP_RE.search(text) and not named and not said.sentiment and not vocab.REVIEW_RE.search(text):
        return replace(base, kind="help")
    if vocab.WHY_RE.search(text) and not named:
        return replace(base, kind="why")
    if vocab.SMALLTALK_RE.search(text) and len(said.words) <= 6 and not named and not vocab.REVIEW_RE.search(text) \
            and not (said.sentiment and previous and vocab.FOLLOWUP_RE.search(text)):
        return replace(base, kind="smalltalk")
    return None


def _review_request(said: _Said, base: ParsedRequest, titles: TitleIndex | None) -> ParsedRequest:
    """The message read as a review request: its movie (known, or close titles for an unknown one) and side."""
    request = replace(base, kind="review", sentiment=said.sentiment, tone=said.tone, topic=said.topic,
                      sentiment_from="message" if said.sentiment else None)
    title = said.title
    if title.match is not None:
        request.movie, request.movie_key = title.match.title, title.match.key
        request.fuzzy_score, request.movie_query = title.match.score, title.phrase
    elif title.unknown:
        request.movie, request.movie_query = display_unknown(title.unknown), title.unknown
        request.fuzzy_score = 0.0
        if titles is not None:
            request.suggestions = [m.title for m in titles.suggest(title.unknown)]
    if said.tone and not said.sentiment:
        request.sentiment, request.sentiment_from = ("negative" if said.tone == "harsher" else "positive"), "tone"
    return request


def _opinion(said: _Said, request: ParsedRequest, previous: ParsedRequest | None) -> ParsedRequest | None:
    """What critics think of a movie (this one, else the previous request's)."""
    asks = bool(vocab.OPINION_RE.search(said.text)) or (bool(re.match(r"^why\b", said.text, re.IGNORECASE))
                                                        and said.named)
    if not asks:
        return None
    request.kind, request.sentiment, request.sentiment_from, request.tone = "opinion", None, None, None
    if not said.named and previous is not None and previous.movie:
        _carry_movie(request, previous)
    return request


def _is_review(said: _Said, previous: ParsedRequest | None) -> bool:
    """Asks for a review: says so, or gives a side with something to write about."""
    return bool(vocab.REVIEW_RE.search(said.text)) or bool(
        said.sentiment and (said.named or said.topic or previous or vocab.ASK_RE.search(said.text)))


def _followup(said: _Said, request: ParsedRequest, base: ParsedRequest,
              previous: ParsedRequest | None) -> ParsedRequest | None:
    """A message that continues the previous request: another, the other side, another movie, or a change."""
    if previous is None:
        return None
    text, named = said.text, said.named
    if vocab.ANOTHER_RE.match(text) and not named:
        carried = replace(previous, text=base.text, original_chars=base.original_chars, truncated=base.truncated,
                          followup="another", sentiment_from="previous" if previous.sentiment else None)
        if said.sentiment:  # "another, but negative"
            carried.sentiment, carried.sentiment_from = said.sentiment, "message"
        return carried
    if vocab.FLIP_RE.search(text) and previous.kind == "review" and not named:
        flipped = {"positive": "negative", "negative": "positive"}.get(previous.sentiment or "")
        return replace(previous, text=base.text, original_chars=base.original_chars, truncated=base.truncated,
                       followup="flip", sentiment=flipped, sentiment_from="previous")
    is_review = _is_review(said, previous)
    if vocab.MOVIE_SWITCH_RE.match(text) and named and not is_review:
        request.kind = previous.kind
        request.followup = "movie"
        # A side the user chose carries over; one taken from the data is taken afresh for the new movie.
        if previous.kind == "review" and not request.sentiment and previous.sentiment_from not in ("data",
                                                                                                  "default"):
            request.sentiment, request.sentiment_from = previous.sentiment, "previous"
        return request
    if is_review or said.tone or vocab.SAME_MOVIE_RE.search(text):
        if not named and not said.topic and not vocab.GENERIC_MOVIE_RE.search(text):
            _carry_movie(request, previous)
            request.followup = "tone" if said.tone else ("sentiment" if said.sentiment else "carried")
        if not request.sentiment and previous.kind == "review" and previous.sentiment and not named:
            request.sentiment, request.sentiment_from = previous.sentiment, "previous"
        return request
    return None


def _standalone(said: _Said, request: ParsedRequest, base: ParsedRequest, previous: ParsedRequest | None,
                titles: TitleIndex | None) -> ParsedRequest:
    """A request of its own: a review, a bare title (what was asked last about a movie, else a review), or not
    understood (with close titles when the words could be one)."""
    if _is_review(said, previous):
        return request
    if said.named:
        if previous is not None and previous.kind == "opinion":
            request.kind, request.followup = "opinion", "movie"
        return request
    unsure = replace(base, kind="help", understood=False)
    if titles is not None and len(said.words) <= 6 and names_something(said.text):
        unsure.suggestions = [m.title for m in titles.suggest(said.text, min_score=75.0)]
    return unsure


def _carry_movie(request: ParsedRequest, previous: ParsedRequest) -> None:
    request.movie, request.movie_key = previous.movie, previous.movie_key
    request.fuzzy_score, request.movie_query = previous.fuzzy_score, previous.movie_query
    request.suggestions = list(previous.suggestions)
    if not request.topic:
        request.topic = previous.topic
