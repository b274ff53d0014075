"""Training and generation speed of a base on this machine, with review-shaped synthetic examples.

    python bench/train_speed.py --base smollm2-135m --steps 4 --batch-tokens 1024 2048 --gen-batch 1 8 16

No store needed. Numbers go to the log and, as JSON, to stdout.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.logs import setup_logging  # noqa: E402
from assistant.model.bases import load_base  # noqa: E402
from assistant.model.generation import GenerationStats, ReviewGenerator  # noqa: E402
from assistant.model.prompts import ReviewRequest  # noqa: E402
from assistant.settings import get_settings  # noqa: E402
from assistant.training.batches import collate, encode_all, lm_loss, make_batches  # noqa: E402
from assistant.training.examples import Example  # noqa: E402
from assistant.training.loop import TrainConfig, add_lora  # noqa: E402

log = logging.getLogger("bench.train_speed")
WORDS = ("a film with wit and heart that never quite finds its footing yet the cast is "
         "superb and the ending lands with real force despite a sluggish middle act").split()


def synthetic_examples(n: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)

    def sentence(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))).capitalize() + "."

    examples = []
    for i in range(n):
        context = [f'Critic {j} (Paper), fresh: "{sentence(15, 45)}"' for j in range(3)] if i % 2 else []
        request = ReviewRequest("positive" if i % 3 else "negative", "Some Movie", None, context)
        examples.append(Example(request, sentence(12, 40), f"d{i}"))
    return examples


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--base", default="smollm2-135m")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch-tokens", type=int, nargs="+", default=[1536])
    p.add_argument("--targets", default="attention")
    p.add_argument("--gen-batch", type=int, nargs="*", default=[1, 16])
    p.add_argument("--gen-tokens", type=int, default=48)
    args = p.parse_args()
    setup_logging()
    model, tokenizer, info = load_base(args.base, get_settings(), device="cpu")
    encoded = encode_all(synthetic_examples(400), tokenizer, TrainConfig().max_len)
    results: dict = {"base": info.name, "threads": torch.get_num_threads(), "train": {}, "generate": {}}
    lora = add_lora(model, info.family, TrainConfig(lora_targets=args.targets))
    optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-4)
    lora.train()
    for budget in args.batch_tokens:
        batches = make_batches([len(e.input_ids) for e in encoded], budget, seed=0)
        tokens, seconds = 0, 0.0
        for i, ids in enumerate(batches[: args.steps + 1]):
            batch = collate([encoded[j] for j in ids], tokenizer.pad_token_id)
            started = time.perf_counter()
            lm_loss(lora, batch).backward()
            optimizer.step()
            optimizer.zero_grad()
            if i:  # the first step warms up allocators
                seconds += time.perf_counter() - started
                tokens += int(batch["attention_mask"].sum())
        results["train"][budget] = round(tokens / seconds, 1)
        log.info("batch_tokens=%d: %.1f training tokens/s", budget, tokens / seconds)
    model = lora.merge_and_unload().eval()
    generator = ReviewGenerator(model, tokenizer, device="cpu")
    requests = [e.request for e in synthetic_examples(64, seed=1)]
    for size in args.gen_batch:
        generator.stats = GenerationStats()
        generator.generate_many(requests[: max(size, 2)], batch_size=size, max_new_tokens=args.gen_tokens, seed=0)
        results["generate"][size] = round(generator.stats.tokens_per_s, 1)
        log.info("generation batch %d: %.1f new tokens/s", size, generator.stats.tokens_per_s)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
