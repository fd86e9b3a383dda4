"""What `GET /openapi.json` and `GET /docs` serve: the committed OpenAPI document, read once
per process, and Swagger UI with its assets inline (no CDN, works offline).

The document is generated from the routes at build time (`python -m wanflow_local.openapi`,
outside the layer) and committed next to this module as `openapi.json`: a Lambda never builds
schemas at run time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

_SWAGGER_UI = "aws_lambda_powertools.event_handler.openapi.swagger_ui"


@cache
def _published_text() -> str:
    return resources.files("wanflow").joinpath("openapi.json").read_text(encoding="utf-8")


def published(server_url: str | None = None) -> dict[str, Any]:
    """The committed document (read once per process), `servers` set to `server_url` if given."""
    document: dict[str, Any] = json.loads(_published_text())
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document


@cache
def _swagger_assets() -> tuple[str, str]:
    # Powertools ships Swagger UI's bundle and stylesheet: inlined, /docs needs no CDN.
    assets = resources.files(_SWAGGER_UI)
    js = assets.joinpath("swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    css = assets.joinpath("swagger-ui.min.css").read_text(encoding="utf-8")
    return js, css


def docs_page(document: Mapping[str, Any]) -> str:
    """A self-contained Swagger UI page showing `document` (scripts and styles inline)."""
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    js, css = _swagger_assets()
    # The document sits inside a <script>: a "</" in any description must not close it.
    spec = json.dumps(document).replace("</", "<\\/")
    return generate_swagger_html(spec, js, css, swagger_base_url="", oauth2_config=None)
