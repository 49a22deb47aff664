#!/usr/bin/env bash
# Docker provider vs local provider, same binary, same inputs (issue 14):
#
#   bash benches/docker.sh [--reps N] [--image IMAGE]
#
# Inputs: examples/prisma-saas (from scratch), and the benchmark's 1,000-migration generated
# history with a 5-migration pull request (benches/gen.rs, `--base main`, as benches/run.sh).
# Each case runs `ci-gate verify … --provider local` and `… --provider docker --image IMAGE`
# alternately N times (default 5) and reports medians of the wall time and the JSON report's
# provision time, as a Markdown table on stdout. IMAGE defaults to ci-gate-test/postgres:15
# (docker/test-postgres/build.sh: this machine's PostgreSQL 15 binaries, no registry needed).
# Environment: CI_GATE_BIN (default target/release/ci-gate). TMPDIR is left as it is, so the
# local provider puts its cluster where it would for a user (/dev/shm when large enough). Temp
# files are removed on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPS=5
IMAGE=ci-gate-test/postgres:15
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS="$2"; shift ;;
    --image) IMAGE="$2"; shift ;;
    -h | --help) sed -n '2,13{s/^# \{0,1\}//;p;}' "$0"; exit 0 ;;
    *) echo "docker.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
BIN="${CI_GATE_BIN:-$ROOT/target/release/ci-gate}"
[ -x "$BIN" ] || { echo "docker.sh: no $BIN (cargo build --release, or set CI_GATE_BIN)" >&2; exit 2; }
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || { echo "docker.sh: SKIP: no Docker engine answers" >&2; exit 0; }
"$ROOT/docker/test-postgres/build.sh" --tag "$IMAGE" >&2
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
rustc --edition 2024 -O "$ROOT/benches/gen.rs" -o "$WORK/gen" 2>"$WORK/gen.log" || { cat "$WORK/gen.log" >&2; exit 1; }

repo="$WORK/h1000"
g=(git -C "$repo" -c user.name=bench -c user.email=bench@localhost -c commit.gpgsign=false)
mkdir -p "$repo"
"$WORK/gen" "$repo" 1000
git -C "$repo" init -q -b main
"${g[@]}" add -A && "${g[@]}" commit -q -m "history of 1000 migrations"
"${g[@]}" checkout -q -b pr
"$WORK/gen" "$repo" 1005
"${g[@]}" add -A && "${g[@]}" commit -q -m "pull request: 5 new migrations"
example="$WORK/prisma-saas"
cp -r "$ROOT/examples/prisma-saas" "$example"

# One run: prints "wall_ms provision_ms".
one() { # provider project [args...]
  local provider=$1 project=$2; shift 2
  local extra=()
  [ "$provider" = docker ] && extra=(--image "$IMAGE")
  local t0 t1
  t0=$(date +%s%N)
  "$BIN" verify "$project" --provider "$provider" "${extra[@]}" --json "$WORK/r.json" --quiet "$@" >/dev/null 2>"$WORK/err.txt" || {
    code=$?
    [ "$code" -le 1 ] || { cat "$WORK/err.txt" >&2; exit 1; }
  }
  t1=$(date +%s%N)
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[2], r["timings_ms"]["provision"])' "$WORK/r.json" "$(( (t1 - t0) / 1000000 ))"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| case | local wall | docker wall | docker / local | local provision | docker provision |"
echo "|---|---:|---:|---:|---:|---:|"
for case in example h1000; do
  if [ "$case" = example ]; then project="$example"; args=(); label="examples/prisma-saas (from scratch)"
  else project="$repo"; args=(--base main); label="1,000 migrations + 5 (--base main)"; fi
  : >"$WORK/local.txt"; : >"$WORK/docker.txt"
  for _ in $(seq "$REPS"); do
    one local "$project" "${args[@]}" >>"$WORK/local.txt"
    one docker "$project" "${args[@]}" >>"$WORK/docker.txt"
  done
  lw=$(cut -d' ' -f1 "$WORK/local.txt" | median); lp=$(cut -d' ' -f2 "$WORK/local.txt" | median)
  dw=$(cut -d' ' -f1 "$WORK/docker.txt" | median); dp=$(cut -d' ' -f2 "$WORK/docker.txt" | median)
  ratio=$(python3 -c "print(f'{$dw/$lw:.2f}')")
  echo "| $label | ${lw} ms | ${dw} ms | **${ratio}×** | ${lp} ms | ${dp} ms |"
done
