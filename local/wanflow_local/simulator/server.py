"""The upstream aggregator simulator: a real HTTP server on loopback serving both families.

API (Bearer key): the create, status and cancel paths of every catalog `Route`; bodies are
validated by the catalog, as the aggregator would, and a rejection is HTTP 400 with the catalog's
error JSON (wan26_i2i carries its seed codes). Result files: `GET /files/{task_id}/{name}`, no
key (like CDN links). Control, no key: `GET /_sim/requests`, `GET /_sim/tasks`,
`GET /_sim/callbacks`, `GET|POST /_sim/faults`, `GET|POST /_sim/limits`
(`{"max_running_per_model": n}`), `POST /_sim/reset` (optional `{"seed": n}`).

Concurrency: with `max_running_per_model`, a create of a model whose tasks in flight (queued or
running upstream) are at the limit is answered 429 `concurrency_limit_exceeded`, with
`Retry-After` in whole seconds until the first of them is planned to end, before any effect.
The aggregator's contract (the seeds) states no such limit; aggregators have one per account,
and this is where wanflow meets it locally.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import random
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self
from urllib.parse import quote, unquote, urlsplit

from pydantic import BaseModel, Field, ValidationError

from wanflow.catalog import MODELS, get_model, validate
from wanflow.catalog.base import Route
from wanflow.errors import InvalidRequest
from wanflow_local.simulator import media
from wanflow_local.simulator.callbacks import CallbackAttempt, CallbackSender
from wanflow_local.simulator.faults import Faults, Outcome, TaskFate
from wanflow_local.simulator.tasks import SimTask, plan_task, report

logger = logging.getLogger(__name__)

DEFAULT_API_KEY = "sim-key"
#: The flash seed's callback behaviour: 10 s per attempt, retries 1, 2 and 4 s after a failure.
CALLBACK_TIMEOUT_S = 10.0
CALLBACK_RETRY_DELAYS_S = (1.0, 2.0, 4.0)
#: Retry-After of a 429 for the concurrency limit when no task in flight will ever end.
STUCK_RETRY_AFTER_S = 60

RequestKind = Literal["create", "status", "cancel", "file", "other"]


class RequestRecord(BaseModel):
    """One request the simulator received (control requests excepted)."""

    at_s: float = Field(description="When it arrived, seconds since the simulator started.")
    method: str = Field(description="HTTP method.")
    path: str = Field(description="Request path.")
    kind: RequestKind = Field(description="What it asked for.")
    status: int | None = Field(description="Status answered; None when the connection dropped.")
    fault: Outcome | None = Field(description="The request fault applied, if any.")
    task_id: str | None = Field(description="The task created or addressed.")
    body: Any = Field(default=None, description="The JSON body received, if any.")


@dataclass(frozen=True)
class Answer:
    """An HTTP answer to write back."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def _json(status: int, data: Any, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    return Answer(status, json.dumps(data).encode(), headers=headers)


def _error(
    status: int,
    code: str,
    message: str,
    kind: str = "invalid_request_error",
    headers: tuple[tuple[str, str], ...] = (),
) -> Answer:
    return _json(status, {"error": {"type": kind, "code": code, "message": message}}, headers)


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(template).replace(re.escape("{id}"), "(?P<id>[^/]+)") + "$")


# Every (method, path pattern) of the API, from the catalog's routes.
_ROUTES: list[tuple[str, re.Pattern[str], RequestKind, Route]] = []
for _route in {spec.route for spec in MODELS.values()}:
    _ROUTES.append(("POST", _pattern(_route.create_path), "create", _route))
    _ROUTES.append(("GET", _pattern(_route.status_path), "status", _route))
    if _route.cancel_path:
        _ROUTES.append(("POST", _pattern(_route.cancel_path), "cancel", _route))
_FILE = re.compile(r"^/files/(?P<id>[^/]+)/(?P<name>[^/]+)$")


