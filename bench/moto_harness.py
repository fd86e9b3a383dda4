"""What the in-process moto harness costs: request rate, state transitions, callback latency.

Starts `LocalAws`, deploys the harness test stack (tests/integration/fixtures/harness), then
prints the medians of:
- DynamoDB put_item over HTTP to the in-process moto, one client, one thread (ops/s);
- an execution of N sequential `lambda:invoke` Task states (wall time, and per state);
- a one-Task execution, to separate per-execution from per-state cost;
- SendTaskSuccess → the next state's handler being called (waitForTaskToken resume).

    python bench/moto_harness.py [--runs 5] [--states 10] [--puts 500]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from wanflow_local.aws import LocalAws, wait_for_execution
from wanflow_local.deploy import Stack, deploy

TEMPLATE = Path(__file__).resolve().parents[1] / "tests/integration/fixtures/harness/template.yaml"


def put_item_rate(aws: LocalAws, stack: Stack, count: int) -> float:
    dynamodb = aws.client("dynamodb")
    table = stack.ref("TokensTable")
    started = time.perf_counter()
    for i in range(count):
        dynamodb.put_item(
            TableName=table,
            Item={"pk": {"S": f"bench-{i}"}, "status": {"S": "x"}, "created_at": {"N": "1"}},
        )
    return count / (time.perf_counter() - started)


def chain(aws: LocalAws, stack: Stack, states: int) -> str:
    """A state machine of `states` sequential lambda:invoke Tasks on the worker."""
    function_arn = stack.arn("WorkerFunction")
    definition = {
        "StartAt": "Step0",
        "States": {
            f"Step{i}": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
                "OutputPath": "$.Payload",
                **({"Next": f"Step{i + 1}"} if i < states - 1 else {"End": True}),
            }
            for i in range(states)
        },
    }
    return str(
        aws.client("stepfunctions").create_state_machine(
            name=f"bench-chain-{states}",
            definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{aws.account_id}:role/bench-chain",
        )["stateMachineArn"]
    )


def execution_seconds(aws: LocalAws, state_machine_arn: str) -> float:
    """Wall time from StartExecution to a terminal describe (polled every 5 ms)."""
    sfn = aws.client("stepfunctions")
    started = time.perf_counter()
    execution = sfn.start_execution(
        stateMachineArn=state_machine_arn,
        name=uuid.uuid4().hex,
        input=json.dumps({"op": "increment", "count": 0}),
    )["executionArn"]
    description = wait_for_execution(sfn, execution, interval=0.005)
    elapsed = time.perf_counter() - started
    if description["status"] != "SUCCEEDED":
        raise RuntimeError(f"bench execution ended {description['status']}")
    return elapsed


def resume_latency(aws: LocalAws, stack: Stack) -> float:
    """Seconds from SendTaskSuccess to the Resumed state's handler being called."""
    sfn, dynamodb = aws.client("stepfunctions"), aws.client("dynamodb")
    task_id = f"bench-{uuid.uuid4().hex}"
    execution = sfn.start_execution(
        stateMachineArn=stack.ref("CallbackStateMachine"),
        name=task_id,
        input=json.dumps({"task_id": task_id, "timeout_seconds": 60}),
    )["executionArn"]
    deadline = time.monotonic() + 10
    token = None
    while token is None and time.monotonic() < deadline:
        item = dynamodb.get_item(TableName=stack.ref("TokensTable"), Key={"pk": {"S": task_id}})
        token = item.get("Item", {}).get("token", {}).get("S")
        time.sleep(0.005)
    if token is None:
        raise RuntimeError("the callback handler stored no token")
    time.sleep(0.05)  # let the executor reach its wait, as a real callback would find it
    sent_at = time.time()
    sfn.send_task_success(taskToken=token, output="{}")
    description = wait_for_execution(sfn, execution, interval=0.005)
    called_at = float(json.loads(description["output"])["resumed"]["called_at"])
    return called_at - sent_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--states", type=int, default=10)
    parser.add_argument("--puts", type=int, default=500)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with LocalAws() as aws:
        started = time.perf_counter()
        stack = deploy(aws, TEMPLATE, stack_name="bench")
        deploy_s = time.perf_counter() - started
        long_chain, one_task = chain(aws, stack, args.states), chain(aws, stack, 1)
        execution_seconds(aws, long_chain)  # warm-up: first execution imports the interpreter

        rates = [put_item_rate(aws, stack, args.puts) for _ in range(args.runs)]
        chains = [execution_seconds(aws, long_chain) for _ in range(args.runs)]
        singles = [execution_seconds(aws, one_task) for _ in range(args.runs)]
        resumes = [resume_latency(aws, stack) for _ in range(args.runs)]
        stack.close()

    per_state = (statistics.median(chains) - statistics.median(singles)) / (args.states - 1)
    report: dict[str, Any] = {
        "first deploy of the harness stack (s)": round(deploy_s, 2),
        "dynamodb put_item over HTTP (ops/s)": round(statistics.median(rates)),
        f"execution of {args.states} sequential Tasks (s)": round(statistics.median(chains), 3),
        "execution of 1 Task (s)": round(statistics.median(singles), 3),
        "per extra Task state (ms)": round(per_state * 1000, 1),
        "SendTaskSuccess → next handler called (ms)": round(statistics.median(resumes) * 1000, 1),
    }
    for name, value in report.items():
        print(f"{name:48} {value}")


if __name__ == "__main__":
    main()
