# syntax=docker/dockerfile:1
# Portcullis server image: `portcullis serve` by default, `portcullis migrate`
# with args ["migrate"] (the Kubernetes cluster overlay's init container).
#
#   DOCKER_BUILDKIT=1 docker build -t ghcr.io/portcullis/portcullis:0.1.0 .
#
# Build stage: the toolchain the workspace declares (rust-version 1.95).
# aws-lc-sys (rustls, ScyllaDB TLS) and libmimalloc-sys compile C with the
# image's gcc; no cmake, clang or Go needed on x86_64 / aarch64 Linux.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts: the registry and target/ survive between builds on the same
# builder, so a source change recompiles only the workspace crates. target/
# is a cache mount, so the binary is copied out of it in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p portcullis-edge --bin portcullis \
 && install -D -m 0755 target/release/portcullis /out/portcullis \
 && install -d -m 0700 /out/data

# Runtime: glibc + libgcc (the binary links them dynamically), CA
# certificates, no shell, no package manager; "nonroot" = uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/portcullis /usr/local/bin/portcullis
# An empty data directory the server may write to when no volume is mounted
# (docker run); Kubernetes mounts a volume over it. No shell here to mkdir.
COPY --from=build --chown=65532:65532 /out/data /var/lib/portcullis
# In a container the admin listener (/metrics, /healthz, /readyz) must be
# reachable from the kubelet and Prometheus, not only from 127.0.0.1; the
# data directory is a mounted volume (read-only root filesystem).
ENV PORTCULLIS_ADMIN_LISTEN=0.0.0.0:9090 \
    PORTCULLIS_DATA_DIR=/var/lib/portcullis
USER 65532:65532
# 8080: API; 9090: admin.
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/portcullis"]
CMD ["serve"]
