"""The API client without I/O: its settings from the environment, its errors, the names of
downloaded files."""

from __future__ import annotations

from typing import Any

import pytest

from wanflow_client.api_client import (
    ApiError,
    ApiUnreachable,
    MissingSetting,
    api_settings,
    error_summary,
    output_filename,
)

# --- settings ---------------------------------------------------------------------------------


def test_settings_come_from_the_environment() -> None:
    env = {"WANFLOW_API_URL": " http://127.0.0.1:3000/prod ", "WANFLOW_API_KEY": "k"}
    assert api_settings(env) == ("http://127.0.0.1:3000/prod", "k")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WANFLOW_API_KEY": "k"}, "WANFLOW_API_URL is not set"),
        ({"WANFLOW_API_URL": "https://api.example.com/prod"}, "WANFLOW_API_KEY is not set"),
        (
            {"WANFLOW_API_URL": "", "WANFLOW_API_KEY": " "},
            "WANFLOW_API_URL and WANFLOW_API_KEY are",
        ),
        ({"WANFLOW_API_URL": "127.0.0.1:3000", "WANFLOW_API_KEY": "k"}, "must be an http(s) URL"),
    ],
)
def test_a_missing_setting_is_named_in_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(MissingSetting) as raised:
        api_settings(env)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


# --- errors and file names --------------------------------------------------------------------


def test_an_api_error_reads_as_its_message_code_and_param() -> None:
    body = {"error": {"type": "not_found", "code": "task_not_found", "message": "no task x",
                      "param": "task_id"}, "errors": []}  # fmt: skip
    error = ApiError(404, body)
    assert str(error) == "HTTP 404: no task x (task_not_found, task_id)"
    assert error.client_error
    assert not ApiError(503, body).client_error
    assert error_summary({"message": "Internal server error"}) == "Internal server error"
    assert str(ApiUnreachable("http://h/prod", "refused")) == (
        "cannot reach WANFLOW_API_URL=http://h/prod: refused"
    )


@pytest.mark.parametrize(
    ("index", "output", "name"),
    [
        (0, {"type": "video", "key": "results/default/tsk_1/0.mp4", "url": "http://s3/x"}, "0.mp4"),
        (1, {"type": "text", "text": "Step 1"}, "1.txt"),
        (2, {"type": "image", "key": None, "url": "http://s3/bucket/k/2.png?X-Amz=1"}, "2.png"),
        (3, {"type": "image", "key": "..", "url": None}, "3.image"),
    ],
)  # fmt: skip
def test_output_files_are_named_by_the_keys_basename(
    index: int, output: dict[str, Any], name: str
) -> None:
    assert output_filename(index, output) == name
