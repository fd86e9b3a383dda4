"""What following a task costs on AWS, wanflow beside a naive design, priced per 1,000 tasks.

Runs `--tasks-per-model` simulated tasks of each of the five models (their modes in turn:
wan2.6 t2v/i2v/r2v, wan26_i2i edit/interleave; the requests of events/requests/valid, each with a
client webhook to a receiver on loopback) through the local stack, with the simulator at its
realistic durations (triangular over each request's catalog range). The same number of tasks,
with the same requests, run at the same time through the naive design (`cost_naive.py`: no
callbacks, a poll every 10 upstream seconds, the same steps). At most `--concurrency` tasks are
in flight; the two designs alternate, so both see the same load. The work is split over
`--shards` processes, each with a stack of its own (one moto per process, and one process keeps
only one core busy: moto's request handling is most of the CPU), then added up.

Counted per task, from the real sources:
- state transitions: the execution history from moto, as AWS bills them (every state entered,
  Choice, Wait and Succeed included, plus every retried Task attempt);
- Lambda invocations and their billed duration: every handler call, wherever the local stack
  makes it (`cost_meter.py`), with each function's MemorySize from template.yaml;
- DynamoDB read and write units: from item sizes by DynamoDB's rules (`cost_meter.py` says
  why and how: moto does not bill);
- API Gateway requests (submit, upstream callbacks), SQS requests (send, receive, delete of the
  notify messages), S3 requests (result copies), Secrets Manager calls;
- upstream polls: status requests in the simulator's request record, finalize's re-read included;
- detection delay: the upstream task's end (simulator) to our terminal write (`completed_at`),
  in upstream seconds (real seconds divided by the time scale).
Then everything is priced with the table below: per model and in total, wanflow's and the naive
design's cost per 1,000 tasks by service, the generation cost (the simulator's `usage.cost`),
orchestration as a share of generation and wanflow's bill as a share of the naive one, with the
target (≤ 0.2 % of generation, issue 15's with the looks in the state machine) as PASS/FAIL.
Issue 8's other target, ≤ 40 % of the naive bill, was given up with the SQS poll chain: a look
in the state machine costs three transitions, the price of exactly-once looks in the
execution's history; the ratio is still printed, as a figure.

    .venv/bin/python bench/cost.py [--tasks-per-model 100] [--time-scale 1] [--seed 0]
                                   [--concurrency 120] [--shards 2]
    .venv/bin/python bench/cost.py --quick        # 5 tasks per model, about 2.5 minutes

Time scale: every Wait state lasts whole seconds (`Config.scaled_wait`: rounded, at least 1 s),
so below 1 a wait of w upstream seconds lasts max(1, round(w·F))/F of them and the schedule's
short waits (1 upstream second at the least) stretch: fewer polls and longer delays than on AWS.
The default 1 runs every wait exactly as AWS would; the run prints what a smaller scale does to
the shortest waits. A smaller scale would not make the run much shorter anyway: it is bound by
CPU (about 0.8 CPU-seconds per task here), not by the tasks' durations.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from clienthooks import EXAMPLES, hook_url, request_body, webhook_receiver
from cost_meter import Meter, Usage
from cost_naive import HEADER, NAIVE, POLL_S, DesignSwitch, deploy_naive
from stats import mean, p50, p95

from wanflow import clock
from wanflow.catalog import validate
from wanflow.schedule import MIN_STEP_S, step_s
from wanflow.store import TaskStore
from wanflow.task import TaskStatus
from wanflow_local.aws import execution_history
from wanflow_local.commands import DEV_API_KEY
from wanflow_local.stack import LocalStack, local_stack

#: Model → its example requests, one per mode (events/requests/valid/<name>.json).
MODELS: dict[str, tuple[str, ...]] = {
    "wan2.6-image-to-video-flash": ("wan2.6-image-to-video-flash",),
    "wan22_i2v_flash": ("wan22_i2v_flash",),
    "wan26_i2v": ("wan26_i2v",),
    "wan26_i2i": ("wan26_i2i-edit", "wan26_i2i-interleave"),
    "wan2.6": ("wan2.6-t2v", "wan2.6-i2v", "wan2.6-r2v"),
}
WANFLOW = "wanflow"
DESIGNS = (WANFLOW, NAIVE)

# Public AWS list prices, us-east-1, USD, as issue 8 gives them and the pricing pages show them
# in 2025 (aws.amazon.com/{step-functions,lambda,dynamodb,api-gateway,sqs,s3,secrets-manager}/
# pricing; DynamoDB on-demand after its November 2024 cut). Free tiers are ignored.
PRICES: dict[str, float] = {
    "sfn_transition": 0.025 / 1_000,  # Step Functions Standard, per state transition
    "lambda_request": 0.20 / 1_000_000,  # per invocation
    "lambda_gb_s": 0.0000166667,  # x86_64, per GB-second of billed duration
    "dynamodb_wru": 0.625 / 1_000_000,  # on-demand write request unit
    "dynamodb_rru": 0.125 / 1_000_000,  # on-demand read request unit
    "apigw_request": 3.50 / 1_000_000,  # REST API, first 333 million a month
    "sqs_request": 0.40 / 1_000_000,  # standard queue, per 64 KB request
    "s3_put": 0.005 / 1_000,  # S3 Standard PUT, COPY, POST, LIST
    "s3_get": 0.0004 / 1_000,  # S3 Standard GET and others
    "secrets_call": 0.05 / 10_000,  # Secrets Manager API calls
}
SERVICES = (
    "Step Functions",
    "Lambda requests",
    "Lambda compute",
    "DynamoDB",
    "API Gateway",
    "SQS",
    "S3",
    "Secrets Manager",
)
# Issue 15: the looks run in the state machine (3 transitions each, about $0.0004 a task).
TARGET_SHARE_OF_GENERATION = 0.002

TICK_S = 1.0
SUBMITS_PER_TICK = 4
DRAIN_TIMEOUT_S = 60.0


# --- running the tasks -------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One task to run: which design, model and example request."""

    design: str
    model: str
    example: str


