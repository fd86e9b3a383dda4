"""moto in server mode inside this process, with Lambda functions that run our Python handlers.

`LocalAws` starts moto's `ThreadedMotoServer` on 127.0.0.1, turns on moto's real execution of
state machines, and hands out boto3 clients with dummy credentials. Lambda functions created in
that moto run registered Python callables in-process (`register_handler`), whether invoked with
`lambda.invoke` or from a state machine Task (`lambda:invoke`, `lambda:invoke.waitForTaskToken`).
A handler that raises gives what real Lambda gives (FunctionError "Unhandled" and the
`{errorType, errorMessage, stackTrace}` payload), so `Retry`/`Catch` on the exception class name
behave as on AWS.

moto keeps its state, its configuration and its server port in process-wide globals, so only one
`LocalAws` runs per process at a time; `stop()` puts back everything `start()` changed.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, Self, overload

import boto3
from botocore.config import Config

from wanflow_local import iam, limits

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient
    from mypy_boto3_stepfunctions.type_defs import (
        DescribeExecutionOutputTypeDef,
        HistoryEventTypeDef,
    )

logger = logging.getLogger(__name__)

ACCOUNT_ID: Final = "123456789012"
"""moto's default account: every ARN it makes (and every ARN a state machine sees) uses it."""
DEFAULT_REGION: Final = "us-east-1"
MOTO_VERSIONS: Final = ("5.2.",)
"""The moto releases the patches below were made for (and checked against): `_install_hook`
refuses any other, since a patched internal may have moved or changed meaning."""

Handler = Callable[[Any, "LambdaContext"], Any]
"""A Lambda entry point: `handler(event, context)` returning something JSON-serialisable."""

TERMINAL_STATUSES: Final = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})

_QUIETED_LOGGERS: Final = {
    "werkzeug": logging.WARNING,
    "moto.stepfunctions.parser.asl.component": logging.CRITICAL,
}

# Environment variables that would send boto3 elsewhere than this moto, or fail on a missing
# profile; start() removes them and stop() puts them back.
_ENV_REMOVED: Final = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


@dataclass(frozen=True)
class LambdaContext:
    """The subset of the Lambda context object that handlers and Powertools read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float = field(repr=False)
    """time.monotonic() at which real Lambda would stop the function."""
    identity: None = None
    client_context: None = None

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's configured timeout (never negative)."""
        return max(0, int((self.deadline - time.monotonic()) * 1000))


# --- The patches ----------------------------------------------------------------------------
#
# Every change this project makes to moto's internals is one entry of `_patches()`, installed by
# `start()` and removed by `stop()`, on a moto release listed in MOTO_VERSIONS only; each
# replacement's docstring says why. They are of four kinds:
#
# - Lambda: without Docker, moto's `LambdaSimpleBackend.invoke` only echoes the payload. Every
#   synchronous path goes through that one method: the Lambda API (`lambda.invoke`), the state
#   machine executor (which calls the Lambda API of this same server over HTTP, from its worker
#   thread) and moto's SQS event source mappings. `_invoke` runs the registered handler instead
#   (moto's echo for any other function), in a werkzeug request thread, so a handler may itself
#   call this moto over HTTP (the server is threaded) without deadlocking.
# - Fidelity, where moto is less faithful than AWS: StopExecution and a task-token wait
#   (`_set_stop`), concurrent writes of one DynamoDB item (`_dynamodb_call`), concurrent
#   StartExecution calls of one name (`_start_execution`), presigned S3 URLs
#   (`_s3_key_response`), AWS's limits (`limits`), and IAM (`wanflow_local.iam`: the resource
#   of each request, action names, account principals, presigned requests, the state machine's
#   role in `_lambda_client_for`). Powertools' router state (the current event and Lambda
#   context on its class, each resolver's `context` with the matched route's arguments) is kept
#   per thread (`_router_resolve`, `_router_route_context`), as each Lambda process has its own.
# - Speed: the others change no behaviour, they only take work off the one process that plays
#   all of AWS here, which the benches' hundred tasks in flight saturated: moto's request
#   dispatch (`_backend_for_host`), the parse of the state machine's definition at every
#   execution start (`_evaluation_entrypoint`), a new boto3 client at every Lambda task
#   (`_lambda_client_for`) and the clock readings of SQS's receive (`_message_visible`,
#   `_message_delayed`).

