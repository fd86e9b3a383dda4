"""The simulator over real HTTP: the seeds' examples, statuses, files, faults and controls."""

from __future__ import annotations

import contextlib
import io
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from PIL import Image
from simkit import INVALID, TIME_SCALE, VALID, load

from kit.waiting import wait_for
from wanflow.catalog import MODELS, get_model, validate
from wanflow.catalog.base import TASKS_ROUTE
from wanflow.errors import InvalidRequest
from wanflow.task import statuses_of
from wanflow_local.simulator import DEFAULT_API_KEY, Faults, Simulator

AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def create(http: httpx.Client, sim: Simulator, body: Any) -> httpx.Response:
    spec = MODELS.get(body.get("model"))
    path = spec.route.create_path if spec else TASKS_ROUTE.create_path
    return http.post(sim.url + path, json=body, headers=AUTH)


def status(http: httpx.Client, sim: Simulator, model: str, task_id: str) -> dict[str, Any]:
    path = get_model(model).route.status_path.format(id=task_id)
    response = http.get(sim.url + path, headers=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def finished(http: httpx.Client, sim: Simulator, model: str, task_id: str) -> dict[str, Any]:
    """Poll until the task reports a terminal word; fail if it takes too long."""
    words = statuses_of(get_model(model).vocabulary)

    def probe() -> dict[str, Any] | None:
        body = status(http, sim, model, task_id)
        return body if body["status"] in (words[2], words[3], "cancelled") else None

    return wait_for(probe, timeout=10, what=f"{model} task {task_id} to finish")


def result_urls(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(type, url) of every file in a finished report, whichever family."""
    if "results" in body:
        kind = get_model(body["model"]).output_type
        return [(kind, url) for url in body["results"]]
    parts = [c for item in body["output"] for c in item["content"]]
    return [(c["type"], c["url"]) for c in parts if c["type"] != "text"]


def mp4_boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, bytes]:
    """The boxes at one level of an ISO BMFF file, by type; the sizes must tile it exactly."""
    boxes, at, end = {}, start, len(data) if end is None else end
    while at < end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        assert 8 <= size <= end - at, f"bad box {kind!r} at {at}"
        boxes[kind] = data[at + 8 : at + size]
        at += size
    assert at == end
    return boxes


def assert_mp4(data: bytes) -> None:
    """An MP4 whose one H.264 track's sample table matches the samples in mdat."""
    top = mp4_boxes(data)
    assert next(iter(top)) == b"ftyp"
    assert top[b"ftyp"][:4] == b"isom"
    trak = mp4_boxes(mp4_boxes(top[b"moov"])[b"trak"])
    mdia = mp4_boxes(trak[b"mdia"])
    assert mdia[b"hdlr"][8:12] == b"vide"
    stbl = mp4_boxes(mp4_boxes(mdia[b"minf"])[b"stbl"])
    assert stbl[b"stsd"][8 + 4 : 8 + 8] == b"avc1"
    assert b"avcC" in stbl[b"stsd"]
    count = struct.unpack(">I", stbl[b"stsz"][8:12])[0]
    sizes = struct.unpack(f">{count}I", stbl[b"stsz"][12 : 12 + 4 * count])
    (offset,) = struct.unpack(">I", stbl[b"stco"][8:12])
    assert offset == data.index(b"mdat") + 4
    assert sum(sizes) == len(top[b"mdat"])
    for size in sizes:  # each sample: one length-prefixed IDR slice
        assert struct.unpack(">I", data[offset : offset + 4])[0] == size - 4
        assert data[offset + 4] & 0x1F == 5
        offset += size


def assert_png(data: bytes) -> None:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.verify()


# --- the seeds' own examples --------------------------------------------------------------------


@pytest.fixture(scope="module")
def fast_sim() -> Iterator[Simulator]:
    with Simulator(time_scale=0.002, seed=11) as running:
        yield running


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_example_completes_with_real_files(
    path: Path, fast_sim: Simulator, http: httpx.Client
) -> None:
    # GIVEN a request exactly as the seed documents it
    body = load(path)
    # WHEN it is sent to its model's create path
    created = create(http, fast_sim, body)
    # THEN a task is created in the model's queued word, and finishes with downloadable files
    assert created.status_code == 200, created.text
    task_id, spec = created.json()["id"], get_model(body["model"])
    assert created.json()["status"] == statuses_of(spec.vocabulary)[0]
    assert task_id in fast_sim.tasks_created()
    done = finished(http, fast_sim, body["model"], task_id)
    assert done["status"] == statuses_of(spec.vocabulary)[2]
    assert float(done["usage"]["cost"]) > 0
    assert isinstance(done["usage"]["cost"], str)
    files = result_urls(done)
    assert files
    assert all(kind == spec.output_type for kind, _ in files)
    for kind, url in files:
        download = http.get(url)
        assert download.status_code == 200
        (assert_mp4 if kind == "video" else assert_png)(download.content)
    if validate(body).mode == "interleave":
        types = [c["type"] for c in done["output"][0]["content"]]
        assert "text" in types
        assert "image" in types
        assert done["usage"]["image_count"] == types.count("image")


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_example_answers_400_with_the_catalogs_errors(
    path: Path, fast_sim: Simulator, http: httpx.Client
) -> None:
    # GIVEN a simulator as strict as the upstream (HTTPS callbacks only)
    body, before = load(path), len(fast_sim.tasks_created())
    with pytest.raises(InvalidRequest) as refused:
        validate(body)
    answer = create(http, fast_sim, body)
    assert answer.status_code == 400
    assert answer.json() == refused.value.body().model_dump(mode="json")
    assert len(fast_sim.tasks_created()) == before


def test_wan26_i2i_answers_its_seed_codes(sim: Simulator, http: httpx.Client) -> None:
    answer = create(http, sim, load(INVALID[0].parent / "wan26_i2i-size.json"))
    assert {e["code"] for e in answer.json()["errors"]} >= {"001021016", "001021017"}


def test_a_model_posted_to_the_other_familys_path_is_refused(
    sim: Simulator, http: httpx.Client
) -> None:
    body = load(VALID[0].parent / "wan26_i2v.json")
    answer = http.post(sim.url + TASKS_ROUTE.create_path, json=body, headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "wrong_endpoint"
    assert sim.tasks_created() == []


# --- authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": ""}])
def test_a_missing_or_wrong_key_gets_401(
    headers: dict[str, str], sim: Simulator, http: httpx.Client
) -> None:
    body = load(VALID[0].parent / "wan2.6-t2v.json")
    answer = http.post(sim.url + TASKS_ROUTE.create_path, json=body, headers=headers)
    assert answer.status_code == 401
    assert http.get(sim.url + "/v1/tasks/x", headers=headers).status_code == 401
    assert sim.tasks_created() == []


# --- statuses over simulated time ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["wan26_i2v", "wan2.6-image-to-video-flash", "wan2.6-t2v"])
def test_a_task_walks_its_models_own_vocabulary(
    name: str, sim: Simulator, http: httpx.Client
) -> None:
    body = load(VALID[0].parent / f"{name}.json")
    spec = get_model(body["model"])
    created = create(http, sim, body).json()
    task_id = created["id"]
    seen: list[tuple[str, int | None]] = [(created["status"], created.get("progress"))]

    def probe() -> bool | None:
        report = status(http, sim, spec.id, task_id)
        seen.append((report["status"], report.get("progress")))
        return True if report["status"] == statuses_of(spec.vocabulary)[2] else None

    wait_for(probe, timeout=10, interval=0.01, what="completion")
    words = [w for w, _ in seen]
    queued, running, success, _ = statuses_of(spec.vocabulary)
    # Only forward, every word of the vocabulary seen, ending in success.
    assert words == sorted(words, key=[queued, running, success].index)
    assert set(words) == {queued, running, success}
    progress = [p for _, p in seen]
    if spec.route.family == TASKS_ROUTE.family:
        percents = [p for p in progress if p is not None]
        assert len(percents) == len(progress)
        assert percents == sorted(percents)
        assert percents[0] == 0
        assert percents[-1] == 100
        assert any(0 < p < 100 for p in percents)
    else:
        assert progress == [None] * len(progress)


# --- task faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fail_code", "expected"),
    [
        ("wan26_i2v", None, "001027095"),
        ("wan26_i2v", "001027097", "001027097"),
        ("wan22_i2v_flash", None, "001027095"),
        ("wan26_i2i-edit", None, "001021095"),
        ("wan26_i2i-edit", "001021099", "001021099"),
        ("wan2.6-t2v", None, "generation_failed"),
        ("wan2.6-image-to-video-flash", "content_policy_violation", "content_policy_violation"),
    ],
)
def test_failing_tasks_carry_the_seeds_generation_codes(
    name: str, fail_code: str | None, expected: str, sim: Simulator, http: httpx.Client
) -> None:
    sim.set_faults(Faults(fail_rate=1, fail_code=fail_code))
    body = load(VALID[0].parent / f"{name}.json")
    done = finished(http, sim, body["model"], create(http, sim, body).json()["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == expected
    assert done["error"]["message"]
    assert "usage" not in done  # nothing billed


def test_stuck_tasks_never_finish(sim: Simulator, http: httpx.Client) -> None:
    sim.set_faults(Faults(stuck_rate=1))
    body = load(VALID[0].parent / "wan22_i2v_flash.json")
    task_id = create(http, sim, body).json()["id"]
    time.sleep(validate(body).timing.high_s * TIME_SCALE + 0.2)  # past the slowest possible finish
    assert status(http, sim, body["model"], task_id)["status"] == "processing"


def test_cancel_stops_a_tasks_family_task_and_refuses_a_finished_one(
    sim: Simulator, http: httpx.Client
) -> None:
    body = load(VALID[0].parent / "wan2.6-t2v.json")
    task_id = create(http, sim, body).json()["id"]
    cancel = sim.url + f"/v1/tasks/{task_id}/cancel"
    answer = http.post(cancel, headers=AUTH)
    assert answer.status_code == 200
    assert answer.json()["status"] == "cancelled"
    time.sleep(validate(body).timing.high_s * TIME_SCALE + 0.1)
    assert status(http, sim, "wan2.6", task_id)["status"] == "cancelled"  # stays cancelled
    again = http.post(cancel, headers=AUTH)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "task_not_cancellable"
    # A generation-family task is not on the tasks family's paths at all.
    generation = create(http, sim, load(VALID[0].parent / "wan26_i2v.json")).json()["id"]
    assert http.post(sim.url + f"/v1/tasks/{generation}/cancel", headers=AUTH).status_code == 404


@pytest.mark.parametrize("expired_status", [403, 404])
def test_result_links_expire(
    expired_status: Literal[403, 404], sim: Simulator, http: httpx.Client
) -> None:
    sim.set_faults(Faults(link_ttl_s=0.3, expired_status=expired_status))
    body = load(VALID[0].parent / "wan26_i2i-edit.json")
    done = finished(http, sim, body["model"], create(http, sim, body).json()["id"])
    (_, url), *_ = result_urls(done)
    assert http.get(url).status_code == 200
    wait_for(
        lambda: True if http.get(url).status_code == expired_status else None,
        timeout=3,
        what="the link to expire",
    )


# --- request faults -----------------------------------------------------------------------------


def test_5xx_is_answered_before_creating_and_a_drop_happens_after(
    sim: Simulator, http: httpx.Client
) -> None:
    body = load(VALID[0].parent / "wan2.6-t2v.json")
    sim.set_faults(Faults(error_rate=1))
    assert create(http, sim, body).status_code in (500, 502, 503, 504)
    assert sim.tasks_created() == []
    sim.set_faults(Faults(drop_rate=1))
    with pytest.raises(httpx.RemoteProtocolError):
        create(http, sim, body)
    assert len(sim.tasks_created()) == 1
    records = sim.requests("create")
    assert [(r.fault, r.status is None) for r in records] == [("5xx", False), ("drop", True)]
    assert records[1].task_id == sim.tasks_created()[0]


def test_429_carries_retry_after(sim: Simulator, http: httpx.Client) -> None:
    sim.set_faults(Faults(throttle_rate=1, retry_after_s=7))
    answer = http.get(sim.url + "/v1/tasks/whatever", headers=AUTH)
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "7"


def test_added_latency_delays_answers(sim: Simulator, http: httpx.Client) -> None:
    sim.set_faults(Faults(latency_s=0.3))
    started = time.monotonic()
    http.get(sim.url + "/v1/tasks/whatever", headers=AUTH)
    assert time.monotonic() - started >= 0.3


def test_the_same_seed_gives_the_same_faults(http: httpx.Client) -> None:
    faults = Faults(error_rate=0.3, throttle_rate=0.2, drop_rate=0.1)

    def run() -> list[int | None]:
        with Simulator(seed=42, faults=faults) as one:
            for _ in range(40):
                with contextlib.suppress(httpx.TransportError):
                    http.get(one.url + "/v1/tasks/x", headers=AUTH)
            return [r.status for r in one.requests()]

    first = run()
    assert first == run()
    assert {500, 502, 503, 504} & set(first)
    assert {429, 404, None} <= set(first)


# --- control endpoints and the entry point --------------------------------------------------------


def test_control_endpoints_set_faults_list_requests_and_reset(
    sim: Simulator, http: httpx.Client
) -> None:
    assert http.post(sim.url + "/_sim/faults", json={"error_rate": 2}).status_code == 400
    answer = http.post(sim.url + "/_sim/faults", json={"throttle_rate": 1, "retry_after_s": 2})
    assert answer.status_code == 200
    assert sim.faults.throttle_rate == 1
    assert http.get(sim.url + "/v1/tasks/x", headers=AUTH).status_code == 429
    listed = http.get(sim.url + "/_sim/requests").json()
    assert [(r["kind"], r["status"], r["fault"]) for r in listed] == [("status", 429, "429")]
    assert http.post(sim.url + "/_sim/reset", json={"seed": 5}).status_code == 200
    assert http.get(sim.url + "/_sim/requests").json() == []
    assert sim.faults == Faults()


def test_runs_standalone_with_python_m() -> None:
    command = [sys.executable, "-m", "wanflow_local.simulator", "--port", "0"]
    command += ["--time-scale", "0.05", "--api-key", "KEY"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        body = load(VALID[0].parent / "wan2.6-t2v.json")
        answer = httpx.post(
            url + TASKS_ROUTE.create_path, json=body, headers={"Authorization": "Bearer KEY"}
        )
        assert answer.status_code == 200
        assert answer.json()["status"] == "queued"
        assert len(httpx.get(url + "/_sim/tasks").json()) == 1
    finally:
        process.terminate()
        process.wait(timeout=10)
