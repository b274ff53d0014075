"""The training loop: LoRA (or full) fine-tuning bounded by wall-clock minutes, with resumable checkpoints."""
from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from assistant.model.bases import BaseInfo
from assistant.model.card import CardError, read_card

# CHECKPOINT_DIRNAME is re-exported: finetune imports it from here.
from assistant.model.tuned_layout import CHECKPOINT_DIRNAME as CHECKPOINT_DIRNAME
from assistant.training.batches import Encoded, collate, lm_loss, make_batches

log = logging.getLogger(__name__)

LORA_TARGETS: dict[str, dict[str, list[str]]] = {
    "gpt2": {"attention": ["attn.c_attn", "attn.c_proj"], "all": ["c_attn", "c_proj", "c_fc"]},
    "llama": {"attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
              "all": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]},
}


@dataclass
class TrainConfig:
    max_minutes: float = 30.0
    max_steps: int | None = None
    max_epochs: int = 3
    lora: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: str = "attention"  # or "all"
    lr: float | None = None  # None: 6e-4 for LoRA, 5e-5 full, 1.5e-3 scratch
    weight_decay: float = 0.0
    warmup_steps: int = 10
    batch_tokens: int = 1536  # padded tokens per batch; length-bucketing keeps padding small
    max_len: int = 384  # critic quotes are short; context is trimmed to fit
    train_on_prompt: bool = False  # scratch models learn language from the whole text
    checkpoint_minutes: float = 5.0
    seed: int = 1234

    def peak_lr(self, scratch: bool) -> float:
        if self.lr is not None:
            return self.lr
        return 1.5e-3 if scratch else (6e-4 if self.lora else 5e-5)


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_pos: int = 0
    elapsed_s: float = 0.0
    tokens: int = 0
    target_tokens: int = 0
    losses: list[float] = field(default_factory=list)  # one per step, for the card and the loss-falls test

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.elapsed_s if self.elapsed_s else 0.0


# ---- model ---------------------------------------------------------------------------------

def add_lora(model: Any, family: str, config: TrainConfig) -> Any:
    """Wrap the base with LoRA adapters on attention (or all linear layers)."""
    from peft import LoraConfig, get_peft_model

    targets: Any = LORA_TARGETS.get(family, {}).get(config.lora_targets) or "all-linear"
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=targets, fan_in_fan_out=family == "gpt2", task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("LoRA r=%d on %s: %.2fM trainable parameters", config.lora_r, targets, trainable / 1e6)
    return model


def warm_start(model: Any, adapter_dir: Path) -> dict[str, Any]:
    """Start the LoRA weights from an earlier adapter of the same shape (continued training on new data).

    Returns the earlier run's training card (its minutes and tokens add to this run's)."""
    from peft import set_peft_model_state_dict

    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.exists():
        raise ValueError(f"{adapter_dir} holds no adapter_model.safetensors to start from")
    try:
        result = set_peft_model_state_dict(model, load_file(str(weights)))
    except RuntimeError as exc:  # tensor size mismatch: another rank
        raise ValueError(f"{adapter_dir} is an adapter of another shape (LoRA rank or targets differ)") from exc
    if getattr(result, "unexpected_keys", None):
        raise ValueError(f"{adapter_dir} is an adapter of another shape (LoRA rank or targets differ)")
    card_path = adapter_dir / "training_card.json"
    if not card_path.exists():
        card_path = adapter_dir.parent / "model_card.json"
    log.warning("LoRA weights start from %s", adapter_dir)
    try:
        return read_card(card_path)
    except CardError as exc:  # the weights are what warm-starts; a broken card only loses its history
        log.warning("%s", exc)
        return {}


def lr_at(state: TrainState, config: TrainConfig, peak: float, epoch_progress: float = 0.0) -> float:
    """Linear warmup, then cosine decay to 10% over whichever budget (time, steps, epochs) runs out first."""
    progress = state.elapsed_s / (config.max_minutes * 60) if config.max_minutes else 0.0
    progress = max(progress, epoch_progress)
    if config.max_steps:
        progress = max(progress, state.step / config.max_steps)
    warm = min(1.0, (state.step + 1) / max(1, config.warmup_steps))
    return peak * warm * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, progress))))


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    return {n: p.detach().contiguous().clone() for n, p in model.named_parameters() if p.requires_grad}


# ---- checkpoints -----------------------------------------------------------------------------