@dataclass
class Submitted:
    """A job once submitted: its task id, or why the submit failed."""

    job: Job
    task_id: str | None
    problem: str = ""


def plan(rounds: range) -> list[Job]:
    """Every job of these rounds (a round: one task per model and design), models interleaved
    and the designs alternating, modes taken in turn."""
    jobs = []
    for i in rounds:
        for model, examples in MODELS.items():
            for design in DESIGNS:
                jobs.append(Job(design, model, examples[i % len(examples)]))
    return jobs


def _submit(http: httpx.Client, url: str, job: Job, body: dict[str, Any]) -> Submitted:
    headers = {HEADER: NAIVE} if job.design == NAIVE else {}
    try:
        answer = http.post(url, json=body, headers=headers)
    except httpx.HTTPError as error:
        return Submitted(job, None, f"{type(error).__name__}: {error}")
    if answer.status_code != 202:
        return Submitted(job, None, f"HTTP {answer.status_code}: {answer.text[:300]}")
    return Submitted(job, str(answer.json()["id"]))


def _running(sfn: Any, machines: Sequence[str]) -> set[str]:
    names: set[str] = set()
    for machine in machines:
        pages = sfn.get_paginator("list_executions").paginate(
            stateMachineArn=machine, statusFilter="RUNNING"
        )
        for page in pages:
            names.update(e["name"] for e in page["executions"])
    return names


@dataclass
class Run:
    """What the window of tasks produced."""

    ended: list[Submitted] = field(default_factory=list)
    failed: list[Submitted] = field(default_factory=list)
    leftover: list[Submitted] = field(default_factory=list)


