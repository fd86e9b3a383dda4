"""How long importing the model catalog adds to a fresh interpreter's start.

Runs, interleaved, N fresh processes of each: a bare interpreter, one defining a single pydantic
model (the floor any pydantic user pays), and one importing `wanflow.catalog` and looking up a
model. Prints the medians and the catalog's cost over bare start. Target: at most 120 ms,
pydantic included. Sources are compiled first, as a deployed function has them.

    python bench/catalog_import.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "bare interpreter": "pass",
    # What any use of pydantic costs: `import pydantic` alone is lazy and loads almost nothing.
    "one pydantic model": "from pydantic import BaseModel\nclass M(BaseModel):\n    x: int = 1",
    "import wanflow.catalog": "import wanflow.catalog as c; c.get_model('wan2.6')",
}
TARGET_MS = 120.0


def run_once(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return (time.perf_counter() - start) * 1000


def compile_sources() -> None:
    """Compile wanflow's own sources, as a deployed Lambda has them (dependencies are compiled at
    install). Without bytecode every run would also pay for compiling the sources it imports."""
    import compileall

    import wanflow

    compileall.compile_dir(Path(wanflow.__file__).parent, quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    compile_sources()
    for code in CASES.values():  # warm the OS file cache; not counted
        run_once(code)
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.runs):
        for name, code in CASES.items():
            samples[name].append(run_once(code))

    medians = {name: statistics.median(values) for name, values in samples.items()}
    bare = medians["bare interpreter"]
    print(f"fresh-process start, median of {args.runs} interleaved runs ({sys.version.split()[0]})")
    print(f"{'case':<26}{'median ms':>10}{'over bare ms':>14}{'min ms':>9}{'max ms':>9}")
    for name, values in samples.items():
        print(
            f"{name:<26}{medians[name]:>10.1f}{medians[name] - bare:>14.1f}"
            f"{min(values):>9.1f}{max(values):>9.1f}"
        )
    cost = medians["import wanflow.catalog"] - bare
    verdict = "within" if cost <= TARGET_MS else "OVER"
    print(f"catalog import: {cost:.1f} ms over bare start, {verdict} the {TARGET_MS:.0f} ms target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
