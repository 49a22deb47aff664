# syntax=docker/dockerfile:1
# ci-gate in a container: `docker run --rm -v "$PWD:/work" -w /work ghcr.io/OWNER/ci-gate verify`.
# The runtime image carries the PostgreSQL 15 server binaries, so `--provider local` (the default
# `auto` falls back to it) works with no Docker socket. tini is PID 1 and forwards SIGINT/SIGTERM
# to ci-gate, which then stops its throwaway server and removes its temp cluster.

# ---- build ----
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ci-gate \
 && install -m 0755 target/release/ci-gate /usr/local/bin/ci-gate

# ---- runtime ----
FROM debian:bookworm-slim AS runtime
ARG PG_MAJOR=15
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      "postgresql-${PG_MAJOR}" ca-certificates tini git \
 && rm -rf /var/lib/apt/lists/* \
 # The workspace is usually mounted from a host user: let git read it as root.
 && git config --system --add safe.directory '*'
ENV PATH="/usr/lib/postgresql/${PG_MAJOR}/bin:${PATH}"
COPY --from=build /usr/local/bin/ci-gate /usr/local/bin/ci-gate
LABEL org.opencontainers.image.title="ci-gate" \
      org.opencontainers.image.description="Migration safety gate for PostgreSQL" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/ci-gate"]
CMD ["--help"]
