"""Secrets read through the AWS Parameters and Secrets Lambda Extension: no SDK in the process.

The extension is a layer that serves Secrets Manager on localhost and caches what it read. Going
through it keeps boto3 out of a function that needs nothing else from AWS on a path: the webhook
receiver rejects a forged callback with the signing secret alone, so that path never imports
boto3 (about 200 ms of cold start). The extension answers only during an invocation, never
during a function's init, so secrets are read on first use.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Mapping
from urllib.parse import quote

from wanflow.errors import WanflowError

#: The extension's port unless PARAMETERS_SECRETS_EXTENSION_HTTP_PORT says otherwise.
DEFAULT_PORT = 2773
#: A local call: anything slower than this is an extension in trouble.
TIMEOUT_S = 3.0


class SecretUnavailable(WanflowError):
    """The extension did not give the secret (not running, refused, or no such secret)."""

    code = "secret_unavailable"


def read_secret(secret_id: str, env: Mapping[str, str] | None = None) -> str:
    """The current `SecretString` of a secret, asked of the extension on localhost.

    The extension authenticates its callers by the function's session token, which Lambda
    puts in AWS_SESSION_TOKEN.
    """
    env = os.environ if env is None else env
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
