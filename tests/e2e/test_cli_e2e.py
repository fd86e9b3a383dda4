"""The `wanflow` command against the local stack over HTTP, as a client would use it."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from clikit import Cli, Run

from wanflow.catalog import validate
from wanflow.errors import InvalidRequest

REQUESTS = Path(__file__).resolve().parents[2] / "events" / "requests"
VALID = sorted(p.stem for p in (REQUESTS / "valid").glob("*.json"))
INVALID = sorted(p.stem for p in (REQUESTS / "invalid").glob("*.json"))
#: The slowest example: about 130 upstream seconds, so still running a second after submit.
SLOW = "wan26_i2v-audio"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _path(kind: str, name: str) -> str:
    return str(REQUESTS / kind / f"{name}.json")


def _load(kind: str, name: str) -> Any:
    return json.loads((REQUESTS / kind / f"{name}.json").read_text(encoding="utf-8"))


def _wait_all(procs: dict[str, subprocess.Popen[str]], timeout: float) -> dict[str, Run]:
    """Wait for every process (each bounded by `timeout`); kill what is left on the way out."""
    runs = {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=timeout)
            runs[name] = Run(proc.returncode, out, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return runs


def _table(out: str) -> list[dict[str, str]]:
    header, *rows = out.splitlines()
    columns = [c.lower() for c in header.split()]
    return [dict(zip(columns, row.split(), strict=True)) for row in rows]


@pytest.fixture(scope="module")
def submitted(cli: Cli) -> dict[str, Run]:
    """Every valid example through `wanflow submit --wait`, all at once, each bounded."""
    procs = {
        name: cli.start("submit", "--wait", "--timeout", "45", _path("valid", name))
        for name in VALID
    }
    return _wait_all(procs, timeout=60)


@pytest.fixture(scope="module")
def task_ids(submitted: dict[str, Run]) -> dict[str, str]:
    """The task id of each valid example."""
    return {name: run.json_and_lines()[0]["id"] for name, run in submitted.items()}


@pytest.mark.parametrize("name", VALID)
def test_every_valid_example_runs_to_success(submitted: dict[str, Run], name: str) -> None:
    run = submitted[name]
    assert (run.code, run.err) == (0, ""), run.out
    task, lines = run.json_and_lines()
    assert task["model"] == _load("valid", name)["model"]
    assert task["status"] in {"accepted", "queued"}
    # non-TTY: one plain line per change, no carriage returns, ending in success
    assert lines
    assert all(line.startswith(task["id"]) for line in lines)
    assert "\r" not in run.out
    assert lines[-1].split()[1:4] == ["succeeded", "[################]", "100%"]


@pytest.mark.parametrize("name", VALID)
def test_download_fetches_the_real_files(
    cli: Cli, task_ids: dict[str, str], name: str, tmp_path: Path
) -> None:
    status = cli.run("status", task_ids[name])
    assert status.returncode == 0, status.stderr
    task = json.loads(status.stdout)
    assert task["status"] == "succeeded"
    assert task["outputs"]

    got = cli.run("download", task["id"], str(tmp_path / "out"))

    assert (got.returncode, got.stderr) == (0, "")
    paths = [Path(line) for line in got.stdout.splitlines()]
    assert len(paths) == len(task["outputs"])
    assert sorted(paths) == sorted((tmp_path / "out").iterdir())  # no `.part` left behind
    for path, output in zip(paths, task["outputs"], strict=True):
        data = path.read_bytes()
        if output["type"] == "video":
            assert path.suffix == ".mp4"
            assert b"ftyp" in data[:12]
        elif output["type"] == "image":
            assert path.suffix == ".png"
            assert data.startswith(PNG_SIGNATURE)
        else:
            assert path.suffix == ".txt"
            assert data.decode() == output["text"]


def test_download_defaults_to_a_directory_named_by_the_task(
    cli: Cli, task_ids: dict[str, str], tmp_path: Path
) -> None:
    task_id = task_ids["wan2.6-t2v"]
    got = subprocess.run(
        [cli.script, "download", task_id],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=cli.env(),
        timeout=30,
        check=False,
    )
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines() == [f"{task_id}/0.mp4"]
    assert b"ftyp" in (tmp_path / task_id / "0.mp4").read_bytes()[:12]


def test_tasks_lists_them_newest_first_and_follows_the_pages(
    cli: Cli, task_ids: dict[str, str]
) -> None:
    every = cli.run("tasks", "--all")
    paged = cli.run("tasks", "--all", "--limit", "5")
    first = cli.run("tasks", "--limit", "3")
    wan26 = cli.run("tasks", "--all", "--model", "wan2.6", "--status", "succeeded")

    assert [r.returncode for r in (every, paged, first, wan26)] == [0, 0, 0, 0]
    rows = _table(every.stdout)
    by_id = {row["id"]: row for row in rows}
    assert set(task_ids.values()) <= set(by_id)
    for name, task_id in task_ids.items():
        row = by_id[task_id]
        assert (row["model"], row["status"], row["progress"]) == (
            _load("valid", name)["model"],
            "succeeded",
            "100%",
        )
    created = [row["created_at"] for row in rows]
    assert created == sorted(created, reverse=True)
    # following 5-task pages gives the same list as one big page
    assert _table(paged.stdout) == rows
    assert _table(first.stdout) == rows[:3]
    expected = {i for n, i in task_ids.items() if _load("valid", n)["model"] == "wan2.6"}
    listed = _table(wan26.stdout)
    assert {row["id"] for row in listed} >= expected
    assert {row["model"] for row in listed} == {"wan2.6"}


def test_watch_of_finished_tasks_prints_a_line_each_and_exits_0(
    cli: Cli, task_ids: dict[str, str]
) -> None:
    ids = [task_ids["wan2.6-t2v"], task_ids["wan26_i2i-interleave"]]
    got = cli.run("watch", *ids, "--timeout", "20")
    assert (got.returncode, got.stderr) == (0, "")
    lines = got.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [[i, "succeeded"] for i in ids]


def test_watch_follows_a_running_task_to_its_end(cli: Cli) -> None:
    task = json.loads(cli.run("submit", _path("valid", SLOW)).stdout)

    # GIVEN a task that takes a few seconds: a watch bounded well below that gives up
    short = cli.run("watch", task["id"], "--timeout", "0.2")
    assert short.returncode == 1
    assert short.stderr == f"wanflow watch: not finished after 0.2 s: {task['id']}\n"
    assert short.stdout.split()[1] in {"queued", "running"}

    # WHEN it is watched without a tight bound THEN each change is a line, the last succeeded
    full = cli.run("watch", task["id"], "--timeout", "30", timeout=40)
    assert full.returncode == 0, full.stderr
    states = [tuple(line.split()[1:4]) for line in full.stdout.splitlines()]
    assert states[-1] == ("succeeded", "[################]", "100%")
    assert all(a != b for a, b in itertools.pairwise(states))


def test_submit_reads_stdin_and_honours_the_idempotency_key(cli: Cli) -> None:
    body = (REQUESTS / "valid" / "wan2.6-t2v.json").read_text(encoding="utf-8")
    first = cli.run("submit", "-", "--idempotency-key", "e2e-key-1", input=body)
    again = cli.run("submit", _path("valid", "wan2.6-t2v"), "--idempotency-key", "e2e-key-1")
    other = cli.run("submit", _path("valid", "wan26_i2v"), "--idempotency-key", "e2e-key-1")

    assert (first.returncode, again.returncode) == (0, 0)
    assert json.loads(first.stdout)["id"] == json.loads(again.stdout)["id"]
    assert other.returncode == 2
    error = json.loads(other.stdout)["error"]
    assert (error["type"], error["param"]) == ("idempotency_error", "Idempotency-Key")
    done = cli.run("watch", json.loads(first.stdout)["id"], "--timeout", "30", timeout=40)
    assert done.returncode == 0


@pytest.mark.parametrize("name", INVALID)
def test_a_bad_request_gets_the_error_json_and_exit_2(cli: Cli, name: str) -> None:
    body = _load("invalid", name)
    got = cli.run("submit", _path("invalid", name))
    assert got.returncode == 2
    assert got.stderr == ""
    # the very error JSON `wanflow validate` gives offline
    with pytest.raises(InvalidRequest) as offline:
        validate(body)
    assert json.loads(got.stdout) == offline.value.body().model_dump(mode="json")


def test_an_unknown_id_is_exit_2_everywhere(cli: Cli, tmp_path: Path) -> None:
    status = cli.run("status", "tsk_nope")
    watch = cli.run("watch", "tsk_nope", "--timeout", "10")
    download = cli.run("download", "tsk_nope", str(tmp_path / "out"))

    assert [r.returncode for r in (status, watch, download)] == [2, 2, 2]
    assert json.loads(status.stdout)["error"]["code"] == "task_not_found"
    for one_line in (watch.stderr, download.stderr):
        assert one_line.count("\n") == 1
        assert "task_not_found" in one_line
    assert not (tmp_path / "out").exists()


# `submitted` first: the examples have all finished before any fault can touch them.
@pytest.mark.usefixtures("submitted")
def test_a_failed_task_exits_1_and_has_nothing_to_download(cli: Cli, faults: Any) -> None:
    # GIVEN the upstream fails every new task
    faults(fail_rate=1.0)
    # WHEN it is submitted and waited for
    got = Run.of(
        cli.run("submit", "--wait", "--timeout", "30", _path("valid", "wan2.6-t2v"), timeout=40)
    )
    # THEN the last line says failed, with the error code, and the exit is 1
    task, lines = got.json_and_lines()
    assert got.code == 1
    assert lines[-1].split()[1] == "failed"
    status = json.loads(cli.run("status", task["id"]).stdout)
    assert status["error"]["code"] in lines[-1]
    download = cli.run("download", task["id"])
    assert download.returncode == 2
    assert download.stderr == (
        f"wanflow download: task {task['id']} is failed, not succeeded: nothing to download\n"
    )


def test_an_unset_api_url_is_one_line_and_exit_2(cli: Cli) -> None:
    got = cli.run("tasks", WANFLOW_API_URL=None)
    assert got.returncode == 2
    assert got.stdout == ""
    assert got.stderr == "wanflow tasks: WANFLOW_API_URL is not set (`wanflow local` prints both)\n"


def test_an_unreachable_api_is_one_line_and_exit_1(cli: Cli) -> None:
    # A port that was free a moment ago: nothing listens there.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/prod"
    got = cli.run("status", "tsk_x", WANFLOW_API_URL=url)
    assert got.returncode == 1
    assert got.stdout == ""
    assert got.stderr.startswith(f"wanflow status: cannot reach WANFLOW_API_URL={url}: ")
    assert got.stderr.count("\n") == 1
    assert "Traceback" not in got.stderr
