"""The FAISS review store on disk, persisted without pickle.

Layout of ``settings.index_dir``::

    CURRENT               name of the live generation, swapped atomically with os.replace
    gen-000003/
        index.faiss       FAISS inner-product index of normalized vectors (row i = docs.pos i)
        docs.sqlite       chunk text and metadata as JSON, plus columns used for filtering
        manifest.json     schema version, embedding model and dimension, faiss version, counts, source hashes

A new generation is built beside the live one and only then made current, so an interrupted ingest
leaves the previous store whole and loadable.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from langchain_community.docstore.in_memory import InMemoryDocstore
from langchain_community.vectorstores import FAISS
from langchain_community.vectorstores.utils import (
    DistanceStrategy,
    maximal_marginal_relevance,
)
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

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


_SCHEMA = """
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


def _current_dir(index_dir: Path) -> Path | None:
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


class ReviewStore:
    """Read side of the store: filtered and MMR search, documents by id, and a LangChain FAISS view."""

    def __init__(self, directory: Path, manifest: Manifest, index: faiss.Index, embeddings: Embeddings | None):
        self.directory = directory
        self.manifest = manifest
        self.index = index
        self.embeddings = embeddings
        self._local = threading.local()
        with self._connect() as db:
            rows = db.execute("SELECT pos, id, doc_id, kind, movie_key, sentiment FROM docs ORDER BY pos").fetchall()
        if len(rows) != index.ntotal or any(r[0] != i for i, r in enumerate(rows)):
            raise StoreError(
                f"Store {directory} is damaged: {index.ntotal} vectors but {len(rows)} documents; run: {REBUILD_HINT}"
            )
        self.ids = [r[1] for r in rows]
        self.doc_ids = [r[2] for r in rows]
        self.kinds = np.array([r[3] for r in rows], dtype=object)
        self.movie_keys = np.array([r[4] or "" for r in rows], dtype=object)
        self.sentiments = np.array([r[5] or "unknown" for r in rows], dtype=object)
        self._pos_by_doc: dict[str, list[int]] = {}
        for pos, doc_id in enumerate(self.doc_ids):
            self._pos_by_doc.setdefault(doc_id, []).append(pos)

    # -- opening ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, settings: Settings, embeddings: Embeddings | None = None, *, check: bool = True) -> ReviewStore:
        """Open the live store; StoreError (one line, with the command to run) when missing or incompatible."""
        directory = _current_dir(settings.index_dir)
        if directory is None:
            raise StoreError(f"No review store at {settings.index_dir}; build it with: python ingest.py")
        manifest = Manifest.read(directory / "manifest.json")
        if check:
            check_compatible(manifest, settings, directory)
        try:
            index = faiss.read_index(str(directory / "index.faiss"))
        except RuntimeError as exc:
            raise StoreError(f"Store {directory} has a damaged FAISS index; run: {REBUILD_HINT}") from exc
        if index.d != manifest.embedding_dim:
            raise StoreError(
                f"Store {directory}: index dimension {index.d} != manifest {manifest.embedding_dim}; run: {REBUILD_HINT}"
            )
        try:
            return cls(directory, manifest, index, embeddings)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"Store {directory} has a damaged document table ({exc}); run: {REBUILD_HINT}") from exc

    def _connect(self) -> sqlite3.Connection:
        # One read-only connection per thread: Streamlit serves sessions from several threads.
        conn = getattr(self._local, "conn", None)
        if conn is None:
            uri = f"file:{self.directory / 'docs.sqlite'}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._local.conn = conn
        return conn

    # -- reading ---------------------------------------------------------------------------------
    @property
    def total(self) -> int:
        return self.index.ntotal

    def _documents(self, positions: Sequence[int]) -> list[Document]:
        if not positions:
            return []
        db = self._connect()
        found: dict[int, Document] = {}
        for start in range(0, len(positions), 900):  # SQLite's bound-parameter limit
            batch = [int(p) for p in positions[start : start + 900]]
            marks = ",".join("?" * len(batch))
            for pos, text, meta in db.execute(f"SELECT pos, text, meta FROM docs WHERE pos IN ({marks})", batch):
                found[pos] = Document(page_content=text, metadata=json.loads(meta), id=self.ids[pos])
        return [found[int(p)] for p in positions]

    def iter_documents(self, kind: str | None = "review", batch: int = 2000) -> Iterator[Document]:
        positions = [i for i, k in enumerate(self.kinds) if kind is None or k == kind]
        for start in range(0, len(positions), batch):
            yield from self._documents(positions[start : start + batch])

    def get(self, doc_id: str) -> list[Document]:
        """All chunks of one stored review or movie document."""
        return self._documents(self._pos_by_doc.get(doc_id, []))

    def vectors_for(self, doc_ids: Sequence[str]) -> np.ndarray:
        """Stored vectors (first chunk of each document), in the order asked; KeyError for an unknown id."""
        positions = [self._pos_by_doc[doc_id][0] for doc_id in doc_ids]
        out = np.empty((len(positions), self.index.d), dtype=np.float32)
        for row, pos in enumerate(positions):
            out[row] = self.index.reconstruct(pos)
        return out

    def movie_positions(self, movie_key: str, kind: str | None = None) -> list[int]:
        mask = self.movie_keys == movie_key
        if kind:
            mask &= self.kinds == kind
        return np.flatnonzero(mask).tolist()

    def movie_keys_present(self) -> set[str]:
        return {k for k in set(self.movie_keys.tolist()) if k}

    def sql(self, query: str, params: Sequence = ()) -> list[tuple]:
        """Read-only SQL over the docs table (counts per movie and the like)."""
        return self._connect().execute(query, params).fetchall()

    # -- searching -------------------------------------------------------------------------------
    def _mask(self, kind: str | None, movie_key: str | None, sentiment: str | None) -> np.ndarray | None:
        if kind is None and movie_key is None and sentiment is None:
            return None
        mask = np.ones(self.total, dtype=bool)
        if kind:
            mask &= self.kinds == kind
        if movie_key:
            mask &= self.movie_keys == movie_key
        if sentiment:
            mask &= self.sentiments == sentiment
        return mask

    def embed_query(self, query: str) -> np.ndarray:
        if self.embeddings is None:
            raise StoreError("This store was opened without an embedding model, so it cannot embed a query")
        return np.asarray(self.embeddings.embed_query(query), dtype=np.float32)

    def search_vector(
        self,
        vector: np.ndarray,
        k: int = 4,
        *,
        kind: str | None = "review",
        movie_key: str | None = None,
        sentiment: str | None = None,
        exclude_ids: Iterable[str] = (),
        mmr: bool = False,
        fetch_k: int = 20,
        lambda_mult: float = 0.6,
    ) -> list[tuple[Document, float]]:
        """Exact top-k by cosine among the documents passing the filters (filters apply inside FAISS)."""
        mask = self._mask(kind, movie_key, sentiment)
        excluded = set(exclude_ids)
        if excluded:
            mask = np.ones(self.total, dtype=bool) if mask is None else mask.copy()
            for doc_id in excluded:
                mask[self._pos_by_doc.get(doc_id, [])] = False
        if mask is not None and not mask.any():
            return []
        want = max(k, fetch_k) if mmr else k
        params = None
        if mask is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.flatnonzero(mask).astype("int64")))
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        scores, idx = self.index.search(query, want, params=params)
        hits = [(int(i), float(s)) for i, s in zip(idx[0], scores[0]) if i != -1]
        if mmr and len(hits) > k:
            vectors = np.vstack([self.index.reconstruct(i) for i, _ in hits])
            chosen = maximal_marginal_relevance(query[0], vectors, k=k, lambda_mult=lambda_mult)
            hits = [hits[c] for c in chosen]
        docs = self._documents([i for i, _ in hits[:k]])
        return list(zip(docs, [s for _, s in hits[:k]]))

    def search(self, query: str, k: int = 4, **filters) -> list[tuple[Document, float]]:
        return self.search_vector(self.embed_query(query), k, **filters)

    def neighbours(
        self, doc_id: str, k: int = 4, *, same_movie: bool = True, exclude_ids: Iterable[str] = (), **filters
    ) -> list[tuple[Document, float]]:
        """Nearest other documents to a stored one, by its stored vector (no re-embedding)."""
        positions = self._pos_by_doc.get(doc_id)
        if not positions:
            return []
        vector = self.index.reconstruct(positions[0])
        movie = self.movie_keys[positions[0]] if same_movie else None
        return self.search_vector(
            vector, k, movie_key=movie or None, exclude_ids={doc_id, *exclude_ids}, **filters
        )

    def as_langchain(self) -> FAISS:
        """The store as LangChain's FAISS vector store (documents loaded in memory)."""
        if self.embeddings is None:
            raise StoreError("Open the store with an embedding model to use it as a LangChain vector store")
        docs = self._documents(list(range(self.total)))
        return FAISS(
            embedding_function=self.embeddings,
            index=self.index,
            docstore=InMemoryDocstore({d.id: d for d in docs}),
            index_to_docstore_id=dict(enumerate(self.ids)),
            distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
        )


