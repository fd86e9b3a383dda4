"""Time as wanflow reads, writes and shows it: aware UTC, one text form.

Every time wanflow writes (stored or public) is RFC 3339 in UTC with milliseconds and `Z`:
`2026-12-03T15:30:00.000Z`. The width is fixed, so text order is time order: the sort keys
that carry a time (a tenant's tasks, a task's delivery log) sort chronologically. `parse` reads
any ISO 8601 form with or without an offset (a time without one is UTC), and `UtcTimestamp`
puts what it reads into the one form, so a value stored or passed in another form is still
shown in this one.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema


def now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def epoch_s() -> float:
    """The current Unix time in seconds (what DynamoDB TTLs and `not_before` hold)."""
    return time.time()


def from_epoch(seconds: float) -> datetime:
    """The aware UTC datetime of a Unix time."""
    return datetime.fromtimestamp(seconds, UTC)


def iso(when: datetime | float) -> str:
    """`when` (an aware datetime, or Unix seconds) in wanflow's one form:
    `2026-12-03T15:30:00.000Z`. A naive datetime is taken as UTC."""
    if isinstance(when, datetime):
        moment = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    else:
        moment = from_epoch(when)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    """The current time in wanflow's one form."""
    return iso(now())


def parse(value: str) -> datetime:
    """An aware UTC datetime from ISO 8601 text: `Z` or an offset, or none (taken as UTC).

    Also reads Python's `str()` of a datetime (`2026-01-01 00:00:00.000000+00:00`), which moto
    passes for `$$.Execution.StartTime`. ValueError for anything else.
    """
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _canonical(value: str) -> str:
    return iso(parse(value))


#: A time in a pydantic model: read from any ISO 8601 text, held and shown in the one form.
UtcTimestamp = Annotated[
    str,
    AfterValidator(_canonical),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "examples": ["2026-12-03T15:30:00.000Z"],
        }
    ),
]
