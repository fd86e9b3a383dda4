"""One time form: what wanflow writes and shows is RFC 3339 UTC with milliseconds and `Z`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from wanflow import clock
from wanflow.catalog.base import Timing
from wanflow.client_webhooks.delivery_log import Delivery
from wanflow.client_webhooks.queue import Notice
from wanflow.results import present
from wanflow.store import TaskRecord
from wanflow.task import TaskOutput, TaskStatus
from wanflow_local import openapi

ONE_FORM = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_iso_has_one_fixed_width_form_from_a_datetime_or_unix_seconds() -> None:
    when = datetime(2026, 12, 3, 15, 30, tzinfo=UTC)
    assert clock.iso(when) == "2026-12-03T15:30:00.000Z"
    assert clock.iso(when.timestamp()) == "2026-12-03T15:30:00.000Z"
    assert clock.iso(when.astimezone(timezone(timedelta(hours=2)))) == "2026-12-03T15:30:00.000Z"
    assert clock.iso(datetime(2026, 12, 3, 15, 30)) == "2026-12-03T15:30:00.000Z"  # naive: UTC
    assert ONE_FORM.match(clock.now_iso())


def test_text_order_is_time_order() -> None:
    # Sort keys carry these times (a tenant's tasks, a task's delivery log).
    base = datetime(2026, 1, 1, tzinfo=UTC)
    moments = [base + timedelta(milliseconds=ms) for ms in (0, 5, 999, 1000, 60_000, 3_600_001)]
    texts = [clock.iso(m) for m in moments]
    assert sorted(texts) == texts


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-03T15:30:00.000Z",
        "2026-12-03T15:30:00Z",
        "2026-12-03T15:30:00+00:00",
        "2026-12-03T16:30:00+01:00",
        "2026-12-03 15:30:00.000000+00:00",  # moto's $$.Execution.StartTime
        "2026-12-03T15:30:00",  # no offset: UTC
    ],
)
def test_parse_reads_any_iso_form_as_aware_utc(text: str) -> None:
    parsed = clock.parse(text)
    assert parsed == datetime(2026, 12, 3, 15, 30, tzinfo=UTC)
    assert parsed.utcoffset() == timedelta(0)


def test_parse_refuses_what_is_not_a_time() -> None:
    with pytest.raises(ValueError, match="isoformat"):
        clock.parse("yesterday")


def test_models_show_a_time_given_in_another_form_in_the_one_form() -> None:
    # GIVEN times as older code stored or sent them (seconds, +00:00)
    old = "2026-12-03T15:30:00+00:00"
    # WHEN public models and the notify message read them
    routes = openapi.function_module("tasks")  # the upload ticket is defined next to its route
    ticket = routes.UploadTicket(
        upload_id="upl_1",
        task_id="t",
        upload=routes.UploadTarget(url="u", headers={}),
        expires_at=old,
    )
    output = TaskOutput(type="video", url="u", expires_at=old)
    delivery = Delivery(
        webhook_id="msg_1", event="task.running", attempt=1, url="u", at=old, outcome="delivered"
    )
    notice = Notice(task_id="t", event="task.running", webhook_id="msg_1", occurred_at=old)
    # THEN each shows it in the one form
    shown = [
        ticket.model_dump(mode="json")["expires_at"],
        output.model_dump(mode="json")["expires_at"],
        delivery.model_dump(mode="json")["at"],
        notice.model_dump(mode="json")["occurred_at"],  # the webhook payload's `timestamp`
    ]
    assert shown == ["2026-12-03T15:30:00.000Z"] * 4


class _S3:
    def generate_presigned_url(self, operation: str, **_: Any) -> str:
        return f"https://bucket.example/{operation}"


def test_a_presented_task_shows_every_time_in_the_one_form() -> None:
    record = TaskRecord(
        id="task_1",
        tenant="acme",
        model="wan2.6",
        mode="t2v",
        status=TaskStatus.SUCCEEDED,
        completion="poll",
        request={},
        timing=Timing(expected_s=1, low_s=1, high_s=1, deadline_s=1),
        outputs=[TaskOutput(type="video", key="results/acme/task_1/0.mp4")],
        created_at="2026-12-03T15:30:00Z",
        updated_at="2026-12-03T15:31:00.5+00:00",
        completed_at="2026-12-03T15:31:00.500Z",
    )
    task = present(record, _S3(), "bucket").model_dump(mode="json")  # type: ignore[arg-type]
    times = [task["created_at"], task["updated_at"], task["completed_at"]]
    times.append(task["outputs"][0]["expires_at"])
    assert all(ONE_FORM.match(t) for t in times), times


def test_every_time_in_the_api_document_is_a_date_time() -> None:
    schemas = openapi.build()["components"]["schemas"]
    found = []
    for name in ("Task", "TaskOutput", "UploadTicket", "Delivery"):
        for prop, schema in schemas[name]["properties"].items():
            if prop == "at" or prop.endswith("_at"):
                forms = [schema, *schema.get("anyOf", [])]
                assert any(s.get("format") == "date-time" for s in forms), (name, prop)
                found.append(prop)
    assert len(found) == 7  # created, updated, completed, two expires, at, next_attempt