def run_jobs(
    stack: LocalStack,
    jobs: Sequence[Job],
    bodies: dict[str, dict[str, Any]],
    machines: Sequence[str],
    *,
    window: int,
    deadline: float,
    say: Callable[[str], None],
) -> Run:
    """Keep up to `window` tasks in flight until every job ran (or the deadline)."""
    sfn = stack.aws.client("stepfunctions")
    url = f"{stack.api.url}/v1/tasks"
    pending, inflight, run = deque(jobs), dict[str, Submitted](), Run()
    started = last_report = time.monotonic()
    auth = {"Authorization": f"Bearer {DEV_API_KEY}"}
    with httpx.Client(timeout=httpx.Timeout(60.0), headers=auth) as http:
        while (pending or inflight) and time.monotonic() < deadline:
            tick = time.monotonic()
            running = _running(sfn, machines)
            for task_id in [t for t in inflight if t not in running]:
                run.ended.append(inflight.pop(task_id))
            for _ in range(min(window - len(inflight), SUBMITS_PER_TICK, len(pending))):
                job = pending.popleft()
                submitted = _submit(http, url, job, bodies[job.example])
                if submitted.task_id is None:
                    run.failed.append(submitted)
                else:
                    inflight[submitted.task_id] = submitted
            if tick - last_report >= 30:
                last_report = tick
                say(
                    f"  {tick - started:5.0f} s: {len(run.ended)} ended, {len(inflight)} in "
                    f"flight, {len(pending)} to submit"
                )
            time.sleep(max(0.0, TICK_S - (time.monotonic() - tick)))
    run.leftover = list(inflight.values())
    for submitted in run.leftover:  # stop them, so the stack can shut down
        sfn.stop_execution(executionArn=_execution_arn(machines, submitted), cause="bench timeout")
    return run


def _execution_arn(machines: Sequence[str], submitted: Submitted) -> str:
    machine = machines[DESIGNS.index(submitted.job.design)]
    return machine.replace(":stateMachine:", ":execution:") + f":{submitted.task_id}"


