"""Local stand-ins for the Dockerfile's two base images.

Image registries (Docker Hub, gcr.io) cannot be reached from these machines, but Debian's
package mirror can. So the container test builds the real Dockerfile on top of two images
made here and passed in with ``--build-arg BUILD_IMAGE=… --build-arg RUNTIME_IMAGE=…``:

* ``memstress-standin/rust:<version>-bookworm`` — what ``rust:<version>-bookworm`` is for
  this build: a Debian 12 (bookworm) rootfs from ``debootstrap`` with gcc and libc6-dev (the
  linker), ca-certificates with the host's CA bundle in place of Debian's (cargo fetches
  crates over HTTPS, and this machine's network may need an anchor the host added), and
  the host's Rust toolchain of exactly that version (``rustc``, ``cargo``, the x86_64 std) copied to where the official
  image has it (RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo on PATH).
* ``memstress-standin/distroless-cc:debian12-nonroot`` — what
  ``gcr.io/distroless/cc-debian12:nonroot`` holds, taken file by file from the same
  bookworm rootfs: the packages distroless "cc" is made of (libc6, libgcc-s1, libgomp1,
  libstdc++6, libssl3, tzdata, netbase, /etc/os-release) without their docs, the generated
  CA bundle, /etc/passwd and /etc/group with root, nobody and nonroot (65532), /tmp, and
  /home/nonroot; no shell, no package manager; user 65532, workdir /home/nonroot.

Both are made with ``docker import`` and labelled with a hash of their recipe (this file,
the Debian suite and package list, the toolchain's ``rustc -vV`` and ``cargo -V``, the
host's CA bundle). An image
that ``docker image inspect`` finds with the same label is reused, so only the first run on
a machine pays for debootstrap (about a minute or two) and the imports.

Run on its own (as root, with dockerd running): ``python3 tests/container/standins.py``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

SUITE = "bookworm"
MIRROR = os.environ.get("MEMSTRESS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# gcc + libc6-dev: the linker for rustc; ca-certificates: cargo's HTTPS; the rest: what
# distroless cc-debian12 is made of (for the runtime stand-in).
INCLUDE = ["gcc", "libc6-dev", "ca-certificates", "tzdata", "netbase", "libssl3",
           "libgomp1", "libstdc++6", "libgcc-s1"]
RUNTIME_PACKAGES = ["libc6", "libgcc-s1", "libgomp1", "libstdc++6", "libssl3", "tzdata",
                    "netbase"]
# Parts of those packages that distroless leaves out too.
RUNTIME_SKIP = ("/usr/share/doc", "/usr/share/lintian", "/usr/share/man", "/usr/share/info",
                "/usr/share/locale", "/usr/share/bug", "/usr/share/debconf", "/var/lib/dpkg",
                "/usr/sbin", "/usr/bin", "/sbin", "/bin", "/etc/init.d", "/usr/lib/tmpfiles.d")

LABEL = "org.memstress.standin.recipe"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
TRIPLE = "x86_64-unknown-linux-gnu"

PASSWD = """\
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
"""
GROUP = """\
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
"""
NSSWITCH = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n" \
           "protocols: files\nservices: files\n"


def log(msg: str) -> None:
    print(f"[standins] {msg}", file=sys.stderr, flush=True)


def docker_cmd() -> list[str]:
    return [os.environ.get("DOCKER", "docker")]


def dockerfile_default(arg: str) -> str:
    """The default of ``ARG <arg>=…`` in the repository's Dockerfile."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    m = re.search(rf"^ARG {arg}=(\S+)\s*$", text, re.MULTILINE)
    if not m:
        raise RuntimeError(f"Dockerfile has no 'ARG {arg}=<default>' line")
    return m.group(1)


def rust_version() -> str:
    image = dockerfile_default("BUILD_IMAGE")
    m = re.fullmatch(r"rust:(\d+\.\d+\.\d+)-bookworm", image)
    if not m:
        raise RuntimeError(f"BUILD_IMAGE default {image!r}: want rust:X.Y.Z-bookworm")
    return m.group(1)


