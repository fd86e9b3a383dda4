"""The client side of the public API: a small HTTP client, and what `wanflow watch` draws.

Used by the `wanflow` command only; no handler imports it. It imports httpx and the standard
library, nothing of the rest of wanflow, so the command starts fast. Tasks are the API's JSON as
received (dicts): the command prints them as they came, and a newer API's extra fields pass
through untouched.

What is guaranteed:
- Every request has explicit timeouts; transport failures become `ApiUnreachable`, non-2xx
  answers `ApiError` carrying the error JSON, 2xx answers that are not JSON `UnexpectedAnswer`.
- Nothing is retried by the client. A submit in particular is never repeated: without an
  idempotency key a second POST may create (and bill) a second task. `watch_tasks` alone rides
  out a few consecutive transient failures, because one lost poll should not end a long watch.
- The bearer key goes to the API only, never to the presigned result URLs (S3 refuses a request
  signed twice, and the key has no business there).
"""

from __future__ import annotations

import builtins
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Self, TextIO
from urllib.parse import quote, urlsplit

import httpx

#: A task as the API returns it (see `wanflow.task.Task` for its fields).
TaskJson = dict[str, Any]

#: The end states (`wanflow.task.TERMINAL`, kept here as strings so the client needs no pydantic).
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "timed_out"})

#: API calls: connect fails fast; a read allows for a cold Lambda behind API Gateway (29 s max).
API_TIMEOUT = httpx.Timeout(connect=5.0, read=35.0, write=30.0, pool=5.0)
#: Result downloads: the same, but a read may wait longer between chunks of a large video.
DOWNLOAD_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=30.0, pool=5.0)

URL_VARIABLE = "WANFLOW_API_URL"
KEY_VARIABLE = "WANFLOW_API_KEY"


# --- errors -----------------------------------------------------------------------------------


class ConsoleError(Exception):
    """A failure of the command; its text is one line for a person."""


class MissingSetting(ConsoleError):
    """A required environment variable is not set."""


class ApiUnreachable(ConsoleError):
    """The request got no HTTP answer (refused, timed out, dropped, bad URL)."""

    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(f"cannot reach {URL_VARIABLE}={base_url}: {reason}")
        self.base_url = base_url
        self.reason = reason


class ApiError(ConsoleError):
    """The API answered with an error status; `body` is its error JSON.

    A body that is not a JSON object (an HTML error page, say) is kept as `{"message": text}`.
    """

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        super().__init__(f"HTTP {status}: {error_summary(body)}")

    @property
    def client_error(self) -> bool:
        """True for 4xx: the request was wrong and sending it again will not help."""
        return 400 <= self.status < 500


class UnexpectedAnswer(ConsoleError):
    """A success status whose body is not the JSON the API sends (wrong URL, a proxy page)."""


class DownloadFailed(ConsoleError):
    """A result file could not be fetched."""


def error_summary(body: Mapping[str, Any]) -> str:
    """One line from an error JSON: the message and, where present, code and param."""
    error = body.get("error")
    if isinstance(error, dict):
        message = str(error.get("message") or "no message")
        details = [str(error[k]) for k in ("code", "param") if error.get(k)]
        return f"{message} ({', '.join(details)})" if details else message
    return str(body.get("message") or body or "no message")


# --- the client -------------------------------------------------------------------------------


