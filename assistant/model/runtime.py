"""Readying a loaded model to write fast on a CPU: int8 weights for its linear layers.

At batch 1-2 each generated token is bound by reading the weights (fp32 SmolLM2-135M: 540 MB per token) and by
per-op overhead; a long RAG prompt's prefill is bound by arithmetic. Dynamic int8 quantization (weights int8 per
output channel, activations quantized on the fly; fbgemm's VNNI kernels on x86) reads a quarter of the bytes
and multiplies several times faster than fp32 here (bench/latency.md). It changes the numbers slightly, so it is
for the chat only: training, perplexity and the tests' equivalence checks use the fp32 model.

torch's eager quantization API (`torch.ao.quantization.quantize_dynamic`) is deprecated upstream; when it is gone
or has no engine on this machine, the model stays fp32 and says so once in the log.
"""
from __future__ import annotations

import ctypes
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

MADV_DONTNEED = 4  # Linux


def _dynamic_quantization() -> tuple[Any, Any]:
    """torch's `quantize_dynamic` and its per-channel config; ImportError when this torch has none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notice says nothing actionable here
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    return quantize_dynamic, per_channel_dynamic_qconfig


def _quantizer() -> Any | None:
    """A function that makes a model's linear layers int8, if this torch can and it runs here; None otherwise."""
    try:
        quantize_dynamic, qconfig = _dynamic_quantization()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe = quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(8, 8)), {torch.nn.Linear: qconfig},
                                     dtype=torch.qint8)
            probe(torch.ones(2, 8))  # an engine that is missing fails here, not in the middle of a reply
    except (ImportError, AttributeError, RuntimeError, NotImplementedError) as exc:
        log.warning("int8 generation unavailable (%s: %s); the model stays float32",
                    type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return None

    def quantize(model: torch.nn.Module) -> torch.nn.Module:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
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


def int8_model(model: Any, prepare_layer: Callable[[Any], None] | None = None) -> tuple[Any, bool]:
    """The model with int8 linear layers (in place: its float32 weights are freed), and whether that happened.

    Layer by layer (`prepare_layer` first, e.g. fusing projections), so at most one layer's float32 copies exist
    at a time; then the output head. Only for a model on the CPU that is done training; float32 stays float32
    when quantization cannot run."""
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
        quantize(layer)
        _done_with_file_pages(read)
        del read
    model = quantize(model)  # what is left: the output head
    release_freed_memory()
    log.info("int8 linear layers for generation (%s%s)", type(model).__name__,
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


def is_int8(model: Any) -> bool:
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules())


def parameter_count(model: Any) -> int:
    """Weights of the model, int8 linear layers included (they are not `parameters()` any more)."""
    packed = sum(m.weight().numel() for m in model.modules()
                 if type(m).__module__.startswith("torch.ao.nn.quantized") and callable(getattr(m, "weight", None)))
    return packed + sum(p.numel() for p in model.parameters())


def auto_threads(rows: int, prefill: bool) -> int:
    """Intra-op threads for one forward pass, when the settings leave it to us (generation_threads = 0).

    A prompt's prefill, and a big batch's decoding, are arithmetic: on an idle machine every core helps. A
    step of one or two rows is weight reads and per-op overhead, where a second thread buys little and costs a
    barrier per op. On a busy machine a second thread mostly waits for its core: here, at load 6 on 2 cores,
    2 threads wrote 3 tokens/s and 1 thread 16 (bench/latency.md). So: every core for arithmetic while fewer
    than that many are busy, one thread otherwise."""
    cores = os.cpu_count() or 1
    if not prefill and rows <= 4:
        return 1
    try:
        busy = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        busy = 0.0
    return cores if busy < cores - 0.5 else 1
