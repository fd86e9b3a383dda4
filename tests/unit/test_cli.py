"""The `wanflow` command: exit codes and output, in process and as the installed script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wanflow_client.cli import main

EVENTS = Path(__file__).resolve().parents[2] / "events" / "requests"


def test_validate_prints_the_normalised_request(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EVENTS / "valid" / "wan2.6-t2v.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["model"], out["mode"]) == ("wan2.6", "t2v")
    assert out["request"]["duration"] == 5


def test_validate_prints_the_error_json_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EVENTS / "invalid" / "wan26_i2i-size.json")]) == 2
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"error", "errors", "more_errors"}
    assert out["more_errors"] == 0
    assert out["error"]["code"] == "001021016"
    assert out["error"]["param"] == "parameters.size"


@pytest.mark.parametrize(
    ("content", "reason"),
    [("{not json", "is not valid JSON"), (b"\xff\xfe", "not UTF-8")],
)
def test_broken_input_gets_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes, reason: str
) -> None:
    path = tmp_path / "req.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert reason in captured.err
    assert captured.err.count("\n") == 1


def test_a_missing_file_gets_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err
    assert err.count("\n") == 1


def test_models_lists_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    ids = [m["id"] for m in json.loads(capsys.readouterr().out)]
    assert ids == [
        "wan26_i2v",
        "wan2.6-image-to-video-flash",
        "wan22_i2v_flash",
        "wan2.6",
        "wan26_i2i",
    ]


def _script() -> str:
    return shutil.which("wanflow") or str(Path(sys.executable).with_name("wanflow"))


def test_installed_command_reads_stdin_and_never_shows_a_traceback() -> None:
    ok = subprocess.run(
        [_script(), "validate", "-"],
        input=(EVENTS / "valid" / "wan26_i2i-edit.json").read_text(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["mode"] == "edit"
    bad = subprocess.run(
        [_script(), "validate", "-"],
        input='{"model": ',
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stdout == ""
