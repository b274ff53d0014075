"""Every private torch op the chat's int8 layers call, in one place, each looked up before it is used.

    from assistant.model import private_ops
    private_ops.missing()                   # [] on the torch this was tested with (2.13)
    private_ops.weight_int8pack_mm(x, q, scale)
    op = private_ops.linear_dynamic()       # MissingOp, naming the op, where this torch lacks it

torch promises nothing about these: a leading underscore, or an op of the deprecated `torch.ao.quantization`
stack (torch 2.13 already warns that quantized tensors will go). They are why torch was pinned to one version.
Now a torch without one of them is found here, by name: tests/test_private_ops.py fails naming it, and the chat
stays float32 (assistant/model/runtime.py) or uses the other int8 layer (int8_layers.py) instead of breaking.
torchao's public int8 configurations were measured as the replacement and were slower than float32 on the CPU
(bench/torchao_int8.md).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

WEIGHT_INT8PACK_MM = "torch._weight_int8pack_mm"
LINEAR_DYNAMIC = "torch.ops.quantized.linear_dynamic"
PACKED_PARAMS = "torch.ao.nn.quantized.dynamic.Linear._packed_params._packed_params"
# What each does for us, for the messages.
OPS = {
    WEIGHT_INT8PACK_MM: "int8 weights times bfloat16 activations (the MLP's down projection)",
    LINEAR_DYNAMIC: "the dynamic int8 linear kernel (every other linear layer of the chat model)",
    PACKED_PARAMS: "the packed int8 weights inside torch's dynamic int8 layer",
}


# torch's notices that the quantization stack these ops belong to will go: known (the reason for this module),
# and said once by name in the log where an op is really missing.
QUANTIZATION_DEPRECATIONS = (
    (r"torch\.ao\.quantization is deprecated", DeprecationWarning),
    (r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor creation functions",
     UserWarning),
)


@contextmanager
def deprecated_quantization() -> Iterator[None]:
    """Inside: torch's own deprecation notices of its eager quantization API are not shown (those two only)."""
    with warnings.catch_warnings():
        for message, category in QUANTIZATION_DEPRECATIONS:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


class MissingOp(NotImplementedError):
    """This torch lacks a private op the int8 layers call; the message names it and says what happens."""

    def __init__(self, op: str, cause: BaseException | None = None) -> None:
        super().__init__(f"torch {torch.__version__} has no {op} ({OPS[op]}): int8 generation falls back "
                         f"(float32 or the other int8 layer); see docs/install.md"
                         + (f" [{type(cause).__name__}: {cause}]" if cause else ""))
        self.op = op


def weight_int8pack_mm(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """`x @ q.T * scale`, x bfloat16 (rows, in), q int8 (out, in), scale bfloat16 (out,): no public op yet."""
    op = getattr(torch, "_weight_int8pack_mm", None)
    if op is None:
        raise MissingOp(WEIGHT_INT8PACK_MM)
    return op(x, q, scale)


def linear_dynamic() -> Callable[..., torch.Tensor]:
    """The kernel `(x, packed_weights, reduce_range) -> x @ W.T + b` of torch's dynamic int8 layer."""
    try:
        return torch.ops.quantized.linear_dynamic.default
    except (AttributeError, RuntimeError) as exc:
        raise MissingOp(LINEAR_DYNAMIC, exc) from exc


def packed_weights(quantized: torch.nn.Module) -> Any:
    """The packed weights (and bias) a dynamic int8 layer of torch's keeps, which `linear_dynamic` takes."""
    try:
        return quantized._packed_params._packed_params  # noqa: SLF001 - the op takes exactly this
    except AttributeError as exc:
        raise MissingOp(PACKED_PARAMS, exc) from exc


def _dynamic_int8_layer() -> torch.nn.Module:
    with deprecated_quantization():
        from torch.ao.nn.quantized.dynamic import Linear

        return Linear(4, 4)


def missing() -> list[str]:
    """The private ops this torch lacks, by name (looked up, not run: whether they run here is runtime.py's
    probe)."""
    gone = []
    if getattr(torch, "_weight_int8pack_mm", None) is None:
        gone.append(WEIGHT_INT8PACK_MM)
    try:
        linear_dynamic()
    except MissingOp:
        gone.append(LINEAR_DYNAMIC)
    try:
        packed_weights(_dynamic_int8_layer())
    except (MissingOp, ImportError, AttributeError, RuntimeError):
        gone.append(PACKED_PARAMS)
    return gone
