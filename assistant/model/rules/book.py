"""Which rules a reply is written under: `ReplyRules`, read from the sampling settings once per model, builds each
prompt's rules from its structure (the fitted prompt's request, as the prompt writes it) and a batch's `RuleSet`.

    book = ReplyRules.from_sampling(tokenizer, settings.sampling, vocab_size=model.config.vocab_size)
    book.for_prompt(fitted)     # (VerdictFirst, CriticOpening, CriticLength, RealWords, NamesRule, NamedLead)
    book.rule_set(batch, prompt_width=width)     # what the decode loop applies (protocol.py)

Every review prompt may get verdict first (verdict_first.py), a critic's opening (critic_opening.py), a critic's
length (critic_length.py) and real words (real_words.py). A prompt with context also gets the names rule (names.py:
every name true to the context) and the named lead (named_lead.py: one sentence opens with one of the film's names)
when its context names any of the film's people; a prompt without context gets neither. A reply the named lead
opens has one of the film's names for its first word, and the critic's opening draws the two words after it.
"""
from __future__ import annotations

import math
import random
from collections.abc import Container, Sequence
from typing import Any

import torch

from assistant.data.openings import critic_openings
from assistant.model.prompts import FittedPrompt, as_written, shown_texts
from assistant.model.rules.critic_length import PUSH, CriticLength, sentence_end_tokens
from assistant.model.rules.critic_opening import CriticOpening
from assistant.model.rules.named_lead import NamedLead, lead_names
from assistant.model.rules.names import NamesRule, request_words
from assistant.model.rules.protocol import Rule, RuleSet
from assistant.model.rules.real_words import RealWords, english_lexicon, request_lexicon
from assistant.model.rules.verdict_first import VerdictFirst
from assistant.model.rules.vocabulary import token_words