def drain_notifications(stack: LocalStack, receiver: ThreadingHTTPServer) -> None:
    """Wait (bounded) until the notify queue is empty and the receiver has stopped receiving."""
    sqs = stack.aws.client("sqs")
    queue = str(stack.stack.ref("NotifyQueue"))
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    seen = -1
    while time.monotonic() < deadline:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        waiting = sum(int(v) for v in attributes.values())
        received: int = receiver.received  # type: ignore[attr-defined]
        if waiting == 0 and received == seen:
            return
        seen = received
        time.sleep(2.0)


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One task, measured."""

    design: str
    model: str
    example: str
    task_id: str
    status: str
    path: str  # "callback" or "poll"
    transitions: int
    polls: int
    delay_s: float | None  # upstream seconds
    generation_usd: float
    usage: Usage
    problem: str | None = None


def billed_transitions(history: Sequence[Any]) -> int:
    """State transitions as Step Functions Standard bills them: every state entered, and every
    retried attempt of a Task (a retry is a transition too)."""
    types = Counter(str(e["type"]) for e in history)
    entered = sum(n for kind, n in types.items() if kind.endswith("StateEntered"))
    scheduled = types["TaskScheduled"] + types["LambdaFunctionScheduled"]
    return entered + max(0, scheduled - types["TaskStateEntered"])


def _epoch(iso: str) -> float:
    return clock.parse(iso).timestamp()


@dataclass(frozen=True)
class Readback:
    """Where an ended task is read back from: its execution, its record, the simulator."""

    stack: LocalStack
    machines: Sequence[str]
    store: TaskStore
    polls: Counter[str | None]
    meter: Meter
    scale: float

    def measure(self, submitted: Submitted) -> Outcome:
        """One ended task, measured."""
        sim = self.stack.sim
        assert sim is not None
        assert submitted.task_id is not None
        sfn = self.stack.aws.client("stepfunctions")
        history = execution_history(sfn, _execution_arn(self.machines, submitted))
        record = self.store.get(submitted.task_id)
        delay = None
        timeline = sim.timeline(record.upstream_id) if record.upstream_id else None
        if timeline and timeline[1] is not None and record.completed_at:
            delay = (_epoch(record.completed_at) - timeline[1]) / self.scale
        cost = record.usage.cost_usd if record.usage else None
        problem = None
        if record.status is not TaskStatus.SUCCEEDED:
            error = record.error
            problem = f"{record.status.value} ({error.code}: {error.message})" if error else "?"
        return Outcome(
            design=submitted.job.design,
            model=submitted.job.model,
            example=submitted.job.example,
            task_id=submitted.task_id,
            status=record.status.value,
            path="poll" if record.polls else "callback",
            transitions=billed_transitions(history),
            polls=self.polls[record.upstream_id],
            delay_s=delay,
            generation_usd=float(cost or 0),
            usage=self.meter.per_task[submitted.task_id],
            problem=problem,
        )


# --- pricing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pricing:
    """What a task's usage costs: the price table, each function's memory, the API functions."""

    memory_gb: dict[str, float]
    api_functions: frozenset[str]
    shared: dict[str, float]
    """Usage no task can be charged for alone (the authorizer, secrets), per task."""

    def usage(self, outcome: Outcome) -> dict[str, float]:
        """The task's own usage plus its part of the shared usage."""
        total = dict(outcome.usage)
        for metric, amount in self.shared.items():
            total[metric] = total.get(metric, 0.0) + amount
        return total

    def bill(self, outcome: Outcome) -> dict[str, float]:
        """USD by service for one task."""
        used = self.usage(outcome)
        invocations = _invocations(used)
        gb_s = sum(
            v / 1000 * self.memory_gb[k.removeprefix("lambda_ms:")]
            for k, v in used.items()
            if k.startswith("lambda_ms:")
        )
        api = sum(used.get(f"lambda:{name}", 0.0) for name in self.api_functions)
        return {
            "Step Functions": outcome.transitions * PRICES["sfn_transition"],
            "Lambda requests": invocations * PRICES["lambda_request"],
            "Lambda compute": gb_s * PRICES["lambda_gb_s"],
            "DynamoDB": used.get("rru", 0.0) * PRICES["dynamodb_rru"]
            + used.get("wru", 0.0) * PRICES["dynamodb_wru"],
            "API Gateway": api * PRICES["apigw_request"],
            "SQS": used.get("sqs", 0.0) * PRICES["sqs_request"],
            "S3": used.get("s3_put", 0.0) * PRICES["s3_put"]
            + used.get("s3_get", 0.0) * PRICES["s3_get"],
            "Secrets Manager": used.get("secrets", 0.0) * PRICES["secrets_call"],
        }


def pricing_of(shards: Sequence[Shard]) -> Pricing:
    """The shards' function memory and API functions, their shared usage spread over every task."""
    tasks = max(1, sum(len(shard.outcomes) for shard in shards))
    shared: dict[str, float] = {}
    for shard in shards:
        for metric, amount in shard.shared.items():
            shared[metric] = shared.get(metric, 0.0) + amount / tasks
    first = shards[0]
    return Pricing(first.memory_gb, frozenset(first.api_functions), shared)


# --- reporting ---------------------------------------------------------------------------------


TOTAL = "all models"
COUNTS = "{:<28} {:<7} {:>4} {:>4} {:>8} {:>6} {:>7} {:>6} {:>6} {:>6} {:>12}"


def _groups(outcomes: Sequence[Outcome]) -> Iterator[tuple[str, str, list[Outcome]]]:
    for model in [*MODELS, TOTAL]:
        for design in DESIGNS:
            rows = [o for o in outcomes if o.design == design and model in (o.model, TOTAL)]
            yield model, design, rows


