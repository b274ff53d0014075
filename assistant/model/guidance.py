"""Sentiment guidance: steer each sampled token away from what the opposite request would write.

Classifier-free guidance for language models (Sanchez et al., 2023, "Stay on topic with Classifier-Free
Guidance"), with the *opposite sentiment's* prompt as the negative prompt. The two prompts are identical but
for the word "positive"/"negative", so the contrast between their next-token distributions isolates exactly
the sentiment that was asked for, token by token: a small model that half-ignores that one word is pushed to
honour it. Unlike best-of-n drafts this streams, at the price of a second forward pass per token.

Guidance alone amplifies noise: for a token the model finds unlikely, the two branches' log-probabilities differ
by chance, and a scale of 2-3 turns that into word salad (seen on SmolLM2-135M). So, as in contrastive decoding
(Li et al., 2023), only tokens the asked-for prompt finds plausible (probability at least `plausibility` times its
most likely token's) may be chosen; guidance decides among those.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from transformers import RepetitionPenaltyLogitsProcessor
from transformers.generation.logits_process import (
    UnbatchedClassifierFreeGuidanceLogitsProcessor,
)

from assistant.argtypes import bounded
from assistant.settings import MAX_GUIDANCE

# Below 1 the opposite prompt would steer *towards* the other sentiment, so the commands refuse it.
guidance_arg = bounded("guidance", float, 1.0, MAX_GUIDANCE, "a number")


class SentimentGuidance(UnbatchedClassifierFreeGuidanceLogitsProcessor):
    """transformers' guidance processor, made right for left-padded batches and kept to plausible tokens.

    The stock one lets the model number the negative prompt's positions from 0 across its padding, which
    shifts every padded row for absolute-position models (GPT-2). `generate` runs custom processors after the
    repetition controls and before temperature and nucleus sampling, so those apply to the guided distribution;
    tokens the repetition controls banned (-inf) stay banned.
    """

    def __init__(self, model: Any, negative_ids: torch.Tensor, negative_mask: torch.Tensor, *, scale: float,
                 plausibility: float = 0.1, repetition_penalty: float = 1.0) -> None:
        super().__init__(scale, model, unconditional_ids=negative_ids, unconditional_attention_mask=negative_mask)
        self.log_plausibility = math.log(plausibility) if plausibility > 0 else -math.inf
        self.repetition_penalty = repetition_penalty  # generate applied it to the request's scores already

    def get_unconditional_logits(self, input_ids: torch.LongTensor) -> torch.Tensor:
        ctx = self.unconditional_context
        if ctx["first_pass"]:
            ids, mask = ctx["input_ids"], ctx["attention_mask"]
            ctx["first_pass"] = False
        else:
            ids = input_ids[:, -1:]
            mask = torch.cat([ctx["attention_mask"], torch.ones_like(ids)], dim=1)
        ctx["input_ids"], ctx["attention_mask"] = ids, mask
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1]:]
        out = self.model(ids, attention_mask=mask, position_ids=positions, use_cache=True, cache=ctx["cache"],
                         logits_to_keep=1)  # the prompt's other positions' logits would cost GBs at batch 16
        ctx["cache"] = out.get("cache", None)
        return out.logits[:, -1:].float()

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return self.guide(input_ids, scores)

    def guide(self, input_ids: torch.LongTensor, scores: torch.FloatTensor,
              ruled_out: torch.Tensor | None = None) -> torch.FloatTensor:
        """The guided scores; `ruled_out` ([B, V] bool: what the decoding rules rule out before guidance,
        assistant/model/rules) is masked in the opposite prompt's logits as it is in `scores` already."""
        negative = self.get_unconditional_logits(input_ids)[:, -1]
        if ruled_out is not None:
            negative = negative.masked_fill(ruled_out, -math.inf)
        return guide_scores(scores.float(), negative, self.guidance_scale, self.log_plausibility, input_ids=input_ids,
                            repetition_penalty=self.repetition_penalty).to(scores.dtype)


def guide_scores(scores: torch.Tensor, negative_logits: torch.Tensor, scale: float, log_plausibility: float, *,
                 input_ids: torch.LongTensor | None = None, repetition_penalty: float = 1.0) -> torch.Tensor:
    """Guided log-probabilities: negative + scale * (asked - negative), for tokens the asked-for prompt finds
    plausible (log-probability within `log_plausibility` of its best token's); -inf for the rest.

    `scores` are the request's, repetition penalty applied; `negative_logits` the opposite prompt's raw logits,
    which get the same penalty here (from the request's `input_ids`: the tokens written and the prompt's). Left
    out of the opposite side, the penalty stayed in the difference guidance multiplies, so every token the prompt
    holds (commas, full stops, "the", "film", the retrieved reviews' words) was penalised `scale` times over:
    replies lost the small words critics write with, ended on "..." rather than the penalised full stop, and a
    plain classifier told them from critics' quotes by that alone (docs/critic-likeness.md). Both decode paths
    call this (assistant/model/decoding.py, plain_generation.py)."""
    if repetition_penalty != 1.0 and input_ids is not None:
        negative_logits = RepetitionPenaltyLogitsProcessor(repetition_penalty)(input_ids, negative_logits.float())
    cond = torch.log_softmax(scores, dim=-1)
    negative = torch.log_softmax(negative_logits, dim=-1)
    guided = negative + scale * (cond - negative)
    plausible = cond >= cond.max(dim=-1, keepdim=True).values + log_plausibility
    return guided.masked_fill(~plausible, -math.inf)


def guidance_processor(model: Any, tokenizer: Any, negatives: Sequence[str], *, scale: float,
                       device: str, plausibility: float = 0.1, repetition_penalty: float = 1.0) -> SentimentGuidance:
    """The processor that guides a batch against its negative prompts (the opposite-sentiment prompts), left-padded."""
    tokenizer.padding_side = "left"
    batch = tokenizer(negatives, return_tensors="pt", padding=True, add_special_tokens=False)
    return SentimentGuidance(model, batch["input_ids"].to(device), batch["attention_mask"].to(device),
                             scale=scale, plausibility=plausibility, repetition_penalty=repetition_penalty)
