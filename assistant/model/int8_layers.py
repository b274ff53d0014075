"""The two int8 linear layers the chat model runs on, and a direct call for each (`fast_call`).

Measured on the tuned SmolLM2-135M against its float32 self (bench/int8_fidelity.py, chat prompts with RAG
context): torch's dynamic int8 layer as it comes (activations rounded to 7 bits, `reduce_range`) moved the next-
token distribution by KL 1.01 nats a token and kept float32's top token 42% of the time. Two causes, two fixes:

- `reduce_range` halves the activations' range so that AVX2's 16-bit pair sums cannot saturate. CPUs with VNNI
  instructions (AVX512-VNNI, AVX-VNNI) multiply-accumulate in 32 bits and need no such margin: full 8 bits there
  (KL 0.42).
- The MLP's down projection reads SiLU(gate) * up, whose few outlier channels make one scale per tensor round
  every other channel to a handful of levels. That layer keeps int8 weights (the same bytes to read per token)
  but multiplies bfloat16 activations (`WeightInt8Linear`): KL 0.06, float32's top token 89% of the time, at a
  few percent of the speed.

The private torch ops both call are looked up in `private_ops`, which names any this torch lacks.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from assistant.model import private_ops
from assistant.model.private_ops import MissingOp

log = logging.getLogger(__name__)

Linear = Callable[[torch.Tensor], torch.Tensor]
FEW_ROWS = 16  # up to this many rows the int8 kernel wins; a prompt's prefill dequantizes and multiplies in bf16


@functools.cache
def cpu_has_vnni() -> bool:
    """Whether this x86 CPU multiplies int8 with 32-bit accumulation (AVX512-VNNI or AVX-VNNI); False when
    unknown, which keeps torch's safe 7-bit activations."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_vnni", "avx_vnni"))


class DynamicInt8Linear(torch.nn.Module):
    """torch's dynamic int8 linear layer (its packed weights), with the activation range chosen for this CPU."""

    def __init__(self, quantized: torch.nn.Module, reduce_range: bool) -> None:
        super().__init__()
        self.in_features, self.out_features = quantized.in_features, quantized.out_features
        self.packed = private_ops.packed_weights(quantized)
        self.op = private_ops.linear_dynamic()
        self.reduce_range = reduce_range
        self.weight_count = self.in_features * self.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x, self.packed, self.reduce_range)


class WeightInt8Linear(torch.nn.Module):
    """int8 weights (one scale per output channel), bfloat16 activations: faithful where activations have
    outliers, and a quarter of float32's bytes to read per token."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127.0
        self.register_buffer("q", torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8).contiguous())
        self.register_buffer("scale", scale.to(torch.bfloat16))
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float().clone())
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight_count = self.q.numel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1]).to(torch.bfloat16)
        if flat.shape[0] <= FEW_ROWS:
            out = private_ops.weight_int8pack_mm(flat.contiguous(), self.q, self.scale).float()
        else:  # many rows: arithmetic-bound, where a bf16 product of the int8 weights is 2-3x faster; the scale
            # goes on the product's columns, not on the weights: one pass over them fewer (~5 ms a prompt here)
            out = F.linear(flat, self.q.to(torch.bfloat16)).float() * self.scale
        out = out.reshape(*shape[:-1], self.out_features)
        return out if self.bias is None else out + self.bias


@functools.cache
def weight_int8_works() -> bool:
    """Whether this torch has the weight-only int8 kernel and it runs here."""
    try:
        layer = WeightInt8Linear(torch.nn.Linear(32, 8))
        layer(torch.ones(2, 32))
        layer(torch.ones(FEW_ROWS + 1, 32))
    except (AttributeError, RuntimeError, NotImplementedError) as exc:  # MissingOp names the op
        log.warning("weight-only int8 unavailable (%s); the MLP's down projection uses dynamic int8",
                    exc if isinstance(exc, MissingOp) else type(exc).__name__)
        return False
    return True


def fast_call(module: torch.nn.Module) -> Linear:
    """The cheapest way to call this linear layer from a hand-written forward: the kernel itself for a dynamic
    int8 layer (skipping the module machinery, a tenth of a decoding step on two cores), the module otherwise."""
    if isinstance(module, DynamicInt8Linear):
        op, packed, reduce_range = module.op, module.packed, module.reduce_range
        return lambda x: op(x, packed, reduce_range)
    return module