_handlers: dict[str, Handler] = {}
#: What `_originals` holds for a patched attribute its owner did not define itself.
_ABSENT: Final = object()
_handlers_lock = threading.Lock()
#: Patch name → moto's own function, while the patches are installed.
_originals: dict[str, Any] = {}
#: Request host → moto backend, as moto's dispatcher found it (see `_backend_for_host`).
_backends_by_host: dict[str | None, Any] = {}
#: State machine definition → its ANTLR parse tree (see `_evaluation_entrypoint`).
_asl_trees: dict[str, Any] = {}
#: (region, service, moto's port, role) → the client moto's Lambda tasks call with.
_task_clients: dict[tuple[str, str, int, str], Any] = {}
_cache_lock = threading.Lock()
#: Held by every DynamoDB request moto serves (see `_dynamodb_call`).
_dynamodb_lock = threading.Lock()
#: Held by every StartExecution moto serves (see `_start_execution`).
_start_execution_lock = threading.Lock()


def _patches() -> dict[str, tuple[Any, str, Any]]:
    """Patch name → (owner, attribute, replacement): every change this project makes to moto's
    (and one to Powertools') internals, each explained in its replacement's docstring."""
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
    from moto.awslambda.responses import LambdaResponse
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.dynamodb.responses import DynamoHandler
    from moto.iam.access_control import IAMPolicyStatement, IAMRequest, IAMRequestBase
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.s3.responses import S3Response
    from moto.secretsmanager.responses import SecretsManagerResponse
    from moto.sqs.models import Message
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    return {
        "invoke": (LambdaSimpleBackend, "invoke", _invoke),
        "set_stop": (Environment, "set_stop", _set_stop),
        "dynamodb_call": (DynamoHandler, "call_action", _dynamodb_call),
        "start_execution": (
            StepFunctionsParserBackend,
            "start_execution",
            _start_execution,
        ),
        "start_execution_input": (
            StepFunctionResponse,
            "start_execution",
            _start_execution_input,
        ),
        "backend_for_host": (
            DomainDispatcherApplication,
            "get_backend_for_host",
            _backend_for_host,
        ),
        "evaluation_entrypoint": (
            ExecutionWorker,
            "_get_evaluation_entrypoint",
            _evaluation_entrypoint,
        ),
        "lambda_client_for": (lambda_eval_utils, "boto_client_for", _lambda_client_for),
        "message_visible": (Message, "visible", property(_message_visible)),
        "message_delayed": (Message, "delayed", property(_message_delayed)),
        "s3_key_response": (S3Response, "key_response", _s3_key_response),
        "router_resolve": (ApiGatewayResolver, "resolve", _router_resolve),
        "router_event": (ApiGatewayResolver, "current_event", _router_event),
        "router_context": (ApiGatewayResolver, "lambda_context", _router_context),
        "router_route_context": (ApiGatewayResolver, "context", _router_route_context),
        # IAM (see wanflow_local.iam): the resource of each request, where moto passes `*`…
        "iam_dynamodb_resource": (DynamoHandler, "_determine_resource", iam.dynamodb_resource),
        "iam_stepfunctions_resource": (
            StepFunctionResponse,
            "_determine_resource",
            iam.stepfunctions_resource,
        ),
        "iam_lambda_resource": (LambdaResponse, "_determine_resource", iam.lambda_resource),
        "iam_secretsmanager_resource": (
            SecretsManagerResponse,
            "_determine_resource",
            iam.secretsmanager_resource,
        ),
        # … any other service checked at action level, IAM's action names, account principals
        # in trust policies, and presigned S3 requests.
        "iam_any_resource": (IAMPolicyStatement, "_check_element_matches", _element_matches),
        "iam_principal": (IAMPolicyStatement, "_check_principal", _principal_matches),
        "iam_action": (IAMRequestBase, "check_action_permitted", _check_action_permitted),
        "iam_signed_body": (IAMRequestBase, "_create_aws_request", _signed_request),
        "iam_access_denied": (IAMRequest, "_raise_access_denied", _raise_access_denied),
        "iam_invalid_key": (IAMRequest, "_raise_invalid_access_key", _raise_invalid_access_key),
        "iam_presigned_s3": (
            S3Response,
            "_authenticate_and_authorize_s3_action",
            _authorize_s3_action,
        ),
    }


def check_moto_version(version: str) -> None:
    """Refuse a moto release the patches were not made for, saying what to do."""
    if not version.startswith(MOTO_VERSIONS):
        raise RuntimeError(
            f"moto {version} is installed; wanflow_local.aws patches moto's internals "
            f"as of moto {' or '.join(v + 'x' for v in MOTO_VERSIONS)} (see _patches): check "
            "each patch against the new release, then add it to MOTO_VERSIONS"
        )


def _install_hook() -> None:
    """Install every patch (idempotent), on a moto release they were made for."""
    import moto

    if _originals:
        return
    check_moto_version(str(moto.__version__))
    for name, (owner, attribute, replacement) in _patches().items():
        # The owner's own attribute (an inherited one is restored by deleting the patch).
        _originals[name] = vars(owner).get(attribute, _ABSENT)
        # setattr: mypy rightly refuses assigning to a method.
        setattr(owner, attribute, replacement)


