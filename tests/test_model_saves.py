"""The tuned model is saved whole or not at all, by one fine-tune at a time, from safetensors only."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from assistant import settings as settings_module
from assistant.data import generations, locks
from assistant.finetune import main as finetune_main
from assistant.model.bases import BaseModelError, load_local, load_tuned
from assistant.model.scratch import TINY, build_model, train_tokenizer
from assistant.model.tuned_layout import (
    live_model_dir,
    model_lock,
    tuned_dir,
    tuned_home,
)
from assistant.settings import Settings
from assistant.training.finetune import merge_adapter, save_tuned
from ui.runtime import probe

REPO = Path(__file__).resolve().parent.parent
IDS = torch.tensor([[5, 6, 7, 8, 9]])

# Run in a child process: re-save the live model with other weights, and die (kill -9) at the moment between
# writing the new folder and switching the pointer.
KILLED_SAVE = """
import os, signal, sys, torch
from pathlib import Path
from assistant.data import generations
from assistant.model.bases import load_tuned
from assistant.settings import Settings
from assistant.training.finetune import save_tuned

settings = Settings(models_dir=Path(sys.argv[1]), device="cpu")
model, tokenizer, card = load_tuned(settings)
with torch.no_grad():
    for p in model.parameters():
        p.add_(1.0)

