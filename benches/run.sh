#!/usr/bin/env bash
# ci-gate benchmark harness (issue 6). One command:
#
#   bash benches/run.sh            # 100, 1,000 and 5,000 migrations; writes BENCHMARKS.md
#   bash benches/run.sh --quick    # 100 and 1,000 only (smoke run); writes benches/out/BENCHMARKS.quick.md
#
# Options: --sizes "100 1000"  --reps N (same for every size)  --out FILE (the Markdown report)
#          --tmp DIR (where the clusters, ci-gate's TMPDIR and the repositories live; default
#          $TMPDIR, else /dev/shm when ci-gate itself would use it, else /tmp; e.g. --tmp /tmp
#          to measure on disk)
#          --no-docker (skip the docker provider's runs; they are made when an engine answers)
# Environment: CI_GATE_BIN=PATH (skip `cargo build --release`, use this binary; the static-layer
#              probe then still links target/release/libci_gate.rlib), PG_BIN=DIR (server
#              binaries; default: the highest /usr/lib/postgresql/*/bin), SQUAWK_VERSION (default
#              2.68.0, the squawk-linter release ci-gate links).
#
# What it measures, per size N (a generated Prisma 6.19 history of N migrations on `main`, and a
# `pr` branch adding 5 more in the same style), repetitions interleaved:
#   limit    the N+5 files applied back to back on one connection by a minimal libpq loop
#            (benches/limit.py), on a cluster made exactly as ci-gate's local provider makes it;
#            also, as evidence, the same loop with Prisma's history rows, and clone costs
#   verify   `ci-gate verify REPO --base main --provider local` end to end: wall time, the JSON
#            report's timings_ms, peak memory (benches/measure.py)
#   cache    first and second run with the same --cache-dir, when `verify --help` lists it
#   squawk   squawk-cli (PyPI) over the N+5 migration.sql files
#   static   ci-gate's static layer alone (ci_gate::check::squawk::lint) over the same files
#            (benches/static_layer.rs, linked against the release build's library)
#   docker   the same verify with `--provider docker` (issue 14), on an image of the same server
#            binaries built here (docker/test-postgres/build.sh, tag ci-gate-bench/postgres:N, so
#            nobody else's build replaces it mid-run): the first run on an engine (no
#            pre-initialised image), the second (which commits it), later runs, and --cache-dir
#            first and second; plus examples/prisma-saas from scratch, local vs docker
# Raw results: benches/out/results-<stamp>.jsonl; the report: benches/report.py.
# Everything temporary (repositories, the limit cluster, ci-gate's TMPDIR) lives in one temp dir
# that is removed, with the cluster stopped, on every exit path.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/benches/out"
QUICK=0
SIZES=""
REPS=""
REPORT=""
DOCKER=1
# Default: where ci-gate's local provider puts its cluster when TMPDIR is not set (src/provision/
# local.rs `choose_base`): /dev/shm when it is a tmpfs with >= 1 GiB free, else /tmp. The limit's
# cluster and ci-gate's then share a filesystem, so the ratio compares like with like.
shm_ok() {
  local t a s
  read -r t a s < <(stat -f -c '%T %a %S' /dev/shm 2>/dev/null) || return 1
  [ "$t" = tmpfs ] && [ $(( a * s )) -ge $(( 1 << 30 )) ] && [ -w /dev/shm ]
}
if [ -n "${TMPDIR:-}" ]; then TMPBASE="$TMPDIR"; elif shm_ok; then TMPBASE=/dev/shm; else TMPBASE=/tmp; fi
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --sizes) SIZES="$2"; shift ;;
    --reps) REPS="$2"; shift ;;
    --out) REPORT="$2"; shift ;;
    --tmp) TMPBASE="$2"; shift ;;
    --no-docker) DOCKER=0 ;;
    -h|--help) sed -n '2,35{s/^# \{0,1\}//;p;}' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$SIZES" ]; then
  if [ "$QUICK" = 1 ]; then SIZES="100 1000"; else SIZES="100 1000 5000"; fi
fi
if [ -z "$REPORT" ]; then
  if [ "$QUICK" = 1 ]; then REPORT="$OUT/BENCHMARKS.quick.md"; else REPORT="$ROOT/BENCHMARKS.md"; fi
fi
reps_for() { # medians of 5 (3 in a quick run); the machine is shared, so more is better
  if [ -n "$REPS" ]; then echo "$REPS"; elif [ "$QUICK" = 1 ]; then echo 3; else echo 5; fi
}

