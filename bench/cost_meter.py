"""What the local stack's handlers spend, per task, seen from outside the product code.

Two hooks, both in the bench process (the handlers run in it):
- every Lambda handler of the stack is wrapped where the local stack looks it up
  (`LocalAws.handler`): one invocation per call, whoever calls (API Gateway adapter, moto's state
  machine executor, the SQS poller), with its wall time;
- every boto3 API call goes through `BaseClient._make_api_call`, wrapped once: DynamoDB calls
  become read and write units, S3, SQS and Secrets Manager calls become billed requests.

Each cost is charged to a task: by the key it touches (`pk=TASK#<id>`, `results/<tenant>/<id>/`,
a notify message's `task_id`), else to the task(s) of the invocation that made it (a lifecycle
step's `task_id`, a callback's path, an SQS batch's messages), else to `shared` (the authorizer,
secrets) for the caller to spread over every task. What only the local stack does (its S3
notifier listing the bucket) is not counted; its SQS poller's receives and deletes are, as
Lambda's own poller makes them on AWS (its empty receives are counted apart: a fixed cost).

DynamoDB units come from item sizes by DynamoDB's rules, because moto does not bill: asked for
`ReturnConsumedCapacity`, it answers a constant (1 per write, 0.5 per read, whatever the size or
consistency) and nothing for UpdateItem. The rules applied: a write costs 1 WRU per started KB of
the larger of the item before and after (a failed conditional write too, by the item it found),
plus the same again for each global secondary index whose key the item has (two when the write
moves the item in the index); a read costs 1 RRU per started 4 KB read, half for an eventually
consistent one; a Query costs by the total size of the items its key condition read (filters
and projections do not reduce it), at least one unit. Item sizes follow DynamoDB's sizing:
names and values in UTF-8 bytes, numbers 1 byte per two significant digits plus 1, 3 bytes per
map or list plus 1 per element. Where a call's answer does not show the whole item (a
projection, an update without `ALL_NEW`), the meter reads it again with a client of its own,
which is not metered.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from wanflow import keys
from wanflow_local.aws import LocalAws
from wanflow_local.deploy import Stack

logger = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]
Usage = defaultdict[str, float]
"""Metric name → amount: `lambda:<function>`, `lambda_ms:<function>`, `rru`, `wru`, `sqs`,
`s3_put`, `s3_get`, `secrets`."""

#: S3 requests billed at the PUT/COPY/POST/LIST rate and at the GET rate; the rest are free.
S3_PUT_CLASS = frozenset(
    {
        "PutObject",
        "CopyObject",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "ListObjects",
        "ListObjectsV2",
    }
)
S3_GET_CLASS = frozenset({"GetObject", "HeadObject"})
SQS_BILLED = frozenset(
    {
        "SendMessage",
        "SendMessageBatch",
        "ReceiveMessage",
        "DeleteMessage",
        "DeleteMessageBatch",
        "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch",
    }
)


# --- DynamoDB sizing ---------------------------------------------------------------------------


def _number_size(text: str) -> int:
    digits = text.lstrip("+-").replace(".", "").split("e")[0].split("E")[0]
    significant = digits.strip("0") or "0"
    return math.ceil(len(significant) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB's sizing (low-level `{"S": ...}` form)."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(str(raw).encode())
    if kind == "N":
        return _number_size(str(raw))
    if kind == "B":
        return len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(s).encode()) for s in raw)
    if kind == "NS":
        return sum(_number_size(str(n)) for n in raw)
    if kind == "BS":
        return sum(len(b) for b in raw)
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in raw)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in raw.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Any]) -> int:
    """Bytes of an item: every attribute's name and value."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    """WRU of a standard write of an item of `size` bytes (at least 1)."""
    return max(1, math.ceil(size / 1024))


def read_units(size: int, *, consistent: bool) -> float:
    """RRU of a read of `size` bytes (at least one 4 KB unit; half when eventually consistent)."""
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


@dataclass(frozen=True)
class Index:
    """A global secondary index: the attributes of its key."""

    name: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Known:
    """What the meter last saw of an item: its size and its key in each index (None: absent)."""

    size: int
    index_keys: tuple[tuple[str, ...] | None, ...]


# --- attribution -------------------------------------------------------------------------------


@dataclass
class Invocation:
    """A handler call under way on this thread: which function, for which tasks."""

    function: str
    task_ids: list[str]


_local = threading.local()


def _current() -> Invocation | None:
    invocation: Invocation | None = getattr(_local, "invocation", None)
    return invocation


