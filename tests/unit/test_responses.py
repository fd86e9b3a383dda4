"""Upstream reports are read leniently into one snapshot, for both families."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from wanflow.catalog import get_model
from wanflow.catalog.responses import read_snapshot, task_id_of
from wanflow.task import TaskStatus


def test_generation_family_done_with_video() -> None:
    snap = read_snapshot(
        get_model("wan26_i2v"),
        {
            "id": "gen-1",
            "status": "done",
            "output": [
                {"content": [{"type": "video", "url": "https://cdn.example/v.mp4"}], "jobId": "j"}
            ],
            "usage": {"cost": "0.75", "discount": 0.1},
            "metadata": {"anything": True},
            "unexpected": [1, 2],
        },
    )
    assert snap.upstream_id == "gen-1"
    assert snap.reading.status is TaskStatus.SUCCEEDED
    assert [(o.type, o.url) for o in snap.outputs] == [("video", "https://cdn.example/v.mp4")]
    assert (snap.cost_usd, snap.discount) == (Decimal("0.75"), Decimal("0.1"))


def test_interleaved_output_keeps_text_and_images_in_order() -> None:
    snap = read_snapshot(
        get_model("wan26_i2i"),
        {
            "status": "done",
            "output": [
                {
                    "content": [
                        {"type": "text", "text": "Step 1"},
                        {"type": "image", "url": "https://cdn.example/1.png"},
                        {"type": "text", "text": "Step 2"},
                    ]
                }
            ],
        },
    )
    assert [o.type for o in snap.outputs] == ["text", "image", "text"]
    assert snap.reading.status is TaskStatus.SUCCEEDED


def test_interleaved_output_with_text_only_is_not_success() -> None:
    snap = read_snapshot(
        get_model("wan26_i2i"),
        {"status": "done", "output": [{"content": [{"type": "text", "text": "only words"}]}]},
    )
    assert snap.reading.problem == "upstream_empty_result"


def test_generation_status_may_sit_on_the_output_item() -> None:
    snap = read_snapshot(get_model("wan22_i2v_flash"), {"output": [{"status": "processing"}]})
    assert snap.reading.status is TaskStatus.RUNNING


def test_tasks_family_running_with_progress_and_estimate() -> None:
    snap = read_snapshot(
        get_model("wan2.6-image-to-video-flash"),
        {
            "id": "task-unified-1757169743-7cvnl5zw",
            "object": "video.generation.task",
            "status": "processing",
            "progress": 42.7,
            "task_info": {"can_cancel": True, "estimated_time": 120},
        },
    )
    assert snap.reading.status is TaskStatus.RUNNING
    assert snap.progress == 42
    assert snap.estimated_seconds == 120.0


def test_tasks_family_failure_carries_the_upstream_code() -> None:
    snap = read_snapshot(
        get_model("wan2.6"),
        {"id": "t", "status": "failed", "error": {"code": "001027095", "message": "boom"}},
    )
    assert snap.reading.status is TaskStatus.FAILED
    assert (snap.error_code, snap.error_message) == ("001027095", "boom")


def test_tasks_family_results_as_urls_or_objects() -> None:
    snap = read_snapshot(
        get_model("wan2.6"),
        {
            "status": "completed",
            "results": ["https://cdn.example/a.mp4", {"url": "https://cdn.example/b.mp4"}],
        },
    )
    assert [o.url for o in snap.outputs] == [
        "https://cdn.example/a.mp4",
        "https://cdn.example/b.mp4",
    ]
    assert snap.reading.status is TaskStatus.SUCCEEDED


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "text",
        {"status": 5},
        {"progress": "lots", "usage": {"cost": "free"}},
        {"results": "x"},
    ],
)
def test_garbage_never_raises(body: Any) -> None:
    snap = read_snapshot(get_model("wan2.6"), body)
    assert snap.reading.status is None
    assert snap.cost_usd is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"id": "a"}, "a"),
        ({"task_id": "b"}, "b"),
        ({"data": {"id": "c"}}, "c"),
        ({}, None),
        ({"id": ""}, None),
    ],
)
def test_task_id_is_found_wherever_the_family_puts_it(body: Any, expected: str | None) -> None:
    assert task_id_of(body) == expected
