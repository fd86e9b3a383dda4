"""Cold start of each function as Lambda receives it, against the floor measured in the same run.

Builds the functions and the layer as `make build` does (`sam build` from the runtime lock, then
bytecode recompiled `unchecked-hash` for python3.12) into a temporary directory, so every run
measures the current code. Then, in rounds (each runs every variant once, in a seeded shuffled
order), times fresh `python3.12` processes from start to exit:

- the floor: a bare interpreter; + `import boto3`; + one client (`boto3.client("dynamodb")`), the
  last being the floor every handler is compared with;
- each handler's Init: `import app` (+ fetching `app.handler`), what Lambda's Init phase runs.
  Target: the median at most 1.5x the floor;
- each handler's init + its first request's collaborators (what its `runtime` builds for it,
  secrets read through the local Parameters and Secrets extension): what a cold first
  invocation adds, for information;
- the callback receiver rejecting a forged callback, cold: the reply must be 401 with no boto3
  imported (the target), nor any of botocore's machinery: only the bare `botocore` package, which
  Powertools imports (0.5 ms) to register a user-agent hook, is allowed; which botocore modules
  were loaded, and who imported the first, are shown.

Each process sees what Lambda gives it: PYTHONPATH = <function>:<layer>/python (/var/task and
/opt/python), cwd the function directory, Lambda's variables and the function's own from
template.yaml (resources as placeholders), dummy credentials, nothing of this machine's
environment. Interpreters run with `-S`: no site-packages at all, so nothing but the build and the
standard library can be imported. Then `-X importtime` shows which imports dominate each Init.

    python bench/coldstart.py [--runs 15] [--seed 8]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "local"))
from lambda_build import find_python  # noqa: E402 -- a script of local/, not a package

if TYPE_CHECKING:
    from wanflow_local.aws import LocalAws

TARGET = 1.5
MIN_RUNS = 15
STACK = "wanflow"
REGION = "us-east-1"
ACCOUNT = "123456789012"
#: The Parameters and Secrets extension layer, given to the template as on a deployment: only
#: the ARN, nothing of it is downloaded; SecretsExtension serves its HTTP API on loopback.
EXTENSION_LAYER = (
    f"arn:aws:lambda:{REGION}:177933569100:layer:AWS-Parameters-and-Secrets-Lambda-Extension:12"
)
FLOOR = {
    "bare interpreter": "pass",
    "+ import boto3": "import boto3",
    "+ one client (floor)": "import boto3\nboto3.client('dynamodb')",
}
FLOOR_NAME = "+ one client (floor)"
#: What each function's first request builds (by its directory under functions/), after Init.
FIRST_REQUEST = {
    "authorizer": "m._dynamodb()",
    "submit": "m.runtime.submitter",
    "upload": "m.runtime.uploads; m.runtime.submitter",
    "tasks": "m.runtime.store; m.runtime.s3",
    # A genuine callback: the receiver, then the store and Step Functions it asks for.
    "callbacks": "m.runtime.callback_receiver; m.runtime.store; m.runtime.sfn",
    "lifecycle": "m.runtime.lifecycle",
    "notify": "m.runtime.deliverer",
}
#: A forged upstream callback, cold: the answer, and which SDK modules the whole path loaded.
BAD_SIGNATURE = """\
import json, sys
import {module} as m

class Context:
    function_name = {function_name!r}
    function_version = "$LATEST"
    invoked_function_arn = {function_arn!r}
    memory_limit_in_mb = {memory}
    aws_request_id = "00000000-0000-0000-0000-000000000001"
    log_group_name = "/aws/lambda/" + function_name
    log_stream_name = "2026/01/01/[$LATEST]0"

    def get_remaining_time_in_millis(self):
        return 10_000

