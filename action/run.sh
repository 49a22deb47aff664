#!/usr/bin/env bash
# The ci-gate GitHub Action's step: install ci-gate, run `ci-gate verify`, write the step outputs.
#
# Inputs arrive as INPUT_* environment variables (action.yml maps each `inputs.*` there); no input
# is ever pasted into shell code or evaluated. Runs with bash 3.2 (macOS) and later.
#
# INPUT_VERSION:
#   ""          the release of the action's own source: the version in its Cargo.toml. `@v1` is a
#               tag the release workflow moves to the newest 1.x release, so `@v1` gets the newest
#               1.x; `@v1.2.3` gets 1.2.3; a commit SHA gets the release that commit is part of
#   latest      the newest release
#   v1.2.3      that release (1.2.3 works too)
#   source      build this action's own source: cargo install --path "$GITHUB_ACTION_PATH" --locked
#               (needs a Rust toolchain: add dtolnay/rust-toolchain before this step)
#   path|local  a ci-gate already on PATH (self-hosted, GHES or air-gapped runners)
# A release asset is ci-gate-<target>.tar.gz (cargo-dist's names: x86_64/aarch64-unknown-linux-gnu
# built for glibc 2.17, aarch64-apple-darwin) with ci-gate-<target>.tar.gz.sha256 beside it. The
# checksum is always verified (a mismatch stops the job); the binary is kept in the runner's tool
# cache ($RUNNER_TOOL_CACHE/ci-gate/<version>/<arch>), so later jobs on that runner skip the
# download. Releases are fetched from $GITHUB_SERVER_URL (github.com or a GitHub Enterprise
# Server). A missing asset stops the job with what to do: it never turns into a 10-minute build.
#
# Outputs: verdict (pass|fail|error: error = ci-gate could not run, exit 2/3), errors, warnings,
# report (path of the JSON report, empty when none was written), cache-key (with
# CI_GATE_CACHE_DIR: the actions/cache key naming the entries left there). Exit status = ci-gate's.
#
# Test hooks (not for workflows): CI_GATE_RELEASES_URL replaces "$GITHUB_SERVER_URL/<repo>/releases"
# (and allows plain http); CI_GATE_ALLOW_HTTP=1 allows a plain-http GITHUB_SERVER_URL;
# CI_GATE_NO_JQ=1 parses the report with python3 instead of jq.
set -euo pipefail

note() { printf '%s\n' "ci-gate action: $*" >&2; }
die() {
  printf '::error title=ci-gate action::%s\n' "$*"
  echo "verdict=error" >>"$GITHUB_OUTPUT"
  exit 3
}

: "${RUNNER_TEMP:?RUNNER_TEMP is not set: this script runs inside a GitHub Actions job}"
: "${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set: this script runs inside a GitHub Actions job}"
action_path="${GITHUB_ACTION_PATH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
install_dir="$RUNNER_TEMP/ci-gate-bin"

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

runner_target() {
  local os="${RUNNER_OS:-$(uname -s)}" arch="${RUNNER_ARCH:-$(uname -m)}"
  case "$os" in
    Linux | linux) os=unknown-linux-gnu ;;
    macOS | Darwin) os=apple-darwin ;;
    *) return 1 ;;
  esac
  case "$arch" in
    X64 | x86_64 | amd64) arch=x86_64 ;;
    ARM64 | arm64 | aarch64) arch=aarch64 ;;
    *) return 1 ;;
  esac
  [ "$arch-$os" != x86_64-apple-darwin ] || return 1
  printf '%s-%s\n' "$arch" "$os"
}

# The version in the action's own Cargo.toml (the first `version = "…"`, the package's).
own_version() {
  [ -f "$action_path/Cargo.toml" ] || return 1
  sed -n 's/^version = "\([0-9][0-9.]*[0-9A-Za-z.-]*\)"$/\1/p' "$action_path/Cargo.toml" | head -n 1
}

fetch() {
  curl --proto "$proto" --proto-redir "$proto" -fsSL --retry 3 --connect-timeout 20 -o "$2" "$1"
}