def event_task_ids(event: Any) -> list[str]:
    """The task ids an event is about: a lifecycle step's, a callback's path, SQS messages'."""
    if not isinstance(event, dict):
        return []
    if isinstance(event.get("task_id"), str):
        return [event["task_id"]]
    path = event.get("pathParameters") or {}
    if isinstance(path, dict) and isinstance(path.get("task_id"), str):
        return [path["task_id"]]
    ids = []
    for record in event.get("Records") or []:
        task_id = _message_task_id(record.get("body")) if isinstance(record, dict) else None
        if task_id:
            ids.append(task_id)
    return ids


def _message_task_id(body: Any) -> str | None:
    try:
        data = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        return None
    task_id = data.get("task_id") if isinstance(data, dict) else None
    return task_id if isinstance(task_id, str) else None


def _answer_task_id(result: Any) -> str | None:
    """The task id in an API answer (submit's 202 body)."""
    if not isinstance(result, dict) or not isinstance(result.get("body"), str):
        return None
    try:
        body = json.loads(result["body"])
    except ValueError:
        return None
    task_id = body.get("id") if isinstance(body, dict) else None
    return task_id if isinstance(task_id, str) else None


def _task_of_pk(key: Mapping[str, Any] | None) -> str | None:
    pk = str(((key or {}).get("pk") or {}).get("S", ""))
    return keys.task_id_of(pk)


def _task_of_s3_key(key: Any) -> str | None:
    parts = str(key or "").split("/")
    return parts[2] if len(parts) > 3 and parts[0] == "results" else None


# --- the meter ---------------------------------------------------------------------------------


def _usage() -> Usage:
    return defaultdict(float)


