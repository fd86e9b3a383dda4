"""`wanflow demo`: the local stack, one task per model and mode, live progress, then a table.

Everything goes through the API over HTTP, as a client would; the table adds what only this
machine can see: how each task completed, how often the upstream was asked, and how long after
the upstream finished our record said so ("time to detect", in upstream seconds).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wanflow import clock
from wanflow.task import TaskStatus
from wanflow_client.api_client import ApiClient
from wanflow_client.progress import TERMINAL_STATUSES, ProgressView, watch_tasks
from wanflow_local.commands import DEV_API_KEY
from wanflow_local.stack import LocalStack, local_stack

EXAMPLES = Path(__file__).resolve().parents[2] / "events" / "requests" / "valid"
#: One example per model and mode.
DEMO_REQUESTS = (
    "wan26_i2v",
    "wan2.6-image-to-video-flash",
    "wan22_i2v_flash",
    "wan2.6-t2v",
    "wan2.6-i2v",
    "wan2.6-r2v",
    "wan26_i2i-edit",
    "wan26_i2i-interleave",
)


@dataclass
class Row:
    """What the demo reports about one task."""

    example: str
    task: dict[str, Any]


def _epoch(iso: str) -> float:
    return clock.parse(iso).timestamp()


def _submit_all(client: ApiClient) -> list[Row]:
    rows = []
    for name in DEMO_REQUESTS:
        body = json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
        rows.append(Row(name, client.submit(body)))
    return rows


def _table(stack: LocalStack, rows: list[Row], scale: float) -> list[str]:
    lines = [
        f"{'model':<28} {'mode':<10} {'path':<8} {'status':<10} {'polls':>5} "
        f"{'detect s':>9} {'cost USD':>9}"
    ]
    for row in rows:
        task = row.task
        record = stack.store.get(task["id"])
        path = "poll" if record.polls else "callback"  # a callback task is never checked
        detect = "-"
        if stack.sim and record.upstream_id and record.completed_at:
            timeline = stack.sim.timeline(record.upstream_id)
            if timeline and timeline[1] is not None:
                detect = f"{(_epoch(record.completed_at) - timeline[1]) / scale:.1f}"
        cost = (task.get("usage") or {}).get("cost_usd") or "-"
        lines.append(
            f"{task['model']:<28} {task['mode']:<10} {path:<8} {task['status']:<10} "
            f"{record.polls:>5} {detect:>9} {cost!s:>9}"
        )
    return lines


def run_demo(time_scale: float, timeout_s: float = 110.0) -> int:
    """Run the demo; 0 only if every task succeeded."""
    print(f"starting the local stack (time scale {time_scale:g}) ...", flush=True)
    with (
        local_stack(time_scale=time_scale, log_level="WARNING") as stack,
        ApiClient(stack.api.url, DEV_API_KEY) as client,
    ):
        count = len(DEMO_REQUESTS)
        print(f"API {stack.api.url}; submitting {count} tasks, one per model and mode", flush=True)
        rows = _submit_all(client)
        for row in rows:
            print(f"  {row.task['id']}  {row.example}")
        ids = [row.task["id"] for row in rows]
        view = ProgressView(sys.stdout, tty=sys.stdout.isatty())
        latest = watch_tasks(client.get, ids, view, interval_s=0.5, timeout_s=timeout_s)
        for row in rows:
            row.task = latest.get(row.task["id"], row.task)
        if any(row.task["status"] not in TERMINAL_STATUSES for row in rows):
            print(f"demo: tasks still running after {timeout_s:.0f} s", file=sys.stderr)
        print()
        print("\n".join(_table(stack, rows, time_scale)))
        print("\n(polls: the state machine's looks at the upstream; detect s: from the")
        print(" upstream finishing to our record saying so, in upstream seconds; waits are whole")
        print(
            f" seconds of real time, so at time scale {time_scale:g} a wait is a multiple of "
            f"{1 / time_scale:g} upstream seconds)"
        )
        print("\nresults in S3:")
        for row in rows:
            for output in row.task.get("outputs") or []:
                if output.get("key"):
                    print(f"  s3://{stack.stack.ref('ResultsBucket')}/{output['key']}")
        failed = [r.example for r in rows if r.task["status"] != TaskStatus.SUCCEEDED.value]
    if failed:
        print(f"\nnot succeeded: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"\nall {len(rows)} tasks succeeded")
    return 0
