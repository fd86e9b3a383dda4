"""Placeholder until the authorizer function is written."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Not written yet."""
    raise NotImplementedError("authorizer")
