"""Benchmark: how fast the chat answers review requests, through the chat facade, against the plain path.

    MRA_INDEX_DIR=var/index MRA_MODELS_DIR=var/models .venv/bin/python bench/latency.py [--n 20] [--baseline-n 6]

For the tuned and the base model, RAG on, sentiment guidance on (the defaults) and `--max-new-tokens` 60, `--n`
review requests go through `Assistant.stream` (what the page and the CLI call): first words and full reply, p50
and p95, as the reply reports them (parsing and retrieval included). The same requests again with guidance off
give tokens/s both ways. In the same run, on the same prompts, `--baseline-n` of them are written by
- the plain path this replaced: transformers' `generate` with the guidance processor, float32 weights;
- a plain `model.generate` of the same float32 model, no guidance: the library's own speed.
Peak memory (RSS) of an app process with both models loaded and one reply from each is measured in a child
process, for the fast set-up and the plain float32 one. The load average is printed beside the numbers: on a
shared machine every time here is an upper bound. Prints one JSON object, and a Markdown table to stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from assistant.chat.assistant import Assistant  # noqa: E402
from assistant.chat.loading import warm_up_chat  # noqa: E402
from assistant.chat.replies import Reply  # noqa: E402
from assistant.logs import setup_logging  # noqa: E402
from assistant.model.compute_thread import compute  # noqa: E402
from assistant.settings import Settings, get_settings  # noqa: E402

MOVIES = ["Toy Story", "Titanic", "The Matrix", "Jaws", "Alien", "Gigli", "Shrek", "Fargo", "Up", "Heat",
          "Casablanca", "Jurassic Park", "Speed", "Scream", "Clueless", "Gladiator", "Psycho", "Rocky"]


def requests(n: int) -> list[str]:
    """n review requests, alternating sentiments over a fixed list of well-reviewed movies."""
    return [f"Write a {('positive', 'negative')[i % 2]} review of {MOVIES[(i // 2) % len(MOVIES)]}" for i in range(n)]


def quantiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {}
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return {"p50": round(statistics.median(values), 3), "p95": round(p95, 3), "n": len(values)}


def chat_run(assistant: Assistant, model: str, messages: list[str], guidance: float,
             max_new_tokens: int) -> dict[str, Any]:
    """Every message through the facade, as a person would send it; timings as the reply reports them."""
    generator = assistant.generator(model)
    tokens0, seconds0 = generator.stats.new_tokens, generator.stats.seconds
    first, total, retrieval, prompts, tokens = [], [], [], [], []
    for i, message in enumerate(messages):
        reply = None
        n0 = generator.stats.new_tokens
        for event in assistant.stream("bench", message, rag=True, model=model, guidance=guidance,
                                      max_new_tokens=max_new_tokens, seed=1000 + i, remember=False):
            if isinstance(event, Reply):
                reply = event
        assert reply is not None and reply.model == model, f"{model} did not answer {message!r}"
        first.append(reply.timings["first_token_s"] or reply.timings["total_s"])
        total.append(reply.timings["total_s"])
        retrieval.append(reply.timings["retrieval_s"])
        prompts.append(reply.prompt)
        tokens.append(generator.stats.new_tokens - n0)
    new_tokens = generator.stats.new_tokens - tokens0
    return {"first_words_s": quantiles(first), "full_reply_s": quantiles(total), "retrieval_s": quantiles(retrieval),
            "prompt_tokens_mean": round(statistics.mean(len(generator.tokenizer(p)["input_ids"]) for p in prompts), 1),
            "tokens_per_s": round(new_tokens / max(1e-9, generator.stats.seconds - seconds0), 1),
            "new_tokens_mean": round(statistics.mean(tokens), 1), "first_request_s": round(total[0], 3),
            "prompts": prompts}


def baseline_run(kind: str, settings: Settings, prompts: list[str], guidance: float,
                 max_new_tokens: int) -> dict[str, Any]:
    """The same prompts through the float32 model: the plain path (main's) and a bare `model.generate`."""
    from assistant.model.bases import load_base, load_tuned
    from assistant.model.generation import ReviewGenerator

    if kind == "tuned":
        model, tokenizer, card = load_tuned(settings)
    else:
        card = (load_tuned(settings) or (None, None, {}))[2]
        model, tokenizer, _ = load_base(card.get("base") or settings.base_model, settings)
    plain = ReviewGenerator(model, tokenizer, max_sentences=0, fast=False)  # main had no sentence bound
    first, total = [], []
    for i, prompt in enumerate(prompts):
        started, seen = time.perf_counter(), None
        for _ in plain.stream(prompt, guidance=guidance, max_new_tokens=max_new_tokens, seed=1000 + i):
            seen = seen or time.perf_counter() - started
        total.append(time.perf_counter() - started)
        first.append(seen or total[-1])
    tokenizer.padding_side = "left"
    raw_tokens, raw_seconds = 0, 0.0
    for i, prompt in enumerate(prompts):
        inputs = tokenizer([prompt], return_tensors="pt", add_special_tokens=False)
        torch.manual_seed(1000 + i)
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**inputs, do_sample=True, temperature=0.8, top_p=0.92, top_k=0,
                                 max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
        raw_seconds += time.perf_counter() - started
        raw_tokens += out.shape[1] - inputs["input_ids"].shape[1]
    return {"plain_path_first_words_s": quantiles(first), "plain_path_full_reply_s": quantiles(total),
            "plain_path_tokens_per_s": round(plain.stats.tokens_per_s, 1),
            "model_generate_unguided_tokens_per_s": round(raw_tokens / raw_seconds, 1)}


def memory_probe(fast: bool) -> dict[str, Any]:
    """In this process: load the app's models as configured, answer once with each, report peak RSS."""
    update = {} if fast else {"fast_generation": False, "int8_generation": False}
    with tempfile.TemporaryDirectory() as tmp:
        settings = get_settings().model_copy(update={"chats_db": Path(tmp) / "chats.sqlite", **update})
        assistant = Assistant.load(settings)
        for model in ("tuned", "base"):
            assert assistant.generator(model) is not None, f"no {model} model"
            assistant.reply("probe", "Write a negative review of Toy Story", model=model, seed=1, remember=False)
        status = {line.split(":")[0]: int(line.split()[1]) for line in
                  Path("/proc/self/status").read_text().splitlines() if line.startswith(("VmRSS:", "VmHWM:"))}
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec, so a child started by the bench would
    # report the bench's own peak (both models loaded twice) instead of its own.
    return {"peak_rss_mb": round(status["VmHWM"] / 1024), "rss_mb": round(status["VmRSS"] / 1024)}


def child_memory(fast: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--memory-probe", "fast" if fast else "plain"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def table(report: dict[str, Any]) -> str:
    lines = ["| model | path | first words p50 / p95 (s) | full reply p50 / p95 (s) | tokens/s guided | unguided |",
             "|---|---|---|---|---|---|"]
    for kind in ("tuned", "base"):
        r = report["models"].get(kind)
        if not r:
            continue
        on, off = r["guidance_on"], r["guidance_off"]
        lines.append(f"| {kind} | fast (chat facade, RAG) | {on['first_words_s']['p50']} / {on['first_words_s']['p95']} "
                     f"| {on['full_reply_s']['p50']} / {on['full_reply_s']['p95']} | {on['tokens_per_s']} "
                     f"| {off['tokens_per_s']} |")
        b = r.get("baseline")
        if b:
            lines.append(f"| {kind} | plain float32 generate (same prompts) | "
                         f"{b['plain_path_first_words_s']['p50']} / {b['plain_path_first_words_s']['p95']} | "
                         f"{b['plain_path_full_reply_s']['p50']} / {b['plain_path_full_reply_s']['p95']} | "
                         f"{b['plain_path_tokens_per_s']} | {b['model_generate_unguided_tokens_per_s']} (bare) |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20, help="requests per model and guidance setting")
    p.add_argument("--baseline-n", type=int, default=6, help="of those, rewritten by the plain float32 paths")
    p.add_argument("--models", nargs="+", choices=("tuned", "base"), default=["tuned", "base"])
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: the chat's (settings.sampling)")
    p.add_argument("--guidance", type=float, default=None, help="default: the chat's (settings.sampling.guidance)")
    p.add_argument("--no-memory", action="store_true", help="skip the two peak-memory child processes")
    p.add_argument("--memory-probe", choices=("fast", "plain"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe == "fast")))
        return 0
    setup_logging()
    if args.guidance is None:
        args.guidance = get_settings().sampling.guidance
    if args.max_new_tokens is None:
        args.max_new_tokens = get_settings().sampling.max_new_tokens
    report: dict[str, Any] = {"load_average_start": os.getloadavg(), "torch_threads": torch.get_num_threads(),
                              "cpus": os.cpu_count(), "n": args.n, "max_new_tokens": args.max_new_tokens,
                              "guidance": args.guidance, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        settings = get_settings().model_copy(update={"chats_db": Path(tmp) / "chats.sqlite"})
        started = time.perf_counter()
        assistant = Assistant.load(settings, strict=True)
        for kind in args.models:
            assistant.generator(kind)  # loaded (and warmed up) before the clock runs
        report["chat_warm_up_s"] = round(warm_up_chat(assistant, args.models[0]), 2)  # as the app does at start
        report["load_s"] = round(time.perf_counter() - started, 1)
        report["models_loaded_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        messages = requests(args.n)
        prompts: dict[str, list[str]] = {}
        for kind in args.models:
            on = chat_run(assistant, kind, messages, args.guidance, args.max_new_tokens)
            off = chat_run(assistant, kind, messages, 1.0, args.max_new_tokens)
            prompts[kind] = on.pop("prompts")[:args.baseline_n]  # as retrieved and fitted for the chat
            off.pop("prompts")
            report["models"][kind] = {"precision": assistant.generator(kind).precision, "guidance_on": on,
                                      "guidance_off": off}
        report["fast_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        del assistant
        for kind in args.models if args.baseline_n else []:
            # on the chat's compute thread too: a second OpenMP team would slow both paths (compute_thread.py)
            base = compute.run(baseline_run, kind, settings, prompts[kind], args.guidance, args.max_new_tokens)
            fast = report["models"][kind]["guidance_on"]
            base["fast_over_model_generate_tokens_per_s"] = round(
                fast["tokens_per_s"] / base["model_generate_unguided_tokens_per_s"], 2)
            base["plain_over_fast_full_reply_p50"] = round(
                base["plain_path_full_reply_s"]["p50"] / fast["full_reply_s"]["p50"], 2)
            report["models"][kind]["baseline"] = base
    if not args.no_memory:
        report["memory_mb"] = {"fast": child_memory(True), "plain_float32": child_memory(False)}
    report["load_average_end"] = os.getloadavg()
    print(table(report), file=sys.stderr)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