@dataclass
class Meter:
    """Per-task usage of Lambda, DynamoDB, S3, SQS and Secrets Manager (install, run, uninstall)."""

    stack: Stack
    aws: LocalAws
    per_task: defaultdict[str, Usage] = field(default_factory=lambda: defaultdict(_usage))
    shared: Usage = field(default_factory=_usage)
    #: Empty ReceiveMessage calls of the local SQS poller (a fixed cost, not a per-task one).
    idle_receives: int = 0
    #: Calls the meter could not price (an operation it has no rule for) or failed to read.
    unpriced: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _known: dict[tuple[str, str, str], Known] = field(default_factory=dict)
    _receipts: dict[str, str] = field(default_factory=dict)
    _indexes: dict[str, list[Index]] = field(default_factory=dict)
    _own: dict[str, Any] = field(default_factory=dict)
    _original_call: Any = None

    # -- installing

    def install(self) -> None:
        """Wrap every in-process handler of the stack and every boto3 API call."""
        for service in ("dynamodb",):
            self._own[service] = self.aws.session().client(
                service, endpoint_url=self.aws.endpoint_url
            )
        for function in self.stack.functions.values():
            handler = LocalAws.handler(function.name)
            if handler is not None:
                LocalAws.register_handler(function.name, self._wrap(function.logical_id, handler))
        # botocore's one entry point for every API call of every client (not in its stubs).
        meter, original = self, getattr(BaseClient, "_make_api_call")  # noqa: B009
        self._original_call = original

        def _make_api_call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            if any(client is own for own in meter._own.values()):
                return original(client, operation, params)
            try:
                response = original(client, operation, params)
            except ClientError as error:
                meter.observe(client, operation, params, dict(error.response), failed=True)
                raise
            meter.observe(client, operation, params, response, failed=False)
            return response

        # setattr: the one patch of botocore, undone by uninstall().
        setattr(BaseClient, "_make_api_call", _make_api_call)  # noqa: B010

    def uninstall(self) -> None:
        """Put botocore back (the stack's close() unregisters the wrapped handlers)."""
        if self._original_call is not None:
            setattr(BaseClient, "_make_api_call", self._original_call)  # noqa: B010
            self._original_call = None

    def _wrap(self, function: str, handler: Handler) -> Handler:
        def metered(event: Any, context: Any) -> Any:
            invocation = Invocation(function, event_task_ids(event))
            previous = _current()
            _local.invocation = invocation
            started = time.perf_counter()
            try:
                result = handler(event, context)
            except BaseException:
                self._invoked(invocation, time.perf_counter() - started)
                raise
            finally:
                _local.invocation = previous
            answered = _answer_task_id(result) if not invocation.task_ids else None
            if answered:
                invocation.task_ids.append(answered)
            self._invoked(invocation, time.perf_counter() - started)
            return result

        return metered

    def _invoked(self, invocation: Invocation, elapsed_s: float) -> None:
        # Lambda bills duration rounded up to the millisecond.
        billed_ms = math.ceil(elapsed_s * 1000)
        name = invocation.function
        with self._lock:
            for usage, share in self._owners(invocation.task_ids):
                usage[f"lambda:{name}"] += share
                usage[f"lambda_ms:{name}"] += share * billed_ms

    def _owners(self, task_ids: Iterable[str]) -> list[tuple[Usage, float]]:
        """Who pays a cost shared by these tasks (each an equal part); `shared` if none."""
        ids = list(task_ids)
        if not ids:
            return [(self.shared, 1.0)]
        return [(self.per_task[task_id], 1 / len(ids)) for task_id in ids]

    def _charge(self, metric: str, amount: float, task_ids: Iterable[str]) -> None:
        with self._lock:
            for usage, share in self._owners(task_ids):
                usage[metric] += share * amount

    def _invocation_tasks(self) -> list[str]:
        invocation = _current()
        return list(invocation.task_ids) if invocation else []

    # -- observing API calls

    def observe(
        self,
        client: BaseClient,
        operation: str,
        params: dict[str, Any],
        response: dict[str, Any],
        *,
        failed: bool,
    ) -> None:
        """Price one API call (never raises: a metering bug must not change the run)."""
        service = client.meta.service_model.service_name
        try:
            if service == "dynamodb":
                self._dynamodb(operation, params, response, failed=failed)
            elif service == "s3":
                self._s3(operation, params)
            elif service == "sqs":
                self._sqs(operation, params, response)
            elif service == "secretsmanager" and operation == "GetSecretValue":
                self._charge("secrets", 1, [])
        except Exception:
            logger.exception("metering %s.%s failed", service, operation)
            with self._lock:
                self.unpriced[f"{service}.{operation} (meter error)"] += 1

    def _s3(self, operation: str, params: dict[str, Any]) -> None:
        metric = (
            "s3_put" if operation in S3_PUT_CLASS else "s3_get" if operation in S3_GET_CLASS else ""
        )
        task_id = _task_of_s3_key(params.get("Key"))
        if not metric or (task_id is None and _current() is None):
            # Free, or the local stack's own doing (its S3 notifier lists the bucket to emulate
            # event notifications, which AWS does not bill).
            return
        self._charge(metric, 1, [task_id] if task_id else self._invocation_tasks())

    def _sqs(self, operation: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        if operation not in SQS_BILLED:
            return
        ids: list[str] = []
        if operation == "SendMessage":
            ids = [t for t in [_message_task_id(params.get("MessageBody"))] if t]
        elif operation == "SendMessageBatch":
            ids = [
                t for e in params.get("Entries", []) if (t := _message_task_id(e["MessageBody"]))
            ]
        elif operation == "ReceiveMessage":
            messages = response.get("Messages") or []
            if not messages:
                with self._lock:
                    self.idle_receives += 1
                return
            with self._lock:
                for message in messages:
                    task_id = _message_task_id(message.get("Body"))
                    if task_id:
                        self._receipts[message["ReceiptHandle"]] = task_id
                        ids.append(task_id)
        else:  # deletes and visibility changes name the messages by receipt handle
            handles = [params["ReceiptHandle"]] if "ReceiptHandle" in params else []
            handles += [e["ReceiptHandle"] for e in params.get("Entries", [])]
            with self._lock:
                ids = [self._receipts[h] for h in handles if h in self._receipts]
        self._charge("sqs", 1, ids or self._invocation_tasks())

    # -- DynamoDB

    def _dynamodb(
        self, operation: str, params: dict[str, Any], response: dict[str, Any], *, failed: bool
    ) -> None:
        table = str(params.get("TableName", ""))
        if operation == "GetItem":
            self._get(table, params, response)
        elif operation == "Query":
            self._query(table, params)
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            self._write(table, operation, params, response, failed=failed)
        elif operation not in ("DescribeTable", "ListTables", "DescribeTimeToLive"):
            with self._lock:
                self.unpriced[f"dynamodb.{operation}"] += 1

    def _payers(self, key: Mapping[str, Any] | None) -> list[str]:
        task_id = _task_of_pk(key)
        return [task_id] if task_id else self._invocation_tasks()

    def _get(self, table: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        key = params["Key"]
        item = response.get("Item")
        projected = "ProjectionExpression" in params or "AttributesToGet" in params
        if item and projected:
            item = self._read_back(table, key)
        size = item_size(item) if item else 0
        if item:
            self._remember(table, key, item)
        units = read_units(size, consistent=bool(params.get("ConsistentRead")))
        self._charge("rru", units, self._payers(key))

    def _query(self, table: str, params: dict[str, Any]) -> None:
        # DynamoDB charges for every item the key condition reads, before filters and
        # projections: ask again for exactly that set.
        condition = str(params.get("KeyConditionExpression", ""))
        names = dict(params.get("ExpressionAttributeNames") or {})
        values = dict(params.get("ExpressionAttributeValues") or {})
        again: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": condition,
            "ConsistentRead": bool(params.get("ConsistentRead")),
        }
        for name in ("IndexName", "Limit", "ExclusiveStartKey", "ScanIndexForward"):
            if name in params:
                again[name] = params[name]
        used_names = {k: v for k, v in names.items() if k in condition}
        used_values = {k: v for k, v in values.items() if k in condition}
        if used_names:
            again["ExpressionAttributeNames"] = used_names
        if used_values:
            again["ExpressionAttributeValues"] = used_values
        items = self._own["dynamodb"].query(**again).get("Items", [])
        size = sum(item_size(i) for i in items)
        units = read_units(size, consistent=bool(params.get("ConsistentRead")))
        task_id = next((t for v in used_values.values() if (t := _task_of_pk({"pk": v}))), None)
        self._charge("rru", units, [task_id] if task_id else self._invocation_tasks())

    def _write(
        self,
        table: str,
        operation: str,
        params: dict[str, Any],
        response: dict[str, Any],
        *,
        failed: bool,
    ) -> None:
        item = params.get("Item")
        key = params.get("Key") or {k: item[k] for k in ("pk", "sk") if item and k in item}
        before = self._known.get(_ident(table, key))
        if failed:
            # A failed condition still costs the write, by the item it was checked against.
            found = response.get("Item")
            size = item_size(found) if found else (before.size if before else 0)
            self._charge("wru", write_units(size), self._payers(key))
            return
        after: Mapping[str, Any] | None
        if operation == "PutItem":
            after = item
        elif operation == "UpdateItem" and params.get("ReturnValues") == "ALL_NEW":
            after = response.get("Attributes")
        elif operation == "UpdateItem":
            after = self._read_back(table, key)
        else:
            after = None
        new = self._known_of(table, after) if after else None
        old_size = before.size if before else 0
        units = write_units(max(old_size, new.size if new else 0))
        units += self._index_units(table, before, new)
        with self._lock:
            if new is None:
                self._known.pop(_ident(table, key), None)
            else:
                self._known[_ident(table, key)] = new
        self._charge("wru", units, self._payers(key))

    def _index_units(self, table: str, before: Known | None, after: Known | None) -> int:
        """WRU of the index writes one table write causes (entries sized as the item: the
        template's index projects ALL)."""
        units = 0
        for position in range(len(self._table_indexes(table))):
            old = before.index_keys[position] if before else None
            new = after.index_keys[position] if after else None
            if new is not None and after is not None:
                units += write_units(after.size)
            if old is not None and before is not None and old != new:
                units += write_units(before.size)  # the old entry is deleted
        return units

    def _table_indexes(self, table: str) -> list[Index]:
        with self._lock:
            cached = self._indexes.get(table)
        if cached is not None:
            return cached
        described = self._own["dynamodb"].describe_table(TableName=table)["Table"]
        indexes = [
            Index(str(i["IndexName"]), tuple(str(k["AttributeName"]) for k in i["KeySchema"]))
            for i in described.get("GlobalSecondaryIndexes", [])
        ]
        with self._lock:
            self._indexes[table] = indexes
        return indexes

    def _known_of(self, table: str, item: Mapping[str, Any]) -> Known:
        keys = tuple(
            tuple(json.dumps(item[k], sort_keys=True) for k in index.keys)
            if all(k in item for k in index.keys)
            else None
            for index in self._table_indexes(table)
        )
        return Known(item_size(item), keys)

    def _remember(self, table: str, key: Mapping[str, Any], item: Mapping[str, Any]) -> None:
        known = self._known_of(table, item)
        with self._lock:
            self._known[_ident(table, key)] = known

    def _read_back(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        got = self._own["dynamodb"].get_item(TableName=table, Key=key, ConsistentRead=True)
        item: dict[str, Any] | None = got.get("Item")
        return item


def _ident(table: str, key: Mapping[str, Any]) -> tuple[str, str, str]:
    return (table, json.dumps(key.get("pk")), json.dumps(key.get("sk")))