def counts_table(outcomes: Sequence[Outcome], pricing: Pricing) -> list[str]:
    """Per model and design: per-task means of what was counted, and the delay."""
    lines = [
        COUNTS.format(
            "model",
            "design",
            "n",
            "ok",
            "cb/poll",
            "trans",
            "lambda",
            "RRU",
            "WRU",
            "polls",
            "delay p50/p95",
        )
    ]
    for model, design, rows in _groups(outcomes):
        used = [pricing.usage(o) for o in rows]
        paths = Counter(o.path for o in rows)
        delays = [o.delay_s for o in rows if o.delay_s is not None]
        lines.append(
            COUNTS.format(
                model if design == WANFLOW else "",
                design,
                len(rows),
                sum(o.status == TaskStatus.SUCCEEDED.value for o in rows),
                f"{paths['callback']}/{paths['poll']}",
                f"{mean([o.transitions for o in rows]):.1f}",
                f"{mean([_invocations(u) for u in used]):.2f}",
                f"{mean([u.get('rru', 0.0) for u in used]):.1f}",
                f"{mean([u.get('wru', 0.0) for u in used]):.1f}",
                f"{mean([o.polls for o in rows]):.1f}",
                f"{p50(delays):.1f}/{p95(delays):.1f}",
            )
        )
    return lines


def _invocations(used: dict[str, float]) -> float:
    return sum(v for k, v in used.items() if k.startswith("lambda:"))


def _per_thousand(rows: Sequence[Outcome], pricing: Pricing) -> dict[str, float]:
    """USD per 1,000 tasks by service (the mean task's bill times 1,000)."""
    bills = [pricing.bill(o) for o in rows]
    return {s: 1000 * mean([b[s] for b in bills]) for s in SERVICES}


PER_MODEL = "{:<28} {:>10} {:>12} {:>9} {:>12} {:>9} {:>9}"


def model_cost_table(outcomes: Sequence[Outcome], pricing: Pricing) -> list[str]:
    """Per model: generation and orchestration per 1,000 tasks, shares of each other."""
    lines = [
        PER_MODEL.format(
            "model", "gen $/1k", "wanflow $/1k", "% of gen", "naive $/1k", "% of gen", "wf/naive"
        )
    ]
    for model in [*MODELS, TOTAL]:
        mine = [o for o in outcomes if model in (o.model, TOTAL)]
        ours = [o for o in mine if o.design == WANFLOW]
        theirs = [o for o in mine if o.design == NAIVE]
        ours_usd = sum(_per_thousand(ours, pricing).values())
        theirs_usd = sum(_per_thousand(theirs, pricing).values())
        generation = 1000 * mean([o.generation_usd for o in mine])
        lines.append(
            PER_MODEL.format(
                model,
                f"{generation:.2f}",
                f"{ours_usd:.4f}",
                f"{100 * ours_usd / generation:.3f}",
                f"{theirs_usd:.4f}",
                f"{100 * theirs_usd / generation:.3f}",
                f"{100 * ours_usd / theirs_usd:.0f} %",
            )
        )
    return lines


BY_SERVICE = "{:<34} {:>14} {:>14}"


def service_table(outcomes: Sequence[Outcome], pricing: Pricing) -> tuple[list[str], float, float]:
    """All models: cost per 1,000 tasks by service for each design; returns the two totals."""
    ours = _per_thousand([o for o in outcomes if o.design == WANFLOW], pricing)
    theirs = _per_thousand([o for o in outcomes if o.design == NAIVE], pricing)
    lines = [BY_SERVICE.format("USD per 1,000 tasks", "wanflow", "naive")]
    for service in SERVICES:
        lines.append(BY_SERVICE.format(service, f"{ours[service]:.5f}", f"{theirs[service]:.5f}"))
    total_ours, total_theirs = sum(ours.values()), sum(theirs.values())
    lines.append(BY_SERVICE.format("orchestration", f"{total_ours:.5f}", f"{total_theirs:.5f}"))
    for design in DESIGNS:
        rows = [o for o in outcomes if o.design == design]
        generation = 1000 * mean([o.generation_usd for o in rows])
        lines.append(BY_SERVICE.format(f"generation ({design}'s tasks)", "", f"{generation:.2f}"))
    return lines, total_ours, total_theirs


