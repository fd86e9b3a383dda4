"""Latency of the API on the local stack: POST /v1/tasks and the upstream callback route.

Starts the local stack (moto, template.yaml, the API on loopback, the simulator with no added
latency), sends N submits of the flash model over HTTP one at a time, then N upstream callbacks
(one per task, each with its valid signature, each resuming that task's execution), and prints
p50/p95/max of each.
Targets on this machine: callback p50 ≤ 30 ms, submit p50 ≤ 80 ms.

    .venv/bin/python bench/api_latency.py [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import httpx

from wanflow.signing import sign
from wanflow_local.commands import DEV_API_KEY
from wanflow_local.stack import local_stack

REQUEST = (
    Path(__file__).resolve().parents[1] / "events/requests/valid/wan2.6-image-to-video-flash.json"
)
TARGETS_MS = {"POST /v1/tasks": 80.0, "POST /v1/callbacks/{task_id}": 30.0}


def _summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p50, p95 = statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]
    verdict = "PASS" if p50 <= TARGETS_MS[name] else "FAIL"
    return (
        f"{name:<30}{len(ordered):>6}{p50:>9.1f}{p95:>9.1f}{ordered[-1]:>9.1f}"
        f"   p50 ≤ {TARGETS_MS[name]:.0f} ms {verdict}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--time-scale",
        type=float,
        default=10.0,
        help="upstream time scale; slowed down (default 10) so that no task finishes or polls "
        "during the run and the routes are timed without that background work",
    )
    parser.add_argument(
        "--gap-ms",
        type=float,
        default=250.0,
        help="pause between requests, so each is timed alone and not behind the work the "
        "previous one set off (an execution resumed by a callback runs in this process too)",
    )
    args = parser.parse_args()
    body = json.loads(REQUEST.read_text(encoding="utf-8"))
    submits: list[float] = []
    callbacks: list[float] = []
    with (
        local_stack(time_scale=args.time_scale, log_level="WARNING") as stack,
        httpx.Client(headers={"Authorization": f"Bearer {DEV_API_KEY}"}) as http,
    ):
        api = stack.api.url
        http.post(f"{api}/v1/tasks", json=body).raise_for_status()  # warm: first imports
        tasks = []
        for _ in range(args.requests):
            start = time.perf_counter()
            answer = http.post(f"{api}/v1/tasks", json=body)
            submits.append((time.perf_counter() - start) * 1000)
            assert answer.status_code == 202, answer.text
            tasks.append(answer.json())
            time.sleep(args.gap_ms / 1000)
        webhook = stack.runtime("CallbackFunction")
        secret = webhook.secret(webhook.config.callback_secret_arn)
        for task in tasks:
            # What the upstream sends when a task ends; finalize then re-reads the upstream,
            # finds it still running (it is), and the execution goes back to waiting.
            report = {
                "id": task["upstream"]["task_id"],
                "object": "video.generation.task",
                "status": "completed",
                "progress": 100,
                "results": [f"https://cdn.example.com/{task['id']}.mp4"],
            }
            url = f"{api}/v1/callbacks/{task['id']}?sig={sign(task['id'], secret)}"
            start = time.perf_counter()
            answer = http.post(url, json=report)
            callbacks.append((time.perf_counter() - start) * 1000)
            assert answer.status_code == 200, answer.text
            time.sleep(args.gap_ms / 1000)
    print(
        f"{args.requests} requests per route over HTTP, one at a time {args.gap_ms:g} ms apart, "
        f"simulator latency 0, time scale {args.time_scale:g}"
    )
    print(f"{'route':<30}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    print(_summary("POST /v1/tasks", submits))
    print(_summary("POST /v1/callbacks/{task_id}", callbacks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
