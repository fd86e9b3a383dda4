"""Signatures of the callback URLs wanflow hands the upstream, for its upstream callbacks.

The upstream cannot sign its callbacks, so the URL carries the proof: `sig` is an HMAC-SHA256 of
the task id under a secret only wanflow knows (`CallbackSigningSecret`). Verification is
constant-time and fails closed: a missing or malformed signature, or an empty secret, is refused.
A URL the upstream would not take (not HTTPS, over 2048 characters) is not made at all: the task
is then polled (its completion is `poll`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

from wanflow.catalog.fields import MAX_CALLBACK_URL


def sign(task_id: str, secret: str) -> str:
    """The signature of a task id: URL-safe base64 of HMAC-SHA256, without padding."""
    digest = hmac.new(secret.encode(), task_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verify(task_id: str, signature: str | None, secret: str) -> bool:
    """Whether `signature` was made for `task_id` with `secret`; False for anything malformed."""
    if not signature or not secret:
        return False
    # compare_digest refuses non-ASCII str; bytes compare in constant time whatever they hold.
    return hmac.compare_digest(sign(task_id, secret).encode(), signature.encode())


def callback_url(
    base_url: str, task_id: str, secret: str, *, allow_http: bool = False
) -> str | None:
    """The signed callback URL of a task, or None when it cannot be used upstream.

    The upstream accepts only HTTPS URLs of at most 2048 characters; anything else means the
    task is polled instead. `allow_http` is for the local stack, whose API is plain HTTP.
    """
    schemes = ("https://", "http://") if allow_http else ("https://",)
    if not base_url.lower().startswith(schemes):
        return None
    url = (
        f"{base_url.rstrip('/')}/v1/callbacks/{quote(task_id, safe='')}?sig={sign(task_id, secret)}"
    )
    return url if len(url) <= MAX_CALLBACK_URL else None
