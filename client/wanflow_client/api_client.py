"""The client of the public HTTP API: `ApiClient`, its errors, and its settings from the
environment.

Used by the `wanflow` command (and the local demo); no handler imports it. It imports httpx and
the standard library, nothing of the rest of wanflow, so the command starts fast. Tasks are the
API's JSON as received (dicts): the command prints them as they came, and a newer API's extra
fields pass through untouched.

What is guaranteed:
- Every request has explicit timeouts; transport failures become `ApiUnreachable`, non-2xx
  answers `ApiError` carrying the error JSON, 2xx answers that are not JSON `UnexpectedAnswer`.
- Nothing is retried by the client. A submit in particular is never repeated: without an
  idempotency key a second POST may create (and bill) a second task. `progress.watch_tasks`
  alone rides out a few consecutive transient failures, because one lost poll should not end a
  long watch.
- The bearer key goes to the API only, never to the presigned result URLs (S3 refuses a request
  signed twice, and the key has no business there).
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Self
from urllib.parse import quote, urlsplit

import httpx

#: A task as the API returns it (see `wanflow.task.Task` for its fields).
TaskJson = dict[str, Any]

#: API calls: connect fails fast; a read allows for a cold Lambda behind API Gateway (29 s max).
API_TIMEOUT = httpx.Timeout(connect=5.0, read=35.0, write=30.0, pool=5.0)
#: Result downloads: the same, but a read may wait longer between chunks of a large video.
DOWNLOAD_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=30.0, pool=5.0)

URL_VARIABLE = "WANFLOW_API_URL"
KEY_VARIABLE = "WANFLOW_API_KEY"


# --- errors -----------------------------------------------------------------------------------


class ApiClientError(Exception):
    """A failure of the API client; its text is one line for a person."""


class MissingSetting(ApiClientError):
    """A required environment variable is not set."""


class ApiUnreachable(ApiClientError):
    """The request got no HTTP answer (refused, timed out, dropped, bad URL)."""

    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(f"cannot reach {URL_VARIABLE}={base_url}: {reason}")
        self.base_url = base_url
        self.reason = reason


class ApiError(ApiClientError):
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


class UnexpectedAnswer(ApiClientError):
    """A success status whose body is not the JSON the API sends (wrong URL, a proxy page)."""


class DownloadFailed(ApiClientError):
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
