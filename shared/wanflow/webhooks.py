"""Client webhooks: Standard Webhooks events about a task, queued, signed, posted and retried.

A task's events (`task.running`, then one terminal event) go onto the notify queue as small
messages; the notify function posts each one to the task's webhook, signed with the tenant's
`whsec_` secret, and keeps a delivery log beside the task (`sk=DELIVERY#...`).

What is guaranteed:
- `webhook-id` is the same for a (task, event) pair on every attempt, every duplicate enqueue
  and every redelivery, so a receiver dedupes on it.
- 2xx is delivered; 410 stops for good; anything else (3xx, other 4xx, 5xx, timeouts, network
  errors) is retried on RETRY_DELAYS_S (about 27.6 hours over 8 attempts), scaled by the
  deployment's time scale. SQS delays a message at most 900 s, so a longer wait hops: the
  message carries `not_before` and an early one goes back with the rest of its wait.
- Redirects are not followed. Outside the local stack, only HTTPS to public addresses is posted:
  the host is resolved and every address checked (loopback, private, link-local, multicast,
  reserved… and their IPv4-mapped/6to4 forms are refused), then the connection is pinned to the
  checked address. A refused address is logged as `refused` and not retried: it is the URL, not
  the moment, that is wrong (redeliver once the client fixed its DNS).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import httpx
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field, ValidationError

from wanflow import keys, observability
from wanflow.clock import UtcTimestamp, from_epoch, iso
from wanflow.config import Config, ConfigError
from wanflow.errors import ErrorItem, WanflowError
from wanflow.results import present
from wanflow.schema import Schema
from wanflow.store import StoreUnavailable, TaskNotFound, TaskRecord, TaskStore
from wanflow.task import TERMINAL, WEBHOOK_EVENTS, TaskStatus, WebhookEvent, WebhookTarget

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

    from wanflow.tenants import Tenants

logger = logging.getLogger(__name__)

#: Waits after each failed attempt (upstream seconds, times the time scale): 8 attempts in all.
RETRY_DELAYS_S: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(RETRY_DELAYS_S) + 1
#: SQS's largest DelaySeconds.
SQS_MAX_DELAY_S = 900
MAX_URL_LENGTH = 2048
USER_AGENT = "wanflow-webhooks/1.0"
_TIMEOUT = httpx.Timeout(10.0)
#: How many log items a listing returns at most (5 events × 8 attempts, plus redeliveries).
_MAX_LISTED = 500

Outcome = Literal["delivered", "failed", "gone", "refused", "gave_up"]

_EVENT_OF: Mapping[TaskStatus, WebhookEvent] = {
    TaskStatus.RUNNING: "task.running",
    TaskStatus.SUCCEEDED: "task.succeeded",
    TaskStatus.FAILED: "task.failed",
    TaskStatus.CANCELED: "task.canceled",
    TaskStatus.TIMED_OUT: "task.timed_out",
}


class NotifyUnavailable(WanflowError):
    """The notify queue could not take a message (the step that wrote the state retries)."""

    code = "notify_unavailable"


class NoWebhook(WanflowError):
    """The task has no webhook to deliver to."""

    code = "no_webhook"


class EventNotAvailable(WanflowError):
    """The event asked for cannot be redelivered: it did not happen, or is not subscribed."""

    code = "event_not_available"


# --- what a webhook is ---------------------------------------------------------------------------


def event_for(status: TaskStatus) -> WebhookEvent | None:
    """The event a task in `status` has reached (None before it runs)."""
    return _EVENT_OF.get(status)


def webhook_id(task_id: str, event: str) -> str:
    """The stable `webhook-id` of one event of one task (the same on every attempt)."""
    return "msg_" + hashlib.sha256(f"{task_id}\0{event}".encode()).hexdigest()[:32]


def retry_delay_s(attempt: int) -> float | None:
    """Upstream seconds to wait after failed attempt number `attempt` (1-based); None after the
    last one."""
    return RETRY_DELAYS_S[attempt - 1] if 1 <= attempt <= len(RETRY_DELAYS_S) else None


class Delivery(Schema):
    """One attempt to post one event to a task's webhook."""

    webhook_id: str = Field(description="The event's `webhook-id`, the same on every attempt.")
    event: WebhookEvent = Field(description="The event posted.")
    attempt: int = Field(description="1 for the first attempt, counting up on each retry.")
    url: str = Field(description="Where it was posted.")
    at: UtcTimestamp = Field(description="When the attempt was made.")
    status_code: int | None = Field(default=None, description="The receiver's HTTP status.")
    outcome: Outcome = Field(
        description="delivered (2xx), failed (retried later), gone (410: never again), "
        "refused (not a public HTTPS address: not sent), gave_up (last attempt failed)."
    )
    error: str | None = Field(default=None, description="Why it did not succeed.")
    duration_ms: int | None = Field(default=None, description="How long the request took.")
    next_attempt_at: UtcTimestamp | None = Field(
        default=None, description="When the next attempt is due, when one is scheduled."
    )


