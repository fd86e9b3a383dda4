"""Creates what CloudFormation would create from a SAM `template.yaml` in a running `LocalAws`.

`deploy(aws, "template.yaml")` runs the SAM transform first (`wanflow_local.transform`, the
pinned aws-sam-translator), then creates the resulting CloudFormation resources in dependency
order: DynamoDB tables, S3 buckets, SQS queues, Secrets Manager secrets, IAM roles with their
policies (SAM's generated execution roles included: each function has its own), Lambda functions
(whose Python handlers are imported from `<CodeUri>/<module>.py` and run in-process) and state
machines with their roles. It returns a `Stack` with what CloudFormation would report: Ref values
and attributes by logical id, resolved Outputs.

Some resources have no service in moto to create them in; they are read, not faked:
- the REST API (`AWS::ApiGateway::RestApi`: the OpenAPI body SAM generated, with its routes,
  authorizer and gateway responses) is kept in `Stack.apis` for `apigw.ApiGateway` to serve;
- Lambda permissions are kept in `Stack.permissions`: API Gateway (the local adapter) calls a
  function only with one, and a bucket notification without one fails the deploy, as S3 refuses
  to validate its destination;
- triggers (the event source mappings, the bucket's notifications, schedules) are recorded in
  `Stack.event_sources` for the local stack to deliver.
What else cannot exist locally (alarms, log groups, dashboards, topics, event invoke configs…)
goes to `Stack.skipped`, and references to it resolve to placeholders listed in
`Stack.placeholders`.

Each function runs with the environment Lambda would give it, and nothing else: its own
`Environment.Variables`, its region, its role's credentials (a session assumed in moto's STS, so
moto's IAM checks its policies), its name and memory size, plus what the local stack itself adds
(`deploy(environment=…)`: where moto and the secrets extension listen). The handlers share one
process, so that environment is handed to each function's module as it is imported
(`wanflow.runtime.function_environ`), not set into os.environ; only Powertools' own settings
(`POWERTOOLS_*`), read by the shared library's module-level logger, metrics and tracer, are
process-wide, and must agree across functions.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import logging
import os
import re
import sys
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Final

from botocore.exceptions import ClientError

from wanflow_local import iam as local_iam
from wanflow_local.aws import Handler, LocalAws, run_handler
from wanflow_local.cfn import Resolver, TemplateError, as_text, load_document
from wanflow_local.transform import artifacts, transformed

logger = logging.getLogger(__name__)

DEFAULT_RUNTIME: Final = "python3.12"

# Lambda refuses these names in a function's environment; here they would also overwrite what
# LocalAws set for every handler.
_RESERVED_ENV: Final = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_ACCESS_KEY_ID",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_REGION",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "LAMBDA_RUNTIME_DIR",
        "LAMBDA_TASK_ROOT",
    }
)
_SUBSTITUTION: Final = re.compile(r"\$\{([^}]+)\}")
#: Where the SDK sends a function's calls: moto's endpoint, in the local stack's environment.
_LOCAL_ENDPOINTS: Final = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "MOTO_PORT")


# Powertools settings set into os.environ by deploys: name → (value, stack). Every stack's
# handlers share the library's module-level Powertools objects, so stacks must agree.
_environment_owners: dict[str, tuple[str, Stack]] = {}
#: The variables the shared library's module-level Powertools objects read from os.environ.
_PROCESS_WIDE: Final = re.compile(r"^POWERTOOLS_")


class DeployError(RuntimeError):
    """The template is valid CloudFormation but cannot be deployed into this process."""


@dataclass(frozen=True)
class Function:
    """A Lambda function of the stack and how it runs here."""

    logical_id: str
    name: str
    arn: str
    handler: str
    """`Handler` as in the template, e.g. `app.handler`."""
    code_uri: Path | None
    runtime: str
    timeout: int
    memory_size: int
    environment: dict[str, str]
    """The function's own `Environment.Variables`, resolved."""
    role_arn: str = ""
    """The execution role (`Role`): its policies are all the function may do."""
    lambda_environment: dict[str, str] = field(default_factory=dict)
    """All the function's environment as Lambda sets it (see the module docstring)."""
    in_process: bool = False
    """True once a Python callable runs its invocations (else moto echoes the payload)."""

    # What `aws.run_handler` reads of a function, named as on moto's function objects.
    @property
    def function_name(self) -> str:
        return self.name

    @property
    def function_arn(self) -> str:
        return self.arn

    @property
    def version(self) -> str:
        return "$LATEST"

    def invoke(self, event: Any) -> tuple[bytes, bool] | None:
        """Run the function's in-process handler on `event` as Lambda would: its payload and
        whether it failed; None when no handler runs in this process."""
        handler = LocalAws.handler(self.name)
        return None if handler is None else run_handler(handler, event, self)


@dataclass(frozen=True)
class EventSource:
    """A trigger the template declares and moto does not deliver: for the local stack to run."""

    target: str
    """Logical id of the function or state machine triggered."""
    target_name: str
    """Its physical name (function name, or state machine ARN)."""
    name: str
    """The event's name in `Events`, or the logical id of the resource that declared it."""
    type: str
    """SAM event type: `SQS`, `S3`, `Api`, `HttpApi`, `Schedule`, `EventBridgeRule`…"""
    properties: dict[str, Any]
    """Resolved; references to skipped resources are placeholders."""


