"""What following a task costs and how quickly its end is seen, per model, on the local stack.

Runs `--tasks` simulated tasks per model (all submitted at once over HTTP through the local API
Gateway, 50 ms apart, models interleaved, each with a client webhook to a receiver on loopback
that accepts it: `clienthooks.py`) through the real state machine on moto with the
upstream simulator, waits (bounded) for every execution to end, then prints per model:
- state transitions per task: `*StateEntered` events in the execution's history (mean, p95);
- upstream polls per task: status requests the simulator recorded for the upstream task id,
  the finalize step's re-read included (mean, p95);
- DynamoDB writes per task: Put/Update/Delete/BatchWrite/TransactWrite calls the handlers made
  (a botocore hook on each function's `Runtime.dynamodb`, attributed by the `TASK#<id>` key; a
  failed conditional write counts, as DynamoDB bills it);
- detection delay: our record's `completed_at` minus the upstream task's real end, as a share
  of its generation time (p50, p95), and in upstream seconds;
- how each task completed (callback or poll: poll when a LookAtUpstream state ever looked
  upstream), and every task that did not succeed;
then the targets with PASS/FAIL: callback path ≤ 6 transitions and ≤ 6 writes per task (every
callback-path task), poll path p95 ≤ 12 polls and p95 detection delay ≤ 10 % of generation time.

    .venv/bin/python bench/lifecycle.py --tasks 20 [--time-scale 1.0] [--seed 0] [--timeout 900]

At time scale 1 a run takes about 2–3 minutes (the slowest model, wan2.6 t2v 1080p 5 s, takes
100–130 s upstream). Smaller scales are faster but distort the figures: every Wait is rounded up
to whole seconds, at least 1 s.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from clienthooks import hook_url, request_body, webhook_receiver
from stats import mean, p50, p95

from wanflow import clock, keys
from wanflow.task import TaskStatus
from wanflow_local.commands import DEV_API_KEY
from wanflow_local.simulator import Simulator
from wanflow_local.stack import LocalStack, local_stack

#: Model label → example request (events/requests/valid/<name>.json).
MODELS: dict[str, str] = {
    "wan2.6-image-to-video-flash": "wan2.6-image-to-video-flash",
    "wan22_i2v_flash": "wan22_i2v_flash",
    "wan26_i2v": "wan26_i2v",
    "wan26_i2i": "wan26_i2i-edit",
    "wan2.6 (t2v)": "wan2.6-t2v",
}
SUBMIT_SPACING_S = 0.05
WAIT_INTERVAL_S = 1.0
WRITE_OPERATIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)

CALLBACK_MAX_TRANSITIONS = 6
CALLBACK_MAX_WRITES = 6
POLL_P95_MAX_POLLS = 12
POLL_P95_MAX_DELAY_SHARE = 0.10


# --- DynamoDB writes -------------------------------------------------------------------------


@dataclass
class WriteCounter:
    """Counts DynamoDB write calls per task id, from any thread."""

    per_task: Counter[str] = field(default_factory=Counter)
    unattributed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """botocore `before-parameter-build` hook: `params` are the call's keyword arguments."""
        if model.name not in WRITE_OPERATIONS:
            return
        ids = _task_ids(model.name, params)
        with self._lock:
            self.per_task.update(ids)
            self.unattributed += 0 if ids else 1


def _task_ids(operation: str, params: dict[str, Any]) -> list[str]:
    """The task id of every item a write call touches (one entry per item)."""
    if operation == "BatchWriteItem":
        requests = [r for rs in params.get("RequestItems", {}).values() for r in rs]
        item_keys = [
            r["PutRequest"]["Item"] if "PutRequest" in r else r["DeleteRequest"]["Key"]
            for r in requests
        ]
    elif operation == "TransactWriteItems":
        actions = [a for t in params.get("TransactItems", []) for a in t.values()]
        item_keys = [a.get("Key") or a.get("Item") or {} for a in actions]
    else:
        item_keys = [params.get("Key") or params.get("Item") or {}]
    pks = [str(k.get("pk", {}).get("S", "")) for k in item_keys]
    return [task_id for pk in pks if (task_id := keys.task_id_of(pk)) is not None]


