"""The `wanflow` command.

Exit codes: 0 done (for a waited task: it succeeded); 1 a task did not succeed, the API failed
(5xx) or could not be reached; 2 the request was wrong (invalid input, 4xx, a missing setting).
The API commands read WANFLOW_API_URL and WANFLOW_API_KEY; the operator's `keys` talks to
DynamoDB directly (TABLE_NAME or --table) and `redrive-uploads` to SQS and Lambda, with the AWS
settings any AWS SDK reads (AWS_ENDPOINT_URL points them at the local stack's moto). `submit`
and `status` print the API's JSON, error JSON included; the other commands report an error as
one line on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from wanflow.tenants import Tenants
    from wanflow_client.api_client import ApiClient, ApiError, TaskJson

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130


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
    except RecursionError:  # the API refuses it too (wanflow.http.MAX_DEPTH)
        raise ValueError(f"{source} nests arrays and objects too deep to read") from None


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


# --- commands on the API ---------------------------------------------------------------------

ApiCommand = Callable[[argparse.Namespace, "ApiClient"], int]


def _api_command(run: ApiCommand) -> Callable[[argparse.Namespace], int]:
    """Give a command a client from the environment; its errors become one line and an exit code."""

    @functools.wraps(run)
    def command(args: argparse.Namespace) -> int:
        from wanflow_client.api_client import ApiClient, ApiClientError, ApiError, MissingSetting

        try:
            with ApiClient.from_env() as client:
                return run(args, client)
        except ApiClientError as exc:
            print(f"wanflow {args.command}: {exc}", file=sys.stderr)
            invalid = isinstance(exc, MissingSetting) or (
                isinstance(exc, ApiError) and exc.client_error
            )
            return EXIT_INVALID if invalid else EXIT_FAILED
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED

    return command


def _error_json(exc: ApiError) -> int:
    """Print the error JSON as the API sent it; the exit code for its status."""
    _dump(exc.body, sys.stdout)
    return EXIT_INVALID if exc.client_error else EXIT_FAILED


def _watch(
    args: argparse.Namespace,
    client: ApiClient,
    task_ids: Sequence[str],
    first: dict[str, TaskJson] | None = None,
) -> int:
    """Live progress until every task is terminal; 0 only if every one succeeded."""
    from wanflow_client.progress import TERMINAL_STATUSES, ProgressView, watch_tasks

    view = ProgressView(sys.stdout, tty=sys.stdout.isatty())
    final = watch_tasks(client.get, task_ids, view, timeout_s=args.timeout, first=first)
    pending = [i for i in task_ids if final.get(i, {}).get("status") not in TERMINAL_STATUSES]
    if pending:  # only with --timeout: without one the watch returns when all have ended
        print(
            f"wanflow {args.command}: not finished after {args.timeout:g} s: {', '.join(pending)}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    succeeded = all(final[i].get("status") == "succeeded" for i in task_ids)
    return EXIT_OK if succeeded else EXIT_FAILED


@_api_command
def cmd_submit(args: argparse.Namespace, client: ApiClient) -> int:
    """Submit a request: the task JSON (then, with --wait, its progress) or the error JSON."""
    from wanflow_client.api_client import ApiError

    try:
        body = _read_json(args.file)
    except ValueError as exc:
        print(f"wanflow submit: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        task = client.submit(body, idempotency_key=args.idempotency_key)
    except ApiError as exc:
        return _error_json(exc)
    _dump(task, sys.stdout)
    if not args.wait:
        return EXIT_OK
    sys.stdout.flush()
    return _watch(args, client, [task["id"]], first={task["id"]: task})


@_api_command
def cmd_status(args: argparse.Namespace, client: ApiClient) -> int:
    """Print one task, or the error JSON (exit 2 for an unknown id)."""
    from wanflow_client.api_client import ApiError

    try:
        task = client.get(args.id)
    except ApiError as exc:
        return _error_json(exc)
    _dump(task, sys.stdout)
    return EXIT_OK


@_api_command
def cmd_watch(args: argparse.Namespace, client: ApiClient) -> int:
    """Live progress of tasks until all are terminal; exit 0 only if every one succeeded."""
    return _watch(args, client, list(dict.fromkeys(args.ids)))


@_api_command
def cmd_tasks(args: argparse.Namespace, client: ApiClient) -> int:
    """A table of the tenant's tasks, newest first."""
    from wanflow_client.progress import task_table

    if args.all:
        tasks = list(client.list_all(args.status, args.model, page_size=args.limit or 100))
    else:
        tasks, _ = client.list(args.status, args.model, limit=args.limit or 20)
    print(task_table(tasks))
    return EXIT_OK


