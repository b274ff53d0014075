"""Evaluation metrics on hand-made cases whose answers are known."""
from __future__ import annotations

import math

import numpy as np
import pytest

from assistant.chat.intent import parse
from assistant.data.ngrams import copy_rate, distinct_n
from assistant.data.titles import TitleIndex
from assistant.evaluation import metrics as em
from assistant.evaluation.requests import (
    GROUPS,
    TOPICS,
    build_request_set,
    group_sizes,
    movie_text,
    topic_text,
)

QUOTE = "A dazzling fusion of kung fu, cyberpunk and philosophy that rewires the action movie for good."
DISJOINT = "Soggy penguins waddle across frozen tundra beneath violet auroras tonight."


def test_exact_copy_and_disjoint_text():
    assert copy_rate([QUOTE], [QUOTE], n=8) == 1.0
    assert copy_rate([DISJOINT], [QUOTE], n=8) == 0.0
    assert em.overlap(QUOTE, [QUOTE]) == em.Overlap(1.0, 1.0, len(em.content_words(QUOTE)))
    disjoint = em.overlap(DISJOINT, [QUOTE])
    assert (disjoint.unigram, disjoint.bigram) == (0.0, 0.0)


def test_overlap_counts_content_words_only():
    half = em.overlap("dazzling penguins", [QUOTE])  # stopwords and review boilerplate never count
    assert half.unigram == 0.5 and half.words == 2
    assert em.overlap("the of and", [QUOTE]).words == 0
    assert em.mean_overlap([("the of and", [QUOTE])]) == {"unigram": 0.0, "bigram": 0.0, "n": 0}
    assert em.mean_overlap([(QUOTE, [QUOTE]), (DISJOINT, [QUOTE])])["unigram"] == 0.5


def test_distinct_n_known_answers():
    assert distinct_n(["a b a b"], 1) == 0.5
    assert distinct_n(["a b c d"], 2) == 1.0
    assert distinct_n([""], 1) == 0.0


def test_perfect_and_useless_classifier():
    gold = ["positive", "negative"] * 5
    assert em.classifier_accuracy(gold, gold) == 1.0
    assert em.classifier_accuracy(["positive"] * 10, gold) == 0.5  # constant guess: chance on balanced data
    assert em.classifier_accuracy([{"positive": "negative", "negative": "positive"}[g] for g in gold], gold) == 0.0
    with pytest.raises(ValueError):
        em.classifier_accuracy(["positive"], gold)


def test_sentiment_accuracy_counts_empty_replies_as_misses():
    def perfect(texts):
        return ["positive" if "great" in t else "negative" for t in texts]

    replies, wanted = ["great fun", "awful", ""], ["positive", "negative", "negative"]
    assert em.sentiment_accuracy(replies, wanted, perfect) == pytest.approx(2 / 3, abs=1e-3)
    assert em.sentiment_accuracy(replies, wanted, lambda ts: ["positive"] * len(ts)) == pytest.approx(1 / 3)
    assert em.sentiment_accuracy([], [], perfect) == 0.0


def test_cosine_margin():
    own = np.array([[1.0, 0.0], [1.0, 0.0]])
    others = np.array([[0.0, 1.0]])
    assert em.cosine_margin(np.array([1.0, 0.0]), own, others) == pytest.approx(1.0)
    assert em.cosine_margin(np.array([0.0, 1.0]), own, others) == pytest.approx(-1.0)
    assert math.isnan(em.cosine_margin(np.array([1.0, 0.0]), np.zeros((0, 2)), others))


def test_specific_terms_are_names_and_shared_rare_words_not_the_title():
    background = em.document_frequency(["A fun movie with a great cast."] * 50 + ["Bullet time forever."])
    reviews = ["In it, Keanu Reeves dodges bullets in bullet time.", "Reeves dodges, weaves and broods.",
               "A glorious, kaleidoscopic ride."]  # "kaleidoscopic": rare, but one critic's word
    terms = em.specific_terms(reviews, "The Matrix", background, facts=["Cast: Carrie-Anne Moss. A hacker wakes."])
    assert {"reeves", "dodges", "carrie", "anne", "moss", "hacker"} <= terms
    assert not {"kaleidoscopic", "matrix", "time"} & terms  # one review's word; the title's; a common word
    assert em.uses_terms("Reeves is superb", terms) and not em.uses_terms("A fun ride", terms)
    assert not em.uses_terms("anything", set())
    # a possessive uses the name, as critics write it ("Reeves's", "Moss’s"); a longer word does not
    assert em.uses_terms("Reeves's best role", terms) and em.uses_terms("Moss\u2019s turn", terms)
    assert em.uses_terms("Reeves' stillness", terms) and not em.uses_terms("Mossy and dull", terms)


