"""The upstream aggregator client: create a task, read its status, cancel it.

What is retried, and what is guaranteed:
- Status reads and cancels are retried on 5xx, 429 and transport errors (timeouts, refused or
  dropped connections), with exponential backoff and jitter; a 429's `Retry-After` is honoured up
  to a cap. Attempts and total time are bounded; then `UpstreamThrottled` (the last failure was a
  429) or `UpstreamUnavailable` is raised. Repeating either call is harmless upstream.
- A create is retried only when the request surely never reached the upstream (the connection
  could not be opened), because the upstream has no idempotency key and any other retry could
  create a second task. So a create either returns the task, or raises an error saying whether
  a task may exist: `UpstreamRejected`, `UpstreamThrottled` and `UpstreamUnavailable` mean none
  was created; `CreateOutcomeUnknown` means one may have been (never create again blindly).
- 4xx answers (except 429) are never retried: `UpstreamRejected` carries the upstream's code.
  A 401 is sent once more with a key read again (`reread_key`), when there is a newer one: the
  operator may have set or rotated the key since this client last read it.
- A call may be given a `deadline` (time.monotonic() seconds; the time a Lambda function behind
  API Gateway has left): no attempt or wait starts past it and every attempt's timeouts end by
  it. A create is not started at all with less than `RetryPolicy.create_min_s` left
  (`CreateNotStarted`: nothing was sent), so a create is only ever cut short by the deadline
  when the upstream takes longer than that to answer.
Responses are read leniently into `UpstreamSnapshot`s by the catalog's reader.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Self
from urllib.parse import quote, urlsplit

import httpx
from pydantic import Field

from wanflow import clock, observability
from wanflow.catalog import ValidatedRequest, get_model
from wanflow.catalog.responses import UpstreamSnapshot, read_snapshot, task_id_of
from wanflow.errors import UPSTREAM, WanflowError
from wanflow.schema import Schema

logger = logging.getLogger(__name__)

#: Connect fails fast (nothing was sent, so a create may retry); a read waits for a slow upstream.
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)

# The only failures after which a request surely never reached the upstream.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the client retries."""

    # Status reads and cancels, first attempt included: under 40 % faults a read still gives up
    # once in 60,000 (0.4^12); the time budget below bounds the waits.
    max_attempts: int = 12
    base_delay_s: float = 0.5  # backoff: base * 2**(retry-1), capped, with jitter
    max_delay_s: float = 8.0
    retry_after_cap_s: float = 30.0  # longest Retry-After honoured by waiting
    # Total time one call may take, waits included; no retry starts past it (an attempt already
    # in flight may still run up to its read timeout).
    budget_s: float = 60.0
    create_attempts: int = 3  # creates, retried only when the request was surely not sent
    # The least time left before a deadline for a create to be started (or its connection
    # tried again): a create usually answers in a second or two, but one cut off by the
    # deadline may still create a task nobody follows.
    create_min_s: float = 10.0
    # The least time left before a deadline for a status read or cancel attempt to be started.
    attempt_min_s: float = 1.0


# --- errors -----------------------------------------------------------------------------------


class UpstreamError(WanflowError):
    """Base of every failure talking to the upstream. The API sees one only where the upstream
    was asked before anything changed (a cancel): `public_message` says so."""

    code = "upstream_error"

    def public_message(self) -> str:
        if self.status == 500:
            return super().public_message()
        return f"the upstream could not be asked now, so nothing changed: {self.message}"


class UpstreamRejected(UpstreamError):
    """The upstream refused the request (HTTP 4xx other than 429); retrying will not help."""

    code = "upstream_rejected"

    def __init__(
        self, status_code: int, upstream_code: str | None, upstream_message: str | None
    ) -> None:
        super().__init__(
            f"upstream refused the request with HTTP {status_code}"
            + (f" ({upstream_code})" if upstream_code else "")
            + (f": {upstream_message}" if upstream_message else "")
        )
        self.status_code = status_code
        self.upstream_code = upstream_code
        self.upstream_message = upstream_message


