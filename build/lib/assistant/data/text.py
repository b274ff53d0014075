"""Small text helpers shared by the readers: cleaning, detokenizing, labels, dates, booleans."""
from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from typing import Literal

import ftfy

Label = Literal["positive", "negative"]
# How a source spells its labels; each reader names its own so that "0" never means two things.
LabelScheme = Literal["words", "freshness", "binary"]
LABEL_SCHEMES: tuple[str, ...] = ("words", "freshness", "binary")

_LABELS: dict[str, dict[str, Label]] = {
    # Rotten Tomatoes words and their common spellings: fresh/rotten, Fresh/Rotten, pos/neg.
    "words": {
        "fresh": "positive", "certified fresh": "positive", "certified-fresh": "positive",
        "positive": "positive", "pos": "positive",
        "rotten": "negative", "negative": "negative", "neg": "negative",
    },
    # The freshness CSV: 0 = rotten, 2 = fresh; its stray 1s are unusable.
    "freshness": {"0": "negative", "0.0": "negative", "2": "positive", "2.0": "positive"},
    # Hub-style class ids and booleans: 1 = positive, 0 = negative.
    "binary": {
        "1": "positive", "1.0": "positive", "true": "positive", "t": "positive", "yes": "positive",
        "0": "negative", "0.0": "negative", "false": "negative", "f": "negative", "no": "negative",
    },
}

_PLACEHOLDERS = {"", "none", "null", "nan", "n/a", "na", "-", "--", "."}
_SPACES = re.compile(r"\s+")
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-f]+|[a-z][a-z0-9]*);", re.IGNORECASE)
_QUOTE_PAIRS = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019"}
# Text is data: terminal escape sequences (CSI "ESC [ ... m", OSC "ESC ] ... BEL") go whole, then every other
# C0/C1 control but the whitespace collapsed below, DEL, and the bidi controls that reorder how a line displays
# ("Trojan Source"). In a review they are noise; printed on a terminal they would act.
_ESCAPE_SEQUENCES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x9b[0-?]*[ -/]*[@-~]")
_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
CONTROLS_REMOVED = "control or bidi characters removed"
_cleanups: ContextVar[Counter | None] = ContextVar("cleanups", default=None)


@contextmanager
def counting_cleanups() -> Iterator[Counter]:
    """Count, by step, the values `clean_text` changes in this context (for the ingest summary)."""
    counts: Counter = Counter()
    token = _cleanups.set(counts)
    try:
        yield counts
    finally:
        _cleanups.reset(token)


def _without_controls(text: str) -> str:
    cleaned = _CONTROLS.sub("", _ESCAPE_SEQUENCES.sub("", text))
    if cleaned != text and (counts := _cleanups.get()) is not None:
        counts[CONTROLS_REMOVED] += 1
    return cleaned


def clean_text(value: str | None) -> str:
    """Repair mojibake, unescape HTML entities, remove control and bidi characters, collapse whitespace and drop
    wrapping quotes.

    Returns "" for empty values and placeholders such as "none" or "NaN".
    """
    if not value:
        return ""
    text = value if value.isprintable() else _without_controls(value)  # isprintable: a fast C check
    if "&" in text:
        # Only well-formed entities: html.unescape alone would turn "&not" in prose into "¬".
        text = _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)
    if not text.isascii():  # ftfy costs ~0.1 ms a call; plain ASCII has nothing for it to fix
        text = ftfy.fix_text(text)
    text = " ".join(text.split())  # str.split() knows Unicode spaces (\xa0, \u2028) and is C-fast
    if text[:1] in _QUOTE_PAIRS:
        text = _strip_wrapping_quotes(text)
    return "" if len(text) <= 5 and text.lower() in _PLACEHOLDERS else text


def _strip_wrapping_quotes(text: str) -> str:
    """'"Great fun."' -> 'Great fun.', but '"Conan" meets "Red Sonja"' stays as it is."""
    while len(text) >= 2 and text[0] in _QUOTE_PAIRS and text[-1] == _QUOTE_PAIRS[text[0]]:
        opener, closer = text[0], text[-1]
        inner = text[1:-1]
        if opener in inner or closer in inner:
            break
        text = inner.strip()
    return text


