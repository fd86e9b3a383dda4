"""wanflow.observability: when metrics and traces are on, what a record holds, whose lines carry
which correlation id."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest

from wanflow import observability


def emf(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if '"_aws"' in line]


@pytest.fixture
def outside_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LAMBDA_TASK_ROOT", "POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_TRACE_DISABLED"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def in_lambda(monkeypatch: pytest.MonkeyPatch, outside_lambda: None) -> None:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")


def handler(event: Any, context: Any) -> str:
    return "answered"


@pytest.mark.usefixtures("outside_lambda")
def test_outside_lambda_nothing_is_written_and_handlers_are_not_wrapped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN the local stack's environment (no LAMBDA_TASK_ROOT, no settings)
    # WHEN a task ends and a counter is bumped in a handler
    observability.task_ended("wan26_i2i", "succeeded", polls=3, time_to_detect_s=1.5)
    counted = observability.log_metrics(lambda e, c: observability.count("UpstreamCalls"))
    counted({}, None)
    # THEN nothing is printed, and tracing leaves the handler as it is (no X-Ray SDK import)
    assert emf(capsys.readouterr().out) == []
    assert observability.trace_handler(handler) is handler


@pytest.mark.usefixtures("in_lambda")
def test_a_task_end_is_one_record_for_the_total_and_its_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    observability.task_ended("wan26_i2i", "timed_out", polls=12, time_to_detect_s=-0.2)
    [record] = emf(capsys.readouterr().out)
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Wanflow"
    # The alarm reads the [service] total; dashboards split by model.
    assert directive["Dimensions"] == [["service"], ["service", "model"]]
    assert (record["service"], record["model"]) == ("wanflow", "wan26_i2i")
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert units == {"TasksTimedOut": "Count", "PollsPerTask": "Count", "TimeToDetect": "Seconds"}
    assert record["TimeToDetect"] == [0.0]  # clock skew never gives a negative delay


@pytest.mark.usefixtures("in_lambda")
def test_an_invocation_s_counters_are_one_record_and_none_is_silent(
    capsys: pytest.CaptureFixture[str], recwarn: pytest.WarningsRecorder
) -> None:
    @observability.log_metrics
    def receive(event: Any, context: Any) -> None:
        for _ in range(event["calls"]):
            observability.count(observability.UPSTREAM_CALLS)
        observability.count(observability.UPSTREAM_ERRORS, event["errors"])

    receive({"calls": 3, "errors": 1}, None)
    [record] = emf(capsys.readouterr().out)
    assert record["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert (sum(record["UpstreamCalls"]), sum(record["UpstreamErrors"])) == (3, 1)
    # A read that counted nothing writes nothing, and Powertools' empty-set warning is not raised
    observability.log_metrics(handler)({}, None)
    assert emf(capsys.readouterr().out) == []
    assert not [w for w in recwarn if "No application metrics" in str(w.message)]


def test_library_lines_carry_the_correlation_id_of_their_own_thread() -> None:
    # GIVEN the library's loggers: children of the service logger and its formatter
    library = logging.getLogger("wanflow.lifecycle")
    assert library.parent is logging.getLogger("wanflow")
    seen: list[dict[str, Any]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(json.loads(observability.logger.registered_formatter.format(record)))

    keep = Keep(level=logging.WARNING)
    library.addHandler(keep)
    try:
        # WHEN two threads work on two tasks at once (the local stack runs handlers so)
        def work(task_id: str, started: threading.Barrier) -> None:
            observability.correlate(task_id)
            started.wait()
            library.warning("step done", extra={"task_id": task_id})

        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=work, args=(t, barrier)) for t in ("tsk_a", "tsk_b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=5)
    finally:
        library.removeHandler(keep)
        observability.correlate(None)
    # THEN each line carries its own task as correlation id
    assert sorted((s["task_id"], s["correlation_id"]) for s in seen) == [
        ("tsk_a", "tsk_a"),
        ("tsk_b", "tsk_b"),
    ]
