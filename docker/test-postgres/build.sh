#!/usr/bin/env bash
# Build ci-gate's test PostgreSQL image from the PostgreSQL server installed on this machine,
# without any registry: a `FROM scratch` image holding postgres, initdb, pg_ctl, psql, their
# shared-library closure (ldd), the share files, time zone data, a minimal /bin/sh (dash) and the
# few utilities the entrypoint and ci-gate's docker provider need (tar, sleep, cp: present in
# the official images too). The entrypoint (docker-entrypoint.sh) behaves like the official
# image's.
#
# Usage: docker/test-postgres/build.sh [--force] [--tag NAME:TAG] [--pg-major N] [--pg-bin DIR]
#   --force      rebuild even if an image built from the same inputs already exists
#   --tag        image reference (default ci-gate-test/postgres:<major>)
#   --pg-major   PostgreSQL major version to package (default $PG_MAJOR or 15)
#   --pg-bin     directory holding postgres/initdb (default /usr/lib/postgresql/<major>/bin)
#
# Exit status: 0 when the image exists afterwards, and also 0 when there is no Docker CLI or no
# engine answers (the message then starts with "docker:" and contains "; skipping");
# 1 when the build fails; 2 on bad usage or missing PostgreSQL binaries.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pg_major="${PG_MAJOR:-15}"
tag=""
force=0
pg_bin=""

while [ $# -gt 0 ]; do
    case "$1" in
    --force) force=1 ;;
    --tag) tag="${2:?--tag needs a value}"; shift ;;
    --tag=*) tag="${1#--tag=}" ;;
    --pg-major) pg_major="${2:?--pg-major needs a value}"; shift ;;
    --pg-major=*) pg_major="${1#--pg-major=}" ;;
    --pg-bin) pg_bin="${2:?--pg-bin needs a value}"; shift ;;
    --pg-bin=*) pg_bin="${1#--pg-bin=}" ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
tag="${tag:-ci-gate-test/postgres:${pg_major}}"
pg_bin="${pg_bin:-/usr/lib/postgresql/${pg_major}/bin}"

say() { printf '%s\n' "test-postgres: $*"; }

# --- Is there an engine? -----------------------------------------------------------------
if ! command -v docker >/dev/null 2>&1; then
    echo "docker: CLI not installed; skipping"
    exit 0
fi
engine_host="${DOCKER_HOST:-/var/run/docker.sock}"
engine_host="${engine_host#unix://}"
if ! server_version="$(timeout 10 docker version --format '{{.Server.Version}}' 2>&1)"; then
    reason="$(printf '%s' "$server_version" | tr '\n' ' ' | sed 's/^ *//; s/ *$//')"
    echo "docker: no engine answers at ${engine_host}; skipping (${reason})"
    exit 0
fi

# Serialise concurrent builds (parallel test binaries) when flock is available.
if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/ci-gate-test-postgres.lock"
    flock 9
fi

# --- Find PostgreSQL ---------------------------------------------------------------------
for exe in postgres initdb pg_ctl psql; do
    if [ ! -x "$pg_bin/$exe" ]; then
        if [ "$force" -eq 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
            say "image $tag present; $pg_bin/$exe not found, so it cannot be rebuilt here; using it as is"
            exit 0
        fi
        echo "build.sh: $pg_bin/$exe not found; install the PostgreSQL ${pg_major} server" \
            "(e.g. apt-get install postgresql-${pg_major}) or pass --pg-bin DIR" >&2
        exit 2
    fi
done
pg_root="$(cd "$pg_bin/.." && pwd)"          # /usr/lib/postgresql/15
pg_lib="$pg_root/lib"
pg_share="$("$pg_bin/pg_config" --sharedir 2>/dev/null || true)"
if [ -z "$pg_share" ] || [ ! -d "$pg_share" ]; then
    pg_share="/usr/share/postgresql/${pg_major}"
fi
if [ ! -f "$pg_share/postgres.bki" ]; then
    echo "build.sh: PostgreSQL share directory not found (looked for $pg_share/postgres.bki)" >&2
    exit 2
fi
pg_version="$("$pg_bin/postgres" -V | awk '{print $3}')"
case "$pg_version" in
"$pg_major".*) ;;
*) echo "build.sh: $pg_bin/postgres is version $pg_version, not ${pg_major}.x" >&2; exit 2 ;;
esac

