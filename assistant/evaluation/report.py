"""Write an evaluation's results: eval.json (schema in `assistant.evaluate`), eval.md, replies and PNG charts."""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

JSON_NAME = "eval.json"
MD_NAME = "eval.md"
REPLIES_NAME = "eval_replies.jsonl"
CHARTS = {"arms": "eval_arms.png", "latency": "eval_latency.png", "retrieval": "eval_retrieval.png"}
RETRIEVAL_ON = {True: "on", False: "off"}


def write_reports(result: dict[str, Any], replies: dict[str, list[dict]], out: Path) -> list[Path]:
    """All report files into `out`; returns their paths. Charts first so eval.json can name them."""
    out.mkdir(parents=True, exist_ok=True)
    result["charts"] = write_charts(result, out)
    paths = [out / JSON_NAME, out / MD_NAME, out / REPLIES_NAME] + [out / p for p in result["charts"].values()]
    _atomic_write(out / JSON_NAME, json.dumps(_jsonable(result), indent=2, default=str))
    _atomic_write(out / MD_NAME, render_markdown(result))
    lines = [json.dumps(_jsonable(row), default=str) for rows in replies.values() for row in rows]
    _atomic_write(out / REPLIES_NAME, "\n".join(lines) + ("\n" if lines else ""))
    return paths


