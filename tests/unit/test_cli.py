"""The `wanflow` command: exit codes and output, in process and as the installed script."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from wanflow_client import cli
from wanflow_client.cli import COMMANDS_GROUP, build_parser, main

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events" / "requests"


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


# --- commands other packages add (entry points) ------------------------------------------------


def _commands() -> set[str]:
    parser = build_parser()
    [sub] = [a for a in parser._actions if a.dest == "command"]
    return set(sub.choices or {})


def _distribution(where: Path, entry_points: dict[str, str]) -> None:
    """Metadata of a distribution named `wanflow` in `where` (a path entry): first on sys.path,
    it stands in for any installed one, so the test does not depend on the venv's install."""
    info = where / "wanflow-0.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: wanflow\nVersion: 0.0.0\n")
    lines = [f"[{COMMANDS_GROUP}]", *(f"{name} = {value}" for name, value in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def test_local_and_demo_come_from_the_entry_point_pyproject_declares(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the install's metadata holds the entry points pyproject.toml declares
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = project["entry-points"][COMMANDS_GROUP]
    assert declared == {"local": "wanflow_local.commands:register"}
    _distribution(tmp_path, declared)
    monkeypatch.syspath_prepend(str(tmp_path))
    # WHEN the parser is built
    # THEN the local stack's commands are there, beside the command's own
    assert {"local", "demo", "submit", "keys"} <= _commands()


def test_without_the_entry_point_there_is_no_local_or_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an install whose metadata has no command entry point (the local stack is still
    # importable: discovery alone decides)
    _distribution(tmp_path, {})
    monkeypatch.syspath_prepend(str(tmp_path))
    # THEN the command has its own commands only
    commands = _commands()
    assert "submit" in commands
    assert not {"local", "demo"} & commands


def test_an_entry_point_whose_module_is_missing_adds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _distribution(tmp_path, {"gone": "wanflow_no_such_module:register"})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "submit" in _commands()


def test_the_command_line_never_imports_the_local_stack() -> None:
    tree = ast.parse(Path(cli.__file__).read_text(encoding="utf-8"))
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert imported
    assert not [name for name in imported if name and name.startswith("wanflow_local")]
