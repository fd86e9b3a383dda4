"""API keys: their format, how they are stored, and the one lookup the authorizer makes.

Kept free of pydantic and of the rest of wanflow on purpose: the authorizer runs before every
API call whose answer API Gateway has not cached, so its cold start is boto3 and this module.

A key is `wf_` + 43 URL-safe characters (256 random bits). Only its SHA-256 is stored, as the
item `pk=KEY#<sha256 hex>, sk=KEY`: with that much entropy a plain hash cannot be reversed by
guessing, and an unsalted hash lets the authorizer find the key with one GetItem.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from wanflow import keys

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_PREFIX: Final = "wf_"
#: How many leading characters of a key are stored to tell keys apart in listings.
DISPLAY_CHARS: Final = 8
#: What API Gateway lets through to the authorizer (the template's ValidationExpression).
BEARER: Final = re.compile(r"^Bearer ([A-Za-z0-9_-]+)$")


@dataclass(frozen=True)
class KeyOwner:
    """Who a valid key belongs to."""

    tenant: str
    key_id: str


def new_key() -> str:
    """A fresh plaintext API key (shown once, never stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(plaintext: str) -> str:
    """The SHA-256 hex digest under which a key is stored."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def key_item_key(plaintext: str) -> dict[str, Any]:
    """The DynamoDB key of a key's item."""
    return keys.api_key_key(key_hash(plaintext))


def bearer_key(authorization: str | None) -> str | None:
    """The key in an `Authorization: Bearer <key>` value; None when it is not of that form."""
    match = BEARER.match(authorization or "")
    return match.group(1) if match else None


def owner_of(client: DynamoDBClient, table: str, plaintext: str) -> KeyOwner | None:
    """The tenant and id of a key; None when the key is unknown or revoked.

    A strongly consistent read: a key works the moment `wanflow keys create` returns.
    """
    got = client.get_item(
        TableName=table,
        Key=key_item_key(plaintext),
        ConsistentRead=True,
        ProjectionExpression="tenant, key_id, revoked_at",
    )
    item = got.get("Item")
    if not item or "revoked_at" in item:
        return None
    return KeyOwner(tenant=item["tenant"]["S"], key_id=item["key_id"]["S"])


def allow_policy(owner: KeyOwner, method_arn: str) -> dict[str, Any]:
    """The TOKEN authorizer's answer letting the key's tenant call every route of the API.

    The whole API, not just `method_arn`: API Gateway caches this answer per key and applies
    it to the next routes that key calls, which a policy for one route would refuse with 403.
    """
    # arn:aws:execute-api:<region>:<account>:<api id>/<stage>/<method>/<path>
    arn_head, _, resource = method_arn.partition(":execute-api:")
    region, account, route = ([*resource.split(":", 2), "", ""])[:3]
    api_id, stage = ([*route.split("/"), "", ""])[:2]
    whole_api = f"{arn_head}:execute-api:{region}:{account}:{api_id}/{stage}/*/*"
    return {
        "principalId": owner.tenant,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": whole_api}
            ],
        },
        "context": {"tenant": owner.tenant, "key_id": owner.key_id},
    }