class StoreWriter:
    """Builds the next generation beside the live one; `commit` makes it live in one atomic rename."""

    def __init__(self, settings: Settings, dim: int, *, rebuild: bool = False):
        self.settings = settings
        self.index_dir = settings.index_dir
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self._clean_stale()
        self.base = None if rebuild else _current_dir(self.index_dir)
        self.tmp = self.index_dir / f".building-{os.getpid()}-{int(time.time())}"
        self.tmp.mkdir()
        previous = Manifest.read(self.base / "manifest.json") if self.base else None
        if previous is not None:
            check_compatible(previous, settings, self.base)
            shutil.copy2(self.base / "docs.sqlite", self.tmp / "docs.sqlite")
            self.index = faiss.read_index(str(self.base / "index.faiss"))
        else:
            self.index = faiss.IndexFlatIP(dim)
        self.db = sqlite3.connect(self.tmp / "docs.sqlite")
        self.db.executescript(_SCHEMA)
        self.known_ids = {row[0] for row in self.db.execute("SELECT id FROM docs")}
        self.known_doc_ids = {row[0] for row in self.db.execute("SELECT DISTINCT doc_id FROM docs")}
        self.sources: dict = dict(previous.sources) if previous else {}
        self.created = previous.created if previous else time.time()
        self.dim = dim

    def _clean_stale(self) -> None:
        """Remove half-built generations left by an interrupted ingest, and superseded ones.

        The generation before the live one stays until the next commit: a process that loaded it
        (the running app) may still be reading its files.
        """
        live = _current_dir(self.index_dir)
        generations = sorted(p for p in self.index_dir.glob("gen-*") if p.is_dir() and p != live)
        keep = {live, *generations[-1:]}
        for path in self.index_dir.iterdir():
            if path.is_dir() and path not in keep and path.name.startswith((".building-", "gen-")):
                shutil.rmtree(path, ignore_errors=True)

    def add(self, documents: Sequence[Document], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        start = self.index.ntotal
        self.index.add(vectors)
        self.db.executemany(
            "INSERT INTO docs (pos, id, doc_id, kind, movie_key, sentiment, text, meta) VALUES (?,?,?,?,?,?,?,?)",
            [
                (
                    start + i, d.id, d.metadata["doc_id"], d.metadata.get("kind", "review"),
                    d.metadata.get("movie_key"), d.metadata.get("sentiment"), d.page_content,
                    json.dumps(d.metadata, ensure_ascii=False),
                )
                for i, d in enumerate(documents)
            ],
        )
        self.known_ids.update(d.id for d in documents)

    def commit(self, sources: dict[str, str]) -> Path:
        self.db.commit()
        kinds = dict(self.db.execute("SELECT kind, COUNT(DISTINCT doc_id) FROM docs GROUP BY kind").fetchall())
        movies = self.db.execute("SELECT COUNT(DISTINCT movie_key) FROM docs WHERE movie_key IS NOT NULL").fetchone()[0]
        self.db.close()
        faiss.write_index(self.index, str(self.tmp / "index.faiss"))
        self.sources.update(sources)
        Manifest(
            schema_version=SCHEMA_VERSION,
            embedding_model=embedding_model_id(self.settings),
            embedding_dim=self.dim,
            faiss_version=faiss.__version__,
            counts={"chunks": self.index.ntotal, "reviews": kinds.get("review", 0),
                    "movie_documents": kinds.get("movie", 0), "movies": movies},
            sources=self.sources,
            created=self.created,
            updated=time.time(),
        ).write(self.tmp / "manifest.json")
        number = 1 + max((int(p.name[4:]) for p in self.index_dir.glob("gen-*") if p.name[4:].isdigit()), default=0)
        final = self.index_dir / f"gen-{number:06d}"
        os.replace(self.tmp, final)
        pointer = self.index_dir / "CURRENT.tmp"
        pointer.write_text(final.name)
        os.replace(pointer, self.index_dir / "CURRENT")  # the one step that makes the new store live
        self._clean_stale()
        log.info("Store generation %s is live (%d chunks)", final.name, self.index.ntotal)
        return final

    def abort(self) -> None:
        try:
            self.db.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
