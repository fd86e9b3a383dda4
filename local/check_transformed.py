"""Lint the template CloudFormation gets: template.yaml after the SAM transform.

`sam deploy` sends the SAM template to CloudFormation, which runs the transform and then
creates what it produced. cfn-lint and `sam validate --lint` read the SAM template and miss
what only the output has: an S3 event on a function adds `NotificationConfiguration` and a
`DependsOn` on the generated permission to the bucket, so a function whose environment or
policy references that bucket makes a circular dependency (E3004) that only CloudFormation, at
deploy time, reports. So the template is transformed here with aws-sam-translator (pinned in
the dev group: the version decides what the output holds), local paths replaced by `s3://`
placeholders as `sam package` would upload them, and cfn-lint runs on the result.

It runs in the aws-sam-cli venv (`make iac`), whose lock pins the translator and cfn-lint:

    .venv-sam/bin/python local/check_transformed.py [template.yaml] [--keep OUT.json]

`--emit` prints the transformed template instead (the local stack deploys it).

Exits non-zero on any cfn-lint finding (errors, warnings or informational).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
# Where `sam package` would have uploaded each local artifact (any s3:// URI transforms alike).
_PLACEHOLDER_BUCKET: Final = "s3://wanflow-artifacts-placeholder"
_ARTIFACT_PROPERTIES: Final = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
}


class _NoManagedPolicies:
    """The transform looks AWS managed policies up by name (IAM ListPolicies) only when a
    template names one without its ARN; ours names none, so no AWS call is needed."""

    def load(self) -> dict[str, str]:
        return {}


def packaged(template: dict[str, Any]) -> dict[str, Any]:
    """The template as `sam package` leaves it: local artifact paths become S3 URIs."""
    for logical_id, resource in (template.get("Resources") or {}).items():
        key = _ARTIFACT_PROPERTIES.get(str(resource.get("Type")))
        props = resource.get("Properties") or {}
        if key and isinstance(props.get(key), str) and not props[key].startswith("s3://"):
            props[key] = f"{_PLACEHOLDER_BUCKET}/{logical_id}.zip"
    return template


def transformed(path: Path) -> dict[str, Any]:
    """What CloudFormation creates from the SAM template at `path`."""
    # The transform reads the region for ARNs and pseudo parameters; no call is made.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # SAM CLI's own YAML reader (short tags to long forms), as `sam deploy` reads the template.
    from samcli.yamlhelper import yaml_parse
    from samtranslator.translator.transform import transform

    template = yaml_parse(path.read_text(encoding="utf-8"))
    result: dict[str, Any] = transform(packaged(template), {}, _NoManagedPolicies())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", nargs="?", default=str(ROOT / "template.yaml"))
    parser.add_argument("--keep", help="also write the transformed template here")
    parser.add_argument(
        "--emit", action="store_true", help="print the transformed template (JSON), no lint"
    )
    args = parser.parse_args(argv)
    source = Path(args.template)
    try:
        output = transformed(source)
    except Exception as exc:  # the transform's own refusals (InvalidDocumentException…)
        print(f"FAILED   the SAM transform of {source}: {exc}")
        return 1
    if args.emit:
        # What the local stack deploys (wanflow_local.transform).
        print(json.dumps(output))
        return 0
    text = json.dumps(output, indent=1, sort_keys=True)
    if args.keep:
        Path(args.keep).write_text(text, encoding="utf-8")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{source.stem}.transformed.json"
        path.write_text(text, encoding="utf-8")
        done = subprocess.run(
            [str(Path(sys.executable).with_name("cfn-lint")), str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    findings = (done.stdout + done.stderr).replace(str(path), f"{source.name} (transformed)")
    resources = len(output.get("Resources") or {})
    if done.returncode != 0 or findings.strip():
        print(f"FINDINGS {source.name} after the SAM transform ({resources} resources)")
        print(findings.strip())
        return 1
    print(f"ok       {source.name} after the SAM transform ({resources} resources)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
