"""Small models saved as JSON (settings, vocabulary) plus an .npz of plain float arrays, never a pickle.

These files live in folders users can swap, and unpickling would run their code; `np.load` with
allow_pickle=False reads numbers only.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def write(path: Path | str, meta: dict[str, Any], *, compressed: bool = False, **arrays: np.ndarray) -> None:
    """<path>.json holds `meta`, <path>.npz the arrays (`compressed` for sparse weights shipped in git)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(meta))
    (np.savez_compressed if compressed else np.savez)(path.with_suffix(".npz"), **arrays)


def read(path: Path | str, fmt: str, what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) written by `write` with meta["format"] == fmt; ValueError (one line) otherwise."""
    path = Path(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    if meta.get("format") != fmt:
        raise ValueError(f"{path} is not a {what} of format {fmt}")
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as loaded:
        arrays = {name: loaded[name] for name in loaded.files}
    return meta, arrays
