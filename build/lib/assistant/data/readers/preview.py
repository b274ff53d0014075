"""The dry run: what ingesting a file would do, from its first rows, reading nothing else and writing nothing.

    preview = preview_file(path)           # detected format, mapping, label scheme, counts of the first rows
    print("\\n".join(preview.lines()))      # or preview.as_json(); `ingest.py FILE --dry-run` does both
"""
from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assistant.data.readers.base import ReadStats, source_label
from assistant.data.readers.detect import detect_format, discover
from assistant.data.readers.generic import ColumnMapping
from assistant.data.readers.infer import infer_file
from assistant.data.readers.labels import describe
from assistant.data.readers.registry import read_file
from assistant.data.readers.rows import table_kind
from assistant.data.records import Review

DRY_RUN_ROWS = 1000
EXAMPLES = 3
# How each built-in reader reads labels.
BUILT_IN_LABELS = {
    "critics": "words: fresh = positive, rotten = negative, none = unknown",
    "kaggle_reviews": describe("words"), "flatiron_reviews": describe("words"),
    "freshness": describe("freshness"), "polarity": "by file name: .pos = positive, .neg = negative",
    "kaggle_movies": "none: movie facts", "flatiron_movies": "none: movie facts", "top_movies": "none: movie facts",
}


@dataclass
class Preview:
    path: str
    format: str  # one of readers.FORMATS
    container: str  # csv, tsv, jsonl, parquet (+ " gzip"), or text
    reader: str  # how the columns are known: a built-in reader, inferred, or given
    mapping: str | None = None  # as `--map` takes it
    labels: str | None = None
    confidence: float | None = None  # of inferred columns
    columns: list[str] = field(default_factory=list)  # why each column got its role
    rows: int = 0
    kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)
    sentiments: dict[str, int] = field(default_factory=dict)
    movies: list[str] = field(default_factory=list)  # the first titles met
    movie_count: int = 0
    examples: list[dict] = field(default_factory=list)
    error: str | None = None  # one line: why it would not be ingested as it stands
    command: str | None = None  # what to run instead, when there is one

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_json(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def lines(self) -> list[str]:
        out = [f"{self.path}: {self.container}, {self.reader}"]
        if self.mapping:
            out.append(f"  mapping: --map {shlex.quote(self.mapping)}")
        out += [f"  {line}" for line in self.columns]
        if self.labels and not self.columns:
            out.append(f"  labels: {self.labels}")
        by_label = ", ".join(f"{k} {v:,}" for k, v in sorted(self.sentiments.items()))
        skipped = ", ".join(f"{k}: {v:,}" for k, v in sorted(self.skipped.items())) or "none"
        if self.rows:
            out.append(f"  first {self.rows:,} rows: {self.kept:,} kept" + (f" ({by_label})" if by_label else "")
                       + f", skipped: {skipped}")
        out += [f"  note: {k}: {v:,}" for k, v in sorted(self.notes.items())]
        if self.movie_count:
            more = ", ..." if self.movie_count > len(self.movies) else ""
            out.append(f"  movies: {self.movie_count:,} ({', '.join(self.movies)}{more})")
        for ex in self.examples:
            head = " / ".join(str(v) for v in (ex.get("movie"), ex.get("sentiment"), ex.get("score")) if v)
            out.append(f"  e.g. [{head}] {ex['text']}")
        if self.error:
            out.append(f"  NOT INGESTED AS IT STANDS: {self.error}")
        if self.command:
            out.append(f"  to ingest it, check the mapping above and run: {self.command}")
        return out


def preview_file(path: Path, mapping: ColumnMapping | None = None, rows: int = DRY_RUN_ROWS) -> Preview:
    """What `ingest.py PATH [--map ...]` would read from the first ``rows`` rows of one file.

    A file that cannot be read at all raises ReaderError; one whose columns the inference is not sure of comes
    back with ``error`` and ``command`` set, counted with the mapping it would use."""
    path = Path(path)
    fmt = detect_format(path)
    preview = Preview(path=str(path), format=fmt, container=table_kind(path) or "text",
                      reader=f"built-in reader: {fmt}", labels=BUILT_IN_LABELS.get(fmt))
    if fmt == "csv":
        if mapping is None:
            inference = infer_file(path)
            mapping = inference.mapping
            preview.reader = f"columns inferred (confidence {inference.confidence:.2f})"
            preview.confidence = inference.confidence
            preview.columns = inference.explain()
            if not inference.sure:
                preview.error = "not sure of the columns: " + "; ".join(inference.doubts)
                preview.command = inference.command(path) if mapping else None
            if mapping is None:
                return preview
        else:
            preview.reader = "columns given by --map"
        preview.mapping = mapping.to_spec()
        preview.labels = describe(mapping.labels) if mapping.sentiment else "none: sentiment unknown"
    stats = ReadStats(limit=rows)
    sentiments: Counter = Counter()
    movies: dict[str, None] = {}
    for record in read_file(path, fmt, stats, mapping, source=source_label(path)):
        if isinstance(record, Review):
            sentiments[record.sentiment] += 1
            title, text, extra = record.movie, record.text, {"sentiment": record.sentiment, "score": record.score}
        else:
            title, text, extra = record.title, record.to_text(), {"sentiment": "movie facts"}
        if title or record.key:
            movies.setdefault(title or record.key or "", None)
        if len(preview.examples) < EXAMPLES:
            flat = " ".join(text.split())  # movie facts run over several lines
            short = flat if len(flat) <= 160 else flat[:157] + "..."
            preview.examples.append({"movie": title, **extra, "text": short})
    preview.rows, preview.kept = stats.rows, stats.kept
    preview.skipped, preview.notes = dict(stats.skipped), dict(stats.notes)
    preview.sentiments = dict(sentiments)
    preview.movie_count = len(movies)
    preview.movies = list(movies)[:5]
    return preview


def preview_paths(paths: list[Path], mapping: ColumnMapping | None = None,
                  rows: int = DRY_RUN_ROWS) -> list[Preview]:
    """A preview of every file `ingest.py PATHS` would read (see readers.discover)."""
    return [preview_file(path, mapping if fmt == "csv" else None, rows)
            for path, fmt in discover(list(paths), include_csv=mapping is not None)]

