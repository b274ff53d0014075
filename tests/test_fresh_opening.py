"""A fresh opening: `FreshOpening` flattens the first words' scores among the plausible tokens only."""
from __future__ import annotations

import math

import pytest
import torch

from assistant.model.rules import ReplyRules, RuleSet
from assistant.model.rules.fresh_opening import OPENING_WORDS, FreshOpening
from assistant.model.scratch import train_tokenizer

TEXTS = ["A beautifully crafted film. The poor plot drags. Too dull and too long. A gem."] * 40


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, vocab_size=300)


def _scores(tokenizer) -> torch.Tensor:
    scores = torch.full((1, len(tokenizer)), -math.inf)
    scores[0, :3] = torch.tensor([0.0, -1.0, -2.0])  # three plausible tokens; the rest cut by guidance
    return scores


def _step(tokenizer, rule, reply: str) -> torch.Tensor:
    ids = tokenizer(reply, add_special_tokens=False)["input_ids"] if reply else []
    return RuleSet(tokenizer, [[rule]], prompt_width=0)(torch.tensor([ids], dtype=torch.long).reshape(1, -1),
                                                         _scores(tokenizer))


def test_the_opening_is_flatter_and_the_cut_tokens_stay_cut(tokenizer):
    out = _step(tokenizer, FreshOpening(2.0), "")[0]
    assert out[:3].tolist() == [0.0, -0.5, -1.0]  # half the gaps to the best token: a temperature among these
    assert torch.isinf(out[3:]).all()  # nothing guidance ruled out comes back
    probs = torch.softmax(out, -1)[:3]
    assert probs[0] < torch.softmax(_scores(tokenizer)[0], -1)[0]  # the favourite is less sure of itself


def test_after_the_opening_the_scores_are_left_alone(tokenizer):
    opening = " ".join(["word"] * OPENING_WORDS)
    assert torch.equal(_step(tokenizer, FreshOpening(2.0), opening), _scores(tokenizer))
    assert not torch.equal(_step(tokenizer, FreshOpening(2.0), "A gem"), _scores(tokenizer))  # two words: still


def test_the_book_adds_it_only_when_asked(tokenizer):
    from assistant.model.prompts import ReviewRequest, fit_prompt

    fitted = fit_prompt(ReviewRequest("positive", "Up"), tokenizer, 512, 16)
    assert [type(r) for r in ReplyRules(tokenizer, names=False, fresh_opening=1.5).for_prompt(fitted)] == [FreshOpening]
    assert ReplyRules(tokenizer, names=False).for_prompt(fitted) == ()
    with pytest.raises(ValueError):
        FreshOpening(0.0)
