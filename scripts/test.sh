#!/usr/bin/env bash
# The whole test suite, from any directory, on a fresh machine:
#   1. Rust: unit tests and integration tests that start the real stressd/stressctl on
#      loopback (including the real cgroup-v1 test, which needs root).
#   2. Deployment: Dockerfile and Kubernetes manifests (scripts/check-deploy.sh; it creates
#      the .venv with pinned tools on first use).
#   3. Interop: stressd through an independent gRPC implementation (Python grpcio),
#      discovered by reflection only, as grpcurl does.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "==> cargo build (both binaries; the integration tests run them)"
cargo build --workspace --bins --locked
echo "==> cargo test"
cargo test --workspace --locked --no-fail-fast

echo "==> deployment checks"
bash scripts/check-deploy.sh

echo "==> interop tests (grpcio)"
# shellcheck source=scripts/venv.sh
source scripts/venv.sh
ensure_venv_requirements "$PWD/tests/interop/requirements.txt"
.venv/bin/python -m pytest tests/interop -q -p no:cacheprovider
