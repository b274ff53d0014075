"""Where the fine-tuned model lives: `models_dir/tuned/`, whole versions switched by a pointer file.

    tuned/CURRENT           name of the live model generation (`assistant.data.generations`)
    tuned/gen-000002/       config.json, model.safetensors, adapter/, tokenizer, generation config, card, probe, judge
    tuned/checkpoint/       the fine-tune's resumable state (examples, trainable weights, optimizer)
    tuned/next-probe/       the sentiment probe prepared for the next model, copied into it when it is saved
    tuned/.write.lock       held by the one fine-tune at a time (`assistant.data.locks`)

A fine-tune writes the new model into a folder of its own and switches the pointer only once it is complete, so
a reader (the page) never loads half a model, and a killed fine-tune leaves the previous one live. A model saved
before generations existed sits directly in `tuned/` and keeps loading until a newer one is saved. No torch
here: the page's first paint reads this.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.data import generations
from assistant.data.locks import LOCK_NAME, WriterLock

TUNED_DIRNAME = "tuned"
NEXT_PROBE_DIRNAME = "next-probe"
CHECKPOINT_DIRNAME = "checkpoint"  # the training loop's resumable state
# Signs that a folder holds this program's models: a pointer, a model of the old layout, a fine-tune's state.
_OURS = (generations.POINTER, "config.json", LOCK_NAME, f"{CHECKPOINT_DIRNAME}/state.json",
         f"{CHECKPOINT_DIRNAME}/examples.jsonl", NEXT_PROBE_DIRNAME)


def tuned_home(settings: Any) -> Path:
    """The folder that holds the tuned model's generations, pointer, checkpoint and lock."""
    return Path(settings.models_dir) / TUNED_DIRNAME


def is_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def live_model_dir(home: Path) -> Path | None:
    """The live model folder under `home`: its current generation, or a model saved directly in it (the layout
    before generations), or None when there is no model yet. A model folder itself resolves to itself."""
    home = Path(home)
    live = generations.current(home)
    if live is not None:
        return live
    return home if is_complete(home) else None


def tuned_dir(settings: Any) -> Path:
    """The live tuned model's folder (where the chat, the card and the evaluation read it); the home when none."""
    home = tuned_home(settings)
    return live_model_dir(home) or home


def check_home(home: Path) -> None:
    """ValueError (one line) for a folder that is someone else's: a fine-tune replaces `checkpoint/` in its home
    and cleans its generations, so `--out` must name a new or empty folder, or one it wrote before."""
    home = Path(home)
    if not home.is_dir() or not any(home.iterdir()) or any((home / sign).exists() for sign in _OURS):
        return
    raise ValueError(f"{home} holds files this program did not write; give --out a new or empty folder")


def model_lock(home: Path, settings: Any, **kwargs: Any) -> WriterLock:
    """The tuned model's writer lock; a second fine-tune waits `settings.writer_wait_s` for it (kwargs override)."""
    return WriterLock(home, "The tuned model", **{"wait": settings.writer_wait_s, **kwargs})
