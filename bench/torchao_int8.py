"""Benchmark: torchao's CPU int8 configurations against the chat's own int8 layers, speed and fidelity.

    MRA_MODELS_DIR=var/models .venv/bin/python bench/torchao_int8.py [--model DIR] [--tokens 32] [--threads 1]

Needs `pip install torchao` (not a dependency of the project). On the base SmolLM2-135M (its safetensors cache,
`base-smollm2-135m` in the models folder, made on first use of that base), each variant writes `--tokens` tokens
greedily with transformers' `generate` at batch 1 (the same decode loop for all, so only the linear layers
differ): seconds per token, best of two runs after a warm-up. Fidelity along float32's own greedy text of a few
review prompts, one teacher-forced pass: how often the variant's most likely token is float32's, and the KL
divergence from float32. Variants: float32; ours (assistant/model/runtime.py `int8_model`); torchao
`Int8WeightOnlyConfig`; torchao `Int8DynamicActivationInt8WeightConfig`. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from assistant.model.runtime import int8_model  # noqa: E402
from assistant.settings import get_settings  # noqa: E402

PROMPTS = ["Write a positive review of Toy Story.", "Write a negative review of Gigli.",
           "Write a negative review of Titanic.", "Write a positive review of The Matrix."]


def torchao_variant(model, config_name: str):
    import torchao.quantization as tq

    quantized = copy.deepcopy(model)
    tq.quantize_(quantized, getattr(tq, config_name)())
    return quantized


def seconds_per_token(model, ids, tokens: int) -> float:
    def once() -> float:
        start = time.perf_counter()
        model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, pad_token_id=0)
        return (time.perf_counter() - start) / tokens
    once()  # warm-up: one-off kernel and cache set-up
    return min(once(), once())


def fidelity(model, reference_logits, batch) -> dict:
    logits = model(**batch).logits.float()
    agree = (logits.argmax(-1) == reference_logits.argmax(-1)).float().mean().item()
    kl = torch.nn.functional.kl_div(logits.log_softmax(-1), reference_logits.log_softmax(-1), log_target=True,
                                    reduction="none").sum(-1).mean().item()
    return {"top1_agreement": round(agree, 3), "kl_nats": round(kl, 4)}


@torch.inference_mode()
def main() -> int:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = argparse.ArgumentParser()
    p.add_argument("--model", type=Path, default=get_settings().models_dir / "base-smollm2-135m")
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    fp32 = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    chats = [tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                           tokenize=False) for p in PROMPTS]
    ids = tokenizer(chats[0], return_tensors="pt").input_ids
    # float32's own greedy text, for the teacher-forced comparison
    texts = []
    for chat in chats:
        prompt = tokenizer(chat, return_tensors="pt").input_ids
        out = fp32.generate(prompt, max_new_tokens=24, do_sample=False, pad_token_id=0)
        texts.append(tokenizer.decode(out[0], skip_special_tokens=False))
    tokenizer.padding_side = "right"
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    reference = fp32(**batch).logits.float()
    variants = {"float32": lambda: fp32, "ours_int8": lambda: int8_model(copy.deepcopy(fp32))[0],
                "torchao_int8_weight_only": lambda: torchao_variant(fp32, "Int8WeightOnlyConfig"),
                "torchao_int8_dynamic": lambda: torchao_variant(fp32, "Int8DynamicActivationInt8WeightConfig")}
    results = {"torch": torch.__version__, "threads": args.threads, "tokens": args.tokens}
    for name, make in variants.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the deprecation notices of the quantized-tensor API
                model = make()
                results[name] = {"s_per_token": round(seconds_per_token(model, ids, args.tokens), 4),
                                 **fidelity(model, reference, batch)}
        except Exception as exc:  # noqa: BLE001 - a variant that cannot run here is a result too
            results[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
        print(name, results[name], file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