reply = m.{attribute}(json.loads(sys.argv[1]), Context())
botocore = sorted(name for name in sys.modules if name.split(".")[0] == "botocore")
answer = {{"status": reply["statusCode"], "boto3": "boto3" in sys.modules, "botocore": botocore}}
print("RESULT " + json.dumps(answer))
"""
#: Run once per function (not timed): which SDKs Init loaded, and anything from outside the
#: build and the standard library (which `-S` should make impossible).
PROBE = """\
import json, sys, sysconfig
import {module} as m
m.{attribute}
roots = ({build!r}, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
foreign = sorted(
    name for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None) and not module.__file__.startswith(roots)
)
loaded = {{name: name in sys.modules for name in ("boto3", "pydantic", "httpx")}}
botocore = sum(1 for name in sys.modules if name.split(".")[0] == "botocore")
answer = {{"modules": len(sys.modules), "foreign": foreign, "botocore": botocore, **loaded}}
print("RESULT " + json.dumps(answer))
"""


@dataclass
class Function:
    """One Lambda function of the template as the build laid it out."""

    name: str  # its directory under functions/
    logical_id: str
    module: str
    attribute: str
    code_dir: Path
    memory: int
    environ: dict[str, str]


@dataclass
class Variant:
    """One kind of fresh process, timed once per round."""

    table: str
    name: str
    code: str
    cwd: Path
    env: dict[str, str]
    args: list[str] = field(default_factory=list)
    check: Callable[[str], None] | None = None  # given stdout after each run; raises if wrong
    samples: list[float] = field(default_factory=list)
    error: str | None = None  # why it could not run at all (then it is not timed)


# -- the build ------------------------------------------------------------------------------------


def build(out: Path) -> None:
    """`sam build` + unchecked-hash bytecode into `out` (local/lambda_build.py); prints sizes."""
    sam = ROOT / ".venv-sam" / "bin" / "sam"
    if not sam.exists():
        raise SystemExit(f"coldstart: no SAM CLI at {sam.relative_to(ROOT)}: run `make build` once")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "local" / "lambda_build.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"coldstart: the build failed ({done.returncode})")
    lines = done.stdout.splitlines()
    table = next(i for i, line in enumerate(lines) if line.startswith("artifact"))
    elapsed = time.perf_counter() - started
    print(f"fresh build (sam build + unchecked-hash bytecode) in {elapsed:.0f} s")
    print("\n".join(lines[table:]))


# -- the template: functions and their environment ------------------------------------------------


def read_functions(
    template: dict[str, Any], build_dir: Path, secret_arns: dict[str, str]
) -> list[Function]:
    """The template's functions with their own environment (placeholders for resources, the
    secrets' ARNs in the local moto), deployed with the secrets extension layer if it has one."""
    from wanflow_local.cfn import Resolver, merge_globals

    resources: dict[str, Any] = template["Resources"]
    declared = template.get("Parameters", {})
    overrides = {"UpstreamBaseUrl": "https://upstream.invalid"}
    if "SecretsExtensionLayerArn" in declared:
        overrides["SecretsExtensionLayerArn"] = EXTENSION_LAYER
    resolver = Resolver.for_template(
        template, overrides=overrides, stack_name=STACK, region=REGION, account_id=ACCOUNT
    )

    def placeholder(logical_id: str) -> str:
        kind = str(resources.get(logical_id, {}).get("Type", ""))
        if logical_id in secret_arns:
            return secret_arns[logical_id]
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{STACK}-{logical_id}"
        if kind.endswith("StateMachine"):
            return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STACK}-{logical_id}"
        return f"{STACK}-{logical_id}"

    resolver.fallback_ref = placeholder
    resolver.fallback_attribute = lambda logical_id, attribute: (
        f"arn:aws:placeholder:{REGION}:{ACCOUNT}:{STACK}-{logical_id}/{attribute}"
    )
    global_props = template.get("Globals", {}).get("Function", {})
    functions = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = merge_globals(global_props, resource.get("Properties", {}))
        module, _, attribute = str(props["Handler"]).rpartition(".")
        variables = resolver.resolve(props.get("Environment", {}).get("Variables", {})) or {}
        functions.append(
            Function(
                name=Path(str(props["CodeUri"])).name,
                logical_id=logical_id,
                module=module,
                attribute=attribute,
                code_dir=build_dir / logical_id,
                memory=int(resolver.resolve(props.get("MemorySize", 128))),
                environ={key: str(value) for key, value in variables.items()},
            )
        )
    return sorted(functions, key=lambda f: f.name)


