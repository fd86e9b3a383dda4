"""The delivery log: every attempt to post a task's events, kept beside the task.

What is guaranteed: each attempt is one item `pk=TASK#<id>, sk=DELIVERY#<time>#<random>`
(`wanflow.keys`), so a task's attempts list oldest first (times have a fixed width) and two at
the same millisecond both stay. A listing reads consistently and returns at most 500 attempts
(5 events × 8 attempts, plus redeliveries). An event counts as done once one of its attempts
was delivered (2xx) or gone (410). The log never changes what was posted: the deliverer
writes it after the post, and a failed write is logged, not retried.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from wanflow import keys
from wanflow.clock import UtcTimestamp
from wanflow.schema import Schema
from wanflow.task import WebhookEvent

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from wanflow.store import TaskStore

#: How many log items a listing returns at most (5 events × 8 attempts, plus redeliveries).
_MAX_LISTED = 500

Outcome = Literal["delivered", "failed", "gone", "refused", "gave_up"]


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