T_START=$(date +%s)
say() { printf '[bench %4ss] %s\n' "$(( $(date +%s) - T_START ))" "$*"; }
die() { echo "run.sh: $*" >&2; exit 1; }

mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RES="$OUT/results-$STAMP.jsonl"
LOGDIR="$OUT/logs-$STAMP"
mkdir -p "$LOGDIR"
: > "$RES"

# ------------------------------------------------------------------------------------------
# Cleanup on every exit path: the limit cluster, then the temp dir.
WORK=""
PG_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$PG_PID" ] && kill -0 "$PG_PID" 2>/dev/null; then
    kill -INT "$PG_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$PG_PID" 2>/dev/null || true
    wait "$PG_PID" 2>/dev/null || true
  fi
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    # ci-gate cleans its own clusters; anything left in its TMPDIR is reported, then removed.
    if [ -d "$WORK/tmp" ] && [ -n "$(ls -A "$WORK/tmp" 2>/dev/null)" ]; then
      echo "run.sh: warning: ci-gate left behind: $(ls -A "$WORK/tmp" | tr '\n' ' ')" >&2
    fi
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT
trap 'echo "run.sh: terminated" >&2; exit 143' TERM HUP

WORK=$(mktemp -d "$TMPBASE/ci-gate-bench.XXXXXX")
chmod 755 "$WORK"
mkdir -m 1777 "$WORK/tmp"   # ci-gate's TMPDIR (world-traversable: as root its server runs as postgres)

