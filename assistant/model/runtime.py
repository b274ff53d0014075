"""Readying a loaded model to write fast on a CPU: int8 weights for its linear layers.

At batch 1-2 each generated token is bound by reading the weights (fp32 SmolLM2-135M: 540 MB per token) and by
per-op overhead; a long RAG prompt's prefill is bound by arithmetic. Dynamic int8 quantization (weights int8 per
output channel, activations quantized on the fly; fbgemm's VNNI kernels on x86) reads a quarter of the bytes
and multiplies several times faster than fp32 here (bench/latency.md). The MLP's down projection keeps int8
weights with bfloat16 activations instead, and VNNI CPUs get full 8-bit activations (int8_layers.py says why).
It changes the numbers slightly, so it is for the chat only: training, perplexity and the tests' equivalence
checks use the fp32 model.

torch's eager quantization API (`torch.ao.quantization.quantize_dynamic`) is deprecated upstream; when it is gone
or has no engine on this machine, the model stays fp32 and says so once in the log.
"""
from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from assistant.model.int8_layers import (
    DynamicInt8Linear,
    WeightInt8Linear,
    cpu_has_vnni,
    weight_int8_works,
)
from assistant.model.private_ops import deprecated_quantization

log = logging.getLogger(__name__)

MADV_DONTNEED = 4  # Linux


def _dynamic_quantization() -> tuple[Any, Any]:
    """torch's `quantize_dynamic` and its per-channel config; ImportError when this torch has none."""
    with deprecated_quantization():  # torch's notice says nothing actionable here; private_ops names what goes
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    return quantize_dynamic, per_channel_dynamic_qconfig


def _quantizer() -> Any | None:
    """A function that makes a model's linear layers int8, if this torch can and it runs here; None otherwise."""
    try:
        quantize_dynamic, qconfig = _dynamic_quantization()
        with deprecated_quantization():
            probe = quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(8, 8)), {torch.nn.Linear: qconfig},
                                     dtype=torch.qint8)
            # an engine or a private op that is missing fails here (MissingOp names it), not in the middle of
            # a reply; our layer over torch's, as the chat will call it
            DynamicInt8Linear(probe[0], reduce_range=not cpu_has_vnni())(torch.ones(2, 8))
    except (ImportError, AttributeError, RuntimeError, NotImplementedError) as exc:
        log.warning("int8 generation unavailable (%s: %s); the model stays float32",
                    type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return None

    def quantize(model: torch.nn.Module) -> torch.nn.Module:
        with deprecated_quantization():
            return quantize_dynamic(model, {torch.nn.Linear: qconfig}, dtype=torch.qint8, inplace=True)

    return quantize


def _linear_from_conv1d(conv: Any) -> torch.nn.Linear:
    """GPT-2's Conv1D (x @ W + b, W stored in x out) as the nn.Linear it is, so it can be quantized too."""
    linear = torch.nn.Linear(conv.weight.shape[0], conv.weight.shape[1], bias=conv.bias is not None,
                             device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(conv.weight.t())
        if conv.bias is not None:
            linear.bias.copy_(conv.bias)
    return linear


def _conv1d_to_linear(model: torch.nn.Module) -> int:
    from transformers.pytorch_utils import Conv1D

    swaps = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if isinstance(child, Conv1D)]
    for parent, name, child in swaps:
        setattr(parent, name, _linear_from_conv1d(child))
    return len(swaps)


def _decoder_layers(model: Any) -> list[torch.nn.Module]:
    inner = getattr(model, "model", None) or getattr(model, "transformer", None)
    layers = getattr(inner, "layers", None) or getattr(inner, "h", None)
    return list(layers) if layers is not None else []


def _mlp_output(layer: Any) -> tuple[Any, str] | None:
    """The MLP's down projection of a decoder layer (Llama's `down_proj`, GPT-2's `c_proj`): (owner, name)."""
    mlp = getattr(layer, "mlp", None)
    for name in ("down_proj", "c_proj"):
        if isinstance(getattr(mlp, name, None), torch.nn.Linear):
            return mlp, name
    return None


def _own_int8_layers(model: torch.nn.Module, reduce_range: bool) -> None:
    """torch's dynamic int8 layers swapped for ours: the same packed weights, the activation range for this CPU."""
    swaps = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if type(child).__module__.startswith("torch.ao.nn.quantized.dynamic") and hasattr(child, "_packed_params")]
    for parent, name, child in swaps:
        setattr(parent, name, DynamicInt8Linear(child, reduce_range))


def int8_model(model: Any, prepare_layer: Callable[[Any], None] | None = None) -> tuple[Any, bool]:
    """The model with int8 linear layers (in place: its float32 weights are freed), and whether that happened.

    Layer by layer (`prepare_layer` first, e.g. fusing projections), so at most one layer's float32 copies exist
    at a time; then the output head. The MLP's down projection gets weight-only int8 where this torch can.
    Only for a model on the CPU that is done training; float32 stays float32 when quantization cannot run."""
    device = next(model.parameters()).device
    if device.type != "cpu":
        return model, False
    quantize = _quantizer()
    if quantize is None:
        return model, False
    swapped = _conv1d_to_linear(model)
    _own_copies(model)  # first, while only the embedding's pages of the weights file have been read
    for layer in _decoder_layers(model.eval()):
        read = [m.weight for m in layer.modules() if isinstance(m, torch.nn.Linear)]
        if prepare_layer is not None:
            prepare_layer(layer)
        down = _mlp_output(layer) if weight_int8_works() else None
        if down is not None:
            setattr(down[0], down[1], WeightInt8Linear(getattr(*down)))
        quantize(layer)
        _done_with_file_pages(read)
        del read
    model = quantize(model)  # what is left: the output head
    reduce_range = not cpu_has_vnni()
    _own_int8_layers(model, reduce_range)
    release_freed_memory()
    log.info("int8 linear layers for generation (%s, %s-bit activations%s%s)", type(model).__name__,
             7 if reduce_range else 8, ", MLP output weight-only int8" if weight_int8_works() else "",
             f", {swapped} GPT-2 Conv1D layers as Linear" if swapped else "")
    return model, True


