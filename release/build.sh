#!/usr/bin/env bash
# Build one release archive, named the way cargo-dist names them (the release workflow runs this
# for every target; the Action's installer, action/run.sh, expects exactly these names):
#
#   dist/ci-gate-<target>.tar.gz          ci-gate-<target>/{ci-gate, README.md, LICENSE*}
#   dist/ci-gate-<target>.tar.gz.sha256   "<sha256>  ci-gate-<target>.tar.gz" (sha256sum format)
#
# Usage: release/build.sh TARGET [--out DIR]
#   x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu: built with cargo-zigbuild against
#     glibc 2.17, so the binary runs on every GitHub-hosted runner and any Linux from 2014 on
#     (pip install ziglang cargo-zigbuild; rustup target add TARGET)
#   aarch64-apple-darwin, x86_64-apple-darwin: plain cargo build on a macOS runner
# Exit status: 0 built, 1 the build failed, 2 bad usage or a missing tool (the message says
# which to install).
set -euo pipefail
cd "$(dirname "$0")/.."

target="" out="dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="${2:?--out needs a directory}"; shift ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "release/build.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) target="$1" ;;
  esac
  shift
done
[ -n "$target" ] || { echo "release/build.sh: which target? (see --help)" >&2; exit 2; }

# A release build's PR comments link each finding to its rule page at the release tag
# (src/report/rule_docs.rs reads CI_GATE_RELEASE_TAG at compile time); any other build links to
# the default branch. A build is a release when the commit built carries the tag v<Cargo.toml
# version> (in the release workflow: the tag pushed). CI_GATE_REPOSITORY_URL, when set (the
# workflow sets it), names the repository the links point into.
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
if git tag --points-at HEAD 2>/dev/null | grep -qx "v$version" ||
  { [ "${GITHUB_REF_TYPE:-}" = tag ] && [ "${GITHUB_REF_NAME:-}" = "v$version" ]; }; then
  export CI_GATE_RELEASE_TAG="v$version"
  echo "release: a release build: rule links point at v$version"
else
  unset CI_GATE_RELEASE_TAG
  echo "release: HEAD is not tagged v$version: rule links point at the default branch"
fi

GLIBC=2.17
case "$target" in
  x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu)
    command -v cargo-zigbuild >/dev/null 2>&1 ||
      { echo "release/build.sh: cargo-zigbuild not found: pip install ziglang cargo-zigbuild" >&2; exit 2; }
    rustup target list --installed 2>/dev/null | grep -qx "$target" ||
      { echo "release/build.sh: the Rust standard library for $target is not installed: rustup target add $target" >&2; exit 2; }
    cargo zigbuild --release --locked --bin ci-gate --target "$target.$GLIBC" || exit 1
    ;;
  aarch64-apple-darwin | x86_64-apple-darwin)
    [ "$(uname -s)" = Darwin ] || { echo "release/build.sh: $target is built on a macOS runner" >&2; exit 2; }
    cargo build --release --locked --bin ci-gate --target "$target" || exit 1
    ;;
  *) echo "release/build.sh: unsupported target $target" >&2; exit 2 ;;
esac
bin="target/$target/release/ci-gate"
[ -x "$bin" ] || { echo "release/build.sh: $bin was not produced" >&2; exit 1; }

# An old-glibc promise that is not kept would only show on a user's machine: check it here.
if [ "${target#*linux-gnu}" != "$target" ] && command -v objdump >/dev/null 2>&1; then
  newest="$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -u | tail -n 1)"
  if [ -n "$newest" ] && [ "$(printf '%s\n%s\n' "$newest" "$GLIBC" | sort -t. -k1,1n -k2,2n | tail -n 1)" != "$GLIBC" ]; then
    echo "release/build.sh: $bin needs glibc $newest, newer than the promised $GLIBC" >&2
    exit 1
  fi
  echo "release: $bin needs glibc ${newest:-?} (at most $GLIBC)"
fi

name="ci-gate-$target"
mkdir -p "$out"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/$name"
install -m 0755 "$bin" "$stage/$name/ci-gate"
for f in README.md LICENSE LICENSE-MIT LICENSE-APACHE; do
  [ ! -f "$f" ] || cp "$f" "$stage/$name/"
done
# Reproducible-ish: fixed owner and order (mtime from the commit when git knows it).
mtime="$(git log -1 --format=%ct 2>/dev/null || date +%s)"
tar_flags=(--owner=0 --group=0 --numeric-owner --sort=name "--mtime=@$mtime")
tar --version 2>/dev/null | grep -q GNU || tar_flags=()
tar -C "$stage" "${tar_flags[@]}" -czf "$out/$name.tar.gz" "$name"
if command -v sha256sum >/dev/null 2>&1; then
  (cd "$out" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
else
  (cd "$out" && shasum -a 256 "$name.tar.gz" >"$name.tar.gz.sha256")
fi
# Runs here? Then it must at least answer --version.
if "$stage/$name/ci-gate" --version >/dev/null 2>&1; then
  echo "release: $("$stage/$name/ci-gate" --version)"
fi
echo "release: $out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1)), sha256 $(cut -d' ' -f1 "$out/$name.tar.gz.sha256")"
