#!/usr/bin/env bash
# The whole test suite, from any directory, on a fresh machine, as root or as an ordinary user:
#   1. build      both binaries (the integration tests run them)
#   2. rust       unit tests and integration tests that start the real stressd/stressctl on
#                 loopback (the real cgroup test and the full-disk test need root)
#   3. deploy     Dockerfile and Kubernetes manifests: yamllint, real `kubectl kustomize`,
#                 kubernetes-validate, hadolint, pytest (scripts/check-deploy.sh)
#   4. interop    stressd through an independent gRPC client (Python grpcio), discovered by
#                 reflection only as grpcurl does; /metrics through prometheus_client's parser
#   5. container  the image built from the Dockerfile and run as the manifests run it (needs
#                 root for dockerd; scripts/container-test.sh)
# Every stage runs even when an earlier one fails. Tests that need root or a kernel feature
# report SKIPPED with the reason and the command that runs them; under CI=true nothing skips.
# The last line is the total: "total: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT
# Integration tests append "test: reason" here when they skip (server/tests/common).
export MEMSTRESS_SKIP_LOG="$logdir/skipped"
: >"$MEMSTRESS_SKIP_LOG"

stages=()
failed_stages=0

# run_stage NAME COMMAND...: runs the command with its output shown and kept for counting.
run_stage() {
    local name=$1
    shift
    echo "==> $name: $*"
    local start=$SECONDS rc=0
    "$@" 2>&1 | tee "$logdir/$name.log" || rc=$?
    local took=$((SECONDS - start))
    if [ "$rc" -eq 0 ]; then
        stages+=("$name ok (${took} s)")
    else
        stages+=("$name FAILED, exit $rc (${took} s)")
        failed_stages=$((failed_stages + 1))
    fi
}

# count WORD: sum of "N WORD" over every stage log: each of cargo's "test result" lines, and
# the last pytest summary line of a log (a stage runs pytest once; check-deploy.sh repeats
# the line as its own last line).
count() {
    local log
    for log in "$logdir"/*.log; do
        grep -E '^test result: ' "$log"
        grep -E '^=*.* in [0-9.]+s( \([0-9:]+\))? ?=*$|^[0-9]+ (passed|failed|skipped)' "$log" |
            grep -v '^test result: ' | tail -n 1
    done | grep -oE "[0-9]+ $1" | awk '{n += $1} END {print n + 0}'
}

# tmux drives `stressctl top` in a real terminal (client/tests/top_tmux.rs). Installed here
# when root and missing; without it (not root) that test reports SKIPPED.
if ! command -v tmux >/dev/null && [ "$(id -u)" -eq 0 ]; then
    echo "==> apt-get install tmux"
    (timeout 300 apt-get update -qq && timeout 300 apt-get install -y -qq --no-install-recommends tmux >/dev/null) ||
        echo "apt-get install tmux failed; the tmux test will say why"
fi
run_stage build cargo build --workspace --bins --locked
run_stage rust cargo test --workspace --locked --no-fail-fast
run_stage deploy bash scripts/check-deploy.sh
run_stage interop bash -c 'source scripts/venv.sh &&
    ensure_venv_requirements "$PWD/tests/interop/requirements.txt" &&
    .venv/bin/python -m pytest tests/interop -q -p no:cacheprovider'
run_stage container bash scripts/container-test.sh

passed=$(count passed)
failed=$(count failed)
errors=$(count 'errors?')
# Skips inside Rust tests pass as far as cargo knows; pytest counts its own skips.
rust_skipped=$(grep -c . "$MEMSTRESS_SKIP_LOG")
container_skipped=$(grep -c '^SKIPPED' "$logdir/container.log")
py_skipped=$(count skipped)
skipped=$((rust_skipped + container_skipped + py_skipped))
passed=$((passed - rust_skipped))
failed=$((failed + errors))

echo
echo "==> summary"
for s in "${stages[@]}"; do echo "  $s"; done
if [ -s "$MEMSTRESS_SKIP_LOG" ] || [ "$container_skipped" -gt 0 ]; then
    echo "  skipped:"
    sed 's/^/    /' "$MEMSTRESS_SKIP_LOG"
    grep '^SKIPPED' "$logdir/container.log" | sed 's/^/    container: /'
fi
if [ "$failed_stages" -gt 0 ] && [ "$failed" -eq 0 ]; then
    # A stage can fail without a failing test (a build error, a lint): count it.
    failed=$failed_stages
fi
echo "total: $passed passed, $failed failed, $skipped skipped"
[ "$failed_stages" -eq 0 ]
