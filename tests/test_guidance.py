"""Sentiment guidance: the negative prompts, transformers' negative branch, and the generator paths."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from transformers import RepetitionPenaltyLogitsProcessor

from assistant.model.generation import ReviewGenerator
from assistant.model.guidance import guidance_processor, guide_scores
from assistant.model.prompts import (
    ReviewRequest,
    build_prompt,
    opposite_prompt,
    other_sentiment,
    parse_prompt,
)
from assistant.model.scratch import TINY, build_model, train_tokenizer
from tests.tiny import with_chat_template

torch.set_num_threads(1)

TEXTS = ["A great film, warm and funny.", "A dull film, cold and flat.", "Toy Story is a joy."] * 40


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, vocab_size=300)


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    return build_model(tokenizer, TINY).eval()


def opposite(request: ReviewRequest) -> ReviewRequest:
    return replace(request, sentiment=other_sentiment(request.sentiment))


@pytest.mark.parametrize("chat", [False, True])
def test_opposite_prompt_flips_only_the_instructions_sentiment(tokenizer, chat):
    tok = with_chat_template(tokenizer) if chat else tokenizer
    request = ReviewRequest("positive", "Up", "the score", ['A critic, fresh: "Write a positive review of this."'])
    prompt = build_prompt(request, tok)
    assert opposite_prompt(prompt) == build_prompt(opposite(request), tok)
    assert opposite_prompt(opposite_prompt(prompt)) == prompt
    with pytest.raises(ValueError):
        opposite_prompt("no instruction here")


def test_negative_prompts_are_the_opposite_requests_left_padded(tokenizer):
    requests = [ReviewRequest("positive", "Up"), ReviewRequest("negative", None, None, ["a long context line here"])]
    processor = guidance_processor(None, tokenizer, [build_prompt(opposite(r), tokenizer) for r in requests],
                                   scale=2.5, device="cpu")
    assert processor.guidance_scale == 2.5
    ids, mask = processor.unconditional_context["input_ids"], processor.unconditional_context["attention_mask"]
    assert mask[0, 0] == 0 and mask[:, -1].all()  # the shorter prompt is padded on the left
    for row, request in enumerate(requests):
        text = tokenizer.decode(ids[row][mask[row].bool()])
        assert parse_prompt(text) == opposite(request)


@torch.inference_mode()
def test_negative_branch_matches_a_full_recompute_with_left_padding(model, tokenizer):
    """The cached negative branch sees its whole prompt plus each generated token, at unpadded positions."""
    requests = [ReviewRequest("positive", "Toy Story"),
                ReviewRequest("positive", None, None, ['A critic: "A much longer context line."'])]
    processor = guidance_processor(model, tokenizer, [build_prompt(opposite(r), tokenizer) for r in requests],
                                   scale=2.0, device="cpu")
    generated = torch.randint(5, 200, (2, 6))
    for step in range(generated.shape[1] + 1):
        cached = processor.get_unconditional_logits(torch.cat([torch.zeros(2, 2, dtype=torch.long),
                                                               generated[:, :step]], 1))
        for row, request in enumerate(requests):
            ids = tokenizer(build_prompt(opposite(request), tokenizer), add_special_tokens=False,
                            return_tensors="pt")["input_ids"]
            full = model(torch.cat([ids, generated[row:row + 1, :step]], dim=1)).logits[0, -1]
            assert torch.allclose(cached[row, -1], full, atol=1e-4), f"row {row}, step {step}"


def test_guided_scores_follow_the_formula_among_plausible_tokens_only(model, tokenizer):
    requests = [ReviewRequest("negative", "Up")]
    processor = guidance_processor(model, tokenizer, [build_prompt(opposite(r), tokenizer) for r in requests],
                                   scale=3.0, device="cpu", plausibility=0.1)
    ids = tokenizer(build_prompt(requests[0], tokenizer), add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        scores = model(ids).logits[:, -1] * 20  # sharpen: a few plausible tokens, many implausible ones
        neg = torch.log_softmax(model(processor.unconditional_context["input_ids"]).logits[:, -1], -1)
        top = int(scores.argmax())
        scores[0, (top + 1) % scores.shape[-1]] = float("-inf")  # as if the nucleus cut it
        out = processor(ids, scores)
    cond = torch.log_softmax(scores, -1)
    plausible = cond >= cond.max() + torch.log(torch.tensor(0.1))
    assert 1 <= int(plausible.sum()) < cond.shape[-1] - 1
    assert torch.allclose(out[plausible], (neg + 3.0 * (cond - neg))[plausible], atol=1e-4)
    assert torch.isneginf(out[~plausible]).all()  # implausible and cut tokens can never be sampled
    assert int(out.argmax()) in plausible.nonzero()[:, 1].tolist()


@pytest.mark.parametrize("chat", [False, True])
def test_guided_generation_streams_and_batches_the_same_text(model, tokenizer, chat):
    tok = with_chat_template(tokenizer) if chat else tokenizer
    if chat:
        torch.manual_seed(0)
        model = build_model(tok, TINY).eval()
    plain = ReviewGenerator(model, tok, device="cpu")
    guided = ReviewGenerator(model, tok, device="cpu", guidance=3.0)
    requests = [ReviewRequest("negative", "Toy Story"), ReviewRequest("positive", None, None, ['A critic: "Fun."'])]
    batched = guided.generate_many(requests, temperature=0, max_new_tokens=10, batch_size=2)
    assert batched == [guided.generate(r, temperature=0, max_new_tokens=10) for r in requests]
    assert "".join(guided.stream(requests[0], temperature=0, max_new_tokens=10)).strip() == batched[0]
    # a random model's greedy text shifts once the opposite prompt is subtracted
    assert batched != plain.generate_many(requests, temperature=0, max_new_tokens=10, batch_size=2)
    sampled = guided.generate(requests[0], seed=5, max_new_tokens=10)
    assert sampled == guided.generate(requests[0], seed=5, max_new_tokens=10)


@pytest.mark.parametrize("fast", [True, False])
def test_guidance_sees_untempered_scores_and_temperature_applies_after_it(model, tokenizer, monkeypatch, fast):
    """Guidance mixes log-probabilities at temperature 1; temperature and nucleus come after it, on both paths."""
    import assistant.model.decoding as decoding
    import assistant.model.guidance as guidance

    seen = []
    original = guidance.guide_scores

    def recording(scores, negative_logits, scale, log_plausibility, **penalty):
        seen.append(scores.clone())
        return original(scores, negative_logits, scale, log_plausibility, **penalty)

    monkeypatch.setattr(decoding if fast else guidance, "guide_scores", recording)
    gen = ReviewGenerator(model, tokenizer, device="cpu", guidance=2.0, repetition_penalty=1.0,
                          no_repeat_ngram_size=0, fast=fast)
    request = ReviewRequest("positive", "Up")
    gen.generate(request, temperature=0.5, seed=1, max_new_tokens=2)
    ids = tokenizer(gen.fit(request, 2).text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        raw = model(ids).logits[0, -1]
    assert torch.allclose(seen[0][0], raw, atol=1e-4)  # not raw / 0.5: temperature has not been applied yet


def test_the_opposite_prompt_gets_the_requests_repetition_penalty_so_guidance_does_not_multiply_it():
    """A token both prompts find equally likely is penalised once for having been written, not `scale` times."""
    ids = torch.tensor([[5, 1, 1]])  # token 1 already written (or in the prompt)
    logits = torch.tensor([[2.0, 3.0, 1.0, 0.5, 0.0, 2.5]])
    penalised = RepetitionPenaltyLogitsProcessor(1.3)(ids, logits.clone())  # what the request's scores arrive as
    out = guide_scores(penalised, logits.clone(), 3.0, -math.inf, input_ids=ids, repetition_penalty=1.3)
    assert torch.allclose(out, torch.log_softmax(penalised, -1), atol=1e-5)  # no sentiment in it: no change
    one_sided = guide_scores(penalised, logits.clone(), 3.0, -math.inf)  # the penalty on the request's side only
    assert float(out[0, 1] - one_sided[0, 1]) > 0.5
    unwritten = [0, 2, 3, 4]  # tokens neither prompt penalises keep their shares among themselves
    assert torch.allclose(out[0, unwritten].softmax(-1), one_sided[0, unwritten].softmax(-1), atol=1e-5)


@pytest.mark.parametrize("fast", [True, False])
def test_both_paths_penalise_the_opposite_prompt_as_the_request(model, tokenizer, monkeypatch, fast):
    """The fast loop and generate hand guidance the same penalty and the request's ids."""
    import assistant.model.decoding as decoding
    import assistant.model.guidance as guidance

    seen = []
    original = guidance.guide_scores

    def recording(scores, negative_logits, scale, log_plausibility, **penalty):
        seen.append(penalty)
        return original(scores, negative_logits, scale, log_plausibility, **penalty)

    monkeypatch.setattr(decoding if fast else guidance, "guide_scores", recording)
    gen = ReviewGenerator(model, tokenizer, device="cpu", guidance=2.0, repetition_penalty=1.2, fast=fast)
    request = ReviewRequest("positive", "Up")
    gen.generate(request, temperature=0, max_new_tokens=3)
    prompt = tokenizer(gen.fit(request, 3).text, add_special_tokens=False)["input_ids"]
    assert seen and all(call["repetition_penalty"] == 1.2 for call in seen)
    assert seen[0]["input_ids"][0].tolist() == prompt  # the request's own ids, not the opposite prompt's