# The image records a fingerprint of its inputs (these files and the PostgreSQL version), so an
# image built by an older version of this script is rebuilt rather than silently reused.
inputs="$(cat "$here/build.sh" "$here/Dockerfile" "$here/docker-entrypoint.sh" | sha256sum | cut -c1-16)-$pg_version"
if [ "$force" -eq 0 ]; then
    have="$(docker image inspect --format '{{index .Config.Labels "dev.ci-gate.test-image.inputs"}}' "$tag" 2>/dev/null || true)"
    if [ "$have" = "$inputs" ]; then
        say "image $tag already present (engine $server_version); skipping build (use --force to rebuild)"
        exit 0
    elif [ -n "$have" ]; then
        say "image $tag exists but was built from other inputs ($have); rebuilding"
    fi
fi

started=$(date +%s)
say "building $tag from PostgreSQL $pg_version in $pg_root (engine $server_version)"

ctx="$(mktemp -d "${TMPDIR:-/tmp}/ci-gate-test-postgres.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root"/usr/{bin,lib,lib64,local/bin,share} "$root"/etc
# Merged-/usr layout: whatever path ldd reports (/lib/... or /usr/lib/...), it resolves.
ln -s usr/bin "$root/bin"
ln -s usr/bin "$root/sbin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"

# Destination of a host path inside the image, normalised under /usr.
dest() {
    case "$1" in
    /usr/*) printf '%s' "$root$1" ;;
    /bin/* | /sbin/*) printf '%s' "$root/usr/bin/${1#/*bin/}" ;;
    /lib/* | /lib64/*) printf '%s' "$root/usr$1" ;;
    *) printf '%s' "$root$1" ;;
    esac
}

# Copy a file (following symlinks) to its place in the image.
put() {
    local d
    d="$(dest "$1")"
    mkdir -p "$(dirname "$d")"
    cp -L --preserve=mode "$1" "$d"
}

elves=()

# PostgreSQL programs.
for exe in postgres initdb pg_ctl psql pg_isready pg_controldata; do
    if [ -x "$pg_bin/$exe" ]; then
        put "$pg_bin/$exe"
        elves+=("$pg_bin/$exe")
    fi
done
# Loadable modules (extensions, encodings, snowball dictionaries). JIT is left out: llvmjit.so
# pulls in libLLVM (100+ MB) and PostgreSQL silently runs without JIT when it cannot load it.
while IFS= read -r -d '' so; do
    case "$(basename "$so")" in llvmjit*) continue ;; esac
    put "$so"
    elves+=("$so")
done < <(find "$pg_lib" -maxdepth 1 -name '*.so' -print0)

# Shared files (catalog bootstrap, extensions' SQL, timezonesets, tsearch data).
mkdir -p "$(dest "$pg_share")"
cp -a "$pg_share/." "$(dest "$pg_share")/"
# Debian's share dir links to files elsewhere (e.g. timezone data): copy those, not links.
find "$(dest "$pg_share")" -type l -print0 | while IFS= read -r -d '' link; do
    target="$(readlink -f "$link" || true)"
    rm -f "$link"
    if [ -n "$target" ] && [ -e "$target" ]; then
        cp -aL "$target" "$link"
    fi
done

# Shell and utilities used by the entrypoint (and by pg_ctl, which runs `/bin/sh -c`), and what
# ci-gate's docker provider uses in an official image: tar (its --cache-dir archive streams in
# and out of the container's tmpfs), sleep and cp.
dash_path="$(command -v dash || true)"
if [ -z "$dash_path" ]; then
    echo "build.sh: dash not found (apt-get install dash)" >&2
    exit 2
fi
cp -L --preserve=mode "$dash_path" "$root/usr/bin/dash"
ln -s dash "$root/usr/bin/sh"
elves+=("$dash_path")
for util in rm mkdir chmod chown id setpriv tar sleep cp; do
    p="$(command -v "$util" || true)"
    if [ -z "$p" ]; then
        echo "build.sh: $util not found on this machine" >&2
        exit 2
    fi
    cp -L --preserve=mode "$p" "$root/usr/bin/$util"
    elves+=("$p")
done
# Optional: initdb runs `locale -a` to import the system collations into pg_collation.
if p="$(command -v locale)"; then
    cp -L --preserve=mode "$p" "$root/usr/bin/locale"
    elves+=("$p")
fi

# Shared-library closure (ldd resolves recursively).
missing=""
libs="$(
    for f in "${elves[@]}"; do
        ldd "$f" 2>/dev/null || true
    done | awk '
        $2 == "=>" && $3 ~ /^\// { print $3; next }
        $2 == "=>" && $3 == "not" { print "MISSING " $1; next }
        $1 ~ /^\// { print $1 }' | sort -u
)"
while IFS= read -r lib; do
    [ -n "$lib" ] || continue
    case "$lib" in
    MISSING*) missing="$missing ${lib#MISSING }" ;;
    *) put "$lib" ;;
    esac
done <<<"$libs"
if [ -n "$missing" ]; then
    say "note: some optional modules need libraries not installed here:$missing"
fi
nlibs="$(grep -vc '^MISSING' <<<"$libs" || true)"

# Time zone data (PostgreSQL is built with --with-system-tzdata on Debian) and the C.UTF-8
# locale (initdb uses it for a UTF8 cluster).
if [ -d /usr/share/zoneinfo ]; then
    mkdir -p "$root/usr/share/zoneinfo"
    cp -a /usr/share/zoneinfo/. "$root/usr/share/zoneinfo/"
else
    say "warning: /usr/share/zoneinfo missing (apt-get install tzdata); time zones other than UTC/GMT will not load"
fi
for loc in /usr/lib/locale/C.utf8 /usr/lib/locale/C.UTF-8; do
    if [ -d "$loc" ]; then
        mkdir -p "$root/usr/lib/locale"
        cp -a "$loc" "$root/usr/lib/locale/C.utf8"
        break
    fi
done

# Users, groups, name service, writable directories.
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
postgres:x:999:999:PostgreSQL administrator:/var/lib/postgresql:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/sh
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
postgres:x:999:
nogroup:x:65534:
EOF
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
if [ -e "$root/usr/share/zoneinfo/Etc/UTC" ]; then
    ln -s /usr/share/zoneinfo/Etc/UTC "$root/etc/localtime"
fi
# No chown in a FROM scratch build without RUN: these are world-writable and sticky (as
# /var/run/postgresql is in the official image); initdb creates PGDATA itself, owned by
# postgres, mode 0700.
mkdir -p "$root/tmp" "$root/var/lib/postgresql" "$root/var/run/postgresql" \
    "$root/docker-entrypoint-initdb.d" "$root/root" "$root/dev" "$root/proc" "$root/sys"
chmod 1777 "$root/tmp" "$root/var/lib/postgresql"
chmod 3777 "$root/var/run/postgresql"
chmod 0755 "$root/docker-entrypoint-initdb.d"
chmod 0700 "$root/root"

install -m 0755 "$here/docker-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
cp "$here/Dockerfile" "$ctx/Dockerfile"

size="$(du -sh "$root" | awk '{print $1}')"
say "context staged: $nlibs shared libraries, $size"

# The legacy builder is enough for FROM scratch + COPY; use it when buildx is not installed
# (the CLI refuses BuildKit without it).
if ! docker buildx version >/dev/null 2>&1; then
    export DOCKER_BUILDKIT=0
fi
old_id="$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
if ! docker build --quiet --build-arg "PG_MAJOR=$pg_major" --build-arg "PG_VERSION=$pg_version" \
    --build-arg "INPUTS=$inputs" \
    -t "$tag" "$ctx" >"$ctx/build.log" 2>&1; then
    cat "$ctx/build.log" >&2
    echo "build.sh: docker build failed" >&2
    exit 1
fi

# Smoke test: the dynamic loader and every library resolve inside the image.
if ! out="$(docker run --rm --entrypoint /usr/lib/postgresql/"$pg_major"/bin/postgres "$tag" -V 2>&1)"; then
    echo "build.sh: the image was built but postgres does not run in it: $out" >&2
    exit 1
fi
new_id="$(docker image inspect --format '{{.Id}}' "$tag")"
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    # --force: drop the image this one replaced (kept if a container still uses it).
    docker image rm "$old_id" >/dev/null 2>&1 || true
fi
say "built $tag ($out) in $(($(date +%s) - started)) s"
