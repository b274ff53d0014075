"""Label columns recognised by their values: which scheme a column speaks, and critics' scores as labels.

Schemes: "words" (fresh/rotten, POSITIVE/NEGATIVE, pos/neg), "freshness" (0 = rotten, 2 = fresh, stray 1s),
"binary" (1/0, true/false) and "scores" ("3.5/5", "7/10", "B+", "4 stars", "80%"), which become a label by a
stated cut-off while the score text is kept as the critic wrote it.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from assistant.data.text import LABEL_SCHEMES, Label, normalize_sentiment

SCORES = "scores"
MAPPING_SCHEMES: tuple[str, ...] = (*LABEL_SCHEMES, SCORES)

# A score at or above this share of its scale is positive, below it negative. On the mirror's 44,093 reviews that
# carry both a readable score and a fresh/rotten label (flatiron + kaggle sample) this cut-off agrees with the
# critic's own label on 94.6% of them: 2.5/5, 5/10 and C are rotten 96% of the time, 3/5 and 6/10 fresh 89%
# (tests/test_infer.py checks it on the real files when they are present).
POSITIVE_FROM = 0.6

_FRACTION = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:/|out of|of)\s*(\d+(?:\.\d+)?)$")
_STARS = re.compile(r"^(\d?(?:\.\d+)?)\s*(?:stars?|\*)(?:\s*(?:/|out of|of)\s*(\d+))?$")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")
# Letter grades on the usual 4.0 grade-point scale; A+ counts as the top.
_GRADES = {"A+": 4.0, "A": 4.0, "A-": 3.7, "B+": 3.3, "B": 3.0, "B-": 2.7, "C+": 2.3, "C": 2.0, "C-": 1.7,
           "D+": 1.3, "D": 1.0, "D-": 0.7, "F": 0.0}
_BLANKS = frozenset({"", "none", "null", "nan", "n/a", "na", "-", "--"})


def score_fraction(value: str | None) -> float | None:
    """Where a critic's score sits on its own scale, 0..1: "3.5/5" -> 0.7, "B+" -> 0.825, "4 stars" -> 0.8.

    None for anything without a stated scale (a bare "7" could be out of 5, 10 or 100) or off its scale.
    """
    text = " ".join((value or "").strip().split())
    if not text:
        return None
    if (grade := _GRADES.get(text.upper())) is not None:
        return grade / 4.0
    lowered = re.sub(r"(\d)?\s*½", lambda m: f"{m[1] or 0}.5", text.lower())  # "3½ stars" -> "3.5 stars"
    if m := _FRACTION.match(lowered):
        got, scale = float(m[1]), float(m[2])
        return got / scale if 0 < scale and got <= scale else None
    if m := _STARS.match(lowered):
        if not m[1]:
            return None
        got = float(m[1])
        scale = float(m[2]) if m[2] else 5.0
        return got / scale if 0 < scale and got <= scale else None
    if m := _PERCENT.match(lowered):
        got = float(m[1])
        return got / 100 if got <= 100 else None
    return None


def score_sentiment(value: str | None) -> Label | None:
    """positive / negative from a score by the stated cut-off; None when the value is no score."""
    fraction = score_fraction(value)
    if fraction is None:
        return None
    return "positive" if fraction >= POSITIVE_FROM else "negative"


def to_sentiment(value: str | None, scheme: str) -> Label | None:
    """A label under any mapping scheme, scores included."""
    return score_sentiment(value) if scheme == SCORES else normalize_sentiment(value, scheme)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SchemeFit:
    """How well a column's values read as labels of one scheme."""

    scheme: str
    share: float  # of the column's non-blank sampled values that the scheme reads
    values: int  # non-blank sampled values
    distinct: tuple[str, ...]  # the distinct values seen (lower-cased), at most a few

    @property
    def both_labels(self) -> bool:
        """Both sentiments occur among the sampled values."""
        labels = {to_sentiment(v, self.scheme) for v in self.distinct}
        return {"positive", "negative"} <= labels


def fit_scheme(values: Iterable[str], min_share: float = 0.9) -> SchemeFit | None:
    """The scheme that reads most of these values, or None when none reads ``min_share`` of them.

    0/1 is "binary" (1 = positive); 0/2 with a few stray 1s (which it cannot read) is "freshness"."""
    seen = Counter(v for v in (" ".join(str(x).split()).lower() for x in values) if v not in _BLANKS)
    total = sum(seen.values())
    if not total:
        return None
    distinct = tuple(v for v, _ in seen.most_common(8))

    def share(scheme: str) -> float:
        return sum(n for v, n in seen.items() if to_sentiment(v, scheme) is not None) / total

    if set(seen) <= {"0", "1", "2", "0.0", "1.0", "2.0"} and seen.keys() & {"2", "2.0"}:
        ones = seen["1"] + seen["1.0"]
        fresh_share = 1 - ones / total
        return SchemeFit("freshness", fresh_share, total, distinct) if fresh_share >= min_share else None
    best = max(("words", "binary"), key=share)
    if share(best) >= min_share:
        return SchemeFit(best, share(best), total, distinct)
    # Scores: values that state their scale ("7" alone does not).
    scored = sum(n for v, n in seen.items() if score_fraction(v) is not None) / total
    return SchemeFit(SCORES, scored, total, distinct) if scored >= min_share else None


def describe(scheme: str) -> str:
    """How a scheme reads, for the dry run and the page."""
    return {
        "words": "words: fresh/positive/pos = positive, rotten/negative/neg = negative",
        "freshness": "freshness: 2 = positive, 0 = negative (1 is neither: skipped)",
        "binary": "binary: 1/true = positive, 0/false = negative",
        SCORES: (f"scores: at least {POSITIVE_FROM:.0%} of the scale = positive, below = negative, none = unknown; "
                 "the score text is kept"),
    }.get(scheme, scheme)
