"""IAM on the local stack: moto's access control turned on, and completed where moto leaves gaps.

With access control on, moto checks each request's SigV4 signature and the policies of the
identity that signed it, so a function whose role lacks a permission is refused here as on AWS.
Who signs what:
- each function signs with its own role's credentials, assumed for it at deploy (as Lambda
  hands a function its role's session in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
  `AWS_SESSION_TOKEN`): `role_credentials`;
- the state machine's tasks call Lambda with the state machine's role (aws.py `_lambda_client_for`);
- the operator (the tests, the CLI, the deployer, the services the local stack plays: API
  Gateway, S3's notifications, SQS's event source mappings, the secrets extension's cache)
  signs as one IAM user of this moto with every permission: `OPERATOR`.

What moto (5.2) checks, and what this module adds (each an entry of aws.py's patch table):
- moto matches a statement's `Resource` against the request's resource only for S3 (bucket
  and key), SQS (the queue), IAM and STS; for every other service it passes `*`, which no
  resource-scoped statement matches, so every such call would be refused. `resource_of`
  gives DynamoDB (the table, or `table/T/index/I` for a query of an index), Step Functions
  (the state machine or execution), Lambda (the function) and Secrets Manager (the secret)
  requests their resource; any other service is checked **at action level only** (its `*`
  matches every statement's Resource): SNS, CloudWatch, X-Ray, Logs and whatever else moto
  serves. In a request naming several tables (BatchWriteItem, TransactWriteItems), the first
  one is checked.
- moto names an action after the API operation; IAM does after its own list. They differ for
  Lambda's Invoke (`lambda:InvokeFunction`): `iam_action`.
- moto ignores `Condition` in identity policies (it reads conditions of trust policies only),
  `NotResource`, permission boundaries, SCPs and resource policies (a bucket policy, a key
  policy, a Lambda permission: `deploy.Permission` is checked by the local API Gateway and
  S3 instead).
- In a trust policy, moto matches an `AWS` principal by equality only; AWS reads the account
  (`arn:aws:iam::ACCOUNT:root`) as any principal of that account whose own policies allow
  `sts:AssumeRole`: `principal_matches`.
- A presigned S3 request (query-string SigV4) carries no `Authorization` header, which moto's
  check requires (it fails with a KeyError); `presigned_allowed` authorises it from the
  policies of the presigning identity (the signature and expiry are checked by `s3sigv4`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from functools import cache
from typing import Any, Final
from urllib.parse import unquote

#: The operator: an IAM user of this moto allowed everything (fixed keys, so clients built before
#: a `reset` keep working after it; 20 and 40 characters, like AWS's).
OPERATOR_USER: Final = "wanflow-local-operator"
OPERATOR_KEY_ID: Final = "AKIAWANFLOWLOCALOPER"
OPERATOR_SECRET: Final = "wanflow-local-operator-secret-0000000000"
_ADMIN_POLICY: Final = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
#: API operation → IAM action, where they differ (for the services the stack uses).
_IAM_ACTIONS: Final = {"lambda:Invoke": "lambda:InvokeFunction"}

_credentials: dict[tuple[str, str], dict[str, str]] = {}
_credentials_lock = threading.Lock()


def _iam_backend(account_id: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account_id]["aws"]


def ensure_operator(account_id: str) -> None:
    """Create the operator user and its key in this moto's IAM (again after a reset)."""
    backend = _iam_backend(account_id)
    if any(user.name == OPERATOR_USER for user in backend.list_users("/", None, None)):
        return
    backend.create_user(region_name="us-east-1", user_name=OPERATOR_USER, path="/", tags=[])
    backend.put_user_policy(OPERATOR_USER, "everything", _ADMIN_POLICY)
    key = backend.create_access_key(OPERATOR_USER)
    backend.access_keys.pop(key.physical_resource_id, None)
    key.access_key_id, key.secret_access_key = OPERATOR_KEY_ID, OPERATOR_SECRET
    backend.access_keys[key.physical_resource_id] = key
    with _credentials_lock:
        _credentials.clear()  # sessions of the roles of before the reset are gone


@cache
def _aws_managed_policies() -> dict[str, Any]:
    """AWS's managed policies as moto ships them (its data file, parsed once per process)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    parsed: dict[str, Any] = json.loads(aws_managed_policies_data)
    return parsed


def ensure_managed_policy(account_id: str, arn: str) -> None:
    """Make an AWS managed policy (`arn:aws:iam::aws:policy/…`) exist in this moto's IAM, as it
    exists in every account. moto can load all 1,582 at each reset (about 2 s); the stack
    names three."""
    from moto.iam.models import AWSManagedPolicy

    backend = _iam_backend(account_id)
    if not arn.startswith("arn:aws:iam::aws:policy/") or arn in backend.managed_policies:
        return
    data = _aws_managed_policies().get(arn.rsplit("/", 1)[-1])
    if data is None:
        return  # not an AWS managed policy moto knows: attaching it fails, as on AWS
    policy = AWSManagedPolicy.from_data(arn.rsplit("/", 1)[-1], account_id, "us-east-1", data)
    backend.managed_policies[policy.arn] = policy


def forget_sessions() -> None:
    """Forget the role sessions assumed so far (after a reset of moto, which forgot them)."""
    with _credentials_lock:
        _credentials.clear()


def enforce(on: bool) -> None:
    """Turn moto's access control on (every request checked) or off (none)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0 if on else float("inf")
    ActionAuthenticatorMixin.request_count = 0


