"""The chat's int8 layers: weight-only int8 where activations have outliers, the activation range per CPU, the
direct kernel calls of the lean forward, and the thread count chosen by timing."""
from __future__ import annotations

import pytest
import torch

from assistant.model import int8_layers, runtime
from assistant.model.int8_layers import FEW_ROWS, DynamicInt8Linear, WeightInt8Linear
from assistant.model.lean_llama import LeanLlama, fuse_layer, fuse_projections
from assistant.model.runtime import ThreadChooser
from tests.test_decoding import tiny_llama
from tests.tiny import with_chat_template

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tokenizer():
    from assistant.model.scratch import train_tokenizer

    return with_chat_template(train_tokenizer(["A great film, warm and funny.", "A dull film."] * 40, vocab_size=300))


def _outlier_input(rows: int) -> torch.Tensor:
    """Activations like SiLU(gate) * up: small, but a few channels dozens of times larger."""
    torch.manual_seed(rows)
    x = torch.randn(rows, 96) * 0.1
    x[:, [5, 40]] *= 60
    return x


def _relative_error(out: torch.Tensor, exact: torch.Tensor) -> float:
    return float((out - exact).norm() / exact.norm())


@pytest.mark.parametrize("rows", [2, FEW_ROWS + 24])  # the int8 kernel, and the dequantized bf16 product
def test_weight_only_int8_stays_close_where_dynamic_int8_does_not(rows):
    torch.manual_seed(0)
    linear = torch.nn.Linear(96, 48)
    x = _outlier_input(rows)
    with torch.no_grad():
        exact = linear(x)
        faithful = WeightInt8Linear(linear)(x)
        quantized = torch.ao.quantization.quantize_dynamic(
            torch.nn.Sequential(linear), {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig},
            dtype=torch.qint8)[0]
        dynamic = DynamicInt8Linear(quantized, reduce_range=True)(x)
    assert faithful.shape == exact.shape and faithful.dtype == torch.float32
    assert _relative_error(faithful, exact) < 0.01
    assert _relative_error(dynamic, exact) > 3 * _relative_error(faithful, exact)  # why the MLP output is kept


def test_dynamic_int8_layer_is_torchs_with_the_range_chosen(tokenizer):
    torch.manual_seed(1)
    linear = torch.nn.Linear(96, 48)
    quantized = torch.ao.quantization.quantize_dynamic(
        torch.nn.Sequential(linear), {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig},
        dtype=torch.qint8)[0]
    x = _outlier_input(3)
    ours = DynamicInt8Linear(quantized, reduce_range=True)
    assert torch.equal(ours(x), quantized(x))  # torch's layer always reduces the range
    assert torch.equal(int8_layers.fast_call(ours)(x), ours(x))
    full = DynamicInt8Linear(quantized, reduce_range=False)
    assert _relative_error(full(x), linear(x).detach()) < _relative_error(ours(x), linear(x).detach())


def _layer_kinds(model) -> set[tuple[str, str]]:
    return {(name.rsplit(".", 1)[-1], type(module).__name__) for name, module in model.named_modules()
            if isinstance(module, (DynamicInt8Linear, WeightInt8Linear, torch.nn.Linear))}


def test_chat_int8_model_keeps_the_mlp_output_weight_only_and_runs_lean_as_transformers_does(tokenizer):
    model = tiny_llama(tokenizer)
    count, head = runtime.parameter_count(model), model.lm_head.weight.numel()
    model, done = runtime.int8_model(model, prepare_layer=None)
    # every weight counted once, int8 or not; the tied output head now has a copy of its own
    assert done and runtime.is_int8(model) and runtime.parameter_count(model) == count + head
    assert _layer_kinds(model) == {("down_proj", "WeightInt8Linear"), ("q_proj", "DynamicInt8Linear"),
                                   ("k_proj", "DynamicInt8Linear"), ("v_proj", "DynamicInt8Linear"),
                                   ("o_proj", "DynamicInt8Linear"), ("gate_proj", "DynamicInt8Linear"),
                                   ("up_proj", "DynamicInt8Linear"), ("lm_head", "DynamicInt8Linear")}
    ids = torch.tensor([list(range(3, 3 + 12)), list(range(20, 32))])
    with torch.inference_mode():
        expected = model(ids).logits[:, -1]
        lean = LeanLlama(model).forward(ids, None, torch.arange(12).repeat(2, 1))
    # the same kernels; float rounding of the order of 1e-7 may move an activation across an int8 step
    assert _relative_error(lean, expected) < 0.01 and torch.equal(lean.argmax(-1), expected.argmax(-1))