class UpstreamThrottled(UpstreamError):
    """The upstream answered 429 (after retries, for reads); nothing was created."""

    code = "upstream_throttled"
    status = 503
    kind = UPSTREAM

    def __init__(self, message: str, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UpstreamUnavailable(UpstreamError):
    """5xx or transport failures outlasted the retries. For a create: surely nothing was created."""

    code = "upstream_unavailable"
    status = 503
    kind = UPSTREAM


class CreateNotStarted(UpstreamUnavailable):
    """Too little time was left to create the task before the caller's deadline: nothing was
    sent, so nothing was created, and the same request may be sent again (an
    `UpstreamUnavailable`, so callers treat it as one)."""

    code = "upstream_create_not_started"


class CreateOutcomeUnknown(UpstreamError):
    """A create reached (or may have reached) the upstream but no usable answer came back.

    A task may exist upstream. Creating again may run and bill the job twice.
    """

    code = "upstream_create_outcome_unknown"


class CancelNotSupported(UpstreamError):
    """The model's upstream family has no cancel endpoint."""

    code = "upstream_cancel_not_supported"


# --- results ----------------------------------------------------------------------------------


class CreatedTask(Schema):
    """A task the upstream has created."""

    task_id: str = Field(description="Upstream task id.")
    snapshot: UpstreamSnapshot = Field(description="The create response, read leniently.")


def _json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_of(body: Any) -> tuple[str | None, str | None]:
    """(code, message) of an error body, wherever the upstream put them."""
    if not isinstance(body, dict):
        return None, None
    inner = body.get("error")
    source = inner if isinstance(inner, dict) else body
    code, message = source.get("code"), source.get("message")
    if message is None and isinstance(inner, str):
        message = inner
    return (
        str(code) if isinstance(code, str | int) and not isinstance(code, bool) else None,
        message if isinstance(message, str) else None,
    )


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the upstream asks to wait (delta seconds or an HTTP date), if it says."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - clock.now()).total_seconds())


class UpstreamClient:
    """Creates, reads and cancels upstream tasks over one reused `httpx.Client`.

    `base_url` and `api_key` come from configuration; `api_key` may be a getter, asked before
    every request (a cache with a TTL: a changed key reaches a warm client), and `reread_key`
    gives the key to try again with after a 401 (None: there is no other). `http`, `sleep`,
    `rng` and `clock` are injectable for tests; an injected `http` client is not closed by
    `close()`. Every request carries explicit timeouts (`timeout`), also on an injected client.
    `clock` is also what a call's `deadline` is read against.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | Callable[[], str],
        *,
        reread_key: Callable[[str], str | None] | None = None,
        http: httpx.Client | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"upstream base URL must be http(s)://host[:port]: {base_url!r}")
        if not api_key:
            raise ValueError("upstream API key is empty")
        self._base = base_url.rstrip("/")
        self._key = api_key if callable(api_key) else (lambda: api_key)
        self._reread_key = reread_key
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout, follow_redirects=False)
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock

    def close(self) -> None:
        """Close the connection pool, unless it was injected."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the three calls ----------------------------------------------------------------------

    def create(
        self,
        request: ValidatedRequest,
        callback_url: str | None = None,
        *,
        deadline: float | None = None,
    ) -> CreatedTask:
        """Create the upstream task of a validated request.

        `callback_url` is sent only for a model that accepts callbacks; a client's own
        `callback_url` in the request is never forwarded (wanflow's replaces it, or none is sent).
        Retried only when the request surely never reached the upstream; see the module doc for
        what each error says about whether a task exists, and for `deadline`.
        """
        spec = get_model(request.model)
        body = {k: v for k, v in request.request.items() if k != "callback_url"}
        if callback_url is not None and spec.accepts_callback:
            body["callback_url"] = callback_url
        path = spec.route.create_path
        response = self._send_create(path, body, deadline)
        status = response.status_code
        if 200 <= status < 300:
            payload = _json_of(response)
            task_id = task_id_of(payload)
            if task_id is None:
                raise CreateOutcomeUnknown(
                    f"upstream answered HTTP {status} to a create but no task id could be read"
                )
            return CreatedTask(task_id=task_id, snapshot=read_snapshot(spec, payload))
        if status == 429:  # a refusal by the rate limiter: nothing was created
            retry_after = _retry_after(response)
            raise UpstreamThrottled("upstream throttled the create (HTTP 429)", retry_after)
        if 400 <= status < 500:
            raise UpstreamRejected(status, *_error_of(_json_of(response)))
        # A 5xx may come after the upstream created the task (a gateway timing out, say).
        raise CreateOutcomeUnknown(f"upstream answered HTTP {status} to a create")

    def status(
        self, model: str, task_id: str, *, deadline: float | None = None
    ) -> UpstreamSnapshot:
        """Read a task's status, retrying transient failures (see the module doc)."""
        spec = get_model(model)
        path = self._task_path(spec.route.status_path, task_id)
        response = self._send_retried("GET", path, deadline)
        if response.status_code >= 400:
            raise UpstreamRejected(response.status_code, *_error_of(_json_of(response)))
        return read_snapshot(spec, _json_of(response))

    def cancel(
        self, model: str, task_id: str, *, deadline: float | None = None
    ) -> UpstreamSnapshot:
        """Ask the upstream to cancel a task; returns the task as the upstream then reports it.

        Retried like a status read (a second cancel changes nothing). HTTP 409 raises
        `UpstreamRejected`: the task had already finished, or a retried cancel had already taken
        effect; read its status to know which.
        """
        spec = get_model(model)
        if spec.route.cancel_path is None:
            raise CancelNotSupported(f"{spec.id} tasks cannot be cancelled upstream")
        path = self._task_path(spec.route.cancel_path, task_id)
        response = self._send_retried("POST", path, deadline)
        if response.status_code >= 400:
            raise UpstreamRejected(response.status_code, *_error_of(_json_of(response)))
        return read_snapshot(spec, _json_of(response))

    # --- sending ------------------------------------------------------------------------------

    @staticmethod
    def _task_path(template: str, task_id: str) -> str:
        return template.replace("{id}", quote(task_id, safe=""))

    def _request(
        self, method: str, path: str, body: Any = None, deadline: float | None = None
    ) -> httpx.Response:
        """One HTTP exchange, sent once more with a newer key after a 401 (a 401 changed
        nothing upstream, a create included), its timeouts ending by `deadline`."""
        key = self._key()
        response = self._exchange(method, path, body, key, deadline)
        if response.status_code == 401 and self._reread_key is not None:
            newer = self._reread_key(key)
            if newer is not None and newer != key:
                logger.warning("upstream refused the API key; trying the key read again")
                response = self._exchange(method, path, body, newer, deadline)
        return response

    def _exchange(
        self, method: str, path: str, body: Any, key: str, deadline: float | None
    ) -> httpx.Response:
        """One HTTP exchange, counted: UpstreamErrors / UpstreamCalls is the alarm's error rate
        (transport failures, 5xx and 429; a 4xx refusal of a request is not an upstream fault)."""
        observability.count(observability.UPSTREAM_CALLS)
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        try:
            response = self._http.request(
                method,
                self._base + path,
                json=body,
                headers=headers,
                timeout=self._timeout_by(deadline),
            )
        except httpx.HTTPError:
            observability.count(observability.UPSTREAM_ERRORS)
            raise
        if response.status_code >= 500 or response.status_code == 429:
            observability.count(observability.UPSTREAM_ERRORS)
        return response

    def _timeout_by(self, deadline: float | None) -> httpx.Timeout:
        """The client's timeouts, each cut to the time left before `deadline`.

        httpx times each phase (connect, write, each read), not the whole exchange: a small
        JSON exchange spends nearly all of it in one phase, so it ends close to the deadline.
        """
        if deadline is None:
            return self._timeout
        left = max(0.001, deadline - self._clock())
        t = self._timeout
        return httpx.Timeout(
            connect=min(t.connect or left, left),
            read=min(t.read or left, left),
            write=min(t.write or left, left),
            pool=min(t.pool or left, left),
        )

    def _send_create(
        self, path: str, body: dict[str, Any], deadline: float | None
    ) -> httpx.Response:
        """POST a create; retry only while the connection could not even be opened."""
        for attempt in range(1, self._retry.create_attempts + 1):
            if deadline is not None and deadline - self._clock() < self._retry.create_min_s:
                left = max(0.0, deadline - self._clock())
                raise CreateNotStarted(
                    f"only {left:.1f} s were left to create the upstream task (a create is "
                    f"started with {self._retry.create_min_s:g} s or more); nothing was sent "
                    "upstream, so nothing was created"
                )
            try:
                return self._request("POST", path, body, deadline)
            except _NOT_SENT as exc:
                if attempt == self._retry.create_attempts:
                    raise UpstreamUnavailable(
                        f"upstream unreachable after {attempt} attempts; nothing was created: "
                        f"{type(exc).__name__}"
                    ) from exc
                delay = self._backoff(attempt)
                logger.warning(
                    "upstream create not sent, retrying",
                    extra={"path": path, "attempt": attempt, "delay_s": delay, "error": repr(exc)},
                )
                self._sleep(delay)
            except httpx.HTTPError as exc:
                # Sent, or partly sent: the upstream may have created the task.
                raise CreateOutcomeUnknown(
                    f"create sent but no answer came back: {type(exc).__name__}: {exc}"
                ) from exc
        raise AssertionError("unreachable")  # the loop returns or raises

    def _send_retried(self, method: str, path: str, until: float | None) -> httpx.Response:
        """Send a request that is safe to repeat, retrying 5xx, 429 and transport errors, within
        the policy's budget and `until` (a caller's deadline).

        Returns the first answer that is neither 5xx nor 429 (a 4xx included).
        """
        policy = self._retry
        deadline = self._clock() + policy.budget_s
        if until is not None:
            deadline = min(deadline, until)
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            if until is not None and deadline - self._clock() < policy.attempt_min_s:
                raise UpstreamUnavailable(
                    f"{method} {path}: no time left for "
                    + ("an attempt" if attempt == 1 else f"attempt {attempt}")
                    + " before the caller's deadline"
                )
            try:
                response = self._request(method, path, None, until)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
                last: Exception | None = exc
            else:
                if response.status_code != 429 and response.status_code < 500:
                    return response
                reason, last = f"HTTP {response.status_code}", None
                if response.status_code == 429:
                    retry_after = _retry_after(response)
            delay = (
                min(retry_after, policy.retry_after_cap_s)
                if retry_after is not None
                else self._backoff(attempt)
            )
            if attempt >= policy.max_attempts or self._clock() + delay > deadline:
                message = f"{method} {path} failed after {attempt} attempts: {reason}"
                if reason == "HTTP 429":
                    raise UpstreamThrottled(message, retry_after)
                raise UpstreamUnavailable(message) from last
            logger.warning(
                "upstream call failed, retrying",
                extra={
                    "method": method,
                    "path": path,
                    "attempt": attempt,
                    "delay_s": delay,
                    "reason": reason,
                },
            )
            self._sleep(delay)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with equal jitter: half fixed, half random, so it still grows."""
        ceiling = min(self._retry.max_delay_s, self._retry.base_delay_s * 2 ** (attempt - 1))
        return float(ceiling / 2 + self._rng.uniform(0, ceiling / 2))


__all__ = [
    "DEFAULT_TIMEOUT",
    "CancelNotSupported",
    "CreateNotStarted",
    "CreateOutcomeUnknown",
    "CreatedTask",
    "RetryPolicy",
    "UpstreamClient",
    "UpstreamError",
    "UpstreamRejected",
    "UpstreamThrottled",
    "UpstreamUnavailable",
]