def targets(outcomes: Sequence[Outcome], ours: float, theirs: float) -> list[str]:
    """The target (issue 8's, as issue 15 moved it) with PASS/FAIL, and the naive ratio."""
    generation = 1000 * mean([o.generation_usd for o in outcomes if o.design == WANFLOW])
    share = ours / generation
    versus = ours / theirs
    return [
        f"orchestration / generation: {100 * share:.3f} % "
        f"(≤ {100 * TARGET_SHARE_OF_GENERATION:.1f} %) "
        f"{'PASS' if share <= TARGET_SHARE_OF_GENERATION else 'FAIL'}",
        f"wanflow / naive bill:       {100 * versus:.1f} % (no target since issue 15)",
    ]


def wait_note(stack: LocalStack, scale: float) -> list[str]:
    """What whole-second Wait states do to both designs' waits at this time scale."""
    config = stack.runtime("LifecycleFunction").config
    shortest = config.scaled_wait(MIN_STEP_S) / scale
    naive = config.scaled_wait(POLL_S) / scale
    lines = [
        f"Wait states last whole seconds: at time scale {scale:g} the schedule's shortest wait "
        f"({MIN_STEP_S:g} upstream s) lasts {shortest:.2f} upstream s"
        f"{' (as on AWS)' if shortest == MIN_STEP_S else ''}; the naive poll "
        f"({POLL_S:g} upstream s) lasts {naive:.2f}"
    ]
    stretched = []
    for examples in MODELS.values():
        for example in examples:
            timing = validate(json.loads((EXAMPLES / f"{example}.json").read_text())).timing
            if step_s(timing) < shortest:
                stretched.append(f"{example} (step {step_s(timing):.2f} s)")
    if stretched:
        lines.append(
            "STRETCHED at this scale (fewer polls, longer delays than on AWS): "
            + ", ".join(stretched)
        )
    return lines


def problems(run: Run, outcomes: Sequence[Outcome]) -> list[str]:
    """Every task that did not succeed, with why."""
    lines = [f"{s.job.design} {s.job.example}: submit failed: {s.problem}" for s in run.failed]
    lines += [f"{s.job.design} {s.task_id}: still running at the timeout" for s in run.leftover]
    lines += [f"{o.design} {o.example} {o.task_id}: {o.problem}" for o in outcomes if o.problem]
    return lines


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Shard:
    """What one process measured; JSON between the processes."""

    outcomes: list[Outcome]
    problems: list[str]
    shared: dict[str, float]
    """Usage no task can be charged for alone, in total."""
    idle_receives: int
    unpriced: dict[str, int]
    webhooks: int
    memory_gb: dict[str, float]
    api_functions: list[str]
    notes: list[str]
    ran_s: float

    def to_json(self) -> str:
        """The shard as JSON."""
        # asdict() cannot copy a defaultdict (the usage): outcomes are flat, vars() will do.
        outcomes = [{**vars(o), "usage": dict(o.usage)} for o in self.outcomes]
        return json.dumps({**vars(self), "outcomes": outcomes})

    @classmethod
    def from_json(cls, text: str) -> Shard:
        """A shard back from its JSON."""
        data = json.loads(text)
        data["outcomes"] = [
            Outcome(**{**o, "usage": defaultdict(float, o["usage"])}) for o in data["outcomes"]
        ]
        return cls(**data)


