"""Run the upstream simulator on its own: `python -m wanflow_local.simulator --port 8900`."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Sequence

from pydantic import ValidationError

from wanflow_local.simulator.faults import Faults
from wanflow_local.simulator.server import DEFAULT_API_KEY, Simulator


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted; prints the URL once listening."""
    parser = argparse.ArgumentParser(
        prog="python -m wanflow_local.simulator", description="Simulate the upstream aggregator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the Bearer key it accepts")
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="multiplies every task duration"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    parser.add_argument("--faults", default="{}", help='faults as JSON, e.g. {"error_rate": 0.1}')
    parser.add_argument(
        "--allow-http-callbacks", action="store_true", help="also call plain-HTTP callback URLs"
    )
    parser.add_argument(
        "--max-running-per-model",
        type=int,
        default=None,
        help="tasks of one model in flight at once; past it a create is a 429 with Retry-After",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if args.max_running_per_model is not None and args.max_running_per_model < 1:
        parser.error("--max-running-per-model: must be at least 1")
    try:
        faults = Faults.model_validate_json(args.faults)
    except ValidationError as exc:
        parser.error(f"--faults: {exc}")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    sim = Simulator(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        time_scale=args.time_scale,
        seed=args.seed,
        faults=faults,
        allow_http_callbacks=args.allow_http_callbacks,
        max_running_per_model=args.max_running_per_model,
    ).start()
    print(f"upstream simulator listening on {sim.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
