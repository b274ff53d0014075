"""Training examples -> token tensors: the loss falls on the review, batches are bucketed by length."""
from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from assistant.model.prompts import build_prompt, build_training_text, fit_context
from assistant.training.examples import Example

log = logging.getLogger(__name__)


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]


# ---- data -> tensors -------------------------------------------------------------------------

def encode_example(example: Example, tokenizer: Any, max_len: int, *, train_on_prompt: bool = False) -> Encoded | None:
    """Token ids with the loss on the completion; context trimmed so the review always fits."""
    _, completion = build_training_text(example.request, example.review, tokenizer)
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    if len(completion_ids) > max_len // 2:
        return None
    request = fit_context(example.request, tokenizer, max_len - len(completion_ids))
    prompt_ids = tokenizer(build_prompt(request, tokenizer), add_special_tokens=False)["input_ids"]
    if len(prompt_ids) + len(completion_ids) > max_len:
        return None
    prompt_labels = list(prompt_ids) if train_on_prompt else [-100] * len(prompt_ids)
    return Encoded(list(prompt_ids) + list(completion_ids), prompt_labels + list(completion_ids))


def encode_all(examples: Sequence[Example], tokenizer: Any, max_len: int, *,
               train_on_prompt: bool = False) -> list[Encoded]:
    encoded = [encode_example(e, tokenizer, max_len, train_on_prompt=train_on_prompt) for e in examples]
    kept = [e for e in encoded if e is not None]
    if len(kept) < len(encoded):
        log.info("dropped %d examples longer than %d tokens", len(encoded) - len(kept), max_len)
    return kept


def make_batches(lengths: Sequence[int], batch_tokens: int, seed: int) -> list[list[int]]:
    """Length-bucketed batches of at most `batch_tokens` padded tokens, in shuffled order."""
    rng = random.Random(seed)
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        grown = max(longest, lengths[i])
        if current and grown * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, grown = [], lengths[i]
        current.append(i)
        longest = grown
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def collate(items: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, e in enumerate(items):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def lm_loss(model: Any, batch: dict[str, torch.Tensor], *, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy on labelled tokens, with logits computed only from the first labelled column.

    SmolLM2's 49k-token head is a fifth of its compute; prompts (context) are most of each sequence.
    """
    labels = batch["labels"]
    columns = (labels != -100).any(dim=0)
    start = max(int(columns.float().argmax()) - 1, 0) if bool(columns.any()) else labels.shape[1] - 1
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   logits_to_keep=labels.shape[1] - start).logits[:, :-1]
    target = labels[:, start + 1:]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1),
                                             ignore_index=-100, reduction=reduction)


