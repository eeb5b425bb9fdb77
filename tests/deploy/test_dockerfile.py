"""The Dockerfile, read as text (no Docker engine on the test machines)."""

import re
import shlex

import pytest

import deploy_helpers as h

TEXT = (h.REPO / "Dockerfile").read_text(encoding="utf-8")
STAGES = h.dockerfile_stages(TEXT)
BUILD, RUNTIME = STAGES[0], STAGES[-1]


def _global_args(text):
    """The ARGs before the first FROM, as {name: default or None}."""
    out = {}
    for word, rest in h.dockerfile_instructions(text):
        if word == "FROM":
            break
        assert word == "ARG", f"{word} before the first FROM"
        name, eq, default = rest.partition("=")
        out[name.strip()] = default.strip() if eq else None
    return out


GLOBAL_ARGS = _global_args(TEXT)


def _image(stage):
    """A stage's base image with the global ARG defaults put in (what a plain build uses)."""
    def sub(m):
        name = m.group(1) or m.group(2)
        assert GLOBAL_ARGS.get(name), f"FROM uses ${name}, which has no global ARG default"
        return GLOBAL_ARGS[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, stage["from"])


def _args(stage, word):
    return [rest for w, rest in stage["instructions"] if w == word]


def test_two_stages():
    assert len(STAGES) == 2
    assert BUILD["name"] == "build"


def test_base_images_are_build_args_with_the_shipped_defaults():
    # Machines without registry access build the same file on local stand-ins
    # (scripts/container-test.sh), passing --build-arg BUILD_IMAGE=... RUNTIME_IMAGE=...
    assert list(GLOBAL_ARGS) == ["BUILD_IMAGE", "RUNTIME_IMAGE"]
    assert BUILD["from"] == "${BUILD_IMAGE}"
    assert RUNTIME["from"] == "${RUNTIME_IMAGE}"
    # The runtime stage re-declares RUNTIME_IMAGE so its base.name label names the real base.
    assert "RUNTIME_IMAGE" in _args(RUNTIME, "ARG")
    labels = " ".join(_args(RUNTIME, "LABEL"))
    assert 'org.opencontainers.image.base.name="${RUNTIME_IMAGE}"' in labels


def test_build_stage_is_pinned_official_rust_on_bookworm():
    image = _image(BUILD)
    m = re.fullmatch(r"rust:(\d+)\.(\d+)(?:\.(\d+))?-bookworm", image)
    assert m, f"build stage FROM {image}: want rust:1.MINOR[.PATCH]-bookworm"
    assert (int(m.group(1)), int(m.group(2))) >= (1, 95)


def test_runtime_stage_is_distroless_cc_debian12_nonroot():
    # Same Debian release (12, bookworm) as the build stage: glibc-linked binaries.
    assert _image(RUNTIME) == "gcr.io/distroless/cc-debian12:nonroot"
    assert RUNTIME["name"] is None


def test_runtime_user_is_non_root():
    users = _args(RUNTIME, "USER")
    assert users, "runtime stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user in ("nonroot", "65532")
    # The Kubernetes manifests run as the same uid.
    assert users[-1] in ("65532:65532", "nonroot:nonroot", "65532", "nonroot")


def test_runtime_exposes_both_ports():
    exposed = {p.split("/")[0] for rest in _args(RUNTIME, "EXPOSE") for p in rest.split()}
    assert exposed == {str(h.GRPC_PORT), str(h.HTTP_PORT)}


def test_entrypoint_is_stressd_exec_form():
    entry = _args(RUNTIME, "ENTRYPOINT")
    assert len(entry) == 1
    assert h.exec_form(entry[0]) == ["/usr/local/bin/stressd"]


