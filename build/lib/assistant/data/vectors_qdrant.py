"""Qdrant vectors of the review store: a Qdrant server, or an embedded in-memory Qdrant loaded from the store's files.

The docs table (SQLite) stays the document store either way; Qdrant holds each chunk's vector under point id =
docs.pos, with the filter fields as payload (pos, doc_id, kind, movie_key, sentiment), so a filter is a Qdrant
payload filter applied inside the search.

- Server (`qdrant_url`): one collection per lineage of generations, named ``<qdrant_collection>-<random>``
  and recorded in each generation's `vectors.json`. An incremental ingest appends points after the live
  generation's last position; every reader filters on ``pos < its generation's total``, so points a build is
  still writing are invisible to it, and the new generation becomes live only through the pointer switch.
  `--rebuild` (or moving a store from files to a server) starts a new collection. The collections this store
  made are listed in `<index_dir>/qdrant-collections.json`; one is dropped once no kept generation names it.
- Embedded (no `qdrant_url`): qdrant-client's local mode, **in memory**, filled from the generation's
  `index.faiss` when the store opens. Local mode's own on-disk storage is not used: it pickles every point, so
  opening a store folder someone handed you would unpickle it, and it allows one client per folder, so the app
  and a CLI could not read one store at once. In memory, each process has its own copy and nothing is unpickled.
  It scans with Python-side filters: right for tests and trying the Qdrant path; a server is for scale.

Why qdrant-client and not langchain-qdrant's `QdrantVectorStore`: the review store is itself the LangChain
VectorStore, and only needs ids, scores and vectors from its backend. QdrantVectorStore embeds texts itself on
add (ingest already has the vectors, batched with progress), its MMR hands `lambda_mult` to Qdrant's `diversity`,
which means the opposite (langchain-ai/langchain#39052), its results carry no vectors for our own MMR, and it
re-reads the collection's config on every search.
"""
from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from assistant.data.store_filter import FILTER_FIELDS, Columns, Where
from assistant.data.store_layout import REBUILD_HINT, StoreError
from assistant.settings import Settings

log = logging.getLogger(__name__)

COLLECTION_INFO = "vectors.json"  # in a generation folder whose vectors are on a Qdrant server
REGISTRY = "qdrant-collections.json"  # in the index folder: the collections this store made
BATCH = 512
_MEMORY_COLLECTION = "reviews"
_SETTING = "setting qdrant_url, MRA_QDRANT_URL"


def connect(settings: Settings) -> QdrantClient:
    """A client of the configured server, checked reachable; StoreError (one line, naming the setting) if not."""
    url = settings.qdrant_url
    if not url:
        raise StoreError(f"No Qdrant server is set ({_SETTING})")
    key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    try:
        client = QdrantClient(url=url, api_key=key, timeout=settings.qdrant_timeout_s, check_compatibility=False)
        client.get_collections()
    except (ResponseHandlingException, UnexpectedResponse, ValueError, OSError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreError(f"Cannot reach the Qdrant server at {url} ({_SETTING}): {reason}") from exc
    return client


def stored_collection(directory: Path) -> str | None:
    """The server collection a generation's vectors are in, or None when they are in its files."""
    path = directory / COLLECTION_INFO
    if not path.exists():
        return None
    try:
        info = json.loads(path.read_text())
        name = info["collection"]
        if info.get("backend") != "qdrant" or not isinstance(name, str):
            raise ValueError("not a Qdrant collection record")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"Store {directory}: {COLLECTION_INFO} is unreadable ({exc}); run: {REBUILD_HINT}") from exc
    return name


def to_filter(where: Where, total: int) -> models.Filter:
    """The store filter as a Qdrant payload filter, limited to the generation's positions."""
    must: list[Any] = [models.FieldCondition(key="pos", range=models.Range(lt=total))]
    must += [models.FieldCondition(key=name, match=models.MatchAny(any=sorted(values)))
             for name, values in where.include.items()]
    must_not = [models.FieldCondition(key=name, match=models.MatchAny(any=sorted(values)))
                for name, values in where.exclude.items()]
    return models.Filter(must=must, must_not=must_not or None)