def _remove_hook() -> None:
    """Put moto's own functions back (idempotent)."""
    if not _originals:
        return
    for name, (owner, attribute, _) in _patches().items():
        original = _originals.pop(name)
        if original is _ABSENT:
            delattr(owner, attribute)
        else:
            setattr(owner, attribute, original)
    with _cache_lock:
        _task_clients.clear()


#: Powertools' router state of the request this thread is resolving (see `_router_resolve`).
_router_state = threading.local()


def _router_resolve(resolver: Any, event: Any, context: Any) -> Any:
    """ApiGatewayResolver.resolve, with the request's event and context kept per thread.

    Powertools (3.x) keeps the current event on a class attribute shared by every resolver
    (`BaseRouter.current_event`): on Lambda one process serves one request at a time, but here
    every function's requests run in threads of one process, so a submit could read another
    request's body (seen: a wan26_i2i submit came back as a flash task). With the attributes
    below, each thread reads its own request, as each Lambda process would.
    """
    raw = event.raw_event if hasattr(event, "raw_event") else event
    _router_state.event = resolver._to_proxy_event(raw)
    _router_state.context = context
    return _originals["router_resolve"](resolver, event, context)


def _router_get(name: str) -> Callable[[Any], Any]:
    return lambda _resolver: getattr(_router_state, name, None)


def _router_set(name: str) -> Callable[[Any, Any], None]:
    return lambda _resolver, value: setattr(_router_state, name, value)


_router_event = property(_router_get("event"), _router_set("event"))
_router_context = property(_router_get("context"), _router_set("context"))


def _route_context_get(resolver: Any) -> dict[str, Any]:
    contexts: dict[int, dict[str, Any]] = _router_state.__dict__.setdefault("contexts", {})
    return contexts.setdefault(id(resolver), {})


def _route_context_set(resolver: Any, value: dict[str, Any]) -> None:
    _router_state.__dict__.setdefault("contexts", {})[id(resolver)] = value


#: A resolver's `context` (Powertools keeps the matched route and its arguments there, for the
#: validation middleware to pass to the route) per thread too: on an instance, so each
#: function's resolver has its own, but one request at a time on Lambda.
_router_route_context = property(_route_context_get, _route_context_set)


def _element_matches(statement: Any, element: str, value: str) -> bool:
    """IAMPolicyStatement._check_element_matches, where a request's resource `*` (a service
    whose resource moto does not determine) matches any Resource: an action-level check."""
    if element in {"Resource", "NotResource"} and value == "*":
        return element == "Resource"
    return bool(_originals["iam_any_resource"](statement, element, value))


def _principal_matches(statement: Any, principal: str) -> bool:
    """IAMPolicyStatement._check_principal, reading an account principal as AWS does."""
    return iam.principal_matches(statement._statement.get("Principal"), principal)


def _check_action_permitted(request: Any, resource: str) -> None:
    """IAMRequestBase.check_action_permitted with the action named as IAM names it."""
    request._action = iam.iam_action(request._action)
    _originals["iam_action"](request, resource)


def _signed_request(request: Any) -> Any:
    """IAMRequestBase._create_aws_request, signing over the body as sent.

    moto (5.2) re-signs a request over its body *or*, when it has none, over the parameters it
    parsed: right for a form POST whose body werkzeug consumed (IAM, STS), wrong for a GET such
    as Lambda's GetFunctionConfiguration, whose parsed path parameters it signs where the
    client signed an empty body: every such call was refused with SignatureDoesNotMatch.
    """
    from botocore.awsrequest import AWSRequest

    signed = request._get_string_between(
        "SignedHeaders=", ",", request._headers["Authorization"]
    ).split(";")
    headers = request._create_headers_for_aws_request(signed, request._headers)
    bodiless = request._method in {"GET", "HEAD", "DELETE"}
    data = request._body or (b"" if bodiless else request._data)
    aws_request = AWSRequest(method=request._method, url=request._path, data=data, headers=headers)
    aws_request.context["timestamp"] = headers["X-Amz-Date"]
    return aws_request


def _json_protocol(request: Any) -> bool:
    """Whether the refused request speaks a JSON protocol (DynamoDB, Step Functions, Secrets
    Manager, SQS: `X-Amz-Target`; Lambda: REST-JSON), whose clients read an error's code from
    a JSON body, not from the XML moto answers every refusal with."""
    return "X-Amz-Target" in request._headers or request._service == "lambda"


