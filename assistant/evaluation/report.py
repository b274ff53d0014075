"""Write an evaluation's results: eval.json (schema in `assistant.evaluate`), eval.md, replies and PNG charts."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from assistant.evaluation.charts import RETRIEVAL_ON, write_charts
from assistant.evaluation.critic_report import critic_lines, fmt, pairs_lines
from assistant.settings import Sampling

log = logging.getLogger(__name__)

JSON_NAME = "eval.json"
MD_NAME = "eval.md"
REPLIES_NAME = "eval_replies.jsonl"


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

def _pair(a: Any, b: Any, digits: int = 2) -> str:
    return f"{fmt(a, digits)} / {fmt(b, digits)}"


def _arms(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(k, result[k]) for k in result.get("arm_order", []) if result.get(k)]


def _direction(arm: dict[str, Any], direction: str) -> str:
    cell = (arm.get("sentiment") or {}).get(direction) or {}
    ci = cell.get("ci95")
    interval = f" ({fmt(ci[0])}-{fmt(ci[1])})" if ci else ""
    return f"{fmt(cell.get('accuracy'))}{interval}, n={cell.get('n', 0)}"


def headline_table(result: dict[str, Any]) -> list[str]:
    """The README's leading table: is the review about *this* movie, are its names true, is it written rather
    than quoted, and does it keep the asked sentiment (per direction, with 95% intervals)."""
    head = ("| arm | model | retrieval | uses a name or detail of the movie (chance) | its names found in the "
            "context / data | invented names per reply | repeats 8 words of a retrieved review | positive asked: "
            "judged positive (95% CI) | negative asked: judged negative (95% CI) | full reply p50 (s) |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for _, arm in _arms(result):
        spec, faith = arm.get("specificity") or {}, arm.get("faithfulness") or {}
        copy = arm.get("retrieved_copy") or {}
        lines.append(
            f"| {arm['label']} | {arm['model']} | {RETRIEVAL_ON[arm['rag']]} | {fmt(spec.get('rate'))} "
            f"({fmt(spec.get('chance'))}) | {fmt(faith.get('grounded_share'))} | "
            f"{fmt(faith.get('invented_per_reply'))} "
            f"| {fmt(copy.get('rate'))} | {_direction(arm, 'positive')} | {_direction(arm, 'negative')} | "
            f"{fmt(arm['latency']['total_s']['p50'], 1)} |")
    return lines


def side_by_side(result: dict[str, Any], n: int = 3) -> list[str]:
    """Two or three requests (held-out movies first) with every arm's reply in one row."""
    arms = _arms(result)
    if not arms:
        return []
    samples = [{s["id"]: s for s in arm.get("samples") or []} for _, arm in arms]
    ids = [s["id"] for s in arms[0][1].get("samples") or [] if all(s["id"] in other for other in samples)]
    ids.sort(key=lambda i: samples[0][i]["group"] != "held_out")
    if not ids:
        return []
    lines = ["| request | " + " | ".join(f"{arm['label']} ({arm['model']}, RAG {RETRIEVAL_ON[arm['rag']]})"
                                        for _, arm in arms) + " |", "|---|" + "---|" * len(arms)]
    for i in ids[:n]:
        cells = [_cell(s[i]["reply"]) for s in samples]
        lines.append(f"| {_cell(samples[0][i]['request'])} | " + " | ".join(cells) + " |")
    return lines


def _cell(text: str | None) -> str:
    return " ".join((text or "(empty)").split()).replace("|", "\\|")


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
        guided = ""
        if (opts.get("guidance") or 1.0) != 1.0:
            guided = f", sentiment guidance {opts['guidance']:g}"
            praised = Sampling(guidance=opts["guidance"],
                               praise_guidance=opts.get("praise_guidance") or 0.0).scale_for("positive")
            if praised != opts["guidance"]:  # the chat writes praise at its own scale
                guided += f" ({praised:g} for positive reviews)"
        drafts = int(opts.get("drafts") or 1)  # runs before drafts were an option wrote one, streamed
        guided += (f", the most critic-like of {drafts} drafts that read clearly as asked" if drafts > 1
                   else ", one draft")
        run += (f": {counts['requests']} requests per arm (temperature {opts['temperature']}{guided}, at most "
                f"{opts['max_new_tokens']} new tokens, top_k {opts['top_k']}, seed {result['seed']}), "
                f"{counts['generations']} replies in all.")
    else:
        run += "."
    lines = ["# Fine-tuning or RAG? Evaluation", "", run, ""]
    if _arms(result):
        spec = next((arm.get("specificity") or {} for _, arm in _arms(result)), {})
        on = "movies held out of training" if spec.get("group") == "held_out" else "every request naming a movie"
        lines += ["## Is the review about this movie, and true?", "", *headline_table(result), "",
                  f"Names, details and faithfulness on {on} ({spec.get('n', 0)} requests per arm); sentiment on "
                  "every request of the arm. See \"How each number is measured\" below.", "",
                  *side_by_side(result), "", *critic_lines(result),
                  "## More measures", "", *results_table(result), "",
                  *_judge_lines(judge),
                  *_machine_line(result), "## The 2x2", "", *grid(result), "", *_group_table(result), ""]
    else:
        lines += ["No language-model arm was run.", ""]
    lines += ["## Retrieval on its own", "", *retrieval_table(result.get("retrieval")), ""]
    lines += _sources_lines(result)
    lines += ["## How each number is measured", "", *DEFINITIONS, ""]
    if result.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in result["notes"]], ""]
    lines += pairs_lines(result)
    lines += _sample_lines(result)
    return "\n".join(lines)


