"""The review store: a LangChain VectorStore with filters inside the search, pickle-free files, atomic generations."""
from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from langchain_core.vectorstores import VectorStore
from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.data.ingestion import to_chunks
from assistant.data.records import MovieFacts, Review
from assistant.data.store import ReviewStore, StoreError
from assistant.data.store_writer import StoreWriter
from assistant.settings import Settings

SHARK = "The shark is terrifying and the tension never lets up."
REVIEWS = [
    Review("A joyous, inventive delight for every age.", "positive", movie="Toy Story", critic="A"),
    Review("The toys come alive in a marvel of animation.", "positive", movie="Toy Story", critic="B"),
    Review("Lifeless and dull, a chore to sit through.", "negative", movie="Toy Story", critic="C"),
    Review(SHARK, "positive", movie="Jaws", critic="D"),
    # near-copies of D, so plain similarity returns them together and MMR has something to spread out
    Review("The shark is terrifying, and the tension never once lets up.", "positive", movie="Jaws", critic="G"),
    Review("A terrifying shark, and tension that never lets up.", "positive", movie="Jaws", critic="H"),
    Review("John Williams' two-note score makes the whole ocean feel dangerous.", "positive", movie="Jaws", critic="I"),
    Review("A waterlogged bore with a rubber fish.", "negative", movie="Jaws", critic="E"),
    Review("The cats are a nightmare of bad effects.", "negative", movie="Cats", critic="F"),
]
FACTS = [MovieFacts(title="Jaws", year="1975", synopsis="A great white shark terrorizes a beach town. " * 40)]
JAWS_REVIEWS = {r.doc_id for r in REVIEWS if r.movie == "Jaws"}


def build(settings, embeddings, records=REVIEWS + FACTS, rebuild=False):
    splitter = RecursiveCharacterTextSplitter(chunk_size=300, chunk_overlap=30)
    chunks = to_chunks(records, splitter)
    dim = len(embeddings.embed_query("x"))
    writer = StoreWriter(settings, dim, rebuild=rebuild)
    new = [c for c in chunks if c.id not in writer.known_ids]
    writer.add(new, np.asarray(embeddings.embed_documents([c.page_content for c in new])))
    writer.commit({"fixture": "hash"})
    return ReviewStore.open(settings, embeddings)


@pytest.fixture(scope="module")
def store(tmp_path_factory, embeddings) -> ReviewStore:
    """One store for the read-only tests of this module."""
    return build(Settings(index_dir=tmp_path_factory.mktemp("store") / "index"), embeddings)


def doc_ids(docs) -> set[str]:
    return {d.metadata["doc_id"] for d in docs}


def test_roundtrip_documents_and_ids(store):
    assert isinstance(store, VectorStore)
    # the long synopsis became several chunks, each keeping the movie's metadata
    movie_chunks = store.get(FACTS[0].doc_id)
    assert len(movie_chunks) > 1 and all(d.metadata["movie"] == "Jaws" for d in movie_chunks)
    assert [d.id for d in store.get_by_ids([movie_chunks[1].id, "no-such-id", movie_chunks[0].id])] == \
        [movie_chunks[1].id, movie_chunks[0].id]
    hits = store.similarity_search_with_score("scary shark in the water", k=2)
    assert hits[0][0].metadata["movie_key"] == "jaws" and hits[0][1] >= hits[1][1]


def test_similarity_is_the_cosine_and_every_hit_has_its_id(store, embeddings):
    query = "a terrifying shark"
    hits = store.similarity_search_with_score(query, k=4)
    vector = np.asarray(embeddings.embed_query(query))
    for doc, score in hits:
        cosine = float(np.dot(vector, embeddings.embed_documents([doc.page_content])[0]))
        # bfloat16 autocast (where native) rounds a batch and a single text a little differently
        assert doc.metadata["similarity"] == pytest.approx(score) == pytest.approx(cosine, abs=3e-3)
        assert doc.id == f"{doc.metadata['doc_id']}:{doc.metadata['chunk']}"
    assert all(isinstance(d.metadata["similarity"], float) for d in store.max_marginal_relevance_search(query, k=3))


def test_movie_filter_with_k_beyond_the_movie_returns_only_that_movie(store):
    docs = store.similarity_search("wonderful animation for the whole family", k=50,
                                   filter={"movie_key": "jaws", "kind": "review"})
    assert doc_ids(docs) == JAWS_REVIEWS and len(docs) == len(JAWS_REVIEWS)
    assert store.similarity_search("anything", k=3, filter={"movie_key": "no such movie"}) == []


def test_sentiment_kind_and_list_filters(store):
    negatives = store.similarity_search("wonderful animation", k=5, filter={"sentiment": "negative",
                                                                             "movie_key": "toy story"})
    assert [d.metadata["critic"] for d in negatives] == ["C"]
    facts = store.similarity_search("a shark", k=50, filter={"kind": "movie"})
    assert doc_ids(facts) == {FACTS[0].doc_id} and len(facts) == len(store.get(FACTS[0].doc_id))
    both = store.similarity_search("bad", k=50, filter={"movie_key": ["jaws", "cats"], "sentiment": "negative"})
    assert {d.metadata["critic"] for d in both} == {"E", "F"}
    not_jaws = store.similarity_search("a shark", k=50, filter={"movie_key": {"$ne": "jaws"}})
    assert not_jaws and all(d.metadata["movie_key"] != "jaws" for d in not_jaws)
    assert store.similarity_search("a shark", k=3, filter={"movie_key": None}) == store.similarity_search("a shark", k=3)


