"""Faithful names: what a name is, and the decoding rule that keeps a RAG reply's names to its context."""
from __future__ import annotations

import pytest
import torch
from transformers import LogitsProcessorList

from assistant.data.details import is_grounded, name_spans, words_of
from assistant.model.faithful import (
    ContextNames,
    allowed_words,
    context_names_processor,
    request_words,
)
from assistant.model.prompts import ReviewRequest, build_prompt
from assistant.model.scratch import TINY, build_model, train_tokenizer

torch.set_num_threads(1)

CONTEXT = ["About Alien: A 1979 film directed by Ridley Scott, starring Sigourney Weaver and John Hurt.",
           'Ada Lumen (Evening Ledger), fresh: "The Nostromo crew never stood a chance."']
TEXTS = ["Tom Hanks stars. Keanu Reeves and Sigourney Weaver fight the Nostromo alien with Ridley Scott.",
         "It is a film about Tom and Hanks, with Toy Story jokes and Buzz. I loved it in March."] * 30


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS + CONTEXT * 10, vocab_size=400)


def test_name_spans_skip_sentence_openers_and_common_words():
    text = ("Tom Hanks' latest action flick, with Woody and Buzz. I loved it, and in March the Oscar went to "
            "Ridley Scott's Alien.")
    assert name_spans(text) == ["Hanks", "Woody", "Buzz", "Ridley Scott's Alien"]
    assert name_spans('Weaver and the "Nostromo" crew.') == ["Nostromo"]
    assert name_spans("the film, directed by ridley scott") == []


def test_grounding_folds_case_and_possessives():
    reference = words_of(CONTEXT)
    assert is_grounded("Ridley Scott's", reference) and is_grounded("Nostromo", reference)
    assert not is_grounded("Tom Hanks", reference)
    assert not is_grounded("Sigourney Hanks", reference)  # every word of the name must be grounded


def spell(rule, text: str, continuation: str, tokenizer) -> bool:
    """Whether `continuation` can be written after `text`, token by token of its own tokenization."""
    for token in tokenizer(continuation, add_special_tokens=False)["input_ids"]:
        ok, _ = rule.allowed(text)
        if ok is not None and not bool(ok[token]):
            return False
        text += tokenizer.decode([token])
    return True


@pytest.fixture(scope="module")
def rule(tokenizer):
    processor = ContextNames(tokenizer, [allowed_words(CONTEXT + ["Alien"])])
    processor._setup(torch.zeros(1, len(tokenizer)), width=0)
    return processor._rows[0]


@pytest.mark.parametrize("before", ["It stars", "It stars ", "A thriller with", "Scott's crew, with"])
def test_a_name_mid_sentence_must_come_from_the_context(rule, tokenizer, before):
    sep = "" if before.endswith(" ") else " "
    assert spell(rule, before, sep + "Sigourney Weaver", tokenizer)
    assert spell(rule, before, sep + "Ridley Scott", tokenizer)
    assert not spell(rule, before, sep + "Tom Hanks", tokenizer)
    assert not spell(rule, before, sep + "Keanu Reeves", tokenizer)


def test_a_sentence_opens_with_a_plain_word_or_an_allowed_name_never_an_invented_one(rule, tokenizer):
    assert spell(rule, "", "It is", tokenizer)  # the reply's first word: a plain word, capitalised
    assert spell(rule, "A classic. ", "The", tokenizer) and spell(rule, "A classic. ", "Stars", tokenizer)
    assert spell(rule, "A classic. ", "Sigourney Weaver", tokenizer)  # a name of the context
    assert not spell(rule, "", "Tom", tokenizer)  # a name the context lacks, even as the first word
    assert not spell(rule, "A classic. ", "Keanu", tokenizer)
    assert not spell(rule, "A classic. ", "Sigmund", tokenizer)  # begun as "Sigourney", garbled on the way
    assert spell(rule, "Honestly,", " I loved it in March", tokenizer)  # common capitalised words stay free
    assert spell(rule, "It is", " a film about toys and hanks", tokenizer)
    assert not spell(rule, "A classic. Keanu", " Reeves", tokenizer)  # the next word is mid-sentence again


