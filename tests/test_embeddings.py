"""The embedding model's precision, and the pipeline's chunking shortcut."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.data import embeddings as embeddings_module
from assistant.data.embeddings import make_embeddings, native_bfloat16, torch_threads
from assistant.data.ingestion import to_chunks
from assistant.data.records import Review
from assistant.settings import Settings

TEXTS = ["A wonderful film, warm and funny.", "Dull, cold and far too long.", "The plot of Toy Story",
         "Woody and Buzz are the heart of it; the jokes land for children and parents alike."]


def test_bfloat16_vectors_keep_the_float32_neighbours(embeddings, monkeypatch):
    assert embeddings.bfloat16 == native_bfloat16()  # the default asks for bfloat16 where it is native
    fast = np.asarray(embeddings.embed_documents(TEXTS))
    exact = make_embeddings(Settings(embedding_precision="float32"))
    assert not exact.bfloat16
    reference = np.asarray(exact.embed_documents(TEXTS))
    assert (fast * reference).sum(1).min() > 0.999
    assert np.array_equal(np.argsort(-(fast @ fast.T), 1), np.argsort(-(reference @ reference.T), 1))
    query = np.asarray(embeddings.embed_query(TEXTS[0]))
    assert float(query @ reference[0]) > 0.999

    monkeypatch.setattr(embeddings_module, "native_bfloat16", lambda: False)
    assert not make_embeddings(Settings()).bfloat16  # emulated bfloat16 would be slower: float32 instead


def test_torch_threads_are_set_for_a_while_and_restored():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_short_texts_are_one_chunk_as_the_splitter_would_make_them():
    splitter = RecursiveCharacterTextSplitter(chunk_size=60, chunk_overlap=10)
    texts = ["  Short and sweet.  ", "word " * 40, "x" * 60, "   "]
    records = [Review(text=t, sentiment="positive", movie="Up", source="test") for t in texts]
    chunks = to_chunks(records, splitter)
    expected = [piece for t in texts for piece in splitter.split_text(t)]
    assert [c.page_content for c in chunks] == expected and len(chunks) > len(texts) - 1
    assert [c.metadata["chunk"] for c in chunks if c.id.startswith(records[1].doc_id)] == list(
        range(len(splitter.split_text(texts[1]))))


def test_the_embedding_stage_uses_every_core_even_from_a_one_thread_server_thread(tmp_path):
    """The page builds the index in a thread of the chat server, which may have left torch at one thread."""
    import os
    import threading

    from langchain_core.embeddings import Embeddings

    from assistant.data.ingestion import embed_into
    from assistant.data.store_writer import StoreWriter

    class Recording(Embeddings):
        threads: list[int] = []

        def embed_documents(self, texts):
            self.threads.append(torch.get_num_threads())
            return [[1.0, 0.0]] * len(texts)

        def embed_query(self, text):
            return [1.0, 0.0]

    records = [Review(text=t, sentiment="positive", source="test") for t in TEXTS]
    chunks = to_chunks(records, RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=0))
    seen: list[int] = []

    def build() -> None:
        torch.set_num_threads(1)
        writer = StoreWriter(Settings(index_dir=tmp_path / "index"), 2, rebuild=True)
        embed_into(writer, chunks, Recording(), None, False)
        writer.abort()
        seen.append(torch.get_num_threads())

    worker = threading.Thread(target=build)
    worker.start()
    worker.join()
    assert Recording.threads == [os.cpu_count()] and seen == [1]  # every core while embedding, then as it was


def test_token_order_gives_embed_documents_vectors_in_the_callers_order(embeddings, monkeypatch):
    """The index build's batching (by token count, tokenized once) changes the padding, not the vectors."""
    texts = TEXTS + ["Short.", "line one\nline two of a much longer review, with several clauses, " * 3, "Ok"]
    monkeypatch.setitem(embeddings.encode_kwargs, "batch_size", 2)  # several batches of different widths
    shapes: list[tuple[int, int]] = []
    model = embeddings._client
    hook = model.register_forward_pre_hook(lambda _, args: shapes.append(tuple(args[0]["input_ids"].shape)))
    try:
        fast = embeddings.embed_in_token_order(texts)
    finally:
        hook.remove()
    reference = np.asarray(embeddings.embed_documents(texts))
    assert fast.dtype == np.float32 and fast.shape == reference.shape
    assert (fast * reference).sum(1).min() > 0.9999  # bfloat16 noise from another padding at most
    ids = model.tokenizer([t.replace("\n", " ") for t in texts])["input_ids"]
    tokens = sorted(map(len, ids), reverse=True)
    assert shapes == [(len(tokens[i : i + 2]), tokens[i]) for i in range(0, len(texts), 2)]  # each cut to its longest

    exact = make_embeddings(Settings(embedding_precision="float32"))
    assert np.allclose(exact.embed_in_token_order(texts), np.asarray(exact.embed_documents(texts)), atol=1e-5)


def test_a_model_that_cannot_be_loaded_is_named_in_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = tmp_path / "no-such-model"
    with pytest.raises(OSError) as info:
        make_embeddings(Settings(embedding_model=str(missing)))
    message = str(info.value)
    assert message.startswith(f"embedding model '{missing}' could not be loaded: ") and "\n" not in message
