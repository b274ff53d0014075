"""(sentiment, title, context, sampling settings) -> review text, streamed or batched.

The same call serves the base model and the fine-tuned one: both read `prompts.build_prompt`.
Sampling is nucleus sampling with mild repetition control; a seed makes it repeatable. With `guidance` above 1
each token is also steered away from what the opposite-sentiment request would write (assistant/guidance.py).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import (
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)

from assistant.model.guidance import guidance_processor
from assistant.model.prompts import (
    END_MARKER,
    FittedPrompt,
    ReviewRequest,
    clean_completion,
    count_tokens,
    end_marker,
    fit_prompt,
    opposite_prompt,
    parse_prompt,
)
from assistant.settings import Sampling

log = logging.getLogger(__name__)

DEFAULT_CONTEXT_WINDOW = 1024  # GPT-2's; longer windows only cost time on CPU
DEFAULTS = Sampling()  # the one place sampling defaults come from (assistant/settings.py)


@dataclass
class Drafts:
    """Several sampled reviews for one request and which one was kept.

    on_target[i] is how likely draft i reads as the asked-for sentiment (P(negative) for a negative request);
    None for an empty draft, which is never scored and ranks last."""

    chosen: int
    texts: list[str]
    on_target: list[float | None]

    @property
    def text(self) -> str:
        return self.texts[self.chosen]


@dataclass
class GenerationStats:
    prompts: int = 0
    new_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds else 0.0


class _Cancelled(StoppingCriteria):
    """Lets a stream consumer that stops reading end the generation thread early."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def stop_token_ids(tokenizer: Any) -> list[int]:
    """eos plus every end marker that is a single token in this vocabulary."""
    vocab = tokenizer.get_vocab()
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    ids |= {vocab[m] for m in (END_MARKER, end_marker(tokenizer)) if m in vocab}
    return sorted(ids)


def context_window(model: Any) -> int:
    config = model.config
    window = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    return min(window or DEFAULT_CONTEXT_WINDOW, DEFAULT_CONTEXT_WINDOW)


Prompt = FittedPrompt | ReviewRequest | str  # fitted once by the caller, a request to fit, or a built prompt's text


