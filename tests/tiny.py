"""Tiny, offline artifacts for tests of the assistant, the UI and evaluation: a store and a model.

    settings = build_tiny_artifacts(root)   # store from the fixture mirror + a random tiny GPT-2 as 'tuned'
    assistant = Assistant.load(settings)

The store is the fixture mirror (Toy Story, The Matrix, Gigli and untitled snippets) ingested with
the packaged MiniLM; the model is a randomly initialized 2-layer GPT-2 with a byte-level BPE
tokenizer trained on the fixture texts, saved where `Assistant.load` finds the fine-tuned model.
A scratch tokenizer is also saved as the 'base' (`bases.load_scratch`), so both model choices load.
Everything is built once per folder: calling again with the same root reuses it.

For a subprocess (CLI, `streamlit run`), point it at the artifacts with `tiny_env(settings)`.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from assistant.settings import Sampling, Settings

log = logging.getLogger(__name__)

TINY_WINDOW = 512  # positions of the tiny model: small enough that prompts must be budgeted
_BUILD_LOCK = threading.Lock()


CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def with_chat_template(tokenizer: Any) -> Any:
    """A copy of a plain test tokenizer that speaks ChatML, like SmolLM2's, for the chat-template code paths."""
    import copy

    tok = copy.deepcopy(tokenizer)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.eos_token = "<|im_end|>"
    tok.chat_template = CHATML
    return tok


def tiny_settings(root: Path) -> Settings:
    root = Path(root)
    # Guidance off unless a test turns it on: tests of other things should not depend on its default.
    return Settings(index_dir=root / "index", models_dir=root / "models", chats_db=root / "chats.sqlite",
                    reports_dir=root / "reports", data_dir=root / "data", base_model="scratch",
                    sampling=Sampling(guidance=1.0))


