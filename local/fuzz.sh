#!/usr/bin/env bash
# Property-based tests of the API from its own OpenAPI document (schemathesis), on the local
# stack: start `wanflow local` on a free loopback port, wait until it answers, run schemathesis
# over <api>/openapi.json, stop the stack (also on failure or Ctrl-C).
#
# Usage: local/fuzz.sh [extra `st run` options]
#   FUZZ_MAX_EXAMPLES  test cases per operation (default 50: about 1,700 cases, ~35 s)
#   FUZZ_SEED          hypothesis seed (default: a fixed one, so CI runs are reproducible)
set -euo pipefail
cd "$(dirname "$0")/.."

WANFLOW=.venv/bin/wanflow
ST=.venv-fuzz/bin/st
KEY=wf_local_dev_key
MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-50}
SEED=${FUZZ_SEED:-20240601}
READY_TIMEOUT_S=60

workdir=$(mktemp -d)
log="$workdir/wanflow-local.log"
pid=""

stop() {
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        # `wanflow local` stops on SIGTERM; give it ten seconds, then insist.
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap stop EXIT

# No curl on every machine: ask with the project's own Python.
answers() {
    .venv/bin/python - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as answer:
    sys.exit(0 if answer.status == 200 else 1)
PY
}
trap 'exit 130' INT TERM

# Port 0: the stack binds a free port and prints its URL, so two runs never collide.
"$WANFLOW" local --port 0 --time-scale 0.02 >"$log" 2>&1 &
pid=$!

api=""
for _ in $(seq $((READY_TIMEOUT_S * 10))); do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "fuzz: wanflow local exited before it was ready:" >&2
        cat "$log" >&2
        exit 1
    fi
    api=$(sed -n 's/^  API  *\(http[^ ]*\)$/\1/p' "$log" | head -n 1)
    if [[ -n "$api" ]] && answers "$api/openapi.json"; then
        break
    fi
    api=""
    sleep 0.1
done
if [[ -z "$api" ]]; then
    echo "fuzz: wanflow local did not answer within ${READY_TIMEOUT_S}s:" >&2
    cat "$log" >&2
    exit 1
fi
echo "fuzz: wanflow local is up at $api"

# One worker: with two, Python 3.11's compile() raced in hypothesis ("AST constructor recursion
# depth mismatch"), an error of the tool, not of the API.
status=0
"$ST" run "$api/openapi.json" \
    --header "Authorization: Bearer $KEY" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --workers 1 \
    --request-timeout 30 \
    --generation-database none \
    --report-dir "$workdir/report" \
    --no-color \
    "$@" || status=$?

if [[ $status -ne 0 ]]; then
    echo "fuzz: schemathesis failed (exit $status); the stack's log follows" >&2
    tail -n 200 "$log" >&2
fi
exit "$status"
