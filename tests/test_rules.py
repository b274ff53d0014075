"""The decoding rules' protocol: both decode paths apply one rule set alike, the step state decodes each reply once,
and the chat's LLM builds the rules from the fitted prompt, not from its text read back."""
from __future__ import annotations

from collections import Counter

import pytest
import torch

from assistant.model.generation import ReviewGenerator
from assistant.model.llm import ReviewLLM, ReviewPrompt
from assistant.model.prompts import ReviewRequest
from assistant.model.rules import NamedLead, ReplyRules, Rule, RuleSet
from assistant.model.scratch import train_tokenizer
from tests.test_decoding import MODELS
from tests.tiny import with_chat_template

torch.set_num_threads(1)

CONTEXT = ["About Alien: A 1979 film directed by Ridley Scott, starring Sigourney Weaver and John Hurt.",
           'Ada Lumen (Evening Ledger), fresh: "The Nostromo crew never stood a chance, and Weaver is superb."',
           'Bo Quill (Daily Lamp), rotten: "While handsome, Scott lets the Nostromo drift into tedium."']
REQUESTS = [ReviewRequest("negative", "Alien", None, CONTEXT), ReviewRequest("positive", "Alien", None, CONTEXT[:2]),
            ReviewRequest("negative", "Alien", "the crew", CONTEXT[1:])]
TEXTS = ["While it has charm, it drags. Although Weaver is fine, Tom Hanks is not in it. Even if Scott tries.",
         "Sigourney Weaver and Ridley Scott and the Nostromo. Keanu Reeves, Tom Cruise and Jodie Foster star.",
         '"A joy," says Bo. [A]s dull as it gets. The crew is dull. It bores, it drags, it is slow.'] * 30


@pytest.fixture(scope="module")
def tokenizer():
    return with_chat_template(train_tokenizer(TEXTS + CONTEXT * 10, vocab_size=400))


def every_rule(tokenizer, model, *, lead_sentence: int = 1) -> ReplyRules:
    return ReplyRules(tokenizer, vocab_size=model.config.vocab_size, names=True, name_boost=3.0,
                      lead_sentence=lead_sentence, verdict_first=True, real_words=True, critic_opening=1.0)


@pytest.mark.parametrize("arch", sorted(MODELS))
@pytest.mark.parametrize("lead_sentence", [1, 2])
def test_the_fast_loop_and_generate_write_the_same_tokens_under_every_rule(tokenizer, arch, lead_sentence):
    """Guided, greedy, a padded batch of RAG prompts: the rules' phase before guidance changes what guidance's
    plausibility cut keeps, so a path that skipped it would write other tokens."""
    model = MODELS[arch](tokenizer)
    rules = every_rule(tokenizer, model, lead_sentence=lead_sentence)
    fast = ReviewGenerator(model, tokenizer, guidance=3.0, max_sentences=0)
    plain = ReviewGenerator(model, tokenizer, guidance=3.0, max_sentences=0, fast=False)
    written = fast.generate_many(REQUESTS, temperature=0, max_new_tokens=16, batch_size=3, rules=rules)
    assert written == plain.generate_many(REQUESTS, temperature=0, max_new_tokens=16, batch_size=3, rules=rules)
    assert written != fast.generate_many(REQUESTS, temperature=0, max_new_tokens=16, batch_size=3)  # rules acted
    streamed = "".join(fast.stream(REQUESTS[0], temperature=0, max_new_tokens=16, rules=rules))
    assert streamed == "".join(plain.stream(REQUESTS[0], temperature=0, max_new_tokens=16, rules=rules))
    assert streamed.strip() == written[0]
    if lead_sentence == 1:  # the lead opens the replies with one of the film's names (from the facts line)
        lead = rules.for_prompt(fast.fit(REQUESTS[0], 16))[-1]
        assert isinstance(lead, NamedLead) and all(any(w.startswith(p) for p in lead.phrases) for w in written[:2])


class CountingTokenizer:
    """The tokenizer, with every `decode` call's ids width recorded."""

    def __init__(self, tokenizer) -> None:
        self._tokenizer, self.decoded = tokenizer, []

    def decode(self, ids, **kwargs):
        self.decoded.append(len(ids))
        return self._tokenizer.decode(ids, **kwargs)

    def __len__(self) -> int:
        return len(self._tokenizer)

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)