def run_shard(
    args: argparse.Namespace, rounds: range, seed: int, window: int, say: Callable[[str], None]
) -> Shard:
    """Start a stack and the naive machine, run these rounds' jobs, meter and read back."""
    started = time.monotonic()
    scale = args.time_scale
    with (
        local_stack(time_scale=scale, sim_seed=seed, log_level="WARNING") as stack,
        webhook_receiver() as receiver,
    ):
        # The handlers' Powertools loggers (service "wanflow") log every invocation at INFO.
        logging.getLogger("wanflow").setLevel(logging.WARNING)
        naive_machine = deploy_naive(stack)
        machines = (str(stack.stack.ref("TaskLifecycle")), naive_machine)
        hook = hook_url(receiver)
        bodies = {e: request_body(e, hook) for examples in MODELS.values() for e in examples}
        jobs = plan(rounds)
        meter = Meter(stack.stack, stack.aws)
        with DesignSwitch(stack, naive_machine):
            meter.install()
            try:
                say(f"stack up in {time.monotonic() - started:.1f} s; {len(jobs)} tasks ...")
                done = run_jobs(
                    stack,
                    jobs,
                    bodies,
                    machines,
                    window=window,
                    deadline=started + args.timeout,
                    say=say,
                )
                drain_notifications(stack, receiver)
            finally:
                meter.uninstall()
        ran_s = time.monotonic() - started
        assert stack.sim is not None
        polls = Counter(r.task_id for r in stack.sim.requests("status"))
        store = TaskStore(str(stack.stack.ref("TasksTable")), stack.aws.client("dynamodb"))
        readback = Readback(stack, machines, store, polls, meter, scale)
        outcomes = [readback.measure(s) for s in done.ended]
        read_s = time.monotonic() - started - ran_s
        say(f"all tasks ended {ran_s:.0f} s after start, read back in {read_s:.0f} s")
        functions = stack.stack.functions
        return Shard(
            outcomes=outcomes,
            problems=problems(done, outcomes),
            shared=dict(meter.shared),
            idle_receives=meter.idle_receives,
            unpriced=dict(meter.unpriced),
            webhooks=receiver.received,  # type: ignore[attr-defined]
            memory_gb={k: f.memory_size / 1024 for k, f in functions.items()},
            api_functions=sorted({e.target for e in stack.stack.event_sources if e.type == "Api"}),
            notes=wait_note(stack, scale),
            ran_s=ran_s,
        )


def _rounds(tasks_per_model: int, shard: int, shards: int) -> range:
    """A shard's block of rounds (blocks, not every n-th round: each shard takes modes in turn)."""
    size = math.ceil(tasks_per_model / shards)
    return range(shard * size, min(tasks_per_model, (shard + 1) * size))


def run_shards(args: argparse.Namespace, say: Callable[[str], None]) -> list[Shard]:
    """Run every shard in a process of its own (one moto per process), at the same time."""
    window = math.ceil(args.concurrency / args.shards)
    if args.shards == 1:
        return [run_shard(args, range(args.tasks_per_model), args.seed, window, say)]
    with tempfile.TemporaryDirectory(prefix="wanflow-cost-") as tmp:
        outputs = [Path(tmp) / f"shard-{i}.json" for i in range(args.shards)]
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    *("--tasks-per-model", str(args.tasks_per_model)),
                    *("--time-scale", str(args.time_scale)),
                    *("--seed", str(args.seed)),
                    *("--concurrency", str(args.concurrency)),
                    *("--timeout", str(args.timeout)),
                    *("--shards", str(args.shards)),
                    *("--shard", str(i), "--output", str(output)),
                ]
            )
            for i, output in enumerate(outputs)
        ]
        codes = [worker.wait() for worker in workers]
        if any(codes):
            raise SystemExit(f"a shard failed: exit codes {codes}")
        return [Shard.from_json(output.read_text()) for output in outputs]


