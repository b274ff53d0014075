"""Fine-tune the assistant's voice on the reviews: `python -m assistant.finetune --base ... --max-minutes N`.

Data from the review store (movie-disjoint split, retrieval-aware context), a base from `bases`,
LoRA (or full) training bounded by wall-clock minutes with resumable checkpoints, then the adapter,
a merged safetensors model, tokenizer, generation config and model card in `models_dir/tuned`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from assistant.bases import BASE_CHOICES, BaseInfo, BaseModelError, check_base_name, load_base, tuned_dir
from assistant.prompts import build_prompt, build_training_text, fit_context
from assistant.training_data import DataConfig, Example, write_examples

log = logging.getLogger(__name__)

LORA_TARGETS: dict[str, dict[str, list[str]]] = {
    "gpt2": {"attention": ["attn.c_attn", "attn.c_proj"], "all": ["c_attn", "c_proj", "c_fc"]},
    "llama": {"attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
              "all": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]},
}
CHECKPOINT_DIRNAME = "checkpoint"


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


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]


# ---- data -> tensors -------------------------------------------------------------------------

def encode_example(example: Example, tokenizer: Any, max_len: int, *, train_on_prompt: bool = False) -> Encoded | None:
    """Token ids with the loss on the completion; context trimmed so the review always fits."""
    _, completion = build_training_text(example.request, example.review, tokenizer)
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    if len(completion_ids) > max_len // 2:
        return None
    request = fit_context(example.request, tokenizer, max_len - len(completion_ids))
    prompt_ids = tokenizer(build_prompt(request, tokenizer), add_special_tokens=False)["input_ids"]
    if len(prompt_ids) + len(completion_ids) > max_len:
        return None
    prompt_labels = list(prompt_ids) if train_on_prompt else [-100] * len(prompt_ids)
    return Encoded(list(prompt_ids) + list(completion_ids), prompt_labels + list(completion_ids))


def encode_all(examples: Sequence[Example], tokenizer: Any, config: TrainConfig) -> list[Encoded]:
    encoded = [encode_example(e, tokenizer, config.max_len, train_on_prompt=config.train_on_prompt) for e in examples]
    kept = [e for e in encoded if e is not None]
    if len(kept) < len(encoded):
        log.info("dropped %d examples longer than %d tokens", len(encoded) - len(kept), config.max_len)
    return kept


def make_batches(lengths: Sequence[int], batch_tokens: int, seed: int) -> list[list[int]]:
    """Length-bucketed batches of at most `batch_tokens` padded tokens, in shuffled order."""
    rng = random.Random(seed)
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        grown = max(longest, lengths[i])
        if current and grown * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, grown = [], lengths[i]
        current.append(i)
        longest = grown
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def collate(items: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, e in enumerate(items):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def lm_loss(model: Any, batch: dict[str, torch.Tensor], *, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy on labelled tokens, with logits computed only from the first labelled column.

    SmolLM2's 49k-token head is a fifth of its compute; prompts (context) are most of each sequence.
    """
    labels = batch["labels"]
    columns = (labels != -100).any(dim=0)
    start = max(int(columns.float().argmax()) - 1, 0) if bool(columns.any()) else labels.shape[1] - 1
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   logits_to_keep=labels.shape[1] - start).logits[:, :-1]
    target = labels[:, start + 1:]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1),
                                             ignore_index=-100, reduction=reduction)


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
    return json.loads(card_path.read_text()) if card_path.exists() else {}


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


# ---- saving ----------------------------------------------------------------------------------

def generation_defaults(tokenizer: Any) -> Any:
    from transformers import GenerationConfig

    from assistant.generate import stop_token_ids

    return GenerationConfig(do_sample=True, temperature=0.8, top_p=0.92, top_k=0, repetition_penalty=1.1,
                            no_repeat_ngram_size=4, max_new_tokens=80, eos_token_id=stop_token_ids(tokenizer),
                            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id)


def save_tuned(model: Any, tokenizer: Any, out: Path, card: dict[str, Any]) -> Any:
    """Adapter (when LoRA) plus merged safetensors model, tokenizer, generation config and card; returns the merged model."""
    out.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "merge_and_unload"):
        model.save_pretrained(str(out / "adapter"))
        # self-contained, so an adapter trained on another machine can be merged here (--merge-adapter)
        (out / "adapter" / "training_card.json").write_text(json.dumps(card, indent=2, default=str))
        model = model.merge_and_unload()
    model.generation_config = generation_defaults(tokenizer)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    from assistant.model_card import write_card

    write_card(card, out)
    log.info("saved the tuned model to %s", out)
    return model.eval()


