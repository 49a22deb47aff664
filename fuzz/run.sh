#!/usr/bin/env bash
# Bounded fuzzing of ci-gate's parsers of untrusted input: builds every cargo-fuzz target in
# fuzz/fuzz_targets and runs each for SECONDS (default 60) from its committed seeds
# (corpus/<target>/seed-*). Exits 1 if any target crashed, panicked, timed out or ran out of
# memory, naming it and the saved input (artifacts/<target>/); 2 if the build failed.
#
#   fuzz/run.sh [SECONDS]
#
# Works on a fresh machine with the stable toolchain: installs cargo-fuzz when missing, builds
# without a sanitizer (ASan needs nightly: RUSTC_BOOTSTRAP=1 FUZZ_SANITIZER=address fuzz/run.sh)
# and with debug assertions and overflow checks, as `cargo test` runs. To reproduce a crash:
#   cd fuzz && cargo fuzz run --sanitizer none -a TARGET artifacts/TARGET/crash-…
set -euo pipefail
cd "$(dirname "$0")"

secs="${1:-60}"
case "$secs" in '' | *[!0-9]*) echo "usage: fuzz/run.sh [SECONDS]" >&2; exit 2 ;; esac

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

flags=(--sanitizer "${FUZZ_SANITIZER:-none}" --debug-assertions)
echo "fuzz: building the targets"
if ! cargo fuzz build "${flags[@]}"; then
  echo "fuzz: the targets did not build" >&2
  exit 2
fi

failed=()
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target" "artifacts/$target"
  log="artifacts/$target/last-run.log"
  echo "fuzz: $target for ${secs}s ($(find "corpus/$target" -type f | wc -l) inputs in the corpus)"
  # One process, one job (-j1 is the default); -timeout: an input slower than 30 s is a hang.
  if cargo fuzz run "${flags[@]}" "$target" "corpus/$target" -- \
    -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
    </dev/null >"$log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^Done" "$log" | sed "s/^/fuzz:   /" || true
  else
    failed+=("$target")
    echo "fuzz: $target FAILED; the end of its log ($log):" >&2
    grep -vE "^#[0-9]+\s+(NEW|REDUCE|pulse)" "$log" | tail -40 >&2
    ls -1 "artifacts/$target" | grep -v last-run.log | sed "s|^|fuzz:   input: fuzz/artifacts/$target/|" >&2 || true
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: crashes in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no crash in $(cargo fuzz list | wc -l) targets, ${secs}s each"
