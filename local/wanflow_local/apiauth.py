"""API Gateway's Lambda TOKEN authorizers and gateway responses, as the REST API declares them.

Read from the OpenAPI body of the `AWS::ApiGateway::RestApi` the SAM transform wrote (kept in
`Stack.apis`): `securityDefinitions.<name>.x-amazon-apigateway-authorizer` (the function,
`identityValidationExpression`, `authorizerResultTtlInSeconds`; the header is the definition's
`name`) and `x-amazon-apigateway-gateway-responses`. An operation whose `security` names no
authorizer (SAM writes `NONE`) is open. What API Gateway does, done here:

- no identity header, or one the ValidationExpression refuses: 401 (UNAUTHORIZED), and the
  authorizer is not called;
- the authorizer raises "Unauthorized": 401; any other failure, or an answer that is not a
  policy with a principal and flat context: 500 (AUTHORIZER_FAILURE / _CONFIGURATION_ERROR);
- a policy with an explicit Deny for the method ARN, or no Allow covering it: 403
  (ACCESS_DENIED);
- an Allow: `requestContext.authorizer` = the context (values as strings) + principalId.

The adapter's other answers of API Gateway's own (an unknown route or stage:
MISSING_AUTHENTICATION_TOKEN; a function that failed: 502; no answer in time:
INTEGRATION_TIMEOUT; a body too large: REQUEST_TOO_LARGE) are rendered from the same
`GatewayResponses`: a type the template does not set falls back on its DEFAULT_4XX or
DEFAULT_5XX, then on API Gateway's built-in answer, as on AWS.

Policies are cached per authorizer and token for ReauthorizeEvery seconds and evaluated against
each request's own method ARN, as API Gateway does (so a policy naming one route refuses the
next). Refusals ("Unauthorized") are not cached here.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from wanflow_local.deploy import Stack

#: API Gateway's answers when the template sets no gateway response of that type (nor the
#: DEFAULT_4XX/DEFAULT_5XX it falls back on).
_DEFAULT_RESPONSES: Final = {
    "UNAUTHORIZED": (401, '{"message":"Unauthorized"}'),
    "ACCESS_DENIED": (403, '{"message":"User is not authorized to access this resource"}'),
    "AUTHORIZER_FAILURE": (500, '{"message":null}'),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, '{"message":null}'),
    # A function API Gateway may not invoke (no Lambda permission).
    "API_CONFIGURATION_ERROR": (500, '{"message": "Internal server error"}'),
    # An unknown route, or a path without the stage.
    "MISSING_AUTHENTICATION_TOKEN": (403, '{"message":"Missing Authentication Token"}'),
    # No type of its own (a function that raised, or answered no proxy result: 502); the
    # DEFAULT_5XX template applies to it.
    "DEFAULT_5XX": (502, '{"message": "Internal server error"}'),
    # No answer from the integration within its timeout (29 s at most for a REST API).
    "INTEGRATION_TIMEOUT": (504, '{"message": "Endpoint request timed out"}'),
    # A body over 10 MB, or an event over Lambda's 6 MB synchronous request.
    "REQUEST_TOO_LARGE": (413, '{"message": "Request Too Large"}'),
}
_DEFAULT_TTL: Final = 300.0

Answer = tuple[int, dict[str, str], bytes]
"""An HTTP answer: status, headers, body."""
Invoker = Callable[[str, dict[str, Any]], tuple[Any, bool]]
"""Runs a function by name on an event: its JSON payload and whether it failed."""


@dataclass(frozen=True)
class TokenAuthorizer:
    """One Lambda TOKEN authorizer of an API."""

    name: str
    function_name: str
    header: str
    validation: re.Pattern[str] | None
    ttl: float


@dataclass(frozen=True)
class ApiAuth:
    """An API's authorizers, its default one, and its gateway responses."""

    authorizers: dict[str, TokenAuthorizer]
    default: str | None
    responses: dict[str, tuple[int, dict[str, str], str]]

    def for_route(self, route_auth: Mapping[str, Any] | None) -> TokenAuthorizer | None:
        """The authorizer guarding a route with this `Auth` (None: the route is open)."""
        name = (route_auth or {}).get("Authorizer", self.default)
        if name is None or name == "NONE":
            return None
        if name not in self.authorizers:
            raise ValueError(f"route names authorizer {name!r}, which the API does not declare")
        return self.authorizers[name]

    def response(self, kind: str, message: str, request_id: str) -> Answer:
        """The gateway response of a type, with the template's `$context` variables filled.

        A type the template does not set takes its DEFAULT_4XX or DEFAULT_5XX (by the type's
        own status), and API Gateway's built-in answer without either; a response without a
        StatusCode keeps the type's own status.
        """
        own_status, own_body = _DEFAULT_RESPONSES[kind]
        fallback = "DEFAULT_5XX" if own_status >= 500 else "DEFAULT_4XX"
        spec = self.responses.get(kind) or self.responses.get(fallback)
        status, headers, template = spec or (own_status, {}, own_body)
        body = (
            template.replace("$context.error.messageString", json.dumps(message))
            .replace("$context.error.message", message)
            .replace("$context.error.responseType", kind)
            .replace("$context.requestId", request_id)
        )
        return status or own_status, {"Content-Type": "application/json", **headers}, body.encode()


def api_auth(stack: Stack, api_logical_id: str, account_id: str) -> ApiAuth:
    """The authorizers and gateway responses of a REST API of the stack (its OpenAPI body)."""
    api = stack.apis.get(api_logical_id)
    if api is None:
        return ApiAuth({}, None, {})
    functions = {f.arn: f.name for f in stack.functions.values()}
    authorizers = {
        name: _token_authorizer(name, spec, functions)
        for name, spec in (api.body.get("securityDefinitions") or {}).items()
        if "x-amazon-apigateway-authorizer" in spec
    }
    responses = {
        kind: _gateway_response(spec)
        for kind, spec in (api.body.get("x-amazon-apigateway-gateway-responses") or {}).items()
    }
    # Each operation names its own security (the transform writes it for every route).
    return ApiAuth(authorizers, None, responses)


