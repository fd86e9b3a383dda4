"""Requests served at the same time each see their own event, as on Lambda, where one process
serves one request at a time; here every function shares one process (see the router patch in
local/wanflow_local/aws.py)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from kit.waiting import wait_for
from wanflow_local.commands import DEV_API_KEY
from wanflow_local.stack import LocalStack

VALID = Path(__file__).resolve().parents[2] / "events/requests/valid"
REQUESTS = ["wan2.6-t2v.json", "wan26_i2i-edit.json", "wan22_i2v_flash.json", "wan26_i2v.json"]


def test_concurrent_submits_each_create_the_task_they_asked_for(stack: LocalStack) -> None:
    # GIVEN 40 submits of four different models, sent 16 at a time
    bodies = [json.loads((VALID / REQUESTS[i % len(REQUESTS)]).read_text()) for i in range(40)]
    headers = {"Authorization": f"Bearer {DEV_API_KEY}"}

    def submit(body: dict[str, object]) -> tuple[str, str, str]:
        with httpx.Client(base_url=stack.api.url, timeout=30) as client:
            answer = client.post("/v1/tasks", json=body, headers=headers)
        assert answer.status_code == 202, answer.text
        task = answer.json()
        return str(body["model"]), str(task["model"]), str(task["id"])

    # WHEN they are served side by side
    with ThreadPoolExecutor(16) as pool:
        pairs = list(pool.map(submit, bodies))

    # THEN each task is of the model its own request named, and runs to its end
    assert [asked for asked, _, _ in pairs] == [got for _, got, _ in pairs]
    statuses: dict[str, str] = {}
    with httpx.Client(base_url=stack.api.url, timeout=30, headers=headers) as client:

        def all_succeeded() -> bool | None:
            for _, _, task_id in pairs:
                if statuses.get(task_id) != "succeeded":
                    statuses[task_id] = client.get(f"/v1/tasks/{task_id}").json()["status"]
            return set(statuses.values()) == {"succeeded"} or None

        wait_for(
            all_succeeded,
            timeout=60,
            interval=0.5,
            what=lambda: f"every task to succeed: {statuses}",
        )
    assert set(statuses.values()) == {"succeeded"}, statuses


def test_concurrent_reads_each_answer_the_task_their_path_named(stack: LocalStack) -> None:
    # GIVEN a dozen tasks
    headers = {"Authorization": f"Bearer {DEV_API_KEY}"}
    body = json.loads((VALID / "wan2.6-t2v.json").read_text())
    with httpx.Client(base_url=stack.api.url, timeout=30, headers=headers) as client:
        ids = [client.post("/v1/tasks", json=body).json()["id"] for _ in range(12)]

    def read(task_id: str) -> tuple[str, str]:
        with httpx.Client(base_url=stack.api.url, timeout=30, headers=headers) as client:
            answer = client.get(f"/v1/tasks/{task_id}")
        assert answer.status_code == 200, answer.text
        return task_id, str(answer.json()["id"])

    # WHEN each is read many times, side by side (a route's path arguments are per request)
    with ThreadPoolExecutor(12) as pool:
        pairs = list(pool.map(read, ids * 40))

    # THEN every answer is the task its own path named
    assert [asked for asked, _ in pairs] == [got for _, got in pairs]
