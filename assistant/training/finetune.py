"""Fine-tuning, start to finish: data from the store, a base, the training loop, the saved model and its card.

`python -m assistant.finetune` (assistant/finetune.py) runs this, then evaluates the model for its card.

Data from the review store (movie-disjoint split, retrieval-aware context), a base from `bases`,
LoRA (or full) training bounded by wall-clock minutes with resumable checkpoints, then the adapter,
a merged safetensors model, tokenizer, generation config and model card in a new generation of
`models_dir/tuned`, made live in one step (`assistant.model.tuned_layout`).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from assistant.argtypes import seed_arg
from assistant.data import generations
from assistant.model.bases import (
    BASE_CHOICES,
    BaseInfo,
    BaseModelError,
    check_base_name,
    load_base,
)
from assistant.model.card import write_card
from assistant.model.tuned_layout import NEXT_PROBE_DIRNAME, check_home, tuned_home
from assistant.training.batches import encode_all
from assistant.training.examples import DataConfig, Example, write_examples
from assistant.training.grounded import PLAIN_RECIPE
from assistant.training.loop import (
    CHECKPOINT_DIRNAME,
    TrainConfig,
    TrainState,
    add_lora,
    run_fingerprint,
    train,
    warm_start,
)

log = logging.getLogger(__name__)

GROUNDING_CANDIDATES = 3  # reviews looked at per training example wanted: the grounding filter drops some
PREPARED_DIRNAME = "prepared"  # in models_dir: examples and probes prepared earlier, by data key
# Train on reviews whose label a cross-fitted embedding probe finds at least this clear: lukewarm "rotten" quotes
# that read as praise teach the model to hedge its pans (--min-confidence 0 keeps all).
MIN_LABEL_CONFIDENCE = 0.8

# ---- saving ----------------------------------------------------------------------------------

def generation_defaults(tokenizer: Any) -> Any:
    from transformers import GenerationConfig

    from assistant.model.generation import stop_token_ids
    from assistant.settings import Sampling

    s = Sampling()  # the chat's defaults, saved with the model for anyone who loads it with transformers alone
    return GenerationConfig(do_sample=True, temperature=s.temperature, top_p=s.top_p, top_k=0,
                            repetition_penalty=s.repetition_penalty, no_repeat_ngram_size=s.no_repeat_ngram_size,
                            max_new_tokens=s.max_new_tokens, eos_token_id=stop_token_ids(tokenizer),
                            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id)


def save_tuned(model: Any, tokenizer: Any, home: Path, card: dict[str, Any],
               probe_from: Path | None = None) -> tuple[Any, Path]:
    """Adapter (when LoRA) plus merged safetensors model, tokenizer, generation config, card (and the sentiment
    probe from `probe_from`) as a new generation of `home`, made live only once complete.

    Returns the merged model and its folder. The caller holds the model's writer lock (`model_lock`); a kill at
    any point leaves the previous model live, and what it half wrote is cleaned by the next save.
    """
    from assistant.model.sentiment_probe import BASENAME as PROBE_BASENAME

    building = generations.start_building(home)
    try:
        if hasattr(model, "merge_and_unload"):
            model.save_pretrained(str(building / "adapter"), safe_serialization=True)
            # self-contained, so an adapter trained on another machine can be merged here (--merge-adapter)
            (building / "adapter" / "training_card.json").write_text(json.dumps(card, indent=2, default=str))
            model = model.merge_and_unload()
        model.generation_config = generation_defaults(tokenizer)
        model.save_pretrained(str(building), safe_serialization=True)
        tokenizer.save_pretrained(str(building))
        write_card(card, building)
        for probe_file in sorted(Path(probe_from).glob(f"{PROBE_BASENAME}.*")) if probe_from else []:
            shutil.copy2(probe_file, building / probe_file.name)
        final = generations.publish(building, home)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    generations.clean_stale(home)
    log.info("saved the tuned model to %s (live)", final)
    return model.eval(), final


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
    p.add_argument("--context-share", type=float, default=DataConfig.context_share,
                   help="share of examples with retrieved context, so one model serves RAG on and off")
    p.add_argument("--context-k", type=int, default=3)
    p.add_argument("--max-examples", type=int, default=6000, help="training examples prepared (sampled, balanced)")
    p.add_argument("--min-confidence", type=float, default=MIN_LABEL_CONFIDENCE,
                   help="keep reviews whose label a cross-fitted embedding probe finds at least this clear "
                        f"(0 keeps all; default {MIN_LABEL_CONFIDENCE})")
    p.add_argument("--recipe", choices=("grounded", "plain"), default="grounded",
                   help="grounded: targets that use their context weighted up, invented names dropped "
                        "(assistant/training/grounded.py); plain: every sampled review, as before (for comparison)")
    p.add_argument("--export-examples", type=Path, default=None, help="write the prepared examples here and stop")
    p.add_argument("--examples", type=Path, default=None,
                   help="train on examples written by --export-examples (no store needed: for a GPU machine)")
    p.add_argument("--init-adapter", type=Path, default=None,
                   help="start LoRA weights from an earlier adapter folder (same rank and targets)")
    p.add_argument("--merge-adapter", type=Path, default=None,
                   help="merge a LoRA adapter folder trained elsewhere into the base and save it as the tuned model")
    p.add_argument("--ship", action="store_true", help="then copy its adapter into assistant/model/shipped/")
    p.add_argument("--ship-only", action="store_true", help="copy the live model's adapter there and stop")
    p.add_argument("--seed", type=seed_arg, default=1234)
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation stage (card keeps training numbers)")
    p.add_argument("--eval-only", action="store_true", help="only re-run the evaluation on the saved model")
    p.add_argument("--eval-n", type=int, default=200, help="generations per sentiment and mode")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def store_fingerprint(store: Any) -> str | None:
    """What identifies a store's contents: its manifest's sources, counts and last update (None if unknown)."""
    manifest = getattr(store, "manifest", None)
    if manifest is None:
        return None
    fields = {k: getattr(manifest, k, None) for k in ("embedding_model", "counts", "sources", "updated")}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _shared_paths(folder: Path, key: dict[str, Any]) -> tuple[Path, Path]:
    """The examples file and the probe basename kept for this data key in the models' cache folder."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return folder / f"examples-{digest}.jsonl", folder / f"probe-{digest}"