def test_a_started_name_can_only_finish_as_an_allowed_one(rule, tokenizer):
    assert not spell(rule, "It stars Sigourney", " Hanks", tokenizer)
    assert not spell(rule, "It stars Sig", "mund", tokenizer)
    assert spell(rule, "It stars Sigourney", " Weaver's", tokenizer)


def test_rows_without_context_are_left_alone(tokenizer):
    bare, grounded = ReviewRequest("positive", "Alien"), ReviewRequest("positive", "Alien", None, CONTEXT)
    rule = request_words(grounded)
    assert request_words(bare) is None and "Weaver" in rule.words and "Weaver" in rule.names
    assert "Alien" in rule.words and "Alien" in rule.names  # the title the user asked about
    assert "Ada" not in rule.names and "Ada" in rule.words  # a context line's first word: allowed, not a name
    assert context_names_processor(tokenizer, [bare, bare]) is None
    processor = context_names_processor(tokenizer, [bare, grounded])
    scores = torch.zeros(2, len(tokenizer))
    ids = torch.tensor(tokenizer(["It stars", "It stars"], add_special_tokens=False)["input_ids"])
    processor(ids[:, :1], scores[:, :])  # first call: the prompt is one token wide
    out = processor(ids, scores.clone())
    assert torch.isfinite(out[0]).all()  # untouched
    assert torch.isinf(out[1]).any() and torch.isfinite(out[1]).any()


def test_when_only_an_unknown_name_is_plausible_the_clause_ends(tokenizer):
    processor = ContextNames(tokenizer, [{"Zed"}])
    ids = torch.tensor([tokenizer("It stars", add_special_tokens=False)["input_ids"]])
    scores = torch.full((1, len(tokenizer)), -math_inf())
    tom = tokenizer(" Tom", add_special_tokens=False)["input_ids"][0]
    scores[0, tom] = 0.0  # guidance left nothing but " Tom..."
    processor(ids[:, :1], scores.clone())
    out = torch.softmax(processor(ids, scores.clone())[0], dim=-1)
    comma, stop = (tokenizer.convert_tokens_to_ids(t) for t in (",", "."))
    assert out[tom] == 0 and float(out[comma] + out[stop]) == pytest.approx(1.0)
    assert processor.fallbacks == 1


def test_a_half_written_name_is_finished_as_an_allowed_word_never_cut(tokenizer):
    """Only "." is plausible after "It stars Sig": the clause does not end on "Sig", the name is finished."""
    processor = ContextNames(tokenizer, [{"Sigourney"}])
    ids = torch.tensor([tokenizer("It stars Sig", add_special_tokens=False)["input_ids"]])
    scores = torch.full((1, len(tokenizer)), -math_inf())
    stop = tokenizer.convert_tokens_to_ids(".")
    scores[0, stop] = 0.0
    processor(ids[:, :1], scores.clone())
    out = processor(ids, scores.clone())[0]
    assert processor.fallbacks == 1 and out[stop] == -math_inf()
    reply = tokenizer.decode(ids[0, 1:])
    for token in torch.isfinite(out).nonzero().flatten().tolist():
        assert "Sigourney".startswith((reply + tokenizer.decode([token])).split()[-1])


def math_inf() -> float:
    return float("inf")


