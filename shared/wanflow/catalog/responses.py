"""Reading upstream task reports, leniently, into one normalised snapshot.

Both families are read here: `generation` (`{id, status, output:[{content:[...], jobId}], usage,
error}`) and `tasks` (`{id, object, status, progress, results:[url...], error}`). Extra fields are
ignored and missing optional ones tolerated; a report that cannot be understood yields a snapshot
whose `reading.status` is None, never an exception.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import ConfigDict, Field

from wanflow.catalog.base import Family, ModelSpec
from wanflow.schema import Schema
from wanflow.task import StatusReading, read_status


class UpstreamOutput(Schema):
    """One result as the upstream reports it (its link expires after about a day)."""

    type: Literal["video", "image", "text"]
    url: str | None = None
    text: str | None = None


class UpstreamSnapshot(Schema):
    """What one upstream report says about a task."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    upstream_id: str | None = Field(default=None, description="Upstream task id.")
    raw_status: str | None = Field(default=None, description="The status word as sent.")
    reading: StatusReading = Field(description="The status word mapped onto ours.")
    progress: int | None = Field(default=None, description="Percent done, when reported.")
    outputs: list[UpstreamOutput] = Field(default_factory=list)
    cost_usd: Decimal | None = None
    discount: Decimal | None = None
    error_code: str | None = None
    error_message: str | None = None
    estimated_seconds: float | None = Field(
        default=None, description="The upstream's own estimate, when it gives one."
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _decimal(value: Any) -> Decimal | None:
    text = _text(value)
    if text is None:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _progress(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return max(0, min(100, int(number))) if math.isfinite(number) else None


def _generation_outputs(body: dict[str, Any]) -> list[UpstreamOutput]:
    outputs = []
    for item in _list(body.get("output")):
        for part in _list(_dict(item).get("content")):
            content = _dict(part)
            kind, url, text = content.get("type"), _text(content.get("url")), content.get("text")
            if kind in ("video", "image") and url:
                outputs.append(UpstreamOutput(type=kind, url=url))
            elif kind == "text" and isinstance(text, str):
                outputs.append(UpstreamOutput(type="text", text=text))
    return outputs


def _tasks_outputs(body: dict[str, Any], kind: Literal["video", "image"]) -> list[UpstreamOutput]:
    outputs = []
    for item in _list(body.get("results")):
        url = _text(item) if not isinstance(item, dict) else _text(item.get("url"))
        if url:
            outputs.append(UpstreamOutput(type=kind, url=url))
    return outputs


def task_id_of(body: Any) -> str | None:
    """The upstream task id in a create or status response, wherever the family puts it."""
    body = _dict(body)
    for candidate in (body.get("id"), body.get("task_id"), _dict(body.get("data")).get("id")):
        if _text(candidate):
            return str(candidate)
    return None


def read_snapshot(spec: ModelSpec[Any], body: Any) -> UpstreamSnapshot:
    """Read a create or status response of `spec`'s upstream into a snapshot."""
    body = _dict(body)
    status = body.get("status")
    if spec.route.family is Family.GENERATION:
        if status is None:  # some reports carry the status on the output item instead
            status = next((o.get("status") for o in map(_dict, _list(body.get("output")))), None)
        outputs = _generation_outputs(body)
    else:
        outputs = _tasks_outputs(body, spec.output_type)
    usage, error = _dict(body.get("usage")), body.get("error")
    error_dict = _dict(error)
    return UpstreamSnapshot(
        upstream_id=task_id_of(body),
        raw_status=status if isinstance(status, str) else None,
        reading=read_status(spec.vocabulary, status, sum(o.type != "text" for o in outputs)),
        progress=_progress(body.get("progress")),
        outputs=outputs,
        cost_usd=_decimal(usage.get("cost")),
        discount=_decimal(usage.get("discount")),
        error_code=_text(error_dict.get("code")),
        error_message=_text(error_dict.get("message")) or (error if _text(error) else None),
        estimated_seconds=_decimal_float(_dict(body.get("task_info")).get("estimated_time")),
    )


def _decimal_float(value: Any) -> float | None:
    number = _decimal(value)
    return float(number) if number is not None else None
