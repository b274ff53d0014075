"""The private torch ops the int8 layers call: present on this torch (a test per op, failing with its name), and
where one is missing the chat still writes: float32, or the other int8 layer."""
from __future__ import annotations

import logging

import pytest
import torch

from assistant.model import int8_layers, private_ops, runtime
from assistant.model.generation import chat_generator
from assistant.model.int8_layers import DynamicInt8Linear
from assistant.model.private_ops import (
    LINEAR_DYNAMIC,
    OPS,
    WEIGHT_INT8PACK_MM,
    MissingOp,
)
from assistant.settings import Sampling, Settings
from tests.test_decoding import REQUESTS, TEXTS, tiny_llama
from tests.tiny import with_chat_template

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tokenizer():
    from assistant.model.scratch import train_tokenizer

    return with_chat_template(train_tokenizer(TEXTS, vocab_size=300))


class _Without:
    """torch.ops.quantized as a torch without one of its ops would have it."""

    def __init__(self, namespace, name: str) -> None:
        self.namespace, self.name = namespace, name

    def __getattr__(self, attr: str):
        if attr == self.name:
            raise AttributeError(f"'_OpNamespace' 'quantized' object has no attribute '{attr}'")
        return getattr(self.namespace, attr)


@pytest.fixture
def without_linear_dynamic(monkeypatch):
    monkeypatch.setattr(torch.ops, "quantized", _Without(torch.ops.quantized, "linear_dynamic"))


@pytest.fixture
def without_weight_int8pack_mm(monkeypatch):
    monkeypatch.delattr(torch, "_weight_int8pack_mm")
    int8_layers.weight_int8_works.cache_clear()  # its answer is cached per process
    yield
    int8_layers.weight_int8_works.cache_clear()


@pytest.mark.parametrize("op", list(OPS))
def test_this_torch_has_the_private_op(op):
    assert op not in private_ops.missing(), (
        f"torch {torch.__version__} has no {op} ({OPS[op]}): the chat falls back (float32 or the other int8 layer) "
        "and gets slower; read docs/install.md ('The torch pin') before moving torch")


def test_a_missing_op_is_found_and_named(without_linear_dynamic, without_weight_int8pack_mm):
    assert private_ops.missing() == [WEIGHT_INT8PACK_MM, LINEAR_DYNAMIC]
    with pytest.raises(MissingOp, match=r"has no torch\._weight_int8pack_mm \(int8 weights"):
        private_ops.weight_int8pack_mm(torch.ones(1, 4, dtype=torch.bfloat16), torch.ones(2, 4, dtype=torch.int8),
                                       torch.ones(2, dtype=torch.bfloat16))
    with pytest.raises(MissingOp, match=r"has no torch\.ops\.quantized\.linear_dynamic"):
        private_ops.linear_dynamic()


def test_without_the_dynamic_kernel_the_chat_writes_in_float32(tokenizer, without_linear_dynamic, caplog):
    settings = Settings(sampling=Sampling(max_sentences=0))
    with caplog.at_level(logging.WARNING, logger="assistant.model.runtime"):
        gen = chat_generator(tiny_llama(tokenizer), tokenizer, settings)
    assert gen.precision == "float32" and not runtime.is_int8(gen.model)
    assert gen.generate(REQUESTS[0], seed=1, max_new_tokens=8, guidance=2.0)
    assert any("torch.ops.quantized.linear_dynamic" in r.getMessage() and "float32" in r.getMessage()
               for r in caplog.records)


def test_without_the_weight_only_kernel_the_mlp_output_is_dynamic_int8(tokenizer, without_weight_int8pack_mm,
                                                                       caplog):
    with caplog.at_level(logging.WARNING, logger="assistant.model.int8_layers"):
        model, done = runtime.int8_model(tiny_llama(tokenizer))
    down = [m for name, m in model.named_modules() if name.endswith("down_proj")]
    assert done and down and all(isinstance(m, DynamicInt8Linear) for m in down)
    assert any("torch._weight_int8pack_mm" in r.getMessage() for r in caplog.records)
    with torch.inference_mode():
        assert torch.isfinite(model(torch.tensor([list(range(3, 13))])).logits).all()