class ReviewGenerator:
    """Writes reviews with a causal LM; thread-safe for one stream at a time per instance."""

    def __init__(self, model: Any, tokenizer: Any, *, device: str | None = None,
                 repetition_penalty: float = DEFAULTS.repetition_penalty,
                 no_repeat_ngram_size: int = DEFAULTS.no_repeat_ngram_size, guidance: float = 1.0) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = device or str(next(model.parameters()).device)
        self.model.to(self.device)
        self.repetition_penalty = repetition_penalty
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self.guidance = guidance  # sentiment guidance scale: 1 = off
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.stop_ids = stop_token_ids(tokenizer)
        self.stop_strings = [m for m in (END_MARKER, end_marker(tokenizer)) if m not in tokenizer.get_vocab()]
        self.stats = GenerationStats()

    def fit(self, request: ReviewRequest, max_new_tokens: int) -> FittedPrompt:
        """The request fitted once to this model's window: the prompt it will be given, and its review budget."""
        return fit_prompt(request, self.tokenizer, context_window(self.model), max_new_tokens)

    def _fitted(self, prompt: Prompt, max_new_tokens: int) -> FittedPrompt:
        """A prompt as given: fitted already, a request to fit, or the text of a prompt built elsewhere."""
        if isinstance(prompt, FittedPrompt):
            return prompt
        if isinstance(prompt, ReviewRequest):
            return self.fit(prompt, max_new_tokens)
        window, tokens = context_window(self.model), count_tokens(prompt, self.tokenizer)
        return FittedPrompt(request=parse_prompt(prompt), text=prompt, negative_text=opposite_prompt(prompt),
                            tokens=tokens, max_new_tokens=max(1, min(max_new_tokens, window - tokens)), window=window)

    def _guided(self, kwargs: dict[str, Any], fitted: Sequence[FittedPrompt],
                guidance: float | None) -> dict[str, Any]:
        """Add sentiment guidance against these prompts' opposites, in batch order, when it is on."""
        scale = self.guidance if guidance is None else guidance
        if scale == 1.0:
            return kwargs
        processor = guidance_processor(self.model, self.tokenizer, [f.negative_text for f in fitted], scale=scale,
                                       device=self.device)
        return {**kwargs, "logits_processor": LogitsProcessorList([processor])}

    def _generate_kwargs(self, temperature: float, top_p: float, max_new_tokens: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(
            max_new_tokens=max_new_tokens, eos_token_id=self.stop_ids, pad_token_id=self.tokenizer.pad_token_id,
            repetition_penalty=self.repetition_penalty, no_repeat_ngram_size=self.no_repeat_ngram_size,
        )
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if self.stop_strings:
            kwargs.update(stop_strings=self.stop_strings, tokenizer=self.tokenizer)
        return kwargs

    def _encode(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        self.tokenizer.padding_side = "left"  # decoder-only batches grow on the right
        batch = self.tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False)
        return {k: v.to(self.device) for k, v in batch.items()}

    def stream(self, prompt: Prompt, *, temperature: float = DEFAULTS.temperature, top_p: float = DEFAULTS.top_p,
               max_new_tokens: int = DEFAULTS.max_new_tokens, seed: int | None = None, guidance: float | None = None) -> Iterator[str]:
        """Yield the review as it is written; stops at the end marker, eos or max_new_tokens."""
        fitted = self._fitted(prompt, max_new_tokens)
        max_new_tokens = fitted.max_new_tokens
        inputs = self._encode([fitted.text])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        cancel = threading.Event()
        failure: list[BaseException] = []
        kwargs = self._generate_kwargs(temperature, top_p, max_new_tokens)
        kwargs["stopping_criteria"] = StoppingCriteriaList([_Cancelled(cancel)])
        kwargs = self._guided(kwargs, [fitted], guidance)

        def run() -> None:
            try:
                if seed is not None:
                    torch.manual_seed(seed)
                with torch.inference_mode():
                    self.model.generate(**inputs, streamer=streamer, **kwargs)
            except BaseException as exc:  # handed to the consumer, which would otherwise wait forever
                failure.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, name="review-generate", daemon=True)
        thread.start()
        markers = (END_MARKER, end_marker(self.tokenizer))
        started, text = time.perf_counter(), ""
        try:
            for chunk in streamer:
                new = chunk if text else chunk.lstrip()
                combined = text + new
                cuts = [combined.find(m) for m in markers if m in combined]
                if cuts:  # an end marker that is not a special token (skipped in decoding) ends here
                    if min(cuts) > len(text):
                        yield combined[len(text):min(cuts)].rstrip()
                    text = combined[:min(cuts)]
                    break
                text = combined
                if new:
                    yield new
        finally:
            cancel.set()
            thread.join()
            self.stats.prompts += 1
            self.stats.new_tokens += len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            self.stats.seconds += time.perf_counter() - started
        if failure:
            raise failure[0]

    def generate(self, prompt: Prompt, *, temperature: float = DEFAULTS.temperature, top_p: float = DEFAULTS.top_p,
                 max_new_tokens: int = DEFAULTS.max_new_tokens, seed: int | None = None, guidance: float | None = None) -> str:
        """The whole review at once (same text as joining `stream` with the same seed)."""
        return self.generate_many([prompt], temperature=temperature, top_p=top_p,
                                  max_new_tokens=max_new_tokens, seed=seed, batch_size=1, guidance=guidance)[0]

    @torch.inference_mode()
    def generate_many(self, prompts: Sequence[Prompt], *, temperature: float = DEFAULTS.temperature, top_p: float = DEFAULTS.top_p,
                      max_new_tokens: int = DEFAULTS.max_new_tokens, seed: int | None = None, batch_size: int = 16,
                      progress: bool = False, guidance: float | None = None) -> list[str]:
        """Reviews for many requests, batched by prompt length (on CPU far faster per token than one by one)."""
        if seed is not None:
            torch.manual_seed(seed)
        fitted = [self._fitted(p, max_new_tokens) for p in prompts]
        max_new_tokens = min((f.max_new_tokens for f in fitted), default=max_new_tokens)
        order = sorted(range(len(fitted)), key=lambda i: fitted[i].tokens)
        results: list[str] = [""] * len(fitted)
        kwargs = self._generate_kwargs(temperature, top_p, max_new_tokens)
        batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="generating", unit="batch")
        for batch in batches:
            guided = self._guided(kwargs, [fitted[i] for i in batch], guidance)
            inputs = self._encode([fitted[i].text for i in batch])
            started = time.perf_counter()
            output = self.model.generate(**inputs, **guided)
            self.stats.seconds += time.perf_counter() - started
            new = output[:, inputs["input_ids"].shape[1]:]
            for row, i in zip(new, batch):
                ids = row.tolist()
                end = next((j for j, t in enumerate(ids) if t in self.stop_ids), len(ids))
                self.stats.new_tokens += min(end + 1, len(ids))
                text = self.tokenizer.decode(ids[:end], skip_special_tokens=True)
                results[i] = clean_completion(text, self.tokenizer)
            self.stats.prompts += len(batch)
        return results

    def best_of(self, prompt: Prompt, positive_probability: Callable[[list[str]], Sequence[float]], *,
                n: int = 4, temperature: float = DEFAULTS.temperature, top_p: float = DEFAULTS.top_p, max_new_tokens: int = DEFAULTS.max_new_tokens,
                seed: int | None = None, guidance: float | None = None) -> Drafts:
        """Sample n reviews in one batch and keep the one a sentiment scorer (e.g. the judge) rates most on-target.

        `positive_probability` maps texts to P(positive); only non-empty drafts are scored, and an empty draft is
        chosen only when every draft is empty. Ties go to the earlier draft, so a seed fixes the choice too."""
        if n < 1:
            raise ValueError(f"best_of needs at least one draft, not {n}")
        fitted = self._fitted(prompt, max_new_tokens)
        texts = self.generate_many([fitted] * n, temperature=temperature, top_p=top_p,
                                   max_new_tokens=max_new_tokens, seed=seed, batch_size=n, guidance=guidance)
        written = [i for i, t in enumerate(texts) if t.strip()]
        scores = [float(s) for s in positive_probability([texts[i] for i in written])] if written else []
        if len(scores) != len(written):
            raise ValueError(f"the scorer returned {len(scores)} scores for {len(written)} drafts")
        on_target: list[float | None] = [None] * n
        for i, p in zip(written, scores):
            on_target[i] = 1.0 - p if fitted.request.sentiment == "negative" else p
        chosen = max(written, key=lambda i: on_target[i], default=0)  # max keeps the first of equals
        return Drafts(chosen=chosen, texts=texts, on_target=on_target)
