"""Tasks in DynamoDB, with status moves that only go forward.

One table holds everything (see template.yaml and `wanflow.keys`): a task is the item
`pk=TASK#<id>, sk=TASK`; the raw upstream callbacks and other events of a task sit beside it
under `sk=EVENT#<event id>`.
Every status move is a conditional update: the task must be in a status that `allowed_previous`
permits, so a late or duplicated update can never move a task backwards, and of two writers
racing to a terminal state exactly one wins. Every write bumps `version`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from pydantic import Field
from pydantic_core import to_jsonable_python

from wanflow import keys
from wanflow.catalog.base import Timing
from wanflow.clock import UtcTimestamp, now_iso
from wanflow.errors import TaskNotFound, WanflowError
from wanflow.schema import Schema
from wanflow.task import (
    TERMINAL,
    Task,
    TaskError,
    TaskOutput,
    TaskStatus,
    TaskUsage,
    UpstreamRef,
    WebhookTarget,
)
from wanflow.task import allowed_previous as previous_of

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_SERIALIZE = TypeSerializer().serialize
_DESERIALIZE = TypeDeserializer().deserialize
_NOT_TERMINAL = tuple(s for s in TaskStatus if s not in TERMINAL)
# Refused or dropped connections, timeouts: EndpointConnectionError, ConnectTimeoutError,
# ReadTimeoutError, ConnectionClosedError and the like.
_CONNECTION_ERRORS = (BotoConnectionError, HTTPClientError)


class TaskRecord(Schema):
    """A task as stored: the public task plus what wanflow needs to run it."""

    id: str
    tenant: str
    model: str
    mode: str
    status: TaskStatus
    version: int = 0
    completion: str = Field(description="callback or poll")
    request: dict[str, Any] = Field(description="The normalised upstream body.")
    request_hash: str = Field(default="", description="SHA-256 of the submitted body.")
    warnings: list[str] = Field(default_factory=list)
    timing: Timing = Field(description="The model's timing for this request (upstream seconds).")
    progress: int | None = None
    upstream_id: str | None = None
    upstream_status: str | None = None
    outputs: list[TaskOutput] = Field(default_factory=list)
    usage: TaskUsage | None = None
    error: TaskError | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    webhook: WebhookTarget | None = Field(default=None, description="The client's webhook.")
    task_token: str | None = Field(default=None, description="Step Functions token, if waiting.")
    polls: int = 0
    unknown_count: int = 0
    created_at: UtcTimestamp
    updated_at: UtcTimestamp
    completed_at: UtcTimestamp | None = None

    def public(self) -> Task:
        """The task as a client sees it."""
        return Task(
            id=self.id,
            model=self.model,
            mode=self.mode,
            status=self.status,
            progress=self.progress,
            warnings=self.warnings,
            completion="callback" if self.completion == "callback" else "poll",
            upstream=UpstreamRef(task_id=self.upstream_id, status=self.upstream_status),
            outputs=self.outputs,
            usage=self.usage,
            error=self.error,
            metadata=self.metadata,
            webhook=self.webhook,
            created_at=self.created_at,
            updated_at=self.updated_at,
            completed_at=self.completed_at,
        )


class StoreUnavailable(WanflowError):
    """DynamoDB could not serve the call now (throttled, a service error, or unreachable) after
    botocore's own retries: a later try may succeed. The state machine retries a step that
    raises it (the Lambda error type it sees is this class's name)."""

    code = "store_unavailable"
    status = 503

    def public_message(self) -> str:
        return "the task store is busy or unavailable; nothing was changed, try again shortly"


#: DynamoDB's answers that say "not now" rather than "not this request".
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)
_HOOK_ID = "wanflow-store-unavailable"


def _after_call(http_response: Any, parsed: Mapping[str, Any], **_: Any) -> None:
    if getattr(http_response, "status_code", 200) < 300:
        return
    error = parsed.get("Error") or {}
    code = error.get("Code")
    if code in TRANSIENT_CODES:
        raise StoreUnavailable(f"DynamoDB answered {code}: {error.get('Message') or ''}".strip())