def test_fused_int8_model_and_the_fallbacks(tokenizer, monkeypatch):
    fused, _ = runtime.int8_model(tiny_llama(tokenizer), prepare_layer=fuse_layer)
    kinds = dict(_layer_kinds(fused))
    assert kinds["qkv_proj"] == "DynamicInt8Linear" and kinds["gate_up_proj"] == "DynamicInt8Linear"
    assert kinds["down_proj"] == "WeightInt8Linear"
    assert all(m.reduce_range is not int8_layers.cpu_has_vnni()
               for m in fused.modules() if isinstance(m, DynamicInt8Linear))

    monkeypatch.setattr(runtime, "weight_int8_works", lambda: False)
    monkeypatch.setattr(runtime, "cpu_has_vnni", lambda: False)
    plain, _ = runtime.int8_model(tiny_llama(tokenizer))
    assert dict(_layer_kinds(plain))["down_proj"] == "DynamicInt8Linear"
    assert all(m.reduce_range for m in plain.modules() if isinstance(m, DynamicInt8Linear))


def test_lean_forward_of_a_fused_float_model_still_matches(tokenizer):
    model = tiny_llama(tokenizer)
    ids = torch.tensor([list(range(3, 13))])
    with torch.inference_mode():
        expected = model(ids).logits[:, -1]
        fuse_projections(model)
        lean = LeanLlama(model).forward(ids, None, torch.arange(10).unsqueeze(0))
    torch.testing.assert_close(lean, expected, atol=1e-4, rtol=1e-4)


def test_thread_chooser_tries_each_count_then_keeps_the_faster_and_looks_again_now_and_then():
    chooser = ThreadChooser(cores=2)
    first = chooser.choose("decode")
    chooser.record("decode", first, 0.030)
    second = chooser.choose("decode")
    assert {first, second} == {1, 2}
    chooser.record("decode", second, 0.020 if second == 2 else 0.040)
    picks = []
    for _ in range(64):
        threads = chooser.choose("decode")
        picks.append(threads)
        chooser.record("decode", threads, 0.020 if threads == 2 else 0.040)
    assert picks.count(2) > 56 and picks.count(1) >= 1  # the faster, and the other tried again
    # the load changes: two threads get slow, and the chooser follows within a few looks
    for _ in range(200):
        threads = chooser.choose("decode")
        chooser.record("decode", threads, 0.200 if threads == 2 else 0.040)
    assert [chooser.choose("decode") for _ in range(10)].count(1) >= 9
    assert chooser.choose("prefill") in (1, 2) and ("prefill", 1) not in chooser.cost  # kinds kept apart
    assert ThreadChooser(cores=1).choose("decode") == 1


def test_a_warm_up_times_each_thread_count_on_a_warm_pass(tokenizer, monkeypatch):
    from assistant.model import generation, runtime
    from assistant.model.generation import ReviewGenerator

    chooser = ThreadChooser(cores=2)
    monkeypatch.setattr(runtime, "generation_threads", chooser)
    monkeypatch.setattr(generation, "generation_threads", chooser)
    monkeypatch.setattr("assistant.model.decoding.generation_threads", chooser)
    chooser.record("prefill", 2, 9.0)  # a cold pass's timing: must not survive the warm-up
    generator = ReviewGenerator(tiny_llama(tokenizer), tokenizer, max_sentences=0, remember_prompts=True)
    generator.warm_up()
    assert {t for kind, t in chooser.cost if kind == "prefill"} == {1, 2}
    assert chooser.cost[("prefill", 2)] < 1.0
    assert generator.remembered is not None and generator.threads == 0  # put back as they were
