"""The live view of tasks without I/O: progress lines, the view on a terminal and in a log,
the watch loop, the task table."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from wanflow.task import TERMINAL
from wanflow_client.api_client import ApiError, ApiUnreachable
from wanflow_client.progress import (
    MAX_POLL_FAILURES,
    TERMINAL_STATUSES,
    ProgressView,
    elapsed_s,
    progress_bar,
    progress_line,
    task_table,
    watch_tasks,
)

TASK_ID = "tsk_" + "0" * 32
NOW = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)


def _task(**fields: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "id": TASK_ID,
        "model": "wan2.6",
        "mode": "t2v",
        "status": "running",
        "progress": 40,
        "created_at": "2026-01-01T12:00:00.000Z",
        "completed_at": None,
        "error": None,
    }
    task.update(fields)
    return task


def test_the_terminal_statuses_are_the_tasks() -> None:
    # The client keeps them as strings (no pydantic import); they must not drift.
    assert {s.value for s in TERMINAL} == TERMINAL_STATUSES


# --- progress lines ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("progress", "bar"),
    [
        (None, "[................]"),
        (0, "[................]"),
        (50, "[########........]"),
        (100, "[################]"),
        (140, "[################]"),
        (-5, "[................]"),
    ],
)
def test_the_bar_fills_with_progress(progress: int | None, bar: str) -> None:
    assert progress_bar(progress) == bar


def test_elapsed_is_server_time_from_creation_to_end_or_now() -> None:
    assert elapsed_s(_task(), NOW) == 30
    assert elapsed_s(_task(completed_at="2026-01-01T12:00:07.900Z"), NOW) == 7
    # a local clock behind the server's never shows a negative age
    assert elapsed_s(_task(created_at="2026-01-01T12:05:00.000Z"), NOW) == 0
    assert elapsed_s(_task(created_at=None), NOW) is None
    assert elapsed_s(_task(created_at="yesterday"), NOW) is None


def test_a_progress_line_shows_status_bar_percent_and_elapsed() -> None:
    line = progress_line(_task(), NOW)
    assert line == f"{TASK_ID}  running    [######..........]  40%   30s"
    assert len(line) < 80  # fits a standard terminal with a full task id
    queued = progress_line(_task(status="queued", progress=None), NOW)
    assert queued.split()[1:4] == ["queued", "[................]", "-"]


def test_a_failed_tasks_line_says_why() -> None:
    error = {"code": "upstream_failed", "message": "generation failed", "retryable": True}
    line = progress_line(_task(status="failed", error=error), NOW)
    assert line.endswith("  upstream_failed: generation failed")


def _lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_plain_output_prints_a_line_only_when_a_task_changes() -> None:
    out = io.StringIO()
    view = ProgressView(out, tty=False, now=lambda: NOW)
    other = "tsk_" + "1" * 32
    view.show([_task(progress=10), _task(id=other, status="queued", progress=None)])
    view.show([_task(progress=10), _task(id=other, status="queued", progress=None)])
    view.show([_task(progress=60), _task(id=other, status="queued", progress=None)])
    view.close()
    lines = _lines(out)
    assert [line.split()[:2] for line in lines] == [
        [TASK_ID, "running"],
        [other, "queued"],
        [TASK_ID, "running"],
    ]
    assert "60%" in lines[-1]
    assert "\r" not in out.getvalue()
    assert "\x1b" not in out.getvalue()


def test_a_terminal_redraws_every_line_in_place_within_its_width() -> None:
    out = io.StringIO()
    view = ProgressView(out, tty=True, now=lambda: NOW, width=lambda: 60)
    tasks = [_task(), _task(id="tsk_" + "1" * 32)]
    view.show(tasks)
    first = out.getvalue()
    view.show(tasks)
    second = out.getvalue()[len(first) :]
    view.close()
    assert first.count("\r") == 2
    assert "\x1b[1A" not in first
    # the second frame goes back up one line and rewrites both, clearing what was there
    assert second.startswith("\x1b[1A\r")
    assert second.count("\x1b[K") == 2
    visible = second.replace("\x1b[1A", "").replace("\x1b[K", "").replace("\r", "")
    assert [len(line) for line in visible.splitlines()] == [59, 59]  # cut to the width, no wrap
    assert out.getvalue().endswith("\n")  # close leaves the cursor under the lines


# --- the watch loop ---------------------------------------------------------------------------


class FakeApi:
    """Answers each task's GETs from a script of statuses (or exceptions), then repeats the last."""

    def __init__(self, scripts: dict[str, list[Any]]) -> None:
        self.scripts = scripts
        self.calls: list[str] = []

    def get(self, task_id: str) -> dict[str, Any]:
        self.calls.append(task_id)
        script = self.scripts[task_id]
        step = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(step, Exception):
            raise step
        return _task(id=task_id, status=step, progress=100 if step == "succeeded" else None)


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _watch(
    api: FakeApi, ids: list[str], time: FakeTime, **kwargs: Any
) -> tuple[dict[str, Any], io.StringIO]:
    out = io.StringIO()
    view = ProgressView(out, tty=False, now=lambda: NOW)
    final = watch_tasks(
        api.get, ids, view, interval_s=1.0, clock=time.clock, sleep=time.sleep, **kwargs
    )
    return final, out