# ------------------------------------------------------------------------------------------
# The machine.
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n | tail -1)}"
[ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/postgres" ] || die "no PostgreSQL server binaries (set PG_BIN)"
[ -x /usr/bin/time ] || {
  say "installing GNU time (apt-get install time)"
  apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
}
load1() { cut -d' ' -f1 /proc/loadavg; }
say "machine: $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"

# ------------------------------------------------------------------------------------------
# Build: ci-gate (release), the generator, the static-layer probe; the Python venv.
if [ -n "${CI_GATE_BIN:-}" ]; then
  BIN="$CI_GATE_BIN"
  PROFILE="given binary ($BIN)"
  say "using CI_GATE_BIN=$BIN"
else
  say "cargo build --release"
  t=$(date +%s)
  (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
  BIN="$ROOT/target/release/ci-gate"
  PROFILE="release (cargo build --release)"
  say "built in $(( $(date +%s) - t )) s"
fi
[ -x "$BIN" ] || die "$BIN is not executable"

say "building the generator (rustc benches/gen.rs)"
rustc --edition 2024 -O "$ROOT/benches/gen.rs" -o "$OUT/gen" 2> "$LOGDIR/gen-build.log" \
  || { cat "$LOGDIR/gen-build.log" >&2; die "benches/gen.rs does not compile"; }

STATIC_BIN=""
STATIC_WHY=""
say "building the static-layer probe (benches/static_layer.rs against target/release/libci_gate.rlib)"
DEPS="$ROOT/target/release/deps"
static_build() { # extra rustc args...
  rustc --edition 2024 -O "$ROOT/benches/static_layer.rs" --check-cfg 'cfg(breakdown)' \
    --extern ci_gate="$ROOT/target/release/libci_gate.rlib" -L dependency="$DEPS" \
    -o "$OUT/static_layer" "$@" 2> "$LOGDIR/static-build.log"
}
BREAKDOWN=0
SQ_SYNTAX=$(ls "$DEPS"/libsquawk_syntax-*.rlib 2>/dev/null | head -1)
SQ_LINTER=$(ls "$DEPS"/libsquawk_linter-*.rlib 2>/dev/null | head -1)
if [ -f "$ROOT/target/release/libci_gate.rlib" ] && [ -n "$SQ_SYNTAX" ] && [ -n "$SQ_LINTER" ] \
  && static_build --cfg breakdown --extern squawk_syntax="$SQ_SYNTAX" --extern squawk_linter="$SQ_LINTER"; then
  STATIC_BIN="$OUT/static_layer"
  BREAKDOWN=1
elif [ -f "$ROOT/target/release/libci_gate.rlib" ] && static_build; then
  STATIC_BIN="$OUT/static_layer"
else
  STATIC_WHY="benches/static_layer.rs did not build against this library: $(grep -m1 '^error' "$LOGDIR/static-build.log" 2>/dev/null || echo 'no target/release/libci_gate.rlib')"
  say "static layer not measured: $STATIC_WHY"
fi

VENV="$OUT/venv"
PY="$VENV/bin/python"
SQUAWK_VERSION="${SQUAWK_VERSION:-2.68.0}"
if [ ! -x "$PY" ]; then
  say "creating $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/squawk" --version 2>/dev/null | grep -qx "squawk $SQUAWK_VERSION" \
  || ! "$PY" -c 'import psycopg' 2>/dev/null; then
  say "pip install squawk-cli==$SQUAWK_VERSION psycopg[binary] into the venv"
  "$VENV/bin/pip" install -q --disable-pip-version-check "squawk-cli==$SQUAWK_VERSION" 'psycopg[binary]==3.3.9' \
    || die "pip install failed"
fi
SQUAWK="$VENV/bin/squawk"

HAS_CACHE=0
if "$BIN" verify --help 2>/dev/null | grep -q -- '--cache-dir'; then HAS_CACHE=1; fi
LOCAL=(--provider local --pg-bin "$PG_BIN")

# The docker provider's image: the same server binaries as the local provider's, packaged by
# docker/test-postgres/build.sh under a tag of the benchmark's own.
DOCKER_WHY=""
IMG=""
if [ "$DOCKER" = 1 ]; then
  PG_MAJOR_HERE=$("$PG_BIN/postgres" --version | awk '{print $3}' | cut -d. -f1)
  IMG="ci-gate-bench/postgres:$PG_MAJOR_HERE"
  say "building the docker image $IMG (docker/test-postgres/build.sh)"
  if ! built=$(bash "$ROOT/docker/test-postgres/build.sh" --tag "$IMG" --pg-major "$PG_MAJOR_HERE" --pg-bin "$PG_BIN" 2>&1); then
    echo "$built" >&2
    die "docker/test-postgres/build.sh failed"
  fi
  # build.sh exits 0 without an engine, saying "docker: …; skipping …".
  if skipped=$(echo "$built" | grep -m1 '^docker: .*; skipping'); then
    DOCKER=0
    DOCKER_WHY="$skipped"
  fi
else
  DOCKER_WHY="--no-docker"
fi
[ "$DOCKER" = 1 ] || say "docker provider not measured: $DOCKER_WHY"
DOCK=(--provider docker --image "$IMG")
forget_prepared() { # the docker provider's pre-initialised image of $IMG, and its mark of a first run
  local id
  id=$(docker image inspect --format '{{.Id}}' "$IMG")
  docker images -q --no-trunc --filter "label=dev.ci-gate.prepared.base-id=$id" | xargs -r docker image rm -f >/dev/null 2>&1 || true
  docker images --no-trunc --format '{{.ID}} {{.Repository}}:{{.Tag}}' ci-gate-prepared/postgres \
    | awk -v id="$id" '$1 == id && $2 ~ /-seen$/ {print $2}' | xargs -r docker image rm >/dev/null 2>&1 || true
}

# ------------------------------------------------------------------------------------------
# The limit's server: made as ci-gate's local provider makes it (src/provision/local.rs).
# As root the server runs as `postgres` (PostgreSQL refuses root), like ci-gate's. setpriv execs,
# so a background "${AS_PG[@]}" postgres … has the postmaster's own pid in $!.
AS_PG=()
if [ "$(id -u)" = 0 ]; then AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --); fi
CL="$WORK/limit"
START_MS=0
start_limit_cluster() { # sets PG_PID and START_MS (not to be called in a subshell)
  mkdir -p "$CL/sock"
  chmod 700 "$CL/sock"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$CL"
  local t0 t1
  t0=$(date +%s%N)
  "${AS_PG[@]}" "$PG_BIN/initdb" -D "$CL/data" --username=postgres --auth=trust --encoding=UTF8 \
    --locale=C --no-sync > "$LOGDIR/limit-initdb.log" 2>&1 || die "initdb failed (see $LOGDIR/limit-initdb.log)"
  "${AS_PG[@]}" "$PG_BIN/postgres" -D "$CL/data" -k "$CL/sock" -p 5432 \
    -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c wal_level=minimal -c max_wal_senders=0 -c max_connections=100 -c autovacuum=off \
    -c jit=off -c huge_pages=off -c dynamic_shared_memory_type=mmap -c log_checkpoints=off \
    -c logging_collector=off -c log_destination=stderr > "$LOGDIR/limit-server.log" 2>&1 &
  PG_PID=$!
  for _ in $(seq 1 1500); do
    "$PG_BIN/pg_isready" -q -h "$CL/sock" -p 5432 && break
    kill -0 "$PG_PID" 2>/dev/null || die "the limit server died (see $LOGDIR/limit-server.log)"
    sleep 0.02
  done
  "$PG_BIN/pg_isready" -q -h "$CL/sock" -p 5432 || die "the limit server did not start"
  t1=$(date +%s%N)
  START_MS=$(( (t1 - t0) / 1000000 ))
}
stop_limit_cluster() {
  kill -INT "$PG_PID"
  wait "$PG_PID" 2>/dev/null || true
  PG_PID=""
  rm -rf "$CL"
}

jget() { "$PY" -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2]))' "$1" "$2"; }

