"""Helpers of the integration tests on the simulator: example requests, a recording sleep.

A module of its own (not conftest) so tests import it by a name no other test tier uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wanflow.catalog import ValidatedRequest, validate

REQUESTS = Path(__file__).resolve().parents[2] / "events" / "requests"
VALID = sorted((REQUESTS / "valid").glob("*.json"))
INVALID = sorted((REQUESTS / "invalid").glob("*.json"))

#: Small enough that the slowest example (about 230 simulated seconds) ends in about 1 s.
TIME_SCALE = 0.005


def load(path: Path) -> Any:
    """An event file's JSON."""
    return json.loads(path.read_text(encoding="utf-8"))


def example(name: str) -> ValidatedRequest:
    """A valid example request, validated by the catalog."""
    return validate(load(REQUESTS / "valid" / f"{name}.json"))


class Naps:
    """A `sleep` that only records what it was asked to wait (retries are counted, not waited)."""

    def __init__(self, on_first: Callable[[], object] | None = None) -> None:
        self.delays: list[float] = []
        self._on_first = on_first

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self._on_first is not None and len(self.delays) == 1:
            self._on_first()
