"""Thin films: a copy of the store where chosen films keep five reviews and no facts card, and the chat's
retrieval over it sees nothing else of them."""
from __future__ import annotations

import numpy as np
import pytest

from assistant.chat.retrieval import retrieve
from assistant.data.facts import movie_card
from assistant.data.store import ReviewStore
from assistant.evaluation.thin import THIN_REVIEWS, plan_cut, thin_store
from tests.tiny import build_tiny_store, tiny_settings

FILM = "toy story"


@pytest.fixture(scope="module")
def store(tmp_path_factory, embeddings):
    settings = tiny_settings(tmp_path_factory.mktemp("thin"))
    build_tiny_store(settings, embeddings)
    opened = ReviewStore.open(settings, embeddings)
    yield settings, opened
    opened.close()


def _docs(store, key):
    return {(d, kind) for d, kind in store.sql("SELECT DISTINCT doc_id, kind FROM docs WHERE movie_key = ?", (key,))}


def test_the_cut_keeps_five_reviews_chosen_by_the_seed(store):
    _, full = store
    reviews = {d for d, kind in _docs(full, FILM) if kind == "review"}
    assert len(reviews) > THIN_REVIEWS and any(kind == "movie" for _, kind in _docs(full, FILM))
    cut = plan_cut(full, [FILM], seed=1)
    assert len(cut.kept[FILM]) == THIN_REVIEWS and cut.kept[FILM] <= reviews
    assert cut == plan_cut(full, [FILM], seed=1)
    assert any(plan_cut(full, [FILM], seed=s).kept != cut.kept for s in range(2, 6))
    assert cut.to_dict()["reviews_dropped"] == len(reviews) - THIN_REVIEWS


def test_the_thin_copy_shows_the_chat_only_the_five_reviews(store, embeddings):
    settings, full = store
    before = full.total
    assert movie_card(full, FILM) is not None
    with thin_store(full, settings, [FILM], seed=1) as (thin_settings, cut):
        thin = ReviewStore.open(thin_settings, embeddings)
        try:
            assert _docs(thin, FILM) == {(d, "review") for d in cut.kept[FILM]}  # and no facts documents
            assert movie_card(thin, FILM) is None
            for other in ("matrix", "gigli"):  # every other film as it was
                assert _docs(thin, other) == _docs(full, other)
            kept = sorted(cut.kept[FILM])
            assert np.allclose(thin.vectors_for(kept), full.vectors_for(kept))  # stored vectors, not re-embedded
            for sentiment in ("positive", "negative"):
                found = retrieve(thin, sentiment=sentiment, movie="Toy Story", movie_key=FILM, k=8)
                film_docs = [d for d in found.documents if d.metadata.get("movie_key") == FILM]
                assert film_docs and {d.metadata["doc_id"] for d in film_docs} <= cut.kept[FILM]
                assert all(d.metadata.get("kind") == "review" for d in film_docs)
            lead = retrieve(full, sentiment="positive", movie="Toy Story", movie_key=FILM, k=8).documents[0]
            assert lead.metadata.get("kind") == "movie"  # the full store leads with the facts card
        finally:
            thin.close()
        folder = thin_settings.index_dir
    assert not folder.exists() and full.total == before  # the copy is gone, the live store untouched