def _atomic_write(path: Path, text: str) -> None:
    # The app reads these files while an evaluation may be rewriting them.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _jsonable(value: Any) -> Any:
    """NaN and infinity are not JSON: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# ---- markdown ------------------------------------------------------------------------------------

def fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pair(a: Any, b: Any, digits: int = 2) -> str:
    return f"{fmt(a, digits)} / {fmt(b, digits)}"


def _arms(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(k, result[k]) for k in result.get("arm_order", []) if result.get(k)]


def results_table(result: dict[str, Any]) -> list[str]:
    """The README table: one row per arm that ran, in the order neither, RAG alone, fine-tuning alone, both."""
    head = ("| arm | model | retrieval | sentiment accuracy | movie relevance: cosine margin | "
            "uses movie's names/details (chance) | grounding: words / bigrams (chance) | distinct-1 / -2 | "
            "8-gram copy | first token p50 / p95 (s) | full reply p50 / p95 (s) |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for _, arm in _arms(result):
        rel, g, lat = arm["movie_relevance"], arm["grounding"], arm["latency"]
        lines.append(
            f"| {arm['label']} | {arm['model']} | {RETRIEVAL_ON[arm['rag']]} | {fmt(arm['sentiment_accuracy'])} | "
            f"{fmt(rel['cosine_margin'], 3)} | "
            f"{fmt(rel['uses_movie_detail'])} ({fmt(rel['uses_movie_detail_chance'])}) | "
            f"{_pair(g['unigram'], g['bigram'])} ({_pair(g['unigram_chance'], g['bigram_chance'])}) | "
            f"{_pair(arm['distinct_1'], arm['distinct_2'])} | {fmt(arm['copy_rate_8gram'], 3)} | "
            f"{_pair(lat['first_token_s']['p50'], lat['first_token_s']['p95'], 1)} | "
            f"{_pair(lat['total_s']['p50'], lat['total_s']['p95'], 1)} |")
    return lines


def grid(result: dict[str, Any]) -> list[str]:
    """The 2x2 itself, sentiment accuracy and movie-detail use in each cell."""
    def cell(key: str) -> str:
        arm = result.get(key)
        if not arm:
            return "not run"
        return (f"{arm['label']}: sentiment {fmt(arm['sentiment_accuracy'])}, "
                f"movie details {fmt(arm['movie_relevance']['uses_movie_detail'])}")

    return ["| | without retrieval | with retrieval |", "|---|---|---|",
            f"| base model | {cell('base_no_rag')} | {cell('base_rag')} |",
            f"| fine-tuned model | {cell('no_rag')} | {cell('rag')} |"]


def retrieval_table(retrieval: dict[str, Any] | None) -> list[str]:
    if not retrieval:
        return ["Not measured (no titled movie with enough reviews in the store)."]
    ks = retrieval["ks"]
    cols = [f"recall@{k}" for k in ks] + [f"precision@{k}" for k in ks] + ["mrr@10"]
    chance = retrieval.get("chance") or {}
    lines = ["| search | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols),
             "| plain top-k | " + " | ".join(fmt(retrieval.get(c)) for c in cols) + " |",
             "| MMR (as the chat) | " + " | ".join(fmt(retrieval["mmr"].get(c)) for c in cols) + " |",
             "| random (chance) | " + " | ".join(fmt(chance.get(c), 4) for c in cols) + " |"]
    lines += ["", f"{retrieval['queries']} query reviews of {retrieval['movies']} titled movies with at least "
              f"{retrieval['min_reviews']} reviews, each searching all reviews by its embedding (itself excluded, no "
              "movie filter). recall@k = share of queries with another review of the same movie in the top k; "
              "precision@k = share of the top k that are; MRR@10 = mean 1/rank of the first.", "",
              f"Filters, {retrieval['filter_queries']} queries: sentiment filter precision "
              f"{fmt(retrieval['sentiment_filter_precision'], 3)}, movie filter precision "
              f"{fmt(retrieval['movie_filter_precision'], 3)} (share of returned reviews carrying the asked label)."]
    return lines


def render_markdown(result: dict[str, Any]) -> str:
    opts, counts = result["options"], result.get("counts") or {}
    judge = result.get("judge") or {}
    run = f"Generated {result['generated_at']} by `{result['command']}` in {fmt(result['minutes'], 1)} min"
    if counts.get("generations"):
        guided = f", sentiment guidance {opts['guidance']:g}" if (opts.get("guidance") or 1.0) != 1.0 else ""
        run += (f": {counts['requests']} requests per arm (temperature {opts['temperature']}{guided}, at most "
                f"{opts['max_new_tokens']} new tokens, top_k {opts['top_k']}, seed {result['seed']}), "
                f"{counts['generations']} replies in all.")
    else:
        run += "."
    lines = ["# Fine-tuning or RAG? Evaluation", "", run, ""]
    if _arms(result):
        lines += ["## Results", "", *results_table(result), "",
                  f"Sentiment accuracy is judged by a TF-IDF + logistic-regression classifier "
                  f"{judge.get('source', '')}, {judge.get('train_reviews', 0):,} reviews; its own accuracy is "
                  f"**{fmt(judge.get('accuracy'))}**{_judge_test(judge)}. Chance levels in brackets. "
                  f"Regenerate with `python -m assistant.evaluate`.", "",
                  *_machine_line(result), "## The 2x2", "", *grid(result), "", *_group_table(result), ""]
    else:
        lines += ["No language-model arm was run.", ""]
    lines += ["## Retrieval on its own", "", *retrieval_table(result.get("retrieval")), ""]
    lines += _sources_lines(result)
    lines += ["## How each number is measured", "", *DEFINITIONS, ""]
    if result.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in result["notes"]], ""]
    lines += _sample_lines(result)
    return "\n".join(lines)


def _judge_test(judge: dict[str, Any]) -> str:
    n = judge.get("test_reviews") or 0
    return f" on {n:,} training-split reviews (other movies, unseen by the judge)" if n else ""


def _machine_line(result: dict[str, Any]) -> list[str]:
    m = result.get("machine") or {}
    if not m:
        return []
    load = m.get("load_avg_start")
    busy = f", load average {load[0]:.1f} at the start" if load else ""
    return [f"Latencies were measured on {m.get('platform')}, {m.get('cpus')} CPUs, {m.get('torch_threads')} torch "
            f"threads{', CUDA' if m.get('cuda') else ', no GPU'}{busy}; other work on the machine slows them.", ""]


def _group_table(result: dict[str, Any]) -> list[str]:
    lines = ["Sentiment accuracy by request group (movies the model trained on, movies held out of training, "
             "topic only), by the model card's judge as a cross-check, and how often the chat read the request "
             "as asked:", "",
             "| arm | seen movies | held-out movies | topic only | card judge | request understood |",
             "|---|---|---|---|---|---|"]
    for _, arm in _arms(result):
        g = arm["sentiment_accuracy_by_group"]
        lines.append(f"| {arm['label']} | {fmt(g.get('seen'))} | {fmt(g.get('held_out'))} | {fmt(g.get('topic'))} | "
                     f"{fmt(arm.get('sentiment_accuracy_card_judge'))} | {fmt(arm.get('request_understood'))} |")
    return lines


def _sources_lines(result: dict[str, Any]) -> list[str]:
    rows = [(arm["label"], arm["sources"]) for _, arm in _arms(result) if arm.get("sources")]
    if not rows:
        return []
    lines = ["Sources of the RAG replies to requests naming a movie:", "",
             "| arm | replies with sources | sources of the named movie | sources of the asked sentiment |",
             "|---|---|---|---|"]
    lines += [f"| {label} | {s['n']} | {fmt(s['movie_match'])} | {fmt(s['sentiment_match'])} |" for label, s in rows]
    return lines + [""]


def _sample_lines(result: dict[str, Any]) -> list[str]:
    lines = ["## Sample replies", ""]
    for _, arm in _arms(result):
        lines.append(f"**{arm['label']}**")
        lines.append("")
        for s in arm.get("samples", []):
            reply = " ".join((s["reply"] or "(empty)").split())
            lines.append(f"- _{s['request']}_ ({s['group']}): {reply}")
        lines.append("")
    return lines if len(lines) > 2 else []


DEFINITIONS = [
    "- **Sentiment accuracy**: share of replies the judge reads as the requested sentiment (an empty reply is a "
    "miss). The judge is trained on the held-out movies' reviews, so it cannot favour phrases the fine-tuned model "
    "learned from its training reviews.",
    "- **Movie relevance** (requests naming a movie): cosine margin = mean embedding cosine of the reply to that "
    "movie's reviews minus to a fixed sample of other movies' reviews (all-MiniLM-L6-v2); uses names/details = share "
    "of replies using a capitalized name or a rare word (in under 0.5% of a 3,000-review sample) from that movie's "
    "reviews and facts, title words excluded; chance = the same replies checked against another requested movie.",
    "- **Grounding**: share of the reply's content words (no stopwords) and content bigrams found in the retrieved "
    "context; arms without retrieval are checked against the context the paired RAG arm retrieved for the same "
    "request; chance = the same share against as many random reviews.",
    "- **Diversity and copying**: distinct-1/2 over all replies of the arm; 8-gram copy = share of the replies' "
    "8-grams found verbatim in the training split's reviews.",
    "- **Latency**: wall-clock time from sending the message to the first streamed text and to the whole reply, "
    "one request at a time, as a chat user waits.",
    "- **Request understood**: share of requests whose parsed sentiment and movie match what was asked.",
]


# ---- charts --------------------------------------------------------------------------------------

def write_charts(result: dict[str, Any], out: Path) -> dict[str, str]:
    """PNG charts beside the JSON; returns {name: file name} for those written."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers or in tests
    import matplotlib.pyplot as plt

    written: dict[str, str] = {}
    arms = _arms(result)
    if arms:
        _arms_chart(plt, arms, out / CHARTS["arms"])
        _latency_chart(plt, arms, out / CHARTS["latency"])
        written.update(arms=CHARTS["arms"], latency=CHARTS["latency"])
    else:
        for name in ("arms", "latency"):  # a stale chart from an earlier run would contradict this report
            (out / CHARTS[name]).unlink(missing_ok=True)
    if result.get("retrieval"):
        _retrieval_chart(plt, result["retrieval"], out / CHARTS["retrieval"])
        written["retrieval"] = CHARTS["retrieval"]
    return written