def test_excluded_documents_lose_every_chunk(store):
    query = "a great white shark near a beach town"
    seen = [FACTS[0].doc_id, REVIEWS[3].doc_id]
    hits = store.similarity_search(query, k=50, filter={"doc_id": {"$nin": seen}})
    assert hits and not doc_ids(hits) & set(seen)
    assert store.similarity_search(query, k=5, filter={"kind": "movie", "doc_id": {"$nin": seen}}) == []
    assert REVIEWS[3].doc_id in doc_ids(store.similarity_search(SHARK, k=50))


def test_mmr_spreads_out_near_copies(store):
    query, jaws_positive = "a terrifying shark and relentless tension", {"movie_key": "jaws", "sentiment": "positive"}
    plain = store.similarity_search(query, k=2, filter=jaws_positive)
    diverse = store.max_marginal_relevance_search(query, k=2, fetch_k=10, lambda_mult=0.3, filter=jaws_positive)
    assert {d.metadata["critic"] for d in plain} <= {"D", "G", "H"}  # two near-copies
    assert diverse[0].id == plain[0].id and diverse[1].metadata["critic"] == "I"
    assert all(d.metadata["movie_key"] == "jaws" and d.metadata["sentiment"] == "positive" for d in diverse)
    # lambda 1 is plain relevance
    assert [d.id for d in store.max_marginal_relevance_search(query, k=2, lambda_mult=1.0, filter=jaws_positive)] \
        == [d.id for d in plain]


def test_retrievers_equal_the_direct_calls(store, embeddings):
    query, where = "a frightening monster movie", {"movie_key": "jaws", "kind": "review"}
    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 3, "fetch_k": 8, "lambda_mult": 0.4,
                                                               "filter": where})
    direct = store.max_marginal_relevance_search(query, k=3, fetch_k=8, lambda_mult=0.4, filter=where)
    assert [(d.id, d.metadata) for d in mmr.invoke(query)] == [(d.id, d.metadata) for d in direct]
    assert [d.id for d in asyncio.run(mmr.ainvoke(query))] == [d.id for d in direct]  # async chains: a worker thread
    similar = store.as_retriever(search_kwargs={"k": 50, "filter": where}).invoke(query)
    assert doc_ids(similar) == JAWS_REVIEWS
    strong = store.as_retriever(search_type="similarity_score_threshold",
                                search_kwargs={"k": 50, "score_threshold": 0.3, "filter": where}).invoke(query)
    assert strong and len(strong) < len(similar) and all(d.metadata["similarity"] >= 0.3 for d in strong)
    vector = embeddings.embed_query(query)
    assert [d.id for d in store.max_marginal_relevance_search_by_vector(vector, 3, 8, 0.4, filter=where)] == \
        [d.id for d in direct]
    assert [d.id for d in store.similarity_search_by_vector(vector, k=3, filter=where)] == \
        [d.id for d in similar[:3]]


def test_bad_filters_and_writes_are_refused_clearly(store):
    with pytest.raises(ValueError, match="cannot filter on 'critic'.*movie_key"):
        store.similarity_search("x", filter={"critic": "A"})
    with pytest.raises(ValueError, match=r"Unknown filter operator '\$gt'"):
        store.similarity_search("x", filter={"sentiment": {"$gt": "a"}})
    with pytest.raises(TypeError, match="score_treshold"):
        store.similarity_search("x", score_treshold=0.2)
    for write in (lambda: store.add_texts(["new"]), lambda: ReviewStore.from_texts(["new"], store.embeddings),
                  lambda: store.add_documents([])):
        with pytest.raises(NotImplementedError, match="python ingest.py"):
            write()


def test_neighbours_and_the_keyword_search_exclude_self_and_facts(store):
    target = REVIEWS[0].doc_id
    near = store.neighbours(target, k=5)
    assert near and all(d.metadata["doc_id"] != target for d, _ in near)
    assert {d.metadata["movie_key"] for d, _ in near} == {"toy story"}
    vector = store.vectors_for([FACTS[0].doc_id])[0]
    assert all(d.metadata["kind"] == "review" for d, _ in store.search_vector(vector, k=20))  # reviews by default
    assert store.vectors_at([0, 1]).shape == (2, store.dim)


def test_no_pickle_on_disk(store):
    files = sorted(p.name for p in store.directory.iterdir())
    assert files == [".mra-owner.json", "docs.sqlite", "index.faiss", "manifest.json"]  # the marker is JSON too
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


def test_a_query_searched_twice_is_encoded_once_until_the_model_changes(tmp_path, embeddings):
    class Counting:
        def __init__(self, inner):
            self.inner, self.queries = inner, []

        def embed_query(self, text):
            self.queries.append(text)
            return self.inner.embed_query(text)

        def embed_documents(self, texts):
            return self.inner.embed_documents(texts)

    counting = Counting(embeddings)
    store = build(Settings(index_dir=tmp_path / "index"), embeddings)
    store.embeddings = counting
    first = store.similarity_search("a terrifying shark", k=2)
    again = store.max_marginal_relevance_search("a terrifying shark", k=2, fetch_k=4)
    assert counting.queries == ["a terrifying shark"]
    assert [d.id for d in first] and [d.id for d in again]
    assert not store.embed_query("a terrifying shark").flags.writeable  # shared: nobody may change it in place
    store.embeddings = Counting(embeddings)  # another model: its own vectors
    store.similarity_search("a terrifying shark", k=2)
    assert store.embeddings.queries == ["a terrifying shark"]