def test_retrieval_scores_known_ranking():
    ranked = [["a", "x", "b"], ["x", "y", "z"], ["q"]]
    relevant = [{"a", "b"}, {"z"}, set()]  # the last query has no answer and is skipped
    scores = em.retrieval_scores(ranked, relevant, ks=(1, 3), mrr_at=3)
    assert scores["queries"] == 2
    assert scores["recall@1"] == pytest.approx(0.5) and scores["recall@3"] == 1.0  # any same-group item found
    assert scores["precision@1"] == pytest.approx(0.5)  # a, then x
    assert scores["precision@3"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert scores["mrr@3"] == pytest.approx((1 + 1 / 3) / 2)
    perfect = em.retrieval_scores([["a", "b"]], [{"a", "b"}], ks=(2,), mrr_at=2)
    useless = em.retrieval_scores([["x", "y"]], [{"a", "b"}], ks=(2,), mrr_at=2)
    assert perfect == {"queries": 1, "recall@2": 1.0, "precision@2": 1.0, "mrr@2": 1.0}
    assert useless == {"queries": 1, "recall@2": 0.0, "precision@2": 0.0, "mrr@2": 0.0}


def test_retrieval_chance():
    chance = em.retrieval_chance([1, 0], candidates=4, ks=(1, 2))  # one right answer among four
    assert chance["recall@1"] == pytest.approx(0.25) and chance["recall@2"] == pytest.approx(1 - 0.75**2)
    assert chance["precision@2"] == pytest.approx(0.25)


def test_label_precision_and_latency_percentiles():
    assert em.label_precision(["positive", "positive"], "positive") == 1.0
    assert em.label_precision(["positive", "negative"], "negative") == 0.5
    assert math.isnan(em.label_precision([], "positive"))
    summary = em.latency_summary([float(v) for v in range(1, 101)])
    assert summary["p50"] == pytest.approx(50.5) and summary["p95"] == pytest.approx(95.05)
    assert math.isnan(em.percentile([], 50))


def test_request_set_is_fixed_balanced_and_disjoint_by_group():
    titles = {f"movie {i}": (f"Movie {i}", 10) for i in range(20)}
    train, held = {f"movie {i}" for i in range(15)}, {f"movie {i}" for i in range(15, 20)}
    one = build_request_set(titles, train, held, n=12, seed=3)
    assert one.requests == build_request_set(titles, train, held, n=12, seed=3).requests
    assert [r.text for r in one.requests] != [r.text for r in build_request_set(titles, train, held, 12, 4).requests]
    counts = one.counts()
    assert all(counts[g] == {"positive": 2, "negative": 2} for g in GROUPS)
    assert all(r.movie_key in train for r in one.requests if r.group == "seen")
    assert all(r.movie_key in held for r in one.requests if r.group == "held_out")
    assert all(r.movie_key is None and r.topic for r in one.requests if r.group == "topic")
    assert len({r.seed for r in one.requests}) == 12
    # no held-out movie: its share goes to the other groups, and the report says so
    lone = build_request_set(titles, train, set(), n=6, seed=3)
    assert [r.group for r in lone.requests].count("held_out") == 0 and len(lone.requests) == 6
    assert any("held_out" in n for n in lone.notes)
    assert group_sizes(7, {"seen": True, "held_out": True}) == {"seen": 3, "held_out": 2, "topic": 2}


def test_requests_read_as_asked_by_the_chat_parser():
    titles = {"toy story": ("Toy Story", 40), "haunted house": ("A Haunted House", 30), "heat": ("Heat", 20)}
    index = TitleIndex(titles)
    for topic in TOPICS:  # each topic is read as a topic, not a movie
        parsed = parse(topic_text("negative", topic), TitleIndex({}), None)
        read = (parsed.kind, parsed.sentiment, parsed.movie_key, bool(parsed.topic))
        assert read == ("review", "negative", None, True), topic
    parsed = parse(movie_text("positive", "Toy Story"), index, None)
    assert (parsed.sentiment, parsed.movie_key) == ("positive", "toy story")
    # A topic this store would read as a title is never asked.
    built = build_request_set(titles, set(titles), set(), n=len(TOPICS) * 3, seed=1)
    assert all(r.topic != "a haunted house" for r in built.requests)


def test_name_check_and_faithfulness():
    reference = ["A 1979 film directed by Ridley Scott, starring Sigourney Weaver.", "Alien"]
    names, invented = em.name_check("Ridley Scott's Alien stars Tom Hanks, and I loved it in May.", reference)
    assert names == ["Scott's Alien", "Tom Hanks"] and invented == ["Tom Hanks"]
    assert em.name_check("Weaver is superb.", reference) == ([], [])  # a sentence's first word is no evidence
    assert em.name_check("Here Weaver is superb.", reference) == (["Weaver"], [])
    summary = em.faithfulness([(names, invented), (["Weaver"], []), ([], [])])
    assert summary["names"] == 3 and summary["grounded_share"] == pytest.approx(2 / 3, abs=1e-3)
    assert summary["invented_per_reply"] == pytest.approx(1 / 3, abs=1e-3)
    assert summary["replies_with_invented"] == pytest.approx(1 / 3, abs=1e-3)
    assert em.faithfulness([([], [])])["grounded_share"] is None  # no names: nothing to be faithful about


def test_repeats_ngram_needs_eight_words_of_one_reference():
    quote = "the crew of the nostromo never stood a chance against it"
    assert em.repeats_ngram("Honestly, the crew of the Nostromo never stood a chance.", [quote])
    assert not em.repeats_ngram("The crew of the Nostromo never stood still.", [quote])  # seven words
    assert not em.repeats_ngram("the crew of the nostromo never stood a", ["the crew of the", "nostromo never stood a"])
    assert not em.repeats_ngram("", [quote])


def test_wilson_interval_and_sentiment_by_direction():
    lo, hi = em.wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    lo, hi = em.wilson_interval(10, 10)
    assert lo == pytest.approx(0.7225, abs=1e-3) and hi == 1.0
    assert em.wilson_interval(0, 0) is None
    judge = lambda texts: ["positive" if "good" in t else "negative" for t in texts]  # noqa: E731
    out = em.sentiment_by_direction(["good", "good", "bad", "good", ""], ["positive"] * 2 + ["negative"] * 3, judge)
    assert out["positive"]["accuracy"] == 1.0 and out["positive"]["n"] == 2
    negative = out["negative"]
    assert negative["accuracy"] == pytest.approx(1 / 3, abs=1e-3) and negative["n"] == 3  # the empty reply is a miss
    assert out["negative"]["ci95"][0] < 1 / 3 < out["negative"]["ci95"][1]
