"""The named lead: a RAG reply that has named no one by its second sentence opens it with one of the film's names."""
from __future__ import annotations

import math

import pytest
import torch
from transformers import LogitsProcessorList

from assistant.model.guidance import guide_scores
from assistant.model.prompts import ReviewRequest, build_prompt, fit_prompt
from assistant.model.rules import (
    LeadNames,
    NamedLead,
    NamesRule,
    ReplyRules,
    RuleSet,
    lead_names,
    mask_out,
)
from assistant.model.rules.vocabulary import token_words
from assistant.model.scratch import TINY, build_model, train_tokenizer

torch.set_num_threads(1)

CONTEXT = ["About Alien: A 1979 film directed by Ridley Scott, starring Sigourney Weaver and John Hurt.",
           'Ada Lumen (Evening Ledger), fresh: "The Nostromo crew never stood a chance, and Weaver is superb."',
           'Bo Quill (Daily Lamp), rotten: "Scott lets the Nostromo drift, and the Internet hype oversold it."']
REQUEST = ReviewRequest("negative", "Alien", None, CONTEXT)
TEXTS = ["It is a grim film. The crew is dull. Weaver and Scott and the Nostromo, with Sigourney and Ridley.",
         "Weaverly and Scottish words, the Internet, Tom Hanks and Keanu. It bores, it drags, it is slow."] * 30


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS + CONTEXT * 10, vocab_size=400)


def test_a_reply_leads_with_the_facts_names_and_names_the_quotes_share():
    names = lead_names(REQUEST)
    assert {"Ridley Scott", "Scott", "Sigourney Weaver", "Weaver", "John Hurt", "Hurt", "Nostromo"} <= names.lead
    assert not {"Ridley", "Sigourney", "John"} & names.lead  # a first name alone: the model loses the rest
    assert "Internet" not in names.lead and "Internet" in names.known  # one quote's capital: no lead, yet specific
    assert not {"Alien", "Ada", "Lumen", "Bo", "Quill"} & names.lead  # the title, the critics
    starring_de_niro = ReviewRequest("positive", "Taxi Driver", None,
                                     ["About Taxi Driver: A 1976 film starring Robert De Niro and Jodie Foster."])
    assert {"Robert De Niro", "De Niro"} <= lead_names(starring_de_niro).lead
    assert not {"Niro", "De", "Robert"} & lead_names(starring_de_niro).lead
    assert lead_names(ReviewRequest("negative", "Alien")) is None  # RAG off
    only_one_quote = ReviewRequest("negative", "Alien", None, [CONTEXT[2]])
    assert lead_names(only_one_quote) is None
    outer_space = ReviewRequest("negative", "Alien", None, ['Bo (Lamp), rotten: "Lost in Outer Space again."'])
    assert lead_names(outer_space) is None  # one quote's two capitals are as often a phrase as a person


def test_a_reply_names_the_film_with_any_of_its_people_places_or_characters_from_the_context():
    from assistant.model.rules.names import names_film, request_words

    allowed = request_words(REQUEST)
    assert names_film("Ridley Scott's crew drifts.", allowed)  # a possessive is its name
    assert names_film("A chase through the Nostromo, slow as can be.", allowed)  # mid-sentence, not first
    assert names_film("Dull, even with Weaver.", allowed)
    assert not names_film("A grim film that drags, and Alien fans deserve better.", allowed)  # the title: anyone's
    assert not names_film("Ada Lumen was right: it drags.", allowed)  # a critic is no one in the film
    assert not names_film("scott and weaver, in lower case, are words.", allowed)


def test_another_films_title_the_quotes_compare_with_is_no_lead_unless_the_facts_name_it():
    quotes = ['Ann Lee (Daily), rotten: "Less fun than Heathers, but Judy Greer shines."',
              'Bo Quill (Lamp), rotten: "A pale Heathers, saved by Judy Greer."']
    films = {"heathers", "jawbreaker", "hitchcock"}
    jawbreaker = ReviewRequest("negative", "Jawbreaker", None, quotes)
    assert {"Heathers", "Judy Greer"} <= lead_names(jawbreaker).lead  # without the store's titles: two quotes share it
    led = lead_names(jawbreaker, films=films)
    assert "Heathers" not in led.lead and "Judy Greer" in led.lead and "Heathers" in led.known
    facts = ["About Torn Curtain: A 1966 film directed by Alfred Hitchcock, starring Paul Newman.",
             'Ann Lee (Daily), rotten: "Hitchcock coasts."', 'Bo Quill (Lamp), rotten: "Tired Hitchcock."']
    assert "Hitchcock" in lead_names(ReviewRequest("negative", "Torn Curtain", None, facts), films=films).lead


