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

from assistant.titles import COMMON_WORDS, TitleIndex, TitleMatch

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


# ---- vocabulary ----------------------------------------------------------------------------------

def _alts(*words: str) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


# (pattern, polarity, weight): explicit asks outweigh everyday adjectives ("a good negative review" is negative).
_SENTIMENT_WORDS: list[tuple[str, int, int]] = [
    (_alts("positive", "glowing", "raves?", "raving", "favou?rable", "fresh", r"thumbs?[- ]?up", "gushing",
           "rapturous", "enthusiastic", "complimentary", "flattering", "adoring", "admiring", "approving",
           "celebratory", "ecstatic", "loved it", "who loved", "love letter", r"(?:5|five)[- ]stars?",
           "praise", "praising", "praises", "positively", "upbeat", "optimistic"), +1, 2),
    (_alts("negative", "scathing", "pan", "panning", "pans", "rotten", r"thumbs?[- ]?down", "unfavou?rable",
           "damning", "hatchet job", "take ?down", "trash", "trashing", "roast", "roasting", "withering",
           "blistering", "savage", "brutal", "vicious", "caustic", "acerbic", "hated it", "who hated",
           r"(?:1|one|zero|0)[- ]stars?", "slam", "slamming", "bash", "bashing", r"rips? (?:it )?apart",
           r"tears? (?:it )?apart", "negatively", "pessimistic", "scornful", "dismissive", "snarky",
           "sarcastic", "mocking", "cynical", "unimpressed", "disappointed", "harsh", "harshest",
           r"critical(?! acclaim)(?!ly acclaimed)"), -1, 2),
    (_alts("good", "great", "excellent", "wonderful", "amazing", "nice", "warm", "sweet", r"kind (?:one|review|words)",
           "happy", "generous", "brilliant", "fantastic", "lovely", "charming", "glorious"), +1, 1),
    (_alts("bad", "terrible", "awful", "horrible", "nasty", "cruel", "angry", "furious", "grumpy", "sour",
           "biting", "cutting", "bitter", r"mean (?:one|review|take)", "worst", "worse", "rant", "hateful",
           "dreadful", "boring"), -1, 1),
]
_SENTIMENT_RE = [(re.compile(rf"\b(?:{p})\b", re.IGNORECASE), pol, w) for p, pol, w in _SENTIMENT_WORDS]
_NEGATOR_RE = re.compile(
    r"\b(?:not|no|don'?t|do not|never|isn'?t|wasn'?t|nothing|without|less|anything but|rather than|instead of|"
    r"other than|nor|neither|stop being)\s+(?:\w+\s+){0,2}$", re.IGNORECASE)
_TONE_RE = [
    (re.compile(r"\b(?:harsher|meaner|nastier|crueler|crueller|angrier|more (?:scathing|negative|brutal|savage|"
                r"critical|harsh|cutting|biting|vicious|cynical)|even worse|tougher|less (?:kind|nice|positive|"
                r"generous|gentle))\b", re.IGNORECASE), "harsher", -1),
    (re.compile(r"\b(?:kinder|nicer|gentler|softer|warmer|sweeter|happier|more (?:positive|generous|kind|"
                r"gentle|upbeat|enthusiastic|glowing)|less (?:harsh|negative|mean|scathing|brutal|critical))\b",
                re.IGNORECASE), "kinder", +1),
]

_READABLE = re.compile(r"[^\W_]{2,}")  # a word of two letters or digits, in any script
_HELP_RE = re.compile(
    r"^(?:/?help|\?+|commands?|usage|options|menu|examples?)\W*$|\bwhat (?:can|do|should) (?:you|i) (?:do|say|ask)\b|"
    r"\bhow (?:do(?:es)?|can|should) (?:i|you|this|it) (?:use|work|ask)\b|\bhow does this work\b|"
    r"\bwhat (?:are|is) (?:the|your) (?:commands?|options|features)\b|\bhelp me\b|\bwhat is this\b|"
    r"\bwhat are you for\b|\bhow to use\b|\bcan you help\b",
    re.IGNORECASE)
_SMALLTALK_RE = re.compile(
    r"^(?:hi+|hello+|hey+|yo|hiya|howdy|greetings|good (?:morning|afternoon|evening|night)|"
    r"thanks?(?: you)?(?: so much)?|"
    r"thx|ty|cheers|cool|ok(?:ay)?|k|great|nice|awesome|lol|haha+|bye|goodbye|see (?:you|ya)|"
    r"how are you(?: doing)?|how'?s it going|what'?s up|sup|who are you|what are you|are you (?:a )?(?:bot|human|"
    r"robot|ai|real)|who made you|good (?:job|bot)|well done|(?:that|this) (?:is|was) (?:great|good|funny|cool|"
    r"awesome|weird|bad|terrible))\b",
    re.IGNORECASE)
