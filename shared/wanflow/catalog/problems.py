"""What one validation found: every error and warning, each naming its field.

A pydantic failure becomes an `ErrorItem` with a dotted `param` (`input.messages[0].content`), a
stable code (pydantic's own types mapped onto wanflow's: `missing_field`, `unknown_field`,
`invalid_value`, `out_of_range`, `invalid_length`, `invalid_type`; a field type's own code kept)
and a message a person can act on. Rules spanning fields read the raw body with `pick` and
`present`, which never raise, so they still run when some field failed its own check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationError

from wanflow.errors import ErrorItem
from wanflow.schema import Schema


class Notice(Schema):
    """A warning: something the upstream will silently ignore or truncate."""

    code: str = Field(description="Stable warning code.")
    message: str = Field(description="What will happen, for a person.")
    param: str | None = Field(default=None, description="Dotted path of the field concerned.")


_PYDANTIC_CODES = {
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "literal_error": "invalid_value",
    "enum": "invalid_value",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "greater_than": "out_of_range",
    "less_than": "out_of_range",
    "too_short": "invalid_length",
    "too_long": "invalid_length",
    "string_too_short": "invalid_length",
    "string_too_long": "invalid_length",
}


def param_of(loc: tuple[int | str, ...]) -> str | None:
    """Render a pydantic location as a dotted path: ('input', 'messages', 0) → input.messages[0]."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def _code_of(error_type: str) -> str:
    if error_type in _PYDANTIC_CODES:
        return _PYDANTIC_CODES[error_type]
    if error_type.endswith(("_type", "_parsing")):
        return "invalid_type"
    return error_type  # our own PydanticCustomError codes


def _message_of(err: Any, param: str | None) -> str:
    kind, msg, given = err["type"], err["msg"], err.get("input")
    if kind == "missing":
        return f"{param} is required"
    if kind == "extra_forbidden":
        return f"{param} is not a documented parameter of this model"
    text = f"{param}: {msg}" if param else msg
    if kind in {"literal_error", "enum"} and isinstance(given, str):
        choices = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        near = [c for c in choices if c.lower() == given.lower()]
        if near:
            return f"{text} (got {given!r}; did you mean {near[0]!r}?)"
    if kind in _PYDANTIC_CODES and isinstance(given, int | float | str) and kind != "missing":
        return f"{text} (got {given!r})"
    return text


#: Audio file extensions wanflow recognises in a URL (to refuse the formats a model does not take).
_KNOWN_AUDIO = (".mp3", ".wav", ".aac", ".m4a", ".ogg", ".flac", ".opus", ".wma")


class Problems:
    """Collects the errors and warnings of one validation."""

    def __init__(self) -> None:
        self.errors: list[ErrorItem] = []
        self.warnings: list[Notice] = []

    def error(self, param: str | None, code: str, message: str) -> None:
        """Record a problem that makes the request invalid."""
        self.errors.append(ErrorItem(code=code, message=message, param=param))

    def warn(self, param: str | None, code: str, message: str) -> None:
        """Record something the upstream will silently ignore or truncate."""
        self.warnings.append(Notice(code=code, message=message, param=param))

    def add_validation_error(
        self, exc: ValidationError, recode: Callable[[str | None, str], str]
    ) -> None:
        """Record every failure pydantic found, each coded by `recode(param, default_code)`."""
        for err in exc.errors(include_url=False):
            param = param_of(tuple(err["loc"]))
            self.error(param, recode(param, _code_of(err["type"])), _message_of(err, param))

    def audio_format(self, param: str, url: str | None, formats: tuple[str, ...]) -> None:
        """An audio URL must name one of `formats` (".mp3", ...). Only a URL ending in a known
        audio extension can be judged; one without (a signed link, say) is left to the upstream.
        """
        if not url:
            return
        path = urlsplit(url).path.lower()
        if path.endswith(_KNOWN_AUDIO) and not path.endswith(formats):
            names = " or ".join(f.lstrip(".") for f in formats)
            self.error(
                param, "unsupported_audio_format", f"{param} must be an audio file in {names}"
            )

    def truncate(self, param: str, value: str | None, limit: int) -> str | None:
        """Cut `value` to `limit` characters as the upstream would, with a warning when it does."""
        if value is None or len(value) <= limit:
            return value
        self.warn(
            param,
            "truncated",
            f"{param} has {len(value)} characters; the upstream keeps the first {limit}, "
            "so it was truncated before sending",
        )
        return value[:limit]


def pick(raw: Any, path: str, kind: type | tuple[type, ...] = object) -> Any:
    """The value at a dotted path of a raw body, or None when absent or not of `kind`.

    Rules that span fields use this on the raw body, so they still report their problems when
    some other field failed its own check. Booleans never count as integers.
    """
    node = raw
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    if isinstance(node, bool) and kind in (int, float):
        return None
    return node if isinstance(node, kind) else None


def present(raw: Any, path: str) -> bool:
    """Whether a dotted path exists in the raw body with a non-null value."""
    return pick(raw, path) is not None