def _after_call_error(exception: Exception, **_: Any) -> None:
    if isinstance(exception, _CONNECTION_ERRORS):
        raise StoreUnavailable(f"DynamoDB unreachable: {type(exception).__name__}: {exception}")


def translate_errors(client: DynamoDBClient) -> DynamoDBClient:
    """Make `client` raise StoreUnavailable for throttling, service and connection errors.

    Installed on the client (botocore's `after-call` events, which come once botocore's own
    retries are spent), so every DynamoDB user sharing it (tasks, tenants and API keys, the
    delivery log, pending uploads) gets the same translation without wrapping each call;
    every other error (a failed condition, a validation error) stays a ClientError.
    Idempotent; returns the client.
    """
    events = client.meta.events
    events.register("after-call.dynamodb", _after_call, unique_id=_HOOK_ID)
    events.register("after-call-error.dynamodb", _after_call_error, unique_id=_HOOK_ID + "-io")
    return client


class TaskExists(WanflowError):
    """A task with that id was already created."""

    code = "task_exists"


class StaleWrite(WanflowError):
    """A conditional write lost: the task is not in a status (or version) that allows it.

    `current` is the task as it is now (None if it does not exist), read in the same call.
    """

    code = "stale_write"

    def __init__(self, message: str, current: TaskRecord | None) -> None:
        super().__init__(message)
        self.current = current


def _to_dynamo(values: Mapping[str, Any]) -> dict[str, Any]:
    # Pydantic models become plain JSON values; floats are not allowed in DynamoDB, so a JSON
    # round trip turns every number into a Decimal.
    plain = json.loads(json.dumps(to_jsonable_python(values)), parse_float=Decimal)
    return {k: _SERIALIZE(v) for k, v in plain.items() if v is not None}


def _from_dynamo(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _DESERIALIZE(v) for k, v in item.items()}