_WHY_RE = re.compile(
    r"^(?:why|how come|explain|sources?)\b|\bwhere did (?:that|this|it|you) (?:come from|get)\b|"
    r"\bwhat (?:was|is) (?:that|this|it) based on\b|\bwhat did you base\b|\bshow (?:me )?(?:the |your )?sources\b|"
    r"\bhow do you know\b|\bwhat do you mean\b|\bwhy did you (?:say|write)\b|\bexplain (?:that|this|it|yourself)\b",
    re.IGNORECASE)
_OPINION_RE = re.compile(
    r"\bwhat (?:do|did|does|would|have) (?:the )?(?:critics?|reviewers|people|everyone|audiences?|the press|they)\b"
    r"|\bhow (?:do|did|does|was|were|is|are) (?:the )?(?:critics?|reviewers)\b"
    r"|\bhow (?:was|is|did|were) .{1,80}? (?:received|reviewed|rated|do with critics|go over|fare)\b"
    r"|\b(?:critics'?|critical) (?:consensus|reception|verdict|opinion|take|response|score|rating)\b"
    r"|\bconsensus\b|\btomatometer\b|\b(?:rt|rotten tomatoes) (?:score|rating)\b"
    r"|^(?:is|was|are|were)\s+.{1,80}?\s+(?:fresh|rotten|any good|good|bad|worth (?:it|watching|seeing|a watch)"
    r"|well[- ]reviewed|overrated|underrated|liked|certified fresh)\b"
    r"|\bshould i (?:watch|see|bother with|skip)\b|\bworth (?:watching|seeing)\b"
    r"|\b(?:score|rating|ratings|reception|verdict) (?:of|for|on)\b"
    r"|\bwhat(?: is|'s| was) the (?:verdict|score|rating|reception)\b"
    r"|\b(?:reviews|critics|reviewers) (?:say|said|think|thought)\b"
    r"|\bdid (?:critics|people|reviewers|audiences) (?:like|love|hate|enjoy|rate)\b"
    r"|\bhow (?:good|bad) (?:is|was)\b|\bwhat (?:is|was) .{1,80}? like\?*$",
    re.IGNORECASE)
_REVIEW_RE = re.compile(
    r"\b(?:reviews?|write[- ]?up|critiques?|raves?|pan|roast|trash|takedown|hatchet job|thumbs?[- ]?(?:up|down)|"
    r"blurb|opinion piece|verdict on|take on)\b", re.IGNORECASE)
_ASK_RE = re.compile(
    r"\b(?:write|give|generate|make|compose|produce|draft|create|craft|show|need|want|try|do|one)\b", re.IGNORECASE)
_ANOTHER_RE = re.compile(
    r"^(?:(?:and |ok(?:ay)?,? |now )?(?:another|again|one more|once more|more|try again|regenerate|redo|re-?roll|"
    r"next|another one|give me another|do it again|same again|same thing|one more time|different one|"
    r"a different one|write another)\b)", re.IGNORECASE)
_FLIP_RE = re.compile(r"\b(?:the opposite|opposite one|flip it|other side|other way(?: around)?|reverse it|"
                      r"the other way)\b", re.IGNORECASE)
_SAME_MOVIE_RE = re.compile(r"\b(?:same (?:movie|film|one|title)|this (?:movie|film)|that (?:movie|film)|"
                            r"it|this one|that one)\b", re.IGNORECASE)
_FOLLOWUP_RE = re.compile(r"\b(?:now|another|again|instead|same|this time|one more|too|also|then|it|one)\b",
                          re.IGNORECASE)
_MOVIE_SWITCH_RE = re.compile(r"^(?:and |but |ok(?:ay)?,? |now )?(?:what about|how about|and|what of|same for|"
                              r"now do|do)\s+(?P<t>.+)$", re.IGNORECASE)
_GENERIC_MOVIE_RE = re.compile(r"\b(?:any|a random|some|random|a) (?:movie|film|flick)\b", re.IGNORECASE)

