"""Plain images made on the spot, for the image rules."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image


def make_image(fmt: str, width: int, height: int, mode: str = "RGB", **save: Any) -> bytes:
    """Encode a plain image of the given size and format."""
    img = Image.new(mode, (width, height), color=0 if mode == "P" else None)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def to_data_uri(data: bytes, mime: str = "image/png") -> str:
    """Wrap bytes in a base64 data URI."""
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"
