"""Which column holds what, in a review table no built-in reader knows: by its name and by its values.

Each (role, column) pair gets a score in 0..1 from the column's name (exactly a known name, or a known word in
it) and from the first rows' values (long free text is the review; fresh/rotten, POSITIVE/NEGATIVE, 0/1, 0/2
are labels; "3.5/5", "B+" are scores; parseable dates are dates). Columns are then given to roles best score
first, one role each. The decisive roles are the text, the sentiment and the movie: the inference is *sure*
when each of them is decided by a clear margin (SURE_MARGIN) over the next-best column, including the decision
that there is no label at all (confidence = the smallest margin over 2 x SURE_MARGIN, capped at 1, so sure
means at least 0.5). When it is not sure, `Inference.command` is the `--map` it would use.
"""
from __future__ import annotations

import logging
import re
import shlex
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from assistant.data.readers.base import ReaderError
from assistant.data.readers.generic import ColumnMapping
from assistant.data.readers.labels import SCORES, describe, fit_scheme
from assistant.data.readers.rows import read_header, sample_rows
from assistant.data.text import parse_bool, parse_date

log = logging.getLogger(__name__)

SAMPLE_ROWS = 500  # rows looked at: enough for the values to speak, bounded whatever the file's size
ASSIGN = 0.45  # a column takes a role from this score up
SURE_MARGIN = 0.15  # a decisive role's choice must beat the next-best column (or "none") by this much
DECISIVE = ("text", "sentiment", "movie")

# Per role: names that mean it outright, and words that suggest it inside a longer name.
_NAMES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    role: (frozenset(exact.split()), frozenset(words.split()))
    for role, exact, words in (
        ("text", "review reviews review_text review_content text quote quotes content comment comments body "
                 "snippet phrase sentence critique blurb excerpt review_body critic_quote",
         "review reviews quote text content comment body snippet critique blurb excerpt"),
        ("sentiment", "sentiment label labels fresh freshness polarity verdict review_type class is_fresh "
                      "is_positive positive liked tomato sentiment_label fresh_rotten",
         "sentiment label fresh freshness polarity verdict"),
        ("score", "score rating review_score original_score grade stars star_rating critic_rating",
         "score rating grade stars"),
        ("movie", "movie movie_title title film film_title movie_name film_name", "movie film title"),
        ("movie_id", "movie_id film_id rtid rotten_tomatoes_link imdb_id imdb link url movie_url tconst id",
         "link url rtid imdb"),
        ("critic", "critic critic_name author reviewer reviewer_name byline user username user_name",
         "critic author reviewer user"),
        ("publication", "publication publisher publisher_name publication_name outlet source site newspaper "
                        "magazine media media_outlet", "publication publisher outlet newspaper magazine"),
        ("date", "date review_date published date_published created created_at timestamp time publish_date "
                 "creation_date", "date published created time"),
        ("top_critic", "top_critic is_top_critic top topcritic", "top"),
    )
}
ROLES = tuple(_NAMES)
# Long text about the movie rather than a critic's words: a movies table, never review text.
_NOT_REVIEW_TEXT = frozenset("synopsis plot description summary movie_info info overview consensus "
                             "critics_consensus crew cast actors genre genres director directors writer writers "
                             "author authors studio tagline storyline url link".split())
# Roles read mostly from the values (the name only adds); the others need a name, the values only confirm.
_BY_CONTENT = frozenset({"text", "sentiment", "score", "date"})


@dataclass(frozen=True)
class Choice:
    role: str
    column: str | None  # None: no column takes the role
    score: float
    runner_up: str | None
    runner_score: float
    why: str = ""

    @property
    def margin(self) -> float:
        """How clearly this column (or "none") won over the next-best candidate."""
        return (self.score if self.column else ASSIGN) - self.runner_score


