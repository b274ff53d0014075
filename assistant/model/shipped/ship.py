"""Copy a trained LoRA adapter into the shipped folder: `python -m assistant.finetune --ship-only [--out HOME]`.

Only what the app needs to rebuild the model from its base goes in (the adapter, never the merged model), so
the folder stays small enough for git. Files are written to a sibling folder and swapped in one at a time by
rename, each whole: the page reading the old adapter meanwhile never sees half a file.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from assistant.model.shipped import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    CARD_JSON,
    CARD_MD,
    MAX_BYTES,
    RETRAIN_COMMAND,
    TOKENIZER_CHECK,
    ShippedAdapterError,
    shipped_dir,
)

log = logging.getLogger(__name__)

PROBE_FILES = ("sentiment_probe.json", "sentiment_probe.npz")
# Texts whose token ids must come out the same: words, names, punctuation, the chat markers of SmolLM2.
SAMPLE_TEXTS = ("Write a negative review of Jaws.", "Spielberg's shark thriller, 1975 - \"a summer classic\"!",
                "<|im_start|>assistant\nA tense, funny ride.<|im_end|>")


def tokenizer_fingerprint(tokenizer: Any) -> dict[str, Any]:
    """What must be equal between the tokenizer an adapter was trained with and the base's tokenizer now."""
    vocab = sorted(tokenizer.get_vocab().items())
    return {"vocab_size": len(vocab),
            "vocab_sha256": hashlib.sha256(json.dumps(vocab, ensure_ascii=True).encode()).hexdigest(),
            "eos_token": tokenizer.eos_token,
            "samples": [{"text": t, "ids": list(tokenizer(t, add_special_tokens=False)["input_ids"])}
                        for t in SAMPLE_TEXTS]}


def ship(model_dir: Path, target: Path | None = None) -> Path:
    """Copy the adapter, tokenizer check, sentiment probe and model card of the tuned model in `model_dir` (a
    generation folder: `tuned_layout.live_model_dir`) into `target` (default: the shipped folder).

    ShippedAdapterError (one line) when `model_dir` holds no LoRA adapter in safetensors, or the files would
    exceed MAX_BYTES; nothing in `target` changes then."""
    from transformers import AutoTokenizer

    model_dir, target = Path(model_dir), Path(target or shipped_dir())
    adapter = model_dir / "adapter"
    if not (adapter / ADAPTER_WEIGHTS).is_file() or not (adapter / ADAPTER_CONFIG).is_file():
        raise ShippedAdapterError(f"{model_dir} holds no LoRA adapter (adapter/{ADAPTER_WEIGHTS}); only a LoRA "
                                  "fine-tune can be shipped (not --full)")
    if not (model_dir / CARD_JSON).is_file():
        raise ShippedAdapterError(f"{model_dir} holds no {CARD_JSON}")
    card = json.loads((model_dir / CARD_JSON).read_text())
    config = json.loads((adapter / ADAPTER_CONFIG).read_text())
    config["base_model_name_or_path"] = card.get("base")  # the trainer's own path means nothing elsewhere
    # paths on the trainer's machine mean nothing in a clone: the base by its name, the model by its generation
    card["base_source"] = card.get("base")
    card["shipped"] = {"from": model_dir.name, "retrain": RETRAIN_COMMAND}
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    texts = {ADAPTER_CONFIG: json.dumps(config, indent=2), CARD_JSON: json.dumps(card, indent=2, default=str),
             TOKENIZER_CHECK: json.dumps(tokenizer_fingerprint(tokenizer), indent=2)}
    copies = {ADAPTER_WEIGHTS: adapter / ADAPTER_WEIGHTS,
              **{name: model_dir / name for name in (CARD_MD, *PROBE_FILES) if (model_dir / name).is_file()}}
    size = sum(len(t.encode()) for t in texts.values()) + sum(p.stat().st_size for p in copies.values())
    if size > MAX_BYTES:
        raise ShippedAdapterError(f"the adapter's files take {size / 2**20:.1f} MB, over the {MAX_BYTES / 2**20:.0f} "
                                  "MB git carries well: train a smaller rank (--lora-r) or fewer targets")
    staging = target.with_name(f".{target.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for name, text in texts.items():
            (staging / name).write_text(text + "\n")
        for name, source in copies.items():
            shutil.copy2(source, staging / name)
        target.mkdir(parents=True, exist_ok=True)
        for stale in PROBE_FILES + (CARD_MD,):  # an older model's probe or card must not outlive it
            if stale not in copies and (target / stale).exists():
                (target / stale).unlink()
        for name in [*texts, *copies]:
            os.replace(staging / name, target / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("shipped the adapter of %s to %s (%.1f MB)", model_dir, target, size / 2**20)
    return target
