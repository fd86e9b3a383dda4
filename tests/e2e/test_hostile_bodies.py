"""Hostile and oversized requests, over HTTP on the local stack: every route that reads a body or
parameters answers a 4xx in wanflow's error shape, small, and never a 5xx. And requests within
the models' limits, large inline images included, work.

The body limit is Lambda's (6 MB a synchronous event): on AWS API Gateway refuses a larger
request itself before any function runs; here the handlers see it and refuse it the same way.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from kit.waiting import wait_for
from wanflow.http import MAX_BODY_BYTES
from wanflow.signing import sign
from wanflow_local.commands import DEV_API_KEY
from wanflow_local.stack import LocalStack

VALID = Path(__file__).resolve().parents[2] / "events/requests/valid"
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024
JSON = "application/json"


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((VALID / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def encoded(body: Any) -> bytes:
    return json.dumps(body).encode()


#: name → (raw body, Content-Type, the status every route answers; None: any 4xx).
HOSTILE: dict[str, tuple[bytes, str | None, int | None]] = {
    "nested 10,000 deep": (b'{"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", JSON, 400),
    "lone surrogate": (
        b'{"model": "wan26_i2v", "input": {"prompt": "\\ud800", "img_url": "https://x.example/a.png"}}',
        JSON,
        400,
    ),
    "100,000 unknown fields": (
        encoded({"model": "wan26_i2v", **{f"field{i}": i for i in range(100_000)}}),
        JSON,
        None,  # 400 where it is read, 413 on the callback route (its own smaller limit)
    ),
    "text/plain": (encoded(example("wan26_i2v")), "text/plain", 415),
    "multipart/form-data": (
        b'--x\r\nContent-Disposition: form-data; name="model"\r\n\r\nwan26_i2v\r\n--x--\r\n',
        "multipart/form-data; boundary=x",
        415,
    ),
    "credentials in the webhook URL": (
        encoded(
            {**example("wan26_i2v"), "webhook": {"url": "https://user:hunter2@hooks.example/in"}}
        ),
        JSON,
        400,
    ),
    "over the size limit": (
        b'{"model": "wan26_i2v", "pad": "' + b"x" * MAX_BODY_BYTES + b'"}',
        JSON,
        413,
    ),
    "an array, not an object": (b"[1, 2, 3]", JSON, 400),
    "bytes that are not UTF-8": (
        b'{"model": "wan26_i2v", "input": {"prompt": "\xff\xfe"}}',
        JSON,
        400,
    ),
}


def assert_error_shape(answer: httpx.Response) -> dict[str, Any]:
    """A 4xx with wanflow's error body, well under Lambda's 6 MB response limit."""
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:500])
    assert len(answer.content) < LAMBDA_RESPONSE_LIMIT
    body: dict[str, Any] = answer.json()
    assert set(body["error"]) == {"type", "code", "message", "param"}, body
    assert body["errors"][0] == body["error"]
    assert len(body["errors"]) <= 50
    assert body["more_errors"] >= 0
    return body


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {DEV_API_KEY}"}
    with httpx.Client(base_url=stack.api.url, headers=headers, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def task_id(api: httpx.Client) -> str:
    """A task of the caller's, with a webhook, for the routes under a task."""
    body = {**example("wan26_i2v"), "webhook": {"url": "https://hooks.example/in"}}
    answer = api.post("/v1/tasks", json=body)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


@pytest.fixture(scope="module")
def callback_path(stack: LocalStack, task_id: str) -> str:
    """The task's callback URL with a valid signature: a hostile body gets past the signature."""
    secrets = stack.aws.client("secretsmanager")
    arn = stack.stack.ref("CallbackSigningSecret")
    secret = secrets.get_secret_value(SecretId=arn)["SecretString"]
    return f"/v1/callbacks/{task_id}?sig={sign(task_id, secret)}"


ROUTES = ["submit", "uploads", "redeliver", "cancel", "callback"]


def route_path(route: str, task_id: str, callback_path: str) -> str:
    return {
        "submit": "/v1/tasks",
        "uploads": "/v1/uploads",
        "redeliver": f"/v1/tasks/{task_id}/deliveries/redeliver",
        "cancel": f"/v1/tasks/{task_id}/cancel",
        "callback": callback_path,
    }[route]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("hostile", list(HOSTILE))
def test_a_hostile_body_is_a_4xx_in_wanflows_shape(
    api: httpx.Client, task_id: str, callback_path: str, route: str, hostile: str
) -> None:
    raw, content_type, status = HOSTILE[hostile]
    if route == "callback" and hostile == "credentials in the webhook URL":
        pytest.skip("a callback is the upstream's task object: it has no webhook to refuse")
    headers = {"Content-Type": content_type} if content_type else {}
    # WHEN the body is posted to the route
    answer = api.post(route_path(route, task_id, callback_path), content=raw, headers=headers)
    # THEN it is refused in wanflow's shape, with the status that says why
    body = assert_error_shape(answer)
    if status is not None:
        assert answer.status_code == status, body
    if status == 413:
        assert "POST /v1/uploads" in body["error"]["message"] or route == "callback"


def test_100000_unknown_fields_list_50_and_count_the_rest(api: httpx.Client) -> None:
    raw, _, _ = HOSTILE["100,000 unknown fields"]
    for path in ("/v1/tasks", "/v1/uploads"):
        answer = api.post(path, content=raw, headers={"Content-Type": JSON})
        body = assert_error_shape(answer)
        assert answer.status_code == 400
        assert len(body["errors"]) == 50
        listed = sum(1 for e in body["errors"] if e["param"].startswith("field"))
        assert listed + body["more_errors"] >= 100_000, body["more_errors"]


