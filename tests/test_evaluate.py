"""The evaluation end to end in --quick mode on the tiny fixtures, and how it picks and reports its arms."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from assistant.evaluation.arms import (
    ARM_ORDER,
    ArmSpec,
    EvalOptions,
    Turn,
    plan_arms,
    unusable,
)
from assistant.evaluation.charts import CHARTS
from assistant.evaluation.evaluate import main, run_evaluation
from assistant.evaluation.report import MD_NAME, render_markdown, results_table
from assistant.model.bases import tuned_dir
from assistant.model.card import CARD_JSON
from assistant.settings import Settings
from tests.tiny import build_tiny_artifacts, tiny_assistant

torch.set_num_threads(1)  # tiny models: threads only add contention on a busy machine

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, embeddings) -> Settings:
    return build_tiny_artifacts(tmp_path_factory.mktemp("tiny"), embeddings)


def _rate(value) -> bool:
    return value is None or 0.0 <= value <= 1.0


def test_quick_cli_on_tiny_fixtures_writes_the_reports(tiny, tmp_path, embeddings, monkeypatch):
    from assistant.chat.assistant import Assistant
    from assistant.evaluation import evaluate

    # The session's embedding model instead of a second load: the same CLI path, seconds sooner.
    monkeypatch.setattr(evaluate, "_open_assistant",
                        lambda s, embeddings_=None: Assistant.load(s, embeddings=embeddings_ or embeddings))
    out = tmp_path / "reports"
    assert main(["--quick", "--thin", "--out", str(out)], settings=tiny) == 0
    result = json.loads((out / "eval.json").read_text())
    # Critic-likeness: the two held-out requests, each reply beside a critic's quote of its film.
    assert result["critics"]["n"] == 2 and result["critics"]["group"] == "held_out"
    for key in ("rag", "no_rag"):
        likeness = result[key]["critic_likeness"]
        assert likeness["n"] == 2 and likeness["group"] == "held_out"
        classifier = likeness["classifier"]
        assert classifier["n_replies"] == classifier["n_quotes"] == 2
        assert classifier["ci95"][0] <= classifier["accuracy"] <= classifier["ci95"][1]
        assert likeness["mauve"]["mauve"] is None and "fewer than" in likeness["mauve"]["note"]  # 2 texts a side
        assert likeness["length_words"]["n"] == 2 and likeness["opening"]["per"] == 2
        assert _rate(likeness["garbled"]["share"])
    held_out = {r["reply"] for r in result["rag"]["samples"] if r["group"] == "held_out"}
    pairs = result["pairs"]
    assert pairs["arm"] == "rag" and {p["a" if p["reply"] == "A" else "b"] for p in pairs["pairs"]} == held_out
    # Thin films: the same two held-out requests over a copy with five reviews a film and no facts card.
    thin = result["thin"]
    assert thin["films"] == 2 and thin["reviews_kept"] == 10 and thin["facts_documents_dropped"] >= 2
    assert thin["requests"] == 2 and set(thin["arms"]) == {"rag", "no_rag"} and thin["critics"]["n"] == 2
    assert thin["arms"]["rag"]["critic_likeness"]["n"] == 2 and thin["arms"]["rag"]["specificity"]["n"] == 2
    # The tiny model's base is a scratch network: only the fine-tuned row exists, and the report says why.
    assert result["base_rag"] is None and result["base_no_rag"] is None
    assert "scratch" in result["skipped"]["base_rag"]
    assert set(ARM_ORDER) <= set(result)
    for key in ("rag", "no_rag"):
        arm = result[key]
        assert arm["n"] == result["counts"]["requests"] == 6
        assert arm["modes"] == {key: 6}  # what was asked for is what the chain did
        assert _rate(arm["sentiment_accuracy"]) and _rate(arm["distinct_2"]) and _rate(arm["copy_rate_8gram"])
        assert arm["latency"]["total_s"]["p50"] > 0 and arm["latency"]["total_s"]["n"] == 6
        assert arm["movie_relevance"]["n"] >= 2
        assert arm["grounding"]["context"] == ("own sources" if key == "rag" else "sources of arm rag")
        assert arm["specificity"]["n"] >= 2 and _rate(arm["specificity"]["rate"])
        faith = arm["faithfulness"]
        assert faith["reference"] == ("facts and retrieved context" if key == "rag" else "all of the movie's data")
        assert faith["replies"] == arm["specificity"]["n"] and _rate(faith["grounded_share"])
        assert arm["retrieved_copy"]["context"] == arm["grounding"]["context"] and _rate(arm["retrieved_copy"]["rate"])
        for direction in ("positive", "negative"):
            cell = arm["sentiment"][direction]
            assert cell["n"] == 3 and cell["ci95"][0] <= cell["accuracy"] <= cell["ci95"][1]
    assert result["counts"]["generations"] == 12
    assert result["rag"]["sources"]["movie_match"] is not None
    judge = result["judge"]
    assert judge["kind"] == "panel" and _rate(judge["accuracy"]) and _rate(judge["words_accuracy"])
    for key in ("rag", "no_rag"):  # the words-only half's verdicts, per direction, beside the panel's
        assert {d: c["n"] for d, c in result[key]["sentiment_words_judge"].items()} == {"positive": 3, "negative": 3}
    retrieval = result["retrieval"]
    assert retrieval["queries"] > 0 and _rate(retrieval["recall@4"]) and _rate(retrieval["mrr@10"])
    assert retrieval["sentiment_filter_precision"] == 1.0 and retrieval["movie_filter_precision"] == 1.0
    assert set(result["charts"]) == set(CHARTS)
    for name in result["charts"].values():
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    md = (out / MD_NAME).read_text()
    assert "panel of two classifiers" in md and "words-only judge: positive / negative" in md
    assert "| fine-tuning alone | tuned | off |" in md and "| both | tuned | on |" in md and "| neither |" not in md
    assert "## Does it read like a critic?" in md and "### Thin films" in md and "Key (which one is the model's" in md
    replies = (out / "eval_replies.jsonl").read_text().splitlines()
    rows = [json.loads(r) for r in replies]
    assert len(rows) == 12 + 4 and {r["arm"] for r in rows} == {"rag", "no_rag"}
    thin_rows = [r for r in rows if r.get("thin")]  # the thin films' replies: the held-out requests again
    assert len(thin_rows) == 4 and {r["group"] for r in thin_rows} == {"held_out"}


def test_all_four_arms_when_the_base_is_a_real_model(tiny, tmp_path, embeddings):
    # A copy of the tiny model whose card names a loadable base folder (itself): the base arms can run.
    models = tmp_path / "models"
    shutil.copytree(tuned_dir(tiny), models / "tuned")
    card_path = models / "tuned" / CARD_JSON
    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**card, "base": str(models / "tuned")}))
    settings = tiny.model_copy(update={"models_dir": models})
    assistant = tiny_assistant(settings, embeddings, chats_db=tmp_path / "chats.sqlite")
    result, replies = run_evaluation(settings, EvalOptions.quick_run(n_requests=3, max_new_tokens=8,
                                                                     retrieval_queries=10, filter_queries=4),
                                     assistant=assistant)
    assert result["skipped"] == {}
    assert [result[k]["label"] for k in ARM_ORDER] == ["neither", "RAG alone", "fine-tuning alone", "both"]
    assert result["base_no_rag"]["grounding"]["context"] == "sources of arm base_rag"
    assert result["counts"]["generations"] == 12 and sum(len(v) for v in replies.values()) == 12
    table = results_table(result)
    assert [row.split(" | ")[0] for row in table[2:]] == ["| neither", "| RAG alone", "| fine-tuning alone", "| both"]
    assert all(row.count("|") == table[0].count("|") for row in table)  # paste-ready: every row complete
    assert assistant.memory.list_sessions(None) == []  # evaluation turns are not saved as chats, for anyone


def test_plan_arms_skips_what_cannot_be_measured():
    settings = Settings()
    ok = {"models": {"tuned": {"available": True}, "base": {"available": True, "name": "smollm2-135m"}}}
    run, skipped, _ = plan_arms({"base": "smollm2-135m"}, ok, settings)
    assert run == list(ARM_ORDER) and skipped == {}
    run, skipped, info = plan_arms(None, ok, settings)  # nothing fine-tuned yet: the base alone
    assert run == ["base_no_rag", "base_rag"] and "finetune" in skipped["rag"] and not info["tuned"]["available"]
    run, skipped, _ = plan_arms({"base": "scratch"}, ok, settings)
    assert run == ["no_rag", "rag"] and "scratch" in skipped["base_no_rag"]
    broken = {"models": {"tuned": {"available": True}, "base": {"available": False, "error": "no weights"}}}
    run, skipped, _ = plan_arms({"base": "gpt2"}, broken, settings)
    assert run == ["no_rag", "rag"] and "no weights" in skipped["base_rag"]


def test_an_arm_answered_by_the_other_model_is_flagged():
    spec = ArmSpec("base_rag", "RAG alone", "base", True)
    assert unusable(spec, [Turn("a", model="base"), Turn("b", model="base")]) is None
    assert "tuned" in unusable(spec, [Turn("a", model="base"), Turn("b", model="tuned")])
    assert "boom" in unusable(spec, [Turn("a", error="RuntimeError: boom")])


def test_markdown_without_language_model_arms_still_reports_retrieval():
    result = {"generated_at": "now", "command": "python -m assistant.evaluate", "minutes": 0.1, "seed": 1,
              "options": {"temperature": 0.8, "max_new_tokens": 60, "top_k": 4}, "counts": {}, "arm_order": ARM_ORDER,
              "retrieval": {"ks": [4, 10], "queries": 3, "movies": 2, "min_reviews": 5, "filter_queries": 3,
                            "recall@4": 0.5, "recall@10": 0.75, "precision@4": 0.25, "precision@10": 0.2,
                            "mrr@10": 0.8,
                            "mmr": {"recall@4": 0.5}, "sentiment_filter_precision": 1.0,
                            "movie_filter_precision": 1.0},
              "notes": ["rag (both) not run: no fine-tuned model yet"]}
    md = render_markdown(result)
    assert "No language-model arm was run." in md and "| plain top-k | 0.50 | 0.75 | 0.25 | 0.20 | 0.80 |" in md
    assert "rag (both) not run" in md


def test_the_report_says_the_guidance_each_direction_was_written_with():
    result = {"generated_at": "now", "command": "python -m assistant.evaluate", "minutes": 0.1, "seed": 1,
              "options": {"temperature": 0.8, "max_new_tokens": 60, "top_k": 4, "guidance": 3.0,
                          "praise_guidance": 1.0},
              "counts": {"requests": 2, "generations": 0}, "arm_order": ARM_ORDER, "retrieval": None, "notes": []}
    assert "guidance" not in render_markdown(result).splitlines()[2]  # nothing written, nothing to say
    result["counts"]["generations"] = 2
    assert "sentiment guidance 3 (4 for positive reviews)," in render_markdown(result)
    result["options"]["guidance"] = 4.5
    assert "sentiment guidance 4.5 (5 for positive reviews)," in render_markdown(result)  # the bound
    result["options"].update(guidance=3.0, praise_guidance=0.0)
    assert "sentiment guidance 3, one draft, at most" in render_markdown(result)  # runs from before drafts
    result["options"]["drafts"] = 4
    assert "sentiment guidance 3, the most critic-like of 4 drafts that read clearly as asked, at most" in \
        render_markdown(result)
