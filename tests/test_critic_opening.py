"""A critic's opening: the critics' table (assistant/data/openings.py) and the rule that draws a reply's first
words by it (assistant/model/rules/critic_opening.py)."""
from __future__ import annotations

import math

import pytest
import torch

from assistant.data.openings import (
    NAME,
    NAME_POSSESSIVE,
    POSSESSIVE,
    RARE,
    CriticOpenings,
    context_key,
    count_name_openings,
    count_openings,
    critic_openings,
    lead_opening,
    leading_name,
    opening_words,
)
from assistant.model.rules import ReplyRules, Rule, RuleSet
from assistant.model.rules.critic_opening import CriticOpening
from assistant.model.rules.vocabulary import token_words
from assistant.model.scratch import train_tokenizer
from tests.rule_steps import one_token, rule_step

TEXTS = ["This is a film. This is one film. This is the end. A gem, this is. The plot is thin. Its film's end."] * 40


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, vocab_size=300)


@pytest.fixture(scope="module")
def vocab(tokenizer):
    return token_words(tokenizer, len(tokenizer))


TABLE = CriticOpenings({"contexts": {"": {"the": 50, "a": 40, "this": 10},
                                     "this": {"is": 60, "film": 5},
                                     "this|is": {"a": 500, "the": 200, "one": 100}}})


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
    a, one, the, dot = (one_token(tokenizer, t) for t in (" a", " one", " the", "."))
    scores = torch.full((len(tokenizer),), -math.inf)
    scores[[one, a, the, dot]] = torch.tensor([3.0, 0.0, 0.0, 0.5])  # the model is sure of "one"
    out = rule_step(tokenizer, CriticOpening(TABLE, vocab, 1.0), "This is", scores.unsqueeze(0))
    before, after = _probs(scores), _probs(out)
    assert after[a] > after[the] > after[one]  # 500 : 200 : 100, as the critics wrote (flattened by SPREAD)
    assert before[one] > 0.8 and after[one] < 0.3
    assert float(after[dot]) == pytest.approx(float(before[dot]), abs=1e-5)  # punctuation keeps the model's share
    assert float(after[[a, one, the]].sum()) == pytest.approx(float(before[[a, one, the]].sum()), abs=1e-5)  # the group's total
    assert torch.isinf(out[torch.isinf(scores)]).all()  # nothing guidance cut comes back


def test_half_the_weight_lands_between_the_model_and_the_critics(tokenizer, vocab):
    a, one = one_token(tokenizer, " a"), one_token(tokenizer, " one")
    scores = torch.full((len(tokenizer),), -math.inf)
    scores[[one, a]] = torch.tensor([3.0, 0.0])
    model, critics = _probs(scores)[one], 100 / 600
    half = _probs(rule_step(tokenizer, CriticOpening(TABLE, vocab, 0.5), "This is", scores.unsqueeze(0)))[one]
    assert critics < half < model


def test_after_the_opening_and_for_words_critics_never_opened_with_the_model_chooses(tokenizer, vocab):
    a, one = one_token(tokenizer, " a"), one_token(tokenizer, " one")
    scores = torch.full((1, len(tokenizer)), -math.inf)
    scores[0, [one, a]] = torch.tensor([3.0, 0.0])
    rule = CriticOpening(TABLE, vocab, 1.0)
    assert torch.equal(rule_step(tokenizer, rule, "This is a gem", scores), scores[0])  # three words written
    unknown = CriticOpening(CriticOpenings({"contexts": {"this|is": {"plot": 9}}}), vocab, 1.0)
    assert torch.equal(rule_step(tokenizer, unknown, "This is", scores), scores[0])


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
    a, one, the = (one_token(tokenizer, t) for t in (" a", " one", " the"))
    piece = one_token(tokenizer, " plo")  # the start of " plot": critics' count of every word it starts would mislead
    scores = torch.full((len(tokenizer),), -math.inf)
    scores[[one, a, the, piece]] = torch.tensor([3.0, 0.0, 0.0, 1.0])
    table = CriticOpenings({"contexts": {"this|is": {"a": 500, "the": 200, "one": 100, "plot": 10_000}}})
    out = rule_step(tokenizer, CriticOpening(table, vocab, 1.0), "This is", scores.unsqueeze(0))
    assert float(_probs(out)[piece]) < float(_probs(scores)[piece]) < 0.2  # never boosted by "plot"'s count
    assert float(_probs(out)[a]) > float(_probs(out)[one])


def test_words_guidance_cut_but_the_model_found_plausible_may_be_drawn_and_ruled_out_ones_never(tokenizer, vocab):
    a, one, the = (one_token(tokenizer, t) for t in (" a", " one", " the"))
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


ENGLISH = frozenset("funny high spirited a is and has film great the brings".split())