def test_runtime_gets_both_binaries_from_build():
    copies = [shlex.split(rest) for rest in _args(RUNTIME, "COPY")]
    got = {c[-1]: c[-2] for c in copies if "--from=build" in c}
    assert got == {
        "/usr/local/bin/stressd": "/src/target/release/stressd",
        "/usr/local/bin/stressctl": "/src/target/release/stressctl",
        "/var/lib/memstress": "/out/state",
    }
    assert all("--from=build" in c for c in copies), "runtime copies from the build context"


def test_state_dir_ships_owned_by_the_runtime_user_and_is_the_default():
    # A named volume mounted there starts with this owner, so history is writable for 65532.
    copies = [shlex.split(rest) for rest in _args(RUNTIME, "COPY")]
    state = [c for c in copies if c[-1] == "/var/lib/memstress"]
    assert len(state) == 1 and "--chown=65532:65532" in state[0], state
    env = " ".join(_args(RUNTIME, "ENV"))
    assert "STRESSD_STATE_DIR=/var/lib/memstress" in env, env


def test_runtime_stage_runs_nothing():
    # distroless has no shell: a RUN there would fail at build time.
    assert _args(RUNTIME, "RUN") == []


def test_no_protoc_anywhere():
    assert not re.search(r"\bprotoc\b|protobuf-compiler", TEXT, re.IGNORECASE)


def test_build_uses_locked_release_build():
    workdir = _args(BUILD, "WORKDIR")
    assert workdir == ["/src"]
    runs = _args(BUILD, "RUN")
    builds = [r for r in runs if "cargo build" in r]
    assert len(builds) == 2, "a dependency build and the real build"
    assert all("cargo build --release --locked" in r for r in builds)


def test_dependency_layer_comes_before_sources():
    instr = BUILD["instructions"]
    first_build = next(i for i, (w, r) in enumerate(instr) if w == "RUN" and "cargo build" in r)
    early = " ".join(r for w, r in instr[:first_build] if w == "COPY")
    for needed in ("Cargo.toml", "Cargo.lock", "build.rs", "proto/", "src/",
                   "server/Cargo.toml", "client/Cargo.toml"):
        assert needed in early, f"{needed} not copied before the dependency build"
    assert "server/src" not in early and "client/src" not in early and "server/ " not in early
    # The stubs, then the real sources, touched so that cargo rebuilds them.
    assert "server/src/main.rs" in instr[first_build][1]
    assert "client/src/main.rs" in instr[first_build][1]
    last = instr[-1]
    assert last[0] == "RUN" and "touch" in last[1] and "cargo build" in last[1]


def test_copy_sources_exist_and_are_not_dockerignored():
    for stage in STAGES:
        for rest in _args(stage, "COPY"):
            parts = shlex.split(rest)
            if any(p.startswith("--from") for p in parts):
                continue
            for src in parts[:-1]:
                assert (h.REPO / src).exists(), f"COPY {src}: not in the repository"
                assert not h.dockerignored(src), f"COPY {src}: excluded by .dockerignore"


@pytest.mark.parametrize("path", [
    "target/release/stressd", "server/target/x", ".git/config", ".venv/bin/python",
    "bench-results/run.json", "k8s/base/deployment.yaml", "tests/deploy/test_x.py",
    "README.md", "server/tests/common/mod.rs", "server/examples/bench.rs", "client/tests/x.rs",
    "tests/container/test_image.py",
])
def test_dockerignore_excludes(path):
    assert h.dockerignored(path)


@pytest.mark.parametrize("path", [
    "Cargo.toml", "Cargo.lock", "build.rs", "proto/memstress/v1/stress.proto", "src/lib.rs",
    "server/src/main.rs", "client/src/main.rs",
])
def test_dockerignore_keeps_build_inputs(path):
    assert not h.dockerignored(path)


def test_instruction_parser_can_fail():
    stages = h.dockerfile_stages("FROM a AS b\nRUN x \\\n  y\nFROM c\nUSER root\n")
    assert [s["from"] for s in stages] == ["a", "c"]
    assert stages[0]["instructions"] == [("RUN", "x y")]
    assert stages[1]["instructions"] == [("USER", "root")]
