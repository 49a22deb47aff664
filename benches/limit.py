"""The limit: the same migration files applied back to back on one connection, with no ci-gate.

A minimal libpq loop (psycopg's `pq` layer, i.e. PQexec): each `migration.sql` is sent as read,
as ONE simple-query message, exactly what Prisma <= 7.3 (and ci-gate emulating it) sends, on one
connection, in directory order. No history table, no checksums, no report: only the SQL.

    python limit.py --socket DIR --port P --project PROJECT_DIR --db NAME [--bookkeeping] [--clone-probe]

Prints one JSON line: {"files", "create_ms", "apply_ms", "total_ms"} where apply_ms covers
connect + read every file + apply every file, and create_ms the CREATE DATABASE before it.
The database is dropped afterwards (not timed).

Evidence for where ci-gate's time goes (not part of the limit):
  --bookkeeping  also keep Prisma's `_prisma_migrations` rows the way ci-gate's apply loop does
                 (src/run/prisma.rs: INSERT before each file, two UPDATEs after, each its own
                 prepared statement and round trip): the limit plus what Prisma's protocol costs.
  --clone-probe  after applying: the number of tables and a database-wide ANALYZE (what ci-gate's
                 seeded run ends with, here on empty tables), the database size, and
                 `CREATE DATABASE … TEMPLATE` of it with STRATEGY WAL_LOG (PostgreSQL 15's
                 default, what ci-gate gets) and FILE_COPY.
"""

import argparse
import datetime
import hashlib
import json
import os
import sys
import time
import uuid

from psycopg import pq


def conninfo(sock: str, port: int, db: str) -> bytes:
    return f"host={sock} port={port} user=postgres dbname={db}".encode()


def run(pg: "pq.PGconn", sql: bytes) -> None:
    res = pg.exec_(sql)
    if res.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        msg = (pg.error_message or b"").decode(errors="replace").strip()
        raise RuntimeError(msg)


HISTORY_TABLE_DDL = b"""CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL,
    "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)"""
INSERT = b'INSERT INTO "_prisma_migrations" ("id", "checksum", "started_at", "migration_name") VALUES ($1, $2, $3::timestamptz, $4)'
STEP = b'UPDATE "_prisma_migrations" SET "applied_steps_count" = "applied_steps_count" + 1 WHERE "id" = $1'
FINISH = b'UPDATE "_prisma_migrations" SET "finished_at" = $1::timestamptz WHERE "id" = $2'


def prepared(pg: "pq.PGconn", name: bytes, params) -> None:
    res = pg.exec_prepared(name, params)
    if res.status != pq.ExecStatus.COMMAND_OK:
        raise RuntimeError((pg.error_message or b"").decode(errors="replace").strip())


def now() -> bytes:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().encode()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--project", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--bookkeeping", action="store_true")
    ap.add_argument("--clone-probe", action="store_true")
    a = ap.parse_args()

    mdir = os.path.join(a.project, "prisma", "migrations")
    names = sorted(
        e.name for e in os.scandir(mdir) if e.is_dir(follow_symlinks=False)
    )  # byte order, as ci-gate and Prisma's deploy read them

    admin = pq.PGconn.connect(conninfo(a.socket, a.port, "postgres"))
    if admin.status != pq.ConnStatus.OK:
        print(admin.error_message.decode(), file=sys.stderr)
        return 3
    quoted = '"' + a.db.replace('"', '""') + '"'
    run(admin, f"DROP DATABASE IF EXISTS {quoted}".encode())
    t0 = time.perf_counter()
    run(admin, f"CREATE DATABASE {quoted}".encode())
    t1 = time.perf_counter()

    pg = pq.PGconn.connect(conninfo(a.socket, a.port, a.db))
    if pg.status != pq.ConnStatus.OK:
        print(pg.error_message.decode(), file=sys.stderr)
        return 3
    applied = 0
    try:
        if a.bookkeeping:
            run(pg, b'SET search_path TO "public"')
            run(pg, HISTORY_TABLE_DDL)
            for stmt_name, sql in ((b"ins", INSERT), (b"step", STEP), (b"fin", FINISH)):
                if pg.prepare(stmt_name, sql).status != pq.ExecStatus.COMMAND_OK:
                    raise RuntimeError(pg.error_message.decode())
        for name in names:
            with open(os.path.join(mdir, name, "migration.sql"), "rb") as f:
                sql = f.read()
            if a.bookkeeping:
                mid = str(uuid.uuid4()).encode()
                digest = hashlib.sha256(sql).hexdigest().encode()
                prepared(pg, b"ins", [mid, digest, now(), name.encode()])
                run(pg, sql)
                prepared(pg, b"step", [mid])
                prepared(pg, b"fin", [now(), mid])
            else:
                run(pg, sql)
            applied += 1
    except RuntimeError as e:
        print(f"limit: {names[applied]}: {e}", file=sys.stderr)
        return 1
    t2 = time.perf_counter()
    extra = {}
    if a.clone_probe:
        res = pg.exec_(b"SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                       b"WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')")
        extra["tables"] = int(res.get_value(0, 0))
        t = time.perf_counter()
        run(pg, b"ANALYZE")
        extra["analyze_ms"] = round((time.perf_counter() - t) * 1e3, 3)
    pg.finish()
    out = {
        "files": applied,
        "create_ms": round((t1 - t0) * 1e3, 3),
        "apply_ms": round((t2 - t1) * 1e3, 3),
        "total_ms": round((t2 - t0) * 1e3, 3),
        **extra,
    }
    if a.clone_probe:
        res = admin.exec_(f"SELECT pg_database_size('{a.db}')".encode())
        out["db_bytes"] = int(res.get_value(0, 0))
        for strategy in ("WAL_LOG", "FILE_COPY"):
            clone = '"' + a.db + "_" + strategy.lower() + '"'
            t = time.perf_counter()
            run(admin, f"CREATE DATABASE {clone} TEMPLATE {quoted} STRATEGY {strategy}".encode())
            out[f"clone_{strategy.lower()}_ms"] = round((time.perf_counter() - t) * 1e3, 3)
            run(admin, f"DROP DATABASE {clone}".encode())
    run(admin, f"DROP DATABASE {quoted}".encode())
    admin.finish()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