# Download, verify and install release $1 (a tag or `latest`) as $install_dir/ci-gate, through
# the runner's tool cache. Stops the job when no release fits or the checksum does not match.
install_release() {
  local tag="$1" target repo base asset url tmp expected actual found cache="" proto
  target="$(runner_target)" ||
    die "no ci-gate release build for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?} (releases: Linux x64/ARM64, macOS ARM64): set version: source with a Rust toolchain step, or version: path with ci-gate on PATH"
  if [ "$tag" != latest ] && [ -n "${RUNNER_TOOL_CACHE:-}" ]; then
    cache="$RUNNER_TOOL_CACHE/ci-gate/${tag#v}/${target%%-*}"
    if [ -x "$cache/ci-gate" ] && [ -f "$cache.complete" ]; then
      mkdir -p "$install_dir"
      cp "$cache/ci-gate" "$install_dir/ci-gate"
      note "ci-gate $tag ($target) from the tool cache"
      return 0
    fi
  fi
  repo="${GITHUB_ACTION_REPOSITORY:-}"
  proto="=https"
  if [ -n "${CI_GATE_RELEASES_URL:-}" ]; then
    base="${CI_GATE_RELEASES_URL%/}"
    proto="=http,https"
  elif [ -n "$repo" ]; then
    base="${GITHUB_SERVER_URL:-https://github.com}"
    base="${base%/}/$repo/releases"
    [ "${CI_GATE_ALLOW_HTTP:-0}" != 1 ] || proto="=http,https"
  else
    die "the action's repository is unknown (GITHUB_ACTION_REPOSITORY is empty, a local action?): set version: source or version: path"
  fi
  asset="ci-gate-$target.tar.gz"
  if [ "$tag" = latest ]; then
    url="$base/latest/download/$asset"
  else
    url="$base/download/$tag/$asset"
  fi
  tmp="$(mktemp -d "$RUNNER_TEMP/ci-gate-dl.XXXXXX")"
  note "downloading $url"
  if ! fetch "$url" "$tmp/$asset"; then
    rm -rf "$tmp"
    die "no release asset at $url: pick a published release (version: v1.2.3 or latest), or set version: source (with a Rust toolchain step) to build from source"
  fi
  if ! fetch "$url.sha256" "$tmp/$asset.sha256"; then
    rm -rf "$tmp"
    die "no checksum file at $url.sha256: not running an unverified binary (set version: source to build from source)"
  fi
  expected="$(tr -d '\r' <"$tmp/$asset.sha256" | awk 'NF { print tolower($1); exit }')"
  actual="$(sha256_of "$tmp/$asset")"
  case "$expected" in
    [0-9a-f]*) ;;
    *) rm -rf "$tmp"; die "the checksum file $url.sha256 holds no SHA-256" ;;
  esac
  if [ "${#expected}" -ne 64 ] || [ "$expected" != "$actual" ]; then
    rm -rf "$tmp"
    die "checksum mismatch for $asset: expected $expected, got $actual (a corrupted or replaced download; not installed)"
  fi
  mkdir -p "$tmp/x" "$install_dir"
  tar -xzf "$tmp/$asset" -C "$tmp/x" || { rm -rf "$tmp"; die "cannot unpack $asset"; }
  found="$(find "$tmp/x" -type f -name ci-gate | head -n 1)"
  [ -n "$found" ] || { rm -rf "$tmp"; die "$asset holds no ci-gate binary"; }
  if ! { mv "$found" "$install_dir/ci-gate" && chmod +x "$install_dir/ci-gate"; }; then
    rm -rf "$tmp"
    die "cannot install ci-gate into $install_dir"
  fi
  rm -rf "$tmp"
  if [ -n "$cache" ] && mkdir -p "$cache" && cp "$install_dir/ci-gate" "$cache/ci-gate"; then
    touch "$cache.complete"
  fi
  note "installed ci-gate $tag ($target), sha256 $actual"
}

install_source() {
  command -v cargo >/dev/null 2>&1 ||
    die "version: source needs cargo, which is not installed: add a Rust toolchain step before this one (dtolnay/rust-toolchain, Rust 1.95 or later)"
  note "building ci-gate from $action_path (cargo install --locked)"
  cargo install --path "$action_path" --locked --root "$RUNNER_TEMP/ci-gate-cargo" --bin ci-gate >&2 ||
    die "cargo install failed (ci-gate needs Rust 1.95 or later)"
  mkdir -p "$install_dir"
  cp "$RUNNER_TEMP/ci-gate-cargo/bin/ci-gate" "$install_dir/ci-gate"
}

version="${INPUT_VERSION:-}"
if [ -z "$version" ]; then
  version="$(own_version || true)"
  [ -n "$version" ] || version=latest
fi
case "$version" in
  path | local)
    bin="$(command -v ci-gate || true)"
    [ -n "$bin" ] || die "version: $version, but no ci-gate on PATH"
    ;;
  source)
    install_source
    bin="$install_dir/ci-gate"
    ;;
  latest | v[0-9]* | [0-9]*)
    case "$version" in [0-9]*) version="v$version" ;; esac
    install_release "$version"
    bin="$install_dir/ci-gate"
    ;;
  *) die "unknown version '$version': use latest, a release tag (v1.0.0), source or path" ;;
