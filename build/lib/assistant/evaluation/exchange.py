"""Evaluation generations made on another machine (a GPU): export the requests, generate there, read back."""
from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from assistant.model.prompts import ReviewRequest
from assistant.training.examples import (
    DataConfig,
)

log = logging.getLogger(__name__)

from assistant.evaluation.sentiment_control import (
    Cells,
    Drafts,
    EvalConfig,
    eval_requests,
    generate_drafts,
    load_reference_base,
)
from assistant.model.card import CARD_JSON


def _key(key: tuple[str, str]) -> str:
    return "|".join(key)


def write_requests(cells: Cells, path: Path, config: EvalConfig) -> None:
    """The evaluation requests (held-out movies, their retrieved context) as JSON, to generate elsewhere."""
    payload = {"config": asdict(config), "cells": {_key(k): [asdict(r) for r in v] for k, v in cells.items()}}
    path.write_text(json.dumps(payload))


def read_requests(path: Path) -> tuple[Cells, EvalConfig]:
    payload = json.loads(path.read_text())
    cells = {tuple(k.split("|")): [ReviewRequest(**r) for r in v] for k, v in payload["cells"].items()}
    return cells, EvalConfig(**payload["config"])  # type: ignore[return-value]


def write_generations(path: Path, models: dict[str, Drafts], **extra: Any) -> None:
    payload = {"models": {m: {_key(k): v for k, v in d.items()} for m, d in models.items()}, **extra}
    path.write_text(json.dumps(payload))


def read_generations(path: Path, cells: Cells) -> tuple[dict[str, Drafts], dict[str, Any]]:
    """Drafts written by `--generate`; ValueError when they were made for other requests."""
    payload = json.loads(path.read_text())
    models: dict[str, Drafts] = {}
    for name, by_key in payload.pop("models").items():
        drafts = {tuple(k.split("|")): v for k, v in by_key.items()}
        if set(drafts) != set(cells) or any(len(drafts[k]) != len(cells[k]) for k in cells):
            raise ValueError(f"{path}: the {name} generations were made for other requests; "
                             f"export them again with --export-requests")
        models[name] = drafts  # type: ignore[assignment]
    return models, payload



def export_requests(settings: Any, out: Path, path: Path, n_per_cell: int, guidance: float = 1.0) -> int:
    """The evaluation's requests, with their retrieved context, for `--generate` on another machine."""
    from assistant.training.examples import open_split, store_neighbours

    card = json.loads((out / CARD_JSON).read_text())
    data = DataConfig(**card.get("data_config", {}))
    store, split = open_split(settings, data)
    config = EvalConfig(n_per_cell=n_per_cell, guidance=guidance)  # the drafts are sampled as the card will say
    write_requests(eval_requests(split, store_neighbours(store), data, config.n_per_cell, config.seed), path, config)
    print(f"wrote the evaluation requests to {path}", file=sys.stdout)
    return 0


def generate_elsewhere(settings: Any, out: Path, requests: Path, target: Path, drafts: int,
                       device: str | None) -> int:
    """Drafts from the tuned model and its base for exported requests: needs no store, judge or embeddings."""
    from assistant.model.bases import BaseModelError, load_tuned
    from assistant.model.generation import ReviewGenerator

    cells, config = read_requests(requests)
    config = EvalConfig(**{**asdict(config), "batch_size": max(config.batch_size, 64)})  # a GPU takes big batches
    loaded = load_tuned(settings, device=device, path=out)
    if loaded is None:
        raise BaseModelError(f"no tuned model in {out}")
    model, tokenizer, card = loaded
    started = time.perf_counter()
    made = {"tuned": generate_drafts(ReviewGenerator(model, tokenizer), cells, config, drafts)}
    del model
    base_model, base_tokenizer = load_reference_base(card, settings, device)
    made["base"] = generate_drafts(ReviewGenerator(base_model, base_tokenizer), cells, config, drafts)
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    write_generations(target, made, device=name, drafts=drafts, seconds=round(time.perf_counter() - started, 1),
                      guidance=config.guidance)
    print(f"wrote {drafts} drafts per request for both models to {target}", file=sys.stdout)
    return 0