_GENRES = frozenset("""
horror comedy comedies thriller thrillers drama dramas romance romantic romcom rom-com sci-fi scifi science fiction
action animated animation cartoon cartoons documentary documentaries western westerns musical musicals superhero
war crime mystery fantasy family kids indie foreign french italian japanese korean noir slasher zombie vampire
monster disaster spy heist sequel sequels remake remakes blockbuster blockbusters biopic movie movies film films
flick flicks picture pictures show series franchise classic classics anime christmas holiday teen
""".split())
_ASPECTS = frozenset("""
acting actors actor actress plot story script screenplay writing dialogue animation music score soundtrack ending
visuals effects cinematography direction director cast characters character villain hero jokes humor humour
pacing length runtime performances performance lead editing costumes sets design tone themes message
""".split())
# Words of the request language itself: a title made only of these ("Fresh", "Horror") is not spotted in passing.
_VOCABULARY = COMMON_WORDS | _GENRES | _ASPECTS | frozenset(
    w for pattern, _, _ in _SENTIMENT_WORDS for w in re.findall(r"[a-z]{3,}", pattern))
_TOPIC_START = frozenset("a an some any one my this these those its".split())
_FILLER = frozenset("one review reviews please pls plz instead too also again now then this time thanks".split())
_TRAILING = _FILLER | {"movie", "film"}
_CUT_AT = re.compile(
    r"\s+(?:but|that|which|who|focusing|focused|focus|with|please|and make|in the style|instead|this time|again|"
    r"now|from|written|as if|like a|mentioning|talking|centered|centred|regarding|concerning|while|so that|"
    r"because|where)\b|[,.;!?()\"\u201c\u201d]|\s-\s|$", re.IGNORECASE)
_TITLE_SLOTS = [
    re.compile(r"[\"\u201c\u201d](?P<t>[^\"\u201c\u201d]{1,120})[\"\u201c\u201d]"),
    re.compile(r"\b(?:of|for|on|about|regarding|re|to)\s+(?P<t>\S.*)$", re.IGNORECASE),
    re.compile(r"^(?:is|was|are|were)\s+(?P<t>.{1,120}?)\s+(?:fresh|rotten|any good|good|bad|worth|well[- ]reviewed|"
               r"overrated|underrated|liked|certified)\b", re.IGNORECASE),
    re.compile(r"\b(?:review|rave|pan|roast|trash|critique|watch|see|skip)\s+"
               r"(?!(?:of|for|on|about|to|a|an|me|my|it|this|that|one|please)\b)(?P<t>\S.*)$", re.IGNORECASE),
    re.compile(r"^(?P<t>.{1,120}?)\s*[:\-]?\s+(?:review|rave|pan|thumbs|please|fresh|rotten)\b", re.IGNORECASE),
    _MOVIE_SWITCH_RE,
]
_TOPIC_LEAD = re.compile(
    r"\b(?:of|for|about|focusing on|focused on|focus on|with a focus on|regarding|concerning|mentioning|talking about|"
    r"that talks about|centered on|centred on|praising|criticizing|criticising|slamming|on)\s+", re.IGNORECASE)


# ---- pieces ----------------------------------------------------------------------------------------