class QdrantVectors:
    """Read side: top-k by cosine among the points passing the filter, and stored vectors by position."""

    def __init__(self, client: QdrantClient, collection: str, dim: int, total: int, *, owns_client: bool = False):
        self.client = client
        self.collection = collection
        self.dim = dim
        self.total = total
        self._owns_client = owns_client

    @classmethod
    def on_server(cls, settings: Settings, directory: Path, dim: int, total: int) -> QdrantVectors:
        collection = stored_collection(directory)
        client = connect(settings)
        if not client.collection_exists(collection):
            raise StoreError(f"Store {directory}: Qdrant collection {collection!r} is not on {settings.qdrant_url} "
                             f"({_SETTING}); point it at the server the store was built on, or run: {REBUILD_HINT}")
        stored = client.count(collection, count_filter=to_filter(Where(), total), exact=True).count
        if stored != total:
            raise StoreError(f"Store {directory}: Qdrant collection {collection!r} holds {stored} of its {total} "
                             f"vectors; run: {REBUILD_HINT}")
        return cls(client, collection, dim, total)

    @classmethod
    def in_memory(cls, vectors: np.ndarray, columns: Columns) -> QdrantVectors:
        """An embedded, in-memory Qdrant holding `vectors` (row i = position i) with the columns as payload."""
        client = QdrantClient(location=":memory:")
        dim = int(vectors.shape[1])
        client.create_collection(_MEMORY_COLLECTION, models.VectorParams(size=dim, distance=models.Distance.COSINE))
        for start, batch in _batches(vectors):
            client.upsert(_MEMORY_COLLECTION, _points(start, batch, columns), wait=True)
        return cls(client, _MEMORY_COLLECTION, dim, len(vectors), owns_client=True)

    def search(self, vector: np.ndarray, k: int, where: Where) -> tuple[list[int], list[float]]:
        """(positions, cosines), best first."""
        if k <= 0 or self.total == 0:
            return [], []
        found = self.client.query_points(self.collection, query=np.asarray(vector, dtype=np.float32).tolist(),
                                         query_filter=to_filter(where, self.total), limit=min(k, self.total),
                                         with_payload=False, with_vectors=False).points
        return [int(p.id) for p in found], [float(p.score) for p in found]

    def vectors(self, positions: Sequence[int]) -> np.ndarray:
        wanted = [int(p) for p in positions]
        got: dict[int, Any] = {}
        for start in range(0, len(wanted), BATCH):
            for point in self.client.retrieve(self.collection, wanted[start : start + BATCH], with_vectors=True):
                got[int(point.id)] = point.vector
        missing = [p for p in wanted if p not in got or p >= self.total]
        if missing:
            raise StoreError(f"Qdrant collection {self.collection!r} lacks the vectors of positions {missing[:5]}; "
                             f"run: {REBUILD_HINT}")
        return np.asarray([got[p] for p in wanted], dtype=np.float32).reshape(len(wanted), self.dim)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()


