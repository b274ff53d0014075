"""Critic-likeness measures on hand-made cases whose answers are known: each fails when its measure is broken."""
from __future__ import annotations

import random

import numpy as np
import pytest

from assistant.data.english import english_words
from assistant.evaluation import critic_likeness as cl
from assistant.data.garbled import (
    GarbledCheck,
    count_words,
    store_vocabulary,
)

SUBJECTS = ["The film", "This movie", "Its director", "The cast", "The script", "Every scene", "The score",
            "The ending", "Its star", "The story"]
VERBS = ["soars", "stumbles", "lingers", "sparkles", "drags", "charms", "bores", "surprises", "falters", "shines"]
TAILS = ["in its final act.", "with real wit.", "despite a thin plot.", "like a fever dream.",
         "without much purpose.", "from start to finish.", "for two long hours.", "on sheer nerve.",
         "in every frame.", "against the odds."]


def _sentences(rng: random.Random, n: int) -> list[str]:
    return [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(TAILS)}" for _ in range(n)]


# ---- the classifier two-sample test --------------------------------------------------------------

def test_two_samples_of_one_source_cannot_be_told_apart():
    rng = random.Random(1)
    replies, quotes = _sentences(rng, 80), _sentences(rng, 80)
    films = [f"film{i % 16}" for i in range(80)] * 2
    result = cl.two_sample_test(replies, quotes, films, seed=3)
    # A classifier that scored its own training texts would memorise these and read near 1.0.
    assert result["ci95"][0] <= 0.5 <= result["ci95"][1]
    assert 0.35 <= result["accuracy"] <= 0.65 and result["folds"] == 5


def test_identical_sets_read_one_half_exactly():
    texts = _sentences(random.Random(2), 40)
    result = cl.two_sample_test(texts, list(texts), [f"f{i % 8}" for i in range(40)] * 2)
    assert result["accuracy"] == 0.5


def test_formulaic_replies_are_told_from_varied_quotes():
    rng = random.Random(4)
    quotes = _sentences(rng, 60)
    replies = [f"A masterful blend of {w} and heart, this film delivers a powerful and moving experience."
               for w in rng.choices(["drama", "comedy", "action", "romance", "horror"], k=60)]
    result = cl.two_sample_test(replies, quotes, [f"f{i % 12}" for i in range(60)] * 2)
    assert result["accuracy"] >= 0.95 and result["ci95"][0] > 0.85
    assert result["n_replies"] == result["n_quotes"] == 60


def test_too_few_texts_are_not_scored():
    assert cl.two_sample_test(["one"], ["two", "three"])["accuracy"] is None


# ---- MAUVE ---------------------------------------------------------------------------------------

def test_mauve_separates_shifted_embeddings_from_a_resample():
    pytest.importorskip("mauve")
    rng = np.random.default_rng(0)
    quotes = rng.normal(size=(120, 16)).astype(np.float32)
    same = rng.normal(size=(120, 16)).astype(np.float32)
    shifted = rng.normal(loc=1.5, size=(120, 16)).astype(np.float32)
    close, far = cl.mauve_score(quotes, same), cl.mauve_score(quotes, shifted)
    assert close["mauve"] > 0.8 and far["mauve"] < 0.2 and close["buckets"] == 12


def test_mauve_needs_enough_texts():
    assert cl.mauve_score(np.zeros((4, 8)), np.zeros((4, 8)))["mauve"] is None


# ---- length, variety, openings -------------------------------------------------------------------

def test_length_quartiles_count_words():
    texts = ["one", "one two", "one two three", "one two three four", "one, two, three, four, five!"]
    assert cl.length_summary(texts) == {"n": 5, "p25": 2.0, "median": 3.0, "p75": 4.0}
    assert cl.length_summary([])["median"] is None