class TaskStore:
    """Reads and writes tasks; every status change is conditional and forward-only."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self.table = table_name
        self.client = translate_errors(client)

    def create(self, record: TaskRecord) -> None:
        """Store a new task; TaskExists if its id is taken."""
        item = _to_dynamo(record.model_dump(mode="json"))
        item.update(keys.task_key(record.id))
        item["gsi1pk"] = {"S": keys.tenant_tasks(record.tenant)}
        item["gsi1sk"] = {"S": keys.by_created(record.created_at, record.id)}
        try:
            self.client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _conditional(exc):
                raise TaskExists(f"task {record.id} already exists") from None
            raise

    def get(self, task_id: str) -> TaskRecord:
        """The task, read consistently; TaskNotFound if there is none."""
        got = self.client.get_item(
            TableName=self.table, Key=keys.task_key(task_id), ConsistentRead=True
        )
        if "Item" not in got:
            raise TaskNotFound(f"no task {task_id}")
        return TaskRecord.model_validate(_from_dynamo(got["Item"]))

    def peek(self, task_id: str, fields: tuple[str, ...]) -> dict[str, Any]:
        """Some attributes of a task, read consistently (cheaper than the whole task on a hot
        path); TaskNotFound if there is none. Absent attributes are absent from the result."""
        names = {f"#a{i}": name for i, name in enumerate(fields)}
        got = self.client.get_item(
            TableName=self.table,
            Key=keys.task_key(task_id),
            ConsistentRead=True,
            ProjectionExpression=", ".join(names),
            ExpressionAttributeNames=names,
        )
        if "Item" not in got:
            raise TaskNotFound(f"no task {task_id}")
        return _from_dynamo(got["Item"])

    def advance(
        self, task_id: str, target: TaskStatus, changes: Mapping[str, Any] | None = None
    ) -> TaskRecord:
        """Move a task forward to `target`, writing `changes` with it, in one conditional update.

        Raises StaleWrite (with the current task) when the task's status does not allow the move:
        a duplicate or late update, or another writer that won the race to a terminal state.
        """
        fields = dict(changes or {})
        fields["status"] = target.value
        if target in TERMINAL:
            fields.setdefault("completed_at", now_iso())
        allowed = sorted(s.value for s in previous_of(target))
        return self._update(task_id, fields, allowed, f"move to {target.value}")

    def patch(self, task_id: str, changes: Mapping[str, Any]) -> TaskRecord:
        """Write fields other than the status of a task that is not terminal yet.

        Raises StaleWrite once the task is terminal: nothing changes a finished task.
        """
        if "status" in changes:
            raise ValueError("use advance() to change a status")
        return self._update(task_id, changes, [s.value for s in _NOT_TERMINAL], "update")

    def _update(
        self, task_id: str, changes: Mapping[str, Any], statuses: list[str], what: str
    ) -> TaskRecord:
        fields = {**changes, "updated_at": now_iso()}
        values = _to_dynamo(fields)
        names = {"#status": "status", "#version": "version"}
        expr_values: dict[str, Any] = {":one": {"N": "1"}}
        sets, removes = ["#version = #version + :one"], []
        for i, name in enumerate(fields):
            names[f"#f{i}"] = name
            if name in values:
                sets.append(f"#f{i} = :v{i}")
                expr_values[f":v{i}"] = values[name]
            else:  # None clears the attribute
                removes.append(f"#f{i}")
        expr_values.update({f":s{i}": {"S": s} for i, s in enumerate(statuses)})
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        in_list = ", ".join(f":s{i}" for i in range(len(statuses)))
        try:
            done = self.client.update_item(
                TableName=self.table,
                Key=keys.task_key(task_id),
                UpdateExpression=update,
                ConditionExpression=f"attribute_exists(pk) AND #status IN ({in_list})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=expr_values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _conditional(exc):
                raise
            old = cast("dict[str, Any] | None", exc.response.get("Item"))
            current = TaskRecord.model_validate(_from_dynamo(old)) if old else None
            state = current.status.value if current else "missing"
            raise StaleWrite(f"cannot {what} task {task_id}: it is {state}", current) from None
        return TaskRecord.model_validate(_from_dynamo(done["Attributes"]))

    def list_for_tenant(
        self,
        tenant: str,
        *,
        limit: int = 20,
        cursor: dict[str, Any] | None = None,
        status: str | None = None,
        model: str | None = None,
    ) -> tuple[list[TaskRecord], dict[str, Any] | None]:
        """A tenant's tasks, newest first, and the key to continue from (None at the end).

        Filters apply after DynamoDB's `Limit`, so a filtered page may hold fewer than `limit`
        tasks while a next page still exists.
        """
        names: dict[str, str] = {}
        values: dict[str, Any] = {":t": {"S": keys.tenant_tasks(tenant)}}
        filters = []
        if status:
            names["#status"], values[":status"] = "status", {"S": status}
            filters.append("#status = :status")
        if model:
            names["#model"], values[":model"] = "model", {"S": model}
            filters.append("#model = :model")
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": keys.BY_TENANT,
            "KeyConditionExpression": "gsi1pk = :t",
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if names:
            query["ExpressionAttributeNames"] = names
            query["FilterExpression"] = " AND ".join(filters)
        if cursor:
            query["ExclusiveStartKey"] = cursor
        got = self.client.query(**query)
        records = [TaskRecord.model_validate(_from_dynamo(i)) for i in got.get("Items", [])]
        return records, got.get("LastEvaluatedKey")

    def record_event(self, task_id: str, event_id: str, kind: str, body: Any) -> bool:
        """Keep a raw event (an upstream callback) beside its task, once per event id.

        Returns False if that event id was recorded before. A plain conditional put: the
        cheapest write there is, on the callback route's hot path.
        """
        item = _to_dynamo({"kind": kind, "body": json.dumps(body), "at": now_iso()})
        item.update(keys.event_key(task_id, event_id))
        try:
            self.client.put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as exc:
            if _conditional(exc):
                return False
            raise
        return True

    def has_events(self, task_id: str) -> bool:
        """Whether any event (an upstream callback) was recorded for the task (consistent read)."""
        got = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :ev)",
            ExpressionAttributeValues={
                ":pk": {"S": keys.task_pk(task_id)},
                ":ev": {"S": keys.EVENT_PREFIX},
            },
            ConsistentRead=True,
            Limit=1,
            Select="COUNT",
        )
        return got.get("Count", 0) > 0


def _conditional(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