@dataclass(frozen=True)
class Permission:
    """An `AWS::Lambda::Permission`: who may invoke a function, from where."""

    function_name: str
    principal: str
    source_arn: str | None
    action: str = "lambda:InvokeFunction"

    def allows(self, principal: str, source_arn: str) -> bool:
        """Whether this permission lets `principal` invoke the function from `source_arn`."""
        if principal != self.principal or self.action not in {"lambda:InvokeFunction", "lambda:*"}:
            return False
        if self.source_arn is None:
            return True
        pattern = "^" + re.escape(self.source_arn).replace("\\*", ".*").replace("\\?", ".") + "$"
        return re.match(pattern, source_arn) is not None


@dataclass(frozen=True)
class RestApi:
    """An `AWS::ApiGateway::RestApi` of the stack: its id and the OpenAPI body, resolved."""

    logical_id: str
    id: str
    body: dict[str, Any]
    stages: tuple[str, ...] = ()


@dataclass
class Stack:
    """What deploy created: the local equivalent of a CloudFormation stack's description."""

    name: str
    template_path: Path
    region: str
    parameters: dict[str, Any]
    types: dict[str, str] = field(default_factory=dict)
    refs: dict[str, Any] = field(default_factory=dict)
    """Ref value by logical id: table/bucket/function name, queue URL, secret/state machine ARN."""
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Fn::GetAtt values by logical id then attribute name (`Arn`, `StreamArn`, `QueueUrl`…)."""
    outputs: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    """What was set into os.environ for every handler (Powertools' settings only)."""
    functions: dict[str, Function] = field(default_factory=dict)
    permissions: list[Permission] = field(default_factory=list)
    apis: dict[str, RestApi] = field(default_factory=dict)
    """REST APIs by logical id (served by `apigw.ApiGateway`)."""
    event_sources: list[EventSource] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """Logical id → why nothing was created for it."""
    placeholders: set[str] = field(default_factory=set)
    """References answered with a placeholder value (`Ref X`, `GetAtt X.Attr`)."""
    notes: list[str] = field(default_factory=list)
    """Properties ignored and other approximations, one sentence each."""
    _saved_environ: dict[str, str | None] = field(default_factory=dict, repr=False)
    _aws: LocalAws | None = field(default=None, repr=False)

    def ref(self, logical_id: str) -> Any:
        """What `!Ref logical_id` gives in this stack."""
        if logical_id not in self.refs:
            raise KeyError(
                f"{logical_id} was not created (skipped: {self.skipped.get(logical_id)})"
            )
        return self.refs[logical_id]

    def attribute(self, logical_id: str, name: str) -> Any:
        """What `!GetAtt logical_id.name` gives in this stack."""
        try:
            return self.attributes[logical_id][name]
        except KeyError:
            raise KeyError(f"no attribute {name} for {logical_id}") from None

    def arn(self, logical_id: str) -> str:
        """The ARN of a created resource (`!GetAtt logical_id.Arn`)."""
        return str(self.attribute(logical_id, "Arn"))

    def may_invoke(self, function_name: str, principal: str, source_arn: str) -> bool:
        """Whether a Lambda permission of the stack lets `principal` (a service, such as
        `apigateway.amazonaws.com`) invoke the function from `source_arn`."""
        function = next(
            (f for f in self.functions.values() if function_name in {f.name, f.arn}), None
        )
        names = {function.name, function.arn} if function else {function_name}
        return any(
            p.function_name in names and p.allows(principal, source_arn) for p in self.permissions
        )

    def close(self) -> None:
        """Stop running this stack's handlers in-process and restore os.environ."""
        for function in self.functions.values():
            if function.in_process:
                LocalAws.unregister_handler(function.name)
        for name, (_, owner) in list(_environment_owners.items()):
            if owner is self:
                del _environment_owners[name]
        for name, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environ.clear()
        self._aws = None


def deploy(
    aws: LocalAws,
    template: str | Path,
    *,
    parameters: Mapping[str, Any] | None = None,
    stack_name: str = "wanflow",
    handlers: Mapping[str, Handler] | None = None,
    environment: Mapping[str, str] | None = None,
) -> Stack:
    """Create the template's resources in `aws` and run its Python functions in-process.

    `parameters` override the template's defaults. `environment` is added to every function's
    (what Lambda's sandbox would provide and the local stack stands for: an extension's port).
    `handlers` maps a function's logical id to a callable that replaces its code (a fake); the
    others are imported from their CodeUri, each with its own environment, so module-level
    configuration reads it. Create-only: a second deploy of the same stack name into the same
    moto collides on names.
    """
    path = Path(template).resolve()
    body = transformed(path)
    resolver = Resolver.for_template(
        body,
        overrides=parameters or {},
        stack_name=stack_name,
        region=aws.region,
        account_id=aws.account_id,
    )
    stack = Stack(stack_name, path, aws.region, dict(resolver.parameter_values), _aws=aws)
    deployment = _Deployment(
        aws,
        body,
        resolver,
        stack,
        dict(handlers or {}),
        artifact_paths=artifacts(path),
        environment=dict(environment or {}),
    )
    deployment.run()
    logger.info(
        "stack deployed name=%s created=%d skipped=%d",
        stack_name,
        len(stack.types) - len(stack.skipped),
        len(stack.skipped),
    )
    return stack


_Creator = Callable[["_Deployment", str, dict[str, Any]], None]


class _Deployment:
    """One deploy: resolves, orders and creates resources, then wires the handlers."""

    def __init__(
        self,
        aws: LocalAws,
        template: dict[str, Any],
        resolver: Resolver,
        stack: Stack,
        handler_overrides: dict[str, Handler],
        *,
        artifact_paths: Mapping[str, Path],
        environment: dict[str, str],
    ) -> None:
        self.aws = aws
        self.sandbox_environment = environment
        self.artifact_paths = artifact_paths
        self.template = template
        self.resolver = resolver
        self.stack = stack
        self.handler_overrides = handler_overrides
        self.base_dir = stack.template_path.parent
        resolver.refs = stack.refs
        resolver.attributes = stack.attributes
        resolver.fallback_ref = self._placeholder_ref
        resolver.fallback_attribute = self._placeholder_attribute

    # -- orchestration

    def run(self) -> None:
        resources: dict[str, Any] = self.template.get("Resources", {})
        unknown_overrides = set(self.handler_overrides) - set(resources)
        if unknown_overrides:
            raise DeployError(f"handlers given for unknown functions: {sorted(unknown_overrides)}")
        properties = {
            logical_id: dict(resource.get("Properties") or {})
            for logical_id, resource in resources.items()
        }
        for logical_id in self._creation_order(resources, properties):
            resource = resources[logical_id]
            kind = str(resource.get("Type"))
            self.stack.types[logical_id] = kind
            condition = resource.get("Condition")
            if condition is not None and not self.resolver.condition(condition):
                self._skip(logical_id, f"condition {condition} is false")
                continue
            if kind.startswith("AWS::Serverless::"):
                raise DeployError(f"{logical_id}: {kind} left after the SAM transform")
            creator = _CREATORS.get(kind)
            if creator is None:
                self._skip(logical_id, f"{kind}: nothing to create locally")
                continue
            try:
                creator(self, logical_id, properties[logical_id])
            except (ClientError, TemplateError, OSError) as error:
                raise DeployError(f"cannot create {logical_id} ({kind}): {error}") from error
            if logical_id not in self.stack.skipped:
                logger.info("resource created logical_id=%s type=%s", logical_id, kind)
        self._apply_environment()
        self._wire_handlers()
        self._resolve_outputs()

    def _creation_order(
        self, resources: Mapping[str, Any], properties: Mapping[str, dict[str, Any]]
    ) -> list[str]:
        """Logical ids, each after everything it references or DependsOn (template order)."""
        dependencies: dict[str, set[str]] = {}
        for logical_id, resource in resources.items():
            depends_on = resource.get("DependsOn") or []
            names = {depends_on} if isinstance(depends_on, str) else set(depends_on)
            names |= self.resolver.references(properties[logical_id])
            dependencies[logical_id] = {name for name in names if name in resources}
        order: list[str] = []
        state: dict[str, str] = {}

        def visit(logical_id: str, path: tuple[str, ...]) -> None:
            if state.get(logical_id) == "done":
                return
            if state.get(logical_id) == "visiting":
                raise DeployError(f"circular dependency: {' -> '.join((*path, logical_id))}")
            state[logical_id] = "visiting"
            for dependency in sorted(dependencies[logical_id]):
                visit(dependency, (*path, logical_id))
            state[logical_id] = "done"
            order.append(logical_id)

        for logical_id in resources:
            visit(logical_id, ())
        return order

    def _skip(self, logical_id: str, reason: str) -> None:
        self.stack.skipped[logical_id] = reason
        logger.info("resource skipped logical_id=%s reason=%s", logical_id, reason)

    def _placeholder_ref(self, name: str) -> str:
        if name not in self.stack.skipped:
            raise TemplateError(f"Ref to {name!r}, which is no parameter or resource")
        self.stack.placeholders.add(f"Ref {name}")
        return name

    def _placeholder_attribute(self, logical_id: str, attribute: str) -> str:
        if logical_id not in self.stack.skipped:
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} is not available")
        self.stack.placeholders.add(f"GetAtt {logical_id}.{attribute}")
        return f"{logical_id}.{attribute}"

    def _record(self, logical_id: str, ref: Any, **attributes: Any) -> None:
        self.stack.refs[logical_id] = ref
        self.stack.attributes[logical_id] = {k: v for k, v in attributes.items() if v is not None}

    def _note_ignored(self, logical_id: str, props: Mapping[str, Any], handled: set[str]) -> None:
        ignored = sorted(set(props) - handled)
        if ignored:
            self.stack.notes.append(f"{logical_id}: ignored properties {', '.join(ignored)}")

    def physical_name(self, logical_id: str, *, max_length: int, suffix: str = "") -> str:
        """A deterministic name like CloudFormation's `<stack>-<LogicalId>` (no random tail)."""
        base = f"{self.stack.name}-{logical_id}"
        return base[: max_length - len(suffix)] + suffix

    # -- after the resources

    def _apply_environment(self) -> None:
        """Give each function its environment; set Powertools' settings into os.environ
        (they must not disagree between functions)."""
        for logical_id, function in list(self.stack.functions.items()):
            self.stack.functions[logical_id] = replace(
                function, lambda_environment=self._lambda_environment(function)
            )
        merged: dict[str, str] = {}
        origin: dict[str, str] = {}
        for function in self.stack.functions.values():
            for name, value in function.environment.items():
                if not _PROCESS_WIDE.match(name):
                    continue
                if name in merged and merged[name] != value:
                    raise DeployError(
                        f"environment variable {name} differs between functions "
                        f"{origin[name]} ({merged[name]!r}) and {function.logical_id} ({value!r}); "
                        "Powertools' settings are process-wide here: make them agree"
                    )
                merged[name] = value
                origin.setdefault(name, function.logical_id)
        for name, value in merged.items():
            owner = _environment_owners.get(name)
            if owner is not None and owner[0] != value and owner[1]._aws is self.aws:
                raise DeployError(
                    f"environment variable {name}={value!r} conflicts with stack "
                    f"{owner[1].name} ({owner[0]!r}), still open in this moto: close() it first"
                )
        for name, value in merged.items():
            self.stack._saved_environ.setdefault(name, os.environ.get(name))
            os.environ[name] = value
            _environment_owners[name] = (value, self.stack)
        self.stack.environment = merged

    def _lambda_environment(self, function: Function) -> dict[str, str]:
        """What Lambda sets in a function's environment (the names a handler may read)."""
        credentials = local_iam.role_credentials(
            self.aws.account_id, function.role_arn, function.name
        )
        local = {name: os.environ[name] for name in _LOCAL_ENDPOINTS if name in os.environ}
        return {
            **local,
            "AWS_REGION": self.aws.region,
            "AWS_DEFAULT_REGION": self.aws.region,
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            **self.sandbox_environment,
            **function.environment,
        }

    def _wire_handlers(self) -> None:
        """Register every Python function's handler (imported now that the env is set)."""
        for logical_id, function in list(self.stack.functions.items()):
            handler = self.handler_overrides.get(logical_id)
            if handler is None:
                if not function.runtime.startswith("python") or function.code_uri is None:
                    self.stack.notes.append(
                        f"{logical_id}: {function.runtime} code cannot run in-process; "
                        "moto echoes its payload"
                    )
                    continue
                handler = _import_handler(function, self.stack.name)
            LocalAws.register_handler(function.name, handler)
            self.stack.functions[logical_id] = _with_in_process(function)

    def _resolve_outputs(self) -> None:
        for name, output in (self.template.get("Outputs") or {}).items():
            condition = output.get("Condition")
            if condition is not None and not self.resolver.condition(condition):
                continue
            self.stack.outputs[name] = self.resolver.resolve(output.get("Value"))

    # -- resource creators (one per type; each records Ref and attributes)

    def create_table(self, logical_id: str, props: dict[str, Any]) -> None:
        """AWS::DynamoDB::Table, with TTL and point-in-time recovery when moto has them."""
        props = self.resolver.resolve(props)
        name = props.get("TableName") or self.physical_name(logical_id, max_length=255)
        args: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        for key in ("ProvisionedThroughput", "TableClass", "DeletionProtectionEnabled", "Tags"):
            if key in props:
                args[key] = props[key]
        if "GlobalSecondaryIndexes" in props:
            args["GlobalSecondaryIndexes"] = [
                _pick(index, "IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
                for index in props["GlobalSecondaryIndexes"]
            ]
        if "LocalSecondaryIndexes" in props:
            args["LocalSecondaryIndexes"] = [
                _pick(index, "IndexName", "KeySchema", "Projection")
                for index in props["LocalSecondaryIndexes"]
            ]
        stream = props.get("StreamSpecification")
        if stream:
            args["StreamSpecification"] = {"StreamEnabled": True, **_pick(stream, "StreamViewType")}
        sse = props.get("SSESpecification")
        if sse:
            args["SSESpecification"] = {
                "Enabled": bool(sse.get("SSEEnabled")),
                **_pick(sse, "SSEType", "KMSMasterKeyId"),
            }
        dynamodb = self.aws.client("dynamodb")
        table = dynamodb.create_table(**args)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={
                    "Enabled": bool(ttl.get("Enabled")),
                    "AttributeName": ttl["AttributeName"],
                },
            )
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr and pitr.get("PointInTimeRecoveryEnabled"):
            try:
                dynamodb.update_continuous_backups(
                    TableName=name,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                )
            except ClientError as error:
                self.stack.notes.append(f"{logical_id}: point-in-time recovery not set ({error})")
        handled = {*args, "TimeToLiveSpecification", "PointInTimeRecoverySpecification"}
        self._note_ignored(logical_id, props, handled)
        self._record(
            logical_id, name, Arn=table["TableArn"], StreamArn=table.get("LatestStreamArn")
        )

    def create_bucket(self, logical_id: str, props: dict[str, Any]) -> None:
        """AWS::S3::Bucket with versioning, CORS, lifecycle, encryption, public access block."""
        props = self.resolver.resolve(props)
        name = props.get("BucketName") or self.physical_name(logical_id, max_length=63).lower()
        s3 = self.aws.client("s3")
        if self.aws.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(
                Bucket=name,
                CreateBucketConfiguration={"LocationConstraint": self.aws.region},  # type: ignore[typeddict-item]
            )
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration=props["VersioningConfiguration"]
            )
        if "CorsConfiguration" in props:
            cors: Any = [_cors_rule(rule) for rule in props["CorsConfiguration"]["CorsRules"]]
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": cors})
        if "LifecycleConfiguration" in props:
            lifecycle: Any = [
                _lifecycle_rule(rule) for rule in props["LifecycleConfiguration"]["Rules"]
            ]
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": lifecycle}
            )
        if "BucketEncryption" in props:
            # CloudFormation says ServerSideEncryptionByDefault; the S3 API says Apply….
            renamed = {"ServerSideEncryptionByDefault": "ApplyServerSideEncryptionByDefault"}
            rules: list[Any] = [
                {renamed.get(k, k): v for k, v in rule.items()}
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(
                Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules}
            )
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if "OwnershipControls" in props:
            s3.put_bucket_ownership_controls(
                Bucket=name, OwnershipControls=props["OwnershipControls"]
            )
        if "Tags" in props:
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": props["Tags"]})
        for notification in (props.get("NotificationConfiguration") or {}).get(
            "LambdaConfigurations", []
        ):
            self._record_bucket_notification(logical_id, name, notification)
        handled = {
            "BucketName",
            "VersioningConfiguration",
            "CorsConfiguration",
            "LifecycleConfiguration",
            "BucketEncryption",
            "PublicAccessBlockConfiguration",
            "OwnershipControls",
            "Tags",
            "NotificationConfiguration",
        }
        self._note_ignored(logical_id, props, handled)
        region = self.aws.region
        self._record(
            logical_id,
            name,
            Arn=f"arn:aws:s3:::{name}",
            DomainName=f"{name}.s3.amazonaws.com",
            RegionalDomainName=f"{name}.s3.{region}.amazonaws.com",
            DualStackDomainName=f"{name}.s3.dualstack.{region}.amazonaws.com",
            WebsiteURL=f"http://{name}.s3-website-{region}.amazonaws.com",
        )

    def _record_bucket_notification(
        self, logical_id: str, bucket: str, notification: Mapping[str, Any]
    ) -> None:
        function_arn = str(notification.get("Function", ""))
        target = self._function_by_arn_or_name(function_arn)
        # S3 checks the destination when the notification is set: the function's policy must
        # let s3.amazonaws.com invoke it from this bucket, else the bucket is not created.
        if not self.stack.may_invoke(function_arn, "s3.amazonaws.com", f"arn:aws:s3:::{bucket}"):
            raise DeployError(
                f"{logical_id}: Unable to validate the following destination configurations "
                f"({function_arn}: no Lambda permission for s3.amazonaws.com from {bucket})"
            )
        self.stack.event_sources.append(
            EventSource(
                target=target.logical_id if target else "",
                target_name=target.name if target else function_arn,
                name=logical_id,
                type="S3",
                properties={"Bucket": bucket, **notification},
            )
        )

    def create_queue(self, logical_id: str, props: dict[str, Any]) -> None:
        """AWS::SQS::Queue; RedrivePolicy and RedriveAllowPolicy may be objects, as in CFN."""
        props = self.resolver.resolve(props)
        fifo = bool(props.get("FifoQueue"))
        name = props.get("QueueName") or self.physical_name(
            logical_id, max_length=80, suffix=".fifo" if fifo else ""
        )
        attributes: dict[str, str] = {}
        for key, value in props.items():
            if key in {"QueueName", "Tags"}:
                continue
            attributes[key] = json.dumps(value) if isinstance(value, dict) else as_text(value)
        tags = {tag["Key"]: tag["Value"] for tag in props.get("Tags", [])}
        sqs = self.aws.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attributes, tags=tags)["QueueUrl"]  # type: ignore[arg-type]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._record(logical_id, url, Arn=arn, QueueName=name, QueueUrl=url)

    def create_secret(self, logical_id: str, props: dict[str, Any]) -> None:
        """AWS::SecretsManager::Secret from SecretString or GenerateSecretString."""
        props = self.resolver.resolve(props)
        name = props.get("Name") or self.physical_name(logical_id, max_length=512)
        secretsmanager = self.aws.client("secretsmanager")
        if "SecretString" in props:
            secret_string = str(props["SecretString"])
        else:
            secret_string = self._generate_secret_string(props.get("GenerateSecretString") or {})
        args: dict[str, Any] = {"Name": name, "SecretString": secret_string}
        for key in ("Description", "KmsKeyId", "Tags"):
            if key in props:
                args[key] = props[key]
        arn = secretsmanager.create_secret(**args)["ARN"]
        self._note_ignored(logical_id, props, {*args, "GenerateSecretString"})
        self._record(logical_id, arn, Id=arn)

    def _generate_secret_string(self, spec: Mapping[str, Any]) -> str:
        """What CloudFormation generates: a password, alone or under a key of a JSON template."""
        options = {
            key: spec[key]
            for key in (
                "PasswordLength",
                "ExcludeCharacters",
                "ExcludeNumbers",
                "ExcludePunctuation",
                "ExcludeUppercase",
                "ExcludeLowercase",
                "IncludeSpace",
                "RequireEachIncludedType",
            )
            if key in spec
        }
        password = self.aws.client("secretsmanager").get_random_password(**options)[
            "RandomPassword"
        ]
        if "SecretStringTemplate" in spec and "GenerateStringKey" in spec:
            document = json.loads(spec["SecretStringTemplate"])
            document[spec["GenerateStringKey"]] = password
            return json.dumps(document)
        return password

    def create_role(self, logical_id: str, props: dict[str, Any]) -> None:
        """AWS::IAM::Role with its inline policies (moto enforces none of them unless its
        access control is turned on; see NOTES)."""
        props = self.resolver.resolve(props)
        name = props.get("RoleName") or self.physical_name(logical_id, max_length=64)
        args: dict[str, Any] = {
            "RoleName": name,
            "AssumeRolePolicyDocument": json.dumps(props["AssumeRolePolicyDocument"]),
        }
        for key in ("Path", "Description", "MaxSessionDuration", "PermissionsBoundary"):
            if key in props:
                args[key] = props[key]
        if "Tags" in props:
            args["Tags"] = props["Tags"]
        iam = self.aws.client("iam")
        role = iam.create_role(**args)["Role"]
        for policy in props.get("Policies") or []:
            # SAM's policy templates (LambdaInvokePolicy…) carry no Version: IAM takes such a
            # document as version 2008-10-17 (the same but for policy variables, which they do
            # not use); moto refuses it, so it gets the current version here.
            document = {"Version": "2012-10-17", **policy["PolicyDocument"]}
            iam.put_role_policy(
                RoleName=name,
                PolicyName=str(policy["PolicyName"]),
                PolicyDocument=json.dumps(document),
            )
        for arn in props.get("ManagedPolicyArns") or []:
            # SAM's execution roles attach AWS managed policies (AWSLambdaBasicExecutionRole…),
            # which exist in every account.
            local_iam.ensure_managed_policy(self.aws.account_id, str(arn))
            iam.attach_role_policy(RoleName=name, PolicyArn=str(arn))
        self._note_ignored(logical_id, props, {*args, "Policies", "ManagedPolicyArns"})
        self._record(logical_id, name, Arn=role["Arn"], RoleId=role["RoleId"])

    def create_function(self, logical_id: str, props: dict[str, Any]) -> None:
        """AWS::Lambda::Function with its own role; its Python code runs in-process."""
        props = self.resolver.resolve(props)
        name = props.get("FunctionName") or self.physical_name(logical_id, max_length=64)
        runtime = str(props.get("Runtime") or DEFAULT_RUNTIME)
        timeout = int(props.get("Timeout", 3))
        memory_size = int(props.get("MemorySize", 128))
        handler = str(props.get("Handler", ""))
        variables = (props.get("Environment") or {}).get("Variables") or {}
        environment = {key: as_text(value) for key, value in variables.items()}
        reserved = sorted(set(environment) & _RESERVED_ENV)
        if reserved:
            raise DeployError(f"{logical_id}: reserved environment variables {reserved}")
        role = str(props.get("Role") or "")
        if not role:
            raise DeployError(f"{logical_id}: a Lambda function needs a Role")
        created = self.aws.client("lambda").create_function(
            FunctionName=name,
            Runtime=runtime,
            Role=role,  # moto checks that it exists, as Lambda does
            Handler=handler or "index.handler",
            Code={"ZipFile": _dummy_zip()},
            Timeout=timeout,
            MemorySize=memory_size,
            Environment={"Variables": environment},
        )
        arn = str(created["FunctionArn"])
        code = self._artifact(props.get("Code"), "S3Key")
        self.stack.functions[logical_id] = Function(
            logical_id,
            name,
            arn,
            handler,
            code,
            runtime,
            timeout,
            memory_size,
            environment,
            role_arn=role,
        )
        handled = {
            "FunctionName",
            "Runtime",
            "Handler",
            "Timeout",
            "MemorySize",
            "Environment",
            "Role",
            "Code",
            "Layers",
            "TracingConfig",
            "Description",
            "Architectures",
            "Tags",
        }
        self._note_ignored(logical_id, props, handled)
        self._record(logical_id, name, Arn=arn)

    def _artifact(self, location: Any, key: str) -> Path | None:
        """The local path behind a `sam package` placeholder location (`{S3Bucket, S3Key}`)."""
        if not isinstance(location, Mapping) or key not in location:
            return None
        return self.artifact_paths.get(Path(str(location[key])).stem)

    def record_permission(self, logical_id: str, props: dict[str, Any]) -> None:
        """AWS::Lambda::Permission: kept for the services the local stack plays (see docstring)."""
        props = self.resolver.resolve(props)
        source = props.get("SourceArn")
        self.stack.permissions.append(
            Permission(
                function_name=str(props["FunctionName"]),
                principal=str(props["Principal"]),
                source_arn=None if source is None else str(source),
                action=str(props.get("Action", "lambda:InvokeFunction")),
            )
        )
        self._record(logical_id, logical_id)
        self._skip(logical_id, "Lambda permission: checked by the local stack's API and S3")

    def create_rest_api(self, logical_id: str, props: dict[str, Any]) -> None:
        """AWS::ApiGateway::RestApi from its OpenAPI body: served by `apigw.ApiGateway`."""
        props = self.resolver.resolve(props)
        body = props.get("Body")
        if not isinstance(body, dict):
            raise DeployError(f"{logical_id}: only a REST API with an inline Body is served here")
        digest = hashlib.sha256(f"{self.stack.name}/{logical_id}".encode()).hexdigest()
        api_id = "".join(c for c in digest if c.isalpha() or c.isdigit())[:10]
        self.stack.apis[logical_id] = RestApi(logical_id, api_id, body)
        for path, operations in (body.get("paths") or {}).items():
            for method, operation in operations.items():
                self._record_route(logical_id, path, method, operation)
        self._record(logical_id, api_id, RootResourceId=f"{api_id}-root")
        self._skip(logical_id, "REST API: served by the local API Gateway adapter")

    def _record_route(self, api: str, path: str, method: str, operation: Mapping[str, Any]) -> None:
        integration = operation.get("x-amazon-apigateway-integration") or {}
        if integration.get("type") != "aws_proxy":
            raise DeployError(f"{api} {method.upper()} {path}: only Lambda proxy integrations")
        function = self._function_by_arn_or_name(_function_arn_of(str(integration.get("uri"))))
        if function is None:
            raise DeployError(f"{api} {method.upper()} {path}: integration is no function")
        security = operation.get("security") or [{}]
        names = [name for requirement in security for name in requirement]
        self.stack.event_sources.append(
            EventSource(
                target=function.logical_id,
                target_name=function.name,
                name=f"{method.upper()} {path}",
                type="Api",
                properties={
                    "Path": path,
                    "Method": method,
                    "RestApiId": api,
                    "Auth": {"Authorizer": names[0] if names else "NONE"},
                },
            )
        )

    def record_stage(self, logical_id: str, props: dict[str, Any]) -> None:
        """AWS::ApiGateway::Stage: the stage name the API is served under."""
        props = self.resolver.resolve(props)
        api = next((a for a in self.stack.apis.values() if a.id == props.get("RestApiId")), None)
        if api is None:
            raise DeployError(f"{logical_id}: stage of no REST API of this stack")
        stage = str(props["StageName"])
        self.stack.apis[api.logical_id] = replace(api, stages=(*api.stages, stage))
        self._record(logical_id, stage)
        self._skip(logical_id, "API stage: served by the local API Gateway adapter")

    def create_event_source_mapping(self, logical_id: str, props: dict[str, Any]) -> None:
        """AWS::Lambda::EventSourceMapping: recorded, not created (see module docstring)."""
        props = self.resolver.resolve(props)
        source = str(props.get("EventSourceArn", ""))
        target = self._function_by_arn_or_name(str(props.get("FunctionName", "")))
        service = source.split(":")[2] if source.count(":") >= 2 else ""
        self.stack.event_sources.append(
            EventSource(
                target=target.logical_id if target else "",
                target_name=target.name if target else str(props.get("FunctionName")),
                name=logical_id,
                type={"sqs": "SQS", "dynamodb": "DynamoDB", "kinesis": "Kinesis"}.get(
                    service, service
                ),
                properties=props,
            )
        )
        self._skip(logical_id, "event source mapping: recorded in event_sources")

    def create_state_machine(self, logical_id: str, props: dict[str, Any]) -> None:
        """AWS::StepFunctions::StateMachine with its role."""
        substitutions = {
            key: as_text(value)
            for key, value in (
                self.resolver.resolve(props.get("DefinitionSubstitutions")) or {}
            ).items()
        }
        definition = self._definition(logical_id, props)
        definition = _substitute(definition, substitutions, logical_id)
        check_transitions(definition, logical_id)
        name = self.resolver.resolve(props.get("StateMachineName")) or self.physical_name(
            logical_id, max_length=80
        )
        kind: Any = props.get("StateMachineType") or "STANDARD"
        role = self.resolver.resolve(props.get("RoleArn"))
        if not role:
            raise DeployError(f"{logical_id}: a state machine needs a RoleArn")
        created = self.aws.client("stepfunctions").create_state_machine(
            name=name,
            definition=json.dumps(definition),
            roleArn=str(role),
            type=kind,
        )
        arn = created["stateMachineArn"]
        handled = {
            "Definition",
            "DefinitionS3Location",
            "DefinitionString",
            "DefinitionSubstitutions",
            "StateMachineName",
            "StateMachineType",
            "RoleArn",
            "Tags",
        }
        self._note_ignored(logical_id, props, handled)
        self._record(logical_id, arn, Arn=arn, Name=name)

    def _definition(self, logical_id: str, props: Mapping[str, Any]) -> Any:
        """The ASL document from Definition, DefinitionString or DefinitionUri."""
        if "Definition" in props:
            return self.resolver.resolve(props["Definition"])
        if "DefinitionString" in props:
            return json.loads(self.resolver.resolve(props["DefinitionString"]))
        path = self._artifact(props.get("DefinitionS3Location"), "Key")
        if path is not None:
            return load_document(path)
        raise DeployError(
            f"{logical_id}: needs Definition, DefinitionString or a local DefinitionUri"
        )

    def record_layer(self, logical_id: str, props: dict[str, Any]) -> None:
        """Layers need nothing: their code (shared/) is importable in this process."""
        name = self.resolver.resolve(props.get("LayerName")) or logical_id
        arn = f"arn:aws:lambda:{self.aws.region}:{self.aws.account_id}:layer:{name}:1"
        self._record(logical_id, arn, Arn=arn)
        self._skip(logical_id, "layer: its code is importable in-process")

    def _function_by_arn_or_name(self, value: str) -> Function | None:
        return next(
            (f for f in self.stack.functions.values() if value in {f.arn, f.name}),
            None,
        )