def test_generation_with_the_rule_names_only_context_words(tokenizer):
    """The random tiny model writes capitalised gibberish: with the rule, every name it writes is allowed."""
    torch.manual_seed(0)
    model = build_model(tokenizer, TINY).eval()
    request = ReviewRequest("negative", "Alien", None, CONTEXT)
    prompt = tokenizer([build_prompt(request, tokenizer)] * 8, return_tensors="pt", add_special_tokens=False)
    allowed = words_of(request_words(request).words)

    def invented(processors: list) -> int:
        torch.manual_seed(1)
        out = model.generate(**prompt, do_sample=True, temperature=1.5, top_k=0, max_new_tokens=40,
                             logits_processor=LogitsProcessorList(processors), pad_token_id=tokenizer.eos_token_id)
        texts = tokenizer.batch_decode(out[:, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
        return sum(not is_grounded(name, allowed) for text in texts for name in name_spans(text))

    assert invented([]) > 0  # the control: unconstrained, it invents names
    processor = context_names_processor(tokenizer, [request] * 8)
    assert invented([processor]) == 0


def word_start(tokenizer, *words: str) -> tuple:
    """Alien's rule, the ids of "It stars" (a word starts next, mid-sentence) and the first token of each word."""
    rule = request_words(ReviewRequest("positive", "Alien", None, CONTEXT))
    ids = torch.tensor([tokenizer("It stars", add_special_tokens=False)["input_ids"]])
    return rule, ids, [tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in words]


def next_word(processor: ContextNames, ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """The next token's probabilities after the processor (its first call sees the one-token prompt)."""
    processor(ids[:, :1], scores.clone())
    return torch.softmax(processor(ids, scores.clone())[0], dim=-1)


def test_a_wanted_name_goes_to_the_context_names(tokenizer):
    """The model wants " Tom" (banned) after "It stars": that probability moves to the context's names."""
    rule, ids, (tom, sig, the) = word_start(tokenizer, " Tom", " Sigourney", " the")
    scores = torch.full((1, len(tokenizer)), -10.0)
    scores[0, tom], scores[0, sig], scores[0, the] = 5.0, 1.0, 3.0
    plain = next_word(ContextNames(tokenizer, [rule], transfer=False), ids, scores)
    moved = next_word(ContextNames(tokenizer, [rule]), ids, scores)
    assert plain[tom] == 0 and moved[tom] == 0
    assert plain[the] > plain[sig]  # without the transfer, the wanted name mostly becomes " the"
    assert moved[sig] > moved[the]  # with it, the name the model wanted comes from the context
    wanted_none = scores.clone()
    wanted_none[0, tom] = -10.0
    with_transfer, without = ContextNames(tokenizer, [rule]), ContextNames(tokenizer, [rule], transfer=False)
    for processor in (with_transfer, without):
        processor(ids[:, :1], wanted_none.clone())
    assert torch.equal(with_transfer(ids, wanted_none.clone()), without(ids, wanted_none.clone()))
    assert with_transfer.transfers == 0  # no name was wanted: nothing moves


def test_where_a_sentence_starts_a_banned_name_is_dropped_not_moved_to_the_context_names(tokenizer):
    """At an opener the wanted "Tom" is banned, but its probability is not handed to "Sigourney": moving it there
    made positive reviews open with names and cost sentiment (judged positive 0.90 -> 0.78)."""
    rule, _, (tom, sig, the) = word_start(tokenizer, "Tom", "Sigourney", "The")
    opened = torch.tensor([tokenizer("It is dark.", add_special_tokens=False)["input_ids"]])
    scores = torch.full((1, len(tokenizer)), -10.0)
    scores[0, tom], scores[0, sig], scores[0, the] = 5.0, 1.0, 3.0
    processor = ContextNames(tokenizer, [rule])
    after = next_word(processor, opened, scores)
    assert after[tom] == 0 and after[the] > after[sig] and processor.transfers == 0


def test_a_boost_nudges_toward_context_names_but_never_revives_an_implausible_one(tokenizer):
    rule, ids, (sig, ridley, the) = word_start(tokenizer, " Sigourney", " Ridley", " the")
    scores = torch.full((1, len(tokenizer)), -10.0)
    scores[0, sig], scores[0, the], scores[0, ridley] = 1.0, 3.0, -math_inf()  # guidance cut " Ridley"
    plain = next_word(ContextNames(tokenizer, [rule]), ids, scores)
    nudged = next_word(ContextNames(tokenizer, [rule], boost=3.0), ids, scores)
    # the film's own names are nudged, not the title the user gave nor the critic who wrote a quote
    assert {"Sigourney", "Nostromo"} <= rule.details and not {"Alien", "Ada", "Lumen", "Ledger"} & rule.details
    assert plain[the] > plain[sig] and nudged[sig] > nudged[the]
    assert nudged[ridley] == 0


def test_prompt_processors_read_the_rule_back_from_the_prompt(tokenizer):
    from assistant.model.reply_rules import prompt_processors

    build = prompt_processors(tokenizer)
    (processor,) = build(build_prompt(ReviewRequest("negative", "Alien", None, CONTEXT), tokenizer))
    assert "Weaver" in processor.rules[0].words and "Nostromo" in processor.rules[0].names
    assert build(build_prompt(ReviewRequest("negative", "Alien"), tokenizer)) == []  # RAG off: no rule
    assert build("not a review prompt") == []
    assert prompt_processors(tokenizer, enabled=False)(build_prompt(ReviewRequest("negative", "Alien", None,
                                                                                  CONTEXT), tokenizer)) == []
    # drafts: one prompt's rule serves every row of the batch
    ids = torch.tensor(tokenizer(["It stars"] * 3, add_special_tokens=False)["input_ids"])
    processor(ids[:, :1], torch.zeros(3, len(tokenizer)))
    out = processor(ids, torch.zeros(3, len(tokenizer)))
    assert torch.equal(out[0], out[2]) and torch.isinf(out[1]).any()


def test_an_opening_boost_nudges_the_films_names_only_where_a_sentence_starts(tokenizer):
    rule, mid_sentence, (sig, the, tom) = word_start(tokenizer, " Sigourney", " The", " Tom")
    opened = torch.tensor([tokenizer("It is dark.", add_special_tokens=False)["input_ids"]])
    scores = torch.full((1, len(tokenizer)), -10.0)
    scores[0, sig], scores[0, the], scores[0, tom] = 1.0, 3.0, 2.0
    plain = next_word(ContextNames(tokenizer, [rule]), opened, scores)
    nudged = next_word(ContextNames(tokenizer, [rule], opening_boost=3.0), opened, scores)
    assert plain[the] > plain[sig] and nudged[sig] > nudged[the]
    assert nudged[the] > 0 and nudged[tom] == 0 == plain[tom]  # "The" may open it; a name the context lacks not
    # mid-sentence the opening boost changes nothing (that is `boost`'s place)
    assert torch.equal(next_word(ContextNames(tokenizer, [rule], opening_boost=3.0), mid_sentence, scores),
                       next_word(ContextNames(tokenizer, [rule]), mid_sentence, scores))


def test_a_prior_boost_makes_the_films_names_plausible_before_guidance_cuts(tokenizer):
    from assistant.model.guidance import guide_scores

    rule, ids, (sig, the) = word_start(tokenizer, " Sigourney", " the")
    asked = torch.full((1, len(tokenizer)), -10.0)
    asked[0, sig], asked[0, the] = 0.0, 3.0  # " Sigourney" 20x less likely than " the": under a 0.1 cut
    opposite = asked.clone()
    cut = -2.302585  # log(0.1)

    def guided(processor):
        processor(ids[:, :1], asked.clone())
        bias = processor.prior(ids, asked)
        pos, neg = (asked, opposite) if bias is None else (asked + bias, opposite + bias)
        return torch.softmax(processor(ids, guide_scores(pos, neg, 3.0, cut))[0], dim=-1)

    after = guided(ContextNames(tokenizer, [rule], boost=3.0))  # the boost after guidance cannot revive it
    before = guided(ContextNames(tokenizer, [rule], prior_boost=4.0))
    assert after[sig] == 0 and before[sig] > before[the]
    assert ContextNames(tokenizer, [rule]).prior(ids, asked) is None  # off by default: nothing added
    opened = torch.tensor([tokenizer("It is dark.", add_special_tokens=False)["input_ids"]])
    at_opening = ContextNames(tokenizer, [rule], prior_boost=3.0)
    at_opening(opened[:, :1], asked.clone())
    assert at_opening.prior(opened, asked) is None  # mid-sentence word starts only


def test_the_vocabulary_is_analysed_once_per_vocabulary_not_per_tokenizer_object(tokenizer):
    import copy

    from assistant.model.name_vocab import token_words as _vocab

    twin = copy.deepcopy(tokenizer)  # the base model's tokenizer: another object, the same vocabulary
    assert twin is not tokenizer and _vocab(twin, len(twin)) is _vocab(tokenizer, len(tokenizer))
    other = train_tokenizer(["Entirely different words here."] * 20, vocab_size=120)
    assert _vocab(other, len(other)) is not _vocab(tokenizer, len(tokenizer))
