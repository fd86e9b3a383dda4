"""Run `wanflow validate` on every example request in events/requests and print what it said.

The valid examples must exit 0 and the invalid ones exit 2 with the error JSON; the script exits
non-zero when any example does otherwise. It runs the installed command, as a user would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "events" / "requests"


def main() -> int:
    command = shutil.which("wanflow") or str(Path(sys.executable).with_name("wanflow"))
    failures = 0
    for kind, expected_exit in (("valid", 0), ("invalid", 2)):
        for path in sorted((EXAMPLES / kind).glob("*.json")):
            done = subprocess.run(
                [command, "validate", str(path)], capture_output=True, text=True, check=False
            )
            name = path.relative_to(ROOT)
            if done.returncode != expected_exit:
                failures += 1
                print(f"UNEXPECTED exit {done.returncode}  {name}\n{done.stdout}{done.stderr}")
                continue
            out = json.loads(done.stdout)
            if kind == "valid":
                notes = ", ".join(w["code"] + "@" + str(w["param"]) for w in out["warnings"])
                print(
                    f"ok       {name}  mode={out['mode']}"
                    + (f"  warnings: {notes}" if notes else "")
                )
            else:
                codes = ", ".join(f"{e['param']}={e['code']}" for e in out["errors"])
                print(f"refused  {name}  {codes}")
    print(f"{'all examples behaved' if not failures else f'{failures} example(s) misbehaved'}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
