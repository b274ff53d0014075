"""The fast generation path against transformers' generate, on tiny GPT-2 and Llama models: same tokens."""
from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, TopPLogitsWarper

from assistant.model import runtime
from assistant.model.decoding import (
    LeanLlama,
    TransformersRunner,
    runner_for,
    sample_nucleus,
)
from assistant.model.generation import ReviewGenerator, chat_generator
from assistant.model.lean_llama import fuse_layer, fuse_projections
from assistant.model.prompts import ReviewRequest
from assistant.model.scratch import TINY, build_model, train_tokenizer
from assistant.settings import Sampling, Settings
from tests.tiny import with_chat_template

torch.set_num_threads(1)

TEXTS = ["A great film, warm and funny.", "A dull film, cold and flat.", "Toy Story is a joy."] * 40
CONTEXT = ['A critic, fresh: "Warm and funny."', 'A critic, rotten: "Cold and flat, a dull film."']
REQUESTS = [ReviewRequest("negative", "Toy Story", None, CONTEXT), ReviewRequest("positive", "Up"),
            ReviewRequest("negative", None, "the ending", CONTEXT[:1])]


@pytest.fixture(scope="module")
def tokenizer():
    return with_chat_template(train_tokenizer(TEXTS, vocab_size=300))


def tiny_llama(tokenizer, seed: int = 0) -> LlamaForCausalLM:
    """SmolLM2's shape in miniature: grouped-query attention, tied embeddings, rotary positions."""
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # random init is near-uniform; sharper logits make greedy choices clear-cut
        model.model.embed_tokens.weight.mul_(8)
    return model