def test_the_refusals_name_the_field(api: httpx.Client) -> None:
    post = {"headers": {"Content-Type": JSON}}
    surrogate = api.post("/v1/tasks", content=HOSTILE["lone surrogate"][0], **post)  # type: ignore[arg-type]
    assert surrogate.json()["error"]["param"] == "input.prompt"
    webhook = api.post("/v1/tasks", content=HOSTILE["credentials in the webhook URL"][0], **post)  # type: ignore[arg-type]
    assert webhook.json()["error"]["param"] == "webhook.url"
    assert "hunter2" not in webhook.text
    flash = {**example("wan2.6-image-to-video-flash"), "callback_url": "https://u:p@x.example/in"}
    refused = api.post("/v1/tasks", json=flash)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "callback_url"


def test_json_without_a_content_type_or_with_parameters_is_read(api: httpx.Client) -> None:
    raw = encoded(example("wan26_i2v"))
    for content_type in (None, "application/json; charset=utf-8", "application/vnd.api+json"):
        headers = {"Content-Type": content_type} if content_type else {}
        answer = api.post("/v1/tasks", content=raw, headers=headers)
        assert answer.status_code == 202, (content_type, answer.text)


def test_hostile_query_parameters_and_ids_are_4xx(api: httpx.Client) -> None:
    for params in ({"model": "m" * 5000}, {"limit": "many"}, {"cursor": "not-a-cursor"}):
        answer = api.get("/v1/tasks", params=params)
        assert answer.status_code == 400, answer.text
        assert_error_shape(answer)
    for task_path in ("t" * 3000, "%ED%A0%80", "tsk_%00"):
        for suffix in ("", "/deliveries"):
            answer = api.get(f"/v1/tasks/{task_path}{suffix}")
            assert answer.status_code == 404, answer.text
            assert_error_shape(answer)
        answer = api.post(f"/v1/tasks/{task_path}/cancel")
        assert answer.status_code == 404, answer.text


# --- large requests within the models' limits ----------------------------------------------------


def data_uri(width: int, height: int, seed: int = 0) -> str:
    """An uncompressed (BMP) noise image as a data URI: its size is its pixels."""
    out = io.BytesIO()
    Image.effect_noise((width, height), 64 + seed).convert("RGB").save(out, format="BMP")
    return "data:image/bmp;base64," + base64.b64encode(out.getvalue()).decode()


def wait_until_ended(api: httpx.Client, task_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        got = api.get(f"/v1/tasks/{task_id}")
        assert got.status_code == 200, got.text
        task: dict[str, Any] = got.json()
        return task if task["status"] in {"succeeded", "failed", "canceled", "timed_out"} else None

    return wait_for(ended, timeout=60, interval=0.2, what=f"task {task_id} to end")


def test_large_inline_images_work_up_to_the_limit_and_the_next_is_413(
    api: httpx.Client, stack: LocalStack
) -> None:
    # GIVEN a wan26_i2v request whose first frame is a 4.6 MB data URI (1000 x 1550 px BMP,
    # 6.2 MB as base64: just under the limit), and one a few rows taller (just over it)
    body = example("wan26_i2v-data-uri")
    body["input"]["img_url"] = data_uri(1000, 1550)
    assert len(encoded(body)) < MAX_BODY_BYTES
    over = example("wan26_i2v-data-uri")
    over["input"]["img_url"] = data_uri(1000, 1560)
    assert len(encoded(over)) > MAX_BODY_BYTES
    # WHEN both are submitted
    taken = api.post("/v1/tasks", json=body)
    refused = api.post("/v1/tasks", json=over)
    # THEN the first is a task that runs to its end, its item keeping a description of the image
    assert taken.status_code == 202, taken.text[:500]
    assert wait_until_ended(api, taken.json()["id"])["status"] == "succeeded"
    stored = stack.store.get(taken.json()["id"]).request["input"]["img_url"]
    assert stored["omitted"] == "inline image"
    assert stored["media_type"] == "image/bmp"
    assert stored["bytes"] == len(base64.b64decode(body["input"]["img_url"].split(",")[1]))
    # and the second a 413 pointing to uploads
    assert refused.status_code == 413
    assert "POST /v1/uploads" in assert_error_shape(refused)["error"]["message"]


def test_four_inline_images_for_wan26_i2i_work(api: httpx.Client) -> None:
    # GIVEN four 1.1 MB images (500 x 770 px BMP each): 5.9 MB of base64 in all
    body = example("wan26_i2i-edit")
    content = body["input"]["messages"][0]["content"]
    content[1:] = [{"image": data_uri(500, 770, seed)} for seed in range(4)]
    assert len(encoded(body)) < MAX_BODY_BYTES
    # WHEN it is submitted, THEN it is a task that runs to its end
    answer = api.post("/v1/tasks", json=body)
    assert answer.status_code == 202, answer.text[:500]
    assert wait_until_ended(api, answer.json()["id"])["status"] == "succeeded"


def test_a_1_mb_prompt_is_taken_and_stored_cut(api: httpx.Client, stack: LocalStack) -> None:
    # wan2.6 documents no prompt limit; wan26_i2v truncates at 1500 characters, as the upstream.
    for name, path in (("wan2.6-t2v", ("prompt",)), ("wan26_i2v", ("input", "prompt"))):
        body = example(name)
        node = body
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = "a cat on the grass. " * 50_000
        answer = api.post("/v1/tasks", json=body)
        assert answer.status_code == 202, (name, answer.text[:500])
        stored: Any = stack.store.get(answer.json()["id"]).request
        for key in path:
            stored = stored[key]
        assert len(str(stored)) < 5000, name
