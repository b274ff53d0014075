"""The critic-likeness scorer that ranks drafts, and the rule that picks a draft by it (assistant/model/drafts.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.model import critic_scorer as cs
from assistant.model.critic_scorer import HASHED_FEATURES, CriticScorer
from assistant.model.drafts import CLEAR_SENTIMENT, choose, describe, record
from assistant.model.generation import Drafts

CRITICS = ["Scorsese's film is a wry, patient study of men who mistake loyalty for virtue.",
           "It's funny, sure, but the jokes land like a pratfall in slow motion.",
           "A handsome, hollow picture, and the cast seems to know it.",
           "De Niro is terrific; the movie around him, less so.",
           "Watching it is like reading a phone book, only with explosions."]
MODEL = ["The story brings together great characters and timeless humor that will stay with you.",
         "The film delivers an excellent story with remarkable performances and great humor.",
         "The movie fails to deliver any believable story and the humor is poor.",
         "The story brings a great balance of humor and insight to this timeless tale.",
         "The film fails to keep any of its great story together and the writing is poor."]


def _vectors(texts, dim=6):
    rng = np.random.default_rng(len(texts))
    return rng.normal(size=(len(texts), dim)).astype(np.float32)


def _trained(dim=6):
    texts = CRITICS + MODEL
    return CriticScorer.train(texts, _vectors(texts, dim), [True] * len(CRITICS) + [False] * len(MODEL), c=10.0,
                              trained_on={"films": 2})


def test_the_scorer_tells_critics_quotes_from_the_models_stock_phrasing():
    scorer = _trained()
    critic = scorer.critic_probability(["Hanks is wry and patient, and the picture, less so."], _vectors([1]))
    model = scorer.critic_probability(["The story brings great humor and timeless characters together."], _vectors([1]))
    assert critic[0] > 0.5 > model[0]


def test_the_scorer_round_trips_without_pickle_and_refuses_other_embeddings(tmp_path):
    scorer = _trained()
    scorer.save(tmp_path / "scorer")
    again = CriticScorer.load(tmp_path / "scorer")
    texts = ["A wry film.", "The story brings great humor."]
    vectors = _vectors(texts)
    assert np.allclose(again.critic_probability(texts, vectors), scorer.critic_probability(texts, vectors))
    assert again.trained_on == {"films": 2} and again.embedding_dim == 6
    with pytest.raises(ValueError, match="6-dimensional embeddings, not 4"):
        again.critic_probability(texts, _vectors(texts, 4))
    meta = json.loads((tmp_path / "scorer.json").read_text())
    (tmp_path / "scorer.json").write_text(json.dumps({**meta, "hashed_features": 1024}))
    with pytest.raises(ValueError, match="1024 features"):
        CriticScorer.load(tmp_path / "scorer")
    (tmp_path / "scorer.json").write_text(json.dumps({**meta, "format": "something-else"}))
    with pytest.raises(ValueError, match="critic-likeness scorer"):
        CriticScorer.load(tmp_path / "scorer")


def test_a_missing_or_broken_shipped_scorer_means_ranking_by_sentiment_alone(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(cs, "SHIPPED", tmp_path / "none")
    assert CriticScorer.shipped() is None and "ranked by sentiment alone" in caplog.text
    (tmp_path / "bad.json").write_text("{not json")
    monkeypatch.setattr(cs, "SHIPPED", tmp_path / "bad")
    assert CriticScorer.shipped() is None


def test_the_shipped_scorer_reads_the_stores_minilm_embeddings_and_was_trained_on_training_films():
    scorer = CriticScorer.shipped()
    assert scorer is not None and scorer.embedding_dim == 384 and scorer.coef.shape == (2 * HASHED_FEATURES + 384,)
    assert scorer.trained_on["films"] >= 100 and scorer.trained_on["replies"] >= 500
    assert 0.5 < scorer.trained_on["film_held_out_accuracy"] <= 1.0


def test_choose_puts_the_asked_sentiment_first_and_critic_likeness_second():
    clear, unclear = CLEAR_SENTIMENT + 0.05, CLEAR_SENTIMENT - 0.05
    assert choose([0.8, 0.95, 0.9]) == 1  # no likeness readings: the most on target
    assert choose([clear, 0.99, clear], [0.2, 0.1, 0.7]) == 2  # among clear drafts, the most critic-like
    assert choose([unclear, clear, 0.99], [0.99, 0.1, 0.2]) == 2  # a critic-like draft in the wrong sentiment loses
    assert choose([unclear, 0.3], [0.9, 0.95]) == 0  # none is clear: the most on target
    assert choose([None, clear, clear], [None, 0.4, 0.4]) == 1  # ties go to the earlier draft
    assert choose([clear, clear], [None, 0.3]) == 1  # a draft the scorer could not read is not ranked by it
    assert choose([None, None], [None, None]) == 0


def test_choose_keeps_a_clear_draft_without_a_made_up_word_before_a_more_critic_like_one_with_one():
    clear, unclear = CLEAR_SENTIMENT + 0.05, CLEAR_SENTIMENT - 0.3
    assert choose([clear, clear, clear], [0.9, 0.4, 0.6], [True, False, False]) == 2  # sound first, then likeness
    assert choose([clear, clear], [0.9, 0.4], [True, True]) == 0  # every draft has one: likeness decides
    assert choose([clear, unclear], [0.9, 0.9], [True, False]) == 0  # sentiment still comes first
    assert choose([clear, clear], [0.9, 0.4], [None, False]) == 0  # unchecked is not made up
    assert choose([clear, clear], [0.9, 0.4], []) == 0  # no check: as before


def test_choose_keeps_a_draft_that_names_the_films_people_before_a_more_critic_like_one_that_names_no_one():
    clear, unclear = CLEAR_SENTIMENT + 0.05, CLEAR_SENTIMENT - 0.3
    assert choose([clear, clear, clear], [0.9, 0.4, 0.6], [], [False, True, True]) == 2  # named, then likeness
    assert choose([clear, clear], [0.9, 0.4], [], [False, False]) == 0  # none names anyone: likeness decides
    assert choose([clear, unclear], [0.4, 0.9], [], [False, True]) == 0  # sentiment still comes first
    assert choose([clear, clear, clear], [0.9, 0.4, 0.6], [False, True, False], [True, True, False]) == 0
    assert choose([clear, clear], [0.9, 0.4], [], []) == 0  # no context to name from: as before


def test_the_reply_record_says_what_ranked_the_drafts():
    drafts = Drafts(chosen=1, texts=["a", "b"], on_target=[0.9, 0.8], likeness=[0.2, 0.61])
    kept = record(drafts, generate_s=1.0, score_s=0.01)
    assert kept["likeness"] == [0.2, 0.61] and kept["scorer"] == "embedding probe, then critic-likeness"
    assert describe(kept, "negative") == "chose draft 2 of 2 (0.80 negative, 0.61 critic-like)"
    unread = record(Drafts(chosen=0, texts=["a", "b"], on_target=[0.9, 0.8], likeness=[None, None]),
                    generate_s=1.0, score_s=0.0)
    assert "likeness" not in unread and unread["scorer"] == "embedding probe"
    assert describe(unread, "negative") == "chose draft 1 of 2 (0.90 negative)"


def test_why_says_a_draft_naming_the_films_people_was_kept_only_where_that_narrowed_the_choice():
    from assistant.chat.intent import ParsedRequest
    from assistant.chat.replies import why_text

    drafts = {"n": 3, "chosen": 1, "on_target": [0.9, 0.8, 0.95], "likeness": [0.2, 0.5, 0.7],
              "scorer": "embedding probe, then critic-likeness", "named": [False, True, False]}
    request = ParsedRequest(kind="review", sentiment="positive", movie="Alien")
    text, _ = why_text(request, {"mode": "rag", "model": "tuned", "sources": [], "drafts": drafts})
    assert "that name the film's people" in text and "chose draft 2 of 3" in text
    everyone = dict(drafts, named=[True, True, True], chosen=2)
    assert "that name the film's people" not in why_text(request, {"mode": "rag", "model": "tuned", "sources": [],
                                                                   "drafts": everyone})[0]
