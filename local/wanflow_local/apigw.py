"""API Gateway on loopback: HTTP requests become REST API proxy events for the template's routes.

Each operation of the REST API's OpenAPI body (as the SAM transform wrote it, from the `Api`
events of the template's functions) is a route: its path with `{name}` parameters, its method,
and the function of its Lambda proxy integration. A request is turned into the proxy event API
Gateway would send, the function is invoked through Lambda (moto, which runs our handler
in-process), and its proxy result becomes the HTTP answer. The stage name prefixes every path,
as on AWS (`/prod/v1/tasks`).

Routes are guarded as each operation's `security` says, with the API's Lambda TOKEN authorizer,
its per-token cache and its gateway responses; see `apiauth`. The authorizer's context reaches
the function as `requestContext.authorizer`. API Gateway calls a function (the route's, or the
authorizer) only if a Lambda permission of the stack lets `apigateway.amazonaws.com` invoke it
from the method's (or the authorizer's) ARN; without one it answers 500, as on AWS.

A function whose handler runs in this process is called directly, as API Gateway's proxy
integration calls Lambda, without a round trip through moto's Lambda API; the event, the context
and the error shape are the same either way.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from wanflow_local import limits
from wanflow_local.apiauth import Answer, ApiAuth, Authorization, api_auth
from wanflow_local.aws import LocalAws
from wanflow_local.deploy import Stack

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """One route of the API: method, path template, and the function behind it."""

    method: str
    path: str
    pattern: re.Pattern[str]
    function_name: str
    api: str = ""
    """Logical id of the REST API."""
    auth: dict[str, Any] | None = None
    """The route's own `Auth` (e.g. `{"Authorizer": "NONE"}`); None: the API's default."""


def routes_of(stack: Stack) -> list[Route]:
    """The REST API routes the stack's functions declare."""
    routes = []
    for source in stack.event_sources:
        if source.type != "Api":
            continue
        path = str(source.properties["Path"])
        regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$"
        method = str(source.properties["Method"]).upper()
        api = str(source.properties.get("RestApiId") or "")
        auth = source.properties.get("Auth")
        routes.append(Route(method, path, re.compile(regex), source.target_name, api, auth or None))
    return routes