@dataclass
class Inference:
    header: list[str]
    rows: int  # rows looked at
    choices: dict[str, Choice] = field(default_factory=dict)
    labels: str | None = None  # the label scheme, when some column is read as the sentiment
    doubts: list[str] = field(default_factory=list)
    free_text: frozenset[str] = frozenset()  # columns whose values read as free text at all

    @property
    def mapping(self) -> ColumnMapping | None:
        """The best guess: the chosen columns, plus, for a decisive role left open, the candidate it doubts
        (and for the text, the longest free text there is). None when nothing can be the text."""
        chosen = {role: c.column for role, c in self.choices.items() if c.column}
        for role in DECISIVE:
            choice = self.choices.get(role)
            if choice and not choice.column and choice.runner_up and (
                    choice.runner_up in self.free_text if role == "text"
                    else choice.runner_score >= ASSIGN - SURE_MARGIN):
                chosen[role] = choice.runner_up
        if "text" not in chosen:
            return None
        if self.labels == SCORES and "sentiment" not in chosen and "score" in chosen:
            chosen["sentiment"] = chosen.pop("score")
        return ColumnMapping(**chosen, labels=self.labels or "words")  # type: ignore[arg-type]

    @property
    def confidence(self) -> float:
        if not self.choices.get("text") or not self.choices["text"].column:
            return 0.0
        margins = [self.choices[r].margin for r in DECISIVE if r in self.choices]
        return round(max(0.0, min(1.0, min(margins) / (2 * SURE_MARGIN))) if margins else 0.0, 2)

    @property
    def sure(self) -> bool:
        return self.mapping is not None and not self.doubts

    def command(self, path: Path) -> str:
        """The command to paste: `python ingest.py PATH --map SPEC`, quoted for a POSIX shell."""
        mapping = self.mapping
        spec = mapping.to_spec() if mapping else "text=COLUMN"
        return f"python ingest.py {shlex.quote(str(path))} --map {shlex.quote(spec)}"

    def explain(self) -> list[str]:
        """One line per chosen role: column, score and why; for the dry run and the page."""
        lines = []
        for role in ROLES:
            choice = self.choices.get(role)
            if choice and choice.column:
                runner = f"; next: {choice.runner_up} {choice.runner_score:.2f}" if choice.runner_up else ""
                lines.append(f"{role} = {choice.column} ({choice.score:.2f}: {choice.why}{runner})")
        if self.labels == SCORES and not self.choices["sentiment"].column:
            lines.append(f"sentiment = {self.choices['score'].column} (read from its scores)")
        if self.labels:
            lines.append(f"labels = {describe(self.labels)}")
        elif self.mapping is not None:
            lines.append("labels = none: every review is stored with sentiment \"unknown\"")
        return lines


@dataclass(frozen=True)
class _Column:
    """What the sampled values of one column look like."""

    name: str
    values: list[str]

    @property
    def filled(self) -> list[str]:
        return [v for v in self.values if v.strip()]

    def median_words(self) -> float:
        return statistics.median(len(v.split()) for v in self.filled) if self.filled else 0.0

    def share(self, test) -> float:
        filled = self.filled
        return sum(1 for v in filled if test(v)) / len(filled) if filled else 0.0


def _name_tokens(name: str) -> tuple[str, set[str]]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1_\2", name.strip())  # reviewText -> review_Text
    normal = re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")
    return normal, set(filter(None, normal.split("_")))


def _name_score(role: str, name: str) -> float:
    exact, words = _NAMES[role]
    normal, tokens = _name_tokens(name)
    if normal in exact:
        return 1.0
    return 0.7 if tokens & words else 0.0


def _content(role: str, col: _Column) -> tuple[float, str]:
    """How much the values look like the role (0..1), and why."""
    if not col.filled:
        return 0.0, "empty"
    words = col.median_words()
    numeric = col.share(lambda v: re.fullmatch(r"[-+]?\d+(\.\d+)?", v.strip()) is not None)
    if role == "text":
        if _name_tokens(col.name)[0] in _NOT_REVIEW_TEXT:
            return 0.0, "text about the movie, not a review"
        if fit_scheme(col.filled) or col.share(lambda v: parse_date(v) is not None) >= 0.5:
            return 0.0, "labels or dates, not free text"
        score = max(0.0, min(1.0, (words - 2) / 6))  # titles and names: 1-3 words
        return score, f"free text, median {words:g} words"
    if role in ("sentiment", "score"):
        fit = fit_scheme(col.filled)
        if fit is None:
            return 0.0, "no label scheme"
        if role == "score":
            return (fit.share if fit.scheme == SCORES else 0.0), f"scores like {', '.join(fit.distinct[:3])}"
        strength = {"words": 1.0, "freshness": 0.9, SCORES: 0.5}.get(fit.scheme, 0.0)
        if fit.scheme == "binary":  # 0/1 could be any flag; true/false even more so
            strength = 0.6 if set(fit.distinct) <= {"0", "1", "0.0", "1.0"} else 0.4
        if not fit.both_labels:
            strength *= 0.6
        return strength * fit.share, f"{fit.scheme} labels {'/'.join(fit.distinct[:4])}"
    if role == "date":
        return col.share(lambda v: parse_date(v) is not None), "dates"
    if role == "top_critic":
        distinct = {v.strip().lower() for v in col.filled}
        return (col.share(lambda v: parse_bool(v) is not None) if len(distinct) <= 2 else 0.0), "yes/no values"
    if role == "movie_id":
        repeats = len(set(col.filled)) < len(col.filled)
        return (1.0 if words <= 2 and (repeats or numeric < 0.5) else 0.2), "short ids"
    # movie, critic, publication: short names, not numbers, dates or labels
    plausible = 1.0 <= words <= (8 if role == "movie" else 5) and numeric < 0.5
    plausible = plausible and col.share(lambda v: parse_date(v) is not None) < 0.5 and fit_scheme(col.filled) is None
    return (1.0 if plausible else 0.0), f"short names, median {words:g} words"


