"""The review store's on-disk layout: its manifest, the live-generation pointer, and the compatibility check.

Layout of ``settings.index_dir``::

    CURRENT               name of the live generation, swapped atomically with os.replace
    gen-000003/
        index.faiss       FAISS inner-product index of normalized vectors (row i = docs.pos i)
        docs.sqlite       chunk text and metadata as JSON, plus columns used for filtering
        manifest.json     schema version, embedding model and dimension, faiss version, counts, source hashes

A new generation is built beside the live one (`store_writer`) and only then made current, so an interrupted
ingest leaves the previous store whole and loadable.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from assistant.data.embeddings import embedding_model_id
from assistant.settings import Settings

log = logging.getLogger(__name__)


SCHEMA_VERSION = 1
REBUILD_HINT = "python ingest.py --rebuild"


class StoreError(Exception):
    """A store that is missing, damaged or built for other settings; the message says what to run."""


@dataclass
class Manifest:
    schema_version: int
    embedding_model: str
    embedding_dim: int
    faiss_version: str
    counts: dict
    sources: dict  # file path -> sha256
    created: float
    updated: float

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text())
            return cls(**{k: data[k] for k in cls.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"Store manifest {path} is unreadable ({exc}); rebuild it: {REBUILD_HINT}") from exc

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=2, sort_keys=True))


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
    pointer = index_dir / "CURRENT"
    if not pointer.exists():
        return None
    name = pointer.read_text().strip()
    gen = index_dir / name
    return gen if name and gen.is_dir() else None


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