def killed(home, name):
    print("killed before switching to", name, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

generations._switch_pointer = killed
save_tuned(model, tokenizer, Path(sys.argv[1]) / "tuned", {**card, "run": "killed"})
"""


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(["A warm, witty delight.", "A dull and lifeless mess."] * 20, vocab_size=300)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(models_dir=tmp_path / "models", index_dir=tmp_path / "index", device="cpu")


def tiny_model(tokenizer, seed: int):
    torch.manual_seed(seed)
    return build_model(tokenizer, TINY)


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits


def test_a_fine_tune_killed_before_the_switch_leaves_the_previous_model_live(settings, tokenizer):
    first, folder = save_tuned(tiny_model(tokenizer, 1), tokenizer, tuned_home(settings), {"run": "first"})
    before = probe(settings)
    assert folder == tuned_dir(settings) and before.has_tuned
    killed = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(settings.models_dir)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9 and "killed before switching" in killed.stdout, killed.stderr[-2000:]
    orphans = [p for p in tuned_home(settings).iterdir() if p.name.startswith("gen-") and p != folder]
    assert len(orphans) == 1 and (orphans[0] / "model.safetensors").exists(), "the new model was written whole"
    assert probe(settings) == before, "the page sees no new model"
    model, _, card = load_tuned(settings)
    assert card["run"] == "first" and torch.allclose(logits(model), logits(first))

    _, newer = save_tuned(tiny_model(tokenizer, 2), tokenizer, tuned_home(settings), {"run": "third"})
    assert load_tuned(settings)[2]["run"] == "third" and probe(settings) != before
    left = sorted(p.name for p in tuned_home(settings).iterdir() if p.is_dir())
    assert left == sorted([folder.name, newer.name]), "the orphan is cleaned; the replaced model stays a while"


def test_a_model_saved_before_generations_keeps_loading_until_a_newer_one(settings, tokenizer):
    old = tiny_model(tokenizer, 3)
    home = tuned_home(settings)
    old.save_pretrained(home)  # the old layout: the model directly in models_dir/tuned
    tokenizer.save_pretrained(home)
    (home / "model_card.json").write_text(json.dumps({"run": "old layout"}))
    assert live_model_dir(home) == home and probe(settings).has_tuned
    assert load_tuned(settings)[2]["run"] == "old layout"
    save_tuned(tiny_model(tokenizer, 4), tokenizer, home, {"run": "new"})
    assert load_tuned(settings)[2]["run"] == "new" and tuned_dir(settings).name.startswith("gen-")


def test_a_second_fine_tune_fails_with_one_line_naming_the_first(settings, capsys, monkeypatch):
    monkeypatch.setenv("MRA_MODELS_DIR", str(settings.models_dir))
    monkeypatch.setattr(locks, "WRITER_WAIT_S", 0)
    settings_module.get_settings.cache_clear()
    try:
        with model_lock(tuned_home(settings)):
            code = finetune_main(["--base", "scratch", "--max-steps", "1"])
    finally:
        settings_module.get_settings.cache_clear()
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err, err
    assert err.startswith("error: The tuned model at") and f"pid {os.getpid()} (" in err and " since " in err


def test_pickled_weights_are_refused_not_unpickled(tmp_path, tokenizer, monkeypatch, settings):
    pickled = tmp_path / "pickled"
    tiny_model(tokenizer, 5).save_pretrained(pickled)
    tokenizer.save_pretrained(pickled)
    (pickled / "model.safetensors").rename(pickled / "weights.bin")
    torch.save({"not": "weights"}, pickled / "pytorch_model.bin")  # what a swapped-in pickle looks like

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load was called on a model file")

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(BaseModelError, match="cannot load"):
        load_local(pickled, "cpu")
    assert load_tuned(settings, path=pickled) is None
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "training_card.json").write_text(json.dumps({"base": "scratch"}))
    (adapter / "adapter_model.bin").write_bytes(b"pickle")
    with pytest.raises(ValueError, match="no adapter_model.safetensors"):
        merge_adapter(adapter, settings, tuned_home(settings), "cpu")
    assert generations.current(tuned_home(settings)) is None


def test_out_on_a_users_folder_is_refused_and_left_alone(tmp_path, capsys):
    folder = tmp_path / "my-project"
    (folder / "checkpoint").mkdir(parents=True)  # a fine-tune would replace checkpoint/ with its own
    (folder / "checkpoint" / "notes.txt").write_text("mine")
    assert finetune_main(["--out", str(folder), "--restart", "--max-steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "holds files this program did not write" in err
    assert (folder / "checkpoint" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint"]


def test_out_on_a_hugging_face_model_folder_is_refused_and_its_checkpoint_kept(tmp_path, capsys):
    """Every Hugging Face model folder has a config.json: that is no sign the folder is ours."""
    folder = tmp_path / "my-model"
    (folder / "checkpoint").mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "checkpoint" / "weights.bin").write_bytes(b"mine")
    assert finetune_main(["--out", str(folder), "--restart", "--max-steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "holds files this program did not write" in err, err
    assert (folder / "checkpoint" / "weights.bin").read_bytes() == b"mine"
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint", "config.json"]


def test_a_home_this_program_made_is_claimed_and_a_new_folder_marked(tmp_path):
    from assistant.model.tuned_layout import check_home

    new = tmp_path / "new"
    check_home(new, default=tmp_path / "elsewhere")
    assert generations.marker(new, generations.HOME_MARKER) is not None
    made_before_the_marker = tmp_path / "older"
    generations.publish(generations.start_building(made_before_the_marker), made_before_the_marker)
    (made_before_the_marker / "checkpoint").mkdir()
    check_home(made_before_the_marker, default=tmp_path / "elsewhere")  # its pointer names a generation of ours
    own = tmp_path / "own"
    own.mkdir()
    (own / "config.json").write_text("{}")  # the old layout, in the settings' own home
    check_home(own, default=own)


@pytest.mark.parametrize("card, base", [
    ([], None),  # no card at all: the chat must still start
    ("just text", None),
    ({"base": ["not", "text"]}, None),
    ({"base": "/etc", "method": "lora"}, None),  # a folder that is not ours: never loaded as the base
    ({"base": "smollm2-135m", "method": "lora"}, "smollm2-135m"),
])
def test_a_hand_edited_card_cannot_break_loading_nor_name_any_folder_as_the_base(settings, tokenizer, card, base):
    _, folder = save_tuned(tiny_model(tokenizer, 5), tokenizer, tuned_home(settings), {"run": "x"})
    (folder / "model_card.json").write_text(json.dumps(card))
    _, _, loaded = load_tuned(settings)
    assert isinstance(loaded, dict) and loaded.get("base") == base
    ours = settings.models_dir / "base-smollm2-135m"
    (folder / "model_card.json").write_text(json.dumps({"base": str(ours)}))
    assert load_tuned(settings)[2]["base"] == str(ours), "a base folder of this program's is kept"
