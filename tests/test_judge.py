"""The sentiment judge (no pickle) and the text metrics."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from assistant.data.ngrams import NgramIndex, copy_rate, distinct_n, tokenize
from assistant.evaluation.judge import TOKEN_PATTERN, SentimentJudge

POS = ["brilliant", "moving", "funny", "gorgeous", "smart", "delightful", "tender", "thrilling"]
NEG = ["dull", "tedious", "lifeless", "shrill", "lazy", "boring", "clumsy", "hollow"]
FILLER = ["the", "film", "movie", "story", "cast", "plot", "ending", "is", "a", "and", "its", "with"]


def _corpus(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = "positive" if i % 2 else "negative"
        words = rng.sample(FILLER, 5) + rng.sample(POS if label == "positive" else NEG, 2)
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + ".")
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def judge():
    texts, labels = _corpus(400, seed=0)
    return SentimentJudge.train(texts, labels)


def test_judge_learns_and_reports_held_out_accuracy(judge):
    assert judge.accuracy is not None and judge.accuracy > 0.95
    assert judge.predict(["A brilliant, moving film.", "A dull and tedious movie."]) == ["positive", "negative"]
    test_texts, test_labels = _corpus(100, seed=1)
    assert judge.score(test_texts, test_labels) > 0.95
    explicit = SentimentJudge.train(*_corpus(200, 2), eval_texts=test_texts, eval_labels=test_labels)
    assert explicit.accuracy == explicit.score(test_texts, test_labels)


def test_features_match_sklearn_tfidf(judge):
    texts, _ = _corpus(50, seed=3)
    counts = CountVectorizer(ngram_range=(1, 2), token_pattern=TOKEN_PATTERN, vocabulary=judge.vocabulary)
    tfidf = TfidfTransformer(sublinear_tf=True)
    tfidf.idf_ = judge.idf.astype(np.float64)
    expected = tfidf.transform(counts.transform(texts)).toarray()
    assert np.allclose(judge._features(texts).toarray(), expected, atol=1e-5)


def test_save_load_round_trip_without_pickle(judge, tmp_path):
    judge.save(tmp_path / "judge")
    assert json.loads((tmp_path / "judge.json").read_text())["format"] == "tfidf-logreg-v1"
    with np.load(tmp_path / "judge.npz", allow_pickle=False) as arrays:
        assert set(arrays.files) == {"idf", "coef"} and arrays["coef"].dtype == np.float32
    loaded = SentimentJudge.load(tmp_path / "judge")
    texts, _ = _corpus(60, seed=4)
    assert np.allclose(loaded.positive_probability(texts), judge.positive_probability(texts))
    assert loaded.accuracy == judge.accuracy
    (tmp_path / "judge.json").write_text(json.dumps({"format": "pickle"}))
    with pytest.raises(ValueError, match="not a"):
        SentimentJudge.load(tmp_path / "judge")


def test_tokenize():
    assert tokenize("It isn\u2019t BAD, really -- 10/10!") == ["it", "isn't", "bad", "really", "10", "10"]


def test_distinct_n():
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)  # (a b), (b a), (a b)
    assert distinct_n(["a b", "a b"], 2) == pytest.approx(1 / 2)  # corpus-level: repeats across texts count
    assert distinct_n([], 1) == 0.0 and distinct_n(["one"], 2) == 0.0


def test_copy_rate():
    reference = ["one two three four five six seven eight nine ten"]
    copied = "One, two, three: four five six seven eight!"  # punctuation does not hide a copy
    fresh = "a wholly new sentence with none of those words at all"
    assert copy_rate([copied], reference) == 1.0
    assert copy_rate([fresh], reference) == 0.0
    index = NgramIndex(reference, n=8)
    assert len(index) == 3
    assert copy_rate([copied, fresh], index) == pytest.approx(1 / 5)  # 1 of 1 + 0 of 4 grams
    assert copy_rate(["too short"], index) == 0.0
    with pytest.raises(ValueError):
        copy_rate([copied], index, n=4)
