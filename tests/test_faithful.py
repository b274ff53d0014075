"""Faithful names: what a name is, and the decoding rule that keeps a RAG reply's names to its context."""
from __future__ import annotations

import pytest
import torch
from transformers import LogitsProcessorList

from assistant.data.details import is_grounded, name_spans, words_of
from assistant.model.prompts import (
    FittedPrompt,
    ReviewRequest,
    build_prompt,
    fit_prompt,
)
from assistant.model.rules import (
    Allowed,
    NamesRule,
    ReplyRules,
    RuleSet,
    allowed_words,
    request_words,
)
from assistant.model.rules.vocabulary import token_words
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


def names_rule(tokenizer, allowed: Allowed | set[str], **options) -> NamesRule:
    """The names rule over the tokenizer's whole vocabulary; a set of words stands for an `Allowed` of them."""
    allowed = allowed if isinstance(allowed, Allowed) else Allowed(frozenset(allowed))
    return NamesRule(allowed, token_words(tokenizer, len(tokenizer)), **options)


def after_guidance(tokenizer, rules: list, ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Row i's scores under rules[i] (None: no rule), the prompt being the ids' first token."""
    return RuleSet(tokenizer, [[r] if r is not None else [] for r in rules], prompt_width=1)(ids, scores)


@pytest.fixture(scope="module")
def rule(tokenizer):
    return names_rule(tokenizer, allowed_words(CONTEXT + ["Alien"]))


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
    scores = torch.zeros(2, len(tokenizer))
    ids = torch.tensor(tokenizer(["It stars", "It stars"], add_special_tokens=False)["input_ids"])
    out = after_guidance(tokenizer, [None, names_rule(tokenizer, rule)], ids, scores.clone())
    assert torch.isfinite(out[0]).all()  # untouched
    assert torch.isinf(out[1]).any() and torch.isfinite(out[1]).any()


def test_when_only_an_unknown_name_is_plausible_the_clause_ends(tokenizer):
    processor = names_rule(tokenizer, {"Zed"})
    ids = torch.tensor([tokenizer("It stars", add_special_tokens=False)["input_ids"]])
    scores = torch.full((1, len(tokenizer)), -math_inf())
    tom = tokenizer(" Tom", add_special_tokens=False)["input_ids"][0]
    scores[0, tom] = 0.0  # guidance left nothing but " Tom..."
    out = torch.softmax(after_guidance(tokenizer, [processor], ids, scores.clone())[0], dim=-1)
    comma, stop = (tokenizer.convert_tokens_to_ids(t) for t in (",", "."))
    assert out[tom] == 0 and float(out[comma] + out[stop]) == pytest.approx(1.0)
    assert processor.fallbacks == 1


def test_a_half_written_name_is_finished_as_an_allowed_word_never_cut(tokenizer):
    """Only "." is plausible after "It stars Sig": the clause does not end on "Sig", the name is finished."""
    processor = names_rule(tokenizer, {"Sigourney"})
    ids = torch.tensor([tokenizer("It stars Sig", add_special_tokens=False)["input_ids"]])
    scores = torch.full((1, len(tokenizer)), -math_inf())
    stop = tokenizer.convert_tokens_to_ids(".")
    scores[0, stop] = 0.0
    out = after_guidance(tokenizer, [processor], ids, scores.clone())[0]
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
    rules = RuleSet(tokenizer, [[names_rule(tokenizer, request_words(request))]] * 8,
                    prompt_width=prompt["input_ids"].shape[1])
    assert invented([rules]) == 0


def word_start(tokenizer, *words: str) -> tuple:
    """Alien's rule, the ids of "It stars" (a word starts next, mid-sentence) and the first token of each word."""
    rule = request_words(ReviewRequest("positive", "Alien", None, CONTEXT))
    ids = torch.tensor([tokenizer("It stars", add_special_tokens=False)["input_ids"]])
    return rule, ids, [tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in words]


def next_word(tokenizer, rule: NamesRule, ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """The next token's probabilities after the rule (the prompt is the ids' first token)."""
    return torch.softmax(after_guidance(tokenizer, [rule], ids, scores.clone())[0], dim=-1)


def test_a_wanted_name_goes_to_the_context_names(tokenizer):
    """The model wants " Tom" (banned) after "It stars": that probability moves to the context's names."""
    rule, ids, (tom, sig, the) = word_start(tokenizer, " Tom", " Sigourney", " the")
    scores = torch.full((1, len(tokenizer)), -10.0)
    scores[0, tom], scores[0, sig], scores[0, the] = 5.0, 1.0, 3.0
    plain = next_word(tokenizer, names_rule(tokenizer, rule, transfer=False), ids, scores)
    moved = next_word(tokenizer, names_rule(tokenizer, rule), ids, scores)
    assert plain[tom] == 0 and moved[tom] == 0
    assert plain[the] > plain[sig]  # without the transfer, the wanted name mostly becomes " the"
    assert moved[sig] > moved[the]  # with it, the name the model wanted comes from the context
    wanted_none = scores.clone()
    wanted_none[0, tom] = -10.0
    with_transfer, without = names_rule(tokenizer, rule), names_rule(tokenizer, rule, transfer=False)
    assert torch.equal(after_guidance(tokenizer, [with_transfer], ids, wanted_none.clone()),
                       after_guidance(tokenizer, [without], ids, wanted_none.clone()))
    assert with_transfer.transfers == 0  # no name was wanted: nothing moves


def test_where_a_sentence_starts_a_banned_name_is_dropped_not_moved_to_the_context_names(tokenizer):
    """At an opener the wanted "Tom" is banned, but its probability is not handed to "Sigourney": moving it there
    made positive reviews open with names, and read as less positive."""
    rule, _, (tom, sig, the) = word_start(tokenizer, "Tom", "Sigourney", "The")
    opened = torch.tensor([tokenizer("It is dark.", add_special_tokens=False)["input_ids"]])
    scores = torch.full((1, len(tokenizer)), -10.0)
    scores[0, tom], scores[0, sig], scores[0, the] = 5.0, 1.0, 3.0
    processor = names_rule(tokenizer, rule)
    after = next_word(tokenizer, processor, opened, scores)
    assert after[tom] == 0 and after[the] > after[sig] and processor.transfers == 0


def test_a_boost_nudges_toward_context_names_but_never_revives_an_implausible_one(tokenizer):
    rule, ids, (sig, ridley, the) = word_start(tokenizer, " Sigourney", " Ridley", " the")
    scores = torch.full((1, len(tokenizer)), -10.0)
    scores[0, sig], scores[0, the], scores[0, ridley] = 1.0, 3.0, -math_inf()  # guidance cut " Ridley"
    plain = next_word(tokenizer, names_rule(tokenizer, rule), ids, scores)
    nudged = next_word(tokenizer, names_rule(tokenizer, rule, boost=3.0), ids, scores)
    # the film's own names are nudged, not the title the user gave nor the critic who wrote a quote
    assert {"Sigourney", "Nostromo"} <= rule.details and not {"Alien", "Ada", "Lumen", "Ledger"} & rule.details
    assert plain[the] > plain[sig] and nudged[sig] > nudged[the]
    assert nudged[ridley] == 0


def test_the_book_builds_the_rule_from_the_prompts_structure_not_its_text(tokenizer):
    book = ReplyRules(tokenizer)
    fitted = fit_prompt(ReviewRequest("negative", "Alien", None, CONTEXT), tokenizer, 512, 40)
    (processor,) = book.for_prompt(fitted)
    assert "Weaver" in processor.rule.words and "Nostromo" in processor.rule.names
    assert book.for_prompt(fit_prompt(ReviewRequest("negative", "Alien"), tokenizer, 512, 40)) == ()  # RAG off
    assert ReplyRules(tokenizer, names=False).for_prompt(fitted) == ()
    # the request is read, never the text: a prompt whose text says nothing still gets its context's rule
    unreadable = FittedPrompt(request=fitted.request, text="(unreadable)", negative_text="", tokens=1,
                              max_new_tokens=40, window=512)
    assert book.for_prompt(unreadable)[0].rule == processor.rule
    # drafts: the rows of one prompt share its rule and what it built
    rules = book.rule_set([fitted] * 3, prompt_width=1)
    assert rules.rows[0][0] is rules.rows[2][0]
    ids = torch.tensor(tokenizer(["It stars"] * 3, add_special_tokens=False)["input_ids"])
    out = rules(ids, torch.zeros(3, len(tokenizer)))
    assert torch.equal(out[0], out[2]) and torch.isinf(out[1]).any()
    assert book.rule_set([fit_prompt(ReviewRequest("negative", "Alien"), tokenizer, 512, 40)], prompt_width=1) is None


def test_the_vocabulary_is_analysed_once_per_vocabulary_not_per_tokenizer_object(tokenizer):
    import copy

    from assistant.model.rules.vocabulary import token_words as _vocab

    twin = copy.deepcopy(tokenizer)  # the base model's tokenizer: another object, the same vocabulary
    assert twin is not tokenizer and _vocab(twin, len(twin)) is _vocab(tokenizer, len(tokenizer))
    other = train_tokenizer(["Entirely different words here."] * 20, vocab_size=120)
    assert _vocab(other, len(other)) is not _vocab(tokenizer, len(tokenizer))
