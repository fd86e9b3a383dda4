"""The fault suite's kit: the API as a client uses it, a watcher of task statuses, and the
invariants every scenario keeps (`Scenario.check`).

A module of its own (not conftest) so the tests import it by a name no other tier uses.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kit.receivers import Hit, WebhookReceiver
from kit.waiting import wait_for
from wanflow import keys
from wanflow.store import TaskRecord
from wanflow.task import TERMINAL, TaskStatus
from wanflow_local.commands import DEV_API_KEY, DEV_TENANT
from wanflow_local.stack import LocalStack

#: 1 upstream second = 20 ms: the slowest model used here (wan2.6, ~130 s) ends in ~2.6 s.
TIME_SCALE = 0.02
FLASH = "wan2.6-image-to-video-flash"  # the callback model; the others are polled
REQUESTS = Path(__file__).resolve().parents[2] / "events" / "requests" / "valid"
#: How often the suite polls: the stack under faults is busy enough.
POLL_S = 0.1

# Rank along the one forward path; every terminal status shares the last rank.
_RANK = {"accepted": 0, "queued": 1, "running": 2, **{s.value: 3 for s in TERMINAL}}
_TERMINAL_EVENTS = {f"task.{s.value}" for s in TERMINAL}


def request(name: str) -> dict[str, Any]:
    """A fresh copy of a valid example request from events/requests/valid."""
    data: dict[str, Any] = json.loads((REQUESTS / f"{name}.json").read_text(encoding="utf-8"))
    return copy.deepcopy(data)


# --- the API, as a client reaches it ------------------------------------------------------------


class Api:
    """The stack's HTTP API with the development key (tenant `default`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {DEV_API_KEY}"}, timeout=30
        )

    def submit(self, body: Any, key: str | None = None) -> tuple[int, dict[str, Any]]:
        """POST /v1/tasks; the status code and the JSON answer."""
        headers = {"Idempotency-Key": key} if key else {}
        answer = self.http.post("/v1/tasks", json=body, headers=headers)
        return answer.status_code, answer.json()

    def listed(self, wanted: Iterable[str]) -> dict[str, str]:
        """Status by id of the `wanted` tasks in GET /v1/tasks, reading pages (newest first)
        until all of them were seen or the list ends."""
        missing, found = set(wanted), {}
        cursor: str | None = None
        while missing:
            params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
            page = self.http.get("/v1/tasks", params=params).raise_for_status().json()
            for task in page["tasks"]:
                if task["id"] in missing:
                    found[task["id"]] = task["status"]
                    missing.discard(task["id"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return found

    def webhook_secret(self) -> str:
        """The tenant's `whsec_` secret."""
        return str(self.http.get("/v1/webhooks/secret").raise_for_status().json()["secret"])

    def close(self) -> None:
        """Release the connections."""
        self.http.close()


class Watcher:
    """Reads GET /v1/tasks over and over in a thread and keeps, per task, the statuses seen in
    order (consecutive repeats folded): what a client polling the API would have seen."""

    def __init__(self, api: Api, interval: float = 0.15) -> None:
        self._api, self._interval = api, interval
        self._ids: set[str] = set()
        self._lock = threading.Lock()
        self._seen: dict[str, list[str]] = {}
        self._stop = threading.Event()
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name="status-watcher", daemon=True)
        self._thread.start()

    def follow(self, task_id: str) -> None:
        """Start recording a task's statuses."""
        with self._lock:
            self._ids.add(task_id)

    def seen(self, task_id: str) -> list[str]:
        """The statuses seen for a task, oldest first."""
        with self._lock:
            return list(self._seen.get(task_id, []))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                ids = set(self._ids)
            if not ids:
                continue
            try:
                listed = self._api.listed(ids)
            except (httpx.HTTPError, ValueError) as exc:  # reported by check(), never swallowed
                self.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with self._lock:
                for task_id, status in listed.items():
                    seen = self._seen.setdefault(task_id, [])
                    if not seen or seen[-1] != status:
                        seen.append(status)

    def stop(self) -> None:
        """Stop watching (bounded)."""
        self._stop.set()
        self._thread.join(timeout=10)


# --- a scenario and its invariants --------------------------------------------------------------


@dataclass
class Submitted:
    """One submit as the client saw it."""

    task_id: str
    model: str
    status_code: int
    answer: dict[str, Any]


@dataclass
class Scenario:
    """Tasks submitted through the API under some faults, watched from start to end."""

    stack: LocalStack
    api: Api
    hooks: WebhookReceiver
    submitted: list[Submitted] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert self.stack.sim is not None
        self.sim = self.stack.sim
        # Upstream tasks created before this scenario belong to others.
        self._created_before = len(self.sim.tasks_created())
        self.watcher = Watcher(self.api)

    def submit(self, name: str, *, key: str | None = None, retries: int = 0) -> Submitted:
        """Submit the example `name` with this scenario's webhook; a 502 (the function died) is
        retried with the same Idempotency-Key up to `retries` times, as a client would."""
        body = self.body(name)
        for _ in range(retries + 1):
            code, answer = self.api.submit(body, key)
            if code != 502:
                break
        return self.record(code, answer, body["model"])

    def body(self, name: str) -> dict[str, Any]:
        """The example `name` with this scenario's webhook (all events)."""
        body = request(name)
        if "callback_url" in body:  # the flash model's own field is its webhook
            body["callback_url"] = self.hooks.url
        else:
            body["webhook"] = {"url": self.hooks.url}
        return body

    def record(self, code: int, answer: dict[str, Any], model: str) -> Submitted:
        """Keep a submit's answer; its task (a 202's, or the failed one a 4xx/5xx carries)."""
        task = answer if code == 202 else answer.get("task") or {}
        assert "id" in task, f"submit answered {code} without a task: {answer}"
        done = Submitted(task["id"], model, code, answer)
        if all(s.task_id != done.task_id for s in self.submitted):
            self.submitted.append(done)
            self.watcher.follow(done.task_id)
        return done

    def ids(self) -> list[str]:
        """The scenario's task ids, in submit order."""
        return [s.task_id for s in self.submitted]

    def wait_terminal(self, timeout: float = 60.0) -> dict[str, TaskRecord]:
        """Wait (bounded) until every task is terminal; the records by id."""

        def probe() -> dict[str, TaskRecord] | None:
            records = {i: self.stack.store.get(i) for i in self.ids()}
            return records if all(r.status in TERMINAL for r in records.values()) else None

        return wait_for(
            probe, interval=POLL_S, timeout=timeout, what="every task of the scenario to end"
        )

    def check(self, expected: Mapping[str, TaskStatus], timeout: float = 60.0) -> dict[str, Any]:
        """Assert the invariants every scenario keeps, after its tasks ended:

        - no task lost: each ends with its expected status, in the store and in GET /v1/tasks;
        - no double upstream create: the upstream tasks created during the scenario are exactly
          the ones the tasks record, one each;
        - no status moving backwards: what GET /v1/tasks showed over time, and the webhook
          events the client got, go forward only, with one terminal event per task, once.
        Returns the records by id.
        """
        assert set(expected) == set(self.ids()), "every submitted task needs an expectation"
        records = self.wait_terminal(timeout)
        self._wait_terminal_events(records)
        self.watcher.stop()
        assert not self.watcher.errors, f"GET /v1/tasks failed: {self.watcher.errors[:3]}"
        # no task lost
        got = {i: r.status for i, r in records.items()}
        assert got == dict(expected)
        listed = self.api.listed(self.ids())
        assert listed == {i: s.value for i, s in got.items()}, "a task is missing or stale"
        # no double upstream create
        created = self.sim.tasks_created()[self._created_before :]
        recorded = [r.upstream_id for r in records.values() if r.upstream_id]
        assert Counter(recorded) == Counter(created), (
            f"upstream tasks {sorted(created)} vs recorded {sorted(recorded)}"
        )
        # no status moving backwards
        for task_id, record in records.items():
            seen = [*self.watcher.seen(task_id), record.status.value]
            ranks = [_RANK[s] for s in seen]
            assert ranks == sorted(ranks), f"{task_id} went backwards: {seen}"
            assert len({s for s in seen if _RANK[s] == 3}) == 1, f"{task_id}: {seen}"
            self._check_webhooks(record)
        return records

    def _wait_terminal_events(self, records: Mapping[str, TaskRecord]) -> None:
        def probe() -> bool | None:
            return all(self._terminal_hits(r) for r in records.values()) or None

        wait_for(
            probe, interval=POLL_S, timeout=30, what="the terminal webhook event of every task"
        )
        time.sleep(0.5)  # a duplicate would come right behind its original

    def _terminal_hits(self, record: TaskRecord) -> list[Hit]:
        return [h for h in self.hooks.of(record.id) if h.event in _TERMINAL_EVENTS]

    def _check_webhooks(self, record: TaskRecord) -> None:
        hits = self.hooks.of(record.id)
        events = [h.event for h in hits]
        # one of each event, each with its own stable webhook-id: no duplicate deliveries
        assert len(events) == len(set(events)), f"{record.id}: duplicate webhooks {events}"
        assert len({h.webhook_id for h in hits}) == len(hits), f"{record.id}: {hits}"
        assert events[-1] == f"task.{record.status.value}", f"{record.id}: {events}"
        assert set(events) <= {"task.running", events[-1]}, f"{record.id}: {events}"
        ranks = [_RANK[h.status] for h in hits]  # the task each event carries
        assert ranks == sorted(ranks), f"{record.id}: webhooks went backwards: {hits}"
        assert self.hooks.forged() == [], "a webhook did not verify"

    def close(self) -> None:
        """Stop the watcher (if check() did not)."""
        self.watcher.stop()


def events_of(stack: LocalStack, task_id: str) -> list[dict[str, Any]]:
    """The raw items recorded beside a task (`sk=EVENT#...`: upstream callbacks)."""
    got = stack.aws.client("dynamodb").query(
        TableName=stack.stack.ref("TasksTable"),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :ev)",
        ExpressionAttributeValues={
            ":pk": {"S": keys.task_pk(task_id)},
            ":ev": {"S": keys.EVENT_PREFIX},
        },
        ConsistentRead=True,
    )
    return list(got.get("Items", []))


def outputs_stored_once(stack: LocalStack, record: TaskRecord) -> None:
    """Assert the task's results prefix holds exactly its outputs, each once."""
    stored = stack.objects(f"results/{DEV_TENANT}/{record.id}/")
    keys = [o.key for o in record.outputs if o.key]
    assert sorted(stored) == sorted(keys), f"{record.id}: stored {sorted(stored)} vs {keys}"
    assert len(keys) == len(set(keys))
    if record.status is TaskStatus.SUCCEEDED:
        assert keys, f"{record.id} succeeded without a stored output"


def execution_events(stack: LocalStack, task_id: str) -> list[str]:
    """The types of the history events of a task's execution."""
    return [e["type"] for e in stack.history(task_id)]