def report(args: argparse.Namespace, shards: Sequence[Shard], say: Callable[[str], None]) -> None:
    """Every table, the targets, and how it was counted."""
    outcomes = [o for shard in shards for o in shard.outcomes]
    pricing = pricing_of(shards)
    say(
        f"{args.tasks_per_model} tasks per model and design, time scale {args.time_scale:g}, "
        f"seed {args.seed}, {args.shards} processes, at most {args.concurrency} in flight; "
        "means per task; delays in upstream seconds"
    )
    for line in counts_table(outcomes, pricing):
        say(line)
    say("")
    for line in model_cost_table(outcomes, pricing):
        say(line)
    say("")
    lines, ours, theirs = service_table(outcomes, pricing)
    for line in lines:
        say(line)
    say("\ntargets")
    for line in targets(outcomes, ours, theirs):
        say(line)
    say("\nhow it was counted")
    for line in shards[0].notes:
        say(line)
    used = _sum_usage(outcomes, pricing)
    durations = ", ".join(
        f"{k.removeprefix('lambda_ms:')} {v / used[k.replace('_ms', '')]:.0f} ms"
        for k, v in sorted(used.items())
        if k.startswith("lambda_ms:") and used.get(k.replace("_ms", ""))
    )
    say(
        "Lambda billed duration = each invocation's in-process wall time, rounded up to the ms "
        f"(no cold starts; mean: {durations}); memory from template.yaml"
    )
    shared = ", ".join(f"{k} {v:.4f}" for k, v in sorted(pricing.shared.items()))
    say(f"shared usage spread over every task (per task): {shared or 'none'}")
    say(
        f"client webhooks received: {sum(s.webhooks for s in shards)}; empty ReceiveMessage "
        "calls of the local SQS poller (a fixed cost, not per task, not priced): "
        f"{sum(s.idle_receives for s in shards)}"
    )
    unpriced = Counter[str]()
    for shard in shards:
        unpriced.update(shard.unpriced)
    if unpriced:
        say(f"calls the meter could not price: {dict(unpriced)}")
    say(
        "not priced: CloudWatch Logs, X-Ray traces, KMS for the queue, data transfer, "
        "the upstream's own charges beyond usage.cost"
    )
    bad = [line for shard in shards for line in shard.problems]
    say(f"\ntasks not succeeded: {len(bad)}")
    for line in bad[:20]:
        say(f"  {line}")


def _sum_usage(outcomes: Sequence[Outcome], pricing: Pricing) -> dict[str, float]:
    total: dict[str, float] = {}
    for outcome in outcomes:
        for metric, amount in pricing.usage(outcome).items():
            total[metric] = total.get(metric, 0.0) + amount
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks-per-model", type=int, default=100, help="default 100")
    parser.add_argument("--time-scale", type=float, default=1.0, help="default 1 (see above)")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    parser.add_argument(
        "--concurrency", type=int, default=120, help="tasks in flight at most (default 120)"
    )
    parser.add_argument(
        "--shards", type=int, default=2, help="processes, each with its own stack (default 2)"
    )
    parser.add_argument(
        "--timeout", type=float, default=1200.0, help="run-level limit in seconds (default 1200)"
    )
    parser.add_argument("--quick", action="store_true", help="5 tasks per model")
    parser.add_argument("--shard", type=int, help=argparse.SUPPRESS)  # a worker's own flags
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.tasks_per_model = 5
    logging.basicConfig(level=logging.WARNING)
    # The handlers share one cached boto3 client per service while many run at once (one at a
    # time per container on Lambda), so urllib3 warns that its pool of 10 is full.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    if args.shard is not None:
        rounds = _rounds(args.tasks_per_model, args.shard, args.shards)
        window = math.ceil(args.concurrency / args.shards)
        shard = run_shard(
            args,
            rounds,
            args.seed * 1000 + args.shard,
            window,
            lambda line: print(f"[process {args.shard}] {line}", file=sys.stderr, flush=True),
        )
        args.output.write_text(shard.to_json())
        return
    started = time.monotonic()
    say = functools.partial(print, flush=True)
    shards = run_shards(args, say)
    say("")
    report(args, shards, say)
    say(f"\nwall time {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
