"""A review's first word is no concession: `VerdictFirst` on a tiny tokenizer and model."""
from __future__ import annotations

import math

import pytest
import torch
from transformers import LogitsProcessorList

from assistant.model.guidance import guide_scores
from assistant.model.prompts import ReviewRequest, build_prompt, fit_prompt
from assistant.model.rules import ReplyRules, RuleSet, VerdictFirst, mask_out
from assistant.model.rules.vocabulary import token_words
from assistant.model.scratch import TINY, build_model, train_tokenizer

torch.set_num_threads(1)

TEXTS = ["While it has charm, it drags. Although it looks fine, it is dull. Though pretty, it bores. Although",
         "Despite the cast, it fails. A dull film. While away the hours elsewhere. The plot is thin. Though",
         "Even if it tries, it fails. No matter how hard, dull. Even the cast sags. No one cares.",
         "[Taken from an earlier version.] [A]s dull as [sic] it gets. A [minor] film.",
         '"A joy," says Ebert. "Dull," writes Bo. It is "fine". ...not worth it. \'Why bother?\' it\'s dull...',
         "\u201cA joy,\u201d says Bo. \u2018Dull,\u2019 says Al. \u2026and so on."] * 40
REQUEST = ReviewRequest("negative", "Alien", None, ['Bo Quill (Lamp), rotten: "While handsome, it drifts."'])


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, vocab_size=600)


def verdict_first(tokenizer, prompt_width: int = 3, rows: int = 1) -> RuleSet:
    """The rule for `rows` rows of a prompt `prompt_width` tokens wide."""
    rule = VerdictFirst(token_words(tokenizer, len(tokenizer)))
    return RuleSet(tokenizer, [[rule]] * rows, prompt_width=prompt_width)


def _ids(tokenizer, word: str) -> set[int]:
    """The tokens spelling the whole word, with and without a leading space."""
    spelled = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in (word, " " + word)]
    return {ids[0] for ids in spelled if len(ids) == 1}


def _spaced(tokenizer, word: str) -> set[int]:
    """The token spelling the word after a space, as a sentence's second word is written."""
    ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
    return set(ids) if len(ids) == 1 else set()


def _quote_openers(tokenizer) -> set[int]:
    return {i for token, i in tokenizer.get_vocab().items()
            if tokenizer.decode([i]).lstrip().startswith(("[", '"', "'", "..", "\u201c", "\u2018", "\u2026"))}


def test_only_the_first_step_loses_the_concessions(tokenizer):
    banned = set().union(*(_ids(tokenizer, w) for w in ("While", "Although", "Though", "Despite")))
    assert len(banned) >= 4  # else the case shows nothing
    banned |= _quote_openers(tokenizer)
    processor = verdict_first(tokenizer)
    prompt = torch.tensor([[1, 2, 3]])
    first = processor(prompt, torch.zeros(1, len(tokenizer)))
    assert all(first[0, i] == -math.inf for i in banned)
    assert int(torch.isfinite(first[0]).sum()) == len(tokenizer) - len(banned)
    later = processor(torch.tensor([[1, 2, 3, 4]]), torch.zeros(1, len(tokenizer)))
    assert bool(torch.isfinite(later).all())  # "... it is fine. While ..." later on is the model's own
    only_concessions = torch.full((1, len(tokenizer)), -math.inf)
    only_concessions[0, sorted(banned)] = 0.0
    assert torch.equal(verdict_first(tokenizer)(prompt, only_concessions), only_concessions)  # nothing else: kept


def test_a_reply_may_not_open_as_a_quote_does(tokenizer):
    openers = _quote_openers(tokenizer)
    for mark in ("[", '"', "'"):  # alone and after a space: else the case shows nothing
        assert len(_ids(tokenizer, mark)) == 2 and _ids(tokenizer, mark) <= openers
    for mark in ("...", "\u201c", "\u2018", "\u2026"):  # the tokenizer has a token for each: else the case is empty
        assert any(tokenizer.decode([i]).lstrip().startswith(mark) for i in openers), mark
    processor = verdict_first(tokenizer)
    first = processor(torch.tensor([[1, 2, 3]]), torch.zeros(1, len(tokenizer)))[0]
    assert all(first[i] == -math.inf for i in openers)
    later = processor(torch.tensor([[1, 2, 3, 4]]), torch.zeros(1, len(tokenizer)))[0]
    assert bool(torch.isfinite(later[sorted(openers)]).all())  # 'A [minor] film', 'It is "fine"' later: its own
    assert bool(torch.isfinite(first[sorted(_ids(tokenizer, "."))]).all())  # a plain period is no excerpt