def _score(role: str, col: _Column) -> tuple[float, str]:
    name = _name_score(role, col.name)
    content, why = _content(role, col)
    if role in _BY_CONTENT:
        total = 0.65 * content + 0.35 * name
    else:
        total = name * (0.4 + 0.6 * content)
    if name:
        why = f"{why}; named like a {role} column"
    return round(total, 3), why


def infer_columns(header: Sequence[str], rows: Sequence[dict[str, str]]) -> Inference:
    """Roles for the columns of ``header`` from ``rows`` (a sample); see the module docstring."""
    columns = [_Column(name, [row.get(name, "") or "" for row in rows]) for name in header]
    scored = {(role, col.name): _score(role, col) for role in ROLES for col in columns}
    taken: dict[str, str] = {}  # column -> role
    chosen: dict[str, str] = {}  # role -> column
    for (role, name), (score, _) in sorted(scored.items(), key=lambda kv: -kv[1][0]):
        if score < ASSIGN:
            break
        if role not in chosen and name not in taken:
            chosen[role], taken[name] = name, role
    result = Inference(header=list(header), rows=len(rows),
                       free_text=frozenset(c.name for c in columns if _content("text", c)[0] > 0))
    for role in ROLES:
        column = chosen.get(role)
        others = [(scored[role, c.name][0], c.name) for c in columns if c.name != column
                  and (c.name not in taken or scored[role, c.name][0] > scored[taken[c.name], c.name][0])]
        runner_score, runner = max(others, default=(0.0, None))
        score, why = scored[role, column] if column else (0.0, "")
        result.choices[role] = Choice(role, column, score, runner if runner_score > 0 else None,
                                      runner_score, why)
    maybe = result.choices["sentiment"]
    label_column = chosen.get("sentiment") or (maybe.runner_up if maybe.runner_score >= ASSIGN - SURE_MARGIN
                                               else None)
    if label_column and (fit := fit_scheme(_values(columns, label_column), min_share=0.5)):
        result.labels = fit.scheme
    elif "score" in chosen:
        result.labels = SCORES
    result.doubts = _doubts(result)
    return result


def _values(columns: list[_Column], name: str) -> list[str]:
    return next(c.filled for c in columns if c.name == name)


def _doubts(result: Inference) -> list[str]:
    doubts = []
    if not result.rows:
        doubts.append("the file has no rows to look at")
    text = result.choices["text"]
    if not text.column:
        doubts.append("no column looks like review text")
    for role in DECISIVE:
        choice = result.choices[role]
        if choice.margin >= SURE_MARGIN or (role == "text" and not choice.column):
            continue
        if choice.column:
            doubts.append(f"{role}: {choice.column!r} or {choice.runner_up!r}?")
        else:
            doubts.append(f"{role}: is {choice.runner_up!r} the {role}?")
    return doubts


def infer_file(path: Path, sample: int = SAMPLE_ROWS) -> Inference:
    """Inference from the file's header and first ``sample`` rows (bounded, whatever the file's size)."""
    path = Path(path)
    return infer_columns(read_header(path), sample_rows(path, sample))


def sure_mapping(path: Path) -> ColumnMapping:
    """The inferred mapping when the inference is sure; otherwise ReaderError naming the doubt and the
    `--map` command it would use, fitted to this file's header."""
    inference = infer_file(path)
    if inference.sure:
        mapping: ColumnMapping = inference.mapping  # type: ignore[assignment]
        log.info("%s: columns inferred (confidence %.2f): --map %s", path.name, inference.confidence,
                 shlex.quote(mapping.to_spec()))
        return mapping
    doubts = "; ".join(inference.doubts)
    if inference.mapping is None:
        raise ReaderError(path, f"cannot tell which column holds the review text ({doubts}); header: "
                                f"{', '.join(inference.header)}; give it: {inference.command(path)}")
    raise ReaderError(path, f"not sure of the columns ({doubts}, confidence {inference.confidence:.2f}); "
                            f"the mapping it would use: {inference.command(path)} (check it with --dry-run)")

