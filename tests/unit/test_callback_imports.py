"""The upstream callback receiver stays free of the AWS SDK where it does not need it.

Its cold start is on the upstream's clock (a 10 s timeout, three quick retries), and a forged
callback must be turned away with the signing secret alone: no boto3 at Init, none on the way to
the 401. Each check runs in a fresh interpreter that imports functions/callbacks/app.py as Lambda
does (the function's directory first on the path, then the layer), since a module imported
earlier in this process would hide what the handler itself pulls in.

Powertools imports the bare `botocore` package (its `__init__`: logging, os, re) to register a
user-agent hook when it is importable; that is allowed, any other botocore module is not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = ROOT / "functions" / "callbacks"
CALLBACK_EVENT = ROOT / "events" / "api" / "callback.json"

#: What the child prints last: the handler module's file and the SDK modules loaded.
REPORT = """
botocore = sorted(name for name in sys.modules if name.split(".")[0] == "botocore")
print(json.dumps({"file": app.__file__, "boto3": "boto3" in sys.modules, "botocore": botocore,
                  **globals().get("answer", {})}))
"""
INIT = "import json, sys\nimport app\n" + REPORT
FORGED = (
    """import json, sys
import app

class Context:
    function_name = "wanflow-CallbackFunction"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:wanflow-CallbackFunction"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-0000-0000-000000000001"

reply = app.handler(json.loads(sys.argv[1]), Context())
answer = {"status": reply["statusCode"]}
"""
    + REPORT
)


def lambda_environ(**extra: str) -> dict[str, str]:
    """The webhook function's environment as Lambda gives it (names from template.yaml)."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(FUNCTION), str(ROOT / "shared")]),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": "wanflow-CallbackFunction",
        "LAMBDA_TASK_ROOT": str(FUNCTION),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "TABLE_NAME": "wanflow-tasks",
        "BUCKET_NAME": "wanflow-results",
        "UPSTREAM_BASE_URL": "https://upstream.invalid",
        "UPSTREAM_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:up-AbCdEf",
        "CALLBACK_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:cb-AbCdEf",
        "POWERTOOLS_SERVICE_NAME": "wanflow",
        **extra,
    }


def run_child(code: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run `code` in a fresh interpreter in the function's directory; its last line as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=FUNCTION,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def sdk_beyond_bare_botocore(report: dict[str, Any]) -> list[str]:
    """boto3 if loaded, and every botocore module but the bare package Powertools imports."""
    return (["boto3"] if report["boto3"] else []) + [
        name for name in report["botocore"] if name != "botocore"
    ]


def test_init_imports_no_aws_sdk() -> None:
    # WHEN Lambda's Init imports the callback function's module
    report = run_child(INIT, lambda_environ())
    # THEN it is functions/callbacks/app.py, and neither boto3 nor botocore's machinery came along
    assert Path(report["file"]).resolve() == FUNCTION / "app.py"
    assert sdk_beyond_bare_botocore(report) == []


def test_a_forged_callback_is_refused_without_the_aws_sdk() -> None:
    extension_mod = pytest.importorskip(
        "wanflow_local.secrets_extension",
        reason="needs the local Parameters and Secrets extension (wanflow_local.secrets_extension)",
    )
    from wanflow_local.aws import LocalAws

    event = json.loads(CALLBACK_EVENT.read_text(encoding="utf-8"))
    event["queryStringParameters"] = {"sig": "not-the-signature"}
    event["multiValueQueryStringParameters"] = {"sig": ["not-the-signature"]}
    # GIVEN the callback-signing secret, served by the extension as on Lambda
    with LocalAws(set_environ=False) as aws:
        manager = aws.client("secretsmanager")
        arn = manager.create_secret(Name="callback-signing", SecretString="s3cret")["ARN"]
        with extension_mod.SecretsExtension(manager) as extension:
            env = lambda_environ(
                CALLBACK_SECRET_ARN=arn,
                WANFLOW_SECRETS_VIA_EXTENSION="1",
                # Were the SDK used after all, it would reach this moto, not AWS.
                AWS_ENDPOINT_URL=aws.endpoint_url,
                **extension.environ(),
            )
            # WHEN a cold function gets a callback with a wrong signature
            report = run_child(FORGED, env, json.dumps(event))
            served = extension.requests
    # THEN it answers 401, having read the secret through the extension and loaded no SDK
    assert report["status"] == 401
    assert served == 1
    assert sdk_beyond_bare_botocore(report) == []