# One result line: {"n":N,"rep":R,"kind":K, ...fields}.
record() { # n rep kind json-object
  "$PY" - "$@" >> "$RES" <<'PY'
import json, sys
n, rep, kind, obj = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
load1 = float(open("/proc/loadavg").read().split()[0])
print(json.dumps({"n": int(n), "rep": int(rep), "kind": kind, "load1": load1, **obj}))
PY
}

# ------------------------------------------------------------------------------------------
# Context: the cluster start itself (initdb + start until it answers), 3 times.
say "timing the server start (initdb + postgres until it answers) x3"
for r in 1 2 3; do
  start_limit_cluster
  record 0 "$r" server_start "{\"wall_ms\": $START_MS}"
  stop_limit_cluster
done
start_limit_cluster
say "limit server up (pid $PG_PID, $("$PG_BIN/postgres" --version))"

# ------------------------------------------------------------------------------------------
make_repo() { # n dir: main = history of n, branch pr = history of n+5 (the pull request)
  local n=$1 dir=$2
  local g=(git -C "$dir" -c user.name=bench -c user.email=bench@localhost -c commit.gpgsign=false)
  mkdir -p "$dir"
  "$OUT/gen" "$dir" "$n"
  git -C "$dir" init -q -b main
  "${g[@]}" add -A
  "${g[@]}" commit -q -m "history of $n migrations"
  "${g[@]}" checkout -q -b pr
  "$OUT/gen" "$dir" "$((n + 5))"
  "${g[@]}" add -A
  "${g[@]}" commit -q -m "pull request: 5 new migrations"
  local added
  added=$(git -C "$dir" diff --name-only main pr -- prisma/migrations | grep -c 'migration.sql$' || true)
  [ "$added" = 5 ] || die "the pull request of the $n history changes $added migration files, not 5"
}

run_verify() { # n rep kind repo args... (provider, base…)
  local n=$1 rep=$2 kind=$3 repo=$4
  shift 4
  local json="$WORK/verify-$n-$rep-$kind.json"
  local m
  m=$(TMPDIR="$WORK/tmp" NO_COLOR=1 "$PY" "$ROOT/benches/measure.py" --log "$LOGDIR/$kind-$n-$rep.log" -- \
    "$BIN" verify "$repo" --json "$json" "$@")
  local rc
  rc=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["rc"])' "$m")
  if [ "$rc" != 0 ] && [ "$rc" != 1 ]; then
    tail -20 "$LOGDIR/$kind-$n-$rep.log" >&2
    die "ci-gate verify exited $rc at N=$n (log: $LOGDIR/$kind-$n-$rep.log)"
  fi
  [ -z "$(ls -A "$WORK/tmp")" ] || die "ci-gate left files in its TMPDIR: $(ls -A "$WORK/tmp")"
  local merged
  merged=$("$PY" - "$m" "$json" <<'PY'
import json, sys
m = json.loads(sys.argv[1])
r = json.load(open(sys.argv[2]))
m["timings_ms"] = r.get("timings_ms", {})
m["verdict"] = r.get("verdict")
m["counts"] = r.get("counts")
m["checks"] = {k: (v or {}).get("summary") for k, v in (r.get("checks") or {}).items()}
m["migrations"] = len(r.get("migrations") or [])
m["server"] = r.get("server")
print(json.dumps(m))
PY
)
  rm -f "$json"
  record "$n" "$rep" "$kind" "$merged"
  say "  $("$PY" - "$merged" <<'PY'
import json, sys
m = json.loads(sys.argv[1])
phases = " ".join(f"{k}={v}" for k, v in m["timings_ms"].items())
print(f"wall {m['wall_ms'] / 1e3:.2f} s, ci-gate rss {m['self_hwm_kb'] / 1024:.0f} MB, verdict {m['verdict']}, phases {phases}")
PY
)"
}