def test_the_step_state_decodes_each_reply_once_a_step_for_every_rule(tokenizer):
    model = MODELS["llama"](tokenizer)
    generator = ReviewGenerator(model, tokenizer, guidance=3.0, max_sentences=0)
    counting = CountingTokenizer(tokenizer)
    book = ReplyRules(counting, vocab_size=model.config.vocab_size, lead_sentence=2, verdict_first=True)
    fitted = generator.fit(REQUESTS[0], 12)
    assert len(book.for_prompt(fitted)) == 3  # verdict first, the names rule, the named lead: each reads the reply
    rows = 2
    generator.generate_many([fitted] * rows, temperature=0, max_new_tokens=12, batch_size=rows, rules=book)
    steps = Counter(counting.decoded)  # reply length -> decodes of a reply that long
    assert len(steps) > 2 and sorted(steps) == list(range(len(steps))) and set(steps.values()) == {rows}


def test_a_rule_set_is_told_its_prompt_width_and_checks_the_batch(tokenizer):
    book = ReplyRules(tokenizer, verdict_first=True)
    fitted = ReviewGenerator(MODELS["gpt2"](tokenizer), tokenizer).fit(REQUESTS[0], 8)
    rules = book.rule_set([fitted], prompt_width=3)
    scores = torch.zeros(1, len(tokenizer))
    # the first step is the prompt's width, whatever width the first call has: a later first call is no first word
    assert rules.before_guidance(torch.tensor([[1, 2, 3, 4, 5]]), scores) is None
    assert rules.before_guidance(torch.tensor([[1, 2, 3]]), scores) is not None
    with pytest.raises(ValueError, match="rules for 1 rows, a batch of 2"):
        rules(torch.tensor([[1, 2, 3], [1, 2, 3]]), torch.zeros(2, len(tokenizer)))
    with pytest.raises(ValueError, match="narrower than the prompt"):
        rules(torch.tensor([[1, 2]]), scores)
    assert not RuleSet(tokenizer, [[], []], prompt_width=3)


def test_the_llm_builds_the_rules_from_the_fitted_prompt_not_its_text(tokenizer, monkeypatch):
    import assistant.model.llm as llm_module

    model = MODELS["llama"](tokenizer)
    generator = ReviewGenerator(model, tokenizer, guidance=3.0, max_sentences=0)
    llm = ReviewLLM(generator=generator, temperature=0, guidance=3.0, max_new_tokens=12, drafts=1,
                    rules=every_rule(tokenizer, model, lead_sentence=2))
    prompt = ReviewPrompt.for_generator(generator, max_new_tokens=12)
    value = prompt.format_prompt(sentiment="negative", movie="Alien", context=CONTEXT)
    read_back = llm.invoke(value.to_string())  # bare text: read back out of the prompt
    seen = []
    monkeypatch.setattr(llm_module, "fit_text", lambda *a, **k: seen.append(a) or pytest.fail("text read back"))
    original = generator.stream
    monkeypatch.setattr(generator, "stream", lambda p, **k: seen.append(p) or original(p, **k))
    assert (prompt | llm).invoke({"sentiment": "negative", "movie": "Alien", "context": CONTEXT}) == read_back
    assert seen == [value.fitted.with_budget(12)]  # the structure itself reached the generator
    assert read_back


class _Everything(Rule):
    """Rules every token out, in both phases."""

    def before_guidance(self, step, row):
        return torch.ones(VOCAB_WIDTH, dtype=torch.bool)

    def after_guidance(self, step, row, scores):
        return torch.full_like(scores, float("-inf"))


VOCAB_WIDTH = 8


def test_rules_that_together_leave_nothing_leave_the_models_choice(tokenizer):
    """Two rules that each leave something may leave nothing together (names after real words, say): the set then
    keeps what the rules before the last one left, in both phases, so a step never samples from nothing."""
    scores = torch.zeros(1, VOCAB_WIDTH)
    rules = RuleSet(tokenizer, [[_Everything()]], prompt_width=0)
    ids = torch.zeros(1, 1, dtype=torch.long)
    ruled_out = rules.before_guidance(ids, scores)
    assert ruled_out is not None and not ruled_out.any()
    assert torch.equal(rules(ids, scores), scores)
