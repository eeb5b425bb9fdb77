#!/usr/bin/env bash
# The container test: builds the real Dockerfile with Docker, runs the image as the
# Kubernetes manifests run it and checks it from the host (tests/container, pytest).
#
#   bash scripts/container-test.sh       (as root, from any directory)
#
# How, and why so:
# * Docker: Debian's docker.io (dockerd 20.10, containerd, runc), installed here when
#   missing; dockerd is started when it is not running (log: $DOCKERD_LOG) and stopped again
#   at the end only if this script started it. The tests use Debian's own docker CLI
#   (/usr/bin/docker, the daemon's release, BuildKit built in) even where a newer CLI is
#   first on PATH: without the buildx plugin a newer CLI only offers the legacy builder.
# * Base images: image registries cannot be reached from these machines, so the Dockerfile
#   takes its two base images as build args (BUILD_IMAGE, RUNTIME_IMAGE) and the test builds
#   it on local stand-ins made with debootstrap (Debian's mirror is reachable) and
#   `docker import`: Debian bookworm + gcc/libc6-dev + the host's Rust toolchain of the
#   version the Dockerfile names, for the build stage; the files distroless cc-debian12 is
#   made of (glibc, libgcc_s, libstdc++, libssl, CA bundle, tzdata, passwd with nonroot
#   65532, no shell) for the runtime stage. They carry a hash of their recipe and are
#   reused while it matches, so only the first run on a machine pays for them
#   (tests/container/standins.py).
# * Crates: `docker build --network host`. crates.io is reachable from the host, and with
#   the host's network the build's `cargo build --locked` fetches exactly as it does in
#   the real build, with the Dockerfile unchanged. `cargo vendor` would need the Dockerfile
#   to COPY a vendor directory and a cargo config that the real build does not have.
#   BuildKit's cache keeps the dependency layer between runs: a warm run rebuilds only
#   what changed.
# * The image is the real Dockerfile, built whole; stressctl is copied out of it and run on
#   the host (both Debian 12) against the published loopback ports.
# * Everything the tests create (containers, the state directories, the built image) is
#   removed at the end, also on failure; a sweep (by label and by owner PID) catches the
#   leftovers of a killed run. The stand-in images and BuildKit's cache (bounded to 8 GB)
#   stay, on purpose.
#
# Not root: prints SKIPPED and exits 0, except with CI=true, where it fails.
# Bounded: every step has a timeout: apt 15 min, dockerd 1 min, the pytest run $CT_TIMEOUT s
# (default 1500), within which the image build gets $MEMSTRESS_CT_BUILD_TIMEOUT s (1200).
# Measured on a 2-core machine: ~3.5 min cold (no docker.io, no stand-ins, no build
# cache), ~1-2 min warm when server/ or client/ changed (the last layer is rebuilt), ~10 s
# warm with nothing changed. pytest's "container test: measured" section has the details.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO" || exit 2
export PYTHONDONTWRITEBYTECODE=1

CT_TIMEOUT="${CT_TIMEOUT:-1500}"
export MEMSTRESS_CT_BUILD_TIMEOUT="${MEMSTRESS_CT_BUILD_TIMEOUT:-1200}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/memstress-dockerd.log}"
T0=$SECONDS

step() { printf '\n==> %s\n' "$*"; }
die() { echo "container-test: $*" >&2; exit 1; }

if [[ $EUID -ne 0 ]]; then
    if [[ "${CI:-}" == "true" ]]; then
        die "FAILED: needs root (to install docker.io and start dockerd), and CI never skips it"
    fi
    echo "SKIPPED: container test needs root (dockerd); run as root: bash scripts/container-test.sh"
    exit 0
fi

