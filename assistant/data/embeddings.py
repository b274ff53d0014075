"""The one place that builds the embedding model, so swapping models is a settings change."""
from __future__ import annotations

import logging
import os

from langchain_huggingface import HuggingFaceEmbeddings

from assistant.settings import Settings, packaged_minilm_path

log = logging.getLogger(__name__)

HUB_MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def embedding_model_id(settings: Settings) -> str:
    """Stable name of the embedding model for the manifest: the packaged MiniLM and the hub one are the same weights."""
    return HUB_MINILM if settings.embedding_model == "auto" else settings.embedding_model


def make_embeddings(settings: Settings) -> HuggingFaceEmbeddings:
    name = settings.resolved_embedding_model()
    if packaged_minilm_path() is not None and name == str(packaged_minilm_path()):
        # The packaged model is complete on disk: never ask a hub for it.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_kwargs: dict = {"device": "cpu"}
    if settings.embedding_backend != "torch":
        model_kwargs["backend"] = settings.embedding_backend
    log.info("Loading embedding model %s (%s backend)", name, settings.embedding_backend)
    return HuggingFaceEmbeddings(
        model_name=name,
        model_kwargs=model_kwargs,
        encode_kwargs={"normalize_embeddings": True, "batch_size": settings.embedding_batch_size},
    )

