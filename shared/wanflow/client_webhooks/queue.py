"""Enqueueing client webhook events: a task's events go onto the notify queue as small messages.

What is guaranteed:
- an event is enqueued only when the task has a webhook that subscribes to it;
- `webhook-id` is the same for a (task, event) pair on every attempt, every duplicate enqueue
  and every redelivery, so enqueueing twice is harmless and a receiver dedupes on it;
- a redelivery sends an event the task has reached again, under its original id; an event that
  did not happen, or that the webhook does not subscribe to, is refused (EventNotAvailable);
- a message waits on the queue at most SQS's 900 s: a longer wait is the deliverer's to hop
  (the message carries `not_before`);
- a queue that cannot take a message raises NotifyUnavailable: the step that wrote the task's
  state then fails, and its retry enqueues again.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from wanflow.clock import UtcTimestamp
from wanflow.config import Config, ConfigError
from wanflow.errors import CONFLICT, INVALID_REQUEST, WanflowError
from wanflow.schema import Schema
from wanflow.store import TaskRecord
from wanflow.task import TERMINAL, WEBHOOK_EVENTS, TaskStatus, WebhookEvent

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

#: SQS's largest DelaySeconds.
SQS_MAX_DELAY_S = 900

_EVENT_OF: Mapping[TaskStatus, WebhookEvent] = {
    TaskStatus.RUNNING: "task.running",
    TaskStatus.SUCCEEDED: "task.succeeded",
    TaskStatus.FAILED: "task.failed",
    TaskStatus.CANCELED: "task.canceled",
    TaskStatus.TIMED_OUT: "task.timed_out",
}


class NotifyUnavailable(WanflowError):
    """The notify queue could not take a message (the step that wrote the state retries; the
    API answers 503: nothing was queued, try again)."""

    code = "notify_unavailable"
    status = 503

    def public_message(self) -> str:
        return "the webhook queue could not take the event now; nothing was queued, try again"


class NoWebhook(WanflowError):
    """The task has no webhook to deliver to."""

    code = "no_webhook"
    status = 409
    kind = CONFLICT


class EventNotAvailable(WanflowError):
    """The event asked for cannot be redelivered: it did not happen, or is not subscribed.

    A 409 when the task's latest event was asked for (the task is not there yet); a 400
    naming `event` when the client named an event this task cannot send (`named`).
    """

    code = "event_not_available"
    status = 409
    kind = CONFLICT

    def __init__(self, message: str, *, named: bool = False) -> None:
        super().__init__(message)
        if named:
            self.status, self.kind, self.code, self.param = (
                400,
                INVALID_REQUEST,
                "invalid_value",
                "event",
            )


def event_for(status: TaskStatus) -> WebhookEvent | None:
    """The event a task in `status` has reached (None before it runs)."""
    return _EVENT_OF.get(status)


def webhook_id(task_id: str, event: str) -> str:
    """The stable `webhook-id` of one event of one task (the same on every attempt)."""
    return "msg_" + hashlib.sha256(f"{task_id}\0{event}".encode()).hexdigest()[:32]


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


class Notice(Schema):
    """A notify queue message: one event of one task to post (the task is read when posting)."""

    task_id: str
    event: WebhookEvent
    webhook_id: str
    attempt: int = 1
    occurred_at: UtcTimestamp = Field(description="When the event happened; the payload's time.")
    not_before: float = Field(default=0.0, description="Unix time before which not to post.")
    redelivery: bool = False


def _notice(record: TaskRecord, event: WebhookEvent, *, redelivery: bool) -> Notice:
    occurred = (record.completed_at if event != "task.running" else None) or record.updated_at
    return Notice(
        task_id=record.id,
        event=event,
        webhook_id=webhook_id(record.id, event),
        occurred_at=occurred,
        redelivery=redelivery,
    )


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
            message = f"{event!r} is not one of: {', '.join(WEBHOOK_EVENTS)}"
            raise EventNotAvailable(message, named=True)
        if chosen not in happened:
            message = f"{chosen} has not happened for task {record.id}"
            raise EventNotAvailable(message, named=True)
        if chosen not in record.webhook.events:
            message = f"the task's webhook does not subscribe to {chosen}"
            raise EventNotAvailable(message, named=True)
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