class ApiGateway:
    """Serves a stack's API on 127.0.0.1 (port 0 picks a free one)."""

    integration_timeout_s: float = limits.API_INTEGRATION_TIMEOUT_S
    """Seconds API Gateway waits for the function before its own 504 (INTEGRATION_TIMEOUT);
    tests shorten it on an instance, the function's own Timeout staying longer."""

    def __init__(self, stack: Stack, aws: LocalAws, *, port: int = 0, stage: str = "prod") -> None:
        self.routes = routes_of(stack)
        self._functions = {f.name: f for f in stack.functions.values()}
        self._stack = stack
        self._api_ids = {api.logical_id: api.id for api in stack.apis.values()}
        self.stage = stage
        self._lambda = aws.client("lambda")
        self._region, self._account = aws.region, aws.account_id
        self._auth = {
            api: Authorization(api_auth(stack, api, aws.account_id), self._run)
            for api in {route.api for route in self.routes if route.api}
        }
        # Fail at start, not on the first request, when a route names an unknown authorizer.
        for route in self.routes:
            if route.api:
                self._auth[route.api].auth.for_route(route.auth)
        self._server = _Server(("127.0.0.1", port), _Handler, self)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL of the stage, e.g. http://127.0.0.1:3000/prod."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{self.stage}"

    @property
    def auth_cache_ttl(self) -> float | None:
        """Seconds an authorizer's answer is cached per token; None: the template's
        ReauthorizeEvery. Tests shorten it to see a revoked key refused."""
        return next((a.cache_ttl for a in self._auth.values()), None)

    @auth_cache_ttl.setter
    def auth_cache_ttl(self, seconds: float | None) -> None:
        for authorization in self._auth.values():
            authorization.cache_ttl = seconds
        self.clear_auth_cache()  # entries cached under the old TTL would outlive the new one

    def clear_auth_cache(self) -> None:
        """Forget every cached authorizer answer (as if ReauthorizeEvery had passed)."""
        for authorization in self._auth.values():
            authorization.clear_cache()

    def start(self) -> Self:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one HTTP request as API Gateway and the Lambda behind it would."""
        parts = urlsplit(target)
        prefix = f"/{self.stage}"
        if not parts.path.startswith(prefix + "/"):
            return self._gateway_response(None, "MISSING_AUTHENTICATION_TOKEN")
        path = parts.path[len(prefix) :]
        for route in self.routes:
            match = route.pattern.match(path)
            if match and route.method == method:
                if len(body) > limits.API_PAYLOAD_MAX_BYTES:
                    # Refused on arrival, before the authorizer or the function runs.
                    return self._gateway_response(route, "REQUEST_TOO_LARGE")
                event = self._event(
                    route,
                    path=path,
                    params=match.groupdict(),
                    query=parts.query,
                    headers=headers,
                    body=body,
                )
                # API Gateway sets the domain itself (the API's own, never the client's Host
                # header): the callback URL handed to the upstream is built from it.
                event["requestContext"]["domainName"] = self.url.split("/")[2]
                event["requestContext"]["apiId"] = self._api_ids.get(route.api, "local")
                if not self._permitted(route.function_name, self._method_arn(route, event)):
                    return self._gateway_response(route, "API_CONFIGURATION_ERROR")
                refused = self._authorize(route, event, headers)
                return refused or self._invoke(route, event)
        return self._gateway_response(None, "MISSING_AUTHENTICATION_TOKEN")

    def _event(
        self,
        route: Route,
        *,
        path: str,
        params: dict[str, str],
        query: str,
        headers: dict[str, str],
        body: bytes,
    ) -> dict[str, Any]:
        multi_query = parse_qs(query, keep_blank_values=True)
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
        return {
            "resource": route.path,
            "path": path,
            "httpMethod": route.method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route.path,
                "httpMethod": route.method,
                "path": f"/{self.stage}{path}",
                "stage": self.stage,
                "requestId": str(uuid.uuid4()),
                "requestTimeEpoch": int(time.time() * 1000),
                "identity": {"sourceIp": "127.0.0.1"},
                "domainName": "",
                "apiId": "local",
            },
            "body": text or None,
            "isBase64Encoded": encoded,
        }

    def _authorize(
        self, route: Route, event: dict[str, Any], headers: dict[str, str]
    ) -> Answer | None:
        """Run the route's authorizer: None when the request may go on (with
        `requestContext.authorizer` set), else API Gateway's refusal."""
        authorization = self._auth.get(route.api)
        authorizer = authorization.auth.for_route(route.auth) if authorization else None
        if authorization is None or authorizer is None:
            return None
        context = event["requestContext"]
        method_arn = self._method_arn(route, event)
        authorizers_arn = (
            f"arn:aws:execute-api:{self._region}:{self._account}:{context['apiId']}/authorizers/"
            f"{authorizer.name}"
        )
        if not self._permitted(authorizer.function_name, authorizers_arn):
            return self._gateway_response(route, "AUTHORIZER_CONFIGURATION_ERROR")
        outcome = authorization.check(authorizer, headers, method_arn, context["requestId"])
        if isinstance(outcome, tuple):
            return outcome
        context["authorizer"] = outcome
        return None

    def _method_arn(self, route: Route, event: dict[str, Any]) -> str:
        """The execute-api ARN of a request: what authorizer policies and Lambda permissions
        are matched against."""
        return (
            f"arn:aws:execute-api:{self._region}:{self._account}:"
            f"{event['requestContext']['apiId']}/{self.stage}/{route.method}{event['path']}"
        )

    def _permitted(self, function_name: str, source_arn: str) -> bool:
        """Whether a Lambda permission lets API Gateway invoke the function from `source_arn`
        (else API Gateway logs "Invalid permissions on Lambda function" and answers 500)."""
        if self._stack.may_invoke(function_name, "apigateway.amazonaws.com", source_arn):
            return True
        logger.error(
            "Execution failed due to configuration error: Invalid permissions on Lambda function",
            extra={"function": function_name, "source_arn": source_arn},
        )
        return False

    def _run(self, function_name: str, event: dict[str, Any]) -> tuple[Any, bool]:
        """Invoke a function as Lambda would: its JSON payload and whether it failed."""
        function = self._functions.get(function_name)
        ran = function.invoke(event) if function is not None else None
        if ran is not None:
            raw, failed = ran
        else:
            answer = self._lambda.invoke(FunctionName=function_name, Payload=json.dumps(event))
            raw, failed = answer["Payload"].read(), bool(answer.get("FunctionError"))
        return json.loads(raw or b"null"), failed

    def _gateway_response(self, route: Route | None, kind: str) -> Answer:
        """API Gateway's own answer of a type, from the API's GatewayResponses. A request that
        matches no route belongs to no API here (on AWS each has its own host): the first
        API's responses answer it."""
        apis = [route.api] if route is not None else sorted(self._auth)
        authorization = next((self._auth[api] for api in apis if api in self._auth), None)
        auth = authorization.auth if authorization is not None else ApiAuth({}, None, {})
        return auth.response(kind, _MESSAGES[kind], str(uuid.uuid4()))

    def _invoke(self, route: Route, event: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        # Lambda refuses a synchronous event over 6 MB; API Gateway then answers 413 itself.
        if limits.lambda_request_refusal(len(json.dumps(event).encode())) is not None:
            return self._gateway_response(route, "REQUEST_TOO_LARGE")
        # The client gets API Gateway's 504 at its timeout; the function runs on regardless.
        ran = limits.call_with_deadline(
            lambda: self._run(route.function_name, event),
            self.integration_timeout_s,
            name=f"apigw-{route.function_name}",
        )
        if isinstance(ran, limits.Late):
            logger.error("integration timed out", extra={"route": route.path})
            return self._gateway_response(route, "INTEGRATION_TIMEOUT")
        payload, failed = ran
        if failed or not isinstance(payload, dict):
            logger.error("function failed", extra={"route": route.path, "payload": payload})
            return self._gateway_response(route, "DEFAULT_5XX")
        body = payload.get("body") or ""
        data = base64.b64decode(body) if payload.get("isBase64Encoded") else str(body).encode()
        # A proxy result may give headers in either map (Powertools uses multiValueHeaders);
        # API Gateway merges both.
        headers = {str(k): str(v) for k, v in (payload.get("headers") or {}).items()}
        for name, values in (payload.get("multiValueHeaders") or {}).items():
            if values:
                headers[str(name)] = ", ".join(str(v) for v in values)
        return int(payload.get("statusCode", 200)), headers, data


#: API Gateway's message for each answer of its own the adapter gives.
_MESSAGES = {
    "MISSING_AUTHENTICATION_TOKEN": "Missing Authentication Token",
    "API_CONFIGURATION_ERROR": "Internal server error",
    "AUTHORIZER_CONFIGURATION_ERROR": "Internal server error",
    "DEFAULT_5XX": "Internal server error",
    "INTEGRATION_TIMEOUT": "Endpoint request timed out",
    "REQUEST_TOO_LARGE": "Request Too Large",
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Clients connecting at the same moment (a burst of submits) queue, not reset (default 5).
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], api: ApiGateway
    ) -> None:
        super().__init__(address, handler)
        self.api = api


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def __getattr__(self, name: str) -> Any:
        # Every method reaches the routing, as on API Gateway (which answers an unknown method
        # or path itself); http.server would answer 501 for a method it has no do_X for.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        # API Gateway tells the function how the client reached it, in place of any such header
        # the client sent; here that is plain HTTP.
        headers = {k: v for k, v in self.headers.items() if k.lower() != "x-forwarded-proto"}
        headers["X-Forwarded-Proto"] = "http"
        status, out_headers, data = self.server.api.handle(self.command, self.path, headers, body)
        self.send_response(status)
        for name, value in out_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)