class DeliveryList(Schema):
    """The answer of GET /v1/tasks/{task_id}/deliveries."""

    deliveries: list[Delivery] = Field(description="Every delivery attempt, oldest first.")


class RedeliverRequest(Schema):
    """The (optional) body of POST /v1/tasks/{task_id}/deliveries/redeliver."""

    event: WebhookEvent | None = Field(
        default=None, description="The event to send again; the task's latest one by default."
    )


class Redelivery(Schema):
    """The answer of POST /v1/tasks/{task_id}/deliveries/redeliver."""

    enqueued: list[str] = Field(description="The webhook-ids queued (the events' original ids).")


class Notice(Schema):
    """A notify queue message: one event of one task to post (the task is read when posting)."""

    task_id: str
    event: WebhookEvent
    webhook_id: str
    attempt: int = 1
    occurred_at: UtcTimestamp = Field(description="When the event happened; the payload's time.")
    not_before: float = Field(default=0.0, description="Unix time before which not to post.")
    redelivery: bool = False


# --- the target: validated at submit time -------------------------------------------------------


def check_url(url: Any, param: str, code: str, *, allow_http: bool) -> list[ErrorItem]:
    """Problems with a client's webhook URL: HTTPS, at most 2048 characters, a host, no
    credentials, and not an IP literal outside the public internet (names are checked when
    posting). `allow_http` (the local stack) also lets plain http and loopback through, for
    loopback hosts only.

    Messages read like the catalog's (`<field>: ...`): the flash model's `callback_url` gets the
    very error `wanflow validate` gives for it.
    """

    def problem(message: str) -> list[ErrorItem]:
        return [ErrorItem(code=code, message=f"{param}: {message}", param=param)]

    if not isinstance(url, str):
        return [ErrorItem(code="invalid_type", message=f"{param}: must be a string", param=param)]
    if len(url) > MAX_URL_LENGTH:
        return problem(f"{param} is {len(url)} characters; at most {MAX_URL_LENGTH} are allowed")
    if any(c.isspace() for c in url):
        return problem(f"{param} must not contain spaces")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        return problem(f"{param} is not a valid URL")
    local = allow_http and _is_loopback_host(host)
    if parts.scheme.lower() not in ({"https", "http"} if local else {"https"}) or not host:
        return problem(f"{param} must be an HTTPS URL")
    if "@" in parts.netloc:
        # The URL is stored, shown in the task, the delivery log and every payload: a password
        # in it would be handed to whoever reads any of those.
        from wanflow.catalog.base import CREDENTIALS_IN_URL

        return problem(CREDENTIALS_IN_URL.format(param))
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return []
    why = address_refusal(str(literal), allow_loopback=allow_http)
    return problem(f"{param} points at a {why} address; use a public one") if why else []


def _is_loopback_host(host: str | None) -> bool:
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_target(raw: Any, *, allow_http: bool) -> tuple[WebhookTarget | None, list[ErrorItem]]:
    """The `webhook` field of a submit body, or the problems with it (each naming its field)."""
    if raw is None:
        return None, []
    if not isinstance(raw, dict):
        message = 'webhook: must be an object like {"url": "https://...", "events": [...]}'
        return None, [ErrorItem(code="invalid_type", message=message, param="webhook")]
    problems = [
        ErrorItem(code="unknown_field", message=f"webhook.{k}: not a field", param=f"webhook.{k}")
        for k in raw
        if k not in {"url", "events"}
    ]
    if "url" not in raw:
        problems.append(
            ErrorItem(code="missing_field", message="webhook.url: required", param="webhook.url")
        )
    else:
        problems += check_url(
            raw["url"], "webhook.url", "invalid_webhook_url", allow_http=allow_http
        )
    events = raw.get("events", list(WEBHOOK_EVENTS))
    known = ", ".join(WEBHOOK_EVENTS)
    if not isinstance(events, list) or not events:
        message = f"webhook.events: must be a non-empty list of: {known}"
        problems.append(ErrorItem(code="invalid_value", message=message, param="webhook.events"))
    else:
        for name in events:
            if name not in WEBHOOK_EVENTS:
                problems.append(
                    ErrorItem(
                        code="invalid_value",
                        message=f"webhook.events: {name!r} is not one of: {known}",
                        param="webhook.events",
                    )
                )
    if problems:
        return None, problems
    wanted = [e for e in WEBHOOK_EVENTS if e in events]  # known order, no duplicates
    return WebhookTarget(url=raw["url"], events=wanted), []


