"""Soak test of the page's chat path: concurrent browsers, each sending one message after another, answered by
the page's background worker (ui/reply_worker.py) through the chat database, as the page does.

    python bench/soak.py                      # the built store and models (settings / MRA_* variables)
    python bench/soak.py --tiny /tmp/soak     # the test suite's tiny store and model, built there once

Each client is a browser of its own (owner token, chat), and tags every message with its name and number, so
a reply kept in the wrong chat, or a message lost, is seen. Reports errors, lost or mixed-up replies, p50/p95
latency (message kept -> its turn stored) and resident memory after the first 20 requests and at the end.
Results: bench/soak.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from langchain_core.messages import HumanMessage  # noqa: E402
from assistant.chat.pending import THIS_PROCESS  # noqa: E402

log = logging.getLogger("soak")
MOVIES = ("Toy Story", "The Matrix", "Gigli")
WARM_REQUESTS = 20  # memory is compared with what it was after these


def _question(client: int, number: int) -> str:
    sentiment = "positive" if number % 2 else "negative"
    return f"Write a {sentiment} review of {MOVIES[number % len(MOVIES)]} (client {client} message {number})"


def soak(assistant: Any, *, clients: int = 4, requests: int = 200, max_new_tokens: int = 40,
         timeout_s: float = 600.0) -> dict[str, Any]:
    """Send `requests` messages from `clients` concurrent browsers through the page's worker; the numbers."""
    from ui.reply_worker import ReplyWorker

    worker, memory = ReplyWorker(), assistant.memory
    options = {"rag": True, "max_new_tokens": max_new_tokens, "temperature": 0.8}
    latencies: list[float] = []
    errors: list[str] = []
    done, lock = [0], threading.Lock()
    rss: dict[str, float] = {}
    sent: dict[int, list[str]] = {c: [] for c in range(clients)}
    process = psutil.Process()

    def client(number: int) -> None:
        owner, session = f"soak-browser-{number:02d}-token", f"soak-{number:02d}-{int(time.time())}"
        for i in range(number, requests, clients):
            text = _question(number, i)
            started = time.perf_counter()
            try:
                memory.add_pending(session, owner, text, options)
                sent[number].append(text)
                worker.submit(assistant, session)
                while memory.pending(session, owner):
                    if time.perf_counter() - started > timeout_s:
                        raise TimeoutError(f"no reply within {timeout_s:g} s")
                    time.sleep(0.02)
            except Exception as exc:  # counted, not fatal: the soak reports every failure
                errors.append(f"client {number} message {i}: {type(exc).__name__}: {exc}")
            with lock:
                latencies.append(time.perf_counter() - started)
                done[0] += 1
                if done[0] == WARM_REQUESTS:
                    rss["after_20_mb"] = process.memory_info().rss / 2**20
        sent[number].append(session)  # the last entry: which chat was this client's

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,), name=f"client-{c}") for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    rss["end_mb"] = process.memory_info().rss / 2**20
    lost, mixed = 0, 0
    for number, texts in sent.items():
        session, questions = texts[-1], texts[:-1]
        stored = memory.recent(session, f"soak-browser-{number:02d}-token", 10**6)
        asked = [str(m.content) for m in stored if isinstance(m, HumanMessage)]
        replies = [m for m in stored if not isinstance(m, HumanMessage)]
        lost += len(questions) - len(asked) + (len(asked) - len(replies))
        mixed += sum(1 for text in asked if f"(client {number} " not in text)
        lost += len([p for p in memory.pending(session, f"soak-browser-{number:02d}-token") if p.writer == THIS_PROCESS])
    ordered = sorted(latencies)
    return {"clients": clients, "requests": len(latencies), "errors": len(errors), "error_samples": errors[:5],
            "lost": lost, "mixed_up": mixed, "p50_s": round(statistics.median(ordered), 3),
            "p95_s": round(ordered[max(0, int(0.95 * len(ordered)) - 1)], 3), "wall_s": round(wall, 1),
            "rss_after_20_mb": round(rss.get("after_20_mb", 0.0), 1), "rss_end_mb": round(rss["end_mb"], 1),
            "rss_growth": round(rss["end_mb"] / rss["after_20_mb"], 3) if rss.get("after_20_mb") else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--tiny", type=Path, default=None, help="build and use the tests' tiny artifacts here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from assistant.chat.assistant import Assistant
    from assistant.settings import Settings

    if args.tiny is not None:
        from tests.tiny import build_tiny_artifacts

        settings = build_tiny_artifacts(args.tiny)
    else:
        settings = Settings()
    settings = settings.model_copy(update={"chats_db": Path(settings.chats_db).with_name("soak-chats.sqlite")})
    assistant = Assistant.load(settings)
    result = soak(assistant, clients=args.clients, requests=args.requests, max_new_tokens=args.max_new_tokens)
    print(json.dumps(result, indent=2))
    ok = not result["errors"] and not result["lost"] and not result["mixed_up"] and (result["rss_growth"] or 0) <= 1.2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
