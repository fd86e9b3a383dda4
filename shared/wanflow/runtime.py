"""Production wiring: each collaborator built once per Lambda container, on first use.

Nothing here runs at import. boto3 reads `AWS_ENDPOINT_URL` like any AWS SDK, which is how the
local stack points every client at moto.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache, partial
from typing import TYPE_CHECKING, Any

from wanflow.config import Config

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

    from wanflow.callbacks import CallbackReceiver
    from wanflow.cancellation import Canceller
    from wanflow.following import Follower
    from wanflow.lifecycle import Lifecycle
    from wanflow.secretsext import SecretCache
    from wanflow.store import TaskStore
    from wanflow.submission import Submitter
    from wanflow.tenants import Tenants
    from wanflow.uploads import ImageUrls, UploadIntake
    from wanflow.upstream import UpstreamClient
    from wanflow.webhooks import Deliverer, Notifications


@cache
def config() -> Config:
    """Settings from the environment (fails fast when one is missing)."""
    return Config.from_env()


@cache
def session() -> boto3.Session:
    """One boto3 session for every client (each new session costs cold-start time)."""
    import boto3

    return boto3.Session()


def _client(name: str) -> Any:
    return session().client(name)  # type: ignore[call-overload]


@cache
def dynamodb() -> DynamoDBClient:
    """The DynamoDB client, raising StoreUnavailable for throttling, service and connection
    errors (store.translate_errors) whichever module calls it."""
    from wanflow.store import translate_errors

    client: DynamoDBClient = _client("dynamodb")
    return translate_errors(client)


def _s3_config() -> Any:
    from botocore.config import Config as BotoConfig

    # SigV4 always: botocore presigns with SigV2 where the region still allows it, which leaves
    # the uploads' `If-None-Match` unsigned and is refused by buckets that require SigV4 (and
    # by SSE-KMS). Virtual-host addressing on AWS (path style is deprecated there); the local
    # stack points boto3 at moto on http://127.0.0.1:PORT, where `bucket.127.0.0.1` cannot
    # resolve, so an explicit endpoint keeps path style.
    local = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return BotoConfig(
        signature_version="s3v4", s3={"addressing_style": "path" if local else "virtual"}
    )


@cache
def s3() -> S3Client:
    """The S3 client: SigV4, virtual-host addressing on AWS (every presigned URL is SigV4)."""
    client: S3Client = session().client("s3", config=_s3_config())
    return client


def s3_with(credentials: Mapping[str, Any]) -> S3Client:
    """An S3 client like `s3()` signing with other credentials (an STS `Credentials` dict)."""
    client: S3Client = session().client(
        "s3",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=_s3_config(),
    )
    return client


@cache
def image_urls() -> ImageUrls:
    """Signs the uploaded images' URLs handed to the upstream. STS is reached only on the first
    URL signed (never on import, nor on requests that sign none)."""
    from wanflow.uploads import ImageUrls

    return ImageUrls(
        own=s3(),
        role_arn=config().image_reader_role_arn,
        sts=partial(_client, "sts"),
        client_with=s3_with,
    )


@cache
def sfn() -> SFNClient:
    """The Step Functions client."""
    client: SFNClient = _client("stepfunctions")
    return client


@cache
def sqs() -> SQSClient:
    """The SQS client."""
    client: SQSClient = _client("sqs")
    return client


@cache
def secrets() -> SecretsManagerClient:
    """The Secrets Manager client."""
    client: SecretsManagerClient = _client("secretsmanager")
    return client


def _from_manager(arn: str) -> str:
    return secrets().get_secret_value(SecretId=arn)["SecretString"]


@cache
def secret_cache() -> SecretCache:
    """Where every secret is held, for a bounded time (secretsext.SecretCache): read through
    the Parameters and Secrets extension when the function has it (no boto3 needed), else
    with the Secrets Manager client."""
    from wanflow.secretsext import SecretCache, read_secret

    cfg = config()
    if cfg.secrets_via_extension:
        return SecretCache(read_secret, extension_ttl_s=cfg.secrets_extension_ttl_s)
    return SecretCache(_from_manager)


def secret(arn: str) -> str:
    """A secret's value, read again once it is a few minutes old (secretsext.CACHE_TTL_S)."""
    return secret_cache().get(arn)


