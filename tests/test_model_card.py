"""Model-card evaluation pieces: drafts per request, best-of-n reranking, generations made elsewhere."""
from __future__ import annotations

import pytest

from assistant.evaluation.exchange import (
    read_generations,
    read_requests,
    write_generations,
    write_requests,
)
from assistant.evaluation.sentiment_control import (
    EvalConfig,
    accuracy,
    first_drafts,
    generate_drafts,
    reranked,
)
from assistant.model.prompts import ReviewRequest


class StubJudge:
    def predict(self, texts):
        return ["positive" if "great" in t else "negative" for t in texts]


class StubGenerator:
    """Draft j of every request says 'great' when j is odd: so draft 0 is negative, draft 1 positive."""

    def __init__(self):
        self.calls = 0

    def generate_many(self, requests, **kwargs):
        self.calls += 1
        out, seen = [], {}
        for r in requests:
            j = seen.get(id(r), 0)
            seen[id(r)] = j + 1
            out.append(f"{r.movie} draft {j} " + ("great" if j % 2 else "dull"))
        return out


def _cells(n: int = 3):
    return {(s, m): [ReviewRequest(s, f"Movie {i}", None, ["ctx"] if m == "context" else []) for i in range(n)]
            for s in ("positive", "negative") for m in ("context", "no_context")}


def test_drafts_come_in_one_batched_call_and_keep_their_requests():
    generator, cells = StubGenerator(), _cells()
    drafts = generate_drafts(generator, cells, EvalConfig(), drafts=3)
    assert generator.calls == 1
    per_request = drafts[("negative", "context")]
    assert len(per_request) == 3 and all(len(d) == 3 for d in per_request)
    assert per_request[2][0].startswith("Movie 2 draft 0") and per_request[2][1].startswith("Movie 2 draft 1")
    singles = accuracy(StubJudge(), first_drafts(drafts))  # draft 0 is always "dull"
    assert singles == {"positive": {"context": 0.0, "no_context": 0.0}, "negative": {"context": 1.0, "no_context": 1.0}}


def test_reranking_picks_the_draft_the_scorer_finds_on_target_and_skips_empty_ones():
    drafts = {("positive", "context"): [["dull", "great", ""]], ("negative", "context"): [["", "great", "dull"]]}
    scorer = lambda texts: [0.9 if "great" in t else (0.99 if not t else 0.2) for t in texts]  # noqa: E731
    chosen = reranked(drafts, scorer)
    assert chosen == {("positive", "context"): ["great"], ("negative", "context"): ["dull"]}
    assert accuracy(StubJudge(), chosen) == {"positive": {"context": 1.0}, "negative": {"context": 1.0}}
    assert accuracy(StubJudge(), {("positive", "context"): [""]})["positive"]["context"] == 0.0  # empty is a miss


def test_requests_and_generations_travel_as_json(tmp_path):
    cells, config = _cells(), EvalConfig(n_per_cell=3, seed=11)
    write_requests(cells, tmp_path / "requests.json", config)
    again, config_again = read_requests(tmp_path / "requests.json")
    assert again == cells and config_again == config
    drafts = generate_drafts(StubGenerator(), again, config_again, drafts=2)
    write_generations(tmp_path / "gen.json", {"tuned": drafts, "base": drafts}, device="GPU", drafts=2)
    models, info = read_generations(tmp_path / "gen.json", cells)
    assert models["tuned"] == drafts and info["device"] == "GPU"
    with pytest.raises(ValueError, match="made for other requests"):
        read_generations(tmp_path / "gen.json", _cells(4))


def test_base_numbers_are_reused_only_from_the_same_base_and_requests():
    from assistant.evaluation.model_card import base_numbers

    cells, config = _cells(2), EvalConfig(n_per_cell=2, seed=7, max_new_tokens=64)
    card = {"base": "smollm2-135m", "data_config": {"seed": 1234}}
    earlier = {**card, "eval": {"n_per_cell": 2, "seed": 7, "max_new_tokens": 64},
               "base_sentiment_acc": {"positive": {"context": 0.8}}, "base_val_ppl_context": 50.0,
               "base_val_ppl_no_context": 70.0, "base_distinct_2": 0.6, "base_copy_rate_8gram": 0.001,
               "samples": [{"sentiment": "negative", "mode": "context", "movie": "Movie 1", "base": "old text"}]}
    numbers = base_numbers(earlier, card, config, cells)
    assert numbers["sentiment_acc"] == earlier["base_sentiment_acc"] and numbers["val_ppl_context"] == 50.0
    assert numbers["texts"][("negative", "context")] == ["", "old text"]
    with pytest.raises(ValueError, match="another base or other requests"):
        base_numbers({**earlier, "eval": {**earlier["eval"], "seed": 8}}, card, config, cells)
    with pytest.raises(ValueError, match="another base or other requests"):
        base_numbers({**earlier, "base": "gpt2"}, card, config, cells)
    guided = EvalConfig(n_per_cell=2, seed=7, max_new_tokens=64, guidance=2.0)  # the same requests, sampled otherwise
    assert base_numbers(earlier, card, guided, cells)["guidance"] == 1.0  # kept, so the card can say so
    assert base_numbers({**earlier, "eval": {**earlier["eval"], "guidance": 2.0}}, card, guided, cells)["guidance"] == 2.0


def test_drafts_use_the_configured_guidance_unless_told_otherwise():
    seen = []

    class Recorder(StubGenerator):
        def generate_many(self, requests, **kwargs):
            seen.append(kwargs["guidance"])
            return super().generate_many(requests, **kwargs)

    generate_drafts(Recorder(), _cells(1), EvalConfig(guidance=2.5))
    generate_drafts(Recorder(), _cells(1), EvalConfig(guidance=2.5), guidance=1.0)
    assert seen == [2.5, 1.0]


def test_probe_scorer_loads_embeddings_only_when_drafts_are_ranked(tmp_path, monkeypatch):
    import numpy as np

    from assistant.data import embeddings as embeddings_module
    from assistant.evaluation.model_card import probe_scorer
    from assistant.model.sentiment_probe import BASENAME, SentimentProbe

    assert probe_scorer(object(), tmp_path) is None  # no probe beside the model
    SentimentProbe(np.array([1.0, 0.0], dtype=np.float32), 0.0).save(tmp_path / BASENAME)
    loads = []

    class Embeddings:
        def embed_documents(self, texts):
            return [[4.0 if "great" in t else -4.0, 0.0] for t in texts]

    monkeypatch.setattr(embeddings_module, "make_embeddings", lambda settings: loads.append(1) or Embeddings())
    score = probe_scorer(object(), tmp_path)
    assert loads == []
    assert [round(p) for p in score(["great", "dull"])] == [1, 0] and score(["great"])[0] > 0.9
    assert loads == [1]