esac
if [ "$bin" = "$install_dir/ci-gate" ] && [ -n "${GITHUB_PATH:-}" ]; then
  echo "$install_dir" >>"$GITHUB_PATH"
fi

workdir="${INPUT_WORKING_DIRECTORY:-.}"
cd -- "$workdir" || die "working-directory '$workdir' does not exist"

report="$RUNNER_TEMP/ci-gate.json"
rm -f -- "$report"
args=(verify --json "$report")
[ -z "${INPUT_MIGRATIONS:-}" ] || args+=(--migrations "$INPUT_MIGRATIONS")
[ -z "${INPUT_BASE:-}" ] || args+=(--base "$INPUT_BASE")
[ -z "${INPUT_POSTGRES_VERSION:-}" ] || args+=(--pg-version "$INPUT_POSTGRES_VERSION")
[ -z "${INPUT_FAIL_ON:-}" ] || args+=(--fail-on "$INPUT_FAIL_ON")
[ -z "${INPUT_COMMENT:-}" ] || args+=(--comment "$INPUT_COMMENT")
# Extra arguments: one per line when the input has several lines (for values with spaces),
# otherwise split on whitespace. Never evaluated: no quotes, globs or $(…) are interpreted.
if [ -n "${INPUT_ARGS:-}" ]; then
  case "$INPUT_ARGS" in
    *$'\n'*)
      while IFS= read -r line || [ -n "$line" ]; do
        line="${line%$'\r'}"
        [ -z "$line" ] || args+=("$line")
      done <<<"$INPUT_ARGS"
      ;;
    *)
      set -f
      read -r -a extra <<<"$INPUT_ARGS"
      set +f
      [ "${#extra[@]}" -eq 0 ] || args+=("${extra[@]}")
      ;;
  esac
fi
if [ -n "${INPUT_GITHUB_TOKEN:-}" ]; then
  export GITHUB_TOKEN="$INPUT_GITHUB_TOKEN"
fi
# The base cache (action.yml's cache steps restore and save this directory).
if [ -n "${CI_GATE_CACHE_DIR:-}" ]; then
  mkdir -p "$CI_GATE_CACHE_DIR"
  args+=(--cache-dir "$CI_GATE_CACHE_DIR")
fi

set +e
"$bin" "${args[@]}"
code=$?
set -e

verdict=error errors="" warnings="" out_report=""
if [ -s "$report" ]; then
  out_report="$report"
  if command -v jq >/dev/null 2>&1 && [ -z "${CI_GATE_NO_JQ:-}" ]; then
    parsed="$(jq -r '"\(.verdict // "error") \(.counts.errors // "") \(.counts.warnings // "")"' "$report" 2>/dev/null || true)"
  else
    parsed="$(python3 -c 'import json,sys
r=json.load(open(sys.argv[1])); c=r.get("counts") or {}
print(r.get("verdict","error"), c.get("errors",""), c.get("warnings",""))' "$report" 2>/dev/null || true)"
  fi
  read -r verdict errors warnings <<<"$parsed" || true
fi
# Only well-formed values reach GITHUB_OUTPUT.
case "$verdict" in pass | fail) ;; *) verdict=error ;; esac
case "$errors" in '' | *[!0-9]*) errors="" ;; esac
case "$warnings" in '' | *[!0-9]*) warnings="" ;; esac
cache_key=""
if [ -n "${CI_GATE_CACHE_DIR:-}" ] && [ -d "$CI_GATE_CACHE_DIR" ]; then
  # Keep the two most recently used entries (a base that moved leaves its old entry behind).
  # shellcheck disable=SC2012 # entry names are ci-gate's own: [a-z0-9-]
  ls -1t "$CI_GATE_CACHE_DIR" | grep -E '^(cluster|base)-[0-9a-f]+$' | tail -n +3 |
    while read -r old; do rm -rf "${CI_GATE_CACHE_DIR:?}/$old"; done
  entries="$(ls -1 "$CI_GATE_CACHE_DIR" | grep -E '^(cluster|base)-[0-9a-f]+$' | sort | tr '\n' ' ')"
  if [ -n "$entries" ]; then
    cache_key="${CI_GATE_CACHE_PREFIX:-ci-gate-base-}$(printf '%s' "$entries" | sha256_of /dev/stdin | cut -c1-16)"
  fi
fi
{
  echo "verdict=$verdict"
  echo "errors=$errors"
  echo "warnings=$warnings"
  echo "report=$out_report"
  echo "cache-key=$cache_key"
} >>"$GITHUB_OUTPUT"
note "verdict: $verdict (exit $code)"
exit "$code"
