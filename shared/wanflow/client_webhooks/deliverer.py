"""The deliverer: posts each queued event to the client's webhook, signed, and retries it.

What is guaranteed:
- each request is signed the Standard Webhooks way with the tenant's `whsec_` secret
  (`webhook-id`, `webhook-timestamp`, `webhook-signature`), its body the task as `GET` shows it
  then, its outputs presigned afresh, so a retry hours later still works;
- 2xx is delivered; 410 stops for good; anything else (3xx, other 4xx, 5xx, timeouts, network
  errors) is retried on RETRY_DELAYS_S (about 27.6 hours over 8 attempts), scaled by the
  deployment's time scale. SQS delays a message at most 900 s, so a longer wait hops: the
  message carries `not_before` and an early one goes back with the rest of its wait;
- redirects are not followed, and the receiver's body is never read;
- a URL the address guard refuses is logged as `refused` and not retried: it is the URL, not the
  moment, that is wrong (redeliver once the client fixed its DNS);
- a first attempt of an event already delivered (or gone) is skipped, and a `task.running` that
  arrives after the task ended is superseded (the client would see the task move backwards);
  a redelivery the client asked for is posted all the same;
- every attempt is logged (`delivery_log`); only store or queue errors raise, so SQS brings the
  message back only when nothing was posted or recorded.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from wanflow import observability
from wanflow.client_webhooks.address_guard import Refused, Resolver, destination, resolve
from wanflow.client_webhooks.delivery_log import Delivery, DeliveryLog
from wanflow.client_webhooks.queue import Notice, Notifications, event_for
from wanflow.clock import from_epoch, iso
from wanflow.config import Config
from wanflow.errors import TaskNotFound
from wanflow.results import present
from wanflow.store import StoreUnavailable, TaskRecord, TaskStore
from wanflow.task import TERMINAL

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

    from wanflow.tenants import Tenants

logger = logging.getLogger(__name__)

#: Waits after each failed attempt (upstream seconds, times the time scale): 8 attempts in all.
RETRY_DELAYS_S: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(RETRY_DELAYS_S) + 1
USER_AGENT = "wanflow-webhooks/1.0"
_TIMEOUT = httpx.Timeout(10.0)


def retry_delay_s(attempt: int) -> float | None:
    """Upstream seconds to wait after failed attempt number `attempt` (1-based); None after the
    last one."""
    return RETRY_DELAYS_S[attempt - 1] if 1 <= attempt <= len(RETRY_DELAYS_S) else None


def signed_headers(secret: str, hook_id: str, unix_time: float, body: str) -> dict[str, str]:
    """The headers of one Standard Webhooks request: id, timestamp, signature, and ours."""
    from standardwebhooks import Webhook

    seconds = math.floor(unix_time)
    signature = Webhook(secret).sign(hook_id, from_epoch(seconds), body)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": hook_id,
        "webhook-timestamp": str(seconds),
        "webhook-signature": signature,
    }


@dataclass
class Deliverer:
    """Posts queued events to clients' webhooks, retries them, and logs every attempt."""

    config: Config
    store: TaskStore
    tenants: Tenants
    s3: S3Client
    sqs: SQSClient
    http: httpx.Client = field(
        default_factory=lambda: httpx.Client(timeout=_TIMEOUT, follow_redirects=False)
    )
    resolver: Resolver = resolve
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.log = DeliveryLog.of(self.store)
        self.queue = Notifications(self.config, self.sqs)

    def handle(self, message: Mapping[str, Any]) -> str:
        """Deliver one queue message; returns what happened (an Outcome, or why nothing was
        posted: "early", "skipped", "superseded", "dropped").

        A task.running that comes after the task ended (a retry, or a concurrent batch that
        ran late) is superseded: the client would see the task move backwards. Its terminal
        event says more. A redelivery the client asked for is posted all the same.

        Only store or queue errors raise (the batch then reports the message as failed and SQS
        brings it back); everything the receiver does is recorded and answered here.
        """
        try:
            notice = Notice.model_validate(message)
        except ValidationError:
            logger.error("unreadable notify message dropped", extra={"body": dict(message)})
            return "dropped"
        wait = notice.not_before - self.clock()
        if wait >= 1:  # SQS delays whole seconds: hop, then sleep the last fraction
            self.queue.send_later(notice, wait)
            return "early"
        if wait > 0:
            self.sleep(wait)
        try:
            record = self.store.get(notice.task_id)
        except TaskNotFound:
            logger.warning("webhook for a missing task dropped", extra={"task_id": notice.task_id})
            return "dropped"
        target = record.webhook
        if target is None or notice.event not in target.events:
            return "dropped"
        if (
            not notice.redelivery
            and record.status in TERMINAL
            and notice.event != event_for(record.status)
        ):
            logger.info("webhook superseded by the task's end", extra={"event": notice.event})
            return "superseded"
        if (
            notice.attempt == 1
            and not notice.redelivery
            and self.log.delivered(record.id, notice.webhook_id)
        ):
            logger.info("webhook already delivered", extra={"webhook_id": notice.webhook_id})
            return "skipped"
        delivery = self._attempt(record, target.url, notice)
        observability.count(observability.WEBHOOK_DELIVERIES)  # every attempt
        if delivery.outcome != "delivered":
            observability.count(observability.WEBHOOK_FAILURES)
        self._record(record.id, delivery)
        return delivery.outcome

    def _attempt(self, record: TaskRecord, url: str, notice: Notice) -> Delivery:
        started = self.clock()
        base: dict[str, Any] = {
            "webhook_id": notice.webhook_id,
            "event": notice.event,
            "attempt": notice.attempt,
            "url": url,
            "at": iso(started),
        }
        try:
            where = destination(
                url, allow_local=self.config.allow_http_callbacks, resolver=self.resolver
            )
        except Refused as exc:
            return Delivery(**base, outcome="refused", error=str(exc))
        except OSError as exc:
            return self._failed(notice, base, None, f"cannot resolve the host: {exc}")
        body = self._payload(record, notice)
        secret = self.tenants.webhook_secret(record.tenant)
        headers = {**where.headers, **signed_headers(secret, notice.webhook_id, started, body)}
        code: int | None = None
        error: str | None = None
        try:
            with self.http.stream(
                "POST",
                where.url,
                content=body.encode(),
                headers=headers,
                extensions=where.extensions,
            ) as response:
                code = response.status_code  # the body is never read: it could be huge
        except httpx.TimeoutException:
            error = "the receiver did not answer within 10 s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        base["duration_ms"] = round((self.clock() - started) * 1000)
        if code is not None and 200 <= code < 300:
            return Delivery(**base, status_code=code, outcome="delivered")
        if code == 410:
            error = "the receiver answered 410 Gone: no more deliveries of this event"
            return Delivery(**base, status_code=code, outcome="gone", error=error)
        if code is not None:
            error = f"HTTP {code}" + (" (redirects are not followed)" if 300 <= code < 400 else "")
        return self._failed(notice, base, code, error or "failed")

    def _failed(
        self, notice: Notice, base: dict[str, Any], code: int | None, error: str
    ) -> Delivery:
        delay = retry_delay_s(notice.attempt)
        if delay is None:
            return Delivery(**base, status_code=code, outcome="gave_up", error=error)
        wait = delay * self.config.time_scale
        due = self.clock() + wait
        retry = notice.model_copy(update={"attempt": notice.attempt + 1, "not_before": due})
        self.queue.send_later(retry, wait)
        return Delivery(
            **base, status_code=code, outcome="failed", error=error, next_attempt_at=iso(due)
        )

    def _payload(self, record: TaskRecord, notice: Notice) -> str:
        # Outputs are presigned afresh on every attempt: a retry hours later still works.
        task = present(record, self.s3, self.config.bucket_name)
        data = task.model_dump(mode="json")
        payload = {"type": notice.event, "timestamp": notice.occurred_at, "data": data}
        return json.dumps(payload, separators=(",", ":"))

    def _record(self, task_id: str, delivery: Delivery) -> None:
        # The post already happened: a log write that fails must not make SQS post it again.
        try:
            self.log.append(task_id, delivery)
        except (ClientError, BotoCoreError, StoreUnavailable):
            logger.exception("delivery log write failed", extra={"task_id": task_id})
        logger.info(
            "webhook attempt",
            extra={
                "task_id": task_id,
                "webhook_id": delivery.webhook_id,
                "event": delivery.event,
                "attempt": delivery.attempt,
                "outcome": delivery.outcome,
                "status_code": delivery.status_code,
            },
        )
