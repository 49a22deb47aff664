# ci-gate in a container: `docker run --rm -v "$PWD:/work" -w /work ghcr.io/OWNER/ci-gate verify`.
# The runtime image carries the PostgreSQL 15 server binaries, so `--provider local` (the default
# `auto` falls back to it) works with no Docker socket. tini is PID 1 and forwards SIGINT/SIGTERM
# to ci-gate, which then stops its throwaway server and removes its temp cluster.
#
# Where the binary comes from (--build-arg BINARY=…):
#   source   (default) compiled here with cargo: `docker build .` works anywhere, the legacy
#            builder included (no BuildKit-only instructions)
#   release  the release archives' binaries, unpacked by the release workflow into
#            dist/linux-<arch>/ci-gate: the multi-arch image then needs no emulated compile
ARG BINARY=source

# ---- build: from source ----
FROM rust:1.95-bookworm AS build-source
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ci-gate \
 && install -m 0755 target/release/ci-gate /usr/local/bin/ci-gate

# ---- build: the release binary for the target architecture ----
# (`dist*` may match nothing: then the legacy builder, which builds every stage, still gets
# through this one when BINARY=source.)
FROM debian:bookworm-slim AS build-release
ARG TARGETARCH=amd64
ARG BINARY
COPY Cargo.toml dist* /ctx/
RUN if [ -f "/ctx/linux-${TARGETARCH}/ci-gate" ]; then \
      install -m 0755 "/ctx/linux-${TARGETARCH}/ci-gate" /usr/local/bin/ci-gate; \
    elif [ "$BINARY" = release ]; then \
      echo "dist/linux-${TARGETARCH}/ci-gate is missing: unpack release/build.sh's archive there" >&2; exit 1; \
    fi

FROM build-${BINARY} AS build

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
