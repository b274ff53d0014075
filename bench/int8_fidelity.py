"""Benchmark: how far the chat's int8 model is from the float32 one it was made from, token by token.

    MRA_INDEX_DIR=var/index MRA_MODELS_DIR=var/models .venv/bin/python bench/int8_fidelity.py [--n 40] [--tokens 40]

For `--n` review prompts as the chat builds them (RAG context from the store, half positive, half negative), the
float32 model writes `--tokens` tokens greedily; along that text both models' next-token distributions are
compared: how often their most likely token is the same, the KL divergence from float32 to int8, and the
probability int8 gives float32's choice. Then each model writes greedily on its own: how many leading tokens
agree. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from assistant.chat.retrieval import retrieve  # noqa: E402
from assistant.data.embeddings import make_embeddings  # noqa: E402
from assistant.data.records import movie_key  # noqa: E402
from assistant.data.store import ReviewStore  # noqa: E402
from assistant.model.bases import load_tuned  # noqa: E402
from assistant.model.generation import ReviewGenerator  # noqa: E402
from assistant.model.lean_llama import fuse_projections  # noqa: E402
from assistant.model.prompts import ReviewRequest  # noqa: E402
from assistant.model.runtime import int8_model  # noqa: E402
from assistant.settings import get_settings  # noqa: E402

MOVIES = ["Toy Story", "Titanic", "The Matrix", "Jaws", "Alien", "Gigli", "Shrek", "Fargo", "Up", "Heat",
          "Casablanca", "Jurassic Park", "Speed", "Scream", "Clueless", "Gladiator", "Psycho", "Rocky", "Big", "Ghost"]


def prompts(settings, generator: ReviewGenerator, n: int) -> list[str]:
    store = ReviewStore.open(settings, make_embeddings(settings))
    out = []
    for i in range(n):
        sentiment, movie = ("positive", "negative")[i % 2], MOVIES[(i // 2) % len(MOVIES)]
        found = retrieve(store, sentiment=sentiment, movie=movie, movie_key=movie_key(movie), topic=None, tone=None, k=4)
        out.append(generator.fit(ReviewRequest(sentiment, movie, None, found.context_items()), 60).text)
    return out


@torch.inference_mode()
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--tokens", type=int, default=40)
    args = p.parse_args()
    settings = get_settings()
    model, tokenizer, _ = load_tuned(settings)
    exact = ReviewGenerator(model, tokenizer, max_sentences=0)
    quantized_model = copy.deepcopy(model)
    fuse_projections(quantized_model)
    quantized_model, done = int8_model(quantized_model)
    assert done, "int8 unavailable here"
    quantized = ReviewGenerator(quantized_model, tokenizer, max_sentences=0)
    same_top, kl, p_choice, agree, texts_same = [], [], [], [], 0
    for text in prompts(settings, exact, args.n):
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        written = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=args.tokens, pad_token_id=tokenizer.pad_token_id)
        a = torch.log_softmax(model(written).logits[0, ids.shape[1] - 1:-1].float(), -1)
        b = torch.log_softmax(quantized_model(written).logits[0, ids.shape[1] - 1:-1].float(), -1)
        same_top += (a.argmax(-1) == b.argmax(-1)).tolist()
        kl += (a.exp() * (a - b)).sum(-1).tolist()
        p_choice += b.gather(-1, written[0, ids.shape[1]:, None]).exp().squeeze(-1).tolist()
        x = exact.generate(text, temperature=0, max_new_tokens=args.tokens, guidance=1.0)
        y = quantized.generate(text, temperature=0, max_new_tokens=args.tokens, guidance=1.0)
        words_x, words_y = x.split(), y.split()
        agree.append(next((i for i, (u, v) in enumerate(zip(words_x, words_y)) if u != v),
                          min(len(words_x), len(words_y))))
        texts_same += x == y
    print(json.dumps({
        "prompts": args.n, "tokens": args.tokens,
        "same_most_likely_token": round(statistics.mean(same_top), 3),
        "kl_float32_to_int8_mean": round(statistics.mean(kl), 4),
        "int8_probability_of_float32_choice_median": round(statistics.median(p_choice), 3),
        "greedy_texts_identical": texts_same, "greedy_leading_words_agreeing_median": statistics.median(agree),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