def test_the_book_passes_the_stores_titles_to_the_lead(tokenizer):
    quotes = ['Ann Lee (Daily), rotten: "Less fun than Heathers, but Judy Greer shines."',
              'Bo Quill (Lamp), rotten: "A pale Heathers, saved by Judy Greer."']
    fitted = fit_prompt(ReviewRequest("negative", "Jawbreaker", None, quotes), tokenizer, 512, 16)
    lead = ReplyRules(tokenizer, lead_sentence=1, films={"heathers"}).for_prompt(fitted)[-1]
    assert isinstance(lead, NamedLead) and "Heathers" not in lead.phrases and "Greer" in lead.phrases


def test_a_film_the_data_does_not_know_is_never_led_with_another_films_names():
    """The context of an unknown film is other films' reviews: their shared names are not this film's."""
    others = ['Ann Lee (Daily) on Jaws, fresh: "Spielberg and Scheider make it sing."',
              'Bo Quill (Lamp) on Duel, fresh: "Early Spielberg, lean as Scheider never was."']
    assert lead_names(ReviewRequest("positive", "Zorblax", None, others)) is None
    others.append('Cy Dee (Post) on Jaws, rotten: "A soggy Roy Scheider vehicle."')
    assert lead_names(ReviewRequest("positive", "Zorblax", None, others)) is None
    assert "Scheider" in lead_names(ReviewRequest("positive", "Jaws", None, others[:1] * 2)).lead


def named_lead(tokenizer, names: LeadNames, sentence: int = 2) -> NamedLead:
    return NamedLead(names, token_words(tokenizer, len(tokenizer)), sentence=sentence)


def lead_step(tokenizer, reply: str, sentence: int = 2) -> torch.Tensor | None:
    """The lead's mask after `reply` (a prompt "Go" goes first), or None where it does not apply."""
    rule = named_lead(tokenizer, lead_names(REQUEST), sentence)
    ids = torch.tensor([tokenizer("Go " + reply, add_special_tokens=False)["input_ids"]])
    step = RuleSet(tokenizer, [[rule]], prompt_width=len(tokenizer("Go", add_special_tokens=False)["input_ids"]))
    return rule.mask(step.step(ids).reply(0))


def words_allowed(tokenizer, mask: torch.Tensor) -> set[str]:
    return {tokenizer.decode([t]) for t in mask.nonzero().flatten().tolist()}


def test_the_second_sentence_opens_with_a_name_when_the_first_named_no_one(tokenizer):
    mask = lead_step(tokenizer, "It is a grim film.")
    lead = lead_names(REQUEST).lead
    allowed = words_allowed(tokenizer, mask)
    assert allowed and all(any(name.startswith(t.lstrip()) for name in lead) for t in allowed)
    weaver = tokenizer(" Weaver", add_special_tokens=False)["input_ids"][0]
    assert mask[weaver] and not mask[tokenizer.eos_token_id or 0]
    assert not mask[tokenizer(" The", add_special_tokens=False)["input_ids"][0]]
    assert lead_step(tokenizer, "") is None  # the first sentence is the model's own
    assert lead_step(tokenizer, "It is a grim") is None  # mid-sentence: nothing to do
    assert lead_step(tokenizer, "Weaver is wasted.") is None  # already named someone
    assert lead_step(tokenizer, "The Internet hype lied.") is None  # ... or a detail of the film
    assert lead_step(tokenizer, "", sentence=1) is not None  # at 1 the reply itself opens with a name