def test_a_quote_opens_with_a_name_when_its_capitalised_words_end_in_no_english_word_and_are_not_its_title():
    word = ENGLISH.__contains__
    assert leading_name("Joan Cusack practically steals the show!", word) == (False, "practically steals the show!",
                                                                              "Joan Cusack")
    assert leading_name("Zemeckis' tranquil control never wavers.", word) == (True, "tranquil control never wavers.",
                                                                              "Zemeckis")
    assert leading_name("Jim Jarmusch's most stunning work.", word) == (True, "most stunning work.", "Jim Jarmusch")
    assert leading_name("Linney, in particular, is heartbreaking.", word) == (False, "in particular, is heartbreaking.",
                                                                              "Linney")
    assert leading_name("Funny and sad.", word) is None  # a word, not a name
    assert leading_name("High-spirited and fun.", word) is None  # a hyphenated word
    assert leading_name("The Nostromo drifts.", word) is None  # a sentence's opener, not a name
    assert leading_name("Invictus is a powerful story.", word, frozenset({"invictus"})) is None  # its own title
    assert leading_name("Invictus is a powerful story.", word) == (False, "is a powerful story.", "Invictus")


def test_the_name_contexts_count_what_critics_write_after_a_name_and_after_its_possessive():
    quotes = ([("Kasdan is a master.", "The Bodyguard", {})] * 3 + [("Romero has made a gem.", "Dawn", {})] * 2
              + [("Scorsese's film is great.", "Casino", {})] * 2 + [("Funny is a gem.", "Up", {})] * 5
              + [("Casino is a bore.", "Casino", {})] * 4)
    contexts = count_name_openings(quotes, ENGLISH.__contains__, min_context=3)
    assert contexts[NAME] == {"is": 3, "has": 2, POSSESSIVE: 2}  # no word, no title counted
    assert contexts[NAME_POSSESSIVE] == {"film": 2}
    assert contexts[f"{NAME}|is"] == {"a": 3} and f"{NAME}|has" not in contexts  # two quotes: under min_context
    table = CriticOpenings({"contexts": {**contexts, "*|has": {"made": 7}}})
    assert table.whole([NAME], "is") == 3 and table.whole([NAME, "is"], "a") == 3
    assert table.whole([NAME, "has"], "made") == 7  # backs off to the general table


def test_the_name_contexts_are_also_kept_by_the_names_role_where_the_films_facts_tell_it():
    from assistant.data.openings import film_roles, name_role

    roles = film_roles({"Martin Scorsese": "director", "Al Pacino": "cast", "Robert De Niro": "cast"})
    assert name_role("Scorsese", roles) == "director" and name_role("Al Pacino", roles) == "cast"
    assert name_role("Joe Pesci", roles) == "cast"  # not the director of a film whose director is known: an actor
    assert name_role("Pesci", {"pacino": "cast"}) is None and name_role("Pesci", {}) is None  # no director known
    assert film_roles({"Clint Eastwood": "director", "Eastwood": "cast"}) == {"eastwood": "director"}
    quotes = ([("Scorsese's film is great.", "Casino", roles)] * 3
              + [("Pacino's performance is great.", "Casino", roles)] * 3 + [("Pacino is great.", "Casino", roles)] * 2
              + [("Kasdan's film is great.", "Silverado", {})] * 2)
    contexts = count_name_openings(quotes, ENGLISH.__contains__, min_context=3)
    assert contexts[NAME_POSSESSIVE] == {"film": 5, "performance": 3}  # every name's, role-blind
    assert contexts["<director>'s"] == {"film": 3} and contexts["<actor>'s"] == {"performance": 3}
    assert contexts["<actor>"] == {POSSESSIVE: 3, "is": 2}
    assert contexts["<director>"] == {POSSESSIVE: 3}
    table = CriticOpenings({"contexts": {NAME_POSSESSIVE: {"film": 9}, "<actor>'s": {"performance": 4},
                                         f"{NAME}|is": {"a": 5}}})
    assert table.whole(["<actor>'s"], "performance") == 4 and table.whole(["<actor>'s"], "film") == 0
    assert table.whole(["<director>'s"], "film") == 9  # a role with too few quotes: every name's counts
    assert context_key(["<actor>", "is"], table.contexts) == f"{NAME}|is"  # the third word is role-blind


