"""The store on Qdrant: the same filters and results as FAISS, ingest round-trips, generations, clear errors.

No server is needed. The embedded backend is qdrant-client's local mode in memory. The server backend's code
(collections, appends, clean-up) runs against one shared in-memory client standing in for the server at a URL.
"""
from __future__ import annotations

import json

import pytest
from langchain_text_splitters import RecursiveCharacterTextSplitter
from qdrant_client import QdrantClient

from assistant.data import vectors_qdrant
from assistant.data.ingestion import ingest, to_chunks
from assistant.data.records import Review
from assistant.data.store import ReviewStore, StoreError
from assistant.data.store_writer import StoreWriter
from assistant.data.vectors_faiss import FaissVectors
from assistant.data.vectors_qdrant import REGISTRY, QdrantVectors
from assistant.settings import Settings
from tests.fixtures_data import write_rt_fixtures
from tests.test_ingest import run_cli
from tests.test_store import FACTS, REVIEWS, SHARK, build

QUERIES = ["a terrifying shark and relentless tension", "wonderful animation for the whole family", "bad effects"]
FILTERS = [None, {"kind": "review"}, {"movie_key": "jaws"}, {"sentiment": "negative", "kind": "review"},
           {"movie_key": ["jaws", "cats"], "sentiment": {"$ne": "positive"}}, {"kind": "movie"},
           {"doc_id": {"$nin": [REVIEWS[3].doc_id, FACTS[0].doc_id]}}, {"movie_key": "no such movie"}]
SHARK_ID = REVIEWS[3].doc_id
SERVER = "http://qdrant.test:6333"  # never contacted: `server` patches the connection


@pytest.fixture(scope="module")
def both(tmp_path_factory, embeddings) -> tuple[ReviewStore, ReviewStore]:
    """The same store files opened with FAISS and with the embedded Qdrant."""
    settings = Settings(index_dir=tmp_path_factory.mktemp("store") / "index")
    faiss_store = build(settings, embeddings)
    return faiss_store, ReviewStore.open(settings.model_copy(update={"vector_store": "qdrant"}), embeddings)


@pytest.fixture
def server(monkeypatch) -> QdrantClient:
    """An in-memory Qdrant in place of the server at SERVER, shared by every connection in the test."""
    client = QdrantClient(location=":memory:")
    monkeypatch.setattr(vectors_qdrant, "connect", lambda settings: client)
    return client


def on_server(settings: Settings) -> Settings:
    return settings.model_copy(update={"vector_store": "qdrant", "qdrant_url": SERVER})


def ranked(hits) -> list[tuple[float, frozenset[str]]]:
    """Scores in order, each with the ids scoring it: identical chunks (a long synopsis repeats itself) tie, and
    backends may order a tie either way. A tie cut by k may keep different members, so the last group's ids
    count only when the hits did not fill k (callers pass k large enough, or accept the score check alone)."""
    groups: list[tuple[float, set[str]]] = []
    for doc, score in hits:
        if groups and abs(groups[-1][0] - score) < 1e-5:
            groups[-1][1].add(doc.id)
        else:
            groups.append((round(score, 4), {doc.id}))
    return [(score, frozenset(ids)) for score, ids in groups]


def same_hits(a, b, k: int) -> bool:
    ra, rb = ranked(a), ranked(b)
    if len(a) == k and ra and rb:  # the last tie may be cut differently
        ra, rb = ra[:-1] + [(ra[-1][0], None)], rb[:-1] + [(rb[-1][0], None)]
    return len(a) == len(b) and ra == rb


def test_embedded_qdrant_returns_what_faiss_returns(both, embeddings):
    faiss_store, qdrant_store = both
    assert isinstance(faiss_store.backend, FaissVectors) and isinstance(qdrant_store.backend, QdrantVectors)
    assert list(qdrant_store.directory.iterdir()) == list(faiss_store.directory.iterdir())  # no Qdrant files
    for vector in embeddings.embed_documents(QUERIES):
        for where in FILTERS:
            for k in (1, 3, 50):
                assert same_hits(qdrant_store.similarity_search_with_score_by_vector(vector, k=k, filter=where),
                                 faiss_store.similarity_search_with_score_by_vector(vector, k=k, filter=where), k), \
                    (where, k)
            mmr = [store.max_marginal_relevance_search_by_vector(vector, k=3, fetch_k=8, filter=where)
                   for store in (qdrant_store, faiss_store)]
            assert [d.id for d in mmr[0]] == [d.id for d in mmr[1]], where
    retriever = qdrant_store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "filter": {"movie_key": "jaws"}})
    assert {d.metadata["movie_key"] for d in retriever.invoke(SHARK)} == {"jaws"}
    assert same_hits(qdrant_store.neighbours(REVIEWS[0].doc_id, k=5), faiss_store.neighbours(REVIEWS[0].doc_id, k=5), 5)
    assert abs(qdrant_store.vectors_for([SHARK_ID]) - faiss_store.vectors_for([SHARK_ID])).max() < 1e-5