# The docker provider on one project (n: its size, 0 for the example), after the local runs of
# the same repetition: the first run on an engine (what every job of a GitHub-hosted runner
# sees), the second (which commits the pre-initialised image), a later run, and --cache-dir.
docker_runs() { # n rep repo args...
  local n=$1 rep=$2 repo=$3
  shift 3
  say "N=$n rep $rep: docker provider: first run on the engine, second, later"
  forget_prepared
  run_verify "$n" "$rep" docker_first "$repo" "$@" "${DOCK[@]}"
  run_verify "$n" "$rep" docker_second "$repo" "$@" "${DOCK[@]}"
  run_verify "$n" "$rep" docker "$repo" "$@" "${DOCK[@]}"
  if [ "$HAS_CACHE" = 1 ] && [ "$n" != 0 ]; then
    local cache="$WORK/dcache-$n-$rep"
    mkdir -p "$cache"
    say "N=$n rep $rep: docker provider with --cache-dir, first and second run"
    run_verify "$n" "$rep" docker_cache_first "$repo" "$@" "${DOCK[@]}" --cache-dir "$cache"
    run_verify "$n" "$rep" docker_cache_second "$repo" "$@" "${DOCK[@]}" --cache-dir "$cache"
    rm -rf "$cache"
  fi
}

# examples/prisma-saas from scratch (outside git), local and docker, alternated.
if [ "$DOCKER" = 1 ]; then
  example="$WORK/prisma-saas"
  cp -r "$ROOT/examples/prisma-saas" "$example"
  reps=$(reps_for 0)
  say "examples/prisma-saas: warm-up (not recorded)"
  TMPDIR="$WORK/tmp" "$BIN" verify "$example" "${DOCK[@]}" --quiet > "$LOGDIR/warmup-example.log" 2>&1 || true
  for rep in $(seq 1 "$reps"); do
    say "examples/prisma-saas rep $rep/$reps: local"
    run_verify 0 "$rep" example_local "$example" "${LOCAL[@]}"
    docker_runs 0 "$rep" "$example"
  done
fi

