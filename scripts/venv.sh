# Sourced by the test scripts: a venv at .venv in the repo root with pinned PyPI tools.
#   ensure_venv_requirements FILE   creates .venv if needed and installs FILE's pins unless
#                                   every pinned version is already there (no network then).
ensure_venv_requirements() {
    local repo venv requirements="$1"
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    venv="$repo/.venv"
    if [[ ! -x "$venv/bin/python" ]]; then
        local python
        python="$(command -v python3.11 || command -v python3)" || {
            echo "python3 not found" >&2
            return 2
        }
        printf '\n==> creating venv %s with %s\n' "$venv" "$python"
        "$python" -m venv "$venv" || return 2
    fi
    if ! "$venv/bin/python" - "$requirements" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, want = line.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
    then
        printf '\n==> installing pinned tools from %s\n' "$requirements"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" || {
            echo "pip install -r $requirements failed" >&2
            return 2
        }
    fi
}