def test_a_lead_reply_reads_its_name_as_one_word_and_nothing_while_the_name_is_written():
    phrases = ("Al Pacino", "Pacino")
    assert lead_opening("", phrases) is None and lead_opening("Al", phrases) is None
    assert lead_opening("Al Pac", phrases) is None and lead_opening("Pacino'", phrases) is None
    assert lead_opening("Al Pacino", phrases) == [NAME]
    assert lead_opening("Al Pacino brings a", phrases) == [NAME, "brings", "a"]
    assert lead_opening("Pacino's film is", phrases) == [NAME_POSSESSIVE, "film", "is"]
    assert lead_opening("The film is", phrases) == ["the", "film", "is"]  # the lead found no name: as usual
    assert lead_opening("Pacino\u2019s film", phrases) == [NAME_POSSESSIVE, "film"]
    assert lead_opening("Coens' film is", ("Coens",)) == [NAME_POSSESSIVE, "film", "is"]  # as `leading_name` counts it
    longer = ("Jordan", "Jordan Peele")  # one person's surname, another's first name
    assert lead_opening("Jordan", longer) is None and lead_opening("Jordan ", longer) is None  # may go on
    assert lead_opening("Jordan Peele", longer) == [NAME] and lead_opening("Jordan is", longer) == [NAME, "is"]
    roles = {"Al Pacino": "cast", "Pacino": "cast"}
    assert lead_opening("Pacino's film", phrases, roles) == ["<actor>'s", "film"]  # read by the name's role
    assert lead_opening("Al Pacino is", phrases, roles) == ["<actor>", "is"]
    # a director's lead is drawn by every name's counts: the director's own made "X's film is" a formula
    assert lead_opening("Pacino's film", phrases, {"Pacino": "director"}) == [NAME_POSSESSIVE, "film"]


def test_after_a_leads_name_the_next_words_are_drawn_as_critics_go_on_after_a_name(tokenizer, vocab):
    a, is_, the, dot, possessive = (one_token(tokenizer, t) for t in (" a", " is", " the", ".", "'s"))
    table = CriticOpenings({"contexts": {NAME: {"is": 500, POSSESSIVE: 400, "the": 1},
                                         f"{NAME}|is": {"a": 300}}})
    scores = torch.full((len(tokenizer),), -math.inf)
    scores[[a, is_, the, dot, possessive]] = torch.tensor([4.0, 0.0, 0.0, 0.5, -1.0])  # the model: "Plot a"
    rule = CriticOpening(table, vocab, 1.0, lead=("Plot",))
    before, after = _probs(scores), _probs(rule_step(tokenizer, rule, "Plot", scores.unsqueeze(0)))
    assert after[is_] > after[possessive] > after[the] and after[a] < before[a] / 5
    assert float(after[dot]) == pytest.approx(float(before[dot]), abs=1e-5)  # punctuation keeps the model's share
    plain = CriticOpening(table, vocab, 1.0)  # no lead: "plot" is a rare first word, which the table lacks
    assert torch.equal(rule_step(tokenizer, plain, "Plot", scores.unsqueeze(0)), scores)
    assert torch.equal(rule_step(tokenizer, rule, "Plo", scores.unsqueeze(0)), scores)  # the name is being written
    assert torch.equal(rule_step(tokenizer, rule, "Plot is a gem", scores.unsqueeze(0)), scores)  # opening written
    after_comma = _probs(rule_step(tokenizer, rule, "Plot,", scores.unsqueeze(0)))
    assert float(after_comma[possessive]) == pytest.approx(float(before[possessive]), abs=1e-5)  # no "Plot,'s"


def test_after_an_actors_possessive_the_words_are_drawn_from_what_critics_write_after_an_actors(tokenizer, vocab):
    film, end = one_token(tokenizer, " film"), one_token(tokenizer, " end")
    table = CriticOpenings({"contexts": {NAME_POSSESSIVE: {"film": 500, "end": 1},
                                         "<actor>'s": {"end": 500, "film": 1}}})
    scores = torch.full((len(tokenizer),), -math.inf)
    scores[[film, end]] = torch.tensor([0.0, 0.0])
    as_actor = _probs(rule_step(tokenizer, CriticOpening(table, vocab, 1.0, lead=("Plot",), roles={"Plot": "cast"}),
                            "Plot's", scores.unsqueeze(0)))
    blind = _probs(rule_step(tokenizer, CriticOpening(table, vocab, 1.0, lead=("Plot",)), "Plot's", scores.unsqueeze(0)))
    assert as_actor[end] > 0.9 and blind[film] > 0.9  # "Pacino's performance", where every name's read "film"


def test_the_book_gives_a_first_sentence_lead_the_critics_opening_after_its_name(tokenizer):
    from assistant.model.prompts import ReviewRequest, fit_prompt
    from assistant.model.rules import NamedLead

    context = ["About Up: A 2009 film directed by Pete Docter, starring Ed Asner.",
               'Ada Lumen (Evening Ledger), fresh: "Docter is a gem, and Asner too."']
    fitted = fit_prompt(ReviewRequest("positive", "Up", None, context), tokenizer, 512, 16)
    rules = ReplyRules(tokenizer, critic_opening=1.0, lead_sentence=1).for_prompt(fitted)
    opening, lead = next(r for r in rules if isinstance(r, CriticOpening)), rules[-1]
    assert isinstance(lead, NamedLead) and set(opening.lead) == set(lead.phrases) and "Docter" in opening.lead
    assert opening.roles["Docter"] == "director" and opening.roles["Asner"] == "cast"  # from the facts line
    second = ReplyRules(tokenizer, critic_opening=1.0, lead_sentence=2).for_prompt(fitted)
    assert next(r for r in second if isinstance(r, CriticOpening)).lead == ()  # the opening is the model's own