def test_opening_share_counts_replies_with_a_twin():
    texts = ["A masterful blend of wit", "A masterful blend of grief", "a MASTERFUL, blend: of nothing",
             "The poor execution sinks it", "The poor execution again", "Nothing here works", "Kidman is superb",
             "", "Short"]
    result = cl.opening_share(texts)
    assert result == {"n": 8, "per": 8, "share": 5 / 8}  # the empty reply is not counted, "Short" has no twin
    assert cl.top_openings(texts) == [["a masterful blend", 3], ["the poor execution", 2]]


def test_opening_share_is_read_at_two_hundred():
    # 1,000 texts, one pair sharing an opening: in a random 200 of them both appear rarely, so the share per 200
    # is far below the pair's 2 in 1,000 being always counted at 1,000.
    texts = [f"w{i} x{i} y{i}" for i in range(998)] + ["same three words a", "same three words b"]
    at_200 = cl.opening_share(texts)
    assert at_200["per"] == 200
    assert at_200["share"] == pytest.approx(2 * (199 / 999) / 1000, abs=1e-4)
    # A set whose every text shares its opening reads 1.0 at any size.
    assert cl.opening_share(["a b c d"] * 500)["share"] == 1.0


def test_writing_summary_distinct_words():
    result = cl.writing_summary(["good good good", "good good good"])
    assert result["distinct_1"] == pytest.approx(1 / 6, abs=1e-4) and result["distinct_2"] == 0.25


# ---- garbled words -------------------------------------------------------------------------------

def test_garbled_word_found_and_known_words_pass():
    check = GarbledCheck({"the", "film", "is", "a", "triumph", "of", "and", "isn", "performance"}, {"keoghan"})
    reply = "The film is a triumph of craftfulness and Keoghan's performance isn't babboni, 2024 ok."
    assert check.words(reply) == ["craftfulness", "babboni"]
    # A word of the reply's own context (the facts card, a retrieved review) is not garbled.
    assert check.words(reply, context=["Craftfulness, said the director."]) == ["babboni"]
    measured = check.measure([reply, "The film is a triumph.", ""], [[], [], []])
    assert measured["share"] == 0.5 and measured["n"] == 2 and measured["examples"] == ["babboni", "craftfulness"]


def test_without_an_english_list_nothing_is_called_garbled():
    check = GarbledCheck(None, {"film"})
    assert not check.available and check.words("zzqx blorf") == []
    measured = check.measure(["zzqx blorf"], [[]])
    assert measured["share"] is None and "pyspellchecker" in measured["note"]


def test_the_packaged_english_list_knows_english_and_not_garble():
    words = english_words()
    if words is None:
        pytest.skip("pyspellchecker is not installed")
    check = GarbledCheck(words)
    assert check.words("A heartfelt, overlong biopic that wanders; it's masterful.") == []
    assert check.words("unconizable produateur") == ["unconizable", "produateur"]


class _Store:
    directory, manifest = "/store/gen-1", type("M", (), {"updated": 1.0})()

    def __init__(self):
        self.calls = 0

    def sql(self, query, params=()):
        self.calls += 1
        return [("Keoghan is superb", "Ann Critic", None, "The Banshees of Inisherin")]


def test_store_vocabulary_counts_every_field_and_is_cached(tmp_path):
    assert count_words([("a a b", None, "B")]) == {"a": 2, "b": 2}
    store, cache = _Store(), tmp_path / "vocab.json"
    first = store_vocabulary(store, cache)
    assert {"keoghan", "ann", "critic", "inisherin"} <= first
    assert store_vocabulary(store, cache) == first and store.calls == 1  # the second read came from the cache
    store.manifest = type("M", (), {"updated": 2.0})()  # a new store generation: counted again
    store_vocabulary(store, cache)
    assert store.calls == 2


# ---- the critics' side and the shuffled pairs ----------------------------------------------------

class _Request:
    def __init__(self, rid, key, sentiment):
        self.id, self.movie_key, self.sentiment, self.movie = rid, key, sentiment, key


class _ReviewStore:
    rows = {"jaws": [("r1", "Great shark.", "positive"), ("r2", "Too long,", "negative"), ("r2", "and slow.",
                                                                                             "negative"),
                     ("r3", "A classic.", "positive")]}

    def sql(self, query, params=()):
        return self.rows.get(params[0], [])


