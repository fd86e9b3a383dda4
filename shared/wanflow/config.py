"""Configuration from the environment, read once and checked: a missing name fails fast.

What is guaranteed: a required setting that is missing or malformed raises `ConfigError` naming
the variable, at a function's init (`Runtime.from_environ`); resource names (table, bucket,
secrets) never have defaults. The time scale is applied here: `scaled_wait` and `scaled_timeout`
turn upstream seconds into whole seconds of this deployment's clock (a wait never under 1 s, a
timeout never earlier than meant). The settle window (`submit_settle_s`) is wall-clock, unscaled.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from wanflow.errors import WanflowError


class ConfigError(WanflowError):
    """A required setting is missing or malformed."""

    code = "config_error"


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is required and is not set")
    return value


N = TypeVar("N", int, float)


def _positive(value: float) -> bool:
    return value > 0


def _number(
    env: Mapping[str, str],
    name: str,
    default: str,
    kind: Callable[[str], N],
    *,
    allowed: Callable[[N], bool],
    rule: str,
) -> N:
    """A numeric setting: `kind` of its text, and `allowed` (said as `rule`) or ConfigError."""
    raw = env.get(name, default)
    try:
        value = kind(raw)
    except ValueError:
        what = "whole seconds" if kind is int else "a number"
        raise ConfigError(f"{name} must be {what}, not {raw!r}") from None
    if not allowed(value):
        raise ConfigError(f"{name} must be {rule}, not {raw!r}")
    return value


def _extension_ttl(env: Mapping[str, str]) -> float:
    """The extension's SECRETS_MANAGER_TTL as it reads it (seconds, 300 at most and by
    default); the extension's to check, so a value it would refuse counts as its default."""
    try:
        return float(min(max(0, int(env.get("SECRETS_MANAGER_TTL", "300"))), 300))
    except ValueError:
        return 300.0


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
    upstream_read_timeout_s: float = 30.0
    secrets_via_extension: bool = False
    #: How long the extension keeps a secret (its own SECRETS_MANAGER_TTL; 300 s unless set,
    #: and it takes no more): what its cache adds to the age of a secret read through it.
    secrets_extension_ttl_s: float = 300.0
    #: How long after a task's creation a look may conclude that its submit stopped (the task
    #: missing, or still `accepted`), in wall-clock seconds: past the Timeout of every function
    #: that submits, so the submit it concludes on has surely ended.
    submit_settle_s: int = 120
    #: The role whose sessions sign the uploaded images' URLs handed to the upstream ("": the
    #: function's own credentials, whose end the code cannot know).
    image_reader_role_arn: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Read the settings template.yaml gives every function, from a function's environment
        (runtime.init_environ(), never os.environ directly: see wanflow.runtime)."""
        time_scale = _number(env, "TIME_SCALE", "1", float, allowed=_positive, rule="> 0")
        read_timeout = _number(
            env, "UPSTREAM_READ_TIMEOUT_S", "30", float, allowed=_positive, rule="> 0"
        )
        settle = _number(env, "SUBMIT_SETTLE_S", "120", int, allowed=_positive, rule="> 0")
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
            # Only the lifecycle function (its looks) reads it.
            submit_settle_s=settle,
            upstream_read_timeout_s=read_timeout,
            # Only the local stack sets this: its API is plain HTTP on loopback.
            allow_http_callbacks=env.get("WANFLOW_LOCAL_HTTP_CALLBACKS") == "1",
            # Set with the Parameters and Secrets extension layer (template.yaml).
            secrets_via_extension=env.get("WANFLOW_SECRETS_VIA_EXTENSION") == "1",
            secrets_extension_ttl_s=_extension_ttl(env),
            # Only the function that turns uploads into tasks reads it.
            image_reader_role_arn=env.get("IMAGE_READER_ROLE_ARN", "").strip(),
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
