"""The one place that builds the embedding model, so swapping models is a settings change.

Speed (bench/ingest.md): MiniLM's matrix products run in bfloat16 under torch's CPU autocast where the processor
multiplies bfloat16 natively (AVX-512 BF16, AMX): about 1.8x the float32 rate here, and the vectors keep a cosine
of 0.99998 to the float32 ones (top-5 neighbours 99% the same), so a store built either way answers the same.
Layer norms and softmax stay float32 under autocast. Where bfloat16 would be emulated, float32 it is.
Batches of 32 texts beat 64-256 on two cores: larger batches' activations fall out of the cache.

The index build batches by token count (`embed_in_token_order`), not by characters as sentence-transformers does:
in reviews characters predict tokens poorly, and batches sorted by characters are 19% padding, which the model
computes like real tokens (1% when sorted by tokens): the same vectors, 5-36% less embedding time by size and
threads (bench/ingest.md).

Tried and dropped: dynamic int8 (2x, but top-5 neighbours only 70% the same as float32's); sentence-transformers'
ONNX and OpenVINO backends (they need optimum, which does not accept this project's transformers 5).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import torch
from langchain_huggingface import HuggingFaceEmbeddings

from assistant.settings import Settings, packaged_minilm_path

log = logging.getLogger(__name__)

HUB_MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def embedding_model_id(settings: Settings) -> str:
    """Stable name of the embedding model for the manifest: the packaged MiniLM and the hub one are the same weights."""
    return HUB_MINILM if settings.embedding_model == "auto" else settings.embedding_model


def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (oneDNN's check); emulated bfloat16 is slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """This thread's torch intra-op threads set to `count` for a while (per thread in torch: another thread,
    such as an index build beside the chat, keeps its own)."""
    before = torch.get_num_threads()
    if count == before:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ReviewEmbeddings(HuggingFaceEmbeddings):
    """LangChain's sentence-transformers embeddings, encoding under bfloat16 autocast when asked and native."""

    bfloat16: bool = False

    def _autocast(self) -> Any:
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.bfloat16 else nullcontext()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        with self._autocast():
            return super().embed_documents(texts)

    def embed_in_token_order(self, texts: list[str]) -> np.ndarray:
        """The vectors of `texts`, in their order, as float32: the texts tokenized once, as one window, by the
        model's own preprocessing, then embedded in batches of neighbours by token count, each batch cut to its
        longest text (what `encode` does per batch, less its character-length sort and its second tokenization)."""
        if not texts:
            return np.empty((0, self._client.get_embedding_dimension() or 0), dtype=np.float32)
        model, n = self._client, len(texts)
        batch_size = self.encode_kwargs.get("batch_size", 32)
        # As embed_documents does, so a store built either way holds the same vectors.
        features = model.preprocess([t.replace("\n", " ") for t in texts])
        lengths = features["attention_mask"].sum(1)
        order = torch.argsort(lengths, descending=True, stable=True)
        out: torch.Tensor | None = None
        model.eval()
        with torch.inference_mode(), self._autocast():
            for start in range(0, n, batch_size):
                rows = order[start : start + batch_size]
                width = int(lengths[rows[0]])
                batch = {k: v[rows, :width] if isinstance(v, torch.Tensor) and v.dim() == 2 and len(v) == n else v
                         for k, v in features.items()}
                vectors = model(batch)["sentence_embedding"].float()
                if self.encode_kwargs.get("normalize_embeddings"):
                    vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
                if out is None:
                    out = torch.empty((n, vectors.shape[1]), dtype=torch.float32)
                out[rows] = vectors
        return out.numpy()

    def embed_query(self, text: str) -> list[float]:
        # One short query is too little work to share: a second thread only waits for its core on a busy machine
        # (retrieval p50 0.06 s with one thread, 0.8 s with two, at load 2.5 on 2 cores).
        with torch_threads(1), self._autocast():
            return super().embed_query(text)


def make_embeddings(settings: Settings) -> ReviewEmbeddings:
    name = settings.resolved_embedding_model()
    if packaged_minilm_path() is not None and name == str(packaged_minilm_path()):
        # The packaged model is complete on disk: never ask a hub for it.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    bfloat16 = settings.embedding_precision == "bfloat16" and native_bfloat16()
    if settings.embedding_precision == "bfloat16" and not bfloat16:
        log.info("this CPU has no native bfloat16: embedding in float32")
    log.info("Loading embedding model %s (%s)", name, "bfloat16 autocast" if bfloat16 else "float32")
    try:
        return ReviewEmbeddings(
            model_name=name,
            model_kwargs={"device": "cpu"},
            encode_kwargs={"normalize_embeddings": True, "batch_size": settings.embedding_batch_size},
            bfloat16=bfloat16,
        )
    except OSError as exc:  # the hub's message alone does not say which model it looked for
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OSError(f"embedding model {name!r} could not be loaded: {reason}") from exc