class Simulator:
    """The upstream aggregator on loopback, with fault controls and a record of what it received.

    Durations are the catalog's timing of each request times `time_scale`; callback timeouts and
    retry delays are the upstream's real ones unless given. Faults and task fates are drawn from
    `random.Random(seed)`, so a run of serial requests repeats exactly.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        time_scale: float = 1.0,
        seed: int = 0,
        faults: Faults | None = None,
        allow_http_callbacks: bool = False,
        callback_timeout_s: float = CALLBACK_TIMEOUT_S,
        callback_retry_delays_s: Sequence[float] = CALLBACK_RETRY_DELAYS_S,
        max_running_per_model: int | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        if max_running_per_model is not None and max_running_per_model < 1:
            raise ValueError("max_running_per_model must be at least 1 (or None: no limit)")
        self._host, self._port = host, port
        self._api_key = api_key
        self._time_scale = time_scale
        self._initial = (seed, faults or Faults())
        self._max_running = max_running_per_model
        # The upstream only calls HTTPS URLs; the local stack listens on plain HTTP.
        self._allow_http_callbacks = allow_http_callbacks
        self._callback_timeout_s = callback_timeout_s
        self._callback_delays = tuple(callback_retry_delays_s)
        self._lock = threading.Lock()
        self._epoch = time.monotonic()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._reset_state(seed, self._initial[1])

    def _reset_state(self, seed: int, faults: Faults) -> None:
        self._rng = random.Random(seed)
        self._faults = faults
        self._outage_until = time.monotonic() + faults.callback_outage_s
        self._tasks: dict[str, SimTask] = {}
        self._peak_running: dict[str, int] = {}
        self._records: list[RequestRecord] = []
        self._timers: list[threading.Timer] = []
        self._sender = CallbackSender(
            timeout_s=self._callback_timeout_s,
            retry_delays_s=self._callback_delays,
            epoch=self._epoch,
            unreachable=self._callbacks_down,
        )

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Start serving in a background thread; `url` is then known."""
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        self._server = _Server((self._host, self._port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits at most this long
            name="upstream-simulator",
            daemon=True,
        )
        self._thread.start()
        logger.info("simulator listening", extra={"url": self.url})
        return self

    def stop(self) -> None:
        """Stop serving, cancel pending callbacks and close their connections."""
        with self._lock:
            timers, sender = self._timers, self._sender
        for timer in timers:
            timer.cancel()
        sender.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of the running simulator, e.g. http://127.0.0.1:8900."""
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- control ------------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The faults in force."""
        with self._lock:
            return self._faults

    def set_faults(self, faults: Faults) -> None:
        """Replace the faults in force (tasks already created keep the fate they drew)."""
        with self._lock:
            self._faults = faults
            self._outage_until = time.monotonic() + faults.callback_outage_s

    @property
    def max_running_per_model(self) -> int | None:
        """How many tasks of one model may be in flight (queued or running) at once; None: no
        limit. A create past it is answered 429 with `Retry-After`, before any effect."""
        with self._lock:
            return self._max_running

    def set_max_running_per_model(self, limit: int | None) -> None:
        """Change the concurrency limit (tasks already created keep running)."""
        if limit is not None and limit < 1:
            raise ValueError("max_running_per_model must be at least 1 (or None: no limit)")
        with self._lock:
            self._max_running = limit

    def peak_running(self, model: str | None = None) -> int:
        """The most tasks of `model` (of any one model, when None) ever in flight at once since
        the last reset, as counted when each was created."""
        with self._lock:
            if model is not None:
                return self._peak_running.get(model, 0)
            return max(self._peak_running.values(), default=0)

    def _callbacks_down(self) -> bool:
        """Whether the callback receiver is in a simulated outage (`callback_outage_s`)."""
        with self._lock:
            return time.monotonic() < self._outage_until

    def reset(self, seed: int | None = None) -> None:
        """Back to the state after construction: no tasks, no records, the initial faults."""
        with self._lock:
            timers, sender = self._timers, self._sender
            self._reset_state(self._initial[0] if seed is None else seed, self._initial[1])
        for timer in timers:
            timer.cancel()
        sender.close()

    def requests(self, kind: RequestKind | None = None) -> list[RequestRecord]:
        """Every request received since the last reset (optionally of one kind), in order."""
        with self._lock:
            return [r for r in self._records if kind is None or r.kind == kind]

    def tasks_created(self) -> list[str]:
        """Ids of every task actually created since the last reset, in creation order."""
        with self._lock:
            return list(self._tasks)

    def timeline(self, task_id: str) -> tuple[float, float | None] | None:
        """When an upstream task was created and when it finished (None while it has not),
        in wall-clock epoch seconds; None for an unknown task."""
        with self._lock:
            task = self._tasks.get(task_id)
        if task is None:
            return None
        now_mono, now_wall = time.monotonic(), time.time()
        end = task.ended_at(now_mono)
        created = now_wall - (now_mono - task.created_at)
        return created, (None if end is None else now_wall - (now_mono - end))

    def callback_attempts(self) -> list[CallbackAttempt]:
        """Every callback attempt since the last reset."""
        with self._lock:
            sender = self._sender
        return sender.attempts()

    # --- requests -----------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Answer | None:
        """Answer one request (header names in lower case); None means: drop the connection."""
        path = unquote(urlsplit(target).path)
        if path.startswith("/_sim/"):
            return self._control(method, path, body)
        arrived = time.monotonic() - self._epoch
        fault: Outcome | None = None
        task_id: str | None = None
        answer: Answer | None
        file = _FILE.match(path) if method == "GET" else None
        match = next(
            (
                (kind, route, m)
                for verb, p, kind, route in _ROUTES
                if verb == method and (m := p.match(path))
            ),
            None,
        )
        kind: RequestKind
        if file:
            kind, task_id = "file", file["id"]
            answer = self._file(task_id, file["name"])
        elif match is None:
            kind = "other"
            answer = _error(404, "not_found", f"no such endpoint: {method} {path}")
        else:
            kind, route, found = match
            answer, fault, task_id = self._api(kind, route, found, headers, body)
        with self._lock:
            self._records.append(
                RequestRecord(
                    at_s=arrived,
                    method=method,
                    path=path,
                    kind=kind,
                    status=answer.status if answer else None,
                    fault=fault,
                    task_id=task_id,
                    body=_parse(body),
                )
            )
        return answer

    def _api(
        self,
        kind: RequestKind,
        route: Route,
        found: re.Match[str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[Answer | None, Outcome | None, str | None]:
        with self._lock:
            faults = self._faults
            outcome, code = faults.draw_request(self._rng)
        if faults.latency_s:
            time.sleep(faults.latency_s)
        # Gateway faults come first: they are answered before anything takes effect.
        if outcome == "5xx":
            return (
                _error(code, "server_error", "simulated server error", "api_error"),
                outcome,
                None,
            )
        if outcome == "429":
            retry_after = (("Retry-After", str(faults.retry_after_s)),)
            answer = _error(
                429, "rate_limited", "too many requests", "rate_limit_error", retry_after
            )
            return answer, outcome, None
        given = headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self._api_key}".encode()):
            return (
                _error(401, "invalid_api_key", "missing or wrong API key", "authentication_error"),
                None,
                None,
            )
        task_id: str | None = found.groupdict().get("id")
        if kind == "create":
            answer, task_id = self._create(route, body)
        elif kind == "status":
            answer = self._status(route, task_id or "")
        else:
            answer = self._cancel(route, task_id or "")
        if outcome == "drop":  # after the effect: a create has created its task
            return None, outcome, task_id
        return answer, None, task_id

    def _create(self, route: Route, body: bytes) -> tuple[Answer, str | None]:
        raw = _parse(body)
        if raw is None:
            return _error(400, "invalid_json", "the request body must be JSON"), None
        checked, callback_url = self._callback_of(raw)
        try:
            request = validate(checked)
        except InvalidRequest as exc:
            return _json(400, exc.body().model_dump(mode="json")), None
        spec = get_model(request.model)
        if spec.route != route:
            return _error(
                400, "wrong_endpoint", f"{spec.id} is served at {spec.route.create_path}"
            ), None
        with self._lock:
            busy = self._over_limit(spec.id, time.monotonic())
            rejected = busy is None and self._rng.random() < self._faults.reject_rate
            reject_code = self._faults.reject_code
        if busy is not None:
            return busy, None
        if rejected:
            message = "the input was refused by content inspection"
            return _error(400, reject_code, message), None
        with self._lock:
            now = time.monotonic()
            task = plan_task(
                spec,
                request,
                fate=TaskFate.draw(self._faults, self._rng),
                fail_code=self._faults.fail_code,
                rng=self._rng,
                time_scale=self._time_scale,
                now=now,
                now_epoch=int(time.time()),
                callback_url=callback_url if spec.accepts_callback else None,
            )
            self._tasks[task.id] = task
            in_flight = self._in_flight(spec.id, now)
            self._peak_running[spec.id] = max(self._peak_running.get(spec.id, 0), len(in_flight))
            answer = _json(200, report(task, now, self._file_url))
            end = task.planned_end
            if task.callback_url and end is not None:
                timer = threading.Timer(end - now, self._on_end, (task.id,))
                timer.daemon = True
                self._timers.append(timer)
                timer.start()
        return answer, task.id

    def _in_flight(self, model: str, now: float) -> list[SimTask]:
        """The tasks of `model` not ended at `now` (queued or running; a stuck one forever)."""
        return [t for t in self._tasks.values() if t.spec.id == model and t.ended_at(now) is None]

    def _over_limit(self, model: str, now: float) -> Answer | None:
        """The 429 a create of `model` gets when its tasks in flight are at the limit (called
        under the lock); None when it may go ahead. `Retry-After`: whole seconds until the
        first of them is planned to end (at least 1; STUCK_RETRY_AFTER_S when none will)."""
        if self._max_running is None:
            return None
        in_flight = self._in_flight(model, now)
        if len(in_flight) < self._max_running:
            return None
        ends = [end for t in in_flight if (end := t.planned_end) is not None]
        wait = max(1, math.ceil(min(ends) - now)) if ends else STUCK_RETRY_AFTER_S
        message = (
            f"{model} has {len(in_flight)} tasks in flight, the most this account may run at "
            f"once ({self._max_running}): retry after {wait} s"
        )
        return _error(
            429,
            "concurrency_limit_exceeded",
            message,
            "rate_limit_error",
            (("Retry-After", str(wait)),),
        )

    def _callback_of(self, raw: Any) -> tuple[Any, str | None]:
        """The body to validate, and the callback URL to call (plain HTTP only if allowed)."""
        url = raw.get("callback_url") if isinstance(raw, dict) else None
        if not isinstance(url, str):
            return raw, None
        if self._allow_http_callbacks and url.lower().startswith("http://"):
            return {**raw, "callback_url": "https://" + url[len("http://") :]}, url
        return raw, url

    def _find(self, route: Route, task_id: str) -> SimTask | None:
        task = self._tasks.get(task_id)
        return task if task is not None and task.spec.route == route else None

    def _status(self, route: Route, task_id: str) -> Answer:
        with self._lock:
            task = self._find(route, task_id)
            if task is None:
                return _error(404, "task_not_found", f"no task {task_id}")
            return _json(200, report(task, time.monotonic(), self._file_url))

    def _cancel(self, route: Route, task_id: str) -> Answer:
        with self._lock:
            task = self._find(route, task_id)
            if task is None:
                return _error(404, "task_not_found", f"no task {task_id}")
            now = time.monotonic()
            phase = task.phase(now)
            if phase not in ("queued", "running"):
                return _error(409, "task_not_cancellable", f"task {task_id} is already {phase}")
            task.cancelled_at = now
            answer = _json(200, report(task, now, self._file_url))
            notify = self._claim_callback(task)
        if notify:
            threading.Thread(target=self._deliver, args=(task,), daemon=True).start()
        return answer

    def _file(self, task_id: str, name: str) -> Answer:
        with self._lock:
            task, faults, now = self._tasks.get(task_id), self._faults, time.monotonic()
            index = task.files().get(name) if task else None
            if task is None or index is None or task.phase(now) != "succeeded":
                return _error(404, "not_found", "no such file")
            ended = task.ended_at(now) or now
        if faults.link_ttl_s is not None and now > ended + faults.link_ttl_s:
            return Answer(faults.expired_status, b"Request has expired", "text/plain")
        if name.endswith(".mp4"):
            return Answer(200, media.mp4_video(), "video/mp4")
        return Answer(200, media.png_image(index), "image/png")

    def _file_url(self, task: SimTask, name: str) -> str:
        return f"{self.url}/files/{quote(task.id, safe='')}/{name}"

    # --- callbacks ----------------------------------------------------------------------------

    def _claim_callback(self, task: SimTask) -> bool:
        """Whether the caller should send `task`'s callback (once per task); hold the lock."""
        if task.callback_url is None or task.callback_started:
            return False
        task.callback_started = True
        return True

    def _on_end(self, task_id: str) -> None:
        with self._lock:
            task = self._tasks.get(task_id)
            notify = task is not None and self._claim_callback(task)
        if task is not None and notify:
            self._deliver(task)

    def _deliver(self, task: SimTask) -> None:
        """Send `task`'s callback with the faults it drew at creation."""
        with self._lock:
            sender = self._sender
        url, fate = task.callback_url, task.fate
        if url is None or fate.callback_lost:
            return
        if fate.callback_delay_s and not sender.hold(fate.callback_delay_s):
            return
        now = time.monotonic()
        final = report(task, now, self._file_url)
        sender.send(task.id, url, final, "final")
        if fate.callback_duplicated:
            for _ in range(fate.callback_duplicate_copies):
                sender.send(task.id, url, final, "duplicate")
        if fate.callback_reordered:
            ended = task.ended_at(now) or now
            stale_at = (task.created_at + ended) / 2  # mid-life: still queued or running
            sender.send(task.id, url, report(task, stale_at, self._file_url), "stale")

    # --- control endpoints --------------------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> Answer:
        name = path.removeprefix("/_sim/")
        if method == "GET" and name == "requests":
            return _json(200, [r.model_dump(mode="json") for r in self.requests()])
        if method == "GET" and name == "tasks":
            return _json(200, self.tasks_created())
        if method == "GET" and name == "callbacks":
            return _json(200, [a.model_dump(mode="json") for a in self.callback_attempts()])
        if name == "faults" and method == "GET":
            return _json(200, self.faults.model_dump(mode="json"))
        if name == "faults" and method == "POST":
            try:
                faults = Faults.model_validate_json(body or b"{}")
            except ValidationError as exc:
                return _error(400, "invalid_faults", str(exc))
            self.set_faults(faults)
            return _json(200, faults.model_dump(mode="json"))
        if name == "limits" and method == "GET":
            return _json(200, {"max_running_per_model": self.max_running_per_model})
        if name == "limits" and method == "POST":
            limit = (_parse(body) or {}).get("max_running_per_model") if body else None
            if limit is not None and (not isinstance(limit, int) or limit < 1):
                message = "max_running_per_model must be a positive integer or null"
                return _error(400, "invalid_limits", message)
            self.set_max_running_per_model(limit)
            return _json(200, {"max_running_per_model": limit})
        if name == "reset" and method == "POST":
            seed = (_parse(body) or {}).get("seed") if body else None
            if seed is not None and not isinstance(seed, int):
                return _error(400, "invalid_seed", "seed must be an integer")
            self.reset(seed)
            return _json(200, {"reset": True})
        return _error(404, "not_found", f"no such control endpoint: {method} {path}")


def _parse(body: bytes) -> Any:
    """The JSON in a body, or None when there is none or it is not JSON."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], sim: Simulator
    ) -> None:
        super().__init__(address, handler)
        self.sim = sim


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a client's connection pool expects
    timeout = 30  # idle keep-alive connections are closed after this
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms ACK stalls
    server: _Server

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer = self.server.sim.handle(method, self.path, headers, body)
        if answer is None:
            self.close_connection = True  # nothing written: the client sees the socket close
            return
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)
        except OSError:  # the client gave up waiting (its read timeout): nothing to tell it
            self.close_connection = True
            logger.debug("client went away before the answer", extra={"path": self.path})

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("simulator request", extra={"line": format % args})