def _raise_access_denied(request: Any) -> None:
    """IAMRequest._raise_access_denied, in the request's protocol: a DynamoDB client refused
    here then sees `AccessDeniedException`, as on AWS, and not a bare 403."""
    from moto.core.exceptions import JsonRESTError

    if not _json_protocol(request):
        _originals["iam_access_denied"](request)
    arn = request._access_key.arn
    message = f"User: {arn} is not authorized to perform: {request._action}"
    denied = JsonRESTError("AccessDeniedException", message)
    # HTTP 400 from the JSON-protocol services (DynamoDB, Secrets Manager, Step Functions, SQS
    # document it so), 403 from Lambda's REST API.
    denied.code = 403 if request._service == "lambda" else 400
    raise denied


def _raise_invalid_access_key(request: Any, reason: str) -> None:
    """IAMRequest._raise_invalid_access_key, in the request's protocol (JSON services answer
    `UnrecognizedClientException`)."""
    from moto.core.exceptions import JsonRESTError

    if not _json_protocol(request):
        _originals["iam_invalid_key"](request, reason)
    message = "The security token included in the request is invalid."
    raise JsonRESTError("UnrecognizedClientException", message)  # HTTP 400, as on AWS


def _authorize_s3_action(
    response: Any, bucket_name: str | None = None, key_name: str | None = None
) -> None:
    """S3Response._authenticate_and_authorize_s3_action, for presigned requests too.

    moto's check reads the `Authorization` header, which a presigned request does not have
    (a KeyError, so a 500). Such a request's signature and expiry are checked by
    `_s3_key_response`; here its presigner's policies are.
    """
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.s3.exceptions import BucketAccessDeniedError, S3AccessDeniedError

    headers = response.headers or {}
    query = {k: v[0] for k, v in (response.querystring or {}).items() if v}
    # SigV4 (X-Amz-Credential) or SigV2 (AWSAccessKeyId) query-string authentication.
    presigned = "Authorization" not in headers and bool(
        {"X-Amz-Credential", "AWSAccessKeyId"} & set(query)
    )
    if not presigned:  # moto's own check (S3Response inherits it)
        ActionAuthenticatorMixin._authenticate_and_authorize_s3_action(
            response, bucket_name, key_name
        )
        return
    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        return
    path = f"{bucket_name or '*'}/{key_name}" if key_name else (bucket_name or "*")
    action = f"s3:{response.data.get('Action', '')}"
    if not iam.presigned_allowed(query, action, f"arn:aws:s3:::{path}"):
        if bucket_name:
            raise BucketAccessDeniedError(bucket=bucket_name)
        raise S3AccessDeniedError()


def _s3_key_response(response: Any, request: Any, full_url: str, headers: Any) -> Any:
    """S3Response.key_response, refusing first a presigned SigV4 request that S3 would refuse
    (signed headers missing or changed, URL expired): moto checks no query signature."""
    from wanflow_local.s3sigv4 import refusal

    refused = refusal(request.method, full_url, request.headers)
    return refused or _originals["s3_key_response"](response, request, full_url, headers)


def _dynamodb_call(handler: Any) -> Any:
    """DynamoHandler.call_action under one lock.

    The third patch, for another gap in moto (5.2): it applies a write to the stored item in
    place and without a lock, so two concurrent writes of one item interleave; a conditional
    update can then fail with a RuntimeError (a 500: seen with eight identical submits at once)
    or, worse, pass a condition the other write was about to falsify. DynamoDB makes each
    write atomic per item; serialising moto's DynamoDB requests gives the same guarantee.
    """
    with _dynamodb_lock:
        return _originals["dynamodb_call"](handler)


def _start_execution(backend: Any, *args: Any, **kwargs: Any) -> Any:
    """StepFunctionsParserBackend.start_execution under one lock.

    Another gap in moto (5.2): it looks for an execution of the same name, then (after a deep
    copy of the state machine) adds the new one, unlocked, so two StartExecution calls of one
    name at once (concurrent submits with one Idempotency-Key) both start one. AWS starts one
    execution per name: the same name and input running returns it, anything else is
    ExecutionAlreadyExists (wanflow's submit relies on it, following.start_execution).
    """
    with _start_execution_lock:
        return _originals["start_execution"](backend, *args, **kwargs)


def _start_execution_input(response: Any) -> Any:
    """StepFunctionResponse.start_execution, refusing an input over 256 KB as AWS does.

    A gap in moto (5.2): it checks each state's input and output against Step Functions' 256 KB
    (`States.DataLimitExceeded`) but starts an execution of any input, which then fails in its
    first state; AWS refuses the StartExecution call (a ValidationException, the input's length
    constraint in the API reference), so the caller learns it and no execution exists.
    """
    from moto.stepfunctions.exceptions import ValidationException

    refusal = limits.sfn_input_refusal(str(response._get_param("input", if_none="{}")))
    if refusal is not None:
        raise ValidationException(refusal)
    return _originals["start_execution_input"](response)


