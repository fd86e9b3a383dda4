"""The `wanflow local` and `wanflow demo` commands (development installs only)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

#: The key the local stack registers at start (for DEV_TENANT), printed for the CLI. Fixed, so
#: scripts and tests know it; every other key comes from `wanflow keys create`.
DEV_API_KEY = "wf_local_dev_key"
#: Its tenant ("default", the name uploads and tests of the local stack have always used).
DEV_TENANT = "default"


def register(sub: Any) -> None:
    """Add `local` and `demo` to the `wanflow` command's subcommands."""
    local = sub.add_parser("local", help="run the whole system on this machine")
    local.add_argument("--port", type=int, default=3000, help="API port (default 3000)")
    local.add_argument(
        "--time-scale", type=float, default=1.0, help="multiply upstream durations and every wait"
    )
    local.add_argument("--upstream", help="a real aggregator's base URL instead of the simulator")
    local.add_argument("--upstream-key", help="the real aggregator's API key")
    local.add_argument("--verbose", action="store_true", help="print every handler's log lines")
    local.set_defaults(func=cmd_local)

    demo = sub.add_parser("demo", help="run one task per model and mode on the local stack")
    demo.add_argument(
        "--time-scale", type=float, default=0.2, help="speed up upstream time (default 0.2)"
    )
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """Bring the local stack up, run every model and mode, print what happened."""
    from wanflow_local.demo import run_demo

    if not args.time_scale > 0:
        print("wanflow demo: --time-scale must be greater than 0", file=sys.stderr)
        return 2
    return run_demo(args.time_scale)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def cmd_local(args: argparse.Namespace) -> int:
    """Start moto, the template's resources, the API and the simulator; serve until Ctrl-C."""
    from wanflow_local.iam import OPERATOR_KEY_ID, OPERATOR_SECRET
    from wanflow_local.stack import local_stack

    if bool(args.upstream) != bool(args.upstream_key):
        print("wanflow local: --upstream and --upstream-key go together", file=sys.stderr)
        return 2
    if not args.time_scale > 0:
        print("wanflow local: --time-scale must be greater than 0", file=sys.stderr)
        return 2
    stop = _stop_on_signals()
    try:
        with local_stack(
            time_scale=args.time_scale,
            api_port=args.port,
            upstream_url=args.upstream,
            upstream_key=args.upstream_key,
            log_level="INFO" if args.verbose else "WARNING",
        ) as running:
            upstream = running.sim.url if running.sim else args.upstream
            completion = "callbacks and polling" if running.sim else "polling only (no public URL)"
            print(f"wanflow is running (time scale {args.time_scale:g}); Ctrl-C stops it.")
            print(f"  API           {running.api.url}")
            print(f"  upstream      {upstream} ({'simulator' if running.sim else 'real'})")
            print(f"  completion    {completion}")
            print(f"  AWS (moto)    {running.aws.endpoint_url}")
            print(f"  API key       {DEV_API_KEY} (tenant {DEV_TENANT})")
            print(f"  table         {running.stack.ref('TasksTable')}")
            print("For the CLI in another shell:")
            print(f"  export WANFLOW_API_URL={running.api.url}")
            print(f"  export WANFLOW_API_KEY={DEV_API_KEY}")
            print("For API keys of other tenants (wanflow keys create|list|revoke --tenant T):")
            print(f"  export AWS_ENDPOINT_URL={running.aws.endpoint_url}")
            print(f"  export TABLE_NAME={running.stack.ref('TasksTable')}")
            # moto checks IAM here: the local operator's keys may do everything.
            print(
                f"  export AWS_ACCESS_KEY_ID={OPERATOR_KEY_ID} "
                f"AWS_SECRET_ACCESS_KEY={OPERATOR_SECRET} AWS_DEFAULT_REGION={running.aws.region}",
                flush=True,
            )
            stop.wait()
    except OSError as exc:
        print(f"wanflow local: cannot start: {exc}", file=sys.stderr)
        return 1
    print("wanflow local: stopped", flush=True)
    return 0