def host_sysroot(version: str) -> Path:
    """The host toolchain whose rustc is exactly ``version`` (rustup's, or the one on PATH)."""
    candidates: list[list[str]] = []
    if shutil.which("rustup"):
        candidates.append(["rustup", "run", version, "rustc"])
    candidates.append(["rustc"])
    tried = []
    for rustc in candidates:
        try:
            out = subprocess.run([*rustc, "--print", "sysroot"], capture_output=True,
                                 text=True, timeout=60, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError) as e:
            tried.append(f"{' '.join(rustc)}: {e}")
            continue
        sysroot = Path(out).resolve()
        rustc_bin, cargo_bin = sysroot / "bin" / "rustc", sysroot / "bin" / "cargo"
        if not (rustc_bin.exists() and cargo_bin.exists()):
            tried.append(f"{sysroot}: no bin/rustc or bin/cargo")
            continue
        got = subprocess.run([rustc_bin, "-V"], capture_output=True, text=True,
                             timeout=60).stdout
        if got.startswith(f"rustc {version} "):
            return sysroot
        tried.append(f"{sysroot}: {got.strip()}")
    raise RuntimeError(f"no host Rust toolchain {version} (with cargo) found: " + "; ".join(tried)
                       + f". Install it with: rustup toolchain install {version}")


def _run(cmd: list, **kw) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, **kw).stdout


def recipe(version: str, sysroot: Path) -> str:
    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    h.update(f"{SUITE} {MIRROR} {' '.join(INCLUDE)} {version}".encode())
    h.update(_run([sysroot / "bin" / "rustc", "-vV"], timeout=60).encode())
    h.update(_run([sysroot / "bin" / "cargo", "-V"], timeout=60).encode())
    h.update(HOST_CA_BUNDLE.read_bytes())
    return h.hexdigest()[:16]


def tags(version: str) -> tuple[str, str]:
    return (f"memstress-standin/rust:{version}-bookworm",
            "memstress-standin/distroless-cc:debian12-nonroot")


def image_label(tag: str) -> str | None:
    p = subprocess.run([*docker_cmd(), "image", "inspect", "-f",
                        f'{{{{index .Config.Labels "{LABEL}"}}}}', tag],
                       capture_output=True, text=True, timeout=60)
    return p.stdout.strip() if p.returncode == 0 else None


def debootstrap(root: Path) -> None:
    cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(INCLUDE)}", SUITE,
           str(root), MIRROR]
    log(" ".join(cmd))
    t = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        tail = "\n".join((p.stdout + p.stderr).splitlines()[-30:])
        logfile = root / "debootstrap" / "debootstrap.log"
        if logfile.exists():
            tail += "\n" + "\n".join(logfile.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"debootstrap failed ({p.returncode}):\n{tail}")
    log(f"debootstrap done in {time.monotonic() - t:.0f} s")


def copy_toolchain(sysroot: Path, root: Path, version: str) -> None:
    """rustc, cargo and the host std, laid out as in the official rust image."""
    dest = root / "usr/local/rustup/toolchains" / f"{version}-{TRIPLE}"
    (dest / "bin").mkdir(parents=True)
    for tool in ("rustc", "cargo", "rustdoc"):
        if (sysroot / "bin" / tool).exists():
            shutil.copy2(sysroot / "bin" / tool, dest / "bin" / tool)
    (dest / "lib/rustlib").mkdir(parents=True)
    for so in (sysroot / "lib").iterdir():
        if so.is_file() or so.is_symlink():
            shutil.copy2(so, dest / "lib" / so.name, follow_symlinks=False)
    shutil.copytree(sysroot / "lib/rustlib" / TRIPLE, dest / "lib/rustlib" / TRIPLE,
                    symlinks=True)
    for f in (sysroot / "lib/rustlib").iterdir():
        if f.is_file():
            shutil.copy2(f, dest / "lib/rustlib" / f.name)
    cargo_bin = root / "usr/local/cargo/bin"
    cargo_bin.mkdir(parents=True)
    for tool in ("rustc", "cargo", "rustdoc"):
        if (dest / "bin" / tool).exists():
            os.symlink(f"../../rustup/toolchains/{version}-{TRIPLE}/bin/{tool}", cargo_bin / tool)


def _dpkg_files(root: Path, pkg: str) -> list[str]:
    info = root / "var/lib/dpkg/info"
    for name in (f"{pkg}:amd64.list", f"{pkg}.list"):
        if (info / name).exists():
            return (info / name).read_text().splitlines()
    raise RuntimeError(f"package {pkg} is not installed in the bootstrap rootfs")


def _copy_path(src_root: Path, dst_root: Path, path: str) -> None:
    src = src_root / path.lstrip("/")
    dst = dst_root / path.lstrip("/")
    if not src.is_symlink() and src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
        return
    if not (src.is_symlink() or src.exists()):
        return  # diverted or removed by a maintainer script
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        return
    shutil.copy2(src, dst, follow_symlinks=False)