def test_the_second_word_may_not_make_a_two_word_concession(tokenizer):
    even, no, the = (_ids(tokenizer, w) for w in ("Even", "No", "The"))
    if_, matter, cast = (_spaced(tokenizer, w) for w in ("if", "matter", "cast"))
    assert even and no and the and if_ and matter and cast  # else the case shows nothing

    def after(first: set[int]) -> torch.Tensor:
        processor = verdict_first(tokenizer)  # the prompt: [1, 2, 3]
        return processor(torch.tensor([[1, 2, 3, min(first)]]), torch.zeros(1, len(tokenizer)))[0]

    assert all(after(even)[i] == -math.inf for i in if_) and all(after(no)[i] == -math.inf for i in matter)
    assert bool(torch.isfinite(after(even)[sorted(cast)]).all())  # "Even the cast ..." is a fine pan
    assert bool(torch.isfinite(after(the)).all())


def test_it_masks_before_guidance_so_the_plausibility_cut_picks_among_the_rest(tokenizer):
    processor, prompt = verdict_first(tokenizer), torch.tensor([[1, 2, 3]])
    while_id = min(_ids(tokenizer, "While"))
    scores, negative = torch.zeros(1, len(tokenizer)), torch.zeros(1, len(tokenizer))
    scores[0, while_id] = 10.0  # the model is sure: "While"; after guidance's cut nothing else would be left
    ruled_out = processor.before_guidance(prompt, scores)
    guided = guide_scores(mask_out(scores, ruled_out), mask_out(negative, ruled_out), 3.0, math.log(0.1))
    assert guided[0, while_id] == -math.inf and bool(torch.isfinite(guided).any())
    assert processor.before_guidance(torch.tensor([[1, 2, 3, 4]]), scores) is None


def test_generation_never_opens_with_a_concession(tokenizer):
    torch.manual_seed(0)
    model = build_model(tokenizer, TINY).eval()
    prompt = tokenizer([build_prompt(REQUEST, tokenizer)] * 8, return_tensors="pt", add_special_tokens=False)
    banned = set().union(*(_ids(tokenizer, w) for w in ("While", "Although", "Though", "Despite")))

    class Wants:  # the untrained model made to want to concede
        def __call__(self, input_ids, scores):
            return scores + (50.0 * torch.isin(torch.arange(scores.shape[-1]), torch.tensor(sorted(banned))))

    def first_tokens(processors: list) -> list[int]:
        torch.manual_seed(1)
        out = model.generate(**prompt, do_sample=True, temperature=1.0, top_k=0, max_new_tokens=2,
                             logits_processor=LogitsProcessorList([Wants(), *processors]),
                             pad_token_id=tokenizer.eos_token_id)
        return out[:, prompt["input_ids"].shape[1]].tolist()

    assert all(t in banned for t in first_tokens([]))  # the control: it concedes whenever it can
    assert not any(t in banned for t in first_tokens([verdict_first(tokenizer, prompt["input_ids"].shape[1], 8)]))


def test_the_book_gives_it_to_every_review_prompt_when_asked(tokenizer):
    no_context = fit_prompt(ReviewRequest("negative", "Alien"), tokenizer, 512, 40)
    (rule,) = ReplyRules(tokenizer, names=False, verdict_first=True).for_prompt(no_context)
    assert isinstance(rule, VerdictFirst)
    assert ReplyRules(tokenizer, names=False).for_prompt(no_context) == ()
    rag = fit_prompt(REQUEST, tokenizer, 512, 40)
    kinds = [type(r).__name__ for r in ReplyRules(tokenizer, verdict_first=True).for_prompt(rag)]
    assert kinds == ["VerdictFirst", "NamesRule"]
