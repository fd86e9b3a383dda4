"""Running the `wanflow` command as a client does: the installed script, in its own process,
over HTTP. A module of its own so the tests import it by a unique name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wanflow_local.commands import DEV_API_KEY


def script() -> str:
    """The `wanflow` script to run."""
    # The script installed beside this interpreter first: a `wanflow` elsewhere on PATH may be
    # another install of another version.
    beside = Path(sys.executable).with_name("wanflow")
    return str(beside) if beside.exists() else (shutil.which("wanflow") or str(beside))


@dataclass
class Cli:
    """Runs `wanflow` in a subprocess with WANFLOW_API_URL and WANFLOW_API_KEY set."""

    api_url: str
    script: str

    def env(self, **changes: str | None) -> dict[str, str]:
        """The environment of a run: this one with the API's settings, then `changes` (None
        removes a variable)."""
        env = {**os.environ, "WANFLOW_API_URL": self.api_url, "WANFLOW_API_KEY": DEV_API_KEY}
        for name, value in changes.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def start(self, *args: str, **env: str | None) -> subprocess.Popen[str]:
        """Start `wanflow ARGS` (stdout and stderr piped); the caller bounds the wait."""
        return subprocess.Popen(
            [self.script, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(**env),
        )

    def run(
        self, *args: str, input: str | None = None, timeout: float = 30.0, **env: str | None
    ) -> subprocess.CompletedProcess[str]:
        """Run `wanflow ARGS` to its end (bounded by `timeout` seconds)."""
        # No input: stdin is closed, so a command can never wait on the terminal.
        stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
        return subprocess.run(
            [self.script, *args],
            **stdin,
            capture_output=True,
            text=True,
            env=self.env(**env),
            timeout=timeout,
            check=False,
        )


@dataclass
class Run:
    """A finished `wanflow` process."""

    code: int
    out: str
    err: str

    @classmethod
    def of(cls, proc: subprocess.CompletedProcess[str]) -> Run:
        """The outcome of `subprocess.run`."""
        return cls(proc.returncode, proc.stdout, proc.stderr)

    def json_and_lines(self) -> tuple[dict[str, Any], list[str]]:
        """The JSON document stdout starts with, and the lines after it (watch's progress)."""
        document, end = json.JSONDecoder().raw_decode(self.out)
        return document, self.out[end:].strip().splitlines()