def count_handler_writes(stack: LocalStack) -> WriteCounter:
    """Hook every function's own DynamoDB client (the handlers run in this process)."""
    counter = WriteCounter()
    # before-parameter-build sees the keyword arguments (before-call only the serialised body);
    # it fires once per API call, botocore's retries excluded.
    for logical_id in stack.stack.functions:
        dynamodb = stack.function_runtime(logical_id).dynamodb
        dynamodb.meta.events.register("before-parameter-build.dynamodb", counter)
    return counter


# --- submitting and waiting ------------------------------------------------------------------


@dataclass
class Submitted:
    """One task as submitted: its model label and id (None if the submit failed)."""

    model: str
    task_id: str | None
    answer: str = ""


def _post(client: httpx.Client, url: str, model: str, body: dict[str, Any]) -> Submitted:
    response = client.post(url, json=body)
    if response.status_code != 202:
        return Submitted(model, None, f"HTTP {response.status_code}: {response.text[:300]}")
    return Submitted(model, str(response.json()["id"]))


def submit_all(stack: LocalStack, tasks_per_model: int, hook: str) -> list[Submitted]:
    """POST every task, models interleaved, one every SUBMIT_SPACING_S, without waiting; each
    with the webhook `hook`."""
    bodies = {m: request_body(n, hook) for m, n in MODELS.items()}
    url = f"{stack.api.url}/v1/tasks"
    futures: list[Future[Submitted]] = []
    with (
        httpx.Client(
            timeout=httpx.Timeout(60.0), headers={"Authorization": f"Bearer {DEV_API_KEY}"}
        ) as client,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        for _ in range(tasks_per_model):
            for model, body in bodies.items():
                futures.append(pool.submit(_post, client, url, model, body))
                time.sleep(SUBMIT_SPACING_S)
        return [f.result() for f in futures]


def wait_all(stack: LocalStack, task_ids: Sequence[str], deadline: float) -> set[str]:
    """Wait until no execution of these tasks runs, or the deadline; returns those still running."""
    sfn = stack.aws.client("stepfunctions")
    machine = str(stack.stack.ref("TaskLifecycle"))
    wanted = set(task_ids)
    while True:
        running: set[str] = set()
        pages = sfn.get_paginator("list_executions").paginate(
            stateMachineArn=machine, statusFilter="RUNNING"
        )
        for page in pages:
            running.update(e["name"] for e in page["executions"] if e["name"] in wanted)
        if not running or time.monotonic() >= deadline:
            return running
        time.sleep(WAIT_INTERVAL_S)


def stop_leftovers(stack: LocalStack, task_ids: set[str]) -> None:
    """Stop executions still running at the run's timeout, so the stack can shut down."""
    sfn = stack.aws.client("stepfunctions")
    for task_id in task_ids:
        sfn.stop_execution(executionArn=stack.execution_arn(task_id), cause="bench timeout")


# --- measuring one task ----------------------------------------------------------------------


@dataclass
class Measure:
    """What one task cost and how late its end was seen."""

    model: str
    task_id: str
    status: str
    path: str  # "callback" or "poll"
    transitions: int
    polls: int
    writes: int
    delay_s: float | None  # upstream seconds
    delay_share: float | None  # of the generation time
    problem: str | None = None


@dataclass(frozen=True)
class Clocks:
    """Wall time minus monotonic time, sampled once in this process.

    The simulator runs in this process and keeps its task timelines in `time.monotonic()`
    seconds (already multiplied by the time scale); our records store `completed_at` as ISO UTC
    wall time (`datetime.now(UTC)`, millisecond precision). Both clocks are this process's, so
    monotonic + offset is wall time; the offset is the tightest of a few paired readings (its
    drift over a few minutes is far below the 1 ms precision of `completed_at`). Real seconds
    are divided by the time scale to give upstream seconds; the share needs no scaling.
    """

    offset_s: float

    @classmethod
    def sample(cls) -> Clocks:
        """The offset from the paired reading with the shortest gap between its two reads."""
        best: tuple[float, float] | None = None
        for _ in range(20):
            before = time.monotonic()
            wall = time.time()
            gap = time.monotonic() - before
            if best is None or gap < best[0]:
                best = (gap, wall - (before + gap / 2))
        assert best is not None
        return cls(best[1])

    def wall(self, monotonic_s: float) -> float:
        """A monotonic reading as epoch seconds."""
        return monotonic_s + self.offset_s


def _epoch(iso: str) -> float:
    return clock.parse(iso).timestamp()


def upstream_times(sim: Simulator, upstream_id: str) -> tuple[float, float | None] | None:
    """(created, ended) of an upstream task in the simulator's monotonic seconds."""
    # The simulator exposes its timelines only on SimTask; reading its table is fine in a bench.
    task = sim._tasks.get(upstream_id)
    if task is None:
        return None
    return task.created_at, task.ended_at(time.monotonic())


def _delay(
    times: tuple[float, float | None] | None, completed_at: str | None, clocks: Clocks, scale: float
) -> tuple[float | None, float | None]:
    """(delay in upstream seconds, delay as a share of the generation time), if both ended.

    Generation time is the upstream task's whole life, creation to end (queue included), the
    span the catalog's timing and the poll schedule are about.
    """
    if times is None or completed_at is None:
        return None, None
    created, ended = times
    if ended is None:
        return None, None
    delay_real = _epoch(completed_at) - clocks.wall(ended)
    return delay_real / scale, delay_real / (ended - created)


def measure(
    stack: LocalStack, sub: Submitted, writes: WriteCounter, clocks: Clocks, scale: float
) -> Measure:
    """Read back one ended task: its history, its record, the simulator's view of it."""
    assert stack.sim is not None
    assert sub.task_id is not None
    history = stack.history(sub.task_id)
    record = stack.store.get(sub.task_id)
    transitions = sum(str(e["type"]).endswith("StateEntered") for e in history)
    upstream_id = record.upstream_id
    polls = sum(r.task_id == upstream_id for r in stack.sim.requests("status"))
    times = upstream_times(stack.sim, upstream_id) if upstream_id else None
    delay_s, share = _delay(times, record.completed_at, clocks, scale)
    status = record.status.value
    problem = None if record.status is TaskStatus.SUCCEEDED else _describe_problem(record)
    return Measure(
        sub.model,
        sub.task_id,
        status,
        "poll" if record.polls else "callback",
        transitions,
        polls,
        writes.per_task[sub.task_id],
        delay_s,
        share,
        problem,
    )


def _describe_problem(record: Any) -> str:
    error = record.error
    detail = f"{error.code}: {error.message}" if error else "no error recorded"
    return f"{record.status.value} ({detail})"


# --- reporting -------------------------------------------------------------------------------


ROW = "{:<28} {:>3} {:>8} {:>11} {:>11} {:>11} {:>13} {:>13} {:>6}"


def table(measures: Sequence[Measure]) -> list[str]:
    """One line per model: counts, means/p95s and detection delays."""
    lines = [
        ROW.format(
            "model",
            "n",
            "cb/poll",
            "transitions",
            "polls",
            "ddb writes",
            "delay % gen",
            "delay up-s",
            "not ok",
        ),
        ROW.format("", "", "", "mean/p95", "mean/p95", "mean/p95", "p50/p95", "p50/p95", ""),
    ]
    for model in MODELS:
        rows = [m for m in measures if m.model == model]
        paths = Counter(m.path for m in rows)
        shares = [100 * m.delay_share for m in rows if m.delay_share is not None]
        delays = [m.delay_s for m in rows if m.delay_s is not None]
        lines.append(
            ROW.format(
                model,
                len(rows),
                f"{paths['callback']}/{paths['poll']}",
                _pair(mean([m.transitions for m in rows]), p95([m.transitions for m in rows])),
                _pair(mean([m.polls for m in rows]), p95([m.polls for m in rows])),
                _pair(mean([m.writes for m in rows]), p95([m.writes for m in rows])),
                _pair(p50(shares), p95(shares)),
                _pair(p50(delays), p95(delays)),
                sum(m.status != TaskStatus.SUCCEEDED.value for m in rows),
            )
        )
    return lines


def _pair(first: float, second: float) -> str:
    return f"{first:.1f}/{second:.1f}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def targets(measures: Sequence[Measure]) -> list[str]:
    """The targets, per model and path that has tasks, with PASS/FAIL."""
    lines = []
    for model in MODELS:
        callback = [m for m in measures if m.model == model and m.path == "callback"]
        poll = [m for m in measures if m.model == model and m.path == "poll"]
        if callback:
            most_t = max(m.transitions for m in callback)
            most_w = max(m.writes for m in callback)
            lines.append(
                f"{model:<28} callback ({len(callback)}): max transitions {most_t} "
                f"(≤ {CALLBACK_MAX_TRANSITIONS}) {_verdict(most_t <= CALLBACK_MAX_TRANSITIONS)}"
                f"; max writes {most_w} (≤ {CALLBACK_MAX_WRITES}) "
                f"{_verdict(most_w <= CALLBACK_MAX_WRITES)}"
            )
        if poll:
            polls = p95([m.polls for m in poll])
            shares = [m.delay_share for m in poll if m.delay_share is not None]
            delay = p95(shares)
            delay_ok = len(shares) == len(poll) and delay <= POLL_P95_MAX_DELAY_SHARE
            lines.append(
                f"{model:<28} poll ({len(poll)}): p95 polls {polls:.0f} (≤ {POLL_P95_MAX_POLLS}) "
                f"{_verdict(polls <= POLL_P95_MAX_POLLS)}; p95 delay {100 * delay:.1f} % "
                f"(≤ {100 * POLL_P95_MAX_DELAY_SHARE:.0f} %) {_verdict(delay_ok)}"
            )
    return lines


def failures(
    subs: Sequence[Submitted], measures: Sequence[Measure], leftover: set[str]
) -> list[str]:
    """Every task that did not succeed, with why."""
    lines = [f"{s.model}: submit failed: {s.answer}" for s in subs if s.task_id is None]
    lines += [f"{t}: execution still running at the run's timeout (stopped)" for t in leftover]
    lines += [f"{m.model} {m.task_id}: {m.problem}" for m in measures if m.problem]
    return lines


# --- the run ---------------------------------------------------------------------------------


def run(args: argparse.Namespace, say: Callable[[str], None]) -> None:
    """Start the stack, run every task, print the figures."""
    started = time.monotonic()
    with (
        local_stack(time_scale=args.time_scale, sim_seed=args.seed) as stack,
        webhook_receiver() as receiver,
    ):
        # The handlers' Powertools loggers (service "wanflow") log every invocation at INFO.
        logging.getLogger("wanflow").setLevel(logging.WARNING)
        writes = count_handler_writes(stack)
        clocks = Clocks.sample()
        say(f"stack up in {time.monotonic() - started:.1f} s; submitting ...")
        subs = submit_all(stack, args.tasks, hook_url(receiver))
        ids = [s.task_id for s in subs if s.task_id]
        say(f"{len(ids)} tasks submitted in {time.monotonic() - started:.1f} s; waiting ...")
        leftover = wait_all(stack, ids, started + args.timeout)
        stop_leftovers(stack, leftover)
        ended_s = time.monotonic() - started
        scale = args.time_scale
        done = [s for s in subs if s.task_id and s.task_id not in leftover]
        measures = [measure(stack, s, writes, clocks, scale) for s in done]
        say(f"waiting over {ended_s:.1f} s after start: every execution ended or was stopped\n")
        say(
            f"{args.tasks} tasks per model, time scale {scale}, seed {args.seed}; "
            "delays in upstream seconds"
        )
        for line in table(measures):
            say(line)
        say("\ntargets")
        for line in targets(measures):
            say(line)
        delays = [m.delay_s for m in measures if m.delay_s is not None]
        if delays:  # a negative delay would mean the two clocks were not converted right
            say(f"\nsmallest detection delay: {min(delays):.3f} upstream s (must be ≥ 0)")
        bad = failures(subs, measures, leftover)
        say(f"\ntasks not succeeded: {len(bad)}")
        for line in bad:
            say(f"  {line}")
        if writes.unattributed:
            say(f"DynamoDB writes without a task key: {writes.unattributed}")
    say(f"\nwall time {time.monotonic() - started:.1f} s (stack start to stop)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20, help="tasks per model (default 20)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="default 1.0")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="run-level limit in seconds (default 900)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # The handlers share one cached boto3 client per service while moto runs many of them at
    # once (one at a time per container on Lambda), so urllib3 warns that its pool of 10 is full.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    run(args, lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
