"""The one parser of request bodies and query parameters (wanflow.http), and the error body's cap.

Every route reads its body through `json_body`: whatever a client sends, the answer is a 4xx in
wanflow's error shape, never a RecursionError, a PutItem failure or a response over Lambda's 6 MB.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from wanflow.catalog import validate
from wanflow.client_webhooks.targets import check_url
from wanflow.errors import MAX_LISTED_ERRORS, ErrorBody, ErrorItem, InvalidRequest
from wanflow.http import (
    MAX_BODY_BYTES,
    MAX_DEPTH,
    RequestRefused,
    is_json_media_type,
    json_body,
    plausible_id,
)
from wanflow.submission import stored_request

LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024


def event(body: str | None, content_type: str | None = "application/json") -> dict[str, Any]:
    """A proxy event as API Gateway sends it, with the body as text."""
    headers = {"Content-Type": content_type} if content_type is not None else {}
    return {"headers": headers, "body": body, "isBase64Encoded": False}


def refused(evt: dict[str, Any], *, optional: bool = False) -> tuple[int, dict[str, Any]]:
    """The status and error body a route answers for this event."""
    with pytest.raises(RequestRefused) as caught:
        json_body(evt, optional=optional)
    status, body = caught.value.status, caught.value.error_json()
    assert set(body) == {"error", "errors", "more_errors"}
    assert body["errors"] == [body["error"]]
    return status, body


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


# --- what is read ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "application/json; charset=utf-8",
        'Application/JSON; charset="UTF-8"',
        "application/merge-patch+json",
        "application/vnd.wanflow+json; version=1",
    ],
)
def test_json_and_an_undeclared_type_are_read(content_type: str | None) -> None:
    assert json_body(event('{"model": "wan26_i2v"}', content_type)) == {"model": "wan26_i2v"}


def test_what_the_cli_sends_is_read() -> None:
    # The CLI posts with httpx's json=, which declares exactly this.
    import httpx

    sent = httpx.Request("POST", "http://x/v1/tasks", json={"model": "m"})
    evt = event(sent.content.decode(), sent.headers["Content-Type"])
    assert json_body(evt) == {"model": "m"}


def test_a_body_at_the_depth_limit_is_read() -> None:
    # MAX_DEPTH containers, the innermost holding a number
    assert json_body(event(nested(MAX_DEPTH))) is not None


def test_an_empty_optional_body_is_none_and_a_base64_one_is_decoded() -> None:
    assert json_body(event(None), optional=True) is None
    assert json_body(event("  \n"), optional=True) is None
    encoded = {"headers": {}, "body": base64.b64encode(b'{"a": "\xc3\xa9"}').decode()}
    assert json_body({**encoded, "isBase64Encoded": True}) == {"a": "é"}


def test_a_body_just_under_the_limit_is_read() -> None:
    filler = "x" * (MAX_BODY_BYTES - len('{"a": ""}'))
    assert json_body(event(f'{{"a": "{filler}"}}')) == {"a": filler}


# --- what is refused, and how --------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "multipart/form-data; boundary=xyz",
        "application/x-www-form-urlencoded",
        "text/json",
        "application/jsonp",
        "application/json; charset=latin-1",
    ],
)
def test_a_declared_type_that_is_not_json_is_415(content_type: str) -> None:
    status, body = refused(event('{"model": "wan26_i2v"}', content_type))
    assert status == 415
    assert body["error"]["code"] == "unsupported_media_type"
    assert body["error"]["param"] == "Content-Type"
    assert not is_json_media_type(content_type)


def test_deep_nesting_is_400_before_anything_recurses() -> None:
    # GIVEN JSON nested 10,000 deep (past the interpreter's recursion limit), and just past ours
    for text in ("[" * 10_000 + "]" * 10_000, nested(MAX_DEPTH + 1)):
        status, body = refused(event(text))
        # THEN both are a 400 that says why
        assert status == 400
        assert body["error"]["code"] == "nesting_too_deep"


@pytest.mark.parametrize(
    ("text", "param"),
    [
        ('{"input": {"prompt": "a \\ud800 b"}}', "input.prompt"),
        ('{"messages": [{"content": ["ok", "\\udfff"]}]}', "messages[0].content[1]"),
        ('{"input": {"\\ud83d": 1}}', "input"),
    ],
)
def test_a_lone_surrogate_is_400_naming_the_field(text: str, param: str) -> None:
    status, body = refused(event(text))
    assert status == 400
    assert body["error"]["code"] == "invalid_string"
    assert body["error"]["param"] == param
    assert param in body["error"]["message"]


def test_a_surrogate_pair_is_valid_text() -> None:
    assert json_body(event('{"prompt": "\\ud83d\\ude00"}')) == {"prompt": "\U0001f600"}


def test_bytes_that_are_not_utf8_are_400() -> None:
    raw = base64.b64encode(b'{"prompt": "\xff\xfe"}').decode()
    status, body = refused({"headers": {}, "body": raw, "isBase64Encoded": True})
    assert status == 400
    assert body["error"]["code"] == "invalid_encoding"


@pytest.mark.parametrize("text", ["[1, 2]", '"text"', "42", "null", "true"])
def test_json_that_is_not_an_object_is_400(text: str) -> None:
    status, body = refused(event(text))
    assert (status, body["error"]["code"]) == (400, "invalid_body")


@pytest.mark.parametrize("text", ["{", "{'a': 1}", '{"a": NaN}', '{"a": -Infinity}', "\ufeff{}"])
def test_text_that_is_not_json_is_400(text: str) -> None:
    status, body = refused(event(text))
    assert (status, body["error"]["code"]) == (400, "invalid_json")


def test_a_number_json_cannot_hold_as_a_double_is_400() -> None:
    status, body = refused(event('{"parameters": {"seed": 1e400}}'))
    assert (status, body["error"]["param"]) == (400, "parameters.seed")


def test_an_empty_body_is_400_where_one_is_required() -> None:
    status, body = refused(event(""))
    assert (status, body["error"]["code"]) == (400, "invalid_json")


def test_a_body_over_the_limit_is_413_pointing_to_uploads() -> None:
    text = '{"a": "' + "x" * MAX_BODY_BYTES + '"}'
    for evt in (
        event(text),
        {"headers": {}, "body": base64.b64encode(text.encode()).decode(), "isBase64Encoded": True},
        event(text, "text/plain"),  # too large is said first, as API Gateway would
    ):
        status, body = refused(evt)
        assert status == 413
        assert body["error"]["code"] == "request_too_large"
        assert "POST /v1/uploads" in body["error"]["message"]


def test_multibyte_text_counts_in_bytes() -> None:
    # Under the limit in characters, over it in UTF-8 bytes (3 bytes each).
    text = '{"a": "' + "€" * (MAX_BODY_BYTES // 3 + 1) + '"}'
    assert len(text) < MAX_BODY_BYTES
    status, _ = refused(event(text))
    assert status == 413


# --- the error body's cap ------------------------------------------------------------------------


def test_100000_unknown_fields_list_50_problems_and_count_the_rest() -> None:
    # GIVEN a request with 100,000 fields no model documents
    body: dict[str, Any] = {"model": "wan26_i2v", "input": {"img_url": "https://x.example/a.png"}}
    body.update({f"field{i}": i for i in range(100_000)})
    json_body(event(json.dumps(body)))  # the parser reads it: it is well-formed
    # WHEN it is validated, as the API and `wanflow validate` both do
    with pytest.raises(InvalidRequest) as caught:
        validate(body)
    answer = caught.value.body().model_dump(mode="json")
    # THEN the body lists 50 and says how many more, and is small
    assert len(answer["errors"]) == MAX_LISTED_ERRORS
    assert answer["more_errors"] == 100_000 - MAX_LISTED_ERRORS
    assert answer["error"] == answer["errors"][0]
    assert len(json.dumps(answer)) < 50_000
    assert "and 99950 more" in caught.value.message


def test_an_item_quoting_a_huge_input_stays_small() -> None:
    # A value echoed in the message (an unknown model's name) and a 1 MB field name.
    with pytest.raises(InvalidRequest) as caught:
        validate({"model": "\u4e00" * 1_000_000})
    item = caught.value.body().error
    assert len(item.message) <= 1000
    big = ErrorItem(code="unknown_field", message="m", param="p" * 1_000_000)
    assert big.param is not None
    assert len(big.param) <= 300
    # Fifty items of the worst characters JSON escapes stay far under Lambda's 6 MB.
    worst = ErrorItem(code="c", message="\U0001f600" * 10_000, param="\x00" * 10_000)
    text = json.dumps(ErrorBody.of([worst] * 100_000).model_dump(mode="json"))
    assert len(text) < LAMBDA_RESPONSE_LIMIT // 5


def test_a_short_list_is_whole() -> None:
    items = [ErrorItem(code="c", message=str(i)) for i in range(3)]
    assert ErrorBody.of(items).model_dump(mode="json")["more_errors"] == 0
    assert len(ErrorBody.of(items).errors) == 3


# --- ids ------------------------------------------------------------------


def test_an_id_no_task_could_have_is_not_plausible() -> None:
    assert plausible_id("tsk_" + "0" * 32)
    assert not plausible_id("tsk_" + "0" * 3000)  # DynamoDB refuses a key over 2 KB
    assert not plausible_id("tsk_\ud800")


# --- webhook URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://user:hunter2@hooks.example/in",
        "https://user@hooks.example/in",
        "https://:hunter2@hooks.example/in",
        "https://@hooks.example/in",
    ],
)
def test_a_webhook_url_with_credentials_is_refused_naming_its_field(url: str) -> None:
    for param in ("webhook.url", "callback_url"):
        [problem] = check_url(url, param, "invalid_webhook_url", allow_http=False)
        assert problem.param == param
        assert "credentials" in problem.message
        assert "hunter2" not in problem.message  # never echoed back


def test_an_at_sign_outside_the_host_is_fine() -> None:
    url = "https://hooks.example/in?to=ops@example.com#a@b"
    assert check_url(url, "webhook.url", "invalid_webhook_url", allow_http=False) == []


def test_wanflow_validate_refuses_a_callback_url_with_credentials_as_the_api_does() -> None:
    example = Path(__file__).resolve().parents[2] / "events/requests/valid"
    body = json.loads((example / "wan2.6-image-to-video-flash.json").read_text(encoding="utf-8"))
    body["callback_url"] = "https://user:hunter2@hooks.example/in"
    with pytest.raises(InvalidRequest) as caught:
        validate(body)
    [offline] = caught.value.items
    [online] = check_url(
        body["callback_url"], "callback_url", "invalid_callback_url", allow_http=False
    )
    assert (offline.param, offline.code, offline.message) == (
        online.param,
        online.code,
        online.message,
    )


# --- what a task keeps of its request ------------------------------------------------------------


def test_an_inline_image_is_kept_as_its_description() -> None:
    image = b"\x89PNG\r\n\x1a\n" + bytes(500_000)
    uri = "data:image/png;base64," + base64.b64encode(image).decode()
    request: dict[str, Any] = {
        "model": "wan26_i2i",
        "input": {"messages": [{"content": [{"image": uri}] * 4}]},
    }
    kept = stored_request(request)
    described = kept["input"]["messages"][0]["content"][0]["image"]
    assert described == {
        "omitted": "inline image",
        "media_type": "image/png",
        "bytes": len(image),
        "sha256": hashlib.sha256(image).hexdigest(),
    }
    assert len(json.dumps(kept)) < 2000
    assert request["input"]["messages"][0]["content"][0]["image"] == uri  # the original is kept


def test_short_text_is_kept_and_long_text_described() -> None:
    prompt = "a cat " * 200_000
    kept = stored_request({"model": "wan2.6", "prompt": prompt, "seed": 7, "audio": True})
    assert kept["seed"] == 7
    assert kept["audio"] is True
    assert kept["prompt"]["omitted"] == "text"
    assert kept["prompt"]["bytes"] == len(prompt)
    assert kept["prompt"]["start"] == prompt[:200]
    url = "https://x.example/" + "a" * 2000
    assert stored_request({"image_urls": [url]}) == {"image_urls": [url]}


def test_numbers_dynamodb_cannot_hold_are_kept_as_text() -> None:
    kept = stored_request({"metadata": {"big": 10**50, "huge": 1e200, "fine": 0.5, "n": 3}})
    assert kept["metadata"] == {"big": str(10**50), "huge": "1e+200", "fine": 0.5, "n": 3}


def test_a_request_still_too_large_is_kept_as_a_digest() -> None:
    request = {"model": "wan2.6", "metadata": {"tags": ["x" * 100] * 5000}}
    kept = stored_request(request)
    assert kept["omitted"] == "request"
    assert kept["bytes"] == len(json.dumps(request).encode())


# --- wanflow validate ----------------------------------------------------------------------------


def test_wanflow_validate_prints_the_capped_body_and_refuses_deep_nesting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from wanflow_client.cli import main

    many = tmp_path / "many.json"
    many.write_text(json.dumps({"model": "wan26_i2v", **{f"f{i}": i for i in range(100_000)}}))
    assert main(["validate", str(many)]) == 2
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["errors"]) == MAX_LISTED_ERRORS
    assert printed["more_errors"] > 100_000 - MAX_LISTED_ERRORS
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["validate", str(deep)]) == 2
    assert "too deep" in capsys.readouterr().err
