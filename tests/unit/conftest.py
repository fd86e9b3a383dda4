"""Fixtures of the unit tests: example requests from events/ and images made on the spot."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sample_images import make_image, to_data_uri

EVENTS = Path(__file__).resolve().parents[2] / "events" / "requests"


def _load(kind: str, name: str) -> dict[str, Any]:
    with open(EVENTS / kind / f"{name}.json", encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


@pytest.fixture
def example() -> Callable[[str], dict[str, Any]]:
    """A fresh copy of a valid example request, by file name without `.json`."""
    return lambda name: copy.deepcopy(_load("valid", name))


@pytest.fixture
def data_uri() -> Callable[..., str]:
    """A data URI of a plain image: data_uri("PNG", 400, 400, mode="RGB")."""

    def build(fmt: str, width: int, height: int, mode: str = "RGB", **save: Any) -> str:
        return to_data_uri(make_image(fmt, width, height, mode, **save), f"image/{fmt.lower()}")

    return build