# ---- command line ----------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m assistant.finetune", description=__doc__.splitlines()[0])
    p.add_argument("--base", default=None, help=f"{' | '.join(BASE_CHOICES)} | PATH (default: settings.base_model)")
    p.add_argument("--max-minutes", type=float, default=30.0, help="training wall-clock budget, across resumes")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--max-epochs", type=int, default=3)
    p.add_argument("--out", type=Path, default=None, help="output folder (default: models_dir/tuned)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | mps (default: settings.device)")
    p.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-targets", choices=("attention", "all"), default="attention")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-tokens", type=int, default=1536)
    p.add_argument("--max-len", type=int, default=384)
    p.add_argument("--context-share", type=float, default=None, help="share of examples with retrieved context")
    p.add_argument("--context-k", type=int, default=3)
    p.add_argument("--max-examples", type=int, default=6000, help="training examples prepared (sampled, balanced)")
    p.add_argument("--min-confidence", type=float, default=None,
                   help="keep reviews whose label a cross-fitted embedding probe finds at least this clear "
                        "(0 keeps all; default: settings.train_min_label_confidence)")
    p.add_argument("--export-examples", type=Path, default=None, help="write the prepared examples here and stop")
    p.add_argument("--examples", type=Path, default=None,
                   help="train on examples written by --export-examples (no store needed: for a GPU machine)")
    p.add_argument("--init-adapter", type=Path, default=None,
                   help="start LoRA weights from an earlier adapter folder (same rank and targets)")
    p.add_argument("--merge-adapter", type=Path, default=None,
                   help="merge a LoRA adapter folder trained elsewhere into the base and save it as the tuned model")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation stage (card keeps training numbers)")
    p.add_argument("--eval-only", action="store_true", help="only re-run the evaluation on the saved model")
    p.add_argument("--eval-n", type=int, default=200, help="generations per sentiment and mode")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def prepare_examples(store: Any, split: Any, data: DataConfig, n: int, cache: Path,
                     probe_dir: Path | None = None) -> tuple[dict[str, Any], list[Example]]:
    """Training examples and their header, cached in `cache` so a resumed run sees exactly the same data.

    Also trains the embedding sentiment probe on the whole training split and saves it in `probe_dir`,
    where generation finds it for best-of-n reranking.
    """
    from assistant.training_data import build_examples, keep_clear_labels, read_examples, sample_balanced, store_neighbours

    key = {"data": asdict(data), "n": n, "train": len(split.train)}
    if cache.exists():
        try:
            header, examples = read_examples(cache)
            if header.get("key") == key:
                log.info("reusing %d prepared examples from %s", len(examples), cache)
                return header, examples
        except ValueError as exc:
            log.warning("%s: preparing afresh", exc)
    started = time.perf_counter()
    if probe_dir is not None:
        save_probe(store, split, probe_dir)
    pool, label_filter = keep_clear_labels(split.train, store, data.min_label_confidence, data.seed)
    docs = sample_balanced(pool, n, titled_share=data.titled_share, seed=data.seed)
    examples = build_examples(docs, store_neighbours(store), data)
    header = {"key": key, "data": asdict(data), "train_reviews": len(split.train), "val_reviews": len(split.val),
              "val_movies": len(split.val_movies), "label_filter": label_filter}
    write_examples(cache, header, examples)
    log.info("prepared %d examples in %.0f s", len(examples), time.perf_counter() - started)
    return header, examples


def save_probe(store: Any, split: Any, folder: Path) -> None:
    """The embedding sentiment probe (training split; accuracy on the held-out movies) beside the model."""
    from assistant.sentiment_probe import BASENAME, SentimentProbe

    def vectors_and_labels(docs: Any) -> tuple[Any, list[str]]:
        return store.vectors_for([d.metadata["doc_id"] for d in docs]), [d.metadata["sentiment"] for d in docs]

    if not split.train or len({d.metadata["sentiment"] for d in split.train}) < 2:
        return
    x, y = vectors_and_labels(split.train)
    vx, vy = vectors_and_labels(split.val) if split.val else (None, None)
    SentimentProbe.train(x, y, eval_vectors=vx, eval_labels=vy).save(folder / BASENAME)