@_api_command
def cmd_download(args: argparse.Namespace, client: ApiClient) -> int:
    """Fetch a succeeded task's outputs into DIR; print each file's path."""
    task = client.get(args.id)
    if task.get("status") != "succeeded":
        print(
            f"wanflow download: task {args.id} is {task.get('status')}, not succeeded: "
            "nothing to download",
            file=sys.stderr,
        )
        return EXIT_INVALID
    directory = Path(args.dir) if args.dir else Path(str(task["id"]))
    try:
        paths = client.download(task, directory)
    except OSError as exc:
        print(f"wanflow download: cannot write {directory}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    for path in paths:
        print(path)
    return EXIT_OK


# --- the operator's command: API keys ----------------------------------------------------------


def cmd_keys(args: argparse.Namespace) -> int:
    """Create, list or revoke a tenant's API keys in the table; errors are one line, exit 2."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from wanflow.errors import InvalidRequest, WanflowError
    from wanflow.tenants import Tenants, check_tenant

    where = f"wanflow keys {args.action}"
    table = (args.table or os.environ.get("TABLE_NAME", "")).strip()
    if not table:
        print(f"{where}: no table: pass --table NAME or set TABLE_NAME", file=sys.stderr)
        return EXIT_INVALID
    try:
        check_tenant(args.tenant)  # before any AWS setting is needed
        tenants = Tenants(table, boto3.client("dynamodb"))
        return _KEY_ACTIONS[args.action](args, tenants)
    except InvalidRequest as exc:
        reason = "; ".join(f"{item.param}: {item.message}" for item in exc.items)
    except WanflowError as exc:
        reason = exc.message
    except (BotoCoreError, ClientError) as exc:
        reason = str(exc)
    print(f"{where}: {' '.join(reason.split())}", file=sys.stderr)
    return EXIT_INVALID


def _keys_create(args: argparse.Namespace, tenants: Tenants) -> int:
    created = tenants.create_key(args.tenant)
    if args.json:
        _dump(dataclasses.asdict(created), sys.stdout)
        return EXIT_OK
    print(f"API key         {created.key}")
    print("                shown this once: wanflow keeps only its hash")
    print(f"key id          {created.key_id}")
    print(f"tenant          {created.tenant}")
    if created.webhook_secret:
        print(f"webhook secret  {created.webhook_secret}")
        print("                the tenant is new; GET /v1/webhooks/secret shows it again")
    return EXIT_OK


def _keys_list(args: argparse.Namespace, tenants: Tenants) -> int:
    keys = tenants.list_keys(args.tenant)
    if args.json:
        _dump([dataclasses.asdict(key) for key in keys], sys.stdout)
        return EXIT_OK
    if not keys:
        print(f"tenant {args.tenant} has no API keys")
        return EXIT_OK
    print(f"{'KEY ID':<17}  {'PREFIX':<8}  {'CREATED':<24}  REVOKED")
    for key in keys:
        print(f"{key.key_id:<17}  {key.prefix:<8}  {key.created_at:<24}  {key.revoked_at or '-'}")
    return EXIT_OK


def _keys_revoke(args: argparse.Namespace, tenants: Tenants) -> int:
    if not args.key_id:
        print("wanflow keys revoke: --key-id is required", file=sys.stderr)
        return EXIT_INVALID
    key = tenants.revoke(args.tenant, args.key_id)
    if args.json:
        _dump(dataclasses.asdict(key), sys.stdout)
        return EXIT_OK
    print(f"revoked {key.key_id} ({key.prefix}…) of tenant {key.tenant} at {key.revoked_at}")
    print("API Gateway may accept it until its authorizer cache expires (ReauthorizeEvery)")
    return EXIT_OK


_KEY_ACTIONS: dict[str, Callable[[argparse.Namespace, Tenants], int]] = {
    "create": _keys_create,
    "list": _keys_list,
    "revoke": _keys_revoke,
}


def _add_keys_command(sub: Any) -> None:
    keys = sub.add_parser(
        "keys",
        help="create, list or revoke a tenant's API keys (the operator's command)",
        description="Talks to the table directly: TABLE_NAME or --table, and the usual AWS "
        "settings (AWS_ENDPOINT_URL for the local stack, which `wanflow local` prints).",
    )
    keys.add_argument("action", choices=sorted(_KEY_ACTIONS), help="what to do")
    keys.add_argument("--tenant", required=True, metavar="T", help="the tenant")
    keys.add_argument("--key-id", metavar="K", help="with revoke: the key's id (key_…)")
    keys.add_argument("--table", metavar="NAME", help="the table (default: TABLE_NAME)")
    keys.add_argument("--json", action="store_true", help="print JSON")
    keys.set_defaults(func=cmd_keys)


# --- the operator's command: failed upload events --------------------------------------------

#: How long a received dead letter stays hidden from this run (and others) while it is redriven:
#: one that fails to redrive is not received again by the same run, and comes back after it.
_REDRIVE_VISIBILITY_S = 300


def cmd_redrive_uploads(args: argparse.Namespace) -> int:
    """Invoke the upload function again, asynchronously, with each event of its dead-letter
    queue; a message is deleted only once Lambda accepted its invocation (202)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    where = "wanflow redrive-uploads"
    sqs, lam = boto3.client("sqs"), boto3.client("lambda")
    redriven = kept = 0
    seen: set[str] = set()
    try:
        while args.limit is None or redriven + kept < args.limit:
            wanted = 10 if args.limit is None else min(10, args.limit - redriven - kept)
            got = sqs.receive_message(
                QueueUrl=args.queue_url,
                MaxNumberOfMessages=wanted,
                # A short long poll: a plain receive samples some of SQS's servers and may come
                # back empty while messages wait.
                WaitTimeSeconds=1,
                VisibilityTimeout=_REDRIVE_VISIBILITY_S,
                MessageAttributeNames=["All"],
            )
            messages = [m for m in got.get("Messages", []) if m["MessageId"] not in seen]
            if not messages:
                break
            for message in messages:
                seen.add(message["MessageId"])
                if _redrive_one(lam, sqs, args, message):
                    redriven += 1
                else:
                    kept += 1
    except (BotoCoreError, ClientError) as exc:
        print(f"{where}: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{redriven} event(s) redriven to {args.function}, {kept} kept in the queue")
    return EXIT_FAILED if kept else EXIT_OK


def _redrive_one(lam: Any, sqs: Any, args: argparse.Namespace, message: Mapping[str, Any]) -> bool:
    """Redrive one dead letter; False (the message kept) when it is no event or Lambda did
    not accept it."""
    from botocore.exceptions import ClientError

    message_id, body = message["MessageId"], message.get("Body", "")
    attributes = message.get("MessageAttributes") or {}
    error = (attributes.get("ErrorMessage") or {}).get("StringValue")
    try:
        event = json.loads(body)
        keys = [str(r["s3"]["object"]["key"]) for r in event["Records"]]
    except (ValueError, KeyError, TypeError):
        print(f"kept      {message_id}: not an S3 event, left in the queue")
        return False
    try:
        answer = lam.invoke(FunctionName=args.function, InvocationType="Event", Payload=body)
    except ClientError as exc:
        print(f"kept      {message_id}: invoke refused: {' '.join(str(exc).split())}")
        return False
    if answer.get("StatusCode") != 202:
        print(f"kept      {message_id}: invoke answered {answer.get('StatusCode')}")
        return False
    sqs.delete_message(QueueUrl=args.queue_url, ReceiptHandle=message["ReceiptHandle"])
    failed_with = f" (had failed: {' '.join(error.split())[:200]})" if error else ""
    print(f"redriven  {message_id}: {', '.join(keys)}{failed_with}")
    return True


def _add_redrive_command(sub: Any) -> None:
    redrive = sub.add_parser(
        "redrive-uploads",
        help="invoke the upload function again with its failed events (the operator's command)",
        description="Reads the dead-letter queue of the upload function (the stack's "
        "SubmitDeadLetterQueueUrl output), invokes the function asynchronously with each event, "
        "and deletes each message once Lambda accepted it (SQS cannot redrive to a function). "
        "Fix what made them fail first. Exit 1 when some were kept.",
    )
    redrive.add_argument("--queue-url", required=True, metavar="URL", help="the dead-letter queue")
    redrive.add_argument(
        "--function", required=True, metavar="NAME", help="the upload function (name or ARN)"
    )
    redrive.add_argument(
        "--limit", type=_positive_int, metavar="N", help="at most N messages (default: all)"
    )
    redrive.set_defaults(func=cmd_redrive_uploads)


def _seconds(text: str) -> float:
    """argparse type: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _add_api_commands(sub: Any) -> None:
    submit = sub.add_parser("submit", help="submit a request to the API")
    submit.add_argument("file", help="request JSON file, or - for standard input")
    submit.add_argument("--idempotency-key", metavar="K", help="the same K never runs twice")
    submit.add_argument("--wait", action="store_true", help="then watch it until it ends")
    submit.add_argument(
        "--timeout", type=_seconds, metavar="S", help="with --wait: give up after S seconds"
    )
    submit.set_defaults(func=cmd_submit)

    status = sub.add_parser("status", help="print a task")
    status.add_argument("id", help="task id")
    status.set_defaults(func=cmd_status)

    watch = sub.add_parser("watch", help="live progress of tasks until they end")
    watch.add_argument("ids", nargs="+", metavar="ID", help="task id")
    watch.add_argument("--timeout", type=_seconds, metavar="S", help="give up after S seconds")
    watch.set_defaults(func=cmd_watch)

    tasks = sub.add_parser("tasks", help="list tasks, newest first")
    tasks.add_argument("--status", metavar="S", help="only tasks in this status")
    tasks.add_argument("--model", metavar="M", help="only tasks of this model")
    tasks.add_argument(
        "--limit",
        type=_positive_int,
        metavar="N",
        help="at most N tasks (default 20); with --all, N per page (default 100)",
    )
    tasks.add_argument("--all", action="store_true", help="every task, following the pages")
    tasks.set_defaults(func=cmd_tasks)

    download = sub.add_parser("download", help="fetch a succeeded task's outputs")
    download.add_argument("id", help="task id")
    download.add_argument("dir", nargs="?", help="where to write them (default ./<task id>/)")
    download.set_defaults(func=cmd_download)


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

    _add_api_commands(sub)
    _add_keys_command(sub)
    _add_redrive_command(sub)
    _add_plugin_commands(sub)
    return parser


#: The entry-point group of the commands other packages add: `register(subparsers)` objects.
COMMANDS_GROUP = "wanflow.commands"


def _add_plugin_commands(sub: Any) -> None:
    """Commands installed packages add through the COMMANDS_GROUP entry points: `local` and
    `demo` come from the local stack's (`wanflow_local.commands.register`), which this module
    never imports. One whose module cannot be imported (a package of a development install
    missing here) adds nothing."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=COMMANDS_GROUP):
        try:
            register = entry.load()
        except ImportError:
            continue
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