def _token_authorizer(
    name: str, spec: Mapping[str, Any], functions: Mapping[str, str]
) -> TokenAuthorizer:
    authorizer = spec["x-amazon-apigateway-authorizer"]
    kind = str(authorizer.get("type", "token")).upper()
    if kind != "TOKEN":
        raise ValueError(f"authorizer {name}: type {kind} is not served locally")
    match = re.search(r"/functions/(.+)/invocations$", str(authorizer.get("authorizerUri", "")))
    arn = match.group(1) if match else ""
    if arn not in functions:
        raise ValueError(f"authorizer {name}: {arn!r} is no function of the stack")
    expression = authorizer.get("identityValidationExpression")
    return TokenAuthorizer(
        name=name,
        function_name=functions[arn],
        header=str(spec.get("name", "Authorization")),
        validation=re.compile(str(expression)) if expression else None,
        ttl=float(authorizer.get("authorizerResultTtlInSeconds", _DEFAULT_TTL)),
    )


def _gateway_response(spec: Mapping[str, Any]) -> tuple[int, dict[str, str], str]:
    """Status (0: none set, the type's own applies), headers and body template."""
    templates = spec.get("responseTemplates") or {}
    template = templates.get("application/json") or next(iter(templates.values()), "")
    # Static header values are quoted: "'value'".
    prefix = "gatewayresponse.header."
    headers = {
        str(k).removeprefix(prefix): str(v).strip("'")
        for k, v in (spec.get("responseParameters") or {}).items()
        if str(k).startswith(prefix)
    }
    return int(spec.get("statusCode") or 0), headers, str(template)


def policy_allows(policy: Mapping[str, Any], method_arn: str) -> bool:
    """IAM evaluation of an authorizer's policy for `execute-api:Invoke` on `method_arn`:
    an explicit Deny wins, else some Allow must match."""
    allowed = False
    for statement in _as_list(policy.get("Statement")):
        if not isinstance(statement, dict):
            continue
        actions = _as_list(statement.get("Action"))
        resources = _as_list(statement.get("Resource"))
        if not any(_iam_match(str(a), "execute-api:Invoke", ignore_case=True) for a in actions):
            continue
        if not any(_iam_match(str(r), method_arn) for r in resources):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _iam_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    # IAM wildcards: * any run of characters (slashes included), ? one character. Actions are
    # matched ignoring case, resource ARNs exactly.
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, flags=re.IGNORECASE if ignore_case else 0) is not None


class Authorization:
    """Runs an API's authorizers for requests, with API Gateway's per-token cache."""

    def __init__(self, auth: ApiAuth, invoke: Invoker) -> None:
        self.auth = auth
        self._invoke = invoke
        self.cache_ttl: float | None = None
        """Replaces every authorizer's ReauthorizeEvery when set (tests shorten it)."""
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def clear_cache(self) -> None:
        """Forget every cached policy (as redeploying the API stage would)."""
        with self._lock:
            self._cache.clear()

    def check(
        self,
        authorizer: TokenAuthorizer,
        headers: Mapping[str, str],
        method_arn: str,
        request_id: str,
    ) -> dict[str, Any] | Answer:
        """`requestContext.authorizer` for an allowed request, else the gateway's refusal."""
        token = next((v for k, v in headers.items() if k.lower() == authorizer.header.lower()), "")
        if not token or (authorizer.validation and not authorizer.validation.fullmatch(token)):
            return self.auth.response("UNAUTHORIZED", "Unauthorized", request_id)
        started = time.monotonic()
        answer = self._cached(authorizer, token)
        if answer is None:
            payload, failed = self._invoke(
                authorizer.function_name,
                {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn},
            )
            if failed:
                if isinstance(payload, dict) and payload.get("errorMessage") == "Unauthorized":
                    return self.auth.response("UNAUTHORIZED", "Unauthorized", request_id)
                return self.auth.response("AUTHORIZER_FAILURE", "", request_id)
            if not _well_formed(payload):
                return self.auth.response("AUTHORIZER_CONFIGURATION_ERROR", "", request_id)
            answer = payload
            self._store(authorizer, token, answer)
        if not policy_allows(answer["policyDocument"], method_arn):
            return self.auth.response(
                "ACCESS_DENIED", "User is not authorized to access this resource", request_id
            )
        context = {k: _as_text(v) for k, v in (answer.get("context") or {}).items()}
        latency = int((time.monotonic() - started) * 1000)
        return {**context, "principalId": str(answer["principalId"]), "integrationLatency": latency}

    def _cached(self, authorizer: TokenAuthorizer, token: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._cache.get((authorizer.name, token))
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def _store(self, authorizer: TokenAuthorizer, token: str, answer: dict[str, Any]) -> None:
        ttl = authorizer.ttl if self.cache_ttl is None else self.cache_ttl
        if ttl > 0:
            with self._lock:
                self._cache[(authorizer.name, token)] = (time.monotonic() + ttl, answer)


def _well_formed(payload: Any) -> bool:
    """A principal, a policy document, and a context of strings, numbers and booleans only."""
    if not isinstance(payload, dict) or not payload.get("principalId"):
        return False
    if not isinstance(payload.get("policyDocument"), dict):
        return False
    context = payload.get("context") or {}
    return isinstance(context, dict) and all(
        isinstance(v, str | int | float | bool) for v in context.values()
    )


def _as_text(value: str | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
