"""API Gateway TOKEN authorizer: `Authorization: Bearer <api key>` → the key's tenant.

On the path of every uncached API call, so it imports only boto3, Powertools' logger,
`wanflow.apikeys` and of `wanflow.runtime` the environment and the boto3 session (no pydantic:
its Runtime is not checked as a wanflow Config, only TABLE_NAME is needed): one consistent
GetItem per key. It emits no metrics of its own (API Gateway counts its 401s).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from wanflow.apikeys import DISPLAY_CHARS, allow_policy, bearer_key, owner_of
from wanflow.observability import logger, trace_handler
from wanflow.runtime import Runtime, init_environ

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: This function's boto3 session and clients, from its own environment.
runtime = Runtime(init_environ())
TABLE_NAME = runtime.environ.get("TABLE_NAME", "").strip()
if not TABLE_NAME:  # at init, as every function's required settings
    raise RuntimeError("environment variable TABLE_NAME is required and is not set")


@cache
def _dynamodb() -> DynamoDBClient:
    client: DynamoDBClient = runtime.client("dynamodb")
    return client


@logger.inject_lambda_context(clear_state=True)
@trace_handler
def handler(
    event: dict[str, Any], context: Any, dynamodb: DynamoDBClient | None = None
) -> dict[str, Any]:
    """Allow the key's tenant on the whole API, or raise "Unauthorized" (API Gateway's 401)."""
    key = bearer_key(event.get("authorizationToken"))
    owner = owner_of(dynamodb or _dynamodb(), TABLE_NAME, key) if key else None
    if owner is None:
        # Only a prefix: the log must never hold a usable key.
        logger.info("key refused", key_prefix=(key or "")[:DISPLAY_CHARS] or None)
        # Exactly this message: API Gateway turns it into 401 (any other error is a 500).
        raise Exception("Unauthorized")
    logger.info("key accepted", tenant=owner.tenant, key_id=owner.key_id)
    return allow_policy(owner, str(event.get("methodArn", "")))
