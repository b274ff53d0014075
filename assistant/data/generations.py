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

from assistant.data.locks import HOLDER_NAME, LOCK_NAME, Process, write_text_atomic

log = logging.getLogger(__name__)

POINTER = "CURRENT"
MARKER = ".mra-owner.json"
HOME_MARKER = ".mra-home.json"  # in a home folder: its pointer and lock files are this program's
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


def marker(folder: Path, name: str = MARKER) -> dict | None:
    """The marker this program wrote into `folder` when it made it, or None (not ours, or unreadable)."""
    try:
        data = json.loads((folder / name).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("program") == PROGRAM else None


class ForeignHome(ValueError):
    """A folder given as a store or model home holds files this program did not write; one line."""


def claim_home(home: Path, what: str, *, legacy: Callable[[Path], bool] = lambda folder: False,
               exclusive: bool = False) -> None:
    """Make sure `home` is this program's before anything there is written, replaced or deleted; then mark it.

    A home is ours when it carries HOME_MARKER, is new or empty, or (made before the marker existed) its pointer
    names a generation of ours (`legacy` may vouch for one). Otherwise, ForeignHome: with `exclusive` (a model
    home, whose `checkpoint/` a fine-tune replaces) for any file in it; else for the files a writer would replace
    (the pointer, the lock and its holder record) when they are not ours, so a store may share a folder."""
    home = Path(home)
    if marker(home, HOME_MARKER) is not None:
        return
    if home.exists() and not home.is_dir():
        raise ForeignHome(f"{home} is a file, not a folder")
    entries = sorted(p.name for p in home.iterdir()) if home.is_dir() else []
    live = current(home)
    vouched = live is not None and (marker(live) is not None or legacy(live))
    if exclusive:
        foreign = [] if not entries or vouched else entries
    else:
        foreign = [name for name in (POINTER, LOCK_NAME, HOLDER_NAME)
                   if name in entries and not _ours_at_home(home / name, vouched)]
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ForeignHome(f"{home} holds files this program did not write ({shown}); give {what} a new or empty "
                          "folder, or one this program made")
    home.mkdir(parents=True, exist_ok=True)
    write_text_atomic(home / HOME_MARKER, json.dumps({"program": PROGRAM, "home": what}))


def _ours_at_home(path: Path, vouched: bool) -> bool:
    """A pointer naming a generation of ours, an empty lock file, a holder record as WriterLock writes it."""
    if path.name == POINTER:
        return vouched
    if path.is_symlink() or not path.is_file():
        return False
    if path.name == LOCK_NAME:
        return path.stat().st_size == 0
    try:
        return Process.from_dict(json.loads(path.read_text(errors="replace"))) is not None
    except ValueError:
        return False


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
