"""Callback URLs are signed per task, checked in constant time, and refused when unusable."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from wanflow.signing import callback_url, sign, verify

SECRET = "s3cret-of-48-characters-xxxxxxxxxxxxxxxxxxxxxxxx"


def test_a_signature_verifies_only_for_its_task_and_secret() -> None:
    sig = sign("task-1", SECRET)
    assert verify("task-1", sig, SECRET)
    assert not verify("task-2", sig, SECRET)
    assert not verify("task-1", sig, SECRET + "x")
    assert not verify("task-1", sig[:-1] + ("A" if sig[-1] != "A" else "B"), SECRET)


@pytest.mark.parametrize("sig", [None, "", "not base64 !!", "A" * 500, "©òE\U0009ed30r"])
def test_missing_or_malformed_signatures_fail_closed(sig: str | None) -> None:
    assert not verify("task-1", sig, SECRET)


def test_an_empty_secret_verifies_nothing() -> None:
    assert not verify("task-1", sign("task-1", ""), "")


def test_callback_url_carries_the_task_and_its_signature() -> None:
    url = callback_url("https://api.example.com/prod/", "task-1", SECRET)
    assert url is not None
    parts = urlsplit(url)
    assert parts.path == "/prod/v1/callbacks/task-1"
    assert verify("task-1", parse_qs(parts.query)["sig"][0], SECRET)


def test_callback_url_must_be_https_and_fit_2048_characters() -> None:
    assert callback_url("http://api.example.com", "task-1", SECRET) is None
    assert callback_url("", "task-1", SECRET) is None
    long_base = "https://api.example.com/" + "p" * 2000
    assert callback_url(long_base, "task-1", SECRET) is None
