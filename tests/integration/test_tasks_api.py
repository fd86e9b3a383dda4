"""GET /v1/tasks/{id} and GET /v1/tasks: the tasks function with API Gateway proxy events."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from stackkit import event, invoke, request, submit

from wanflow_local.stack import LocalStack


def _get(stack: LocalStack, path: str, tenant: str = "acme", **params: Any) -> httpx.Response:
    # The tenant is what the authorizer puts in the request context: set it in the event.
    ev = event("api/submit")
    ev.update(httpMethod="GET", body=None, path=path, resource=path)
    ev["queryStringParameters"] = {k: str(v) for k, v in params.items()} or None
    ev["requestContext"]["authorizer"] = {"tenant": tenant}
    ev["requestContext"]["httpMethod"] = "GET"
    if path.count("/") == 3:
        ev["pathParameters"] = {"task_id": path.rsplit("/", 1)[1]}
        ev["resource"] = "/v1/tasks/{task_id}"
    answer = invoke(stack, "TasksFunction", ev)
    return httpx.Response(answer["statusCode"], content=answer["body"].encode())


def test_a_finished_task_reads_back_with_presigned_urls_to_our_copy(stack: LocalStack) -> None:
    _, task = submit(stack, request("wan22_i2v_flash"))
    stack.finish(task["id"])
    got = _get(stack, f"/v1/tasks/{task['id']}")
    assert got.status_code == 200
    body = got.json()
    assert body["status"] == "succeeded"
    [output] = body["outputs"]
    assert output["expires_at"]
    assert output["url"].startswith(stack.aws.endpoint_url)  # our bucket, not the upstream
    downloaded = httpx.get(output["url"], timeout=10)
    assert downloaded.status_code == 200
    assert b"ftyp" in downloaded.content[:12]


def test_another_tenants_task_is_404_like_a_missing_one(stack: LocalStack) -> None:
    _, task = submit(stack, request("wan2.6-t2v"), tenant="acme")
    theirs = _get(stack, f"/v1/tasks/{task['id']}", tenant="globex")
    missing = _get(stack, "/v1/tasks/tsk_nope", tenant="globex")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "task_not_found"
    stack.finish(task["id"])


def test_listing_is_newest_first_filtered_and_paginated(stack: LocalStack) -> None:
    ids = [
        submit(stack, request(n), tenant="initech")[1]["id"]
        for n in ("wan2.6-t2v", "wan22_i2v_flash", "wan2.6-i2v")
    ]
    listed = _get(stack, "/v1/tasks", tenant="initech").json()
    assert [t["id"] for t in listed["tasks"]] == ids[::-1]
    only = _get(stack, "/v1/tasks", tenant="initech", model="wan22_i2v_flash").json()
    assert [t["id"] for t in only["tasks"]] == [ids[1]]
    first = _get(stack, "/v1/tasks", tenant="initech", limit=2).json()
    assert [t["id"] for t in first["tasks"]] == ids[:0:-1]
    rest = _get(stack, "/v1/tasks", tenant="initech", limit=2, cursor=first["next_cursor"]).json()
    assert [t["id"] for t in rest["tasks"]] == [ids[0]]
    assert _get(stack, "/v1/tasks", tenant="nobody").json() == {"tasks": [], "next_cursor": None}
    for bad in ({"limit": 0}, {"limit": "x"}, {"status": "done"}, {"cursor": "%%%"}):
        answer = _get(stack, "/v1/tasks", tenant="initech", **bad)
        assert answer.status_code == 400, bad
        assert answer.json()["error"]["param"] == next(iter(bad))
    for task_id in ids:
        stack.finish(task_id)


def test_a_cursor_works_only_for_the_listing_it_came_from(stack: LocalStack) -> None:
    # GIVEN a next_cursor of tenant initech's listing, and cursors that are JSON but not ours
    ids = [submit(stack, request("wan2.6-t2v"), tenant="umbrella")[1]["id"] for _ in range(2)]
    page = _get(stack, "/v1/tasks", tenant="umbrella", limit=1).json()
    assert page["next_cursor"]
    forged = [
        base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
        for key in ({"a": 1}, [1, 2], {"pk": {"N": "1"}, "sk": 1, "gsi1pk": {}, "gsi1sk": None})
    ]
    # WHEN another tenant replays it, or anyone sends the forged ones
    # THEN 400 naming the cursor (never a 5xx, never another tenant's page)
    for tenant, cursor in [("hooli", page["next_cursor"]), *(("umbrella", c) for c in forged)]:
        answer = _get(stack, "/v1/tasks", tenant=tenant, cursor=cursor)
        assert answer.status_code == 400, cursor
        assert answer.json()["error"]["param"] == "cursor"
    for task_id in ids:
        stack.finish(task_id)
