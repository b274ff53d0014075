"""The fine-tuned model that ships with the project: a LoRA adapter for SmolLM2-135M-Instruct, in this folder.

    from assistant.model.shipped import shipped_dir, applies_to
    from assistant.model.shipped.adapter import load_shipped     # base + adapter, merged (torch)
    python -m assistant.finetune --ship-only                     # copy the live tuned model's adapter here

What lives here (package data, <= 20 MB in all; `ship.py` writes it):

    adapter_model.safetensors   the LoRA weights (safetensors only: nothing here is ever unpickled)
    adapter_config.json         peft's LoraConfig: rank, target modules
    tokenizer_check.json        the tokenizer the adapter was trained with, fingerprinted (vocabulary, samples)
    sentiment_probe.{json,npz}  the embedding probe that ranks drafts
    model_card.{json,md}        how it was trained and what it scored

The app merges it into its base in memory whenever the user has no fine-tune of their own (or asks for this one:
`settings.tuned_model`). No torch here: the page's first paint asks `applies_to`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SHIPPED_DIR = Path(__file__).resolve().parent
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
TOKENIZER_CHECK = "tokenizer_check.json"
CARD_JSON = "model_card.json"  # the same names as beside a tuned model (assistant/model/card.py)
CARD_MD = "model_card.md"
REQUIRED = (ADAPTER_WEIGHTS, ADAPTER_CONFIG, TOKENIZER_CHECK, CARD_JSON)
MAX_BYTES = 20 * 1024 * 1024  # what git carries comfortably; a LoRA of rank 16 on the attention is about 7 MB
# The one command that retrains the shipped adapter and replaces it (docs/shipped-model.md).
RETRAIN_COMMAND = ("python -m assistant.finetune --base smollm2-135m --out var/models/shipped-run "
                   "--max-minutes 240 --eval-n 200 --ship")


class ShippedAdapterError(RuntimeError):
    """The shipped adapter cannot be used; the message is one line that says why."""


def shipped_dir() -> Path:
    """The folder read at start (a function, so tests can point it elsewhere with monkeypatch)."""
    return SHIPPED_DIR


def read_card(folder: Path | None = None) -> dict[str, Any]:
    """The shipped model card; ShippedAdapterError when the files are missing or the card is not a JSON object."""
    folder = Path(folder or shipped_dir())
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise ShippedAdapterError(f"no shipped adapter in {folder} (missing {', '.join(missing)})")
    try:
        card = json.loads((folder / CARD_JSON).read_text())
    except (OSError, ValueError) as exc:
        raise ShippedAdapterError(f"{folder / CARD_JSON} is unreadable ({str(exc).splitlines()[0]})") from None
    if not isinstance(card, dict) or not isinstance(card.get("base"), str):
        raise ShippedAdapterError(f"{folder / CARD_JSON} names no base model")
    return card


def applies_to(settings: Any, folder: Path | None = None) -> bool:
    """Whether the shipped adapter's files are here and its base is the configured one ('auto' is its base)."""
    try:
        card = read_card(folder)
    except ShippedAdapterError:
        return False
    return base_matches(card, settings)


def base_matches(card: dict[str, Any], settings: Any) -> bool:
    wanted = str(getattr(settings, "base_model", "auto") or "auto").strip()
    return wanted.lower() == "auto" or wanted == card.get("base")


def stamp(folder: Path | None = None) -> float | None:
    """When the shipped weights last changed (keys the page's model cache), or None when there are none."""
    try:
        return (Path(folder or shipped_dir()) / ADAPTER_WEIGHTS).stat().st_mtime
    except OSError:
        return None