def test_a_lead_name_is_finished_whole_and_not_glued_to_more(tokenizer):
    inside = words_allowed(tokenizer, lead_step(tokenizer, "It is a grim film. Sig"))
    assert inside and all("Sigourney Weaver".startswith("Sig" + t) for t in inside)
    first_name = words_allowed(tokenizer, lead_step(tokenizer, "It is a grim film. Sigourney"))
    assert first_name and all(" Weaver".startswith(t) for t in first_name)  # the surname must follow
    whole = lead_step(tokenizer, "It is a grim film. Weaver")
    glued = [t for t in range(len(tokenizer)) if tokenizer.decode([t])[:1].isalpha()]
    assert not any(whole[t] for t in glued)  # no "Weaverly"
    assert whole[tokenizer(",", add_special_tokens=False)["input_ids"][0]]
    assert lead_step(tokenizer, "It is a grim film. Weaver is") is None  # the lead is done


def test_after_the_leads_and_comes_another_of_its_people_or_a_plain_word_not_the_same_name_or_any_capital(tokenizer):
    weaver, scott, the, cap_the, internet = (tokenizer(t, add_special_tokens=False)["input_ids"][0]
                                             for t in (" Weaver", " Scott", " the", " The", " Internet"))
    again = lead_step(tokenizer, "Weaver and", sentence=1)
    assert again is not None and not again[weaver] and again[scott]  # "Weaver and Weaver" out, "Weaver and Scott" in
    assert again[the] and not again[cap_the] and not again[internet]  # "Weaver and the crew", not "and Internet"
    assert not lead_step(tokenizer, "It is a grim film. Weaver and")[weaver]  # a second sentence's lead too
    assert not lead_step(tokenizer, "Sigourney Weaver and", sentence=1)[weaver]  # her surname is her too
    assert lead_step(tokenizer, "Weaver and the", sentence=1) is None  # gone on: the rest is the model's
    assert lead_step(tokenizer, "The crew and", sentence=1) is None  # no lead before the "and"


def test_the_lead_is_masked_before_guidance_so_the_plausibility_cut_cannot_drop_the_names(tokenizer):
    rule = named_lead(tokenizer, lead_names(REQUEST))
    processor = RuleSet(tokenizer, [[rule]], prompt_width=1)  # the prompt: "Go"
    ids = torch.tensor([tokenizer("Go It is a grim film.", add_special_tokens=False)["input_ids"]])
    the, weaver = (tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in (" The", " Weaver"))
    asked = torch.full((1, len(tokenizer)), -10.0)
    asked[0, the], asked[0, weaver] = 5.0, -5.0  # " Weaver" far under guidance's 0.1 plausibility cut
    opposite = asked.clone()
    cut = -2.302585
    unmasked = guide_scores(asked, opposite, 3.0, cut)
    assert processor(ids, unmasked)[0, weaver] == -float("inf")  # after the cut alone nothing can revive it
    ruled_out = processor.before_guidance(ids, asked)
    guided = processor(ids, guide_scores(mask_out(asked, ruled_out), mask_out(opposite, ruled_out), 3.0, cut))
    chosen = guided[0].argmax().item()
    assert torch.isfinite(guided[0, weaver]) and not torch.isfinite(guided[0, the])
    assert any(name.startswith(tokenizer.decode([chosen]).strip()) for name in lead_names(REQUEST).lead)
    assert rule.leads == 1