def _copy_probe(source: Path, target: Path) -> None:
    """The probe's .json and .npz files (basename `source`) under basename `target`, each written atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".json", ".npz"):
        origin = source.with_name(source.name + suffix)
        if origin.exists():
            tmp = target.with_name(f".{target.name}{suffix}.{os.getpid()}.tmp")  # two runs never share one
            shutil.copy2(origin, tmp)
            os.replace(tmp, target.with_name(target.name + suffix))


def prepare_examples(store: Any, split: Any, data: DataConfig, n: int, cache: Path,
                     probe_dir: Path | None = None, shared: Path | None = None) -> tuple[dict[str, Any], list[Example]]:
    """Training examples and their header, cached in `cache` so a resumed run sees exactly the same data.

    Also trains the embedding sentiment probe on the whole training split and saves it in `probe_dir`,
    where generation finds it for best-of-n reranking.

    Preparing costs minutes (on 2 cores: the probe and its cross-fitted label filter about 30 s, a neighbour
    search for every example with context about a minute, several times that on a busy machine) and depends only
    on the data: so the examples and the probe are also kept in `shared` (the models' cache folder), keyed by the
    data settings and the store's contents, and a later run with any base, a --restart, or another output folder
    starts training at once.
    """
    from assistant.data.details import Rarity
    from assistant.model.sentiment_probe import BASENAME
    from assistant.training.examples import (
        keep_clear_labels,
        read_examples,
        sample_balanced,
        store_neighbours,
    )
    from assistant.training.grounded import join_same_critic, select_examples

    key = {"data": asdict(data), "n": n, "train": len(split.train)}
    fingerprint = store_fingerprint(store)
    shared_examples, shared_probe = (_shared_paths(shared, {**key, "store": fingerprint})
                                     if shared is not None and fingerprint else (None, None))
    for path in (cache, shared_examples):
        if path is None or not path.exists():
            continue
        try:
            header, examples = read_examples(path)
        except ValueError as exc:
            log.warning("%s: preparing afresh", exc)
            continue
        if header.get("key") != key:
            continue
        if path != cache:
            write_examples(cache, header, examples)
            if probe_dir is not None and shared_probe.with_name(shared_probe.name + ".json").exists():
                _copy_probe(shared_probe, probe_dir / BASENAME)
            elif probe_dir is not None:  # the cache lost its probe: train it again, it is the cheap part
                save_probe(store, split, probe_dir)
        log.info("reusing %d prepared examples from %s", len(examples), path)
        return header, examples
    started = time.perf_counter()
    if probe_dir is not None:
        save_probe(store, split, probe_dir)
    pool, label_filter = keep_clear_labels(split.train, store, data.min_label_confidence, data.seed)
    joined = 0
    if data.join_same_critic:
        pool, joined = join_same_critic(pool, data.max_chars)
    # Candidates in a balanced, seeded order; the grounding filter takes n of them (grounded ones repeated).
    docs = sample_balanced(pool, min(len(pool), GROUNDING_CANDIDATES * n), titled_share=data.titled_share,
                           seed=data.seed)
    rarity = Rarity.of(d.page_content for d in random.Random(data.seed).sample(split.train, min(3000, len(split.train))))
    examples, grounding = select_examples(docs, store_neighbours(store), data, rarity, n)
    header = {"key": key, "data": asdict(data), "train_reviews": len(split.train), "val_reviews": len(split.val),
              "val_movies": len(split.val_movies), "label_filter": label_filter,
              "grounding": {**grounding, "joined_same_critic": joined}}
    write_examples(cache, header, examples)
    if shared_examples is not None:
        if probe_dir is not None:
            _copy_probe(probe_dir / BASENAME, shared_probe)
        mine = shared_examples.with_name(f".{shared_examples.name}.{os.getpid()}")
        write_examples(mine, header, examples)
        os.replace(mine, shared_examples)  # last, and whole: its presence promises the probe beside it
    log.info("prepared %d examples in %.0f s", len(examples), time.perf_counter() - started)
    return header, examples


def save_probe(store: Any, split: Any, folder: Path) -> None:
    """The embedding sentiment probe (training split; accuracy on the held-out movies) beside the model."""
    from assistant.model.sentiment_probe import BASENAME, SentimentProbe

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
    if not (adapter_dir / "adapter_model.safetensors").exists():
        raise ValueError(f"{adapter_dir} holds no adapter_model.safetensors (pickled weights are not loaded)")
    card = json.loads(card_path.read_text())
    model, tokenizer, _ = load_base(card["base"], settings, device=device)
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    _, folder = save_tuned(model, tokenizer, out, card)
    print(f"merged {adapter_dir} into {folder}; evaluate it with: python -m assistant.model_card --dir {out}",
          file=sys.stdout)
    return 0


@dataclass
class Trained:
    """What a finished run leaves for the model card: the merged model, its card, and the data it saw."""

    model: Any
    tokenizer: Any
    card: dict[str, Any]
    out: Path
    device: str
    store: Any = None  # None when the examples came from a file (no store on this machine)
    split: Any = None
    data: DataConfig | None = None


def run(args: argparse.Namespace, settings: Any) -> Trained | int:
    """Prepare the data, train, save; an exit status instead when the run stops early (or fails clearly)."""
    from assistant.data.store import StoreError
    from assistant.training.examples import open_split, read_examples

    if args.threads:
        torch.set_num_threads(args.threads)
    base_name = args.base or settings.base_model
    out = args.out or tuned_home(settings)
    data = DataConfig(context_share=args.context_share, context_k=args.context_k, seed=args.seed,
                      min_label_confidence=args.min_confidence,
                      **(PLAIN_RECIPE if args.recipe == "plain" else {}))
    checkpoint_dir = out / CHECKPOINT_DIRNAME
    try:  # before anything in `out` is deleted: a folder of the user's is refused, whatever calls this
        check_home(out, tuned_home(settings))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.restart:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    store = split = None
    try:
        check_base_name(base_name)
        if args.merge_adapter:
            return merge_adapter(args.merge_adapter, settings, out, args.device)
        if args.examples:  # prepared on another machine: no store needed here
            header, examples = read_examples(args.examples)
            data = DataConfig(**header["data"])
        else:
            store, split = open_split(settings, data)
            header, examples = prepare_examples(store, split, data, args.max_examples,
                                                checkpoint_dir / "examples.jsonl", probe_dir=out / NEXT_PROBE_DIRNAME,
                                                shared=Path(settings.models_dir) / PREPARED_DIRNAME)
        if not examples:
            raise ValueError("no training examples: the store has no reviews with a sentiment label to learn from "
                             "(add labelled reviews with: python ingest.py FILES)")
        if args.export_examples:
            write_examples(args.export_examples, header, examples)
            print(f"wrote {len(examples)} examples to {args.export_examples}", file=sys.stdout)
            return 0
        model, tokenizer, info = load_base(base_name, settings, device=args.device,
                                           texts=[e.review for e in examples])
        scratch = info.name == "scratch"
        config = TrainConfig(max_minutes=args.max_minutes, max_steps=args.max_steps, max_epochs=args.max_epochs,
                             lora=not (args.full or scratch), lora_r=args.lora_r, lora_alpha=2 * args.lora_r,
                             lora_targets=args.lora_targets, lr=args.lr, batch_tokens=args.batch_tokens,
                             max_len=args.max_len, train_on_prompt=scratch, seed=args.seed)
        device = str(next(model.parameters()).device)
        log.warning("fine-tuning %s (%s, %.0fM params) with %s on %s for at most %.0f min",
                    info.name, info.source, info.params / 1e6, "LoRA" if config.lora else "full training",
                    device, config.max_minutes)
        if device.startswith("cuda"):
            torch.backends.cuda.matmul.allow_tf32 = True  # fp32 weights, TF32 matmuls: several times faster on a GPU
        encoded = encode_all(examples, tokenizer, config.max_len, train_on_prompt=config.train_on_prompt)
        earlier: dict[str, Any] = {}
        if config.lora:
            model = add_lora(model, info.family, config)
            if args.init_adapter:
                earlier = warm_start(model, args.init_adapter)
    except (BaseModelError, StoreError, ValueError) as exc:
        log.error("%s", exc)
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
    model, folder = save_tuned(model, tokenizer, out, card, probe_from=out / NEXT_PROBE_DIRNAME)
    return Trained(model, tokenizer, card, folder, device, store, split, data)


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
        "grounding": header.get("grounding"),
        "train_config": asdict(config), "data_config": asdict(data), "base_notes": info.notes,
    }

