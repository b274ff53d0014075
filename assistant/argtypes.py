"""argparse types shared by the commands: numbers within bounds, with a one-line usage error; the command's name."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.settings import MAX_DRAFTS


def program_name() -> str:
    """What the usage lines call the command: `mra` as installed, `python -m assistant` run as a module."""
    name = Path(sys.argv[0]).name
    return "python -m assistant" if name in ("__main__.py", "-m", "") else name


def bounded(name: str, cast: type, low: float, high: float, kind: str) -> Callable[[str], Any]:
    """An argparse type: `cast(value)` within [low, high], else 'NAME must be LOW to HIGH, not VALUE'."""
    def parse(value: str) -> Any:
        try:
            number = cast(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {kind}, not {value!r}") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{name} must be {low:g} to {high:g}, not {value}")
        return number
    return parse


# numpy's seeds stop at 2**32 - 1 (torch's go further): one range every generator accepts.
seed_arg = bounded("seed", int, 0, 2**32 - 1, "a whole number")
drafts_arg = bounded("drafts", int, 1, MAX_DRAFTS, "a whole number")
port_arg = bounded("port", int, 1, 65535, "a whole number")