class QdrantSink:
    """Write side on a server: points upserted as the build goes; `save` checks they are all there."""

    def __init__(self, client: QdrantClient, collection: str, start: int, building: Path, *, created: bool):
        self.client = client
        self.collection = collection
        self.start = start
        self.total = start
        self.created = created
        # The build folder names its collection from the start, so clean-up never drops one a build still uses.
        (building / COLLECTION_INFO).write_text(json.dumps({"backend": "qdrant", "collection": collection}))

    @classmethod
    def new_collection(cls, client: QdrantClient, settings: Settings, dim: int, building: Path) -> QdrantSink:
        name = f"{settings.qdrant_collection}-{uuid.uuid4().hex[:12]}"
        _register(settings.index_dir, add=name)  # before it exists, so a killed build's collection is still found
        client.create_collection(name, models.VectorParams(size=dim, distance=models.Distance.COSINE))
        if client.init_options.get("url"):  # payload indexes only mean something on a server
            for field in FILTER_FIELDS:
                client.create_payload_index(name, field, models.PayloadSchemaType.KEYWORD)
            client.create_payload_index(name, "pos", models.PayloadSchemaType.INTEGER)
        log.info("Created Qdrant collection %s", name)
        return cls(client, name, 0, building, created=True)

    @classmethod
    def append_to(cls, client: QdrantClient, collection: str, start: int, building: Path) -> QdrantSink:
        """Extend the live generation's collection after its last position (readers of it never look there)."""
        if not client.collection_exists(collection):
            raise StoreError(f"Qdrant collection {collection!r} of the live store is gone; run: {REBUILD_HINT}")
        return cls(client, collection, start, building, created=False)

    def add(self, vectors: np.ndarray, payloads: Sequence[dict]) -> None:
        points = [models.PointStruct(id=self.total + i, vector=v.tolist(), payload={**p, "pos": self.total + i})
                  for i, (v, p) in enumerate(zip(np.asarray(vectors, dtype=np.float32), payloads, strict=True))]
        for start in range(0, len(points), BATCH):
            self.client.upsert(self.collection, points[start : start + BATCH], wait=True)
        self.total += len(points)

    def save(self, building: Path) -> None:
        stored = self.client.count(self.collection, count_filter=to_filter(Where(), self.total), exact=True).count
        if stored != self.total:
            raise StoreError(f"Qdrant collection {self.collection!r} holds {stored} of {self.total} vectors; "
                             "the new store was not made live")

    def abort(self) -> None:
        """Undo this build on the server: its new collection, or the points it appended."""
        try:
            if self.created:
                self.client.delete_collection(self.collection)
            elif self.total > self.start:
                self.client.delete(self.collection, points_selector=models.FilterSelector(filter=models.Filter(
                    must=[models.FieldCondition(key="pos", range=models.Range(gte=self.start))])))
        except (ResponseHandlingException, UnexpectedResponse) as exc:  # the next writer's clean-up retries
            log.warning("Could not undo the build in Qdrant collection %s: %s", self.collection, exc)


def _points(start: int, vectors: np.ndarray, columns: Columns) -> list[models.PointStruct]:
    return [models.PointStruct(id=start + i, vector=v.tolist(), payload=columns.payload(start + i))
            for i, v in enumerate(vectors)]


def _batches(vectors: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    for start in range(0, len(vectors), BATCH):
        yield start, np.asarray(vectors[start : start + BATCH], dtype=np.float32)


# -- which collections this store made, so clean-up drops only those ---------------------------------------------
def _read_registry(index_dir: Path) -> list[str]:
    try:
        names = json.loads((index_dir / REGISTRY).read_text()).get("collections", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [n for n in names if isinstance(n, str)]


def _register(index_dir: Path, *, add: str | None = None, remove: set[str] = frozenset()) -> None:
    names = [n for n in _read_registry(index_dir) if n not in remove] + ([add] if add else [])
    tmp = index_dir / f".{REGISTRY}.{os.getpid()}"
    tmp.write_text(json.dumps({"collections": names}, indent=1))
    os.replace(tmp, index_dir / REGISTRY)


def drop_unused_collections(settings: Settings) -> list[str]:
    """Drop this store's collections that no generation or build folder names any more; returns them.

    Run by the writer, under the store's writer lock, after its folder clean-up.
    """
    index_dir = settings.index_dir
    made = _read_registry(index_dir)
    if not made:
        return []
    named = {name for folder in index_dir.iterdir() if folder.is_dir()
             for name in [_collection_or_none(folder)] if name}
    unused = [name for name in made if name not in named]
    if not unused:
        return []
    if not settings.qdrant_url:
        log.warning("Qdrant collections %s are no longer used, but no qdrant_url is set to drop them", unused)
        return []
    try:
        client = connect(settings)
        for name in unused:
            client.delete_collection(name)
    except (StoreError, ResponseHandlingException, UnexpectedResponse) as exc:
        log.warning("Could not drop unused Qdrant collections %s (next ingest retries): %s", unused, exc)
        return []
    _register(index_dir, remove=set(unused))
    log.info("Dropped unused Qdrant collections %s", unused)
    return unused


def _collection_or_none(folder: Path) -> str | None:
    try:
        return stored_collection(folder)
    except StoreError:
        return None