def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9][A-Za-z0-9'\-]*", text.lower())


def detect_sentiment(text: str) -> tuple[str | None, str | None]:
    """(sentiment, tone) from sentiment words, with negation ("not a positive one") flipping them."""
    tone = None
    tone_vote = 0
    for pattern, name, polarity in _TONE_RE:
        if pattern.search(text):
            tone, tone_vote = name, polarity
    votes: list[tuple[int, int, int]] = []  # (position, polarity, weight)
    taken: list[tuple[int, int]] = []
    for pattern, polarity, weight in _SENTIMENT_RE:
        for m in pattern.finditer(text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            taken.append((m.start(), m.end()))
            before = re.split(r"[,.;:!?]", text[: m.start()])[-1]  # negation stops at punctuation
            negated = bool(_NEGATOR_RE.search(before))
            votes.append((m.start(), -polarity if negated else polarity, weight))
    score = sum(p * w for _, p, w in votes) + 3 * tone_vote
    if score > 0:
        return "positive", tone
    if score < 0:
        return "negative", tone
    if votes:  # a tie: the last word wins, being what the sentence ends on
        return ("positive" if max(votes)[1] > 0 else "negative"), tone
    return None, tone


def _cut_phrase(tail: str, trailing: frozenset[str] = _TRAILING) -> str:
    m = _CUT_AT.search(tail)
    phrase = tail[: m.start()] if m else tail
    words = phrase.split()[:MAX_TITLE_WORDS]
    while words and words[-1].lower().strip("'") in trailing:
        words.pop()
    return " ".join(words).strip(" '-:")


def is_topic_like(phrase: str) -> bool:
    words = _words(phrase)
    if not words:
        return False
    return (words[0] in _TOPIC_START or any(w in _GENRES for w in words)
            or any(w in _ASPECTS for w in words) or (words[0] == "the" and len(words) > 1 and words[1] in _ASPECTS))


def _names_something(phrase: str) -> bool:
    """Could these words be a movie's name (rather than filler like "it" or "the same one")?"""
    words = _words(phrase)
    if not words or len(words) > MAX_TITLE_WORDS:
        return False
    content = [w for w in words if w not in COMMON_WORDS]
    if not content:
        return False
    return not any(p.fullmatch(w) for w in content for p, _, _ in _SENTIMENT_RE)


@dataclass
class _TitleFind:
    match: TitleMatch | None = None
    phrase: str | None = None  # the words as typed that named (or tried to name) the movie
    unknown: str | None = None  # a name that is not in the store


def _is_bare(text: str) -> bool:
    """Nothing but a name ("lord of the rings"): its "of" is part of the title, not a slot."""
    if len(text.split()) > MAX_TITLE_WORDS:
        return False
    signals = (_REVIEW_RE, _OPINION_RE, _ASK_RE, _ANOTHER_RE, _FLIP_RE, _MOVIE_SWITCH_RE, _WHY_RE, _HELP_RE,
               _SMALLTALK_RE, *(p for p, _, _ in _SENTIMENT_RE), *(p for p, _, _ in _TONE_RE))
    return not any(p.search(text) for p in signals)


def find_title(text: str, titles: TitleIndex | None, min_score: float = 85.0) -> _TitleFind:
    """The movie a message names: exact titles first (longest), then small typos, else an unknown name."""
    tails: list[str] = []
    bare = _is_bare(text)
    if bare:
        tails.append(text)
    else:
        for slot in _TITLE_SLOTS:
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
                if all(w in _VOCABULARY for w in hit.key.split()) and not _quoted(text, phrase):
                    continue  # "a horror movie" is not the film "Horror"; quoting the title says it is
                rank = (hit.score, size)
                if best is None or rank > best[:2]:
                    best = (hit.score, size, hit, phrase)
        scanned = titles.scan(text, _VOCABULARY)
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


def _quoted(text: str, phrase: str) -> bool:
    return bool(re.search(rf"[\"\u201c]\s*{re.escape(phrase)}\s*[\"\u201d]", text, re.IGNORECASE))


def find_topic(text: str) -> str | None:
    """What the review should be about when it is not (only) a movie: "about a horror movie", "focusing on the plot"."""
    for m in _TOPIC_LEAD.finditer(text):
        if _TOPIC_LEAD.match(text, m.end()):
            continue  # "of focusing on the plot": the later lead has the topic
        phrase = _cut_phrase(text[m.end():], _FILLER)
        if phrase and not _TOPIC_LEAD.match(phrase) and is_topic_like(phrase):
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
    if not _READABLE.search(text):  # blank is understood; junk or markup alone is not
        blank = not (raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else raw or "").strip()
        return replace(base, understood=blank)

    title = find_title(text, titles, min_score)
    rest = _without(text, title.phrase)
    sentiment, tone = detect_sentiment(rest)
    topic = find_topic(rest)
    words = _words(text)
    named = title.match is not None or title.unknown is not None

    if _HELP_RE.search(text) and not named and not sentiment and not _REVIEW_RE.search(text):
        return replace(base, kind="help")
    if _WHY_RE.search(text) and not named:
        return replace(base, kind="why")
    if _SMALLTALK_RE.search(text) and len(words) <= 6 and not named and not _REVIEW_RE.search(text) \
            and not (sentiment and previous and _FOLLOWUP_RE.search(text)):
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

    opinion = bool(_OPINION_RE.search(text)) or (bool(re.match(r"^why\b", text, re.IGNORECASE)) and named)
    switch = _MOVIE_SWITCH_RE.match(text)
    if opinion:
        request.kind, request.sentiment, request.sentiment_from, request.tone = "opinion", None, None, None
        if not named and previous is not None and previous.movie:
            _carry_movie(request, previous)
        return request

    is_review = bool(_REVIEW_RE.search(text)) or bool(
        sentiment and (named or topic or previous or _ASK_RE.search(text)))
    if previous is not None:
        if _ANOTHER_RE.match(text) and not named:
            carried = replace(previous, text=text, original_chars=original, truncated=cut, followup="another",
                              sentiment_from="previous" if previous.sentiment else None)
            if sentiment:  # "another, but negative"
                carried.sentiment, carried.sentiment_from = sentiment, "message"
            return carried
        if _FLIP_RE.search(text) and previous.kind == "review" and not named:
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
        if is_review or tone or _SAME_MOVIE_RE.search(text):
            if not named and not topic and not _GENERIC_MOVIE_RE.search(text):
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