def test_ingest_then_open_round_trips_on_a_server(tmp_path, embeddings, server):
    data = write_rt_fixtures(tmp_path / "data")
    plain = Settings(index_dir=tmp_path / "faiss")
    remote = on_server(Settings(index_dir=tmp_path / "qdrant"))
    for settings in (plain, remote):
        ingest([data["critics"].parent.parent], settings, embeddings=embeddings, show_bar=False)
    local, store = ReviewStore.open(plain, embeddings), ReviewStore.open(remote, embeddings)
    collection = json.loads((store.directory / "vectors.json").read_text())["collection"]
    assert isinstance(store.backend, QdrantVectors) and collection.startswith("movie-reviews-")
    assert not (store.directory / "index.faiss").exists() and server.count(collection).count == store.total
    for query in ("a story about toys that come alive", "a dull romance"):
        for where in ({"movie_key": "toy story", "sentiment": "negative"}, {"kind": "movie"}, None):
            assert same_hits(store.similarity_search_with_score(query, k=4, filter=where),
                             local.similarity_search_with_score(query, k=4, filter=where), 4)
    with pytest.raises(StoreError, match="MRA_VECTOR_STORE=qdrant and MRA_QDRANT_URL"):
        ReviewStore.open(remote.model_copy(update={"vector_store": "faiss"}))


def test_appends_stay_invisible_to_open_readers_and_old_collections_are_dropped(tmp_path, embeddings, server):
    data = write_rt_fixtures(tmp_path / "data")
    settings = on_server(Settings(index_dir=tmp_path / "index"))
    ingest([data["critics"]], settings, embeddings=embeddings, show_bar=False)
    first = ReviewStore.open(settings, embeddings)
    ingest([data["critics_2020"]], settings, embeddings=embeddings, show_bar=False)  # appends to the collection
    second = ReviewStore.open(settings, embeddings)
    assert second.backend.collection == first.backend.collection and second.total > first.total
    for store in (first, second):
        hits = store.similarity_search("computer animation decades on", k=100)
        assert len(hits) == store.total == len({d.id for d in hits})  # the first never sees the appended points
    assert not {d.metadata["critic"] for d in first.similarity_search("anything", k=100)} & {"Kai Soto"}

    ingest([data["critics"]], settings, embeddings=embeddings, show_bar=False, rebuild=True)  # a new collection
    rebuilt = ReviewStore.open(settings, embeddings)
    assert rebuilt.backend.collection != first.backend.collection
    assert server.collection_exists(first.backend.collection)  # the generation it replaced may still be in use
    ingest([data["critics_2020"]], settings, embeddings=embeddings, show_bar=False)
    assert not server.collection_exists(first.backend.collection)  # no kept generation names it any more
    registry = json.loads((settings.index_dir / REGISTRY).read_text())["collections"]
    assert registry == [rebuilt.backend.collection]


def test_moving_files_to_a_server_and_aborted_builds(tmp_path, embeddings, server):
    settings = Settings(index_dir=tmp_path / "index")
    local = build(settings, embeddings)
    remote = on_server(settings)
    with pytest.raises(StoreError, match="copy them there with: python ingest.py"):
        ReviewStore.open(remote)
    build(remote, embeddings)  # nothing new to embed, but the vectors move into a collection
    moved = ReviewStore.open(remote, embeddings)
    assert isinstance(moved.backend, QdrantVectors) and moved.total == local.total
    assert same_hits(moved.similarity_search_with_score(SHARK, k=50, filter={"movie_key": "jaws"}),
                     local.similarity_search_with_score(SHARK, k=50, filter={"movie_key": "jaws"}), 50)

    writer = StoreWriter(remote, 384)
    chunks = to_chunks([Review("Brand new words.", "positive", movie="Up")], RecursiveCharacterTextSplitter())
    writer.add(chunks, embeddings.embed_documents([c.page_content for c in chunks]))
    assert server.count(moved.backend.collection).count == moved.total + 1
    writer.abort()  # what an interrupted ingest does: the appended point goes, the live store is whole
    assert server.count(moved.backend.collection).count == moved.total
    assert ReviewStore.open(remote).directory == moved.directory


def test_unknown_backend_and_unreachable_server_are_one_line_errors(tmp_path, embeddings, monkeypatch):
    settings = Settings(index_dir=tmp_path / "index")
    build(settings, embeddings)
    with pytest.raises(StoreError, match=r"Unknown vector store 'qdrnt' \(setting vector_store, MRA_VECTOR_STORE\)"):
        ReviewStore.open(settings.model_copy(update={"vector_store": "qdrnt"}))
    monkeypatch.setattr(vectors_qdrant, "QDRANT_TIMEOUT_S", 2)
    down = settings.model_copy(update={"vector_store": "qdrant", "qdrant_url": "http://127.0.0.1:9"})
    with pytest.raises(StoreError, match=r"Cannot reach the Qdrant server at http://127.0.0.1:9 \(setting qdrant_url") \
            as error:
        ingest([tmp_path], down, embeddings=embeddings, show_bar=False)
    assert "\n" not in str(error.value)
    data = write_rt_fixtures(tmp_path / "data")
    for env in ({"MRA_VECTOR_STORE": "qdrnt"}, {"MRA_VECTOR_STORE": "qdrant", "MRA_QDRANT_URL": "http://127.0.0.1:9"}):
        result = run_cli(str(data["critics"]), env_extra=env, tmp_path=tmp_path)
        errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
        assert result.returncode == 2 and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
        assert ("MRA_VECTOR_STORE" if "qdrnt" in env["MRA_VECTOR_STORE"] else "MRA_QDRANT_URL") in errors[0]


def test_a_server_store_keeps_only_documents_on_disk(tmp_path, embeddings, server):
    settings = on_server(Settings(index_dir=tmp_path / "index"))
    store = build(settings, embeddings)
    names = sorted(p.name for p in store.directory.iterdir() if not p.name.startswith("."))
    assert names == ["docs.sqlite", "manifest.json", "vectors.json"]  # the vectors are on the server