def tiny_gpt2(tokenizer, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(tokenizer, TINY).eval()


MODELS = {"gpt2": tiny_gpt2, "llama": tiny_llama}


@pytest.mark.parametrize("arch", sorted(MODELS))
@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_fast_path_writes_the_plain_paths_greedy_tokens(tokenizer, arch, guidance):
    model = MODELS[arch](tokenizer)
    fast = ReviewGenerator(model, tokenizer, guidance=guidance, max_sentences=0)
    plain = ReviewGenerator(model, tokenizer, guidance=guidance, max_sentences=0, fast=False)
    batched = fast.generate_many(REQUESTS, temperature=0, max_new_tokens=12, batch_size=3)  # padded rows
    assert batched == plain.generate_many(REQUESTS, temperature=0, max_new_tokens=12, batch_size=3)
    assert fast.stats.new_tokens == plain.stats.new_tokens > 0
    assert [fast.generate(r, temperature=0, max_new_tokens=12) for r in REQUESTS] == batched
    streamed = "".join(fast.stream(REQUESTS[0], temperature=0, max_new_tokens=12))
    assert streamed == "".join(plain.stream(REQUESTS[0], temperature=0, max_new_tokens=12)) == batched[0]
    assert any(batched)


def test_llama_runs_lean_and_gpt2_through_transformers(tokenizer):
    assert isinstance(runner_for(tiny_llama(tokenizer)), LeanLlama)
    assert isinstance(runner_for(tiny_gpt2(tokenizer)), TransformersRunner)
    assert isinstance(runner_for(tiny_llama(tokenizer), lean=False), TransformersRunner)


@torch.inference_mode()
def test_lean_llama_logits_match_transformers_with_padding_and_a_shared_prefix(tokenizer):
    model = tiny_llama(tokenizer)
    rows = [[5, 6, 7, 8, 9, 10, 11], [5, 6, 7, 8, 12]]
    lean = LeanLlama(model)
    lean.forward(torch.tensor([[5, 6, 7]]), None, torch.arange(3).unsqueeze(0))  # the shared prefix, once
    lean.repeat_rows(2)
    suffix = torch.tensor([[8, 9, 10, 11], [0, 0, 8, 12]])
    valid = torch.tensor([[1] * 7, [1, 1, 1, 0, 0, 1, 1]])
    positions = (valid.cumsum(-1) - 1).clamp(min=0)[:, 3:]
    logits = lean.forward(suffix, valid, positions)
    for row, ids in enumerate(rows):
        reference = model(torch.tensor([ids])).logits[0, -1]
        assert torch.allclose(logits[row], reference, atol=1e-4), f"row {row}"
    step = lean.forward(torch.tensor([[13], [13]]), torch.cat([valid, torch.ones(2, 1, dtype=torch.long)], 1),
                        positions[:, -1:] + 1)
    assert torch.allclose(step[1], model(torch.tensor([rows[1] + [13]])).logits[0, -1], atol=1e-4)


def test_fused_projections_change_no_token(tokenizer):
    model = tiny_llama(tokenizer)
    before = ReviewGenerator(model, tokenizer, guidance=2.0, max_sentences=0).generate_many(
        REQUESTS, temperature=0, max_new_tokens=10)
    fuse_projections(model)
    assert hasattr(model.model.layers[0].self_attn, "qkv_proj")
    for fast in (True, False):  # transformers' own forward still runs on the fused model
        after = ReviewGenerator(model, tokenizer, guidance=2.0, max_sentences=0, fast=fast)
        assert after.generate_many(REQUESTS, temperature=0, max_new_tokens=10) == before


@pytest.mark.parametrize("fast", [True, False])
def test_processors_see_the_guided_scores_and_decide_the_token(tokenizer, fast):
    model = tiny_llama(tokenizer)
    word = tokenizer.convert_tokens_to_ids("Ġfilm")
    calls = []

    def only_film(input_ids, scores):
        calls.append((tuple(input_ids.shape), bool(torch.isneginf(scores).any())))
        forced = torch.full_like(scores, float("-inf"))
        forced[:, word] = 0.0
        return forced

    gen = ReviewGenerator(model, tokenizer, guidance=2.0, max_sentences=0, fast=fast, repetition_penalty=1.0,
                          no_repeat_ngram_size=0)
    text = gen.generate(REQUESTS[1], seed=0, max_new_tokens=4, processors=[only_film])
    assert text == "film film film film" and len(calls) == 4
    prompt_length = calls[0][0][1]
    assert [shape for shape, _ in calls] == [(1, prompt_length + i) for i in range(4)]
    assert all(implausible_cut for _, implausible_cut in calls)  # after guidance's plausibility cut


def test_seeded_sampling_repeats_and_streams_the_same_text(tokenizer):
    gen = ReviewGenerator(tiny_llama(tokenizer), tokenizer, guidance=2.0, max_sentences=0)
    first = gen.generate(REQUESTS[0], seed=7, max_new_tokens=15)
    assert first == gen.generate(REQUESTS[0], seed=7, max_new_tokens=15)
    assert "".join(gen.stream(REQUESTS[0], seed=7, max_new_tokens=15)) == first
    assert {gen.generate(REQUESTS[0], seed=s, max_new_tokens=15) for s in range(8, 12)} - {first}


def test_nucleus_keeps_the_set_transformers_keeps():
    torch.manual_seed(0)
    scores = torch.randn(3, 5000) * 3
    scores[2, 100:] = float("-inf")  # a guided row: few plausible tokens
    for top_p in (0.5, 0.92, 0.999):
        kept = ~torch.isneginf(TopPLogitsWarper(top_p)(None, scores / 0.8))
        draws = torch.stack([sample_nucleus(scores, 0.8, top_p, torch.Generator().manual_seed(s))
                             for s in range(200)])
        for row in range(3):
            assert kept[row, draws[:, row]].all()  # never outside transformers' nucleus
        assert (draws[:, 0] == scores[0].argmax()).any()  # the most likely token gets drawn


def test_chat_generator_goes_int8_and_falls_back_to_float32_without_it(tokenizer, monkeypatch):
    settings = Settings(sampling=Sampling(max_sentences=0))
    gen = chat_generator(tiny_llama(tokenizer), tokenizer, settings)
    assert gen.precision == "int8" and runtime.is_int8(gen.model) and gen.fast
    assert gen.params == sum(p.numel() for p in tiny_llama(tokenizer).parameters())
    assert gen.generate(REQUESTS[0], seed=1, max_new_tokens=8, guidance=2.0)

    def missing():
        raise ImportError("No module named 'torch.ao.quantization'")

    monkeypatch.setattr(runtime, "_dynamic_quantization", missing)
    gpt2 = chat_generator(tiny_gpt2(tokenizer), tokenizer, settings)
    assert gpt2.precision == "float32" and not runtime.is_int8(gpt2.model)
    assert gpt2.generate(REQUESTS[0], seed=1, max_new_tokens=8, guidance=2.0)
    plain = chat_generator(tiny_llama(tokenizer), tokenizer, settings.model_copy(update={"fast_generation": False}))
    assert not plain.fast and plain.generate(REQUESTS[0], seed=1, max_new_tokens=8)


def test_int8_gpt2_generates_with_its_conv1d_layers_as_linear(tokenizer):
    model, done = runtime.int8_model(tiny_gpt2(tokenizer))
    assert done and runtime.is_int8(model)
    assert isinstance(ReviewGenerator(model, tokenizer).generate(REQUESTS[1], seed=0, max_new_tokens=6), str)


def test_a_remembered_prompt_opening_changes_no_token(tokenizer, monkeypatch):
    from assistant.model.decoding import RememberedPrefix

    model = tiny_llama(tokenizer)
    reused = []
    real = RememberedPrefix.restore
    monkeypatch.setattr(RememberedPrefix, "restore", lambda self, runner, ids: reused.append(real(self, runner, ids))
                        or reused[-1])
    monkeypatch.setattr(RememberedPrefix, "MIN_REUSE", 4)
    fresh = ReviewGenerator(model, tokenizer, max_sentences=0)
    remembering = ReviewGenerator(model, tokenizer, max_sentences=0, remember_prompts=True)
    follow_ups = [REQUESTS[0], ReviewRequest("positive", "Toy Story", None, CONTEXT), REQUESTS[0], REQUESTS[1]]
    for guidance in (2.0, 1.0):
        for request in follow_ups:
            expected = fresh.generate(request, temperature=0, max_new_tokens=8, guidance=guidance)
            assert remembering.generate(request, temperature=0, max_new_tokens=8, guidance=guidance) == expected
    assert reused[0] == 0 and max(reused) > 20  # the first starts cold, later ones from the shared opening


def test_int8_from_a_mapped_weights_file_writes_what_int8_from_memory_writes(tokenizer, tmp_path):
    """int8_model drops the weights file's pages as it goes; the model must not notice."""
    tiny_llama(tokenizer).save_pretrained(tmp_path / "tiny")
    mapped = LlamaForCausalLM.from_pretrained(tmp_path / "tiny")
    in_memory = LlamaForCausalLM.from_pretrained(tmp_path / "tiny")
    with torch.no_grad():
        for tensor in in_memory.parameters():
            tensor.data = tensor.data.clone()
    outputs = []
    for model in (mapped, in_memory):
        model, done = runtime.int8_model(model, prepare_layer=fuse_layer)
        assert done
        gen = ReviewGenerator(model, tokenizer, max_sentences=0, guidance=2.0)
        outputs.append(gen.generate_many(REQUESTS, temperature=0, max_new_tokens=10))
    assert outputs[0] == outputs[1] and any(outputs[0])


def test_every_forward_pass_of_a_reply_runs_on_the_one_compute_thread(tokenizer, monkeypatch):
    import threading

    from assistant.model.compute_thread import compute
    seen = []
    forward = LeanLlama.forward

    def spy(self, *args, **kwargs):
        seen.append(threading.current_thread().name)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(LeanLlama, "forward", spy)
    generator = ReviewGenerator(tiny_llama(tokenizer), tokenizer, max_sentences=0)
    callers = []
    for request in REQUESTS[:2]:  # from two threads of their own, as LangGraph's executors call it
        worker = threading.Thread(target=lambda r=request: callers.append(
            generator.generate(r, temperature=0, max_new_tokens=4, guidance=2.0)))
        worker.start()
        worker.join()
    assert len(callers) == 2 and seen and set(seen) == {compute.name}


def test_a_reserved_cache_is_never_regrown_while_decoding(tokenizer):
    model = tiny_llama(tokenizer)
    lean = LeanLlama(model)
    lean.reserve(5 + 20)
    lean.forward(torch.tensor([[5, 6, 7, 8, 9]]), None, torch.arange(5).unsqueeze(0))
    snapshot = lean.repeat_rows(2)
    keys = lean.keys[0]
    assert keys.shape[:3] == (2, 2, 25) and snapshot[0][0].shape[2] == 5
    before = snapshot[0][0].clone()
    for position in range(5, 25):
        lean.forward(torch.tensor([[10], [11]]), None, torch.tensor([[position], [position]]))
    assert lean.keys[0] is keys  # written in place: no copy of the whole cache mid-reply
    assert torch.equal(snapshot[0][0], before)  # the prefix handed back is not written to afterwards
