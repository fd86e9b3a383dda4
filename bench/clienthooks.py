"""The client side of a bench run: a webhook endpoint on loopback that accepts every event, and
the example requests pointed at it.

A task's writes include its client's delivery log, so a bench that counts writes gives every
task a receiver that answers: the examples' own webhook URLs (a placeholder domain) would fail and
be retried, counting the attempts of a client that does not exist.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[1] / "events/requests/valid"


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.received += 1  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def webhook_receiver() -> Iterator[ThreadingHTTPServer]:
    """A client's webhook endpoint on loopback that accepts everything (204); `received`
    counts the posts."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    server.lock = threading.Lock()  # type: ignore[attr-defined]
    server.received = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def hook_url(server: ThreadingHTTPServer) -> str:
    """The receiver's URL."""
    return f"http://127.0.0.1:{server.server_address[1]}/hooks"


def request_body(example: str, webhook_url: str) -> dict[str, Any]:
    """The example request with the receiver as its webhook (the flash model's own
    `callback_url` would be its webhook: it gives way to ours)."""
    body: dict[str, Any] = json.loads((EXAMPLES / f"{example}.json").read_text(encoding="utf-8"))
    body.pop("callback_url", None)
    body["webhook"] = {"url": webhook_url}
    return body
