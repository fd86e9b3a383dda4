"""Check the state machine definitions: cfn-lint's ASL rules, then every transition.

cfn-lint does not look inside a SAM state machine's `DefinitionUri`, so each definition is
wrapped in a plain `AWS::StepFunctions::StateMachine` (substitutions given dummy ARNs) in a
temporary template, and cfn-lint checks its structure (E3601). cfn-lint does not follow
transitions, so every `Next`/`Default`/Choice/Catch target must then exist and every state be
reachable. Exits non-zero on any finding.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from wanflow_local.deploy import DeployError, check_transitions

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = sorted((ROOT / "statemachine").glob("*.asl.json"))
DUMMY_ARN = "arn:aws:lambda:us-east-1:123456789012:function:placeholder"


def wrapped(definition: Path) -> dict[str, object]:
    """A template holding the definition inline, its `${…}` substitutions filled in."""
    text = re.sub(r"\$\{[A-Za-z0-9_]+\}", DUMMY_ARN, definition.read_text(encoding="utf-8"))
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "RoleArn": "arn:aws:iam::123456789012:role/placeholder",
                    "Definition": json.loads(text),
                },
            }
        },
    }


def main() -> int:
    failed = 0
    with tempfile.TemporaryDirectory() as folder:
        for definition in DEFINITIONS:
            path = Path(folder) / f"{definition.stem}.json"
            path.write_text(json.dumps(wrapped(definition)), encoding="utf-8")
            done = subprocess.run(
                [str(Path(sys.executable).with_name("cfn-lint")), str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            name = definition.relative_to(ROOT)
            findings = done.stdout.replace(str(path), str(name)).strip()
            try:
                check_transitions(json.loads(definition.read_text(encoding="utf-8")), str(name))
            except DeployError as exc:
                findings += f"\n{exc}"
            print(f"{'FINDINGS' if findings else 'ok':9}{name}")
            if findings:
                failed += 1
                print(findings)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
