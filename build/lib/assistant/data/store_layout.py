"""The review store's on-disk layout: its manifest, the live-generation pointer, and the compatibility check.

Layout of ``settings.index_dir`` (generations and their pointer: `assistant.data.generations`)::

    CURRENT               name of the live generation, swapped atomically with os.replace
    gen-000003/
        index.faiss       FAISS inner-product index of normalized vectors (row i = docs.pos i)
        docs.sqlite       chunk text and metadata as JSON, plus columns used for filtering
        manifest.json     schema version, embedding model and dimension, faiss version, counts, source hashes
        .mra-owner.json   marker: this program made the folder (clean-up touches nothing without it)
    .write.lock           held by the one writer (`assistant.data.locks`); readers never take it

A new generation is built beside the live one (`store_writer`) and only then made current, so an interrupted
ingest leaves the previous store whole and loadable.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from pydantic import StrictFloat, StrictInt, StrictStr, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from assistant.data import generations
from assistant.data.embeddings import embedding_model_id
from assistant.settings import Settings

log = logging.getLogger(__name__)


SCHEMA_VERSION = 1
REBUILD_HINT = "python ingest.py --rebuild"


class StoreError(Exception):
    """A store that is missing, damaged or built for other settings; the message says what to run."""


class Counts(TypedDict):  # typing_extensions': pydantic reads typing.TypedDict only from Python 3.12
    chunks: StrictInt
    reviews: StrictInt
    movie_documents: StrictInt
    movies: StrictInt


@dataclass
class Manifest:
    schema_version: StrictInt
    embedding_model: StrictStr
    embedding_dim: StrictInt
    faiss_version: StrictStr
    counts: Counts
    sources: dict[StrictStr, StrictStr]  # file path -> sha256
    created: StrictFloat
    updated: StrictFloat

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """The manifest, its every field type-checked: StoreError names the first wrong field and the fix."""
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(f"Store manifest {path} is unreadable ({exc}); rebuild it: {REBUILD_HINT}") from exc
        try:
            return _MANIFEST.validate_python(data)
        except ValidationError as exc:
            raise StoreError(f"Store manifest {path} is damaged: {_first_problem(exc)}; "
                             f"rebuild it: {REBUILD_HINT}") from None

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=2, sort_keys=True))


_MANIFEST = TypeAdapter(Manifest)
_EXPECTED = {"int_type": "a whole number", "float_type": "a number", "string_type": "text",
             "dict_type": "an object", "model_type": "an object", "dataclass_type": "an object"}


def _first_problem(exc: ValidationError) -> str:
    """'counts.reviews is null, not a whole number': the first wrong field, in one line."""
    error = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in error["loc"]) or "the top level"
    if error["type"] == "missing":
        return f"{field} is missing"
    got = json.dumps(error.get("input"), default=str)
    got = got if len(got) <= 40 else got[:37] + "..."
    return f"{field} is {got}, not {_EXPECTED.get(error['type'], 'valid')}"


DOCS_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    pos INTEGER PRIMARY KEY,
    id TEXT UNIQUE NOT NULL,
    doc_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    movie_key TEXT,
    sentiment TEXT,
    text TEXT NOT NULL,
    meta TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS docs_movie ON docs(movie_key);
CREATE INDEX IF NOT EXISTS docs_doc ON docs(doc_id);
"""


def current_dir(index_dir: Path) -> Path | None:
    return generations.current(index_dir)


def is_store_generation(folder: Path) -> bool:
    """A generation written before generation markers existed still counts as ours if its manifest reads."""
    try:
        Manifest.read(folder / "manifest.json")
        return True
    except StoreError:
        return False


def check_compatible(manifest: Manifest, settings: Settings, where: Path) -> None:
    """Refuse a store built with another embedding model or schema: its vectors would be meaningless."""
    want = embedding_model_id(settings)
    if manifest.schema_version != SCHEMA_VERSION:
        raise StoreError(
            f"Store {where} has schema {manifest.schema_version}, this code reads {SCHEMA_VERSION}; run: {REBUILD_HINT}"
        )
    if manifest.embedding_model != want:
        raise StoreError(
            f"Store {where} was embedded with {manifest.embedding_model!r} but settings ask for {want!r}; "
            f"run: {REBUILD_HINT} (or set MRA_EMBEDDING_MODEL={manifest.embedding_model})"
        )