# --- 1. packages ---------------------------------------------------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io)
[[ -x /usr/bin/docker ]] || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v iptables >/dev/null || need+=(iptables)
if [[ ${#need[@]} -gt 0 ]]; then
    mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
    step "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq || die "apt-get update failed"
    timeout 600 apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
        || die "apt-get install ${need[*]} failed"
fi
export DOCKER="${DOCKER:-/usr/bin/docker}"

# --- 2. dockerd ----------------------------------------------------------------------
STARTED_DOCKERD=""
# shellcheck disable=SC2317  # called by the EXIT trap
stop_dockerd() {
    [[ -n "$STARTED_DOCKERD" ]] || return 0
    step "stopping the dockerd this script started (pid $STARTED_DOCKERD)"
    kill -TERM "$STARTED_DOCKERD" 2>/dev/null
    for _ in $(seq 1 60); do
        kill -0 "$STARTED_DOCKERD" 2>/dev/null || { STARTED_DOCKERD=""; return 0; }
        sleep 0.5
    done
    echo "dockerd did not exit within 30 s; killing it" >&2
    kill -KILL "$STARTED_DOCKERD" 2>/dev/null
    STARTED_DOCKERD=""
}
trap stop_dockerd EXIT
trap 'exit 130' INT TERM

if ! timeout 20 "$DOCKER" info >/dev/null 2>&1; then
    step "starting dockerd (log: $DOCKERD_LOG)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    # A stale pid file of a dockerd that is gone would stop the new one.
    if [[ -f /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        rm -f /var/run/docker.pid
    fi
    dockerd >>"$DOCKERD_LOG" 2>&1 < /dev/null &
    STARTED_DOCKERD=$!
    ok=""
    for _ in $(seq 1 60); do
        if timeout 5 "$DOCKER" info >/dev/null 2>&1; then ok=1; break; fi
        kill -0 "$STARTED_DOCKERD" 2>/dev/null || break
        sleep 1
    done
    if [[ -z "$ok" ]]; then
        tail -n 30 "$DOCKERD_LOG" >&2
        die "dockerd did not answer within 60 s (log: $DOCKERD_LOG)"
    fi
fi
"$DOCKER" info -f 'dockerd {{.ServerVersion}}, cgroup v{{.CgroupVersion}}, {{.Driver}}'

# --- 3. pytest tests/container -------------------------------------------------------
# Leftovers of runs that were killed: containers and images labelled by the tests, state
# directories and stand-in work directories, each named after the PID that made it. Those of
# this run and of PIDs that no longer run go; a concurrent run's stay.
LABEL=org.memstress.container-test
SESSION="$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
owner_gone() { # owner_gone PID
    [[ "$1" == "$$" ]] || ! kill -0 "$1" 2>/dev/null
}
sweep() {
    local id what name pid
    while read -r id what; do
        [[ -n "$id" ]] && owner_gone "${what%%-*}" && "$DOCKER" rm -f -v "$id" >/dev/null
    done < <("$DOCKER" ps -a --filter "label=$LABEL" --format "{{.ID}} {{.Label \"$LABEL\"}}")
    while read -r id what; do
        [[ -n "$id" ]] && owner_gone "${what%%-*}" && "$DOCKER" rmi -f "$id" >/dev/null
    done < <("$DOCKER" images memstress-ct --format '{{.ID}} {{.Tag}}')
    for name in /var/tmp/memstress-ct-state-* /var/tmp/memstress-standins-*; do
        [[ -d "$name" ]] || continue
        pid="${name#/var/tmp/memstress-ct-state-}"
        pid="${pid#/var/tmp/memstress-standins-}"
        pid="${pid%%-*}"
        [[ "$pid" =~ ^[0-9]+$ ]] && owner_gone "$pid" && rm -rf "$name"
    done
    return 0
}
sweep

# shellcheck source=scripts/venv.sh
source "$REPO/scripts/venv.sh"
ensure_venv_requirements "$REPO/tests/container/requirements.txt" || exit 2

step "pytest tests/container (timeout ${CT_TIMEOUT} s)"
MEMSTRESS_CT_SESSION="$SESSION" timeout --kill-after 30 "$CT_TIMEOUT" \
    "$REPO/.venv/bin/python" -m pytest tests/container -v --tb=short
rc=$?
[[ $rc -eq 124 || $rc -eq 137 ]] && echo "container-test: pytest timed out after ${CT_TIMEOUT} s" >&2
sweep

# Keep BuildKit's cache (the warm runs' dependency layer) from growing without bound.
"$DOCKER" builder prune -f --keep-storage 8GB >/dev/null 2>&1

echo "container-test: $((SECONDS - T0)) s in all, pytest exit code $rc"
exit "$rc"
