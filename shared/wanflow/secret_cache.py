"""Secrets read through the AWS Parameters and Secrets Lambda Extension (no SDK in the process),
and the cache every function keeps them in for a bounded time (`SecretCache`).

The extension is a layer that serves Secrets Manager on localhost and caches what it read. Going
through it keeps boto3 out of a function that needs nothing else from AWS on a path: the
callbacks function rejects a forged upstream callback with the signing secret alone, so that path
never imports boto3 (about 200 ms of cold start). The extension answers only during an
invocation, never during a function's init, so secrets are read on first use.

What is guaranteed: a value is used for at most `CACHE_TTL_S` (2 minutes; plus the extension's
own cache, up to 5 minutes, when read through it), so a rotated secret reaches warm functions; a
read that fails once a value is held keeps that value; after a refusal (an upstream 401, a
callback signature that does not match) a secret is read again at once, but at most once per
`REREAD_AFTER_S`, so a flood of forged callbacks is not a flood of reads. The local stand-in of
the extension is `wanflow_local.secrets_extension`.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from wanflow.errors import WanflowError

logger = logging.getLogger(__name__)

#: The extension's port unless PARAMETERS_SECRETS_EXTENSION_HTTP_PORT says otherwise.
DEFAULT_PORT = 2773
#: A local call: anything slower than this is an extension in trouble.
TIMEOUT_S = 3.0


class SecretUnavailable(WanflowError):
    """A secret could not be read now: the extension did not give it (not running, refused, or
    no such secret), or Secrets Manager did not. Nothing that needed it was done, so the API
    answers 503: try again."""

    code = "secret_unavailable"
    status = 503

    def public_message(self) -> str:
        return "a secret wanflow needs could not be read now; nothing was done, try again shortly"


def read_secret(secret_id: str, env: Mapping[str, str]) -> str:
    """The current `SecretString` of a secret, asked of the extension on localhost.

    `env` is the function's environment (runtime.init_environ()): the extension authenticates
    its callers by the function's session token, which Lambda puts in AWS_SESSION_TOKEN, and
    listens on PARAMETERS_SECRETS_EXTENSION_HTTP_PORT when that is set.
    """
    port = int(env.get("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT") or DEFAULT_PORT)
    path = f"/secretsmanager/get?secretId={quote(secret_id, safe='')}"
    headers = {"X-Aws-Parameters-Secrets-Token": env.get("AWS_SESSION_TOKEN", "")}
    # http.client, not urllib.request: no proxy settings apply to a localhost call.
    connection = http.client.HTTPConnection("localhost", port, timeout=TIMEOUT_S)
    try:
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        raw = answer.read()
    except OSError as exc:
        raise SecretUnavailable(f"secrets extension on port {port} unreachable: {exc}") from exc
    finally:
        connection.close()
    if answer.status != 200:
        detail = raw[:200].decode(errors="replace")
        raise SecretUnavailable(f"secrets extension answered {answer.status}: {detail}")
    try:
        value = json.loads(raw).get("SecretString")
    except (ValueError, AttributeError):
        value = None
    if not isinstance(value, str):
        raise SecretUnavailable(f"secrets extension gave no SecretString for {secret_id}")
    return value


#: How long a function uses a secret before reading it again (seconds).
CACHE_TTL_S = 120.0
#: A value younger than this is not read again on demand: a re-read would give the same, and a
#: flood of forged callbacks (or of 401s) becomes at most one read per this many seconds.
REREAD_AFTER_S = 10.0


@dataclass(frozen=True)
class _Held:
    value: str
    read_at: float
    expires_at: float


@dataclass
class SecretCache:
    """Secret values kept for `ttl_s`, so a changed secret reaches warm functions.

    `get` reads a secret on first use and again once its value is `ttl_s` old; a read that
    fails then keeps the old value (logged), so a Secrets Manager hiccup does not fail every
    request. `reread` is for a caller whose value just failed (an upstream 401, a callback
    signature that does not match): it reads at once, unless the value held is younger than
    `reread_after_s`, and gives the value to try again with, if there is another.

    With the Parameters and Secrets extension, `read` goes through it, and the extension keeps
    its own cache (SECRETS_MANAGER_TTL: 300 s by default, and at most): a value can then be up
    to `ttl_s` + SECRETS_MANAGER_TTL old, and a re-read through the extension may give the old
    value again until the extension's copy expires. A `reread` may pass another reader
    (`fresh`) that asks Secrets Manager itself; what it gets is then kept for `ttl_s` plus the
    extension's TTL (`extension_ttl_s`), so the extension's older copy is not taken back at
    the next expiry.
    """

    read: Callable[[str], str]
    ttl_s: float = CACHE_TTL_S
    reread_after_s: float = REREAD_AFTER_S
    #: What the extension's cache adds to a value's age (0 without the extension).
    extension_ttl_s: float = 0.0
    clock: Callable[[], float] = time.monotonic
    _held: dict[str, _Held] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, secret_id: str) -> str:
        """The secret's value, read again once it is `ttl_s` old."""
        with self._lock:
            held = self._held.get(secret_id)
        now = self.clock()
        if held is not None and now < held.expires_at:
            return held.value
        try:
            value = self.read(secret_id)
        except Exception:
            if held is None:
                raise
            logger.warning("secret not read again; keeping the value held", exc_info=True)
            return held.value
        self._keep(secret_id, value, now, now + self.ttl_s)
        return value

    def reread(
        self, secret_id: str, failed: str, fresh: Callable[[str], str] | None = None
    ) -> str | None:
        """The value to try again with, after `failed` was refused; None if there is none.

        Another caller may have read a new value already: that one is returned. Otherwise the
        secret is read at once (with `fresh`, else as `get` reads), unless the value held is
        younger than `reread_after_s`; a read that fails is logged and gives None.
        """
        now = self.clock()
        with self._lock:
            held = self._held.get(secret_id)
        if held is not None and held.value != failed:
            return held.value
        if held is not None and now < held.read_at + self.reread_after_s:
            return None
        try:
            value = (fresh or self.read)(secret_id)
        except Exception:
            logger.warning("secret not read again after it was refused", exc_info=True)
            return None
        # A value read past the extension outlives the extension's copy of the old one.
        expires = now + self.ttl_s + (self.extension_ttl_s if fresh is not None else 0.0)
        self._keep(secret_id, value, now, expires)
        return None if value == failed else value

    def _keep(self, secret_id: str, value: str, read_at: float, expires_at: float) -> None:
        with self._lock:
            self._held[secret_id] = _Held(value, read_at, expires_at)
