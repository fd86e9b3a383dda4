"""The base of every wanflow pydantic model: validators built on first use, not at import.

Models describe data (their `Field` descriptions become the OpenAPI document) and do no I/O.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    """A pydantic model whose validators are built on first use, not at import.

    Building a model's core schema is most of what importing a module of models costs; a Lambda
    function imports the whole library but uses a few models per invocation, so the rest never
    has to be built.
    """

    model_config = ConfigDict(defer_build=True)
