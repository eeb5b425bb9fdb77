# memstress container image: stressd (the gRPC server, the entrypoint) and stressctl.
#
#   docker build -t localhost:32000/memory-stress-test:latest .
#
# Base images: build arguments whose defaults are the images the image is made of, so a
# machine that cannot reach the registries builds this same file on local stand-ins
# (scripts/container-test.sh: --build-arg BUILD_IMAGE=... --build-arg RUNTIME_IMAGE=...).
#
# Build stage: the official Rust image on Debian 12 (bookworm). Keep the Debian release of
# the build stage and the runtime stage the same: the binaries link glibc dynamically, and
# the plain `rust:1.x` tags are Debian 13 (newer glibc) nowadays.
ARG BUILD_IMAGE=rust:1.95.0-bookworm
# Runtime stage: distroless with glibc and libgcc (no shell, no package manager), non-root.
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${BUILD_IMAGE} AS build

WORKDIR /src

# --- Dependency layer: rebuilt only when the manifests, the lock file or the proto crate
# change. The root crate (memstress-proto: build.rs, proto/, src/) is copied for real; the
# server and client crates get stub sources so that this step compiles every dependency
# (with a crate doc: the workspace warns on missing docs).
# Protos compile with the pure-Rust protox compiler in build.rs: no system proto compiler.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto/ proto/
COPY src/ src/
COPY server/Cargo.toml server/Cargo.toml
COPY client/Cargo.toml client/Cargo.toml
RUN mkdir -p server/src client/src \
    && printf '//! stub\nfn main() {}\n' > server/src/main.rs \
    && echo '//! stub' > server/src/lib.rs \
    && printf '//! stub\nfn main() {}\n' > client/src/main.rs \
    && cargo build --release --locked \
    && rm -rf server/src client/src

# --- The real sources. COPY keeps the files' modification times, which may be older than
# the stub build above, so touch them: cargo decides what to rebuild by mtime.
COPY server/ server/
COPY client/ client/
RUN find server/src client/src -name '*.rs' -exec touch {} + \
    && cargo build --release --locked \
    && mkdir -p /out/state

# Runtime stage (see RUNTIME_IMAGE above).
FROM ${RUNTIME_IMAGE}

ARG RUNTIME_IMAGE
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="memstress" \
      org.opencontainers.image.description="Memory stress-test gRPC service for Kubernetes: stressd (server) and stressctl (client)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"

COPY --from=build /src/target/release/stressd /usr/local/bin/stressd
COPY --from=build /src/target/release/stressctl /usr/local/bin/stressctl
# The run history's state dir, owned by the runtime user: a named volume mounted here starts
# with this owner, so `docker run -v NAME:/var/lib/memstress` keeps history across restarts
# of the container (an OOM kill above all). Kubernetes mounts an emptyDir here instead.
COPY --from=build --chown=65532:65532 /out/state /var/lib/memstress

# nonroot in distroless; numeric so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532

ENV STRESSD_GRPC_ADDR=0.0.0.0:50051 \
    STRESSD_HTTP_ADDR=0.0.0.0:8080 \
    STRESSD_STATE_DIR=/var/lib/memstress

# 50051: gRPC (memstress.v1.StressService, grpc.health.v1.Health, reflection)
# 8080: HTTP (GET /health, GET /metrics, GET /)
EXPOSE 50051 8080

ENTRYPOINT ["/usr/local/bin/stressd"]
