"""`sam build` as Lambda needs it, then the artifacts' sizes.

SAM writes timestamp-checked `.pyc` files, but the deployed zip dates every source to 1980, so
Lambda rejects them all and compiles again on every cold start (about twice the init time).
After the build, everything is recompiled for the runtime's Python with
`--invalidation-mode unchecked-hash`, which does not look at timestamps.

`sam build` without Docker needs a real `python3.12` first on PATH (not a pyenv shim): it is
looked up here and put there. Usage: `python local/lambda_build.py [--sam PATH] [--out DIR]`.
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = "3.12"


def find_python() -> Path:
    """A real python3.12 interpreter (PYTHON312, then pyenv's versions, then PATH)."""
    named = os.environ.get("PYTHON312")
    candidates = [named] if named else []
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{RUNTIME}*/bin/python{RUNTIME}"))
    candidates.append(shutil.which(f"python{RUNTIME}") or "")
    for candidate in filter(None, candidates):
        try:
            real = subprocess.run(
                [candidate, "-c", "import sys; print(sys.executable)"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            continue
        if real:
            return Path(real)
    raise SystemExit(f"lambda_build: no python{RUNTIME} found (set PYTHON312)")


def zipped_size(directory: Path) -> int:
    """Bytes of the directory as a deployment zip (deflated, as SAM packages it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return buffer.tell()


def tree_size(directory: Path) -> int:
    """Bytes of the files under a directory."""
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sam", default=str(ROOT / ".venv-sam" / "bin" / "sam"))
    parser.add_argument("--out", default=str(ROOT / ".aws-sam" / "build"))
    args = parser.parse_args(argv)
    python = find_python()
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["SAM_CLI_TELEMETRY"] = "0"
    out = Path(args.out)
    subprocess.run(
        [args.sam, "build", "--region", "us-east-1", "--build-dir", str(out)],
        cwd=ROOT,
        env=env,
        check=True,
    )
    # Sources in the zip are dated 1980; only hash-free, unchecked .pyc files survive that.
    subprocess.run(
        [
            str(python),
            "-m",
            "compileall",
            "-q",
            "-f",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            str(out),
        ],
        check=True,
    )
    print(f"{'artifact':<22}{'files kB':>12}{'zip kB':>12}")
    for artifact in sorted(p for p in out.iterdir() if p.is_dir()):
        files, packed = tree_size(artifact), zipped_size(artifact)
        print(f"{artifact.name:<22}{files / 1e3:>12,.1f}{packed / 1e3:>12,.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