for n in $SIZES; do
  reps=$(reps_for "$n")
  repo="$WORK/repo-$n"
  say "N=$n: generating the history and its 5-migration pull request (load $(load1))"
  make_repo "$n" "$repo"
  files=$(ls -d "$repo"/prisma/migrations/*/ | wc -l)
  record "$n" 0 meta "{\"files\": $files, \"load_before\": $(load1)}"
  say "N=$n: warm-up verify (not recorded)"
  TMPDIR="$WORK/tmp" "$BIN" verify "$repo" --base main "${LOCAL[@]}" --quiet \
    > "$LOGDIR/warmup-$n.log" 2>&1 || [ $? = 1 ] || die "warm-up verify failed at N=$n (see $LOGDIR/warmup-$n.log)"
  for rep in $(seq 1 "$reps"); do
    say "N=$n rep $rep/$reps: limit"
    lim=$("$PY" "$ROOT/benches/limit.py" --socket "$CL/sock" --port 5432 --project "$repo" --db "limit_${n}_$rep") \
      || die "the limit loop failed at N=$n"
    record "$n" "$rep" limit "$lim"
    say "  $lim"

    # Evidence, not the limit: the same loop plus Prisma's history rows (ci-gate's base phase
    # does this work), and on the first repetition the cost of cloning the result.
    probe=""
    [ "$rep" = 1 ] && probe="--clone-probe"
    say "N=$n rep $rep/$reps: limit + Prisma history rows${probe:+ + clone probe}"
    limp=$("$PY" "$ROOT/benches/limit.py" --socket "$CL/sock" --port 5432 --project "$repo" \
      --db "limitp_${n}_$rep" --bookkeeping $probe) || die "the bookkeeping loop failed at N=$n"
    record "$n" "$rep" limit_prisma "$limp"
    say "  $limp"

    say "N=$n rep $rep/$reps: ci-gate verify"
    run_verify "$n" "$rep" verify "$repo" --base main "${LOCAL[@]}"

    if [ "$HAS_CACHE" = 1 ]; then
      cache="$WORK/cache-$n-$rep"
      mkdir -p "$cache"
      say "N=$n rep $rep/$reps: verify --cache-dir (first run, empty cache)"
      run_verify "$n" "$rep" cache_first "$repo" --base main "${LOCAL[@]}" --cache-dir "$cache"
      say "N=$n rep $rep/$reps: verify --cache-dir (second run, same cache)"
      run_verify "$n" "$rep" cache_second "$repo" --base main "${LOCAL[@]}" --cache-dir "$cache"
      rm -rf "$cache"
    fi
    if [ "$DOCKER" = 1 ]; then docker_runs "$n" "$rep" "$repo" --base main; fi

    if [ -n "$STATIC_BIN" ] && [ "$BREAKDOWN" = 1 ] && [ "$rep" = 1 ]; then
      bd=$("$STATIC_BIN" --breakdown "$repo") || die "static_layer --breakdown failed at N=$n"
      record "$n" "$rep" static_breakdown "$bd"
      say "N=$n: static layer breakdown (in process): $bd"
    fi
    # The peer and the static layer: short runs, so 3 alternating pairs per repetition.
    for pair in 1 2 3; do
      sq=$(cd "$repo" && "$PY" "$ROOT/benches/measure.py" --log "$LOGDIR/squawk-$n-$rep.log" -- \
        "$SQUAWK" --pg-version 15 --assume-in-transaction --reporter gcc 'prisma/migrations/*/migration.sql')
      sqn=$(grep -c ': warning: \|: error: ' "$LOGDIR/squawk-$n-$rep.log" || true)
      sq=$("$PY" -c 'import json,sys; m=json.loads(sys.argv[1]); m["violations"]=int(sys.argv[2]); m["pair"]=int(sys.argv[3]); print(json.dumps(m))' "$sq" "$sqn" "$pair")
      record "$n" "$rep" squawk "$sq"
      : > "$LOGDIR/squawk-$n-$rep.log"   # thousands of lines; the count is kept
      if [ -n "$STATIC_BIN" ]; then
        st=$("$PY" "$ROOT/benches/measure.py" --log "$LOGDIR/static-$n-$rep.log" -- "$STATIC_BIN" "$repo")
        inner=$(tail -1 "$LOGDIR/static-$n-$rep.log")
        st=$("$PY" -c 'import json,sys; m=json.loads(sys.argv[1]); m["inner"]=json.loads(sys.argv[2]); m["pair"]=int(sys.argv[3]); print(json.dumps(m))' "$st" "$inner" "$pair") \
          || die "the static layer probe failed at N=$n (see $LOGDIR/static-$n-$rep.log)"
        record "$n" "$rep" static "$st"
      fi
    done
    say "N=$n rep $rep/$reps: squawk $SQUAWK_VERSION vs static layer, 3 pairs: last squawk $(jget "$sq" wall_ms) ms ($(jget "$sq" violations) violations)${STATIC_BIN:+, static $(jget "$st" wall_ms) ms}"
  done
  record "$n" 0 meta_end "{\"load_after\": $(load1)}"
  rm -rf "$repo"
done

stop_limit_cluster
T_END=$(date +%s)
STATIC_WHY="$STATIC_WHY" PROFILE="$PROFILE" BIN="$BIN" PG_BIN="$PG_BIN" SQUAWK_VERSION="$SQUAWK_VERSION" \
  TMPBASE="$TMPBASE" TMP_FS="$(df -T "$TMPBASE" | awk 'NR==2{print $2}')" \
  DOCKER="$DOCKER" DOCKER_WHY="$DOCKER_WHY" IMG="$IMG" \
  ENGINE="$( [ "$DOCKER" = 1 ] && docker version --format '{{.Server.Version}}' 2>/dev/null || true)" \
  "$PY" - "$RES" "$((T_END - T_START))" "$HAS_CACHE" "$QUICK" "$STAMP" <<'PY'
import json, os, sys
res, seconds, has_cache, quick, stamp = sys.argv[1:]
e = os.environ
with open(res, "a") as f:
    f.write(json.dumps({"n": 0, "rep": 0, "kind": "run", "seconds": int(seconds),
        "profile": e["PROFILE"], "bin": e["BIN"], "pg_bin": e["PG_BIN"],
        "squawk_version": e["SQUAWK_VERSION"], "has_cache": int(has_cache),
        "static_why": e["STATIC_WHY"], "quick": int(quick), "tmp": e["TMPBASE"],
        "tmp_fs": e["TMP_FS"], "stamp": stamp, "docker": int(e["DOCKER"]),
        "docker_why": e["DOCKER_WHY"], "image": e["IMG"], "engine": e["ENGINE"]}) + "\n")
PY
say "writing $REPORT"
"$PY" "$ROOT/benches/report.py" "$RES" "$REPORT"
say "done in $((T_END - T_START)) s; raw results: $RES"
