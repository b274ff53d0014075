"""Shared test fixtures: temporary settings and the packaged (small, offline) embedding model."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from assistant.settings import Settings  # noqa: E402


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        index_dir=tmp_path / "index",
        models_dir=tmp_path / "models",
        chats_db=tmp_path / "chats.sqlite",
        reports_dir=tmp_path / "reports",
        data_dir=tmp_path / "data",
    )


@pytest.fixture(scope="session")
def embeddings():
    """The real all-MiniLM-L6-v2 from its PyPI package: a few seconds to load, once per test run."""
    from assistant.data.embeddings import make_embeddings

    return make_embeddings(Settings())
