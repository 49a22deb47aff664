#!/usr/bin/env bash
# The ci-gate GitHub Action's cache step: where the base cache lives and which actions/cache key
# prefix it is stored under. Inputs arrive as environment variables (never evaluated).
#
# INPUT_CACHE: "true" (default) keeps the verified base between runs with actions/cache; anything
#   else turns it off (the outputs are then empty and the cache steps are skipped).
# Outputs: dir ($RUNNER_TEMP/ci-gate-cache) and prefix (ci-gate-base-<OS>-<base branch>-): one
#   cache line per base branch; the key adds a hash of the entries ci-gate leaves (run.sh), so a
#   run that reuses an entry saves nothing new.
set -euo pipefail
: "${RUNNER_TEMP:?RUNNER_TEMP is not set: this script runs inside a GitHub Actions job}"
: "${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set: this script runs inside a GitHub Actions job}"
case "${INPUT_CACHE:-true}" in
  true) ;;
  *) exit 0 ;;
esac
branch="${GITHUB_BASE_REF:-${GITHUB_REF_NAME:-main}}"
# Only [A-Za-z0-9._-] reach the key.
branch="$(printf '%s' "$branch" | LC_ALL=C tr -c 'A-Za-z0-9._-' '_')"
{
  echo "dir=$RUNNER_TEMP/ci-gate-cache"
  echo "prefix=ci-gate-base-${RUNNER_OS:-Linux}-${branch}-"
} >>"$GITHUB_OUTPUT"
