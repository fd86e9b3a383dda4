"""The API's own URL, which the upstream's callbacks are sent to, comes from what API Gateway
sets in the event, never from a header the client chose."""

from __future__ import annotations

import json
from pathlib import Path

from wanflow.http import public_base_url

EVENT = Path(__file__).resolve().parents[2] / "events" / "api" / "submit.json"


def test_forged_host_and_forwarded_proto_headers_do_not_change_the_url() -> None:
    event = json.loads(EVENT.read_text(encoding="utf-8"))
    event["headers"] |= {"Host": "attacker.example", "X-Forwarded-Proto": "http"}
    assert public_base_url(event) == "https://abc123.execute-api.us-east-1.amazonaws.com/prod"


def test_plain_http_only_when_configured() -> None:
    event = json.loads(EVENT.read_text(encoding="utf-8"))
    assert public_base_url(event, http=True) == (
        "http://abc123.execute-api.us-east-1.amazonaws.com/prod"
    )
    event["requestContext"]["domainName"] = ""
    assert public_base_url(event) is None