class ReplyRules:
    """The rule book of one model: its vocabulary read once, and which rules are on.

    `names`: the names rule, with its `transfer` and `name_boost`; `lead_sentence`: the named lead's sentence (0:
    off; 1.5: the first sentence for half the replies, the second for the others, drawn per reply and per draft);
    `verdict_first`: no concessive or quote-like opening; `real_words`: lower-case words are real ones;
    `critic_opening`: the first three words drawn toward the critics' (0: off); `critic_length`: nats a sentence end
    costs until the reply has a length drawn from the critics' (0: off); `films`: movie keys no lead name may be
    (the store's titles). `vocab_size` is the model's logits' width (its head may be padded past the tokenizer)."""

    def __init__(self, tokenizer: Any, *, vocab_size: int | None = None, device: torch.device | str = "cpu",
                 names: bool = True, transfer: bool = True, name_boost: float = 0.0, lead_sentence: float = 0,
                 verdict_first: bool = False, real_words: bool = False, critic_opening: float = 0.0,
                 critic_length: float = 0.0, films: Container[str] | None = None) -> None:
        if lead_sentence < 0:
            raise ValueError(f"the lead sentence counts from 1 (0: off), not {lead_sentence}")
        # a reply's lead sentence: floor(lead_sentence), or the next one with the fraction's odds (variety, not
        # every reply opening with a name)
        self.tokenizer, self.device = tokenizer, torch.device(device)
        self.names, self.transfer, self.name_boost = names, transfer, name_boost
        self.lead_sentence = lead_sentence
        self.films = films  # the store's movie keys: another film's title is never a lead name
        self.vocab = None
        if names or lead_sentence or verdict_first or real_words or critic_opening or critic_length:  # ~1 s, once
            self.vocab = token_words(tokenizer, vocab_size or len(tokenizer))
        self.verdict_first = VerdictFirst(self.vocab, device=self.device) if verdict_first else None
        self.english = english_lexicon() if real_words else None  # None without the word list: the rule is off
        self.critic_opening = critic_opening
        self.openings = critic_openings() if critic_opening or critic_length else None  # None without the table
        self.critic_length = critic_length
        self.ends = (sentence_end_tokens(self.vocab, set(getattr(tokenizer, "all_special_ids", None) or ()))
                     if critic_length else None)

    @classmethod
    def from_sampling(cls, tokenizer: Any, sampling: Any, *, vocab_size: int | None = None,
                      device: torch.device | str = "cpu", films: Container[str] | None = None) -> ReplyRules:
        """The rules the settings ask for (`settings.Sampling`: context_names, name_boost, name_lead, verdict_first,
        real_words); `films`, the store's movie keys, when there is a store."""
        return cls(tokenizer, vocab_size=vocab_size, device=device, names=sampling.context_names,
                   name_boost=sampling.name_boost, lead_sentence=sampling.name_lead,
                   verdict_first=sampling.verdict_first, real_words=sampling.real_words,
                   critic_opening=sampling.critic_opening,
                   critic_length=PUSH if sampling.critic_opening else 0.0,  # the critics' shape: start and length
                   films=films)

    def lead_for(self, rng: random.Random) -> int:
        """The named lead's sentence for one reply (0: none), drawn from `lead_sentence` as the class says."""
        whole = math.floor(self.lead_sentence)
        return whole + (1 if rng.random() < self.lead_sentence - whole else 0)

    def for_prompt(self, fitted: FittedPrompt, rng: random.Random | None = None, *,
                   sentence: int | None = None) -> tuple[Rule, ...]:
        """This prompt's rules, in the order they apply, built from what its prompt shows the model; its named
        lead's sentence is `sentence` when given, else drawn with `rng` (a fresh one by default)."""
        request = as_written(fitted.request)
        allowed = request_words(request)  # read once: both name rules start from it
        if allowed is None:
            sentence = 0
        elif sentence is None:
            sentence = self.lead_for(rng or random.Random())
        leads = lead_names(request, allowed, self.films) if sentence else None
        rules: list[Rule] = [self.verdict_first] if self.verdict_first is not None else []
        lead = NamedLead(leads, self.vocab, sentence=sentence, device=self.device) if leads is not None else None
        if self.critic_opening and self.openings is not None and request.sentiment in self.openings:
            # a reply the named lead opens: its name is the lead's, the words after it drawn as critics go on
            first = lead is not None and sentence == 1
            rules.append(CriticOpening(self.openings[request.sentiment], self.vocab, self.critic_opening,
                                       lead=lead.phrases if first else (), roles=leads.roles if first else None))
        table = (self.openings or {}).get(request.sentiment)
        if self.critic_length and table is not None and table.lengths:
            # each row its own length, drawn by this prompt's generator (seeded through `rule_set`)
            rules.append(CriticLength(table.lengths, self.ends, self.critic_length,
                                      random.Random((rng or random.Random()).getrandbits(64))))
        if self.english is not None:
            shown = request_lexicon(shown_texts(request))
            rules.append(RealWords(self.english, shown, self.vocab, device=self.device))
        if allowed is None:
            return tuple(rules)
        if self.names:
            rules.append(NamesRule(allowed, self.vocab, device=self.device, transfer=self.transfer,
                                   boost=self.name_boost))
        if lead is not None:
            rules.append(lead)
        return tuple(rules)

    def rule_set(self, batch: Sequence[FittedPrompt], *, prompt_width: int, seed: int | None = None
                 ) -> RuleSet | None:
        """The rules of a batch (row i: `batch[i]`'s), or None when no row has any. The named lead's sentence is
        drawn per row, so a prompt's drafts vary as its replies do (with a fractional `lead_sentence` some open
        with a name, some as a critic would); rows of one prompt with the same draw share its rules and what they
        built. `seed` makes the draws repeat (the sampling seed)."""
        rng = random.Random(seed)
        built: dict[tuple[int, int], tuple[Rule, ...]] = {}
        rows = []
        for fitted in batch:
            key = (id(fitted), self.lead_for(rng))
            if key not in built:
                lengths = random.Random(rng.getrandbits(64)) if self.critic_length else None
                built[key] = self.for_prompt(fitted, lengths, sentence=key[1])
            rows.append(built[key])
        rules = RuleSet(self.tokenizer, rows, prompt_width=prompt_width)
        return rules if rules else None
