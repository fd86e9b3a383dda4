"""The main job: `wanflow demo` brings the stack up, runs every model and mode, and says so."""

from __future__ import annotations

import subprocess

from clikit import script


def test_demo_runs_every_model_and_mode_to_succeeded() -> None:
    done = subprocess.run(
        [script(), "demo", "--time-scale", "0.05"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "all 8 tasks succeeded" in out
    table = out.split("\nmodel ", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    assert len(table) == 8
    assert all(" succeeded " in row for row in table)
    assert sum(" callback " in row for row in table) == 1  # the flash model
    assert out.count("s3://") >= 8
