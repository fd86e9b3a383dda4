"""HTTP receivers on loopback, real servers in daemon threads: `CallbackReceiver` for the
upstream's (the simulator's) callbacks, `WebhookReceiver` for the client's webhooks, verified
with the `standardwebhooks` library itself. Both answer from a script and record what came."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from standardwebhooks import Webhook


def serve_on_loopback(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """An HTTP server on a free loopback port, serving in a daemon thread (shutdown() stops it)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        del format, args


class _Served:
    """A receiver's server: closed by close() or by leaving its `with`."""

    _server: ThreadingHTTPServer

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the upstream's callbacks -------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    """One callback the receiver got."""

    at: float  # time.monotonic() on arrival
    body: Any  # its JSON
    raw: bytes  # its bytes, as sent


class CallbackReceiver(_Served):
    """Answers callbacks from a script and records each arrival.

    `answers[i]` is the status answered to the i-th arrival (later ones get the last entry);
    `stalls[i]` seconds are waited before answering it.
    """

    def __init__(self, answers: Sequence[int] = (200,), stalls: Sequence[float] = ()) -> None:
        self.arrivals: list[Arrival] = []
        lock = threading.Lock()
        receiver = self

        class Handler(_Quiet):
            def do_POST(self) -> None:
                at = time.monotonic()
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    index = len(receiver.arrivals)
                    receiver.arrivals.append(Arrival(at, json.loads(raw), raw))
                if index < len(stalls):
                    time.sleep(stalls[index])
                self.send_response(answers[min(index, len(answers) - 1)])
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = serve_on_loopback(Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/callback"

    def offsets(self) -> list[float]:
        """Arrival times relative to the first, in seconds."""
        first = self.arrivals[0].at
        return [round(a.at - first, 3) for a in self.arrivals]


# --- the client's webhooks ----------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One request the webhook receiver got."""

    at: float  # time.monotonic() on arrival
    headers: dict[str, str]
    body: Any  # the JSON payload, None when it did not verify
    verified: bool
    answered: int

    @property
    def webhook_id(self) -> str:
        """The request's webhook-id header."""
        return self.headers.get("webhook-id", "")

    @property
    def event(self) -> str:
        """The event's `type` (task.running, task.succeeded, ...); verified hits only."""
        return str(self.body["type"])

    @property
    def task_id(self) -> str:
        """The id of the task the event carries; verified hits only."""
        return str(self.body["data"]["id"])

    @property
    def status(self) -> str:
        """The status of the task the event carries; verified hits only."""
        return str(self.body["data"]["status"])


class WebhookReceiver(_Served):
    """Receives webhooks signed with `secret`; `answers[i]` is the status of the i-th request
    (later ones get the last), `location` is sent with 3xx answers."""

    def __init__(
        self, secret: str, answers: Sequence[int] = (200,), location: str | None = None
    ) -> None:
        self.hits: list[Hit] = []
        lock = threading.Lock()
        receiver = self

        class Handler(_Quiet):
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

        self._server = serve_on_loopback(Handler)

    @property
    def url(self) -> str:
        """Where to post (plain HTTP on loopback: the local stack allows it)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/wanflow"

    def events(self) -> list[str]:
        """The `type` of each verified request, in order."""
        return [h.event for h in self.hits if h.verified]

    def of(self, task_id: str) -> list[Hit]:
        """The verified webhooks about one task, in arrival order."""
        return [h for h in list(self.hits) if h.verified and h.task_id == task_id]

    def forged(self) -> list[Hit]:
        """The requests that did not verify."""
        return [h for h in list(self.hits) if not h.verified]