def create_secrets(template: dict[str, Any], aws: LocalAws) -> dict[str, str]:
    """One secret in moto per Secrets Manager secret of the template: logical id → ARN."""
    client = aws.client("secretsmanager")
    arns = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::SecretsManager::Secret":
            value = resource.get("Properties", {}).get("SecretString")
            created = client.create_secret(
                Name=f"{STACK}-{logical_id}",
                SecretString=value if isinstance(value, str) else f"coldstart-{logical_id}",
            )
            arns[logical_id] = str(created["ARN"])
    return arns


def lambda_environ(python: Path, layer: Path, function: Function | None) -> dict[str, str]:
    """What Lambda puts in a python3.12 function's environment (nothing of this machine's)."""
    env = {
        "PATH": f"{python.parent}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_ACCESS_KEY_ID": "ASIACOLDSTARTBENCH00",
        "AWS_SECRET_ACCESS_KEY": "coldstart-dummy-secret-access-key",
        "AWS_SESSION_TOKEN": "coldstart-dummy-session-token",
        # The files of this machine's user, if any, must not be read: Lambda has none.
        "AWS_CONFIG_FILE": str(layer.parent / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(layer.parent / "no-aws-credentials"),
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
        "PYTHONPATH": str(layer / "python"),
    }
    if function is not None:
        name = f"{STACK}-{function.logical_id}"
        env |= {
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]00000000000000000000000000000000",
            "LAMBDA_TASK_ROOT": str(function.code_dir),
            "_HANDLER": f"{function.module}.{function.attribute}",
            "PYTHONPATH": f"{function.code_dir}{os.pathsep}{layer / 'python'}",
            **function.environ,
        }
    return env


# -- running and timing ---------------------------------------------------------------------------