def run_fingerprint(info: BaseInfo, config: TrainConfig, n_examples: int) -> str:
    keep = {k: v for k, v in asdict(config).items() if k not in ("max_minutes", "max_steps", "checkpoint_minutes")}
    blob = json.dumps({"base": info.name, "params": info.params, "config": keep, "n": n_examples}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def save_checkpoint(folder: Path, model: Any, optimizer: torch.optim.Optimizer, state: TrainState,
                    fingerprint: str) -> None:
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"fingerprint": fingerprint, **asdict(state)}))
    examples = folder / "examples.jsonl"
    if examples.exists():
        shutil.copy2(examples, tmp / "examples.jsonl")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    log.info("checkpoint at step %d (%.1f min trained) in %s", state.step, state.elapsed_s / 60, folder)


def load_checkpoint(folder: Path, model: Any, optimizer: torch.optim.Optimizer, fingerprint: str) -> TrainState | None:
    state_path = folder / "state.json"
    if not state_path.exists():
        return None
    saved = json.loads(state_path.read_text())
    if saved.pop("fingerprint", None) != fingerprint:
        log.warning("checkpoint in %s is from a different run configuration: starting afresh", folder)
        return None
    weights = load_file(str(folder / "trainable.safetensors"))
    missing = set(trainable_state(model)) - set(weights)
    if missing:
        log.warning("checkpoint lacks %d trainable tensors: starting afresh", len(missing))
        return None
    model.load_state_dict(weights, strict=False)
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    state = TrainState(**saved)
    log.info("resuming from step %d (%.1f min already trained)", state.step, state.elapsed_s / 60)
    return state


# ---- the loop --------------------------------------------------------------------------------

def train(model: Any, tokenizer: Any, examples: Sequence[Encoded], config: TrainConfig, *,
          scratch: bool = False, checkpoint_dir: Path | None = None, fingerprint: str = "",
          device: str = "cpu", progress: bool = True) -> TrainState:
    """Train until the time budget, step budget or epoch budget runs out; checkpoint as it goes."""
    torch.manual_seed(config.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    peak = config.peak_lr(scratch)
    optimizer = torch.optim.AdamW(params, lr=peak, weight_decay=config.weight_decay, betas=(0.9, 0.95))
    state = (load_checkpoint(checkpoint_dir, model, optimizer, fingerprint) if checkpoint_dir else None) or TrainState()
    budget_s = config.max_minutes * 60
    lengths = [len(e.input_ids) for e in examples]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.max_steps or int(budget_s), initial=state.step if config.max_steps else int(state.elapsed_s),
                   unit="step" if config.max_steps else "s", desc="fine-tuning", dynamic_ncols=True)
    model.train()
    last_checkpoint = time.perf_counter()
    ema: float | None = None

    def done() -> bool:
        return ((config.max_steps is not None and state.step >= config.max_steps)
                or (budget_s > 0 and state.elapsed_s >= budget_s) or state.epoch >= config.max_epochs)

    while not done():
        batches = make_batches(lengths, config.batch_tokens, config.seed + state.epoch)
        while state.batch_pos < len(batches) and not done():
            started = time.perf_counter()
            batch = {k: v.to(device) for k, v in collate([examples[i] for i in batches[state.batch_pos]], pad_id).items()}
            for group in optimizer.param_groups:
                epoch_progress = (state.epoch + state.batch_pos / len(batches)) / config.max_epochs
                group["lr"] = lr_at(state, config, peak, epoch_progress)
            loss = lm_loss(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            seconds = time.perf_counter() - started
            state.step += 1
            state.batch_pos += 1
            state.elapsed_s += seconds
            state.tokens += int(batch["attention_mask"].sum())
            state.target_tokens += int((batch["labels"] != -100).sum())
            value = loss.item()
            state.losses.append(round(value, 4))
            ema = value if ema is None else 0.9 * ema + 0.1 * value
            if bar is not None:
                bar.update(1 if config.max_steps else int(state.elapsed_s) - bar.n)
                bar.set_postfix(loss=f"{ema:.3f}", tok_s=f"{state.tokens_per_s:.0f}", step=state.step, ep=state.epoch)
            if state.step % 25 == 0:
                log.info("step %d epoch %d loss %.3f lr %.2e %.0f tok/s", state.step, state.epoch, ema,
                         optimizer.param_groups[0]["lr"], state.tokens_per_s)
            if checkpoint_dir and time.perf_counter() - last_checkpoint > config.checkpoint_minutes * 60:
                save_checkpoint(checkpoint_dir, model, optimizer, state, fingerprint)
                last_checkpoint = time.perf_counter()
        if state.batch_pos >= len(batches):
            state.epoch, state.batch_pos = state.epoch + 1, 0
    if bar is not None:
        bar.close()
    if checkpoint_dir:
        save_checkpoint(checkpoint_dir, model, optimizer, state, fingerprint)
    model.eval()
    log.info("trained %d steps, %d tokens in %.1f min (%.0f tok/s), last loss %.3f", state.step, state.tokens,
             state.elapsed_s / 60, state.tokens_per_s, ema if ema is not None else float("nan"))
    return state