def make_runtime_root(src: Path, dst: Path) -> None:
    """A distroless-cc-like tree from the bootstrap rootfs ``src``."""
    dst.mkdir()
    # merged /usr: keep the top-level links (/lib64/ld-linux-x86-64.so.2 must resolve).
    for name in ("lib", "lib64", "lib32", "libx32", "bin", "sbin"):
        s = src / name
        if s.is_symlink():
            target = os.readlink(s)
            if target.startswith("/"):
                raise RuntimeError(f"absolute top-level link /{name} -> {target}")
            (dst / target).mkdir(parents=True, exist_ok=True)
            os.symlink(target, dst / name)
    for pkg in RUNTIME_PACKAGES:
        for path in _dpkg_files(src, pkg):
            if path in ("/.", "") or path.startswith(RUNTIME_SKIP):
                continue
            _copy_path(src, dst, path)
    for path in ("/etc/os-release", "/usr/lib/os-release", "/etc/debian_version",
                 "/etc/ssl/certs/ca-certificates.crt", "/etc/ld.so.conf",
                 "/etc/ld.so.conf.d", "/etc/localtime", "/etc/timezone"):
        if (src / path.lstrip("/")).is_dir():
            shutil.copytree(src / path.lstrip("/"), dst / path.lstrip("/"), symlinks=True,
                            dirs_exist_ok=True)
        else:
            _copy_path(src, dst, path)
    etc = dst / "etc"
    (etc / "passwd").write_text(PASSWD)
    (etc / "group").write_text(GROUP)
    (etc / "nsswitch.conf").write_text(NSSWITCH)
    for d, mode, owner in (("tmp", 0o1777, 0), ("root", 0o700, 0),
                           ("home/nonroot", 0o700, 65532), ("var/lib", 0o755, 0),
                           ("proc", 0o755, 0), ("sys", 0o755, 0), ("dev", 0o755, 0)):
        p = dst / d
        p.mkdir(parents=True, exist_ok=True)
        os.chmod(p, mode)
        os.chown(p, owner, owner)
    if any((dst / "usr/bin").glob("*sh")) or (dst / "bin/sh").exists():
        raise RuntimeError("runtime stand-in must not contain a shell")


def docker_import(root: Path, tag: str, changes: list[str]) -> None:
    """Import ``root`` as ``tag``; the image the tag named before (if any) is removed."""
    t = time.monotonic()
    old = subprocess.run([*docker_cmd(), "image", "inspect", "-f", "{{.Id}}", tag],
                         capture_output=True, text=True, timeout=60).stdout.strip()
    tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(root), "-cf", "-", "."],
                           stdout=subprocess.PIPE)
    cmd = [*docker_cmd(), "import"]
    for c in changes:
        cmd += ["--change", c]
    p = subprocess.run([*cmd, "-", tag], stdin=tar.stdout, capture_output=True, text=True,
                       timeout=900)
    tar.stdout.close()
    if tar.wait(timeout=60) != 0 or p.returncode != 0:
        raise RuntimeError(f"docker import {tag} failed: {p.stderr.strip()}")
    log(f"imported {tag} in {time.monotonic() - t:.0f} s")
    if old:
        subprocess.run([*docker_cmd(), "image", "rm", old], capture_output=True, timeout=120)


def ensure(force: bool = False) -> tuple[str, str]:
    """Make (or reuse) both stand-ins; returns (build image, runtime image)."""
    version = rust_version()
    sysroot = host_sysroot(version)
    want = recipe(version, sysroot)
    build_tag, runtime_tag = tags(version)
    if not force and image_label(build_tag) == want and image_label(runtime_tag) == want:
        log(f"reusing {build_tag} and {runtime_tag} (recipe {want})")
        return build_tag, runtime_tag
    if os.geteuid() != 0:
        raise RuntimeError("making the stand-in images needs root (debootstrap)")
    log(f"making stand-ins (recipe {want}, toolchain {sysroot})")
    work = Path(tempfile.mkdtemp(prefix=f"memstress-standins-{os.getpid()}-", dir="/var/tmp"))
    try:
        rootfs = work / "rootfs"
        debootstrap(rootfs)
        make_runtime_root(rootfs, work / "runtime")
        docker_import(work / "runtime", runtime_tag, [
            "USER 65532",
            "WORKDIR /home/nonroot",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            f"LABEL {LABEL}={want}",
        ])
        # The build stand-in: the whole rootfs plus the toolchain, no apt lists or caches.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "debootstrap"):
            shutil.rmtree(rootfs / junk, ignore_errors=True)
        copy_toolchain(sysroot, rootfs, version)
        shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
        docker_import(rootfs, build_tag, [
            "ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV RUSTUP_HOME=/usr/local/rustup",
            "ENV CARGO_HOME=/usr/local/cargo",
            f"ENV RUST_VERSION={version}",
            f"LABEL {LABEL}={want}",
        ])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return build_tag, runtime_tag


if __name__ == "__main__":
    b, r = ensure(force="--force" in sys.argv)
    print(b)
    print(r)