def role_credentials(account_id: str, role_arn: str, session_name: str) -> dict[str, str]:
    """A session of a role (`AccessKeyId`, `SecretAccessKey`, `SessionToken`), as the service
    that runs as it (Lambda, Step Functions) assumes it: kept per role and session name."""
    from moto.sts.models import sts_backends

    key = (role_arn, session_name)
    with _credentials_lock:
        if key not in _credentials:
            role = sts_backends[account_id]["aws"].assume_role(
                region_name="us-east-1",
                role_session_name=session_name[:64],
                role_arn=role_arn,
                policy=None,  # type: ignore[arg-type]
                duration=43200,
                external_id=None,  # type: ignore[arg-type]
            )
            _credentials[key] = {
                "AccessKeyId": role.access_key_id,
                "SecretAccessKey": role.secret_access_key,
                "SessionToken": role.session_token,
            }
        return dict(_credentials[key])


def iam_action(action: str) -> str:
    """The IAM action of a `service:Operation` as moto names it."""
    return _IAM_ACTIONS.get(action, action)


# --- resources moto does not determine ------------------------------------------------------


def _json_body(response: Any) -> dict[str, Any]:
    body = response.body
    if isinstance(body, dict):  # DynamoDB's handler has parsed it already
        return body
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def dynamodb_resource(response: Any) -> str:
    """The table (or index) a DynamoDB request acts on."""
    body = _json_body(response)
    table = body.get("TableName")
    if table is None:
        items = body.get("RequestItems") or {}
        transact = body.get("TransactItems") or []
        table = next(iter(items), None) or next(
            (
                operation.get("TableName")
                for item in transact
                for operation in item.values()
                if isinstance(operation, Mapping)
            ),
            None,
        )
    if table is None:
        return "*"
    arn = f"arn:aws:dynamodb:{response.region}:{response.current_account}:table/{table}"
    index = body.get("IndexName")
    return f"{arn}/index/{index}" if index else arn


def stepfunctions_resource(response: Any) -> str:
    """The state machine or execution a Step Functions request acts on (a task token: `*`)."""
    body = _json_body(response)
    return str(body.get("executionArn") or body.get("stateMachineArn") or "*")


def lambda_resource(response: Any) -> str:
    """The function a Lambda request acts on (its name or ARN is in the path)."""
    match = re.search(r"/functions/([^/]+)", response.path or "")
    if match is None:
        return "*"
    name = unquote(match.group(1))
    if name.startswith("arn:"):
        return name
    return f"arn:aws:lambda:{response.region}:{response.current_account}:function:{name}"


def secretsmanager_resource(response: Any) -> str:
    """The secret a Secrets Manager request acts on, by ARN (a name is looked up)."""
    secret_id = _json_body(response).get("SecretId")
    if not secret_id:
        return "*"
    if str(secret_id).startswith("arn:"):
        return str(secret_id)
    from moto.secretsmanager.models import secretsmanager_backends

    backend = secretsmanager_backends[response.current_account][response.region]
    secret = backend.secrets.get(secret_id)
    return str(secret.arn) if secret is not None else "*"


# --- policy evaluation moto gets wrong -----------------------------------------------------


def principal_matches(expected: Any, principal: str) -> bool:
    """Whether a trust policy's `Principal` names `principal` (an assumed-role or user ARN):
    by ARN, `*`, or the principal's account (`arn:aws:iam::ACCOUNT:root`)."""
    if not expected:
        return True
    wanted = expected.get("AWS") if isinstance(expected, Mapping) else expected
    names = [wanted] if isinstance(wanted, str) else list(wanted or [])
    account = principal.split(":")[4] if principal.count(":") >= 5 else ""
    return any(name in {"*", principal, account, f"arn:aws:iam::{account}:root"} for name in names)


def presigned_allowed(query: Mapping[str, str], action: str, resource: str) -> bool:
    """Whether the identity that presigned an S3 URL (its `query`) may do `action` on
    `resource`."""
    from moto.iam.access_control import (
        CreateAccessKeyFailure,
        IAMPolicy,
        PermissionResult,
        create_access_key,
    )

    access_key = query.get("X-Amz-Credential", "").split("/")[0] or query.get("AWSAccessKeyId", "")
    token = query.get("X-Amz-Security-Token")
    fields = {"X-Amz-Security-Token": token} if token else {}
    owner = key_owner(access_key)
    if owner is None:
        return False
    account = owner[0]
    try:
        identity = create_access_key(account, "aws", access_key, fields)
    except CreateAccessKeyFailure:
        return False
    permitted = False
    for policy in identity.collect_policies():
        result = IAMPolicy(policy).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return False
        permitted = permitted or result == PermissionResult.PERMITTED
    return permitted


def key_owner(access_key: str) -> tuple[str, str] | None:
    """The account and secret key of an access key of this moto: an STS session's or an IAM
    user's (the operator's included); None when it knows no such key."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for account_id, partitions in list(sts_backends.items()):
        session = partitions["aws"].get_assumed_role_from_access_key(access_key)
        if session is not None:
            return str(account_id), str(session.secret_access_key)
    for iam_account, iam_partitions in list(iam_backends.items()):
        key = iam_partitions["aws"].access_keys.get(access_key)
        if key is not None:
            return str(iam_account), str(key.secret_access_key)
    return None


def session_of(token: str) -> Any:
    """The STS session of this moto whose session token this is (None: no such session)."""
    from moto.sts.models import sts_backends

    return next(
        (
            assumed
            for accounts in list(sts_backends.values())
            for backend in list(accounts.values())
            for assumed in list(backend.assumed_roles)
            if assumed.session_token == token
        ),
        None,
    )