def tiny_env(settings: Settings) -> dict[str, str]:
    """Environment variables that make a child process load the same tiny artifacts."""
    return {"MRA_INDEX_DIR": str(settings.index_dir), "MRA_MODELS_DIR": str(settings.models_dir),
            "MRA_CHATS_DB": str(settings.chats_db), "MRA_DATA_DIR": str(settings.data_dir),
            "MRA_REPORTS_DIR": str(settings.reports_dir), "MRA_BASE_MODEL": settings.base_model,
            "MRA_SAMPLING__GUIDANCE": str(settings.sampling.guidance),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def build_tiny_store(settings: Settings, embeddings: Any = None) -> None:
    from assistant.data.ingestion import ingest
    from tests.fixtures_data import write_rt_fixtures

    if (settings.index_dir / "CURRENT").exists():
        return
    write_rt_fixtures(settings.data_dir)
    if embeddings is None:
        from assistant.data.embeddings import make_embeddings

        embeddings = make_embeddings(settings)
    ingest([settings.data_dir], settings, embeddings=embeddings, show_bar=False)


def _corpus(settings: Settings) -> list[str]:
    """Fixture reviews plus the prompt template's own words, so prompts tokenize into few tokens."""
    from assistant.data.store import ReviewStore
    from assistant.model.prompts import ReviewRequest, build_prompt, format_context_item

    store = ReviewStore.open(settings, check=False)
    texts = [d.page_content for d in store.iter_documents(kind=None)]
    items = [format_context_item(d.metadata, d.page_content) for d in store.iter_documents(kind=None)]

    class _Plain:  # build_prompt only asks a tokenizer whether it has a chat template
        chat_template = None

    for sentiment in ("positive", "negative"):
        for movie in ("Toy Story", "The Matrix", "Gigli", None):
            texts.append(build_prompt(ReviewRequest(sentiment, movie, "the plot", items[:3]), _Plain()))
    return texts * 3  # BPE merges need words seen at least twice


def build_tiny_model(settings: Settings, seed: int = 0) -> Path:
    import torch

    from assistant.model import scratch
    from assistant.model.bases import base_cache_dir, tuned_dir
    from assistant.model.card import CARD_JSON

    out = tuned_dir(settings)
    if (out / "config.json").exists() and any(out.glob("*.safetensors")):
        return out
    tokenizer = scratch.train_tokenizer(_corpus(settings), vocab_size=1024)
    torch.manual_seed(seed)
    config = scratch.ScratchConfig(vocab_size=len(tokenizer), n_layer=2, n_head=2, n_embd=64,
                                   n_positions=TINY_WINDOW)
    model = scratch.build_model(tokenizer, config)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    card = {"base": "scratch", "method": "full", "params": sum(p.numel() for p in model.parameters()),
            "note": "tiny random-weights model for tests"}
    (out / CARD_JSON).write_text(json.dumps(card, indent=2))
    tokenizer.save_pretrained(str(base_cache_dir(settings, "scratch")))  # lets load_base("scratch") work
    return out


def build_tiny_artifacts(root: Path, embeddings: Any = None) -> Settings:
    """Store + tiny 'tuned' model (+ scratch base) under root; idempotent and safe to call from several tests."""
    settings = tiny_settings(root)
    with _BUILD_LOCK:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        build_tiny_store(settings, embeddings)
        build_tiny_model(settings)
    return settings


def tiny_assistant(settings: Settings, embeddings: Any = None, chats_db: Path | None = None) -> Any:
    """An Assistant over the tiny artifacts, with its own chat database when given one."""
    from assistant.chat.assistant import Assistant

    if chats_db is not None:
        settings = settings.model_copy(update={"chats_db": chats_db})
    return Assistant.load(settings, embeddings=embeddings)


def with_probe(settings: Settings, root: Path, embeddings: Any = None) -> Settings:
    """A copy of the tiny models under root with a real sentiment probe beside the tuned model, trained on the
    tiny store's vectors as fine-tuning does; the shared artifacts stay without one."""
    import shutil

    from assistant.data.store import ReviewStore
    from assistant.model.bases import tuned_dir
    from assistant.model.sentiment_probe import BASENAME, SentimentProbe

    probed = settings.model_copy(update={"models_dir": Path(root) / "models"})
    shutil.copytree(settings.models_dir, probed.models_dir)
    store = ReviewStore.open(settings, embeddings, check=False)
    docs = [d for d in store.iter_documents() if d.metadata.get("sentiment") in ("positive", "negative")]
    vectors = store.vectors_for([d.metadata["doc_id"] for d in docs])
    SentimentProbe.train(vectors, [d.metadata["sentiment"] for d in docs]).save(tuned_dir(probed) / BASENAME)
    return probed


def store_exchange(assistant: Any, session_id: str, user_text: str, reply_text: str,
                   meta: dict[str, Any] | None = None, owner: str = "cli") -> None:
    """One exchange written into a session as the chat graph keeps it (LangGraph's `update_state`), word for
    word: for tests of stored text that no turn today would produce (written before a cleaning step existed)."""
    from langchain_core.messages import AIMessage, HumanMessage

    messages = [HumanMessage(user_text), AIMessage(reply_text, additional_kwargs=dict(meta or {}))]
    assistant.graph.update_state({"configurable": {"thread_id": session_id}}, {"messages": messages},
                                 as_node="remember")
    stored = len(assistant.memory.recent(session_id, owner, 10**6))
    assistant.memory.record_turn(session_id, owner, user_text, stored)


class StubProbe:
    """Stands in for the embedding sentiment probe: P(positive) is a fixed, arbitrary function of the text
    (drafts from the random tiny model carry no sentiment a real probe could read)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], object]] = []

    @staticmethod
    def score(text: str) -> float:
        return (sum(map(ord, text)) % 997) / 997

    def score_texts(self, texts, embeddings):
        self.calls.append((list(texts), embeddings))
        return [self.score(t) for t in texts]


# ---- pytest fixtures: `from tests.tiny import tiny_artifacts, tiny_loaded` in a test module ---------------------

try:
    import pytest
except ImportError:  # imported outside a test run (a UI or evaluation script)
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def tiny_artifacts(tmp_path_factory: Any, embeddings: Any) -> Settings:
        """Built once per test run (every module importing this fixture shares the same folder)."""
        return build_tiny_artifacts(tmp_path_factory.getbasetemp() / "tiny-artifacts", embeddings)

    @pytest.fixture(scope="session")
    def tiny_loaded(tiny_artifacts: Settings, embeddings: Any) -> Any:
        """Assistant.load over the tiny artifacts; tests share it, each with its own session ids."""
        return tiny_assistant(tiny_artifacts, embeddings)

    @pytest.fixture
    def tiny_chat(tiny_loaded: Any, tmp_path: Path) -> Any:
        """The loaded tiny assistant's store and models, with a chat database of this test's own."""
        from assistant.chat.assistant import Assistant
        from assistant.chat.memory import ChatMemory

        memory = ChatMemory(tmp_path / "chats.sqlite")
        yield Assistant(tiny_loaded.settings.model_copy(update={"chats_db": memory.path}), store=tiny_loaded.store,
                        titles=tiny_loaded.titles, memory=memory, draft_words=tiny_loaded.draft_words,
                        generators={"tuned": tiny_loaded.generator("tuned"), "base": None})
        memory.close()


def build_tiny_adapter(settings: Settings, root: Path) -> tuple[Path, Path]:
    """(base, generation): a tiny base (the tiny model's weights and tokenizer) and, in a tuned home's live
    generation laid out as `save_tuned` writes one, a LoRA adapter for it with non-zero weights, its card naming
    the base by path, a stand-in probe file and the merged model (which shipping must leave behind)."""
    import shutil

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from assistant.model.bases import tuned_dir

    base = Path(root) / "tiny-base"
    shutil.copytree(tuned_dir(settings), base)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], init_lora_weights=False))
    generation = Path(root) / "tuned" / "gen-000001"
    model.save_pretrained(str(generation / "adapter"), safe_serialization=True)
    model.merge_and_unload().save_pretrained(str(generation))
    tokenizer.save_pretrained(str(generation))
    (generation / "model_card.json").write_text(json.dumps({"base": str(base), "method": "lora",
                                                            "train_minutes": 1.5, "train_examples": 40}))
    (generation / "sentiment_probe.json").write_text("{}")
    (generation.parent / "CURRENT").write_text(generation.name)  # live, as `generations.publish` leaves it
    return base, generation
