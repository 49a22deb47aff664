"""The limit: the same migration files applied back to back on one connection, with no ci-gate.

A minimal libpq loop (psycopg's `pq` layer, i.e. PQexec): each `migration.sql` is sent as read,
as ONE simple-query message, exactly what Prisma <= 7.3 (and ci-gate emulating it) sends, on one
connection, in directory order. No history table, no checksums, no report: only the SQL.

    python limit.py --socket DIR --port P --project PROJECT_DIR --db NAME

Prints one JSON line: {"files", "create_ms", "apply_ms", "total_ms"} where apply_ms covers
connect + read every file + apply every file, and create_ms the CREATE DATABASE before it.
The database is dropped afterwards (not timed).
"""

import argparse
import json
import os
import sys
import time

from psycopg import pq


def conninfo(sock: str, port: int, db: str) -> bytes:
    return f"host={sock} port={port} user=postgres dbname={db}".encode()


def run(pg: "pq.PGconn", sql: bytes) -> None:
    res = pg.exec_(sql)
    if res.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        msg = (pg.error_message or b"").decode(errors="replace").strip()
        raise RuntimeError(msg)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--project", required=True)
    ap.add_argument("--db", required=True)
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
        for name in names:
            with open(os.path.join(mdir, name, "migration.sql"), "rb") as f:
                sql = f.read()
            run(pg, sql)
            applied += 1
    except RuntimeError as e:
        print(f"limit: {names[applied]}: {e}", file=sys.stderr)
        return 1
    t2 = time.perf_counter()
    pg.finish()
    run(admin, f"DROP DATABASE {quoted}".encode())
    admin.finish()
    print(
        json.dumps(
            {
                "files": applied,
                "create_ms": round((t1 - t0) * 1e3, 3),
                "apply_ms": round((t2 - t1) * 1e3, 3),
                "total_ms": round((t2 - t0) * 1e3, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
