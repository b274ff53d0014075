"""A critic's opening: the critics' table (assistant/data/openings.py) and the rule that draws a reply's first
words by it (assistant/model/rules/critic_opening.py)."""
from __future__ import annotations

import math

import pytest
import torch

from assistant.data.openings import RARE, CriticOpenings, count_openings, critic_openings, opening_words
from assistant.model.rules import ReplyRules, Rule, RuleSet
from assistant.model.rules.critic_opening import CriticOpening
from assistant.model.rules.vocabulary import token_words
from assistant.model.scratch import train_tokenizer

TEXTS = ["This is a film. This is one film. This is the end. A gem, this is. The plot is thin."] * 40


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, vocab_size=300)


@pytest.fixture(scope="module")
def vocab(tokenizer):
    return token_words(tokenizer, len(tokenizer))


TABLE = CriticOpenings({"contexts": {"": {"the": 50, "a": 40, "this": 10},
                                     "this": {"is": 60, "film": 5},
                                     "this|is": {"a": 500, "the": 200, "one": 100}}})


def _one(tokenizer, text: str) -> int:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == 1, f"{text!r} is {len(ids)} tokens in the test vocabulary"
    return ids[0]


def _step(tokenizer, rule, reply: str, scores: torch.Tensor) -> torch.Tensor:
    ids = tokenizer(reply, add_special_tokens=False)["input_ids"] if reply else []
    return RuleSet(tokenizer, [[rule]], prompt_width=0)(torch.tensor([ids], dtype=torch.long).reshape(1, -1),
                                                         scores)[0]


def _probs(scores: torch.Tensor) -> torch.Tensor:
    return torch.softmax(scores.float(), -1)


def test_opening_words_are_lower_case_without_their_punctuation():
    assert opening_words("Jaws, the shark's film!") == ["jaws", "the", "shark's"]
    assert opening_words("... A gem") == ["a", "gem"]
    assert opening_words("") == []


def test_the_table_counts_each_word_by_what_came_before_and_backs_off_when_rare():
    texts = ["This is a gem."] * 5 + ["This is the one."] * 3 + ["Kasdan is great."] + ["Romero is great."]
    table = count_openings(texts, min_context=3)
    contexts = table["contexts"]
    assert contexts[""] == {"this": 8}  # a first word used once is not kept (at least twice)
    assert contexts["this"] == {"is": 8}
    assert contexts["this|is"] == {"a": 5, "the": 3}
    assert contexts[RARE] == {"is": 2}  # two rare first words share one context
    assert contexts["*|is"] == {"great": 2}  # "kasdan is" is rare: the third word backs off to "is" alone
    reader = CriticOpenings(table)
    assert reader.key(["kasdan"]) == RARE and reader.key(["this", "is"]) == "this|is"
    assert reader.whole(["this", "is"], "the") == 3 and reader.whole(["kasdan"], "is") == 2  # read through back-off


def test_this_is_one_gives_way_to_what_critics_write_after_this_is(tokenizer, vocab):
    a, one, the, dot = (_one(tokenizer, t) for t in (" a", " one", " the", "."))
    scores = torch.full((len(tokenizer),), -math.inf)
    scores[[one, a, the, dot]] = torch.tensor([3.0, 0.0, 0.0, 0.5])  # the model is sure of "one"
    out = _step(tokenizer, CriticOpening(TABLE, vocab, 1.0), "This is", scores.unsqueeze(0))
    before, after = _probs(scores), _probs(out)
    assert after[a] > after[the] > after[one]  # 500 : 200 : 100, as the critics wrote (flattened by SPREAD)
    assert before[one] > 0.8 and after[one] < 0.3
    assert float(after[dot]) == pytest.approx(float(before[dot]), abs=1e-5)  # punctuation keeps the model's share
    assert float(after[[a, one, the]].sum()) == pytest.approx(float(before[[a, one, the]].sum()), abs=1e-5)  # the group's total
    assert torch.isinf(out[torch.isinf(scores)]).all()  # nothing guidance cut comes back


def test_half_the_weight_lands_between_the_model_and_the_critics(tokenizer, vocab):
    a, one = _one(tokenizer, " a"), _one(tokenizer, " one")
    scores = torch.full((len(tokenizer),), -math.inf)
    scores[[one, a]] = torch.tensor([3.0, 0.0])
    model, critics = _probs(scores)[one], 100 / 600
    half = _probs(_step(tokenizer, CriticOpening(TABLE, vocab, 0.5), "This is", scores.unsqueeze(0)))[one]
    assert critics < half < model


