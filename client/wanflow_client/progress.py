"""The live view of tasks: progress lines redrawn in place (or printed on change), the watch
loop that polls tasks to their end, and the task table of `wanflow tasks`.

It takes from the API client only its errors (a watch tells a transient failure from a final
one) and the shape of a task: the API's JSON as received.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from wanflow import clock
from wanflow_client.api_client import ApiError, ApiUnreachable, TaskJson

#: The end states (`wanflow.task.TERMINAL`, kept here as strings so the client needs no pydantic).
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "timed_out"})

#: Keeps a line (36-character task id included) within 80 columns.
BAR_WIDTH = 16


def progress_bar(progress: int | None, width: int = BAR_WIDTH) -> str:
    """`[####............]` for a percentage; all dots when unknown."""
    filled = 0 if progress is None else round(width * max(0, min(progress, 100)) / 100)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return clock.parse(value)
    except ValueError:
        return None


def elapsed_s(task: Mapping[str, Any], now: datetime) -> int | None:
    """Whole seconds from the task's creation to its end, or to `now` while it runs.

    Server times, so a `watch` started late still shows the task's age; never negative when the
    local clock is behind.
    """
    start = _parse_time(task.get("created_at"))
    if start is None:
        return None
    end = _parse_time(task.get("completed_at")) or now
    return max(0, int((end - start).total_seconds()))


def progress_line(task: Mapping[str, Any], now: datetime) -> str:
    """One task's line: id, status, bar, percent, elapsed, and the error of a failed task."""
    progress = task.get("progress")
    progress = progress if isinstance(progress, int) else None
    percent = f"{progress:3d}%" if progress is not None else "   -"
    seconds = elapsed_s(task, now)
    elapsed = f"{seconds}s" if seconds is not None else "-"
    line = (
        f"{task.get('id', '?')}  {task.get('status', '?'):<9}  "
        f"{progress_bar(progress)} {percent}  {elapsed:>4}"
    )
    error = task.get("error")
    if task.get("status") != "succeeded" and isinstance(error, dict) and error.get("code"):
        line += f"  {error['code']}: {error.get('message') or ''}".rstrip()
    return line


def _state(task: Mapping[str, Any]) -> tuple[Any, Any]:
    return task.get("status"), task.get("progress")


class ProgressView:
    """Draws one progress line per task.

    On a terminal every `show` redraws all lines in place (`\\r`, and cursor-up for the lines
    above); otherwise a task's line is printed only when its status or progress changed, so
    captured output (tests, CI logs) is a short, readable history.
    """

    def __init__(
        self,
        out: TextIO,
        *,
        tty: bool,
        now: Callable[[], datetime] | None = None,
        width: Callable[[], int] | None = None,
    ) -> None:
        self.out = out
        self.tty = tty
        self._now = now or _utc_now
        self._width = width or (lambda: shutil.get_terminal_size().columns)
        self._drawn = 0  # lines on screen (terminal)
        self._shown: dict[str, tuple[Any, Any]] = {}  # last state printed per task (plain)

    def show(self, tasks: Sequence[Mapping[str, Any]]) -> None:
        """Draw the tasks' current state."""
        now = self._now()
        if self.tty:
            # A line wider than the terminal would wrap and break the cursor-up redraw.
            width = max(20, self._width() - 1)
            lines = [progress_line(t, now)[:width] for t in tasks]
            up = f"\x1b[{self._drawn - 1}A" if self._drawn > 1 else ""
            self.out.write(up + "\n".join(f"\r{line}\x1b[K" for line in lines))
            self._drawn = len(lines)
        else:
            for task in tasks:
                key = str(task.get("id"))
                if self._shown.get(key) != _state(task):
                    self._shown[key] = _state(task)
                    self.out.write(progress_line(task, now) + "\n")
        self.out.flush()

    def close(self) -> None:
        """End the live lines (a terminal's cursor moves below them)."""
        if self.tty and self._drawn:
            self.out.write("\n")
            self.out.flush()
        self._drawn = 0


def _utc_now() -> datetime:
    return datetime.now(UTC)


TABLE_COLUMNS = ("id", "model", "mode", "status", "progress", "created_at")


def task_table(tasks: Sequence[Mapping[str, Any]]) -> str:
    """The tasks as a text table with a header row, columns as wide as their widest cell."""
    rows = [[c.upper() for c in TABLE_COLUMNS]]
    for task in tasks:
        progress = task.get("progress")
        cells = {**task, "progress": f"{progress}%" if isinstance(progress, int) else "-"}
        rows.append([str(cells.get(c) if cells.get(c) is not None else "-") for c in TABLE_COLUMNS])
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


# --- watching ---------------------------------------------------------------------------------

#: Consecutive failed poll rounds (transport errors, 5xx, 429) a watch rides out before failing.
MAX_POLL_FAILURES = 5


def watch_tasks(
    get_task: Callable[[str], TaskJson],
    task_ids: Sequence[str],
    view: ProgressView,
    *,
    interval_s: float = 1.0,
    timeout_s: float | None = None,
    first: Mapping[str, TaskJson] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, TaskJson]:
    """Poll the tasks (`get_task` is `ApiClient.get`) until every one is terminal or `timeout_s`
    has passed; the last answer for each.

    The caller tells a timeout by a task still not terminal. A 4xx (an unknown id) raises
    `ApiError` at once; transient failures are retried up to MAX_POLL_FAILURES rounds in a row.
    `first` holds tasks already fetched (the answer of a submit), shown before the first poll.
    """
    deadline = None if timeout_s is None else clock() + timeout_s
    latest: dict[str, TaskJson] = dict(first or {})
    failures = 0
    try:
        if latest:
            view.show([latest[i] for i in task_ids if i in latest])
        while True:
            try:
                for task_id in task_ids:
                    if latest.get(task_id, {}).get("status") not in TERMINAL_STATUSES:
                        latest[task_id] = get_task(task_id)
                failures = 0
            except (ApiUnreachable, ApiError) as exc:
                if isinstance(exc, ApiError) and exc.status != 429 and exc.status < 500:
                    raise
                failures += 1
                if failures >= MAX_POLL_FAILURES:
                    raise
            if latest:
                view.show([latest[i] for i in task_ids if i in latest])
            if all(latest.get(i, {}).get("status") in TERMINAL_STATUSES for i in task_ids):
                return latest
            if deadline is not None and clock() >= deadline:
                return latest
            pause = interval_s if deadline is None else min(interval_s, deadline - clock())
            sleep(max(0.0, pause))
    finally:
        view.close()
