"""An S3 upload becomes a task, seen through the API over HTTP."""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path

import httpx
from PIL import Image

from wanflow_local.commands import DEV_API_KEY
from wanflow_local.stack import LocalStack

REQUEST = Path(__file__).resolve().parents[2] / "events/requests/valid/wan22_i2v_flash.json"


def test_an_uploaded_image_becomes_a_task_the_api_shows_succeeded(stack: LocalStack) -> None:
    # GIVEN an image and its request, put where uploads go (the default tenant of the local API)
    body = json.loads(REQUEST.read_text(encoding="utf-8"))
    del body["input"]["img_url"]
    image = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 120, 200)).save(image, format="JPEG")
    s3 = stack.aws.client("s3")
    s3.put_object(
        Bucket=stack.stack.ref("ResultsBucket"),
        Key=f"uploads/default/{uuid.uuid4().hex}",
        Body=image.getvalue(),
        Metadata={"request": json.dumps(body)},
    )
    # WHEN the upload is noticed, the task shows up in the tenant's list over HTTP (this module's
    # stack runs no other task) and runs to its end
    headers = {"Authorization": f"Bearer {DEV_API_KEY}"}
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=stack.api.url, headers=headers, timeout=10) as api:
        while True:
            tasks = api.get("/v1/tasks").json()["tasks"]
            if tasks and tasks[0]["status"] in {"succeeded", "failed", "timed_out"}:
                break
            assert time.monotonic() < deadline, tasks
            time.sleep(0.2)
        assert len(tasks) == 1
        assert tasks[0]["model"] == "wan22_i2v_flash"
        task = api.get(f"/v1/tasks/{tasks[0]['id']}").json()
    # THEN it succeeded, and its result is ours to download
    assert task["status"] == "succeeded", task
    [output] = task["outputs"]
    assert b"ftyp" in httpx.get(output["url"], timeout=10).content[:12]