def test_watch_polls_until_every_task_is_terminal_and_stops_polling_finished_ones() -> None:
    api = FakeApi({"a": ["queued", "succeeded"], "b": ["queued", "running", "running", "failed"]})
    time = FakeTime()
    final, out = _watch(api, ["a", "b"], time)
    assert {k: v["status"] for k, v in final.items()} == {"a": "succeeded", "b": "failed"}
    assert api.calls == ["a", "b", "a", "b", "b", "b"]
    assert time.sleeps == [1.0, 1.0, 1.0]
    assert [line.split()[:2] for line in _lines(out)] == [
        ["a", "queued"],
        ["b", "queued"],
        ["a", "succeeded"],
        ["b", "running"],
        ["b", "failed"],
    ]


def test_watch_starts_from_a_task_already_in_hand() -> None:
    api = FakeApi({"a": ["succeeded"]})
    final, out = _watch(api, ["a"], FakeTime(), first={"a": _task(id="a", status="queued")})
    assert final["a"]["status"] == "succeeded"
    assert [line.split()[1] for line in _lines(out)] == ["queued", "succeeded"]


def test_watch_gives_up_at_its_timeout_with_the_task_not_terminal() -> None:
    api = FakeApi({"a": ["running"]})
    time = FakeTime()
    final, _ = _watch(api, ["a"], time, timeout_s=2.5)
    assert final["a"]["status"] == "running"
    assert sum(time.sleeps) == pytest.approx(2.5)  # the last pause is cut to the deadline
    assert time.sleeps[-1] == pytest.approx(0.5)


def test_watch_rides_out_a_few_transient_failures() -> None:
    down = ApiUnreachable("http://h/prod", "refused")
    busy = ApiError(503, {"message": "busy"})
    api = FakeApi({"a": [down, busy, "running", down, "succeeded"]})
    final, _ = _watch(api, ["a"], FakeTime())
    assert final["a"]["status"] == "succeeded"


@pytest.mark.parametrize(
    ("failure", "calls"),
    [
        (lambda: ApiUnreachable("http://h/prod", "refused"), MAX_POLL_FAILURES),
        (lambda: ApiError(429, {"message": "slow down"}), MAX_POLL_FAILURES),
        (lambda: ApiError(404, {"error": {"code": "task_not_found"}}), 1),
    ],
)
def test_watch_fails_on_a_4xx_at_once_and_on_transient_failures_in_the_end(
    failure: Callable[[], Exception], calls: int
) -> None:
    error = failure()
    api = FakeApi({"a": [error]})
    with pytest.raises(type(error)):
        _watch(api, ["a"], FakeTime())
    assert len(api.calls) == calls


# --- the tasks table --------------------------------------------------------------------------


def test_the_table_has_a_header_and_aligned_columns() -> None:
    tasks = [
        _task(model="wan26_i2i", mode="interleave", status="succeeded", progress=100),
        _task(id="tsk_2", status="queued", progress=None),
    ]
    lines = task_table(tasks).splitlines()
    assert lines[0].split() == ["ID", "MODEL", "MODE", "STATUS", "PROGRESS", "CREATED_AT"]
    assert lines[1].split() == [
        TASK_ID,
        "wan26_i2i",
        "interleave",
        "succeeded",
        "100%",
        "2026-01-01T12:00:00.000Z",
    ]
    assert lines[2].split()[3:5] == ["queued", "-"]
    # every column starts at the same place on every row
    starts = {
        line.index(cell)
        for line, cell in zip(lines, ["STATUS", "succeeded", "queued"], strict=True)
    }
    assert len(starts) == 1


def test_an_empty_table_is_its_header() -> None:
    assert task_table([]).split() == ["ID", "MODEL", "MODE", "STATUS", "PROGRESS", "CREATED_AT"]