def _backend_for_host(dispatcher: Any, host: str | None) -> Any:
    """DomainDispatcherApplication.get_backend_for_host, remembered per host.

    moto (5.2) dispatches every request under one lock, and there lists its own package
    directory (a `stat` per service, some 170) and tries its URL patterns one by one: about
    1 ms, while the threads serving the other requests wait for the lock, longer when the
    holder yields the GIL in a `stat`. The answer depends only on the host (a handful here).
    """
    try:
        return _backends_by_host[host]
    except KeyError:
        backend = _backends_by_host[host] = _originals["backend_for_host"](dispatcher, host)
        return backend


def _evaluation_entrypoint(worker: Any) -> Any:
    """ExecutionWorker._get_evaluation_entrypoint, with the definition's parse tree kept.

    moto (5.2) parses the definition with ANTLR at every execution start (some 70 ms of CPU
    here, for every task). The tree is only read afterwards, so it is kept per definition;
    the evaluation components are still built anew from it for every execution, as moto does.
    """
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    definition = worker._evaluation_details.state_machine_details.definition
    with _cache_lock:
        tree = _asl_trees.get(definition)
    if tree is None:
        program, tree = AmazonStateLanguageParser.parse(definition)
        with _cache_lock:
            _asl_trees[definition] = tree
        return program
    return Preprocessor().visit(tree)


def _lambda_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    """moto's boto_client_for, for its Lambda tasks: signed as the state machine's role, and
    one client per role, region and service (boto3 clients are thread-safe).

    moto (5.2) makes a new client for every task it runs, signed with made-up keys, which its
    own access control refuses; Step Functions calls Lambda as the state machine's role (its
    `RoleArn`), so a role without `lambda:InvokeFunction` on the function fails the task here
    as on AWS.
    """
    from moto.settings import moto_server_port

    role = getattr(state_credentials, "role_arn", None) or ""
    credentials = iam.role_credentials(ACCOUNT_ID, role, "states") if role else None
    # Keyed by the session too: an execution of a stack stopped before a reset may still run
    # a task, and must not leave a client of a forgotten session for the next stack.
    session_key = credentials["AccessKeyId"] if credentials else ""
    key = (region, service, int(moto_server_port()), session_key)
    with _cache_lock:
        client = _task_clients.get(key)
    if client is None:
        session = _role_session(role, "states", region) if role else None
        client = (
            session.client(
                service,  # type: ignore[call-overload]
                endpoint_url=f"http://localhost:{moto_server_port()}",
                config=Config(
                    parameter_validation=False,
                    retries={"max_attempts": 0, "total_max_attempts": 1},
                    connect_timeout=99999,
                    read_timeout=99999,
                ),
            )
            if session is not None
            else _originals["lambda_client_for"](region, service, state_credentials)
        )
        with _cache_lock:
            client = _task_clients.setdefault(key, client)
    return client


def _role_session(role_arn: str, session_name: str, region: str) -> boto3.Session:
    """A boto3 session signing as a role of this moto (assumed as the service would)."""
    credentials = iam.role_credentials(ACCOUNT_ID, role_arn, session_name)
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def _message_visible(message: Any) -> bool:
    """moto's Message.visible, reading the clock as `time.time()`.

    moto (5.2) reads it as a naive UTC datetime minus the epoch, built anew for each message at
    each receive, twice: with a few hundred delayed messages on a queue (the notify queue's
    retries), a noticeable share of the local stack's CPU. Same milliseconds since the epoch.
    """
    return bool(time.time() * 1000.0 > message.visible_at)


def _message_delayed(message: Any) -> bool:
    """moto's Message.delayed, reading the clock as `time.time()` (see `_message_visible`)."""
    return bool(time.time() * 1000.0 < message.delayed_until)


def _set_stop(env: Any, stop_date: Any, cause: str | None, error: str | None) -> None:
    """Environment.set_stop, then wake every wait on a task token of the execution.

    The second patch, for one gap in moto (5.2): StopExecution stops an execution in a Wait
    state at once, as AWS does, but one waiting on a task token only when the token comes back
    or its timeout passes, so a cancelled callback task's execution (waiting on a token for
    its callback) would stay RUNNING until its callback timeout. So the waits are ended here:
    with an empty output, since moto would turn a timeout or a failure into ExecutionFailed, while
    after a state that ended normally it sees the stop and ends the execution as ABORTED, as AWS
    does.
    """
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeSuccess

    _originals["set_stop"](env, stop_date=stop_date, cause=cause, error=error)
    pool = getattr(env.callback_pool_manager, "_pool", {})
    for token, endpoint in list(pool.items()):
        if endpoint.get_outcome() is None:
            endpoint.notify(CallbackOutcomeSuccess(callback_id=token, output="{}"))


