"""Real words: `RealWords` keeps lower-case words on the way to English words or words the request showed."""
from __future__ import annotations

import pytest
import torch

from assistant.model.prompts import ReviewRequest
from assistant.model.rules import ReplyRules, RuleSet
from assistant.model.rules.real_words import (
    Lexicon,
    RealWords,
    english_lexicon,
    request_lexicon,
)
from assistant.model.rules.vocabulary import token_words
from assistant.model.scratch import train_tokenizer

torch.set_num_threads(1)

ENGLISH = Lexicon(["a", "the", "craft", "crafty", "people", "peoples", "story", "storytelling", "island", "is",
                   "isn't", "production", "stunning", "film", "fi", "are"])
SHOWN = request_lexicon(["Barry Keoghan rules the island of Inisherin; a rewatchable tale."])
TEXTS = ["The craftfulness of the story is stunning. People are peoples, not peopleies. The island is film.",
         "A crafty production. The storytelling is stunning. A rewatchable island story."] * 40


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, vocab_size=400)


@pytest.fixture(scope="module")
def rule(tokenizer):
    return RealWords(ENGLISH, SHOWN, token_words(tokenizer, len(tokenizer)))


@pytest.mark.parametrize("reply, token, allowed", [
    ("A craft", "fulness", False),      # "craftfulness": no word starts so
    ("A craft", "y", True),             # "crafty"
    ("The people", "ies", False),
    ("The people", " are", True),       # "people" is complete: a space may end it
    ("The produ", " is", False),        # "produ" is no word: it may not end there
    ("The produ", "ction", True),
    ("A rewatch", "able", True),        # a word of the request
    ("The craft", "y.", True),          # a token that finishes the word and goes on
    ("The craft", "ul.", False),
    ("It is", "n't", True),             # a contraction: "isn't"
    ("Keoghan's", " island", True),
    ("It is a", " stunnx", False),      # a new word that no word starts with
    ("The story", " Keoghan", True),    # capitalised: the names rule's question, not this one's
    ("The film Keoghan", "ish", True),  # a name mid-way: not checked
    ("Stall", "one", True),             # nor a sentence's first word: it may be a name
    ("sci", "-fi", True),               # a hyphen may follow a word's first part
])
def test_what_may_follow(rule, reply, token, allowed):
    open_word = rule.open_word(reply)
    assert (open_word is None or rule.allows(open_word, token)) is allowed


def test_a_step_leaves_only_the_checked_real_pieces(tokenizer, rule):
    ids = tokenizer("The craft", add_special_tokens=False)["input_ids"]
    rules = RuleSet(tokenizer, [[rule]], prompt_width=0)
    vocab = token_words(tokenizer, len(tokenizer))
    scores = torch.zeros(1, len(tokenizer))
    scores[0, [i for i, t in enumerate(vocab.texts) if t[:1].isalpha()]] = 1.0  # pieces that go on with the word
    ruled_out = rules.before_guidance(torch.tensor([ids]), scores)[0]
    top = set(torch.topk(scores[0], 64).indices.tolist())
    left = set((~ruled_out).nonzero().flatten().tolist())
    assert left and left <= top  # it acts, and what is left was read
    assert all(rule.allows("craft", vocab.texts[i]) for i in left)
    assert all(not rule.allows("craft", vocab.texts[i]) for i in top - left if vocab.texts[i])


def test_nothing_left_leaves_the_models_choice(tokenizer, rule):
    ids = tokenizer("The xqz", add_special_tokens=False)["input_ids"]  # nothing finishes "xqz" as a word
    vocab = token_words(tokenizer, len(tokenizer))
    bad = [i for i, t in enumerate(vocab.texts) if t and not rule.allows("xqz", t)]
    scores = torch.full((1, len(tokenizer)), float("-inf"))
    scores[0, bad] = 0.0  # only made-up pieces are possible
    assert RuleSet(tokenizer, [[rule]], prompt_width=0).before_guidance(torch.tensor([ids]), scores) is None


def test_the_book_gives_every_review_prompt_the_rule(tokenizer):
    book = ReplyRules(tokenizer, names=False, real_words=True)
    english = english_lexicon()
    assert english is not None and english.complete("cinematography") and english.starts("cinematog")
    assert not english.starts("craftfuln")  # the word list the rule reads knows the garbled words for none
    from assistant.model.prompts import fit_prompt
    fitted = fit_prompt(ReviewRequest("positive", "Inisherin"), tokenizer, 512, 16)
    rules = book.for_prompt(fitted)
    assert [type(r) for r in rules] == [RealWords]
    assert rules[0].shown.complete("inisherin")
    assert ReplyRules(tokenizer, names=False).for_prompt(fitted) == ()


