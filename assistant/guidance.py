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
from dataclasses import replace
from typing import Any

import torch
from transformers.generation.logits_process import UnbatchedClassifierFreeGuidanceLogitsProcessor

from assistant.prompts import SENTIMENTS, ReviewRequest, build_prompt

MAX_GUIDANCE = 5.0  # beyond this the contrast drowns the language model: word salad


def clamp_guidance(value: float | str) -> float:
    """A guidance scale in [1, MAX_GUIDANCE]; 1 is plain sampling."""
    return max(1.0, min(float(value), MAX_GUIDANCE))


def opposite(request: ReviewRequest) -> ReviewRequest:
    """The same request (movie, topic, context) asking for the other sentiment."""
    return replace(request, sentiment=SENTIMENTS[1 - SENTIMENTS.index(request.sentiment)])


class SentimentGuidance(UnbatchedClassifierFreeGuidanceLogitsProcessor):
    """transformers' guidance processor, made right for left-padded batches and sampling temperature, and kept
    to plausible tokens.

    The stock one lets the model number the negative prompt's positions from 0 across its padding, which
    shifts every padded row for absolute-position models (GPT-2). Passed to `generate` as a custom processor it
    runs after the temperature and nucleus warpers, so the negative branch is tempered the same way; tokens the
    nucleus cut stay impossible (scale * -inf), which keeps guided text fluent.
    """

    def __init__(self, model: Any, negative_ids: torch.Tensor, negative_mask: torch.Tensor, *, scale: float,
                 temperature: float = 1.0, plausibility: float = 0.1) -> None:
        super().__init__(scale, model, unconditional_ids=negative_ids, unconditional_attention_mask=negative_mask)
        self.temperature = temperature if temperature and temperature > 0 else 1.0
        self.log_plausibility = math.log(plausibility) if plausibility > 0 else -math.inf

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
        out = self.model(ids, attention_mask=mask, position_ids=positions, use_cache=True, cache=ctx["cache"])
        ctx["cache"] = out.get("cache", None)
        return out.logits.float() / self.temperature

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        guided = super().__call__(input_ids, scores.float())
        cond = torch.log_softmax(scores.float(), dim=-1)
        plausible = cond >= cond.max(dim=-1, keepdim=True).values + self.log_plausibility
        return guided.masked_fill(~plausible, -math.inf).to(scores.dtype)


def guidance_processor(model: Any, tokenizer: Any, requests: Sequence[ReviewRequest], *, scale: float,
                       temperature: float, device: str, plausibility: float = 0.1) -> SentimentGuidance:
    """The processor that guides a batch of (already fitted) requests against their opposites, left-padded."""
    tokenizer.padding_side = "left"
    negatives = [build_prompt(opposite(r), tokenizer) for r in requests]
    batch = tokenizer(negatives, return_tensors="pt", padding=True, add_special_tokens=False)
    return SentimentGuidance(model, batch["input_ids"].to(device), batch["attention_mask"].to(device),
                             scale=scale, temperature=temperature, plausibility=plausibility)