def _judge_test(judge: dict[str, Any]) -> str:
    n = judge.get("test_reviews") or 0
    return f" on {n:,} training-split reviews (other movies, unseen by the judge)" if n else ""


def _judge_lines(judge: dict[str, Any]) -> list[str]:
    """Which judge read the sentiment, trained on what, and how often it is right."""
    trained = f"{judge.get('source', '')}, {judge.get('train_reviews', 0):,} reviews"
    if judge.get("kind") != "panel":  # reports written before the panel
        return [f"Sentiment accuracy is judged by a TF-IDF + logistic-regression classifier {trained}; its own "
                f"accuracy is **{fmt(judge.get('accuracy'))}**{_judge_test(judge)}. Chance levels in brackets. "
                "Regenerate with `python -m assistant.evaluate`.", ""]
    return [f"Sentiment is judged by a panel of two classifiers {trained}: TF-IDF + logistic regression on the words "
            f"and a logistic-regression probe on the MiniLM embedding, their probabilities averaged. Its accuracy is "
            f"**{fmt(judge.get('accuracy'))}**{_judge_test(judge)}; the words alone "
            f"{fmt(judge.get('words_accuracy'))}, the embedding alone {fmt(judge.get('meaning_accuracy'))} "
            "(Rotten Tomatoes' fresh/rotten is a noisy label for a one-line quote). The words-only judge's verdicts "
            "are in the table below. Chance levels in brackets. Regenerate with `python -m assistant.evaluate`.", ""]


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
             "topic only), per direction by the panel's words-only half, by the model card's judge as a "
             "cross-check, and how often the chat read the request as asked:", "",
             "| arm | seen movies | held-out movies | topic only | words-only judge: positive / negative | card judge "
             "| request understood |", "|---|---|---|---|---|---|---|"]
    for _, arm in _arms(result):
        g = arm["sentiment_accuracy_by_group"]
        words = arm.get("sentiment_words_judge") or {}
        lines.append(f"| {arm['label']} | {fmt(g.get('seen'))} | {fmt(g.get('held_out'))} | {fmt(g.get('topic'))} | "
                     f"{_pair((words.get('positive') or {}).get('accuracy'), (words.get('negative') or {}).get('accuracy'))}"
                     f" | {fmt(arm.get('sentiment_accuracy_card_judge'))} | {fmt(arm.get('request_understood'))} |")
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
    "- **Uses a name or detail of the movie** (specificity): share of replies using a capitalised name or a rare "
    "word (in under 0.5% of a 3,000-review sample) of that movie's facts card or shared by two of its reviews, title "
    "words excluded; chance = the same replies checked against another requested movie.",
    "- **Names found in the context / data** (faithfulness): share of the replies' capitalised names (mid-sentence; "
    "consecutive capitalised words are one name; 'I', months, 'Oscar' and the like are not names) whose every word "
    "is in the movie's facts and the retrieved context (RAG arms) or anywhere in the movie's data, its reviews, "
    "critics and facts (arms without retrieval); **invented names per reply** counts the others.",
    "- **Repeats 8 words of a retrieved review**: share of replies with 8 words in a row found in one of the documents "
    "retrieved for them (the facts card included; for arms without retrieval, those the paired RAG arm retrieved).",
    "- **Judged positive / negative**: sentiment accuracy per asked direction, with a 95% Wilson interval.",
    "- **Sentiment accuracy**: share of replies the judge reads as the requested sentiment (an empty reply is a "
    "miss). The judge (words and embedding, averaged) is trained on the held-out movies' reviews, so it cannot favour "
    "phrases the fine-tuned model learned from its training reviews.",
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
