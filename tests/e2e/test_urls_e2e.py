"""The URLs wanflow hands out, over HTTP: every presigned S3 URL is SigV4 (a SigV2 URL leaves
the upload's write-once header unsigned, and buckets that require SigV4 or SSE-KMS refuse it),
and the callback URL given to the upstream is the API's own address whatever the client says."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from PIL import Image

from kit.waiting import wait_for
from wanflow.uploads import image_url_ttl
from wanflow_local.commands import DEV_API_KEY
from wanflow_local.stack import LocalStack

VALID = Path(__file__).resolve().parents[2] / "events/requests/valid"
HEADERS = {"Authorization": f"Bearer {DEV_API_KEY}"}


def _query(url: str) -> dict[str, str]:
    return {name: values[-1] for name, values in parse_qs(urlsplit(url).query).items()}


def _created_with(stack: LocalStack, task_id: str) -> dict[str, Any]:
    """The body the upstream's create of a task received (the simulator's request log)."""
    assert stack.sim is not None
    record = stack.store.get(task_id)
    for logged in stack.sim.requests("create"):
        if logged.task_id == record.upstream_id:
            body: dict[str, Any] = logged.body
            return body
    raise AssertionError(f"no create request for {task_id}")


def _ended(api: httpx.Client, task_id: str, timeout: float = 30.0) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        got = api.get(f"/v1/tasks/{task_id}")
        assert got.status_code in {200, 404}, got.text  # 404 until the upload is noticed
        if got.status_code == 200 and got.json()["status"] in {"succeeded", "failed"}:
            task: dict[str, Any] = got.json()
            return task
        return None

    return wait_for(ended, timeout=timeout, interval=0.2, what=f"task {task_id} to end")


def test_every_presigned_url_wanflow_mints_is_sigv4(stack: LocalStack) -> None:
    body = json.loads((VALID / "wan26_i2v.json").read_text(encoding="utf-8"))
    del body["input"]["img_url"]
    image = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 120, 30)).save(image, format="PNG")
    with httpx.Client(base_url=stack.api.url, headers=HEADERS, timeout=10) as api:
        # GIVEN an upload granted, and its image PUT as told
        granted = api.post("/v1/uploads", json=body)
        assert granted.status_code == 201, granted.text
        ticket = granted.json()
        put_url = ticket["upload"]["url"]
        put = httpx.put(put_url, content=image.getvalue(), headers=ticket["upload"]["headers"])
        assert put.status_code == 200, put.text
        # WHEN its task has run and the client reads it
        task = _ended(api, ticket["task_id"])
    assert task["status"] == "succeeded", task
    image_url = _created_with(stack, task["id"])["input"]["img_url"]
    [output] = task["outputs"]
    # THEN the upload PUT, the image GET handed to the upstream and the result GET are SigV4
    for what, url in {"upload": put_url, "image": image_url, "result": output["url"]}.items():
        query = _query(url)
        assert query.get("X-Amz-Algorithm") == "AWS4-HMAC-SHA256", (what, url)
        assert not {"Signature", "AWSAccessKeyId"} & set(query), (what, url)
    # the write-once header is part of the upload's signature, so S3 enforces it
    assert "if-none-match" in _query(put_url)["X-Amz-SignedHeaders"].split(";")
    # the image URL lives until the task's deadline and a margin, not a day
    timing = stack.store.get(task["id"]).timing
    assert int(_query(image_url)["X-Amz-Expires"]) == image_url_ttl(timing) < 3600
    assert httpx.get(image_url, timeout=10).content == image.getvalue()


def test_the_callback_url_is_the_apis_own_address_whatever_host_the_client_sends(
    stack: LocalStack,
) -> None:
    body = json.loads((VALID / "wan2.6-image-to-video-flash.json").read_text(encoding="utf-8"))
    del body["callback_url"]  # the client's own webhook is not what this is about
    forged = {"Host": "attacker.example", "X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=stack.api.url, headers=HEADERS, timeout=10) as api:
        # WHEN a client submits with a Host and X-Forwarded-Proto of its choosing
        answer = api.post("/v1/tasks", json=body, headers=forged)
        assert answer.status_code == 202, answer.text
        task = _ended(api, answer.json()["id"])
    # THEN the upstream was told to call back the adapter's own address (plain HTTP, as the
    # local stack is configured), and the callback came through
    callback = _created_with(stack, task["id"])["callback_url"]
    assert callback.startswith(f"{stack.api.url}/v1/callbacks/"), callback
    assert "attacker.example" not in callback
    assert task["status"] == "succeeded", task
    assert stack.store.get(task["id"]).completion == "callback"
