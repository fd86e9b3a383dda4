"""S3 presigned SigV4 URLs checked as S3 checks them, which moto (5.2) does not.

moto verifies no query-string signature: a PUT to a presigned URL without the headers it was
signed with (the uploads' `Content-Type` and write-once `If-None-Match`) or past its
`X-Amz-Expires` is taken. S3 refuses both with 403. So a request carrying `X-Amz-Signature` is
signed again here from what it carries (its signed headers' values, its query without the
signature) with the secret of its access key (an IAM user's, the operator's included, or an STS
session's of this moto), and refused as S3 would when the signatures differ or the URL has
expired. A key this moto does not know is left to moto.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from wanflow_local.iam import key_owner

_MISMATCH = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code>'
    b"<Message>The request signature we calculated does not match the signature you provided."
    b"</Message></Error>"
)
_EXPIRED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message></Error>"
)


def refusal(method: str, url: str, headers: Any) -> tuple[int, dict[str, str], bytes] | None:
    """S3's 403 for a presigned SigV4 request whose signature or expiry fails; None otherwise
    (not presigned with SigV4, or signed with a key this moto does not know)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(query)
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or "X-Amz-Signature" not in params:
        return None
    access_key, _, region, service, _ = params["X-Amz-Credential"].split("/")
    owner = key_owner(access_key)
    if owner is None:
        return None
    secret = owner[1]
    xml = {"Content-Type": "application/xml"}
    signed_at = dt.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    expires = signed_at + dt.timedelta(seconds=int(params.get("X-Amz-Expires", "0")))
    if dt.datetime.now(dt.UTC) > expires:
        return 403, xml, _EXPIRED
    names = params["X-Amz-SignedHeaders"].split(";")
    if any(name != "host" and name not in headers for name in names):
        return 403, xml, _MISMATCH
    unsigned = "&".join(f"{k}={v}" for k, v in _raw_pairs(parts.query) if k != "X-Amz-Signature")
    request = AWSRequest(
        method=method,
        url=urlunsplit((parts.scheme, parts.netloc, parts.path, unsigned, "")),
        headers={name: headers[name] for name in names if name != "host"},
    )
    request.context["timestamp"] = params["X-Amz-Date"]
    auth = S3SigV4QueryAuth(Credentials(access_key, secret), service, region)
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    return None if signature == params["X-Amz-Signature"] else (403, xml, _MISMATCH)


def _raw_pairs(query: str) -> list[tuple[str, str]]:
    """The query's pairs as sent (still percent-encoded), as SigV4 canonicalises them."""
    pairs = []
    for item in query.split("&"):
        if item:
            key, _, value = item.partition("=")
            pairs.append((key, value))
    return pairs
