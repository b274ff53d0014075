"""Folders made live in one step: each version is built beside the live one, then a pointer file switches.

The review store and the tuned model both live this way in their home folder::

    CURRENT               name of the live generation, replaced atomically (os.replace)
    gen-000004/           the live generation (.mra-owner.json inside: this program made it, and whom it replaced)
    gen-000003/           the generation it replaced: a process that loaded it may still be reading its files
    .building-PID-TIME/   a generation being written, or left by a writer that was killed

A killed writer leaves the previous generation live and whole. Clean-up removes only what this program made:
the exact name pattern AND the marker file written at creation, and for a half-built folder, an owner process
that is dead; a user's `gen-notes/` or a folder without the marker is never touched. Writers hold the home's
`WriterLock` while they build, publish and clean, so no two of them do it at once.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from assistant.data.locks import Process, write_text_atomic

log = logging.getLogger(__name__)

POINTER = "CURRENT"
MARKER = ".mra-owner.json"
PROGRAM = "movie-review-assistant"
_BUILDING = re.compile(r"\.building-\d+-\d+")
_GENERATION = re.compile(r"gen-(\d{6,})")


def current(home: Path) -> Path | None:
    """The live generation, or None when there is none (no pointer, or it names no folder)."""
    try:
        name = (Path(home) / POINTER).read_text().strip()
    except OSError:
        return None
    live = Path(home) / name
    return live if _GENERATION.fullmatch(name) and live.is_dir() else None


def marker(folder: Path) -> dict | None:
    """The marker this program wrote into `folder` when it made it, or None (not ours, or unreadable)."""
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("program") == PROGRAM else None


def start_building(home: Path) -> Path:
    """A new, empty `.building-PID-TIME/` folder in `home`, marked as this process's."""
    home.mkdir(parents=True, exist_ok=True)
    stamp = time.time_ns() // 1000
    while True:
        folder = home / f".building-{os.getpid()}-{stamp}"
        try:
            folder.mkdir()
            break
        except FileExistsError:
            stamp += 1
    (folder / MARKER).write_text(json.dumps({"program": PROGRAM, "owner": Process.this().to_dict()}))
    return folder


def publish(building: Path, home: Path) -> Path:
    """Rename a finished `building` folder to the next `gen-NNNNNN` and make it live; returns it."""
    previous = current(home)
    info = marker(building) or {"program": PROGRAM}
    info.update(replaced=previous.name if previous else None, published=time.time())
    (building / MARKER).write_text(json.dumps(info))
    numbers = [int(m.group(1)) for p in home.iterdir() if (m := _GENERATION.fullmatch(p.name))]
    final = home / f"gen-{1 + max(numbers, default=0):06d}"
    os.rename(building, final)
    _switch_pointer(home, final.name)
    return final


def _switch_pointer(home: Path, name: str) -> None:
    write_text_atomic(home / POINTER, name)  # the one step that makes the new generation live


def _previous(home: Path, live: Path | None, ours: Callable[[Path], bool]) -> Path | None:
    """The generation the live one replaced: from its marker, or for older stores the newest before it."""
    if live is None:
        return None
    info = marker(live)
    if info is not None and "replaced" in info:
        return home / info["replaced"] if info["replaced"] else None
    number = int(live.name[4:])
    older = [p for p in home.iterdir() if _GENERATION.fullmatch(p.name) and int(p.name[4:]) < number and ours(p)]
    return max(older, key=lambda p: int(p.name[4:]), default=None)


def clean_stale(home: Path, *, legacy: Callable[[Path], bool] = lambda folder: False) -> list[Path]:
    """Remove half-built folders of dead writers and generations older than the one the live one replaced.

    `legacy(folder)` may vouch for a generation made before markers existed (the store's manifest does).
    Returns what was removed.
    """
    home = Path(home)
    if not home.is_dir():
        return []

    def ours(folder: Path) -> bool:
        return marker(folder) is not None or legacy(folder)

    live = current(home)
    keep = {live, _previous(home, live, ours)}
    removed = []
    for path in sorted(home.iterdir()):
        if path.is_symlink() or not path.is_dir() or path in keep:
            continue
        if _BUILDING.fullmatch(path.name):
            owner = Process.from_dict((marker(path) or {}).get("owner"))
            if owner is None or owner.alive():
                continue
        elif not (_GENERATION.fullmatch(path.name) and ours(path)):
            continue
        shutil.rmtree(path, onerror=lambda _f, p, exc: log.warning("could not remove %s: %s", p, exc[1]))
        removed.append(path)
    if removed:
        log.info("removed %d stale folder(s) in %s: %s", len(removed), home, ", ".join(p.name for p in removed))
    return removed
