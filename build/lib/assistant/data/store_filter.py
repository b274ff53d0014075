"""The review store's metadata filter: one parsed form that every vector backend applies inside its search.

A filter is a dict over the fields the docs table indexes::

    {"movie_key": "jaws"}                               equal to
    {"sentiment": ["positive", "negative"]}             any of
    {"kind": {"$ne": "movie"}}                          not equal to
    {"doc_id": {"$nin": ["rt:1a2b", "rt:3c4d"]}}        none of (how "another review" leaves out seen ones)

`$eq`, `$in`, `$ne` and `$nin` are accepted on every field; a None value sets no condition, so callers can
write ``{"movie_key": key, "sentiment": sentiment}`` with either unknown. Conditions on several fields all
apply. Stored values are normalized as the docs table's columns are: a document without a movie has
movie_key "" and one without a label sentiment "unknown".
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FILTER_FIELDS = ("movie_key", "sentiment", "kind", "doc_id")
_INCLUDE_OPS = ("$eq", "$in")
_EXCLUDE_OPS = ("$ne", "$nin")


@dataclass(frozen=True)
class Where:
    """Parsed filter: per field, the values a document may have (`include`) and those it may not (`exclude`)."""

    include: Mapping[str, frozenset[str]] = field(default_factory=dict)
    exclude: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: Mapping[str, Any] | Where | None) -> Where:
        """ValueError (one line) for a field the store does not index or an operator it does not know."""
        if spec is None:
            return cls()
        if isinstance(spec, Where):
            return spec
        if not isinstance(spec, Mapping):
            raise ValueError(f"A store filter is a dict over {', '.join(FILTER_FIELDS)}, not {type(spec).__name__}")
        include: dict[str, frozenset[str]] = {}
        exclude: dict[str, frozenset[str]] = {}
        for name, condition in spec.items():
            if name not in FILTER_FIELDS:
                raise ValueError(f"The store cannot filter on {name!r}; it filters on {', '.join(FILTER_FIELDS)}")
            operators = condition if isinstance(condition, Mapping) else {"$in": condition}
            for op, value in operators.items():
                if value is None:
                    continue
                if op in _INCLUDE_OPS:
                    values = _values(name, value)
                    include[name] = include[name] & values if name in include else values
                elif op in _EXCLUDE_OPS:
                    exclude[name] = exclude.get(name, frozenset()) | _values(name, value)
                else:
                    raise ValueError(f"Unknown filter operator {op!r} on {name!r}; use {', '.join(_INCLUDE_OPS + _EXCLUDE_OPS)}")
        return cls(include, exclude)

    @classmethod
    def of(cls, *, kind: str | None = None, movie_key: str | None = None, sentiment: str | None = None,
           exclude_ids: Iterable[str] = ()) -> Where:
        """The keyword form older callers use (`search_vector`, `neighbours`)."""
        return cls.parse({"kind": kind, "movie_key": movie_key, "sentiment": sentiment,
                          "doc_id": {"$nin": list(exclude_ids) or None}})

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)

    def and_also(self, other: Where) -> Where:
        """Both filters at once."""
        include = dict(self.include)
        for name, values in other.include.items():
            include[name] = include[name] & values if name in include else values
        exclude = {name: self.exclude.get(name, frozenset()) | other.exclude.get(name, frozenset())
                   for name in {*self.exclude, *other.exclude}}
        return Where(include, exclude)

    def is_empty_set(self) -> bool:
        """True when no document can pass (a field asked to equal nothing)."""
        return any(not values for values in self.include.values())


def filter_fields(doc_id: str, kind: str | None, movie_key: str | None, sentiment: str | None) -> dict[str, str]:
    """One document's filter fields, normalized: no movie is "", no label is "unknown"."""
    return {"doc_id": doc_id, "kind": kind or "review", "movie_key": movie_key or "", "sentiment": sentiment or "unknown"}


def _values(name: str, value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset([value])
    if isinstance(value, Iterable):
        values = list(value)
        if all(isinstance(v, str) for v in values):
            return frozenset(values)
    raise ValueError(f"Filter values for {name!r} are strings or lists of strings, not {value!r}")


@dataclass
class Columns:
    """The docs table's filter columns in position order, held in memory for masks (FAISS) and payloads."""

    kinds: np.ndarray
    movie_keys: np.ndarray
    sentiments: np.ndarray
    doc_ids: list[str]
    positions_by_doc: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.positions_by_doc:
            for pos, doc_id in enumerate(self.doc_ids):
                self.positions_by_doc.setdefault(doc_id, []).append(pos)
        # Each column as small integer codes: a mask over 100k positions is then one integer comparison.
        self._codes: dict[str, tuple[dict[str, int], np.ndarray]] = {}
        for name, column in (("kind", self.kinds), ("movie_key", self.movie_keys), ("sentiment", self.sentiments)):
            values, codes = np.unique(column.astype(str), return_inverse=True)
            self._codes[name] = ({v: i for i, v in enumerate(values.tolist())}, codes.astype(np.int32))

    def __len__(self) -> int:
        return len(self.doc_ids)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, str | None, str | None]]) -> Columns:
        """From (doc_id, kind, movie_key, sentiment) rows in position order, as the docs table stores them."""
        fields = [filter_fields(*row) for row in rows]
        return cls(kinds=np.array([f["kind"] for f in fields], dtype=object),
                   movie_keys=np.array([f["movie_key"] for f in fields], dtype=object),
                   sentiments=np.array([f["sentiment"] for f in fields], dtype=object),
                   doc_ids=[f["doc_id"] for f in fields])

    def payload(self, pos: int) -> dict[str, Any]:
        """The filter fields of one position (a Qdrant point's payload)."""
        return {"pos": pos, "doc_id": self.doc_ids[pos], "kind": self.kinds[pos],
                "movie_key": self.movie_keys[pos], "sentiment": self.sentiments[pos]}

    def mask(self, where: Where) -> np.ndarray | None:
        """Boolean mask of the positions passing `where`; None when it sets no condition."""
        if not where:
            return None
        mask = np.ones(len(self), dtype=bool)
        for name, values in where.include.items():
            mask &= self._matches(name, values)
        for name, values in where.exclude.items():
            mask &= ~self._matches(name, values)
        return mask

    def _matches(self, name: str, values: frozenset[str]) -> np.ndarray:
        if name == "doc_id":
            hit = np.zeros(len(self), dtype=bool)
            for doc_id in values:
                hit[self.positions_by_doc.get(doc_id, [])] = True
            return hit
        index, codes = self._codes[name]
        wanted = [index[v] for v in values if v in index]
        return np.isin(codes, wanted) if len(wanted) > 1 else codes == (wanted[0] if wanted else -1)