def test_quotes_are_drawn_per_film_in_the_asked_sentiment_and_not_shown():
    requests = [_Request("a", "jaws", "negative"), _Request("b", "jaws", "positive"),
                _Request("c", "jaws", "positive"), _Request("d", "jaws", "positive"), _Request("e", None, "positive")]
    quotes = cl.pick_quotes(_ReviewStore(), requests, {"b": {"r1"}}, seed=1)
    assert quotes["a"].text == "Too long, and slow."  # chunks of one review joined
    assert quotes["b"].doc_id == "r3" and quotes["c"].doc_id == "r1"  # b was shown r1: it gets the other
    assert "d" not in quotes and "e" not in quotes  # three reviews for four requests; no film, no quote


def test_shuffled_pairs_say_which_text_is_the_reply():
    rows = [(f"film{i}", f"quote {i}", f"reply {i}") for i in range(30)]
    pairs = cl.shuffled_pairs(rows, seed=5)
    assert len(pairs) == 10
    assert all(p["a" if p["reply"] == "A" else "b"].startswith("reply") for p in pairs)
    assert all(p["b" if p["reply"] == "A" else "a"].startswith("quote") for p in pairs)
    assert {p["reply"] for p in pairs} == {"A", "B"}


# ---- one arm against the critics, through CriticLikeness -----------------------------------------

class _Embeddings:
    def embed_documents(self, texts):
        return [[float(len(t)), 1.0] for t in texts]


class _FilmStore(_ReviewStore):
    dim, embeddings = 2, _Embeddings()
    rows = {"jaws": [(f"j{i}", f"Spielberg's shark story number {i}.", "positive") for i in range(6)],
            "alien": [(f"a{i}", f"Scott's creature feature, take {i}.", "negative") for i in range(6)]}


def test_an_arm_is_read_beside_as_many_quotes_of_its_films():
    from assistant.evaluation.arms import ArmSpec, Turn
    from assistant.evaluation.critic_scoring import CriticLikeness
    from assistant.evaluation.requests import EvalRequest

    requests = [EvalRequest(f"h{i}", "ask", "positive" if i % 2 else "negative", "held_out", i, movie=k.title(),
                            movie_key=k) for i, k in enumerate(["jaws", "alien"] * 3)]
    requests.append(EvalRequest("t0", "a topic", "positive", "topic", 9, topic="sharks"))
    turns = [Turn(r.id, text=f"Zorblax delivers {r.movie} well.", sources=[{"doc_id": "j0", "text": "Zorblax!"}])
             for r in requests]
    check = GarbledCheck({"delivers", "well", "ask", "jaws", "alien"})
    likeness = CriticLikeness(_FilmStore(), requests, {"rag": turns}, seed=1, garbled=check)
    assert "j0" not in {q.doc_id for q in likeness.quotes.values()}  # shown to the arm: not a critic's side
    result = likeness.arm(ArmSpec("rag", "both", "tuned", True), turns, requests)
    assert result["n"] == 6 and result["films"] == 2 and result["group"] == "held_out"  # the topic request is not read
    assert result["classifier"]["n_quotes"] == result["classifier"]["n_replies"] == 6
    assert result["garbled"]["share"] == 0.0  # "zorblax" was in the context the model was shown
    bare = [Turn(t.request_id, text=t.text) for t in turns]
    assert likeness.arm(ArmSpec("no_rag", "alone", "tuned", False), bare, requests)["garbled"]["share"] == 1.0
    assert likeness.critics()["n"] == 6 and likeness.critics()["length_words"]["median"] == 5.0
    assert len(likeness.pairs(turns, requests)) == 6
    topic_only = CriticLikeness(_FilmStore(), requests[-1:], {"rag": turns[-1:]}, seed=1, garbled=check)
    empty = topic_only.arm(ArmSpec("rag", "both", "tuned", True), turns[-1:], requests[-1:])
    assert empty["n"] == 0 and empty["classifier"]["accuracy"] is None and empty["mauve"]["mauve"] is None