def test_it_acts_before_guidance_so_the_plausibility_cut_finds_a_real_word(tokenizer, rule):
    """After "craft" the model is sure of a made-up piece and finds a real one ten times less likely: guidance's
    plausibility cut (0.1 of the best) would keep only the made-up one, so a rule after it could not help."""
    import math

    from assistant.model.guidance import guide_scores
    from assistant.model.rules import mask_out

    vocab = token_words(tokenizer, len(tokenizer))
    bad = next(i for i, t in enumerate(vocab.texts) if t[:1].isalpha() and not rule.allows("craft", t))
    good = next(i for i, t in enumerate(vocab.texts) if t == "y")
    scores = torch.full((1, len(tokenizer)), -20.0)
    scores[0, bad], scores[0, good] = 10.0, 7.0
    ids = torch.tensor([tokenizer("The craft", add_special_tokens=False)["input_ids"]])
    ruled_out = RuleSet(tokenizer, [[rule]], prompt_width=0).before_guidance(ids, scores)
    plain = guide_scores(scores, scores.clone(), 3.0, math.log(0.1))
    ruled = guide_scores(mask_out(scores, ruled_out), mask_out(scores.clone(), ruled_out), 3.0, math.log(0.1))
    assert int(plain.argmax()) == bad and not torch.isfinite(plain[0, good])  # without the rule: made up
    assert int(ruled.argmax()) == good


def test_a_word_begun_wrong_is_finished_as_a_real_one(tokenizer, rule):
    """When every likely token would leave "produ" as it is or make it worse, only pieces that finish a real word
    ("ction") may come, however unlikely the model found them."""
    vocab = token_words(tokenizer, len(tokenizer))
    ids = torch.tensor([tokenizer("The produ", add_special_tokens=False)["input_ids"]])
    scores = torch.zeros(1, len(tokenizer))
    finishing = rule.finishing("produ")
    assert finishing is not None and all(rule.allows("produ", vocab.texts[i]) for i in finishing.nonzero().flatten())
    scores[0, finishing] = -30.0  # the model ranks every real ending last
    scores[0, [i for i, t in enumerate(vocab.texts) if t[:1] in ("'", "\u2019")]] = float("-inf")  # and no "'s"
    ruled_out = RuleSet(tokenizer, [[rule]], prompt_width=0).before_guidance(ids, scores)[0]
    assert torch.equal(~ruled_out, finishing)
    assert rule.finishing("xqz") is None  # nothing finishes it: the model's choice stands


@pytest.mark.parametrize("reply, token, allowed", [
    ("too unrelat", "E", False),      # a capital inside a lower-case word
    ("cyberca", "'s", False),         # an apostrophe does not make "cyberca" a word
    ("It is", "n't", True),
    ("The produ", "-", False),        # nor does a hyphen after a long half-word
])
def test_no_way_around_a_half_made_word(rule, reply, token, allowed):
    assert rule.allows(rule.open_word(reply), token) is allowed


def test_ruling_out_the_likely_pieces_does_not_open_the_unchecked_tail(tokenizer, rule):
    """The likely tokens after "The produ" mostly end the half-word; once they are ruled out, guidance's cut would
    pick among the unchecked tail, so that stays out too: only the checked real endings are left."""
    from assistant.model.rules.real_words import CHECKED

    ids = torch.tensor([tokenizer("The produ", add_special_tokens=False)["input_ids"]])
    finishing = rule.finishing("produ").nonzero().flatten().tolist()
    scores = torch.zeros(1, len(tokenizer))
    scores[0, :CHECKED] = 0.5  # the likely ones, most of them ending "produ" as it is
    scores[0, finishing[0]] = 1.0  # and one real ending among them
    ruled_out = RuleSet(tokenizer, [[rule]], prompt_width=0).before_guidance(ids, scores)[0]
    top = set(torch.topk(scores[0], CHECKED).indices.tolist())
    left = set((~ruled_out).nonzero().flatten().tolist())
    assert finishing[0] in left and left <= top
