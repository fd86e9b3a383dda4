"""Upstream callbacks as the callback model's seed (001, `wan2.6-image-to-video-flash`) documents
them: what wanflow's callbacks function receives.

A POST of the task object as JSON to `callback_url` when the task finishes; each attempt times
out after 10 s; after a failed attempt it is retried, 1, 2 and then 4 s after that failure, and
after the third retry nothing more is sent: at most 4 attempts. Only a 2xx counts as delivered
(redirects are not followed). "Retries at 1/2/4 seconds after failure" is read as a wait measured
from the end of the failed attempt, so with receivers that fail at once the attempts start at
about 0, 1, 3 and 7 s.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

CallbackKind = Literal["final", "duplicate", "stale"]


class CallbackAttempt(BaseModel):
    """One attempt to deliver a callback."""

    task_id: str = Field(description="Upstream task id.")
    url: str = Field(description="Where it was sent.")
    kind: CallbackKind = Field(
        description="`final`: the finished task; `duplicate`: the same sent again (fault); "
        "`stale`: an earlier report sent after the final one (fault)."
    )
    attempt: int = Field(description="1 for the first attempt, up to 1 + the number of retries.")
    at_s: float = Field(description="When it started, seconds since the simulator started.")
    status: int | None = Field(description="Status the receiver answered; None if none.")
    error: str | None = Field(description="Why no answer came (timeout, refused, ...).")
    delivered: bool = Field(description="True for a 2xx answer.")


class CallbackSender:
    """Sends callbacks with the upstream's timeout and retry schedule, and records each attempt."""

    def __init__(
        self,
        *,
        timeout_s: float,
        retry_delays_s: Sequence[float],
        epoch: float,
        unreachable: Callable[[], bool] = lambda: False,
    ) -> None:
        self._http = httpx.Client(timeout=timeout_s, follow_redirects=False)
        # A simulated outage of the receiver: while it says so, attempts fail without being sent.
        self._unreachable = unreachable
        self._delays = tuple(retry_delays_s)
        self._epoch = epoch
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._attempts: list[CallbackAttempt] = []

    def hold(self, seconds: float) -> bool:
        """Wait `seconds` (a delayed callback); False if the sender was closed meanwhile."""
        return not self._stopping.wait(seconds)

    def send(self, task_id: str, url: str, body: dict[str, Any], kind: CallbackKind) -> bool:
        """Deliver one callback, retrying on the upstream's schedule; True once a 2xx came back."""
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "wanflow-simulator"}
        for attempt, delay in enumerate((*self._delays, None), start=1):
            if self._stopping.is_set():
                return False
            started = time.monotonic()
            status, error = None, None
            if self._unreachable():
                error = "ConnectError: the receiver is unreachable (simulated outage)"
            else:
                try:
                    status = self._http.post(url, content=payload, headers=headers).status_code
                except Exception as exc:  # any failure to get an answer is a failed attempt
                    error = f"{type(exc).__name__}: {exc}"
            delivered = status is not None and 200 <= status < 300
            with self._lock:
                self._attempts.append(
                    CallbackAttempt(
                        task_id=task_id,
                        url=url,
                        kind=kind,
                        attempt=attempt,
                        at_s=started - self._epoch,
                        status=status,
                        error=error,
                        delivered=delivered,
                    )
                )
            if delivered:
                return True
            if delay is None or self._stopping.wait(delay):
                return False
        return False

    def attempts(self) -> list[CallbackAttempt]:
        """Every attempt so far, in the order they were made."""
        with self._lock:
            return list(self._attempts)

    def close(self) -> None:
        """Stop retrying and release the connections; callbacks in flight end as they may."""
        self._stopping.set()
        self._http.close()
