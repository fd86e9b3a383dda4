"""Metrics and logs of real tasks on the local stack: what an operator reads in CloudWatch.

The handlers write their metrics as EMF lines on stdout (CloudWatch Logs turns them into
metrics); outside Lambda they are off unless POWERTOOLS_METRICS_DISABLED=false, which these tests
set. Log lines are read through a handler given the service logger's own formatter, so they are
exactly the JSON the functions print.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from stackkit import event, invoke, request, submit

from wanflow.observability import logger as service_logger
from wanflow.task import TaskStatus
from wanflow_local.stack import LocalStack

FLASH = "wan2.6-image-to-video-flash"  # completed by callback
I2I = "wan26_i2i"  # polled


class Lines(logging.Handler):
    """Keeps every line of the service logger as the functions would print it (parsed)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(service_logger.registered_formatter)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def observed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Lines]:
    """Metrics on, the service logger at INFO, its lines kept."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    lines = Lines()
    wanflow = logging.getLogger("wanflow")
    level = wanflow.level
    wanflow.setLevel(logging.INFO)
    wanflow.addHandler(lines)
    yield lines
    wanflow.removeHandler(lines)
    wanflow.setLevel(level)


def emf_records(out: str) -> list[dict[str, Any]]:
    """The EMF records among the printed lines."""
    found = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            found.append(json.loads(line))
    return found


def values(record: dict[str, Any], metric: str) -> list[float]:
    """A metric's values in one record (EMF allows a number or a list of them)."""
    value = record[metric]
    return [float(v) for v in (value if isinstance(value, list) else [value])]


def total(records: list[dict[str, Any]], metric: str, **dimensions: str) -> float:
    """The sum of a metric over the records that carry it with these dimension values."""
    return sum(
        sum(values(r, metric))
        for r in records
        if metric in r and all(r.get(k) == v for k, v in dimensions.items())
    )


def named(records: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    return [r for r in records if metric in r]


def test_a_task_counts_once_and_its_lines_carry_its_id(
    stack: LocalStack, observed: Lines, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a callback-model task and a polled one, run to the end
    ids = {}
    for name, model in ((f"{FLASH}-minimal", FLASH), (f"{I2I}-edit", I2I)):
        status, task = submit(stack, request(name))
        assert status == 202, task
        ids[model] = task["id"]
    for model, task_id in ids.items():
        record, _ = stack.finish(task_id)
        assert record.status is TaskStatus.SUCCEEDED, (model, record.error)
    # WHEN the metrics they wrote are read
    records = emf_records(capsys.readouterr().out)
    # THEN each task was submitted and succeeded exactly once, under its model and in the total
    for model in ids:
        assert total(records, "TasksSubmitted", model=model) == 1
        assert total(records, "TasksSucceeded", model=model) == 1
        assert total(records, "TasksFailed", model=model) == 0
    assert total(records, "TasksSucceeded", service="wanflow") == 2
    ended = named(records, "TasksSucceeded")
    assert all(
        r["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"], ["service", "model"]]
        for r in ended
    )
    assert all(r["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Wanflow" for r in ended)
    # AND the lifecycle's figures came with the end: polls (none for the callback) and the
    # time from the end being known to the terminal write
    assert total(records, "PollsPerTask", model=FLASH) == 0
    assert total(records, "PollsPerTask", model=I2I) >= 1
    detect = named(records, "TimeToDetect")
    assert sorted(r["model"] for r in detect) == sorted(ids)
    assert all(0 <= v < 30 for r in detect for v in values(r, "TimeToDetect"))
    # AND the upstream calls were counted: two creates and at least a status read each
    assert total(records, "UpstreamCalls") >= 4
    assert total(records, "UpstreamErrors") == 0
    assert total(records, "CallbacksReceived") >= 1
    # AND every line about a task, handler or library, carries its id as correlation id
    for model, task_id in ids.items():
        about = [line for line in observed.lines if line.get("task_id") == task_id]
        messages = {line["message"] for line in about}
        assert "task ended" in messages, (model, messages)  # a library line (lifecycle.py)
        assert all(line.get("correlation_id") == task_id for line in about), about
        correlated = {
            line["message"] for line in observed.lines if line.get("correlation_id") == task_id
        }
        assert "task submitted" in correlated  # the submit handler's own line
    assert "callback received" in {
        line["message"] for line in observed.lines if line.get("correlation_id") == ids[FLASH]
    }


def test_duplicate_and_forged_callbacks_are_counted(
    stack: LocalStack, observed: Lines, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a finished callback-model task
    _, task = submit(stack, request(f"{FLASH}-minimal"))
    record, _ = stack.finish(task["id"])
    assert stack.sim is not None
    final = next(
        a
        for a in stack.sim.callback_attempts()
        if a.task_id == record.upstream_id and a.kind == "final"
    )
    body = httpx.get(
        f"{stack.sim.url}/v1/tasks/{record.upstream_id}",
        headers={"Authorization": "Bearer sim-key"},
    ).content
    capsys.readouterr()  # only what follows
    # WHEN the same callback comes twice more, and a forged one once
    answers = [httpx.post(final.url, content=body, timeout=5).status_code for _ in range(2)]
    forged = f"{stack.api.url}/v1/callbacks/{task['id']}?sig=forged"
    refused = httpx.post(forged, json={"status": "completed"}, timeout=5).status_code
    assert (answers, refused) == ([200, 200], 401)
    # THEN both resends were received, at least the second as a duplicate, and one rejected
    records = emf_records(capsys.readouterr().out)
    assert total(records, "CallbacksReceived") == 2
    assert total(records, "CallbacksDuplicate") >= 1
    assert total(records, "CallbacksRejected") == 1
    # AND nothing about the finished task changed, so nothing counted it again
    assert total(records, "TasksSucceeded") == 0


def test_a_canceled_task_counts_once(
    stack: LocalStack, observed: Lines, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a long wan2.6 task, still generating
    body = {**request("wan2.6-t2v-full"), "duration": 15, "resolution": "1080p"}
    status, task = submit(stack, body)
    assert status == 202, task
    # WHEN its client cancels it (the tasks function, as API Gateway calls it)
    ev = event("api/cancel")
    ev["pathParameters"] = {"task_id": task["id"]}
    ev["path"] = ev["resource"].replace("{task_id}", task["id"])
    ev["requestContext"]["authorizer"] = {"tenant": "acme"}
    answer = invoke(stack, "TasksFunction", ev)
    assert answer["statusCode"] == 200, answer["body"]
    stack.finish(task["id"], timeout=10)
    # THEN the task's end is counted once, as canceled, under its model
    records = emf_records(capsys.readouterr().out)
    assert total(records, "TasksCanceled", model="wan2.6") == 1
    assert total(records, "TasksSucceeded", model="wan2.6") == 0
