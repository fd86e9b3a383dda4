"""Helpers of the integration tests: example requests, bounded waits, a callback receiver.

A module of its own (not conftest) so tests import it by a name no other test tier uses.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest

from wanflow.catalog import ValidatedRequest, validate

REQUESTS = Path(__file__).resolve().parents[2] / "events" / "requests"
VALID = sorted((REQUESTS / "valid").glob("*.json"))
INVALID = sorted((REQUESTS / "invalid").glob("*.json"))

#: Small enough that the slowest example (about 230 simulated seconds) ends in about 1 s.
TIME_SCALE = 0.005

T = TypeVar("T")


def load(path: Path) -> Any:
    """An event file's JSON."""
    return json.loads(path.read_text(encoding="utf-8"))


def example(name: str) -> ValidatedRequest:
    """A valid example request, validated by the catalog."""
    return validate(load(REQUESTS / "valid" / f"{name}.json"))


def wait_for(
    probe: Callable[[], T | None], *, timeout: float, interval: float = 0.02, what: str = "it"
) -> T:
    """Poll `probe` until it returns something other than None; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def holds(predicate: Callable[[], bool], *, seconds: float, interval: float = 0.05) -> bool:
    """Whether `predicate` stays true for `seconds` (checked every `interval`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(interval)
    return predicate()


class Naps:
    """A `sleep` that only records what it was asked to wait (retries are counted, not waited)."""

    def __init__(self, on_first: Callable[[], object] | None = None) -> None:
        self.delays: list[float] = []
        self._on_first = on_first

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self._on_first is not None and len(self.delays) == 1:
            self._on_first()


# --- a callback receiver ------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    """One callback the receiver got."""

    at: float  # time.monotonic() on arrival
    body: Any


def serve_on_loopback(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """An HTTP server on a free loopback port, serving in a daemon thread (shutdown() stops it)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server


class Receiver:
    """A tiny real HTTP server that answers callbacks from a script and records each arrival.

    `answers[i]` is the status answered to the i-th arrival (later ones get the last entry);
    `stalls[i]` seconds are waited before answering it.
    """

    def __init__(self, answers: Sequence[int] = (200,), stalls: Sequence[float] = ()) -> None:
        self.arrivals: list[Arrival] = []
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    index = len(receiver.arrivals)
                    receiver.arrivals.append(Arrival(at, json.loads(body)))
                if index < len(stalls):
                    time.sleep(stalls[index])
                self.send_response(answers[min(index, len(answers) - 1)])
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self._server = serve_on_loopback(Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/callback"

    def offsets(self) -> list[float]:
        """Arrival times relative to the first, in seconds."""
        first = self.arrivals[0].at
        return [round(a.at - first, 3) for a in self.arrivals]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
