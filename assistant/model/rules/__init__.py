"""The decoding rules a review is written under, behind one protocol (protocol.py; docs/decoding-rules.md).

    book = ReplyRules.from_sampling(tokenizer, settings.sampling, vocab_size=model.config.vocab_size)
    rules = book.rule_set(fitted_prompts, prompt_width=ids.shape[1])   # one batch's rules, or None
    # every step, in the fast decode loop (decoding.py) and around transformers' generate (plain_generation.py):
    ruled_out = rules.before_guidance(ids, scores)    # masked in the request's and the opposite prompt's logits
    scores = rules(ids, guide_scores(...))            # after guidance: a transformers LogitsProcessor call

The protocol:
- A rule (`Rule`) belongs to one request. It is built from the fitted prompt's structure (its request, as the prompt
  writes it), never from the prompt's text read back, with all it needs over the vocabulary worked out then.
- It has two phases. Before sentiment guidance it may rule tokens out of the request's and the opposite prompt's
  logits alike: guidance keeps only tokens the request finds plausible, and a rule that acted only after that cut
  could find nothing of its own left (the named lead's names, say). After guidance it may reshape its row's guided
  scores (ban, boost, move probability). A rule that leaves nothing possible leaves the model's choice instead.
- `StepState` is one step as the rules see it: each row's reply so far, decoded once and shared by every rule.
- `RuleSet` holds a batch's rules (row i's, in order), is told the prompt width when it is made, and is applied
  the same way by both decode paths, so they write the same tokens.

The rules: verdict_first.py (no concessive or quote-like opening), critic_opening.py (the first words drawn as critics open),
real_words.py (no made-up words), names.py (names come from the context),
named_lead.py (one sentence opens with one of the film's names); book.py says which a prompt gets.
"""
from assistant.model.rules.book import ReplyRules
from assistant.model.rules.named_lead import LeadNames, NamedLead, lead_names
from assistant.model.rules.names import Allowed, NamesRule, allowed_words, request_words
from assistant.model.rules.protocol import Rule, RuleSet, StepState, mask_out
from assistant.model.rules.verdict_first import VerdictFirst

__all__ = ["Allowed", "LeadNames", "NamedLead", "NamesRule", "ReplyRules", "Rule", "RuleSet", "StepState",
           "VerdictFirst", "allowed_words", "lead_names", "mask_out", "request_words"]
