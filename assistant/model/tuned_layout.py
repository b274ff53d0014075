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

from assistant.data import generations, locks
from assistant.data.locks import WriterLock

TUNED_DIRNAME = "tuned"
NEXT_PROBE_DIRNAME = "next-probe"
CHECKPOINT_DIRNAME = "checkpoint"  # the training loop's resumable state


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


def check_home(home: Path, default: Path | None = None) -> None:
    """ValueError (one line) for a folder that is someone else's: a fine-tune replaces `checkpoint/` in its home
    and cleans its generations, so `--out` must name a new or empty folder, or one carrying this program's home
    marker (`generations.claim_home`; a home made before the marker: its pointer naming a generation of ours).
    A folder with a `config.json` (every Hugging Face model folder has one) is not ours for that. The settings'
    own home (``default``, read from the settings when not given) may hold a model of the old layout."""
    home = Path(home)
    if default is None:
        from assistant.settings import (
            get_settings,  # late: the page's first paint imports this module
        )

        default = tuned_home(get_settings())
    own = home.resolve() == Path(default).resolve()
    generations.claim_home(home, "--out", exclusive=not own)


def model_lock(home: Path, **kwargs: Any) -> WriterLock:
    """The tuned model's writer lock; a second fine-tune waits `locks.WRITER_WAIT_S` for it (kwargs override)."""
    return WriterLock(home, "The tuned model", **{"wait": locks.WRITER_WAIT_S, **kwargs})
