#!/bin/sh
# Entrypoint of ci-gate's test PostgreSQL image (docker/test-postgres/build.sh).
#
# ci-gate's docker provider replaces an image's entrypoint with its own start script (initdb,
# then postgres), unless the image ships /docker-entrypoint-initdb.d scripts; then it runs this
# one. So this follows the official `postgres` image's contract, for that path and for
# `docker run` by hand (`-c fsync=off` as the command means `postgres -c fsync=off`):
#   - honours POSTGRES_USER (default postgres), POSTGRES_PASSWORD, POSTGRES_DB (default
#     $POSTGRES_USER), POSTGRES_HOST_AUTH_METHOD (default scram-sha-256 when a password is set;
#     `trust` allows no password), POSTGRES_INITDB_ARGS and PGDATA;
#   - on first start: initdb as the postgres user (--no-sync: the cluster is throwaway), listen
#     on 0.0.0.0:5432, then a temporary server on the unix socket only, whose log goes to STDOUT (so the ready message appears
#     there), creates POSTGRES_DB and runs /docker-entrypoint-initdb.d/*.sql|*.sh, stops;
#   - finally `exec postgres` (PID 1), whose log goes to STDERR (the second ready message).
# Only dash builtins plus rm, mkdir, chmod, chown, id, setpriv, tar, sleep, cp, locale and the
# PostgreSQL binaries are available in the image.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

# `docker run IMAGE -c fsync=off` means `postgres -c fsync=off`, as in the official image.
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
    exec "$@"
fi
shift

# Started as root (`--user 0`): prepare the directories, then drop to postgres (the official
# image uses gosu for this). PostgreSQL refuses to run as root.
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --clear-groups "$0" postgres "$@"
fi

log() {
    printf '%s\n' "ci-gate-test-postgres: $*"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    POSTGRES_USER="${POSTGRES_USER:-postgres}"
    POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
    POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-}"
    auth="${POSTGRES_HOST_AUTH_METHOD:-}"
    if [ -z "$auth" ]; then
        if [ -z "$POSTGRES_PASSWORD" ]; then
            printf '%s\n' "Error: database is uninitialized and superuser password is not specified." \
                "       Set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust to allow all" \
                "       connections without a password." >&2
            exit 1
        fi
        auth=scram-sha-256
    fi

    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA"

    locale=C
    if [ -d /usr/lib/locale/C.utf8 ]; then
        locale=C.UTF-8
    fi

    pwfile=
    if [ -n "$POSTGRES_PASSWORD" ]; then
        pwfile="/tmp/.ci-gate-pwfile.$$"
        (umask 077 && printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile")
    fi

    log "initdb (user $POSTGRES_USER, host auth $auth, locale $locale)"
    # POSTGRES_INITDB_ARGS is split into words on purpose, as in the official image.
    # shellcheck disable=SC2086
    initdb --username="$POSTGRES_USER" ${pwfile:+--pwfile="$pwfile"} \
        --auth-local=trust --auth-host="$auth" \
        --encoding=UTF8 --locale="$locale" --no-sync \
        ${POSTGRES_INITDB_ARGS:-} -D "$PGDATA"
    if [ -n "$pwfile" ]; then
        rm -f "$pwfile"
    fi

    printf '\n# ci-gate test image: any address, like the official image\nhost all all all %s\n' \
        "$auth" >>"$PGDATA/pg_hba.conf"
    printf "\n# ci-gate test image\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

    # Temporary server on the unix socket only; its log goes to stdout.
    log "starting a temporary server for initialisation"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c fsync=off" -w -t 60 start 2>&1

    if [ "$POSTGRES_DB" != postgres ]; then
        log "creating database $POSTGRES_DB"
        psql -X -q -v ON_ERROR_STOP=1 --username="$POSTGRES_USER" --no-password \
            --dbname=postgres --set=db="$POSTGRES_DB" <<'EOSQL'
CREATE DATABASE :"db";
EOSQL
    fi

    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
        *.sh)
            log "running $f"
            # shellcheck disable=SC1090
            . "$f"
            ;;
        *.sql)
            log "running $f"
            psql -X -q -v ON_ERROR_STOP=1 --username="$POSTGRES_USER" --no-password \
                --dbname="$POSTGRES_DB" -f "$f"
            ;;
        *) ;;
        esac
    done

    pg_ctl -D "$PGDATA" -m fast -w -t 60 stop 2>&1
    log "PostgreSQL init process complete; ready for start up."
fi

# The real server: PID 1, log on stderr.
exec postgres "$@"