def merge_adapter(adapter_dir: Path, settings: Any, out: Path, device: str | None) -> int:
    """Merge a LoRA adapter trained elsewhere (a GPU machine) into its base and save it as the tuned model."""
    from peft import PeftModel

    card_path = adapter_dir / "training_card.json"
    if not (adapter_dir / "adapter_config.json").exists() or not card_path.exists():
        raise ValueError(f"{adapter_dir} holds no adapter_config.json and training_card.json to merge")
    card = json.loads(card_path.read_text())
    model, tokenizer, _ = load_base(card["base"], settings, device=device)
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    save_tuned(model, tokenizer, out, card)
    print(f"merged {adapter_dir} into {out}; evaluate it with: python -m assistant.model_card --dir {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from assistant.logs import setup_logging
    from assistant.settings import get_settings

    setup_logging(args.verbose)
    from assistant.store import StoreError
    from assistant.training_data import open_split, read_examples

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = get_settings()
    base_name = args.base or settings.base_model
    out = args.out or tuned_dir(settings)
    data = DataConfig(context_share=args.context_share if args.context_share is not None
                      else settings.train_context_share, context_k=args.context_k, seed=args.seed,
                      min_label_confidence=args.min_confidence if args.min_confidence is not None
                      else settings.train_min_label_confidence)
    checkpoint_dir = out / CHECKPOINT_DIRNAME
    if args.restart:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    try:
        check_base_name(base_name)
        if args.eval_only:
            from assistant.model_card import evaluate_saved

            card = evaluate_saved(settings, out, n_per_cell=args.eval_n, device=args.device)
            print(json.dumps(card, indent=2))
            return 0
        if args.merge_adapter:
            return merge_adapter(args.merge_adapter, settings, out, args.device)
        if args.examples:  # prepared on another machine: no store needed here
            header, examples = read_examples(args.examples)
            data = DataConfig(**header["data"])
        else:
            store, split = open_split(settings, data)
            header, examples = prepare_examples(store, split, data, args.max_examples,
                                                checkpoint_dir / "examples.jsonl", probe_dir=out)
        if args.export_examples:
            write_examples(args.export_examples, header, examples)
            print(f"wrote {len(examples)} examples to {args.export_examples}")
            return 0
        model, tokenizer, info = load_base(base_name, settings, device=args.device,
                                           texts=[e.review for e in examples])
    except (BaseModelError, StoreError, ValueError) as exc:
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scratch = info.name == "scratch"
    config = TrainConfig(max_minutes=args.max_minutes, max_steps=args.max_steps, max_epochs=args.max_epochs,
                         lora=not (args.full or scratch),
                         lora_r=args.lora_r, lora_alpha=2 * args.lora_r, lora_targets=args.lora_targets, lr=args.lr,
                         batch_tokens=args.batch_tokens, max_len=args.max_len, train_on_prompt=scratch, seed=args.seed)
    device = str(next(model.parameters()).device)
    log.warning("fine-tuning %s (%s, %.0fM params) with %s on %s for at most %.0f min",
                info.name, info.source, info.params / 1e6, "LoRA" if config.lora else "full training",
                device, config.max_minutes)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 weights, TF32 matmuls: several times faster on a GPU
    encoded = encode_all(examples, tokenizer, config)
    earlier: dict[str, Any] = {}
    if config.lora:
        model = add_lora(model, info.family, config)
        if args.init_adapter:
            try:
                earlier = warm_start(model, args.init_adapter)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
    state = train(model, tokenizer, encoded, config, scratch=scratch, checkpoint_dir=checkpoint_dir,
                  fingerprint=run_fingerprint(info, config, len(encoded)), device=device)
    card = training_card(info, config, data, state, len(encoded), header)
    card["train_device"] = torch.cuda.get_device_name() if device.startswith("cuda") else device
    if earlier:
        card["warm_start"] = {"from": str(args.init_adapter), "train_minutes": earlier.get("train_minutes"),
                              "train_tokens": earlier.get("train_tokens"), "train_steps": earlier.get("train_steps")}
        card["train_tokens_total"] = state.tokens + int(earlier.get("train_tokens") or 0)
        card["train_minutes_total"] = round(card["train_minutes"] + float(earlier.get("train_minutes") or 0), 2)
    card["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    card["torch_threads"] = torch.get_num_threads()
    model = save_tuned(model, tokenizer, out, card)
    if not args.no_eval and not args.examples:
        from assistant.model_card import EvalConfig, evaluate_and_write

        config = EvalConfig(n_per_cell=args.eval_n, guidance=settings.sentiment_guidance)  # as the chat samples
        card = evaluate_and_write(model, tokenizer, card, out, settings=settings, store=store, split=split,
                                  data=data, config=config, device=device)
    print(f"tuned model in {out}: " + json.dumps({k: card.get(k) for k in (
        "base", "val_ppl_context", "val_ppl_no_context", "sentiment_acc", "copy_rate_8gram")}))
    return 0


def training_card(info: BaseInfo, config: TrainConfig, data: DataConfig, state: TrainState,
                  n_examples: int, header: dict[str, Any]) -> dict[str, Any]:
    """The training half of the model card (evaluation adds the rest)."""
    return {
        "base": info.name, "base_source": info.source, "base_family": info.family, "params": info.params,
        "chat_template": info.chat_template, "method": "lora" if config.lora else "full",
        "train_tokens": state.tokens, "train_target_tokens": state.target_tokens, "train_steps": state.step,
        "train_epochs_done": state.epoch, "train_minutes": round(state.elapsed_s / 60, 2),
        "train_tokens_per_s": round(state.tokens_per_s, 1), "train_examples": n_examples,
        "train_loss_first": state.losses[0] if state.losses else None,
        "train_loss_last_50": round(sum(state.losses[-50:]) / max(1, len(state.losses[-50:])), 4),
        "train_reviews": header.get("train_reviews"), "val_reviews": header.get("val_reviews"),
        "val_movies": header.get("val_movies"), "label_filter": header.get("label_filter"),
        "train_config": asdict(config), "data_config": asdict(data), "base_notes": info.notes,
    }


if __name__ == "__main__":
    sys.exit(main())