_CREATORS: Final[dict[str, _Creator]] = {
    "AWS::DynamoDB::Table": _Deployment.create_table,
    "AWS::S3::Bucket": _Deployment.create_bucket,
    "AWS::SQS::Queue": _Deployment.create_queue,
    "AWS::SecretsManager::Secret": _Deployment.create_secret,
    "AWS::IAM::Role": _Deployment.create_role,
    "AWS::Lambda::Function": _Deployment.create_function,
    "AWS::Lambda::Permission": _Deployment.record_permission,
    "AWS::Lambda::EventSourceMapping": _Deployment.create_event_source_mapping,
    "AWS::StepFunctions::StateMachine": _Deployment.create_state_machine,
    "AWS::Lambda::LayerVersion": _Deployment.record_layer,
    "AWS::ApiGateway::RestApi": _Deployment.create_rest_api,
    "AWS::ApiGateway::Stage": _Deployment.record_stage,
}


# --- helpers ---------------------------------------------------------------------------------


@cache
def _dummy_zip() -> bytes:
    """moto needs a zip to create a function; the code it would hold runs in-process instead."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "code runs in-process via wanflow_local.aws\n")
    return buffer.getvalue()


def _import_handler(function: Function, stack_name: str) -> Handler:
    """Load `<CodeUri>/<module>.py` under a unique module name and return its handler."""
    module_path, _, attribute = function.handler.rpartition(".")
    if not module_path or function.code_uri is None:
        raise DeployError(f"{function.logical_id}: Handler {function.handler!r} is not module.name")
    source = function.code_uri / (module_path.replace(".", "/") + ".py")
    if not source.is_file():
        raise DeployError(f"{function.logical_id}: handler module {source} does not exist")
    # Every function has its own app.py: a shared name would hand one function another's code.
    unique = re.sub(r"\W", "_", f"{stack_name}__{function.logical_id}__{module_path}")
    module_name = f"_wanflow_function_{unique}"
    spec = importlib.util.spec_from_file_location(module_name, source)
    if spec is None or spec.loader is None:
        raise DeployError(f"{function.logical_id}: cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # Initialised as on Lambda, with its own environment (see the module docstring), never
    # another function's.
    from wanflow.runtime import function_environ

    try:
        with function_environ(function.lambda_environment):
            spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[module_name]
        # A failed init is Lambda's too: the function exists, and every invocation fails with it.
        logger.error("function init failed logical_id=%s error=%r", function.logical_id, error)
        failure = error

        def init_failed(event: Any, context: Any) -> Any:
            raise failure

        return init_failed
    handler = getattr(module, attribute, None)
    if not callable(handler):
        raise DeployError(f"{function.logical_id}: {source} has no callable {attribute!r}")
    return handler  # type: ignore[no-any-return]


def _with_in_process(function: Function) -> Function:
    return replace(function, in_process=True)


def _function_arn_of(uri: str) -> str:
    """The function ARN in an API Gateway Lambda integration URI
    (`arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/ARN/invocations`)."""
    match = re.search(r"/functions/(.+)/invocations$", uri)
    return match.group(1) if match else uri


def _substitute(definition: Any, substitutions: Mapping[str, str], logical_id: str) -> Any:
    """Apply DefinitionSubstitutions to every string; an unknown `${name}` is an error."""
    if isinstance(definition, dict):
        return {
            _substitute(key, substitutions, logical_id): _substitute(
                value, substitutions, logical_id
            )
            for key, value in definition.items()
        }
    if isinstance(definition, list):
        return [_substitute(item, substitutions, logical_id) for item in definition]
    if not isinstance(definition, str):
        return definition

    def replace(match: re.Match[str]) -> str:
        if match.group(1) not in substitutions:
            raise DeployError(
                f"{logical_id}: definition uses ${{{match.group(1)}}}, "
                "which DefinitionSubstitutions does not define"
            )
        return substitutions[match.group(1)]

    return _SUBSTITUTION.sub(replace, definition)


def _targets(state: Mapping[str, Any]) -> list[str]:
    return [
        target
        for target in (
            state.get("Next"),
            state.get("Default"),
            *(rule.get("Next") for rule in state.get("Choices", [])),
            *(catcher.get("Next") for catcher in state.get("Catch", [])),
        )
        if target is not None
    ]


def check_transitions(definition: Mapping[str, Any], where: str) -> None:
    """Refuse a transition to a state that does not exist, and a state nothing reaches.

    moto accepts such a definition and fails only when an execution gets there.
    """
    states: Mapping[str, Any] = definition.get("States") or {}
    if definition.get("StartAt") not in states:
        raise DeployError(f"{where}: StartAt {definition.get('StartAt')!r} is not a state")
    reached, todo = set(), [str(definition["StartAt"])]
    while todo:
        name = todo.pop()
        if name in reached or name not in states:
            continue
        reached.add(name)
        todo.extend(_targets(states[name]))
    unreached = sorted(set(states) - reached)
    if unreached:
        raise DeployError(f"{where}: no transition reaches {', '.join(unreached)}")
    for name, state in states.items():
        for target in _targets(state):
            if target not in states:
                raise DeployError(f"{where}: state {name} goes to {target!r}, which is no state")
        terminal = state.get("Type") in {"Choice", "Succeed", "Fail"} or state.get("End")
        if not terminal and "Next" not in state:
            raise DeployError(f"{where}: state {name} has neither Next nor End")
        for index, branch in enumerate(state.get("Branches", [])):
            check_transitions(branch, f"{where}/{name}/branch {index}")
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            check_transitions(processor, f"{where}/{name}")


def _pick(source: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {key: source[key] for key in keys if key in source}


def _cors_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation CorsRule in the S3 API's shape (Id → ID, MaxAge → MaxAgeSeconds)."""
    converted = _pick(rule, "AllowedHeaders", "AllowedMethods", "AllowedOrigins", "ExposedHeaders")
    if "Id" in rule:
        converted["ID"] = rule["Id"]
    if "MaxAge" in rule:
        converted["MaxAgeSeconds"] = int(rule["MaxAge"])
    return converted


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle Rule in the S3 API's shape (the common fields)."""
    converted: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
    if "Id" in rule:
        converted["ID"] = rule["Id"]
    converted["Filter"] = {"Prefix": rule.get("Prefix", "")}
    expiration: dict[str, Any] = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = int(rule["ExpirationInDays"])
    if "ExpirationDate" in rule:
        expiration["Date"] = rule["ExpirationDate"]
    if "ExpiredObjectDeleteMarker" in rule:
        expiration["ExpiredObjectDeleteMarker"] = bool(rule["ExpiredObjectDeleteMarker"])
    if expiration:
        converted["Expiration"] = expiration
    if "NoncurrentVersionExpirationInDays" in rule:
        converted["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])
        }
    if "NoncurrentVersionExpiration" in rule:
        converted["NoncurrentVersionExpiration"] = rule["NoncurrentVersionExpiration"]
    if "AbortIncompleteMultipartUpload" in rule:
        converted["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    if "Transitions" in rule:
        converted["Transitions"] = [
            {
                "StorageClass": transition["StorageClass"],
                **(
                    {"Days": int(transition["TransitionInDays"])}
                    if "TransitionInDays" in transition
                    else {"Date": transition["TransitionDate"]}
                ),
            }
            for transition in rule["Transitions"]
        ]
    return converted