def reread_secret(arn: str, failed: str, *, past_extension: bool = False) -> str | None:
    """The secret's value to try again with after `failed` was refused; None if there is none
    (unchanged, or read too recently to read again). `past_extension` asks Secrets Manager
    itself rather than the extension, whose cache may still hold the old value for minutes:
    only for a function that has boto3 loaded anyway."""
    fresh = _from_manager if past_extension and config().secrets_via_extension else None
    return secret_cache().reread(arn, failed, fresh)


@cache
def store() -> TaskStore:
    """The task store."""
    from wanflow.store import TaskStore

    return TaskStore(config().table_name, dynamodb())


@cache
def upstream() -> UpstreamClient:
    """The upstream client, with its key from Secrets Manager."""
    import httpx

    from wanflow.upstream import DEFAULT_TIMEOUT, UpstreamClient

    cfg = config()
    timeout = httpx.Timeout(
        connect=DEFAULT_TIMEOUT.connect,
        read=cfg.upstream_read_timeout_s,
        write=DEFAULT_TIMEOUT.write,
        pool=DEFAULT_TIMEOUT.pool,
    )
    arn = cfg.upstream_key_secret_arn
    # The key as the cache holds it, before every request; after a 401, read at once past the
    # extension (every function that calls the upstream loads boto3 anyway).
    return UpstreamClient(
        cfg.upstream_base_url,
        partial(secret, arn),
        reread_key=partial(reread_secret, arn, past_extension=True),
        timeout=timeout,
    )


@cache
def lifecycle() -> Lifecycle:
    """The lifecycle steps."""
    from wanflow.lifecycle import Lifecycle

    return Lifecycle(config(), store(), upstream(), s3(), notifications())


@cache
def follower() -> Follower:
    """The callback wait and the poll loop's look, around the lifecycle steps."""
    from wanflow.following import Follower

    return Follower(config(), lifecycle(), sfn())


@cache
def submitter() -> Submitter:
    """The submit logic."""
    from wanflow.submission import Submitter

    cfg = config()
    return Submitter(
        cfg,
        store(),
        upstream(),
        sfn(),
        partial(secret, cfg.callback_secret_arn),
        notifications=notifications(),
    )


@cache
def uploads() -> UploadIntake:
    """The intake of uploaded images."""
    from wanflow.uploads import PendingUploads, UploadIntake

    cfg = config()
    # The submitter is passed as its getter: the API function only grants uploads, and cannot
    # read the callback secret a Submitter needs.
    return UploadIntake(
        submitter,
        s3(),
        cfg.bucket_name,
        PendingUploads(cfg.table_name, dynamodb()),
        image_urls,
        allow_http_webhooks=cfg.allow_http_callbacks,
    )


@cache
def callback_receiver() -> CallbackReceiver:
    """The upstream callback receiver. It gets the store and Step Functions as getters: a forged
    callback is turned away with the secret alone, before any boto3 client is built (so after a
    mismatch the secret is read again through the extension only, never past it)."""
    from wanflow.callbacks import CallbackReceiver

    arn = config().callback_secret_arn
    return CallbackReceiver(
        partial(secret, arn), store, sfn, reread_secret=partial(reread_secret, arn)
    )


@cache
def tenants() -> Tenants:
    """Tenants, their API keys (hashed) and webhook secrets."""
    from wanflow.tenants import Tenants

    return Tenants(config().table_name, dynamodb())


@cache
def notifications() -> Notifications:
    """The producer of client webhook events (onto the notify queue)."""
    from wanflow.webhooks import Notifications

    return Notifications(config(), sqs())


@cache
def deliverer() -> Deliverer:
    """The consumer of the notify queue: signs and posts client webhooks, retries, logs."""
    from wanflow.webhooks import Deliverer

    return Deliverer(config(), store(), tenants(), s3(), sqs())


@cache
def canceller() -> Canceller:
    """Cancels tasks on a client's request."""
    from wanflow.cancellation import Canceller

    return Canceller(config(), store(), upstream(), sfn(), notifications())


def reset() -> None:
    """Forget every collaborator built so far (the local stack, when it points at a new moto)."""
    for built in (
        config,
        session,
        dynamodb,
        s3,
        image_urls,
        sfn,
        sqs,
        secrets,
        secret_cache,
        store,
        upstream,
        lifecycle,
        follower,
        submitter,
        uploads,
        callback_receiver,
        tenants,
        notifications,
        deliverer,
        canceller,
    ):
        built.cache_clear()