ARM_METRICS: tuple[tuple[str, Any, Any], ...] = (
    ("sentiment\naccuracy", lambda a: a["sentiment_accuracy"], lambda a: 0.5),
    ("uses movie's\nnames/details", lambda a: a["movie_relevance"]["uses_movie_detail"],
     lambda a: a["movie_relevance"]["uses_movie_detail_chance"]),
    ("grounding\n(words)", lambda a: a["grounding"]["unigram"], lambda a: a["grounding"]["unigram_chance"]),
    ("grounding\n(bigrams)", lambda a: a["grounding"]["bigram"], lambda a: a["grounding"]["bigram_chance"]),
    ("distinct-2", lambda a: a["distinct_2"], lambda a: None),
    ("8-gram copy", lambda a: a["copy_rate_8gram"], lambda a: None),
)


def _arms_chart(plt: Any, arms: Sequence[tuple[str, dict]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(10, 4.8), dpi=110)
    width = 0.8 / len(arms)
    for i, (_, arm) in enumerate(arms):
        xs = [m + (i - (len(arms) - 1) / 2) * width for m in range(len(ARM_METRICS))]
        values = [_num(get(arm)) for _, get, _ in ARM_METRICS]
        ax.bar(xs, values, width * 0.95, label=f"{arm['label']} ({arm['model']}, RAG {RETRIEVAL_ON[arm['rag']]})")
        for x, (_, _, chance) in zip(xs, ARM_METRICS):
            level = chance(arm)
            if level is not None:
                ax.hlines(level, x - width / 2, x + width / 2, colors="black", linestyles="dashed", linewidth=1)
    ax.set_xticks(range(len(ARM_METRICS)), [name for name, _, _ in ARM_METRICS])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share (0-1)")
    ax.set_title("Fine-tuning or RAG: each arm on the same requests (dashes: chance level)")
    ax.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _latency_chart(plt: Any, arms: Sequence[tuple[str, dict]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    labels = [arm["label"] for _, arm in arms]
    series = [("first token p50", "first_token_s", "p50"), ("first token p95", "first_token_s", "p95"),
              ("full reply p50", "total_s", "p50"), ("full reply p95", "total_s", "p95")]
    width = 0.8 / len(series)
    for i, (name, metric, q) in enumerate(series):
        xs = [a + (i - 1.5) * width for a in range(len(arms))]
        ax.bar(xs, [_num(arm["latency"][metric][q]) for _, arm in arms], width * 0.95, label=name)
    ax.set_xticks(range(len(arms)), labels)
    ax.set_ylabel("seconds")
    ax.set_title("Latency, one request at a time on this machine")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _retrieval_chart(plt: Any, retrieval: dict[str, Any], path: Path) -> None:
    ks = retrieval["ks"]
    cols = [f"recall@{k}" for k in ks] + [f"precision@{k}" for k in ks] + ["mrr@10"]
    fig, ax = plt.subplots(figsize=(7, 3.4), dpi=110)
    for i, (name, values) in enumerate((("plain top-k", retrieval), ("MMR", retrieval["mmr"]))):
        ax.bar([c + (i - 0.5) * 0.4 for c in range(len(cols))], [_num(values.get(c)) for c in cols], 0.38, label=name)
    chance = retrieval.get("chance") or {}
    for c, col in enumerate(cols):
        if col in chance:
            ax.hlines(_num(chance[col]), c - 0.4, c + 0.4, colors="black", linestyles="dashed", linewidth=1)
    ax.set_xticks(range(len(cols)), cols)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Same-movie retrieval from one review ({retrieval['queries']} queries; dashes: chance)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else 0.0
