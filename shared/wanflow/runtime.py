"""Production wiring: one `Runtime` per function, built from that function's own environment,
each collaborator built on first use and kept for the life of the container.

A function's module builds its runtime at init (`Runtime.from_environ(init_environ())`), which
checks the configuration at once: a variable missing from the function's `Environment` fails
its init, as it would on Lambda. Nothing talks to AWS at init: boto3 is imported when a client
is first needed, and each service module when its collaborator is first built.

The boto3 session and every client take the credentials, region and endpoints of that
environment alone (`AWS_ENDPOINT_URL[_<SERVICE>]`: how the local stack points the clients at
moto), never os.environ's: the local stack runs every function in one process, each with its
own environment (`function_environ`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property, partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

    from wanflow.callbacks import CallbackReceiver
    from wanflow.cancellation import Canceller
    from wanflow.client_webhooks.deliverer import Deliverer
    from wanflow.client_webhooks.queue import Notifications
    from wanflow.config import Config
    from wanflow.following import Follower
    from wanflow.lifecycle import Lifecycle
    from wanflow.secret_cache import SecretCache
    from wanflow.store import TaskStore
    from wanflow.submission import Submitter
    from wanflow.tenants import Tenants
    from wanflow.uploads import ImageUrls, UploadIntake
    from wanflow.upstream import UpstreamClient

_function_environ: ContextVar[Mapping[str, str] | None] = ContextVar(
    "wanflow_function_environ", default=None
)

#: The `AWS_ENDPOINT_URL_<SERVICE>` suffix of a client name, where it is not the name in
#: capitals (botocore's rule: the service id, spaces as underscores).
_ENDPOINT_SUFFIX = {"stepfunctions": "SFN", "secretsmanager": "SECRETS_MANAGER"}


def init_environ() -> Mapping[str, str]:
    """The environment a function is initialised with: os.environ on Lambda; in the local
    stack, which runs every function in one process, the one `function_environ` gives it."""
    given = _function_environ.get()
    return os.environ if given is None else given


@contextmanager
def function_environ(environ: Mapping[str, str]) -> Iterator[None]:
    """Make `environ` what `init_environ()` gives inside (this thread or task only)."""
    token = _function_environ.set(dict(environ))
    try:
        yield
    finally:
        _function_environ.reset(token)


class Runtime:
    """A function's collaborators, built from its own environment, each once and on first use.

    A new Runtime is a new set of clients: nothing is shared with another one.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = dict(environ)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Runtime:
        """A Runtime whose configuration is checked now: ConfigError names what is missing."""
        runtime = cls(environ)
        _ = runtime.config
        return runtime

    @property
    def environ(self) -> Mapping[str, str]:
        """The environment this runtime was built from (its own copy, read-only)."""
        return MappingProxyType(self._environ)

    @cached_property
    def config(self) -> Config:
        """Settings from the environment (fails fast when one is missing)."""
        from wanflow.config import Config

        return Config.from_env(self._environ)

    @cached_property
    def session(self) -> boto3.Session:
        """One boto3 session for every client (each new session costs cold-start time), with
        the environment's credentials and region: never another function's, nor a profile's."""
        import boto3

        from wanflow.config import ConfigError

        env = self._environ
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        for name, value in (
            ("AWS_ACCESS_KEY_ID", env.get("AWS_ACCESS_KEY_ID")),
            ("AWS_SECRET_ACCESS_KEY", env.get("AWS_SECRET_ACCESS_KEY")),
            ("AWS_REGION", region),
        ):
            if not value:
                raise ConfigError(f"environment variable {name} is required and is not set")
        return boto3.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
            region_name=region,
        )

    def _endpoint_url(self, name: str) -> str | None:
        suffix = _ENDPOINT_SUFFIX.get(name, name.upper())
        env = self._environ
        return env.get(f"AWS_ENDPOINT_URL_{suffix}") or env.get("AWS_ENDPOINT_URL") or None

    def client(self, name: str, *, config: Any = None, **kwargs: Any) -> Any:
        """A new client of the session, at the environment's endpoint for it (AWS's otherwise).

        botocore would take an endpoint from os.environ or a config file too: it is told not
        to, so the environment given is the whole story.
        """
        from botocore.config import Config as BotoConfig

        # botocore has the option (the layer pins 1.44); its type stubs lack it.
        own = BotoConfig(ignore_configured_endpoint_urls=True)  # type: ignore[call-arg]
        return self.session.client(  # type: ignore[call-overload]
            name,
            endpoint_url=self._endpoint_url(name),
            config=own if config is None else own.merge(config),
            **kwargs,
        )

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        """The DynamoDB client, raising StoreUnavailable for throttling, service and connection
        errors (store.translate_errors) whichever module calls it."""
        from wanflow.store import translate_errors

        client: DynamoDBClient = self.client("dynamodb")
        return translate_errors(client)

    def _s3_config(self) -> Any:
        from botocore.config import Config as BotoConfig

        # SigV4 always: botocore presigns with SigV2 where the region still allows it, which
        # leaves the uploads' `If-None-Match` unsigned and is refused by buckets that require
        # SigV4 (and by SSE-KMS). Virtual-host addressing on AWS (path style is deprecated
        # there); the local stack points boto3 at moto on http://127.0.0.1:PORT, where
        # `bucket.127.0.0.1` cannot resolve, so an explicit endpoint keeps path style.
        local = self._endpoint_url("s3")
        return BotoConfig(
            signature_version="s3v4", s3={"addressing_style": "path" if local else "virtual"}
        )

    @cached_property
    def s3(self) -> S3Client:
        """The S3 client: SigV4, virtual-host addressing on AWS (every presigned URL is SigV4)."""
        client: S3Client = self.client("s3", config=self._s3_config())
        return client

    def s3_with(self, credentials: Mapping[str, Any]) -> S3Client:
        """A new S3 client like `s3` signing with other credentials (an STS `Credentials`
        dict)."""
        client: S3Client = self.client(
            "s3",
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            config=self._s3_config(),
        )
        return client

    @cached_property
    def image_urls(self) -> ImageUrls:
        """Signs the uploaded images' URLs handed to the upstream. STS is reached only on the
        first URL signed (never on init, nor on requests that sign none)."""
        from wanflow.uploads import ImageUrls

        return ImageUrls(
            own=self.s3,
            role_arn=self.config.image_reader_role_arn,
            sts=partial(self.client, "sts"),
            client_with=self.s3_with,
        )

    @cached_property
    def sfn(self) -> SFNClient:
        """The Step Functions client."""
        client: SFNClient = self.client("stepfunctions")
        return client

    @cached_property
    def sqs(self) -> SQSClient:
        """The SQS client."""
        client: SQSClient = self.client("sqs")
        return client

    @cached_property
    def secrets(self) -> SecretsManagerClient:
        """The Secrets Manager client."""
        client: SecretsManagerClient = self.client("secretsmanager")
        return client

    def _from_manager(self, arn: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        from wanflow.secret_cache import SecretUnavailable

        try:
            return self.secrets.get_secret_value(SecretId=arn)["SecretString"]
        except (BotoCoreError, ClientError) as exc:
            raise SecretUnavailable(f"Secrets Manager did not give {arn}: {exc}") from exc

    @cached_property
    def secret_cache(self) -> SecretCache:
        """Where every secret is held, for a bounded time (secret_cache.SecretCache): read through
        the Parameters and Secrets extension when the function has it (no boto3 needed), else
        with the Secrets Manager client."""
        from wanflow.secret_cache import SecretCache, read_secret

        cfg = self.config
        if cfg.secrets_via_extension:
            return SecretCache(
                partial(read_secret, env=self._environ),
                extension_ttl_s=cfg.secrets_extension_ttl_s,
            )
        return SecretCache(self._from_manager)

    def secret(self, arn: str) -> str:
        """A secret's value, read again once it is a few minutes old (secret_cache.CACHE_TTL_S)."""
        return self.secret_cache.get(arn)

    def reread_secret(self, arn: str, failed: str, *, past_extension: bool = False) -> str | None:
        """The secret's value to try again with after `failed` was refused; None if there is
        none (unchanged, or read too recently to read again). `past_extension` asks Secrets
        Manager itself rather than the extension, whose cache may still hold the old value for
        minutes: only for a function that has boto3 loaded anyway."""
        via_extension = self.config.secrets_via_extension
        fresh = self._from_manager if past_extension and via_extension else None
        return self.secret_cache.reread(arn, failed, fresh)

    @cached_property
    def store(self) -> TaskStore:
        """The task store."""
        from wanflow.store import TaskStore

        return TaskStore(self.config.table_name, self.dynamodb)

    @cached_property
    def upstream(self) -> UpstreamClient:
        """The upstream client, with its key from Secrets Manager."""
        import httpx

        from wanflow.upstream import DEFAULT_TIMEOUT, UpstreamClient

        cfg = self.config
        timeout = httpx.Timeout(
            connect=DEFAULT_TIMEOUT.connect,
            read=cfg.upstream_read_timeout_s,
            write=DEFAULT_TIMEOUT.write,
            pool=DEFAULT_TIMEOUT.pool,
        )
        arn = cfg.upstream_key_secret_arn
        # The key as the cache holds it, before every request; after a 401, read at once past
        # the extension (every function that calls the upstream loads boto3 anyway).
        return UpstreamClient(
            cfg.upstream_base_url,
            partial(self.secret, arn),
            reread_key=partial(self.reread_secret, arn, past_extension=True),
            timeout=timeout,
        )

    @cached_property
    def lifecycle(self) -> Lifecycle:
        """The lifecycle steps."""
        from wanflow.lifecycle import Lifecycle

        return Lifecycle(self.config, self.store, self.upstream, self.s3, self.notifications)

    @cached_property
    def follower(self) -> Follower:
        """The callback wait and the poll loop's look, around the lifecycle steps."""
        from wanflow.following import Follower

        return Follower(self.config, self.lifecycle, self.sfn)

    @cached_property
    def submitter(self) -> Submitter:
        """The submit logic."""
        from wanflow.submission import Submitter

        cfg = self.config
        return Submitter(
            cfg,
            self.store,
            self.upstream,
            self.sfn,
            partial(self.secret, cfg.callback_secret_arn),
            notifications=self.notifications,
        )

    def _submitter(self) -> Submitter:
        return self.submitter

    def _image_urls(self) -> ImageUrls:
        return self.image_urls

    @cached_property
    def uploads(self) -> UploadIntake:
        """The intake of uploaded images."""
        from wanflow.uploads import PendingUploads, UploadIntake

        cfg = self.config
        # The submitter is passed as its getter: the API function only grants uploads, and
        # cannot read the callback secret a Submitter needs.
        return UploadIntake(
            self._submitter,
            self.s3,
            cfg.bucket_name,
            PendingUploads(cfg.table_name, self.dynamodb),
            self._image_urls,
            allow_http_webhooks=cfg.allow_http_callbacks,
        )

    def _store(self) -> TaskStore:
        return self.store

    def _sfn(self) -> SFNClient:
        return self.sfn

    @cached_property
    def callback_receiver(self) -> CallbackReceiver:
        """The upstream callback receiver. It gets the store and Step Functions as getters: a
        forged callback is turned away with the secret alone, before any boto3 client is built
        (so after a mismatch the secret is read again through the extension only, never past
        it)."""
        from wanflow.callbacks import CallbackReceiver

        arn = self.config.callback_secret_arn
        return CallbackReceiver(
            partial(self.secret, arn),
            self._store,
            self._sfn,
            reread_secret=partial(self.reread_secret, arn),
        )

    @cached_property
    def tenants(self) -> Tenants:
        """Tenants, their API keys (hashed) and webhook secrets."""
        from wanflow.tenants import Tenants

        return Tenants(self.config.table_name, self.dynamodb)

    @cached_property
    def notifications(self) -> Notifications:
        """The producer of client webhook events (onto the notify queue)."""
        from wanflow.client_webhooks.queue import Notifications

        return Notifications(self.config, self.sqs)

    @cached_property
    def deliverer(self) -> Deliverer:
        """The consumer of the notify queue: signs and posts client webhooks, retries, logs."""
        from wanflow.client_webhooks.deliverer import Deliverer

        return Deliverer(self.config, self.store, self.tenants, self.s3, self.sqs)

    @cached_property
    def canceller(self) -> Canceller:
        """Cancels tasks on a client's request."""
        from wanflow.cancellation import Canceller

        return Canceller(self.config, self.store, self.upstream, self.sfn, self.notifications)
