"""The SAM transform of a template, as CloudFormation runs it before creating anything.

`deploy` creates what CloudFormation would create, so it reads the template after the transform:
the functions' own roles and their policies, the Lambda permissions, the event source mappings,
the REST API's OpenAPI body with its authorizer and gateway responses, the bucket's notifications.
The transform is aws-sam-translator, pinned in the SAM venv (`requirements/sam.lock`, the same
as `make iac`'s check): it would move pydantic in the dev venv, so it runs there, in a
subprocess (`local/check_transformed.py --emit`), and its output is kept under `.cache/` by the
hash of the template and the lock (about 1.3 s the first time, nothing after).

Local artifact paths (`CodeUri`, `ContentUri`, `DefinitionUri`) are replaced by `s3://`
placeholders before the transform, as `sam package` would upload them; `artifacts()` maps each
logical id back to its local path.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Final

from wanflow_local.cfn import TemplateError, load_template

ROOT: Final = Path(__file__).resolve().parents[2]
SAM_PYTHON: Final = ROOT / ".venv-sam" / "bin" / "python"
_CHECK: Final = ROOT / "local" / "check_transformed.py"
_LOCK: Final = ROOT / "requirements" / "sam.lock"
_CACHE: Final = ROOT / ".cache" / "transform"
#: The SAM properties that name a local artifact, by resource type (as `sam package` reads them).
ARTIFACT_PROPERTIES: Final = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}


class TransformError(TemplateError):
    """The SAM transform refused the template (or cannot run here)."""


def transformed(path: Path) -> dict[str, Any]:
    """The CloudFormation template the SAM transform makes of the template at `path`."""
    text = path.read_bytes()
    digest = hashlib.sha256(text + b"\0" + _LOCK.read_bytes()).hexdigest()
    cached = _CACHE / f"{digest}.json"
    if cached.is_file():
        result: dict[str, Any] = json.loads(cached.read_text(encoding="utf-8"))
        return result
    if not SAM_PYTHON.is_file():
        raise TransformError(
            f"the SAM transform runs in {SAM_PYTHON.parent.parent.name}/, which is not set up: "
            "run `make setup` (it installs requirements/sam.lock)"
        )
    done = subprocess.run(
        [str(SAM_PYTHON), str(_CHECK), str(path), "--emit"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_REGION", "us-east-1")},
    )
    if done.returncode != 0:
        raise TransformError(f"the SAM transform of {path.name} failed: {done.stdout}{done.stderr}")
    result = json.loads(done.stdout)
    _CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=_CACHE, delete=False, encoding="utf-8") as out:
        out.write(done.stdout)
    Path(out.name).replace(cached)  # atomic: concurrent deploys read a whole file or none
    return result


def artifacts(path: Path) -> dict[str, Path]:
    """Logical id → the local artifact path the SAM template names (code, layer, definition)."""
    found: dict[str, Path] = {}
    for logical_id, resource in (load_template(path).get("Resources") or {}).items():
        key = ARTIFACT_PROPERTIES.get(str(resource.get("Type")))
        value = (resource.get("Properties") or {}).get(key) if key else None
        if isinstance(value, str) and not value.startswith("s3://"):
            found[logical_id] = path.parent / value
    return found