def test_after_the_opening_and_for_words_critics_never_opened_with_the_model_chooses(tokenizer, vocab):
    a, one = _one(tokenizer, " a"), _one(tokenizer, " one")
    scores = torch.full((1, len(tokenizer)), -math.inf)
    scores[0, [one, a]] = torch.tensor([3.0, 0.0])
    rule = CriticOpening(TABLE, vocab, 1.0)
    assert torch.equal(_step(tokenizer, rule, "This is a gem", scores), scores[0])  # three words written
    unknown = CriticOpening(CriticOpenings({"contexts": {"this|is": {"plot": 9}}}), vocab, 1.0)
    assert torch.equal(_step(tokenizer, unknown, "This is", scores), scores[0])


def test_the_book_adds_it_when_asked_and_the_shipped_table_reads(tokenizer):
    from assistant.model.prompts import ReviewRequest, fit_prompt

    fitted = fit_prompt(ReviewRequest("positive", "Up"), tokenizer, 512, 16)
    assert [type(r) for r in ReplyRules(tokenizer, names=False, critic_opening=1.0).for_prompt(fitted)] == \
        [CriticOpening]
    assert ReplyRules(tokenizer, names=False).for_prompt(fitted) == ()
    with pytest.raises(ValueError):
        CriticOpening(TABLE, None, 0.0)
    shipped = critic_openings()
    assert shipped is not None and set(shipped) == {"positive", "negative"}
    assert shipped["positive"].quotes + shipped["negative"].quotes > 50_000  # the training split's quotes
    praise, pans = shipped["positive"], shipped["negative"]
    assert praise.whole(["this", "is"], "a") > praise.whole(["this", "is"], "one") > 0
    assert praise.whole(["one", "of"], "the") > 0 and pans.whole(["not"], "even") > praise.whole(["not"], "even")


def test_only_whole_words_are_redrawn_pieces_and_odd_capitals_keep_the_models_share(tokenizer, vocab):
    a, one, the = (_one(tokenizer, t) for t in (" a", " one", " the"))
    piece = _one(tokenizer, " plo")  # the start of " plot": critics' count of every word it starts would mislead
    scores = torch.full((len(tokenizer),), -math.inf)
    scores[[one, a, the, piece]] = torch.tensor([3.0, 0.0, 0.0, 1.0])
    table = CriticOpenings({"contexts": {"this|is": {"a": 500, "the": 200, "one": 100, "plot": 10_000}}})
    out = _step(tokenizer, CriticOpening(table, vocab, 1.0), "This is", scores.unsqueeze(0))
    assert float(_probs(out)[piece]) < float(_probs(scores)[piece]) < 0.2  # never boosted by "plot"'s count
    assert float(_probs(out)[a]) > float(_probs(out)[one])


def test_words_guidance_cut_but_the_model_found_plausible_may_be_drawn_and_ruled_out_ones_never(tokenizer, vocab):
    a, one, the = (_one(tokenizer, t) for t in (" a", " one", " the"))
    raw = torch.full((1, len(tokenizer)), -30.0)
    raw[0, [one, a, the]] = torch.tensor([0.0, -3.0, -3.0])  # " a" and " the": 3 nats under " one" (WIDTH is 5)
    guided = torch.full((1, len(tokenizer)), -math.inf)
    guided[0, one] = 0.0  # guidance's cut kept only " one"

    class RulesOut(Rule):
        def before_guidance(self, step, row):
            mask = torch.zeros(len(tokenizer), dtype=torch.bool)
            mask[the] = True
            return mask

    ids = torch.tensor([tokenizer("This is", add_special_tokens=False)["input_ids"]])
    rules = RuleSet(tokenizer, [[RulesOut(), CriticOpening(TABLE, vocab, 1.0)]], prompt_width=0)
    rules.before_guidance(ids, raw)
    out = _probs(rules(ids, guided)[0])
    assert float(out[a]) > float(out[one]) > 0  # "a": the critics' favourite, back from below the cut
    assert float(out[the]) == 0  # ruled out before guidance: stays out
    assert float(out[[a, one]].sum()) == pytest.approx(1.0, abs=1e-5)  # the group keeps guidance's mass
