"""A client's webhook receiver for the tests: a real HTTP server on loopback that verifies every
request with the `standardwebhooks` library itself, and answers from a script.

A module of its own so the test files import it by a unique name.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from simkit import serve_on_loopback
from standardwebhooks import Webhook


@dataclass(frozen=True)
class Hit:
    """One request the receiver got."""

    at: float  # time.monotonic() on arrival
    headers: dict[str, str]
    body: Any  # the JSON payload, None when it did not verify
    verified: bool
    answered: int

    @property
    def webhook_id(self) -> str:
        """The request's webhook-id header."""
        return self.headers.get("webhook-id", "")


class HookReceiver:
    """Receives webhooks signed with `secret`; `answers[i]` is the status of the i-th request
    (later ones get the last), `location` is sent with 3xx answers."""

    def __init__(
        self, secret: str, answers: Sequence[int] = (200,), location: str | None = None
    ) -> None:
        self.hits: list[Hit] = []
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.monotonic()
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    body, verified = Webhook(secret).verify(raw, headers), True
                except Exception:  # any failure to verify (the library raises several kinds)
                    body, verified = None, False
                with lock:
                    status = answers[min(len(receiver.hits), len(answers) - 1)]
                    receiver.hits.append(Hit(at, headers, body, verified, status))
                self.send_response(status)
                if location and 300 <= status < 400:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self._server = serve_on_loopback(Handler)

    @property
    def url(self) -> str:
        """Where to post (plain HTTP on loopback: the local stack allows it)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/wanflow"

    def events(self) -> list[str]:
        """The `type` of each verified request, in order."""
        return [h.body["type"] for h in self.hits if h.verified]

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