def test_generation_with_the_lead_names_the_film_in_every_reply(tokenizer):
    """The random tiny model writes gibberish; with the lead at sentence 1 every reply opens with a lead name."""
    torch.manual_seed(0)
    model = build_model(tokenizer, TINY).eval()
    prompt = tokenizer([build_prompt(REQUEST, tokenizer)] * 6, return_tensors="pt", add_special_tokens=False)
    lead = lead_names(REQUEST).lead

    def openers(processors: list) -> list[str]:
        torch.manual_seed(1)
        out = model.generate(**prompt, do_sample=True, temperature=1.0, top_k=0, max_new_tokens=16,
                             logits_processor=LogitsProcessorList(processors), pad_token_id=tokenizer.eos_token_id)
        texts = tokenizer.batch_decode(out[:, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
        return [text.lstrip() for text in texts]

    def led(text: str) -> bool:
        return any(text.startswith(p) and not text[len(p):len(p) + 1].isalpha() for p in lead)

    assert not all(led(text) for text in openers([]))  # the control: unconstrained, it opens with anything
    rules = RuleSet(tokenizer, [[named_lead(tokenizer, lead_names(REQUEST), sentence=1)]] * 6,
                    prompt_width=prompt["input_ids"].shape[1])
    assert all(led(text) for text in openers([rules]))


def test_a_lead_sentence_counts_from_one(tokenizer):
    with pytest.raises(ValueError, match="counts from 1"):
        named_lead(tokenizer, LeadNames(frozenset({"Weaver"}), frozenset()), sentence=0)


def test_the_book_adds_the_lead_only_when_asked_and_the_context_names_someone(tokenizer):
    fitted = fit_prompt(REQUEST, tokenizer, 512, 40)
    assert [type(r) for r in ReplyRules(tokenizer, lead_sentence=2).for_prompt(fitted)] == [NamesRule, NamedLead]
    assert [type(r) for r in ReplyRules(tokenizer).for_prompt(fitted)] == [NamesRule]
    bare = fit_prompt(ReviewRequest("negative", "Alien"), tokenizer, 512, 40)
    assert ReplyRules(tokenizer, names=False, lead_sentence=2).for_prompt(bare) == ()
    (lead,) = ReplyRules(tokenizer, names=False, lead_sentence=1).for_prompt(fitted)
    assert lead.sentence == 1 and "Weaver" in lead.phrases


def test_a_fractional_lead_sentence_is_drawn_per_reply(tokenizer):
    import random

    book = ReplyRules(tokenizer, names=False, lead_sentence=1.5)
    drawn = [book.lead_for(random.Random(seed)) for seed in range(200)]
    assert set(drawn) == {1, 2} and 60 < drawn.count(1) < 140  # about half each
    assert drawn == [book.lead_for(random.Random(seed)) for seed in range(200)]  # a seed repeats its draw
    assert {ReplyRules(tokenizer, names=False, lead_sentence=2).lead_for(random.Random(s)) for s in range(50)} == {2}
    assert {ReplyRules(tokenizer, names=False, lead_sentence=0.5).lead_for(random.Random(s)) for s in range(50)} == {0, 1}


def test_which_name_opens_is_drawn_evenly_among_the_plausible_ones(tokenizer):
    rule = named_lead(tokenizer, lead_names(REQUEST))
    processor = RuleSet(tokenizer, [[rule]], prompt_width=1)  # the prompt: "Go"
    ids = torch.tensor([tokenizer("Go It is a grim film.", add_special_tokens=False)["input_ids"]])
    starts = rule.starts.nonzero().flatten()[:2].tolist()
    scores = torch.full((1, len(tokenizer)), -math.inf)
    scores[0, starts[0]], scores[0, starts[1]] = 4.0, 0.0  # the model much prefers one name; both were kept
    out = processor(ids, scores)[0]
    assert out[starts[0]] == out[starts[1]]  # evenly: another reply about this film may open with the other
    assert torch.isfinite(out).sum() == 2  # nothing guidance cut comes back
    inside = torch.tensor([tokenizer("Go It is a grim film. Sig", add_special_tokens=False)["input_ids"]])
    going_on = rule.mask(processor.step(inside).reply(0)).nonzero().flatten()[:2].tolist()
    scores = torch.full((1, len(tokenizer)), -math.inf)
    scores[0, going_on] = torch.tensor([4.0, 0.0][:len(going_on)])
    assert torch.equal(processor(inside, scores)[0][going_on], scores[0][going_on])  # spelling it: the model's


def test_a_prompts_drafts_each_draw_their_lead_and_share_what_was_built(tokenizer):
    fitted = fit_prompt(REQUEST, tokenizer, 512, 40)
    book = ReplyRules(tokenizer, names=False, lead_sentence=0.5)
    rows = book.rule_set([fitted] * 16, prompt_width=1, seed=3).rows
    led = [any(isinstance(r, NamedLead) for r in row) for row in rows]
    assert any(led) and not all(led)  # drafts vary as replies do: some open with a name, some do not
    again = book.rule_set([fitted] * 16, prompt_width=1, seed=3).rows
    assert led == [any(isinstance(r, NamedLead) for r in row) for row in again]  # the seed repeats the draws
    leading = [row for row, lead in zip(rows, led) if lead]
    assert all(row is leading[0] for row in leading)  # rows with the same draw share the rules they built
    whole = ReplyRules(tokenizer, names=False, lead_sentence=1).rule_set([fitted] * 4, prompt_width=1, seed=3).rows
    assert all(row is whole[0] for row in whole) and isinstance(whole[0][0], NamedLead)