def _invoke(  # noqa: PLR0917 -- moto calls it positionally with this exact signature
    backend: Any,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: dict[str, str],
) -> str | bytes | None:
    """LambdaSimpleBackend.invoke replacement: run the registered handler, or moto's echo."""
    # Resolves names, ARNs and qualifiers, and raises moto's ResourceNotFound as Lambda does.
    function = backend.get_function(function_name, qualifier)
    with _handlers_lock:
        handler = _handlers.get(function.function_name)
    if handler is None:
        echo: Callable[..., str | bytes | None] = _originals["invoke"]
        return echo(backend, function_name, qualifier, body, headers, response_headers)

    # moto's own callers (SQS event source mappings) pass a plain dict; werkzeug's headers are
    # case-insensitive, a dict is not.
    invocation_type = _header(headers, "X-Amz-Invocation-Type") or "RequestResponse"
    if invocation_type == "RequestResponse":
        _check_request_size(body)
    event = _parse_event(body)
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        # Asynchronous invocation: answer 202 at once, run the handler on its own thread.
        threading.Thread(
            target=run_handler,
            args=(handler, event, function),
            name=f"lambda-event-{function.function_name}",
            daemon=True,
        ).start()
        return b""

    payload, failed = run_handler(handler, event, function)
    if failed:
        response_headers["x-amz-function-error"] = "Unhandled"
    response_headers["Content-Length"] = str(len(payload))
    return payload


def _check_request_size(body: Any) -> None:
    """Refuse a synchronous payload over Lambda's 6 MB as Lambda does (HTTP 413)."""
    from moto.awslambda.exceptions import LambdaClientError

    size = len(body.encode() if isinstance(body, str) else body or b"")
    refusal = limits.lambda_request_refusal(size)
    if refusal is not None:
        error = LambdaClientError("RequestEntityTooLargeException", refusal)
        error.code = 413
        raise error


def _parse_event(body: Any) -> Any:
    """The event a handler receives: the JSON payload, `{}` when there is none."""
    from moto.awslambda.exceptions import LambdaClientError

    if not body:
        return {}
    try:
        return json.loads(body)
    except ValueError as error:
        raise LambdaClientError(
            "InvalidRequestContentException", f"Could not parse request body into json: {error}"
        ) from error


def _header(headers: Any, name: str) -> str | None:
    """A request header whether moto passes werkzeug headers or a plain dict."""
    if not headers:
        return None
    value = headers.get(name)
    if value is None and isinstance(headers, Mapping):
        value = next((v for k, v in headers.items() if str(k).lower() == name.lower()), None)
    return None if value is None else str(value)


def run_handler(handler: Handler, event: Any, function: Any) -> tuple[bytes, bool]:
    """Call the handler; returns (payload, failed) as the Lambda Invoke API would.

    `function` describes the Lambda function: `function_name`, `version`, `function_arn`,
    `memory_size`, `timeout` (moto's function object has them).

    As on Lambda, the caller gets `Sandbox.Timedout` at the function's Timeout, not when the
    handler ends, and a response over 6 MB fails the invocation (`limits`). The handler runs on
    a thread of its own for that; one past its Timeout runs on to its end in the background, its
    result dropped, but its side effects still happen (Lambda would freeze or kill it).
    """
    request_id = str(uuid.uuid4())
    timeout_s = float(function.timeout or 3)
    started = time.monotonic()
    context = LambdaContext(
        function_name=function.function_name,
        function_version=str(function.version),
        invoked_function_arn=function.function_arn,
        memory_limit_in_mb=int(function.memory_size or 128),
        aws_request_id=request_id,
        log_group_name=f"/aws/lambda/{function.function_name}",
        log_stream_name=f"local/[{function.version}]{request_id}",
        deadline=started + timeout_s,
    )

    def late() -> None:
        logger.info(
            "lambda handler ended after its timeout, result dropped function=%s seconds=%.2f",
            function.function_name,
            time.monotonic() - started,
        )

    outcome = limits.call_with_deadline(
        lambda: _call(handler, event, context),
        context.deadline - time.monotonic(),
        name=f"lambda-{function.function_name}",
        on_late=late,
    )
    if isinstance(outcome, limits.Late):
        message = f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds"
        return _error_payload("Sandbox.Timedout", message, request_id, None), True
    result, error = outcome
    if error is not None:
        return _error_payload(type(error).__name__, str(error), request_id, error), True
    try:
        payload = json.dumps(result).encode()
    except (TypeError, ValueError) as marshal_error:
        message = f"Unable to marshal response: {marshal_error}"
        return _error_payload("Runtime.MarshalError", message, request_id, None), True
    too_large = limits.lambda_response_refusal(len(payload))
    if too_large is not None:
        return _error_payload("Function.ResponseSizeTooLarge", too_large, request_id, None), True
    return payload, False


