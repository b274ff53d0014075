"""A short soak of the page's chat path (bench/soak.py): 4 browsers at once, every reply kept in its own chat."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.tiny import tiny_artifacts, tiny_chat, tiny_loaded  # noqa: F401 - fixtures

SOAK = Path(__file__).resolve().parent.parent / "bench" / "soak.py"


def test_four_browsers_at_once_lose_and_mix_up_nothing(tiny_chat) -> None:
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    result = soak.soak(tiny_chat, clients=4, requests=32, max_new_tokens=8, timeout_s=120)
    assert result["requests"] == 32
    assert (result["errors"], result["lost"], result["mixed_up"]) == (0, 0, 0), result
    assert result["rss_growth"] is not None and result["rss_growth"] <= 1.2, result
    assert 0 < result["p50_s"] <= result["p95_s"]
