"""Logs, metrics and traces: the Powertools setup every function and the library share.

- **Logs**: one Powertools `Logger` for the service "wanflow". Its standard-library logger is
  named "wanflow", the parent of every `logging.getLogger(__name__)` of this package, so the
  library's lines go through the same JSON formatter and carry the same keys. `correlate(task_id)`
  makes the task id the `correlation_id` of every line that follows, handler and library alike.
- **Metrics** (CloudWatch EMF: JSON lines on stdout that CloudWatch Logs turns into metrics; no
  API call, no IAM). Counters of an invocation (`count`) are written as one record when the
  handler returns (`log_metrics`). A task's own metrics (`task_submitted`, `task_ended`) are
  written at once, each as a record of its own, under the dimension sets `[service]` (the totals
  the alarms read) and `[service, model]`: an invocation can touch tasks of several models
  (a batch), and EMF gives every metric of a record the same dimensions.
- **Traces**: X-Ray through Powertools' `Tracer`, in Lambda only (`trace_handler`).

Metrics and traces are on in Lambda (`LAMBDA_TASK_ROOT` is set, the signal Powertools' Tracer
uses too) and off elsewhere: the local stack runs every handler in one process, where EMF lines
would flood the console and the X-Ray SDK (0.2–0.4 s to import) would trace nothing.
`POWERTOOLS_METRICS_DISABLED` and `POWERTOOLS_TRACE_DISABLED` override both ways (the tests set
`POWERTOOLS_METRICS_DISABLED=false` to read the metrics).

Nothing here imports boto3 or the X-Ray SDK: the callbacks function (upstream callbacks) must
refuse a forged callback without loading them.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

SERVICE: Final = "wanflow"
NAMESPACE: Final = "Wanflow"

# Metric names (template.yaml's alarms and dashboard read some of them).
TASKS_SUBMITTED: Final = "TasksSubmitted"
TASKS_SUCCEEDED: Final = "TasksSucceeded"
TASKS_FAILED: Final = "TasksFailed"
TASKS_TIMED_OUT: Final = "TasksTimedOut"
TASKS_CANCELED: Final = "TasksCanceled"
POLLS_PER_TASK: Final = "PollsPerTask"
TIME_TO_DETECT: Final = "TimeToDetect"
CALLBACKS_RECEIVED: Final = "CallbacksReceived"
CALLBACKS_DUPLICATE: Final = "CallbacksDuplicate"
CALLBACKS_REJECTED: Final = "CallbacksRejected"
WEBHOOK_DELIVERIES: Final = "WebhookDeliveries"
WEBHOOK_FAILURES: Final = "WebhookFailures"
UPSTREAM_CALLS: Final = "UpstreamCalls"
UPSTREAM_ERRORS: Final = "UpstreamErrors"

#: The counter of each terminal status.
_ENDED: Final = {
    "succeeded": TASKS_SUCCEEDED,
    "failed": TASKS_FAILED,
    "timed_out": TASKS_TIMED_OUT,
    "canceled": TASKS_CANCELED,
}
#: What the handlers' Tracer instruments: the AWS SDK and the upstream/webhook HTTP client.
_TRACED_MODULES: Final = ("botocore", "httpx")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# The local stack runs handlers on threads of one process and Powertools' Metrics share one
# metric set: a flush must not iterate it while another thread adds to it.
_metrics_lock = threading.Lock()

Handler = TypeVar("Handler", bound=Callable[..., Any])


# os.environ, not the function's own environment (runtime.init_environ()): these settings are
# the same for every function, so they may stay process-wide in the local stack. LAMBDA_TASK_ROOT
# is Lambda's own; POWERTOOLS_* come from the template's Globals (and Powertools itself reads
# them, and LOG_LEVEL, from os.environ when this module builds its Logger and Metrics).


def _flag(name: str) -> bool | None:
    """A true/false environment setting; None when it is not set."""
    value = os.environ.get(name)
    if value is None:
        return None
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _in_lambda() -> bool:
    return bool(os.environ.get("LAMBDA_TASK_ROOT"))


def metrics_enabled() -> bool:
    """Whether metrics are written: in Lambda, unless POWERTOOLS_METRICS_DISABLED says otherwise."""
    disabled = _flag("POWERTOOLS_METRICS_DISABLED")
    return _in_lambda() if disabled is None else not disabled


def tracing_enabled() -> bool:
    """Whether handlers are traced: in Lambda, unless POWERTOOLS_TRACE_DISABLED is true."""
    return _in_lambda() and not _flag("POWERTOOLS_TRACE_DISABLED")


def correlate(task_id: str | None) -> None:
    """Make `task_id` the correlation id of every log line that follows on this thread.

    Thread-local keys, not `set_correlation_id`: in Lambda it makes no difference, and in the
    local stack, where handlers of several tasks run at once on threads, each keeps its own.
    The handlers' `inject_lambda_context(clear_state=True)` clears it for the next invocation.
    """
    logger.thread_safe_append_keys(correlation_id=task_id)


def count(name: str, value: float = 1) -> None:
    """Add to a counter of this invocation, written when the handler returns (`log_metrics`)."""
    if not metrics_enabled():
        return
    with _metrics_lock:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def log_metrics(handler: Handler) -> Handler:
    """Write the invocation's counters as one EMF record when the handler returns or raises.

    Powertools' `log_metrics` but silent when there is nothing to write (a read, a step that
    called nothing): its warning would otherwise come with every such invocation.
    """

    @functools.wraps(handler)
    def flushing(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return handler(event, context, *args, **kwargs)
        finally:
            with _metrics_lock:
                if metrics.metric_set:
                    metrics.flush_metrics()

    return cast("Handler", flushing)


def _write_task_record(model: str, values: list[tuple[str, MetricUnit, float]]) -> None:
    """One EMF record of a task's metrics, under [service] and [service, model]."""
    if not metrics_enabled():
        return
    record = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    for name, unit, value in values:
        record.add_metric(name=name, unit=unit, value=value)
    record.add_dimensions(service=SERVICE, model=model)
    record.flush_metrics()


def task_submitted(model: str) -> None:
    """Count a new task (call it once, where the task was created)."""
    _write_task_record(model, [(TASKS_SUBMITTED, MetricUnit.Count, 1)])


def task_ended(
    model: str,
    status: str,
    *,
    polls: int | None = None,
    time_to_detect_s: float | None = None,
) -> None:
    """Count a task's move into a terminal state (call it once, where that write won).

    `polls` and `time_to_detect_s` are given by the lifecycle, which followed the task; a task
    that failed before it was followed has neither.
    """
    values: list[tuple[str, MetricUnit, float]] = []
    if status in _ENDED:
        values.append((_ENDED[status], MetricUnit.Count, 1))
    if polls is not None:
        values.append((POLLS_PER_TASK, MetricUnit.Count, polls))
    if time_to_detect_s is not None:
        values.append((TIME_TO_DETECT, MetricUnit.Seconds, max(0.0, time_to_detect_s)))
    if values:
        _write_task_record(model, values)


def trace_handler(handler: Handler) -> Handler:
    """Trace a Lambda handler and its boto3 and httpx calls with X-Ray, in Lambda only.

    Outside Lambda the handler is returned as it is: Powertools' Tracer would import the X-Ray
    SDK only to disable itself. The SDK imports botocore's session and client, so a function
    that must start without them (the webhook receiver) is not decorated.
    """
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer

    tracer = Tracer(service=SERVICE, patch_modules=_TRACED_MODULES)
    # Responses stay out of the traces: they hold presigned URLs and clients' metadata.
    return cast("Handler", tracer.capture_lambda_handler(handler, capture_response=False))
