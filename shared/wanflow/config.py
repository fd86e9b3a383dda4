"""Configuration from the environment, read once and checked: a missing name fails fast."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from wanflow.errors import WanflowError


class ConfigError(WanflowError):
    """A required setting is missing or malformed."""

    code = "config_error"


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is required and is not set")
    return value


@dataclass(frozen=True)
class Config:
    """Every setting a wanflow function may need; resource names never have defaults."""

    table_name: str
    bucket_name: str
    upstream_base_url: str
    upstream_key_secret_arn: str
    callback_secret_arn: str
    callback_base_url: str
    state_machine_arn: str
    time_scale: float
    allow_http_callbacks: bool = False
    notify_queue_url: str = ""
    poll_queue_url: str = ""
    upstream_read_timeout_s: float = 30.0
    secrets_via_extension: bool = False
    #: When a submit's settling look comes (wall-clock seconds): past the submit function's
    #: own timeout, so the submit it checks on has surely ended.
    submit_settle_s: int = 120

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Read the settings template.yaml gives every function."""
        env = os.environ if env is None else env
        raw_scale = env.get("TIME_SCALE", "1")
        try:
            time_scale = float(raw_scale)
        except ValueError:
            raise ConfigError(f"TIME_SCALE must be a number, not {raw_scale!r}") from None
        if not time_scale > 0:
            raise ConfigError("TIME_SCALE must be greater than 0")
        raw_timeout = env.get("UPSTREAM_READ_TIMEOUT_S", "30")
        try:
            read_timeout = float(raw_timeout)
        except ValueError:
            raise ConfigError(
                f"UPSTREAM_READ_TIMEOUT_S must be a number, not {raw_timeout!r}"
            ) from None
        if not read_timeout > 0:
            raise ConfigError("UPSTREAM_READ_TIMEOUT_S must be greater than 0")
        raw_settle = env.get("SUBMIT_SETTLE_S", "120")
        try:
            settle = int(raw_settle)
        except ValueError:
            raise ConfigError(
                f"SUBMIT_SETTLE_S must be whole seconds, not {raw_settle!r}"
            ) from None
        if not 0 < settle <= 900:
            raise ConfigError("SUBMIT_SETTLE_S must be 1 to 900 (SQS's longest delay)")
        return cls(
            table_name=_required(env, "TABLE_NAME"),
            bucket_name=_required(env, "BUCKET_NAME"),
            upstream_base_url=_required(env, "UPSTREAM_BASE_URL"),
            upstream_key_secret_arn=_required(env, "UPSTREAM_KEY_SECRET_ARN"),
            callback_secret_arn=_required(env, "CALLBACK_SECRET_ARN"),
            callback_base_url=env.get("CALLBACK_BASE_URL", "").strip().rstrip("/"),
            # Only the functions that start or stop executions read it.
            state_machine_arn=env.get("STATE_MACHINE_ARN", "").strip(),
            time_scale=time_scale,
            # Only the functions that enqueue client notifications read it.
            notify_queue_url=env.get("NOTIFY_QUEUE_URL", "").strip(),
            # The lifecycle function (the poll chain) and submit (its settling look) read it.
            poll_queue_url=env.get("POLL_QUEUE_URL", "").strip(),
            submit_settle_s=settle,
            upstream_read_timeout_s=read_timeout,
            # Only the local stack sets this: its API is plain HTTP on loopback.
            allow_http_callbacks=env.get("WANFLOW_LOCAL_HTTP_CALLBACKS") == "1",
            # Set with the Parameters and Secrets extension layer (template.yaml).
            secrets_via_extension=env.get("WANFLOW_SECRETS_VIA_EXTENSION") == "1",
        )

    def scaled_wait(self, seconds: float) -> int:
        """A wait in upstream seconds as whole seconds of this deployment's clock (Wait states
        take integers): rounded to the nearest second, and at least 1 s, so a sped-up clock
        never spins. The schedule's grid is anchored at task creation, so rounding errors do not
        add up from one look to the next."""
        return max(1, math.floor(seconds * self.time_scale + 0.5)) if seconds > 0 else 0

    def scaled_timeout(self, seconds: float) -> int:
        """A timeout in upstream seconds as whole seconds, rounded up: never earlier than meant."""
        return max(1, math.ceil(seconds * self.time_scale))