class ApiClient:
    """The public API over HTTP: submit, read and list tasks, download their results.

    `http` is injectable (tests, a shared pool); a client made here is closed by `close()`.
    """

    def __init__(self, base_url: str, api_key: str, *, http: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=API_TIMEOUT)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """A client on WANFLOW_API_URL with WANFLOW_API_KEY (see `api_settings`)."""
        return cls(*api_settings(os.environ if environ is None else environ))

    def close(self) -> None:
        """Close the HTTP client if this object made it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, body: Any, idempotency_key: str | None = None) -> TaskJson:
        """POST /v1/tasks: the accepted task. Sent once, never retried (see the module doc)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._call("POST", "/v1/tasks", json=body, headers=headers)

    def get(self, task_id: str) -> TaskJson:
        """GET /v1/tasks/{id}: the task, its outputs as fresh presigned URLs."""
        return self._call("GET", f"/v1/tasks/{quote(task_id, safe='')}")

    def list(
        self,
        status: str | None = None,
        model: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> tuple[builtins.list[TaskJson], str | None]:
        """GET /v1/tasks: one page of the tenant's tasks, newest first, and the next cursor."""
        params: dict[str, str | int] = {"limit": limit}
        for name, value in (("status", status), ("model", model), ("cursor", cursor)):
            if value:
                params[name] = value
        page = self._call("GET", "/v1/tasks", params=params)
        tasks, next_cursor = page.get("tasks"), page.get("next_cursor")
        if not isinstance(tasks, builtins.list):
            raise UnexpectedAnswer("GET /v1/tasks answered without a `tasks` list")
        return tasks, next_cursor if isinstance(next_cursor, str) and next_cursor else None

    def list_all(
        self, status: str | None = None, model: str | None = None, page_size: int = 100
    ) -> Iterator[TaskJson]:
        """Every task of the tenant, newest first, following the cursors to the end."""
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            tasks, cursor = self.list(status, model, page_size, cursor)
            yield from tasks
            # A cursor seen before would loop forever; the API never sends one, but be sure.
            if cursor is None or cursor in seen:
                return
            seen.add(cursor)

    def download(self, task: Mapping[str, Any], directory: Path) -> builtins.list[Path]:
        """Fetch every output of a task into `directory` (created if needed); the paths written.

        Files are named by the basename of the output's key (`0.mp4`); a text output is written
        as `<index>.txt`. Each file is streamed to `<name>.part` and renamed when complete, so a
        failed download never leaves a truncated file under the final name.
        """
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for index, output in enumerate(task.get("outputs") or []):
            path = directory / output_filename(index, output)
            if output.get("type") == "text":
                path.write_text(str(output.get("text") or ""), encoding="utf-8")
            elif output.get("url"):
                self._fetch(str(output["url"]), path, label=str(output.get("key") or index))
            else:
                raise DownloadFailed(f"output {index} of task {task.get('id')} has no URL")
            written.append(path)
        return written

    def _fetch(self, url: str, path: Path, label: str) -> None:
        partial = path.with_name(path.name + ".part")
        try:
            # No Authorization header: the URL is presigned and carries its own signature.
            with self._http.stream("GET", url, timeout=DOWNLOAD_TIMEOUT) as response:
                if response.status_code != 200:
                    expired = " (the link may have expired)" if response.status_code == 403 else ""
                    raise DownloadFailed(
                        f"{label}: the result URL answered HTTP {response.status_code}{expired}"
                    )
                with partial.open("wb") as fh:
                    for chunk in response.iter_bytes():
                        fh.write(chunk)
        except httpx.HTTPError as exc:
            partial.unlink(missing_ok=True)
            raise DownloadFailed(f"{label}: transfer failed: {_reason(exc)}") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(path)

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One API request; every httpx failure and error status is translated here."""
        try:
            response = self._http.request(
                method,
                self.base_url + path,
                json=json,
                params=params,
                headers={**self._auth, **(headers or {})},
                timeout=API_TIMEOUT,
            )
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise ApiUnreachable(self.base_url, _reason(exc)) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.is_success:
            if not isinstance(data, dict):
                raise UnexpectedAnswer(
                    f"{method} {path} answered HTTP {response.status_code} without a JSON object"
                    f" (is {URL_VARIABLE}={self.base_url} the API's stage URL?)"
                )
            return data
        if not isinstance(data, dict):
            data = {"message": response.text.strip()[:200] or response.reason_phrase}
        raise ApiError(response.status_code, data)


def api_settings(environ: Mapping[str, str]) -> tuple[str, str]:
    """The API's URL and key from the environment; MissingSetting names what is unset or wrong."""
    url, key = environ.get(URL_VARIABLE, "").strip(), environ.get(KEY_VARIABLE, "").strip()
    missing = [name for name, value in ((URL_VARIABLE, url), (KEY_VARIABLE, key)) if not value]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise MissingSetting(
            f"{' and '.join(missing)} {verb} not set (`wanflow local` prints both)"
        )
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise MissingSetting(f"{URL_VARIABLE} must be an http(s) URL, got {url!r}")
    return url, key


def _reason(exc: Exception) -> str:
    """A one-line reason from an httpx exception (some have an empty message)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def output_filename(index: int, output: Mapping[str, Any]) -> str:
    """The file name of an output: its key's basename, `<index>.txt` for text."""
    if output.get("type") == "text":
        return f"{index}.txt"
    for source in (output.get("key"), urlsplit(str(output.get("url") or "")).path):
        name = PurePosixPath(str(source or "")).name
        if name and name not in {".", ".."}:
            return name
    return f"{index}.{output.get('type') or 'bin'}"


# --- progress and tables ----------------------------------------------------------------------

#: Keeps a line (36-character task id included) within 80 columns.
BAR_WIDTH = 16


def progress_bar(progress: int | None, width: int = BAR_WIDTH) -> str:
    """`[####............]` for a percentage; all dots when unknown."""
    filled = 0 if progress is None else round(width * max(0, min(progress, 100)) / 100)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def elapsed_s(task: Mapping[str, Any], now: datetime) -> int | None:
    """Whole seconds from the task's creation to its end, or to `now` while it runs.

    Server times, so a `watch` started late still shows the task's age; never negative when the
    local clock is behind.
    """
    start = _parse_time(task.get("created_at"))
    if start is None:
        return None
    end = _parse_time(task.get("completed_at")) or now
    return max(0, int((end - start).total_seconds()))


def progress_line(task: Mapping[str, Any], now: datetime) -> str:
    """One task's line: id, status, bar, percent, elapsed, and the error of a failed task."""
    progress = task.get("progress")
    progress = progress if isinstance(progress, int) else None
    percent = f"{progress:3d}%" if progress is not None else "   -"
    seconds = elapsed_s(task, now)
    elapsed = f"{seconds}s" if seconds is not None else "-"
    line = (
        f"{task.get('id', '?')}  {task.get('status', '?'):<9}  "
        f"{progress_bar(progress)} {percent}  {elapsed:>4}"
    )
    error = task.get("error")
    if task.get("status") != "succeeded" and isinstance(error, dict) and error.get("code"):
        line += f"  {error['code']}: {error.get('message') or ''}".rstrip()
    return line


def _state(task: Mapping[str, Any]) -> tuple[Any, Any]:
    return task.get("status"), task.get("progress")


class ProgressView:
    """Draws one progress line per task.

    On a terminal every `show` redraws all lines in place (`\\r`, and cursor-up for the lines
    above); otherwise a task's line is printed only when its status or progress changed, so
    captured output (tests, CI logs) is a short, readable history.
    """

    def __init__(
        self,
        out: TextIO,
        *,
        tty: bool,
        now: Callable[[], datetime] | None = None,
        width: Callable[[], int] | None = None,
    ) -> None:
        self.out = out
        self.tty = tty
        self._now = now or _utc_now
        self._width = width or (lambda: shutil.get_terminal_size().columns)
        self._drawn = 0  # lines on screen (terminal)
        self._shown: dict[str, tuple[Any, Any]] = {}  # last state printed per task (plain)

    def show(self, tasks: Sequence[Mapping[str, Any]]) -> None:
        """Draw the tasks' current state."""
        now = self._now()
        if self.tty:
            # A line wider than the terminal would wrap and break the cursor-up redraw.
            width = max(20, self._width() - 1)
            lines = [progress_line(t, now)[:width] for t in tasks]
            up = f"\x1b[{self._drawn - 1}A" if self._drawn > 1 else ""
            self.out.write(up + "\n".join(f"\r{line}\x1b[K" for line in lines))
            self._drawn = len(lines)
        else:
            for task in tasks:
                key = str(task.get("id"))
                if self._shown.get(key) != _state(task):
                    self._shown[key] = _state(task)
                    self.out.write(progress_line(task, now) + "\n")
        self.out.flush()

    def close(self) -> None:
        """End the live lines (a terminal's cursor moves below them)."""
        if self.tty and self._drawn:
            self.out.write("\n")
            self.out.flush()
        self._drawn = 0


def _utc_now() -> datetime:
    return datetime.now(UTC)


TABLE_COLUMNS = ("id", "model", "mode", "status", "progress", "created_at")


def task_table(tasks: Sequence[Mapping[str, Any]]) -> str:
    """The tasks as a text table with a header row, columns as wide as their widest cell."""
    rows = [[c.upper() for c in TABLE_COLUMNS]]
    for task in tasks:
        progress = task.get("progress")
        cells = {**task, "progress": f"{progress}%" if isinstance(progress, int) else "-"}
        rows.append([str(cells.get(c) if cells.get(c) is not None else "-") for c in TABLE_COLUMNS])
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


# --- watching ---------------------------------------------------------------------------------

#: Consecutive failed poll rounds (transport errors, 5xx, 429) a watch rides out before failing.
MAX_POLL_FAILURES = 5


def watch_tasks(
    get_task: Callable[[str], TaskJson],
    task_ids: Sequence[str],
    view: ProgressView,
    *,
    interval_s: float = 1.0,
    timeout_s: float | None = None,
    first: Mapping[str, TaskJson] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, TaskJson]:
    """Poll the tasks (`get_task` is `ApiClient.get`) until every one is terminal or `timeout_s`
    has passed; the last answer for each.

    The caller tells a timeout by a task still not terminal. A 4xx (an unknown id) raises
    `ApiError` at once; transient failures are retried up to MAX_POLL_FAILURES rounds in a row.
    `first` holds tasks already fetched (the answer of a submit), shown before the first poll.
    """
    deadline = None if timeout_s is None else clock() + timeout_s
    latest: dict[str, TaskJson] = dict(first or {})
    failures = 0
    try:
        if latest:
            view.show([latest[i] for i in task_ids if i in latest])
        while True:
            try:
                for task_id in task_ids:
                    if latest.get(task_id, {}).get("status") not in TERMINAL_STATUSES:
                        latest[task_id] = get_task(task_id)
                failures = 0
            except (ApiUnreachable, ApiError) as exc:
                if isinstance(exc, ApiError) and exc.status != 429 and exc.status < 500:
                    raise
                failures += 1
                if failures >= MAX_POLL_FAILURES:
                    raise
            if latest:
                view.show([latest[i] for i in task_ids if i in latest])
            if all(latest.get(i, {}).get("status") in TERMINAL_STATUSES for i in task_ids):
                return latest
            if deadline is not None and clock() >= deadline:
                return latest
            pause = interval_s if deadline is None else min(interval_s, deadline - clock())
            sleep(max(0.0, pause))
    finally:
        view.close()
