"""The FAISS store: persistence without pickle, filtered search, manifest checks, atomic generations."""
from __future__ import annotations

import json

import numpy as np
import pytest
from langchain_community.vectorstores import FAISS
from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.data.ingestion import to_chunks
from assistant.data.records import MovieFacts, Review
from assistant.data.store import ReviewStore, StoreError
from assistant.data.store_writer import StoreWriter

REVIEWS = [
    Review("A joyous, inventive delight for every age.", "positive", movie="Toy Story", critic="A"),
    Review("The toys come alive in a marvel of animation.", "positive", movie="Toy Story", critic="B"),
    Review("Lifeless and dull, a chore to sit through.", "negative", movie="Toy Story", critic="C"),
    Review("The shark is terrifying and the tension never lets up.", "positive", movie="Jaws", critic="D"),
    Review("A waterlogged bore with a rubber fish.", "negative", movie="Jaws", critic="E"),
    Review("The cats are a nightmare of bad effects.", "negative", movie="Cats", critic="F"),
]
FACTS = [MovieFacts(title="Jaws", year="1975", synopsis="A great white shark terrorizes a beach town. " * 40)]


def build(settings, embeddings, records=REVIEWS + FACTS, rebuild=False):
    splitter = RecursiveCharacterTextSplitter(chunk_size=300, chunk_overlap=30)
    chunks = to_chunks(records, splitter)
    dim = len(embeddings.embed_query("x"))
    writer = StoreWriter(settings, dim, rebuild=rebuild)
    new = [c for c in chunks if c.id not in writer.known_ids]
    writer.add(new, np.asarray(embeddings.embed_documents([c.page_content for c in new])))
    writer.commit({"fixture": "hash"})
    return ReviewStore.open(settings, embeddings)


def test_roundtrip_search_and_filters(settings, embeddings):
    store = build(settings, embeddings)
    # the long synopsis became several chunks, each keeping the movie's metadata
    movie_chunks = store.get(FACTS[0].doc_id)
    assert len(movie_chunks) > 1 and all(d.metadata["movie"] == "Jaws" for d in movie_chunks)
    hits = store.search("scary shark in the water", k=2)
    assert hits[0][0].metadata["movie_key"] == "jaws"
    assert hits[0][1] > hits[1][1] - 1e-6
    negatives = store.search("wonderful animation", k=5, sentiment="negative", movie_key="toy story")
    assert [d.metadata["critic"] for d, _ in negatives] == ["C"]
    assert store.search("anything", k=3, movie_key="no such movie") == []


def test_mmr_and_neighbours_exclude_self(settings, embeddings):
    store = build(settings, embeddings)
    target = REVIEWS[0].doc_id
    near = store.neighbours(target, k=5)
    assert near and all(d.metadata["doc_id"] != target for d, _ in near)
    assert {d.metadata["movie_key"] for d, _ in near} == {"toy story"}
    diverse = store.search("toy story animation", k=2, mmr=True, fetch_k=6)
    assert len({d.id for d, _ in diverse}) == 2


def test_langchain_view_and_no_pickle_on_disk(settings, embeddings):
    store = build(settings, embeddings)
    vs = store.as_langchain()
    assert isinstance(vs, FAISS)
    docs = vs.similarity_search("rubber shark", k=1, filter={"sentiment": "negative"})
    assert docs[0].metadata["movie"] == "Jaws"
    files = sorted(p.name for p in store.directory.iterdir())
    assert files == ["docs.sqlite", "index.faiss", "manifest.json"]
    manifest = json.loads((store.directory / "manifest.json").read_text())
    assert manifest["embedding_dim"] == 384 and manifest["counts"]["reviews"] == len(REVIEWS)


def test_mismatched_model_is_refused_with_the_fix(settings, embeddings):
    build(settings, embeddings)
    other = settings.model_copy(update={"embedding_model": "some/other-model"})
    with pytest.raises(StoreError, match="python ingest.py --rebuild"):
        ReviewStore.open(other)


def test_damaged_store_is_reported(settings, embeddings):
    store = build(settings, embeddings)
    (store.directory / "index.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(StoreError, match="damaged"):
        ReviewStore.open(settings)
    (store.directory / "manifest.json").write_text("{broken")
    with pytest.raises(StoreError, match="unreadable"):
        ReviewStore.open(settings)


def test_missing_store_says_what_to_run(settings):
    with pytest.raises(StoreError, match="python ingest.py"):
        ReviewStore.open(settings)


def test_aborted_generation_leaves_live_store_whole(settings, embeddings):
    before = build(settings, embeddings)
    writer = StoreWriter(settings, 384)
    writer.add(to_chunks([Review("Brand new words.", "positive", movie="Up")], RecursiveCharacterTextSplitter()),
               np.ones((1, 384), dtype=np.float32))
    writer.abort()  # what an interrupted ingest does
    after = ReviewStore.open(settings)
    assert after.total == before.total and after.directory == before.directory
