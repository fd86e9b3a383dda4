"""The `wanflow` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

EXIT_OK = 0
EXIT_INVALID = 2


def _read_json(source: str) -> Any:
    """Load JSON from a file path or '-' (stdin); raise ValueError with a one-line reason."""
    try:
        if source == "-":
            text = sys.stdin.read()
        else:
            with open(source, encoding="utf-8") as fh:
                text = fh.read()
    except OSError as exc:
        raise ValueError(f"cannot read {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"cannot read {source}: not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def _dump(data: Any, out: TextIO) -> None:
    json.dump(data, out, indent=2, ensure_ascii=False)
    out.write("\n")


def cmd_validate(args: argparse.Namespace) -> int:
    """Print the normalised request (exit 0) or the API's error JSON (exit 2)."""
    from wanflow.catalog import validate
    from wanflow.errors import InvalidRequest

    try:
        body = _read_json(args.file)
    except ValueError as exc:
        print(f"wanflow validate: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        result = validate(body)
    except InvalidRequest as exc:
        _dump(exc.body().model_dump(mode="json"), sys.stdout)
        return EXIT_INVALID
    _dump(result.model_dump(mode="json"), sys.stdout)
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    """Print the catalog: every model with its modes, route and request schema."""
    from wanflow.catalog import MODELS

    entries = [spec.describe() for spec in MODELS.values()]
    if not args.schema:
        for entry in entries:
            del entry["request_schema"]
    _dump(entries, sys.stdout)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `wanflow` command."""
    parser = argparse.ArgumentParser(
        prog="wanflow", description="Run Wan generation jobs through the aggregator."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    validate = sub.add_parser("validate", help="check a request offline")
    validate.add_argument("file", help="request JSON file, or - for standard input")
    validate.set_defaults(func=cmd_validate)

    models = sub.add_parser("models", help="print the model catalog")
    models.add_argument("--schema", action="store_true", help="include each request schema")
    models.set_defaults(func=cmd_models)

    _add_local_commands(sub)
    return parser


def _add_local_commands(sub: Any) -> None:
    """`local` and `demo` live with the local stack, which only a development install has."""
    try:
        from wanflow_local.commands import register
    except ImportError:
        return
    register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `wanflow` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except BrokenPipeError:  # `wanflow ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return EXIT_OK
    return code


if __name__ == "__main__":
    raise SystemExit(main())
