"""The plain generation path: transformers' own `generate`, run in a thread and read token by token.

It is the reference the fast path (assistant/model/decoding.py) is tested against, and what runs with
`ReviewGenerator(..., fast=False)`. Same interface as `decoding.Decoding`: `step()` gives each row's next token.
`generate` runs custom logits processors after its repetition controls and before temperature and nucleus
sampling; `GuidedRules` is the one custom processor that does what the fast loop does there: the decoding rules'
phase before guidance, guidance, their phase after it (assistant/model/rules).
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

import torch
from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from assistant.model.decoding import SamplingPlan
from assistant.model.guidance import SentimentGuidance, guidance_processor
from assistant.model.rules import RuleSet, mask_out
from assistant.model.stopping import ReplyEnded

_END = object()


class _TokenQueue(BaseStreamer):
    """Hands each step's tokens (one per row) from the generating thread to the reader; skips the prompt."""

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue()
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.queue.put(value.reshape(-1).tolist())

    def end(self) -> None:
        self.queue.put(_END)


class _Cancelled(StoppingCriteria):
    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class GuidedRules:
    """LogitsProcessor: the rules' phase before guidance (on both prompts' logits), sentiment guidance (when on),
    the rules' phase after it."""

    def __init__(self, guidance: SentimentGuidance | None, rules: RuleSet | None) -> None:
        self.guidance, self.rules = guidance, rules

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        ruled_out = self.rules.before_guidance(input_ids, scores) if self.rules is not None else None
        scores = mask_out(scores, ruled_out)
        if self.guidance is not None:
            scores = self.guidance.guide(input_ids, scores, ruled_out)
        return self.rules(input_ids, scores) if self.rules is not None else scores


class PlainDecoding:
    """`generate` over a batch of prompt texts, started on the first `step()`; `close()` stops it early."""

    def __init__(self, model: Any, tokenizer: Any, prompts: Sequence[str], *, stop_ids: Sequence[int],
                 max_new_tokens: int, plan: SamplingPlan, negatives: Sequence[str] | None, device: str,
                 markers: Sequence[str], max_sentences: int, rules: RuleSet | None = None,
                 min_words: int = 0) -> None:
        tokenizer.padding_side = "left"  # decoder-only batches grow on the right
        batch = tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
        self.inputs = {k: v.to(device) for k, v in batch.items()}
        self.cancel = threading.Event()
        self.tokens = _TokenQueue()
        self.failure: list[BaseException] = []
        self.thread: threading.Thread | None = None
        self.done = False
        guidance = None
        if plan.guidance != 1.0 and negatives is not None:
            guidance = guidance_processor(model, tokenizer, list(negatives), scale=plan.guidance, device=device,
                                          plausibility=plan.plausibility, repetition_penalty=plan.repetition_penalty)
        processors: list[Any] = [GuidedRules(guidance, rules)] if guidance is not None or rules is not None else []
        processors.extend(plan.processors)
        kwargs: dict[str, Any] = dict(
            max_new_tokens=max_new_tokens, eos_token_id=list(stop_ids), pad_token_id=tokenizer.pad_token_id,
            repetition_penalty=plan.repetition_penalty, no_repeat_ngram_size=plan.no_repeat_ngram_size,
            logits_processor=LogitsProcessorList(processors), streamer=self.tokens,
            stopping_criteria=StoppingCriteriaList([
                _Cancelled(self.cancel),
                ReplyEnded(tokenizer, markers, max_sentences, self.inputs["input_ids"].shape[1], min_words)]),
        )
        if plan.temperature > 0:
            kwargs.update(do_sample=True, temperature=plan.temperature, top_p=plan.top_p, top_k=0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        self.model, self.kwargs, self.seed = model, kwargs, plan.seed

    def _run(self) -> None:
        try:
            if self.seed is not None:
                torch.manual_seed(self.seed)
            with torch.inference_mode():
                self.model.generate(**self.inputs, **self.kwargs)
        except BaseException as exc:  # handed to the reader, which would otherwise wait forever
            self.failure.append(exc)
            self.tokens.end()

    def step(self) -> list[int] | None:
        """Each row's next token (pad for rows already done), or None once generation has ended."""
        if self.done:
            return None
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="review-generate", daemon=True)
            self.thread.start()
        item = self.tokens.queue.get(timeout=600)
        if item is _END:
            self.done = True
            if self.failure:
                raise self.failure[0]
            return None
        return item

    def finish(self, row: int) -> None:
        """Nothing to do: the stopping criteria end a row on the same text the reader sees."""

    def close(self) -> None:
        self.cancel.set()
        if self.thread is not None:
            self.thread.join()
