"""Bounded waits: a poll that fails the test when its time is up, never `while True`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.02,
    what: str | Callable[[], str] = "it",
) -> T:
    """Poll `probe` until it returns something other than None, and return that; fail the test
    after `timeout` seconds, saying what was awaited (`what`, or what it returns then). An
    exception of `probe` (an assert on a terminal failure) ends the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            awaited = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout} s waiting for {awaited}")
        time.sleep(interval)


def holds(predicate: Callable[[], bool], *, seconds: float, interval: float = 0.05) -> bool:
    """Whether `predicate` stays true for `seconds` (checked every `interval`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(interval)
    return predicate()
