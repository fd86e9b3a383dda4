"""An uploaded image becomes a task, all over HTTP: POST /v1/uploads, the presigned PUT, GET."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from kit.waiting import wait_for
from wanflow_local.commands import DEV_API_KEY
from wanflow_local.stack import LocalStack

REQUEST = Path(__file__).resolve().parents[2] / "events/requests/valid/wan22_i2v_flash.json"


def test_an_uploaded_image_becomes_a_task_the_api_shows_succeeded(stack: LocalStack) -> None:
    # GIVEN a request without its image, and the image
    body = json.loads(REQUEST.read_text(encoding="utf-8"))
    del body["input"]["img_url"]
    image = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 120, 200)).save(image, format="JPEG")
    headers = {"Authorization": f"Bearer {DEV_API_KEY}"}
    with httpx.Client(base_url=stack.api.url, headers=headers, timeout=10) as api:
        # WHEN the client asks for an upload and PUTs the image where and as it is told
        granted = api.post("/v1/uploads", json=body)
        assert granted.status_code == 201, granted.text
        ticket = granted.json()
        upload = ticket["upload"]
        put = httpx.request(
            upload["method"],
            upload["url"],
            content=image.getvalue(),
            headers=upload["headers"],
            timeout=10,
        )
        assert put.status_code == 200, put.text

        # THEN the task named when the upload was granted appears and runs to its end
        def ended() -> dict[str, Any] | None:
            got = api.get(f"/v1/tasks/{ticket['task_id']}")
            assert got.status_code in {200, 404}, got.text  # 404 until the upload is noticed
            if got.status_code == 200 and got.json()["status"] in {"succeeded", "failed"}:
                found: dict[str, Any] = got.json()
                return found
            return None

        task = wait_for(ended, timeout=30, interval=0.2, what="the uploaded image's task to end")
    assert task["status"] == "succeeded", task
    assert task["model"] == "wan22_i2v_flash"
    # and its result is a presigned URL of our copy, not the upstream's link
    [output] = task["outputs"]
    assert output["url"].startswith(stack.aws.endpoint_url)
    assert f"/{ticket['task_id']}/" in output["url"].split("?")[0]
    assert b"ftyp" in httpx.get(output["url"], timeout=10).content[:12]
