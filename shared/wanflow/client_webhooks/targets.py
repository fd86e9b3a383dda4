"""The webhook a client gives with a task: its URL and the events it wants.

What is guaranteed: a target that passes `parse_target` has an HTTPS URL (plain http only on
the local stack, to a loopback host) of at most 2048 characters, with a host, no credentials
and no IP literal outside the public internet, and a non-empty list of known events in their
documented order, without duplicates. Host names are checked when posting
(`address_guard`), as their addresses may change. Each problem names its field, and all are
reported at once.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from wanflow.client_webhooks.address_guard import address_refusal
from wanflow.errors import ErrorItem
from wanflow.task import WEBHOOK_EVENTS, WebhookTarget

MAX_URL_LENGTH = 2048


def check_url(url: Any, param: str, code: str, *, allow_http: bool) -> list[ErrorItem]:
    """Problems with a client's webhook URL: HTTPS, at most 2048 characters, a host, no
    credentials, and not an IP literal outside the public internet (names are checked when
    posting). `allow_http` (the local stack) also lets plain http and loopback through, for
    loopback hosts only.

    Messages read like the catalog's (`<field>: ...`): the flash model's `callback_url` gets the
    very error `wanflow validate` gives for it.
    """

    def problem(message: str) -> list[ErrorItem]:
        return [ErrorItem(code=code, message=f"{param}: {message}", param=param)]

    if not isinstance(url, str):
        return [ErrorItem(code="invalid_type", message=f"{param}: must be a string", param=param)]
    if len(url) > MAX_URL_LENGTH:
        return problem(f"{param} is {len(url)} characters; at most {MAX_URL_LENGTH} are allowed")
    if any(c.isspace() for c in url):
        return problem(f"{param} must not contain spaces")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        return problem(f"{param} is not a valid URL")
    local = allow_http and _is_loopback_host(host)
    if parts.scheme.lower() not in ({"https", "http"} if local else {"https"}) or not host:
        return problem(f"{param} must be an HTTPS URL")
    if "@" in parts.netloc:
        # The URL is stored, shown in the task, the delivery log and every payload: a password
        # in it would be handed to whoever reads any of those.
        from wanflow.catalog.fields import CREDENTIALS_IN_URL

        return problem(CREDENTIALS_IN_URL.format(param))
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return []
    why = address_refusal(str(literal), allow_loopback=allow_http)
    return problem(f"{param} points at a {why} address; use a public one") if why else []


def _is_loopback_host(host: str | None) -> bool:
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_target(raw: Any, *, allow_http: bool) -> tuple[WebhookTarget | None, list[ErrorItem]]:
    """The `webhook` field of a submit body, or the problems with it (each naming its field)."""
    if raw is None:
        return None, []
    if not isinstance(raw, dict):
        message = 'webhook: must be an object like {"url": "https://...", "events": [...]}'
        return None, [ErrorItem(code="invalid_type", message=message, param="webhook")]
    problems = [
        ErrorItem(code="unknown_field", message=f"webhook.{k}: not a field", param=f"webhook.{k}")
        for k in raw
        if k not in {"url", "events"}
    ]
    if "url" not in raw:
        problems.append(
            ErrorItem(code="missing_field", message="webhook.url: required", param="webhook.url")
        )
    else:
        problems += check_url(
            raw["url"], "webhook.url", "invalid_webhook_url", allow_http=allow_http
        )
    events = raw.get("events", list(WEBHOOK_EVENTS))
    known = ", ".join(WEBHOOK_EVENTS)
    if not isinstance(events, list) or not events:
        message = f"webhook.events: must be a non-empty list of: {known}"
        problems.append(ErrorItem(code="invalid_value", message=message, param="webhook.events"))
    else:
        for name in events:
            if name not in WEBHOOK_EVENTS:
                problems.append(
                    ErrorItem(
                        code="invalid_value",
                        message=f"webhook.events: {name!r} is not one of: {known}",
                        param="webhook.events",
                    )
                )
    if problems:
        return None, problems
    wanted = [e for e in WEBHOOK_EVENTS if e in events]  # known order, no duplicates
    return WebhookTarget(url=raw["url"], events=wanted), []