_DETOKENIZE_STEPS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-lrb-", re.I), "("), (re.compile(r"-rrb-", re.I), ")"),
    (re.compile(r"-lsb-", re.I), "["), (re.compile(r"-rsb-", re.I), "]"),
    (re.compile(r"-lcb-", re.I), "{"), (re.compile(r"-rcb-", re.I), "}"),
    (re.compile(r"``|''"), '"'),
    (re.compile(r"`"), "'"),
    (re.compile(r"(\w) n't\b", re.I), r"\1n't"),  # "is n't" -> "isn't", "ca n't" -> "can't"
    (re.compile(r"(\w) '(s|re|ve|ll|d|m)\b", re.I), r"\1'\2"),  # "rock 's" -> "rock's"
    (re.compile(r"\.(?: \.){2,}"), "..."),  # ". . ." -> "..."
    (re.compile(r'"\s*([^"]*?)\s*"'), r'"\1"'),  # '" conan "' -> '"conan"'
    (re.compile(r"\s+([.,;:!?%)\]}])"), r"\1"),  # "word ," -> "word,"
    (re.compile(r"([(\[{$])\s+"), r"\1"),  # "( x" -> "(x"
    (re.compile(r"([.,;:!?]) '(?=\s|$)"), r"\1'"),  # "'the ring . '" -> "'the ring.'"
    (re.compile(r"\bi\b(?=$|[\s'.,;:!?)])"), "I"),
)
# A closing quote after "!" is usually a title ('hey arnold!' has...), so only "x. next" counts;
# initials ("l. a.") and titles ("ms. mirren") do not end sentences either.
_NOT_AFTER = "".join(rf"(?<!\b{a})" for a in ("mr", "mrs", "ms", "dr", "st", "vs", "jr", "sr", "[a-z]"))
_SENTENCE_START = re.compile(rf"((?<!\.){_NOT_AFTER}(?:\.|[!?])\s+[\"'(]*)([a-z])")
_FIRST_LETTER = re.compile(r"^([^A-Za-z]*)([a-z])")


def detokenize(text: str) -> str:
    """Undo Pang & Lee tokenization ("is n't", " , ", '" conan "') and capitalize sentences."""
    for pattern, replacement in _DETOKENIZE_STEPS:
        text = pattern.sub(replacement, text)
    text = _SPACES.sub(" ", text).strip()
    # An ellipsis ("...") does not end a sentence, hence the (?<!\.) above.
    text = _SENTENCE_START.sub(_upper_second, text)
    return _FIRST_LETTER.sub(_upper_second, text, count=1)


def _upper_second(match: re.Match[str]) -> str:
    return match.group(1) + match.group(2).upper()


def normalize_sentiment(value: object, scheme: LabelScheme = "words") -> Label | None:
    """Map a source label to "positive"/"negative" under an explicit scheme; None = unusable.

    scheme "words": fresh/rotten, positive/negative, pos/neg (any case);
    "freshness": 0 = negative, 2 = positive (1 is unusable); "binary": 1/0, true/false.
    """
    if scheme not in _LABELS:
        raise ValueError(f"unknown label scheme {scheme!r}; use one of {', '.join(LABEL_SCHEMES)}")
    if value is None:
        return None
    key = str(value).strip().lower()
    return _LABELS[scheme].get(key)


_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:$|[T ])")
_MONTH_DAY_YEAR = re.compile(r"^([A-Za-z]{3,9})\.? (\d{1,2}),? (\d{4})\b")
_DAY_MONTH_YEAR = re.compile(r"^(\d{1,2}) ([A-Za-z]{3,9})\.?,? (\d{4})\b")
_US_SLASHES = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})\b")
MIN_YEAR = 1900  # earlier dates in this data are placeholders (1800-01-01)


def parse_date(value: str | None, placeholders: frozenset[str] = frozenset()) -> str | None:
    """ISO "YYYY-MM-DD" from ISO, "November 10, 2018", "Oct 9, 1971", "9 Oct 1971" or "10/9/1971".

    None for empty, unparseable, pre-1900 placeholder dates and any ISO date in ``placeholders``.
    """
    text = (value or "").strip()
    if not text:
        return None
    if m := _ISO.match(text):
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
    elif m := _MONTH_DAY_YEAR.match(text):
        y, mo, d = int(m[3]), _MONTHS.get(m[1][:3].lower(), 0), int(m[2])
    elif m := _DAY_MONTH_YEAR.match(text):
        y, mo, d = int(m[3]), _MONTHS.get(m[2][:3].lower(), 0), int(m[1])
    elif m := _US_SLASHES.match(text):
        y, mo, d = int(m[3]), int(m[1]), int(m[2])
    else:
        return None
    try:
        iso = date(y, mo, d).isoformat()
    except ValueError:
        return None
    return None if y < MIN_YEAR or iso in placeholders else iso


_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


def parse_bool(value: object) -> bool | None:
    """True/False from "True", "1", "yes", 0 ...; None when empty or anything else."""
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    key = str(value).strip().lower()
    return True if key in _TRUE else False if key in _FALSE else None


_WORD_START = re.compile(r"(^|[\s\-(\"/])([a-z])")


def tidy_title(title: str | None) -> str:
    """Clean a movie title; an all-lower-case one ("toy story") gets capitals ("Toy Story")."""
    text = clean_text(title)
    return _WORD_START.sub(lambda m: m.group(1) + m.group(2).upper(), text) if text.islower() else text