def run(python: Path, variant: Variant, *extra: str) -> subprocess.CompletedProcess[str]:
    """One fresh process of the variant; raises with its output if it fails."""
    done = subprocess.run(
        [str(python), "-S", *extra, "-c", variant.code, *variant.args],
        cwd=variant.cwd,
        env=variant.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{variant.name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def result(stdout: str) -> dict[str, Any]:
    """The child's `RESULT {json}` line (Powertools may log lines of its own to stdout)."""
    line = next((line for line in reversed(stdout.splitlines()) if line.startswith("RESULT ")), "")
    if not line:
        raise RuntimeError(f"no RESULT line in the output: {stdout[-300:]!r}")
    answer: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return answer


def check_bad_signature(stdout: str) -> None:
    """The forged callback must be refused."""
    answer = result(stdout)
    if answer["status"] != 401:
        raise RuntimeError(f"forged callback answered {answer['status']}, not 401")


def time_rounds(python: Path, variants: list[Variant], runs: int, seed: int) -> None:
    """`runs` rounds, each variant once per round in a shuffled order; samples in ms."""
    shuffler = random.Random(seed)
    for variant in variants:  # warm the OS file cache; not counted
        try:
            done = run(python, variant)
            if variant.check is not None:
                variant.check(done.stdout)
        except RuntimeError as exc:
            if variant.table == "floor":
                raise
            # A handler that cannot start is a result to report, not a reason to stop.
            variant.error = str(exc).strip().splitlines()[-1]
    healthy = [v for v in variants if v.error is None]
    for number in range(runs):
        order = list(healthy)
        shuffler.shuffle(order)
        for variant in order:
            start = time.perf_counter()
            done = run(python, variant)
            variant.samples.append((time.perf_counter() - start) * 1000)
            if variant.check is not None:
                variant.check(done.stdout)
        print(f"\rround {number + 1}/{runs}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


def p90(values: list[float]) -> float:
    """The 90th percentile (inclusive method: within the samples' range)."""
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


# -- import profile -------------------------------------------------------------------------------


def import_lines(python: Path, variant: Variant) -> list[tuple[int, str, int, int]]:
    """One `-X importtime` run: (depth, module, self µs, cumulative µs) in the order printed,
    which is each module after everything it imported."""
    lines = []
    for line in run(python, variant, "-X", "importtime").stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        self_us, cumulative_us, raw = line.removeprefix("import time:").split("|")
        if self_us.strip().isdigit():  # not the header
            depth = (len(raw) - len(raw.lstrip()) - 1) // 2
            lines.append((depth, raw.strip(), int(self_us), int(cumulative_us)))
    return lines


def import_profile(python: Path, variant: Variant, repeats: int = 3) -> dict[str, tuple[int, int]]:
    """`-X importtime` of the variant: module → (median self µs, median cumulative µs)."""
    seen: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for _ in range(repeats):
        for _, name, self_us, cumulative_us in import_lines(python, variant):
            seen[name].append((self_us, cumulative_us))
    return {
        name: (
            int(statistics.median(s for s, _ in pairs)),
            int(statistics.median(c for _, c in pairs)),
        )
        for name, pairs in seen.items()
    }


def importer_of(lines: list[tuple[int, str, int, int]], module: str) -> tuple[str, int] | None:
    """Which module imported `module` first, and `module`'s cumulative µs; None if not imported."""
    for index, (depth, name, _, cumulative_us) in enumerate(lines):
        if name == module:
            parent = next((n for d, n, _, _ in lines[index + 1 :] if d < depth), None)
            return parent or "the code run", cumulative_us
    return None


def top_imports(profile: dict[str, tuple[int, int]], module: str) -> tuple[str, str]:
    """The 5 largest cumulative imports (one per top-level package, the handler's own module
    left out) and the 5 packages with the most self time, as printable lists."""
    cumulative, packages = [], set()
    for name, (_, total) in sorted(profile.items(), key=lambda item: -item[1][1]):
        package = name.split(".")[0]
        if name == module or package in packages:
            continue
        packages.add(package)
        cumulative.append(f"{name} {total / 1000:.0f}")
        if len(cumulative) == 5:
            break
    own: dict[str, int] = defaultdict(int)
    for name, (self_us, _) in profile.items():
        own[name.split(".")[0]] += self_us
    ranked = sorted(own.items(), key=lambda item: -item[1])[:5]
    return ", ".join(cumulative), ", ".join(f"{name} {us / 1000:.0f}" for name, us in ranked)


# -- the report -----------------------------------------------------------------------------------


def print_table(title: str, variants: list[Variant], floor: float, verdicts: bool) -> None:
    """name, median, p90, x floor (and verdict against the target)."""
    print(f"\n{title}")
    header = f"{'name':<28}{'median ms':>11}{'p90 ms':>10}{'x floor':>9}"
    print(header + (f"{'verdict':>9}" if verdicts else ""))
    for variant in variants:
        if variant.error is not None:
            print(
                f"{variant.name:<28}did not start ({variant.error})" + (" FAIL" if verdicts else "")
            )
            continue
        median = statistics.median(variant.samples)
        line = f"{variant.name:<28}{median:>11.1f}{p90(variant.samples):>10.1f}"
        line += f"{median / floor:>9.2f}"
        if verdicts:
            line += f"{'PASS' if median <= TARGET * floor else 'FAIL':>9}"
        print(line)


def make_variants(
    python: Path, layer: Path, functions: list[Function], local: dict[str, str]
) -> list[Variant]:
    """The floor, each function's Init and Init + first-request collaborators, and the forged
    callback. `local` points the first requests at the local extension and moto."""
    base = lambda_environ(python, layer, None)
    variants = [Variant("floor", name, code, layer.parent, base) for name, code in FLOOR.items()]
    for f in functions:
        env = lambda_environ(python, layer, f)
        init = f"import {f.module} as m\nm.{f.attribute}"
        variants.append(Variant("init", f.name, init, f.code_dir, env))
        if f.name in FIRST_REQUEST:
            code = f"{init}\n{FIRST_REQUEST[f.name]}"
            variants.append(Variant("clients", f.name, code, f.code_dir, env | local))
    receiver = next(f for f in functions if f.name == "callbacks")
    forged = json.loads((ROOT / "events/api/callback.json").read_text(encoding="utf-8"))
    forged["queryStringParameters"] = {"sig": "not-the-signature"}
    forged["multiValueQueryStringParameters"] = {"sig": ["not-the-signature"]}
    function_name = f"{STACK}-{receiver.logical_id}"
    code = BAD_SIGNATURE.format(
        module=receiver.module,
        attribute=receiver.attribute,
        function_name=function_name,
        function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}",
        memory=receiver.memory,
    )
    env = lambda_environ(python, layer, receiver) | local
    forged_args = [json.dumps(forged)]
    variants.append(
        Variant(
            "forged", "callbacks", code, receiver.code_dir, env, forged_args, check_bad_signature
        )
    )
    return variants


def probe(python: Path, init: Variant, function: Function) -> dict[str, Any]:
    """What the function's Init loaded (one untimed run)."""
    code = PROBE.format(
        module=function.module, attribute=function.attribute, build=str(function.code_dir.parent)
    )
    return result(run(python, Variant("probe", init.name, code, init.cwd, init.env)).stdout)


def print_loaded(probes: dict[str, dict[str, Any]]) -> None:
    """Which SDKs and libraries each Init loaded, and anything from outside the build."""
    print("\nwhat Init loaded (one run each; botocore = its modules)")
    print(
        f"{'name':<12}{'modules':>8}{'boto3':>7}{'botocore':>10}{'pydantic':>10}{'httpx':>7}"
        "  from outside the build"
    )
    for name, found in probes.items():
        print(
            f"{name:<12}{found['modules']:>8}{_yes(found['boto3']):>7}{found['botocore']:>10}"
            f"{_yes(found['pydantic']):>10}{_yes(found['httpx']):>7}"
            f"  {', '.join(found['foreign']) or 'nothing'}"
        )


def print_forged(
    forged: Variant,
    answer: dict[str, Any] | None,
    lines: list[tuple[int, str, int, int]],
    floor: float,
) -> None:
    """The forged callback's cold path: time, reply, and which AWS SDK modules it loaded."""
    if answer is None:
        print(f"\ncallbacks, forged callback (wrong sig): FAIL, it did not run: {forged.error}")
        return
    median = statistics.median(forged.samples)
    print(
        f"\ncallbacks, forged callback (wrong sig), whole cold process: median {median:.1f} ms, "
        f"p90 {p90(forged.samples):.1f} ms, {median / floor:.2f}x floor; reply {answer['status']}"
    )
    print(f"  boto3 imported: {_yes(answer['boto3'])} -> {'FAIL' if answer['boto3'] else 'PASS'}")
    botocore = answer["botocore"]
    line = f"  botocore imported: {_yes(bool(botocore))}"
    if botocore:
        shown = ", ".join(botocore[:4]) + (", ..." if len(botocore) > 4 else "")
        plural = "s" if len(botocore) > 1 else ""
        line += f" ({len(botocore)} module{plural}: {shown}"
        first = importer_of(lines, "botocore")
        if first is not None:
            line += f"; imported by {first[0]}, {first[1] / 1000:.1f} ms cumulative"
        line += ")"
    machinery = [name for name in botocore if name != "botocore"]
    print(line + f" -> {'FAIL' if machinery else 'PASS (no botocore.* module)'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=MIN_RUNS, help="rounds (>= 15 for a verdict)")
    parser.add_argument("--seed", type=int, default=8, help="seed of the rounds' shuffled order")
    args = parser.parse_args()

    from wanflow_local.aws import LocalAws
    from wanflow_local.cfn import load_template
    from wanflow_local.secrets_extension import SecretsExtension

    python = find_python()
    with (
        tempfile.TemporaryDirectory(prefix="wanflow-coldstart-") as scratch,
        LocalAws(set_environ=False) as aws,
        SecretsExtension(aws.client("secretsmanager")) as extension,
    ):
        build_dir = Path(scratch) / "build"
        build(build_dir)
        layer = build_dir / "SharedLayer"
        template = load_template(ROOT / "template.yaml")
        functions = read_functions(template, build_dir, create_secrets(template, aws))
        pyc_before = sum(1 for _ in build_dir.rglob("*.pyc"))
        # Secrets come from the extension; a boto3 call that a function still makes goes to the
        # local moto, never to AWS.
        local = extension.environ() | {"AWS_ENDPOINT_URL": aws.endpoint_url}
        variants = make_variants(python, layer, functions, local)
        time_rounds(python, variants, args.runs, args.seed)
        forged = next(v for v in variants if v.table == "forged")
        forged_answer, forged_lines = None, []
        if forged.error is None:
            forged_answer = result(run(python, forged).stdout)
            forged_lines = import_lines(python, forged)
        inits = {v.name: v for v in variants if v.table == "init" and v.error is None}
        probes = {f.name: probe(python, inits[f.name], f) for f in functions if f.name in inits}
        profiles = {name: import_profile(python, v) for name, v in inits.items()}
        pyc_written = sum(1 for _ in build_dir.rglob("*.pyc")) - pyc_before

    by_table: dict[str, list[Variant]] = defaultdict(list)
    for variant in variants:
        by_table[variant.table].append(variant)
    floor = statistics.median(next(v for v in variants if v.name == FLOOR_NAME).samples)
    print(
        f"\nfresh {python.name} processes (Python {run_version(python)}), medians of {args.runs} "
        f"interleaved rounds (seed {args.seed}); target: Init <= {TARGET}x the floor"
        + ("" if args.runs >= MIN_RUNS else f" (fewer than {MIN_RUNS} rounds: indicative only)")
    )
    print_table("floor (the layer on PYTHONPATH)", by_table["floor"], floor, verdicts=False)
    print_table("Init: import app (what Lambda's Init phase runs)", by_table["init"], floor, True)
    print_table(
        "init + clients: Init, then the collaborators its first request builds (boto3 and httpx\n"
        "clients, secrets through the local extension over loopback); information, no target",
        by_table["clients"],
        floor,
        verdicts=False,
    )
    print_forged(forged, forged_answer, forged_lines, floor)
    print_loaded(probes)
    print("\nwhere Init goes (-X importtime, medians of 3 runs, ms)")
    for name, profile in profiles.items():
        cumulative, own = top_imports(profile, next(f.module for f in functions if f.name == name))
        print(f"{name:<12} top cumulative: {cumulative}")
        print(f"{'':<12} self by package: {own}")
    print(
        "\nbytecode: "
        + (
            "no .pyc written at run time (the build had them all)"
            if pyc_written == 0
            else f"{pyc_written} .pyc written at run time: the build missed them"
        )
    )
    broken = [f"{v.table} {v.name}" for v in variants if v.error is not None]
    if broken:
        print(f"did not start: {', '.join(broken)}")
    return 1 if broken else 0


def run_version(python: Path) -> str:
    """The interpreter's version, e.g. 3.12.1."""
    return subprocess.run(
        [str(python), "-S", "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


if __name__ == "__main__":
    raise SystemExit(main())
