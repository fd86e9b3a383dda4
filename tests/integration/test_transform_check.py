"""local/check_transformed.py (in `make iac`) lints the template CloudFormation gets: it passes
template.yaml, and it fails a copy with the bucket's circular dependency put back, which only
the SAM transform's output has (cfn-lint and `sam validate --lint` on the SAM template pass it).

It runs in the aws-sam-cli venv (`make iac` sets it up), as the Makefile runs it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
NAMED = '        BUCKET_NAME: !Sub ["wanflow-${AWS::AccountId}-${StackUuid}", '

pytestmark = pytest.mark.skipif(
    not SAM_PYTHON.exists(), reason="needs the aws-sam-cli venv: make iac sets it up"
)


def check(template: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SAM_PYTHON), str(ROOT / "local" / "check_transformed.py"), str(template)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_template_passes_after_the_transform() -> None:
    done = check(ROOT / "template.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok ")


def test_the_bucket_referenced_by_the_function_it_notifies_is_a_cycle(tmp_path: Path) -> None:
    # GIVEN template.yaml with the functions' BUCKET_NAME a !Ref of the bucket again
    lines = (ROOT / "template.yaml").read_text(encoding="utf-8").splitlines(keepends=True)
    named = [i for i, line in enumerate(lines) if line.startswith(NAMED)]
    assert len(named) == 1, "the Globals' BUCKET_NAME is no longer where this test expects it"
    lines[named[0]] = "        BUCKET_NAME: !Ref ResultsBucket\n"
    scratch = tmp_path / "template.yaml"
    scratch.write_text("".join(lines), encoding="utf-8")
    # WHEN it is checked THEN the cycle CloudFormation would refuse is reported
    done = check(scratch)
    assert done.returncode == 1, done.stdout + done.stderr
    for resource in ("ResultsBucket", "UploadFunction", "UploadFunctionS3Permission"):
        assert f"E3004 Circular Dependencies for resource {resource}." in done.stdout