def _call(handler: Handler, event: Any, context: LambdaContext) -> tuple[Any, Exception | None]:
    """The handler's result, or the exception it raised (its traceback starts in this frame)."""
    try:
        return handler(event, context), None
    except Exception as error:
        # INFO, not ERROR: Retry/Catch tests raise on purpose; the traceback helps when not.
        logger.info(
            "lambda handler raised function=%s error=%s",
            context.function_name,
            type(error).__name__,
            exc_info=True,
        )
        return None, error


def _error_payload(
    error_type: str, message: str, request_id: str, error: BaseException | None
) -> bytes:
    """The body real Lambda returns for a function error (Python runtime shape)."""
    # Skip our own frame (the call of the handler): Lambda's trace starts in the handler.
    tb = error.__traceback__.tb_next if error is not None and error.__traceback__ else None
    stack = traceback.format_tb(tb) if tb is not None else []
    return json.dumps(
        {
            "errorMessage": message,
            "errorType": error_type,
            "requestId": request_id,
            "stackTrace": stack,
        }
    ).encode()


# --- The server ------------------------------------------------------------------------------

_active: LocalAws | None = None
_active_lock = threading.Lock()


class LocalAws:
    """moto in server mode in this process, with in-process Lambda handlers.

    Use as a context manager or call start()/stop(). While it runs, os.environ points boto3 at
    it (AWS_ENDPOINT_URL, dummy credentials, region) unless set_environ=False, so handlers
    that build their own clients reach this moto too.
    """

    def __init__(
        self, *, port: int = 0, region: str = DEFAULT_REGION, set_environ: bool = True
    ) -> None:
        self._port = port
        self.region = region
        self.account_id = ACCOUNT_ID
        self._set_environ = set_environ
        self._server: Any = None
        self._endpoint_url: str | None = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_config: dict[str, Any] = {}
        self._saved_log_levels: dict[str, int] = {}
        self._shared_session: boto3.Session | None = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    # -- lifecycle

    def start(self) -> Self:
        """Start the server, enable state machine execution and in-process Lambda handlers."""
        global _active  # noqa: PLW0603 -- moto's port and config are process-wide
        from moto.server import ThreadedMotoServer

        with _active_lock:
            if _active is not None:
                raise RuntimeError("a LocalAws is already running in this process; stop it first")
            _active = self
        try:
            self._quiet_loggers()
            _check_port_free(self._port)
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
            server.start()
            self._server = server
            _, port = self._server.get_host_and_port()
            self._endpoint_url = f"http://127.0.0.1:{port}"
            # moto's state machine executor calls Lambda, DynamoDB, SQS… at localhost:$MOTO_PORT
            # (default 5000), whatever port this server really has.
            self._set_env({"MOTO_PORT": str(port)})
            if self._set_environ:
                self._set_env(self.environ())
                for name in _ENV_REMOVED:
                    self._set_env({name: None})
            self._configure_moto()
            _install_hook()
            iam.ensure_operator(self.account_id)
            iam.enforce(True)
        except BaseException:
            self.stop()
            raise
        logger.info("moto started endpoint=%s", self._endpoint_url)
        return self

    def stop(self) -> None:
        """Stop the server and restore moto's config, the patched method and os.environ."""
        global _active  # noqa: PLW0603
        if _active is not self:
            return
        if self._server is not None:
            self._server.stop()
        self._server = None
        iam.enforce(False)
        _remove_hook()
        with _handlers_lock:
            _handlers.clear()
        self._restore_moto_config()
        self._restore_env()
        for name, level in self._saved_log_levels.items():
            logging.getLogger(name).setLevel(level)
        self._saved_log_levels.clear()
        self._endpoint_url = None
        self._clients.clear()
        with _active_lock:
            _active = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every resource in moto (keeps the server, its config and the hook)."""
        import urllib.request

        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass
        iam.forget_sessions()  # the reset forgot every role's session…
        iam.ensure_operator(self.account_id)  # … and every IAM user
        with _cache_lock:
            _task_clients.clear()
        with _handlers_lock:
            _handlers.clear()

    # -- what callers use

    @property
    def endpoint_url(self) -> str:
        """http://127.0.0.1:<port> of the running server."""
        if self._endpoint_url is None:
            raise RuntimeError("LocalAws is not started")
        return self._endpoint_url

    def environ(self) -> dict[str, str]:
        """The environment that points boto3 (and any subprocess) at this moto."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": iam.OPERATOR_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": iam.OPERATOR_SECRET,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def session(self) -> boto3.Session:
        """A boto3 session of the operator (every permission) in this region (no profile, no
        real AWS)."""
        return boto3.Session(
            aws_access_key_id=iam.OPERATOR_KEY_ID,
            aws_secret_access_key=iam.OPERATOR_SECRET,
            region_name=self.region,
        )

    def role_session(self, role_arn: str, session_name: str) -> boto3.Session:
        """A boto3 session signing as a role (assumed in this moto, as a service would)."""
        return _role_session(role_arn, session_name, self.region)

    @overload
    def client(self, service: Literal["dynamodb"]) -> DynamoDBClient: ...
    @overload
    def client(self, service: Literal["s3"]) -> S3Client: ...
    @overload
    def client(self, service: Literal["sqs"]) -> SQSClient: ...
    @overload
    def client(self, service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
    @overload
    def client(self, service: Literal["stepfunctions"]) -> SFNClient: ...
    @overload
    def client(self, service: str) -> Any: ...

    def client(self, service: str) -> Any:
        """A boto3 client for this moto, one per service (clients are thread-safe).

        No retries, so a failure shows at once; no host prefix, which boto3 would otherwise
        put before 127.0.0.1 for some operations (StartSyncExecution goes to `sync-…`).
        """
        with self._clients_lock:
            if service not in self._clients:
                # Building clients from one session is not thread-safe, hence the lock.
                self._clients[service] = self._session().client(
                    service,  # type: ignore[call-overload]
                    endpoint_url=self.endpoint_url,
                    config=Config(
                        retries={"mode": "standard", "max_attempts": 1},
                        inject_host_prefix=False,
                    ),
                )
            return self._clients[service]

    def _session(self) -> boto3.Session:
        if self._shared_session is None:
            self._shared_session = self.session()
        return self._shared_session

    @staticmethod
    def register_handler(function_name: str, handler: Handler) -> None:
        """Run `handler` in-process whenever moto invokes the Lambda function `function_name`."""
        with _handlers_lock:
            _handlers[function_name] = handler

    @staticmethod
    def handler(function_name: str) -> Handler | None:
        """The handler registered for `function_name`, if any (to wrap it in a test)."""
        with _handlers_lock:
            return _handlers.get(function_name)

    @staticmethod
    def unregister_handler(function_name: str) -> None:
        """Go back to moto's echo for `function_name` (no error if it had no handler)."""
        with _handlers_lock:
            _handlers.pop(function_name, None)

    # -- internals

    def _quiet_loggers(self) -> None:
        """Silence per-request and per-failure chatter; stop() restores the levels.

        werkzeug logs every request at INFO. moto's state machine interpreter logs every
        failure at ERROR with a repr of the whole state, even when a Retry or Catch handles
        it; the execution's history and `cause` carry the same facts.
        """
        for name, level in _QUIETED_LOGGERS.items():
            quieted = logging.getLogger(name)
            self._saved_log_levels[name] = quieted.level
            quieted.setLevel(level)

    def _configure_moto(self) -> None:
        """What `POST /moto-api/config` would set, done directly since moto is in-process."""
        from moto.core.config import default_user_config

        config: Any = default_user_config
        for key in ("stepfunctions", "lambda"):
            self._saved_config[key] = config.get(key)
        config["stepfunctions"] = {"execute_state_machine": True}
        config["lambda"] = {"use_docker": False}

    def _restore_moto_config(self) -> None:
        from moto.core.config import default_user_config

        config: Any = default_user_config
        for key, value in self._saved_config.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        self._saved_config.clear()

    def _set_env(self, values: Mapping[str, str | None]) -> None:
        """Set (or remove, for None) environment variables, remembering the first old value."""
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()


def _check_port_free(port: int) -> None:
    """Fail now if a fixed port is taken: ThreadedMotoServer would wait forever for its thread."""
    import socket

    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Same option as werkzeug's server, so a port in TIME_WAIT counts as free as it will be.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise RuntimeError(f"port {port} on 127.0.0.1 is not free: {error}") from error


# --- Executions ------------------------------------------------------------------------------


def wait_for_execution(
    sfn: SFNClient, execution_arn: str, *, timeout: float = 30.0, interval: float = 0.05
) -> DescribeExecutionOutputTypeDef:
    """Poll until the execution is no longer RUNNING; raises TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] in TERMINAL_STATUSES:
            return description
        if time.monotonic() >= deadline:
            raise TimeoutError(f"execution still {description['status']} after {timeout}s")
        time.sleep(interval)


def execution_history(sfn: SFNClient, execution_arn: str) -> list[HistoryEventTypeDef]:
    """Every history event of an execution, oldest first."""
    events: list[HistoryEventTypeDef] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events
