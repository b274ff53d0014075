"""The shipped adapter on its base: checked, then merged in memory, so it writes as fast as a saved tuned model.

    model, tokenizer, card = load_shipped(settings)        # ShippedAdapterError (one line) when unusable
    check_adapter(model, tokenizer, folder)                # the checks alone (a model on the meta device will do)

peft alone would load an adapter whose tensors do not all match its base with a warning and leave the missing
ones at zero (the base model, silently): every key and shape is compared here first.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from assistant.model.shipped import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    TOKENIZER_CHECK,
    ShippedAdapterError,
    base_matches,
    read_card,
    shipped_dir,
)

log = logging.getLogger(__name__)


def check_tokenizer(tokenizer: Any, folder: Path) -> None:
    """ShippedAdapterError unless the base's tokenizer is the one the adapter was trained with."""
    from assistant.model.shipped.ship import tokenizer_fingerprint

    try:
        expected = json.loads((folder / TOKENIZER_CHECK).read_text())
    except (OSError, ValueError) as exc:
        raise ShippedAdapterError(f"{TOKENIZER_CHECK} is unreadable ({str(exc).splitlines()[0]})") from None
    actual = tokenizer_fingerprint(tokenizer)
    for key in ("vocab_size", "vocab_sha256", "eos_token", "samples"):
        if expected.get(key) != actual[key]:
            shown = f" ({expected.get(key)} trained, {actual[key]} now)" if key in ("vocab_size", "eos_token") else ""
            raise ShippedAdapterError(f"the base's tokenizer differs from the adapter's: {key}{shown}")


def _lora_config(folder: Path) -> Any:
    from peft import LoraConfig

    try:
        raw = json.loads((folder / ADAPTER_CONFIG).read_text())
        if not isinstance(raw, dict) or str(raw.get("peft_type", "")).upper() != "LORA":
            raise ValueError("not a LoRA adapter config")
        known = set(LoraConfig.__dataclass_fields__)
        return LoraConfig(**{k: v for k, v in raw.items() if k in known})
    except (OSError, ValueError, TypeError) as exc:
        raise ShippedAdapterError(f"{ADAPTER_CONFIG} is unusable ({str(exc).splitlines()[0]})") from None


def _file_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as weights:
            return {key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()}
    except (OSError, SafetensorError, ValueError) as exc:
        raise ShippedAdapterError(f"{path.name} is not a readable safetensors file "
                                  f"({str(exc).splitlines()[0] or type(exc).__name__})") from None


def check_adapter(model: Any, tokenizer: Any, folder: Path | None = None) -> Any:
    """`model` wrapped with the adapter's (untrained) LoRA layers, once its target modules exist in the model,
    every tensor of the file has the key and shape the model expects, and the tokenizer is the adapter's; the
    first failure as a one-line ShippedAdapterError. `model` is changed in place."""
    from peft import get_peft_model
    from peft.utils import get_peft_model_state_dict

    folder = Path(folder or shipped_dir())
    check_tokenizer(tokenizer, folder)
    config = _lora_config(folder)
    try:
        wrapped = get_peft_model(model, config)
    except (ValueError, TypeError, RuntimeError) as exc:  # peft: "Target modules {...} not found in the base model"
        raise ShippedAdapterError(f"the adapter does not fit the base ({str(exc).splitlines()[0]})") from None
    expected = {key: tuple(t.shape) for key, t in get_peft_model_state_dict(wrapped).items()}
    found = _file_shapes(folder / ADAPTER_WEIGHTS)
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or unexpected:
        raise ShippedAdapterError(f"the adapter's tensors do not match the base: {len(missing)} missing "
                                  f"({', '.join(missing[:2])}), {len(unexpected)} unexpected "
                                  f"({', '.join(unexpected[:2])})")
    wrong = [(k, found[k], expected[k]) for k in sorted(expected) if found[k] != expected[k]]
    if wrong:
        key, got, want = wrong[0]
        raise ShippedAdapterError(f"the adapter's tensors do not match the base: {len(wrong)} of another shape, "
                                  f"e.g. {key} is {list(got)}, the base needs {list(want)}")
    return wrapped


def load_shipped(settings: Any, *, device: str | None = None,
                 folder: Path | None = None) -> tuple[Any, Any, dict[str, Any]]:
    """The shipped adapter merged into its base (float32, ready for `chat_generator`), the tokenizer and the
    model card; ShippedAdapterError with one line when the files are missing or corrupt, or do not fit the base."""
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    from assistant.data.embeddings import torch_threads
    from assistant.model.bases import BaseModelError, load_base

    folder = Path(folder or shipped_dir())
    card = read_card(folder)
    if not base_matches(card, settings):
        raise ShippedAdapterError(f"the shipped adapter is for {card['base']}, but base_model is "
                                  f"{settings.base_model}")
    try:
        model, tokenizer, _ = load_base(card["base"], settings, device=device)
    except BaseModelError as exc:
        raise ShippedAdapterError(f"its base {card['base']} cannot be loaded ({exc})") from None
    wrapped = check_adapter(model, tokenizer, folder)
    try:
        weights = load_file(str(folder / ADAPTER_WEIGHTS), device=str(next(model.parameters()).device))
        set_peft_model_state_dict(wrapped, weights)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ShippedAdapterError(f"{ADAPTER_WEIGHTS} could not be loaded ({str(exc).splitlines()[0]})") from None
    # 240 small products (rank 16 on SmolLM2's attention), each too small to share: on the shared 2-core machine
    # under load the merge took 1.6-1.8 s on one thread and 19-20 s on two (every op waits for both threads).
    with torch_threads(1):
        merged = wrapped.merge_and_unload().eval()
    log.info("loaded the shipped fine-tuned model: %s + LoRA from %s", card["base"], folder)
    return merged, tokenizer, card
