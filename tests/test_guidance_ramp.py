"""Guidance that rises over a reply's first tokens (`guidance.scale_at`)."""
from __future__ import annotations

from assistant.model.guidance import scale_at


def test_the_scale_rises_to_its_value_over_the_ramp():
    assert [round(scale_at(3.0, step, 3), 2) for step in range(5)] == [1.5, 2.0, 2.5, 3.0, 3.0]
    assert [scale_at(3.0, step, 0) for step in range(3)] == [3.0, 3.0, 3.0]  # no ramp: full from the first token
    assert scale_at(1.0, 0, 3) == 1.0  # guidance off stays off
