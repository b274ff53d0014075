"""A critic's length: sentence ends cost more until a reply has the length drawn for it from the critics'."""
from __future__ import annotations

import random
from collections import Counter

import pytest
import torch

from assistant.data.openings import CriticOpenings, count_openings
from assistant.model.rules import ReplyRules
from assistant.model.rules.critic_length import CriticLength, sentence_end_tokens
from assistant.model.rules.vocabulary import token_words
from assistant.model.scratch import train_tokenizer
from tests.rule_steps import one_token, rule_step

TEXTS = ["This is a film. This is one film! Is it the end? A gem... this is.", "The plot is thin, and dull."] * 40


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, vocab_size=300)


@pytest.fixture(scope="module")
def vocab(tokenizer):
    return token_words(tokenizer, len(tokenizer))


def step_of(tokenizer, rule, reply: str, scores: torch.Tensor) -> torch.Tensor:
    return rule_step(tokenizer, rule, reply, scores.unsqueeze(0))


def test_the_table_keeps_how_many_words_the_critics_quotes_had():
    table = count_openings(["A gem of a film."] * 3 + ["This is far too long to sit through."] * 2)
    assert table["lengths"] == {"5": 3, "8": 2}
    assert CriticOpenings(table).lengths == {5: 3, 8: 2}
    assert CriticOpenings({"contexts": {}}).lengths == {}  # an older table: no lengths, the rule stays off


def test_sentence_ends_are_punctuation_with_a_stop_and_the_end_tokens(tokenizer, vocab):
    ends = sentence_end_tokens(vocab, {0})
    assert ends[one_token(tokenizer, ".")] and ends[one_token(tokenizer, "!")] and ends[one_token(tokenizer, "?")] and ends[0]
    assert not ends[one_token(tokenizer, ",")] and not ends[one_token(tokenizer, " film")]


def test_until_the_drawn_length_a_sentence_end_costs_the_push_and_after_it_nothing(tokenizer, vocab):
    dot, comma, film = (one_token(tokenizer, t) for t in (".", ",", " film"))
    rule = CriticLength({4: 1}, sentence_end_tokens(vocab, set()), 1.5, random.Random(0))  # every reply: 4 words
    scores = torch.zeros(len(tokenizer))
    short = step_of(tokenizer, rule, "A gem", scores)
    assert float(short[dot]) == pytest.approx(-1.5) and float(short[comma]) == 0 and float(short[film]) == 0
    assert torch.equal(step_of(tokenizer, rule, "This is a film", scores), scores)  # four words: ends as it likes


def test_lengths_are_drawn_as_often_as_critics_wrote_them():
    rule = CriticLength({10: 1, 20: 3}, torch.zeros(5, dtype=torch.bool), 1.0, random.Random(7))
    drawn = Counter(rule.draw() for _ in range(4000))
    assert set(drawn) == {10, 20} and 0.2 < drawn[10] / 4000 < 0.3
    with pytest.raises(ValueError):
        CriticLength({}, torch.zeros(5, dtype=torch.bool), 1.0, random.Random(0))
    with pytest.raises(ValueError):
        CriticLength({10: 1}, torch.zeros(5, dtype=torch.bool), 0.0, random.Random(0))


def test_the_book_gives_every_review_its_length_rule_and_each_row_its_own_draw(tokenizer):
    from assistant.model.prompts import ReviewRequest, fit_prompt

    fitted = fit_prompt(ReviewRequest("positive", "Up", None, []), tokenizer, 512, 16)
    book = ReplyRules(tokenizer, critic_length=1.5)
    if book.openings is None:
        pytest.skip("the shipped openings table is unreadable")
    rules = book.for_prompt(fitted, random.Random(3))
    (length,) = [r for r in rules if isinstance(r, CriticLength)]
    draws = {length.draw() for _ in range(50)}
    assert len(draws) > 5 and min(draws) >= 1  # the critics' spread, not one length
    assert not any(isinstance(r, CriticLength) for r in ReplyRules(tokenizer).for_prompt(fitted))  # off: none