def _own_copies(model: torch.nn.Module) -> None:
    """The float32 tensors that stay float32 (embeddings, norms) copied out of the weights file: transformers maps
    safetensors files into memory, and one surviving view (the embedding) kept the whole 540 MB file mapped and
    resident. Linear weights are left alone: quantization reads them once and drops them."""
    linear = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Linear)}
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            if id(tensor) not in linear or id(tensor) in embeddings:  # a tied head is its embedding
                tensor.data = tensor.data.clone()


def _done_with_file_pages(tensors: list[torch.Tensor]) -> None:
    """Drop from this process the pages of a memory-mapped weights file that only these (now unused) tensors
    occupy. transformers maps safetensors files, and every page read stays resident until the whole file is
    unmapped, so converting layer by layer would otherwise hold all 540 MB at the end of the conversion.

    Only whole pages inside a tensor and inside a .safetensors mapping are dropped; they were only read, so if
    anything touched them again they would come back from the file. Linux only; elsewhere a no-op."""
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    files = []
    for line in maps:
        fields = line.split()
        if len(fields) >= 6 and fields[5].endswith(".safetensors"):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            files.append((start, end))
    page = os.sysconf("SC_PAGE_SIZE")
    for tensor in tensors:
        first = -(-tensor.data_ptr() // page) * page
        last = (tensor.data_ptr() + tensor.numel() * tensor.element_size()) // page * page
        if last > first and any(start <= first and last <= end for start, end in files):
            libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), MADV_DONTNEED)


def release_freed_memory() -> None:
    """Hand freed float32 weights back to the system (glibc keeps freed heap for reuse otherwise), so the next
    model loads into memory that is really free."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _is_int8_layer(module: torch.nn.Module) -> bool:
    return isinstance(module, (DynamicInt8Linear, WeightInt8Linear)) \
        or type(module).__module__.startswith("torch.ao.nn.quantized")


def is_int8(model: Any) -> bool:
    return any(_is_int8_layer(m) for m in model.modules())


def parameter_count(model: Any) -> int:
    """Weights of the model, int8 linear layers included (they are not `parameters()` any more)."""
    packed = 0
    for m in model.modules():
        if hasattr(m, "weight_count"):
            packed += m.weight_count
        elif type(m).__module__.startswith("torch.ao.nn.quantized") and callable(getattr(m, "weight", None)):
            packed += m.weight().numel()
    return packed + sum(p.numel() for p in model.parameters())


class ThreadChooser:
    """Intra-op threads for generation, chosen by timing them, when the settings leave it to us
    (generation_threads = 0).

    Neither choice wins everywhere. On an idle 2-core machine a decoding step of the guided pair takes 23 ms on
    two threads and 26 ms on one, a prompt's prefill 0.19 s against 0.33 s; on a busy one a second thread mostly
    waits for its core: at load 6, two threads wrote 3 tokens/s and one thread 16 (bench/latency.md). The load
    average cannot tell: it lags a minute and counts this process's own threads. So each kind of pass (a prefill,
    a decoding step of so many rows) keeps a moving average of its cost per token for each thread count, uses
    the cheaper, and now and then tries the other again (less often the worse it was), so a change of load is
    noticed within a reply or two."""

    EXPLORE_EVERY = 16  # passes between tries of the other count, times how many times worse it was
    SMOOTHING = 0.3  # weight of the newest timing in the moving average

    def __init__(self, cores: int | None = None) -> None:
        cores = cores or os.cpu_count() or 1
        self.options = (cores, 1) if cores > 1 else (1,)
        self.cost: dict[tuple[str, int], float] = {}  # (kind of pass, threads) -> seconds per token
        self.uses: dict[str, int] = {}
        self.lock = threading.Lock()

    def choose(self, kind: str) -> int:
        with self.lock:
            self.uses[kind] = uses = self.uses.get(kind, 0) + 1
            known = {t: self.cost[(kind, t)] for t in self.options if (kind, t) in self.cost}
            untried = [t for t in self.options if t not in known]
            if untried:
                return untried[0]
            best = min(known, key=known.get)
            worst = max(known, key=known.get)
            every = self.EXPLORE_EVERY * max(1, round(known[worst] / known[best]))
            return worst if uses % every == 0 else best

    def forget(self) -> None:
        """Drop every timing (a warm-up's first passes pay one-off set-up and would rank the count they ran on
        last for a long while)."""
        with self.lock:
            self.cost.clear()
            self.uses.clear()

    def record(self, kind: str, threads: int, seconds: float, tokens: int = 1) -> None:
        per_token = seconds / max(1, tokens)
        with self.lock:
            before = self.cost.get((kind, threads))
            self.cost[(kind, threads)] = per_token if before is None else \
                (1 - self.SMOOTHING) * before + self.SMOOTHING * per_token


generation_threads = ThreadChooser()  # one per process: the load it measures is the machine's