# --- the address guard ----------------------------------------------------------------------------


def address_refusal(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why wanflow will not post to an IP address (e.g. "private"), or None for a public one.

    IPv4 addresses carried inside IPv6 (mapped, 6to4, Teredo) are judged as the IPv4 address.
    """
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
        address.split("%", 1)[0]  # an IPv6 zone id
    )
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            ip = embedded
    if ip.is_loopback:
        return None if allow_loopback else "loopback"
    for why, hit in (
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("non-public", not ip.is_global),
    ):
        if hit:
            return why
    return None


Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address a host name resolves to (OSError when it does not)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Refused(Exception):
    """The URL is not one wanflow posts to."""


@dataclass(frozen=True)
class Destination:
    """Where to connect for a URL: the checked address, with the name kept for Host and TLS."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, Any]


def destination(url: str, *, allow_local: bool, resolver: Resolver = resolve) -> Destination:
    """The connection to make for a webhook URL, pinned to an address that passed the guard.

    Raises Refused for a URL or address wanflow will not post to, OSError when the name does not
    resolve. Pinning means a DNS answer that changes between the check and the connection (DNS
    rebinding) cannot redirect the request to an internal address.
    """
    parsed = httpx.URL(url)
    if parsed.scheme != "https" and not (allow_local and parsed.scheme == "http"):
        raise Refused("not an HTTPS URL")
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = resolver(host, port)
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    for address in addresses:
        why = address_refusal(address, allow_loopback=allow_local)
        if why:
            raise Refused(f"{host} resolves to a {why} address ({address})")
    pinned = addresses[0]
    if pinned == host:
        return Destination(url, {}, {})
    extensions: dict[str, Any] = {"sni_hostname": host} if parsed.scheme == "https" else {}
    netloc = parsed.netloc.decode("ascii")
    return Destination(str(parsed.copy_with(host=pinned)), {"Host": netloc}, extensions)


# --- producing events -----------------------------------------------------------------------------


@dataclass
class Notifications:
    """Puts task events onto the notify queue (the notify function posts them)."""

    config: Config
    sqs: SQSClient

    def task_event(self, record: TaskRecord, event: WebhookEvent) -> bool:
        """Enqueue `event` if the task has a webhook that wants it; whether it did.

        Harmless to call twice for the same event: the message carries the event's stable
        webhook-id, and a first attempt is skipped once that id was delivered.
        Raises NotifyUnavailable when the queue cannot take it.
        """
        if record.webhook is None or event not in record.webhook.events:
            return False
        self._send(_notice(record, event, redelivery=False), 0)
        logger.info("webhook event queued", extra={"task_id": record.id, "event": event})
        return True

    def task_ended(self, record: TaskRecord) -> bool:
        """Enqueue the terminal event of a terminal task (if its webhook wants it)."""
        event = event_for(record.status)
        if record.status not in TERMINAL or event is None:
            return False
        return self.task_event(record, event)

    def redeliver(self, record: TaskRecord, event: str | None) -> list[str]:
        """Post an event of the task again, with its original webhook-id; the ids enqueued.

        `event` None means the task's latest event its webhook subscribes to. Raises NoWebhook,
        or EventNotAvailable when the event has not happened or the webhook does not subscribe
        to it.
        """
        if record.webhook is None:
            raise NoWebhook(f"task {record.id} has no webhook")
        happened = events_so_far(record)
        if event is None:
            wanted = [e for e in happened if e in record.webhook.events]
            if not wanted:
                raise EventNotAvailable(
                    f"task {record.id} ({record.status}) has no event its webhook subscribes to"
                )
            event = wanted[-1]
        chosen = next((e for e in WEBHOOK_EVENTS if e == event), None)
        if chosen is None:
            raise EventNotAvailable(f"{event!r} is not one of: {', '.join(WEBHOOK_EVENTS)}")
        if chosen not in happened:
            raise EventNotAvailable(f"{chosen} has not happened for task {record.id}")
        if chosen not in record.webhook.events:
            raise EventNotAvailable(f"the task's webhook does not subscribe to {chosen}")
        notice = _notice(record, chosen, redelivery=True)
        self._send(notice, 0)
        logger.info("webhook event redelivered", extra={"task_id": record.id, "event": chosen})
        return [notice.webhook_id]

    def send_later(self, notice: Notice, delay_s: float) -> None:
        """Put a notice back on the queue, visible in `delay_s` seconds (at most SQS's 900)."""
        self._send(notice, min(SQS_MAX_DELAY_S, max(0, math.floor(delay_s))))

    def _send(self, notice: Notice, delay_s: int) -> None:
        if not self.config.notify_queue_url:
            raise ConfigError("NOTIFY_QUEUE_URL is required to send client webhooks")
        try:
            self.sqs.send_message(
                QueueUrl=self.config.notify_queue_url,
                MessageBody=notice.model_dump_json(),
                DelaySeconds=delay_s,
            )
        except (ClientError, BotoCoreError) as exc:
            raise NotifyUnavailable(f"the notify queue refused the message: {exc}") from exc


def events_so_far(record: TaskRecord) -> list[WebhookEvent]:
    """The events a task has reached, oldest first.

    `task.running` counts once the task ran upstream (a terminal task with an upstream id may
    have skipped the running report, but a client asking for it again gets the current task).
    """
    happened: list[WebhookEvent] = []
    if record.status is TaskStatus.RUNNING or (
        record.status in TERMINAL and record.upstream_id is not None
    ):
        happened.append("task.running")
    if record.status in TERMINAL:
        ended = event_for(record.status)
        assert ended is not None
        happened.append(ended)
    return happened


def _notice(record: TaskRecord, event: WebhookEvent, *, redelivery: bool) -> Notice:
    occurred = (record.completed_at if event != "task.running" else None) or record.updated_at
    return Notice(
        task_id=record.id,
        event=event,
        webhook_id=webhook_id(record.id, event),
        occurred_at=occurred,
        redelivery=redelivery,
    )


# --- the delivery log ---------------------------------------------------------------------------


@dataclass
class DeliveryLog:
    """The delivery attempts of each task, stored beside it (`pk=TASK#<id>, sk=DELIVERY#...`)."""

    table: str
    client: DynamoDBClient

    @classmethod
    def of(cls, store: TaskStore) -> DeliveryLog:
        """The log in the task store's table."""
        return cls(store.table, store.client)

    def append(self, task_id: str, delivery: Delivery) -> None:
        """Keep one attempt (sorted by time; a random suffix keeps equal times apart)."""
        item: dict[str, Any] = keys.delivery_key(task_id, delivery.at, secrets.token_hex(4))
        for name, value in delivery.model_dump(mode="json").items():
            if isinstance(value, bool) or value is None:
                continue
            item[name] = {"N": str(value)} if isinstance(value, int) else {"S": str(value)}
        self.client.put_item(TableName=self.table, Item=item)

    def list(self, task_id: str) -> list[Delivery]:
        """A task's delivery attempts, oldest first."""
        found: list[Delivery] = []
        query: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :d)",
            "ExpressionAttributeValues": {
                ":pk": {"S": keys.task_pk(task_id)},
                ":d": {"S": keys.DELIVERY_PREFIX},
            },
            "ConsistentRead": True,
        }
        while len(found) < _MAX_LISTED:
            got = self.client.query(**query)
            for item in got.get("Items", []):
                # Numbers come back as strings ({"N": "3"}): the model reads them as ints.
                plain = {k: next(iter(v.values())) for k, v in item.items()}
                found.append(Delivery.model_validate(plain))
            if "LastEvaluatedKey" not in got:
                break
            query["ExclusiveStartKey"] = got["LastEvaluatedKey"]
        return found[:_MAX_LISTED]

    def delivered(self, task_id: str, hook_id: str) -> bool:
        """Whether an attempt with that webhook-id already ended the matter (2xx or 410)."""
        return any(
            d.webhook_id == hook_id and d.outcome in {"delivered", "gone"}
            for d in self.list(task_id)
        )


def list_deliveries(store: TaskStore, task_id: str) -> list[Delivery]:
    """A task's delivery log, oldest first (the caller checked the task is the tenant's)."""
    return DeliveryLog.of(store).list(task_id)


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


# --- delivering -----------------------------------------------------------------------------------


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
