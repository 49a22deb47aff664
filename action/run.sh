#!/usr/bin/env bash
# The ci-gate GitHub Action's step: install ci-gate, run `ci-gate verify`, write the step outputs.
#
# Inputs arrive as INPUT_* environment variables (action.yml maps each `inputs.*` there); no input
# is ever pasted into shell code or evaluated. Runs with bash 3.2 (macOS) and later.
#
# INPUT_VERSION:
#   ""          the release matching the action's ref (GITHUB_ACTION_REF, e.g. v0.1.0), else latest
#   latest      the latest release
#   v0.1.0      that release (0.1.0 works too)
#   source      build this action's own source: cargo install --path "$GITHUB_ACTION_PATH" --locked
#   path|local  a ci-gate already on PATH (self-hosted, GHES or air-gapped runners)
# A release asset is ci-gate-<target>.tar.gz with ci-gate-<target>.tar.gz.sha256 beside it; the
# checksum is always verified (a mismatch stops the job). When no release asset fits the runner
# (none for this OS/arch, none published, github.com unreachable), the action builds from source.
#
# Outputs: verdict (pass|fail|error: error = ci-gate could not run, exit 2/3), errors, warnings,
# report (path of the JSON report, empty when none was written), cache-key (with
# CI_GATE_CACHE_DIR: the actions/cache key naming the entries left there). Exit status = ci-gate's.
#
# Test hooks (not for workflows): CI_GATE_RELEASES_URL replaces "$GITHUB_SERVER_URL/<repo>/releases"
# (and allows plain http); CI_GATE_NO_JQ=1 parses the report with python3 instead of jq.
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
    Linux | linux) os=unknown-linux-musl ;;
    macOS | Darwin) os=apple-darwin ;;
    *) return 1 ;;
  esac
  case "$arch" in
    X64 | x86_64 | amd64) arch=x86_64 ;;
    ARM64 | arm64 | aarch64) arch=aarch64 ;;
    *) return 1 ;;
  esac
  printf '%s-%s\n' "$arch" "$os"
}

# Download and verify a release asset into $install_dir. Returns 1 when no release fits (the
# caller builds from source); stops the job on a checksum mismatch.
install_release() {
  local tag="$1" target repo base asset url proto tmp expected actual found
  target="$(runner_target)" || { note "no release build for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}"; return 1; }
  repo="${GITHUB_ACTION_REPOSITORY:-}"
  if [ -n "${CI_GATE_RELEASES_URL:-}" ]; then
    base="${CI_GATE_RELEASES_URL%/}"
    proto="=http,https"
  elif [ -n "$repo" ]; then
    base="${GITHUB_SERVER_URL:-https://github.com}/$repo/releases"
    proto="=https"
  else
    note "the action's repository is unknown (a local action?)"
    return 1
  fi
  asset="ci-gate-$target.tar.gz"
  if [ "$tag" = latest ]; then
    url="$base/latest/download/$asset"
  else
    url="$base/download/$tag/$asset"
  fi
  tmp="$(mktemp -d "$RUNNER_TEMP/ci-gate-dl.XXXXXX")"
  note "downloading $url"
  if ! curl --proto "$proto" -fsSL --retry 3 --connect-timeout 20 -o "$tmp/$asset" "$url"; then
    note "no release asset at $url"
    rm -rf "$tmp"
    return 1
  fi
  if ! curl --proto "$proto" -fsSL --retry 3 --connect-timeout 20 -o "$tmp/$asset.sha256" "$url.sha256"; then
    note "no checksum file at $url.sha256: not using an unverified binary"
    rm -rf "$tmp"
    return 1
  fi
  expected="$(tr -d '\r' <"$tmp/$asset.sha256" | awk 'NF { print tolower($1); exit }')"
  actual="$(sha256_of "$tmp/$asset")"
  case "$expected" in
    [0-9a-f]*) ;;
    *) rm -rf "$tmp"; die "the checksum file $url.sha256 holds no SHA-256" ;;
  esac
  if [ "${#expected}" -ne 64 ] || [ "$expected" != "$actual" ]; then
    rm -rf "$tmp"
    die "checksum mismatch for $asset: expected $expected, got $actual"
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
  note "installed ci-gate $tag ($target), sha256 $actual"
}

install_source() {
  command -v cargo >/dev/null 2>&1 ||
    die "no ci-gate release fits this runner and cargo is not installed: add a Rust toolchain step (e.g. dtolnay/rust-toolchain) or set version: path with ci-gate on PATH"
  note "building ci-gate from $action_path (cargo install --locked)"
  cargo install --path "$action_path" --locked --root "$RUNNER_TEMP/ci-gate-cargo" --bin ci-gate >&2 ||
    die "cargo install failed"
  mkdir -p "$install_dir"
  cp "$RUNNER_TEMP/ci-gate-cargo/bin/ci-gate" "$install_dir/ci-gate"
}

version="${INPUT_VERSION:-}"
if [ -z "$version" ]; then
  case "${GITHUB_ACTION_REF:-}" in
    v[0-9]*.*.* | [0-9]*.*.*) version="$GITHUB_ACTION_REF" ;;
    *) version=latest ;;
  esac
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
    if ! install_release "$version"; then
      note "building from source instead"
      install_source
    fi
    bin="$install_dir/ci-gate"
    ;;
  *) die "unknown version '$version': use latest, a release tag (v0.1.0), source or path" ;;
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
