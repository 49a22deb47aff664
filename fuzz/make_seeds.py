#!/usr/bin/env python3
"""Rebuild the committed seed corpus (fuzz/corpus/<target>/seed-*) from tests/fixtures/.

Run from anywhere: python3 fuzz/make_seeds.py. Seeds are small files (at most 2 KiB) so each
target starts from the fixtures' shapes; what the fuzzer adds next to them is gitignored.
"""
import hashlib
import os
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
MAX = 2048


def files(pred):
    for d, _, names in sorted(os.walk(FIX)):
        for n in sorted(names):
            p = os.path.join(d, n)
            if pred(p) and os.path.getsize(p) <= MAX:
                yield p


def read(p):
    with open(p, "rb") as f:
        return f.read()


def put(target, data, label):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    h = hashlib.sha1(data).hexdigest()[:10]
    if any(n.endswith(h) for n in os.listdir(d)):
        return  # the same file in another fixture
    with open(os.path.join(d, f"seed-{label}-{h}"), "wb") as f:
        f.write(data)


def rel(p):
    return os.path.relpath(p, FIX).replace(os.sep, "_").replace(".", "_")


def main():
    for t in ["config", "prisma_discover", "split", "allow", "prisma_version", "squawk_lint"]:
        shutil.rmtree(os.path.join(CORPUS, t), ignore_errors=True)

    # SQL: the allow fixtures for `allow`, every small script for split and lint.
    for p in files(lambda p: p.endswith(".sql")):
        data = read(p)
        put("split", data, rel(p))
        put("squawk_lint", data, rel(p))
        if "/allow/" in p or b"ci-gate" in data:
            put("allow", data, rel(p))

    # Config: the fixtures' .ci-gate.yml and the design's full example.
    for p in files(lambda p: p.endswith(".ci-gate.yml")):
        put("config", read(p), rel(p))
    put("config", b"format: prisma\nprisma-version: \"6.19\"\nmigrations: prisma/migrations\n"
        b"base: origin/main\npostgres: { provider: auto, version: \"16\", image: \"postgres:16-alpine\" }\n"
        b"extensions: [pgcrypto, citext]\nroles: [authenticated, anon]\nseed: prisma/ci-seed.sql\n"
        b"rules: { migration-fails: error, squawk/ban-drop-column: off }\nfail-on: error\n"
        b"comment: auto\nstatement-timeout: 10min\nsuperuser: false\ncache-dir: .cache\n", "full")

    # Discovery: each migrations directory, encoded as oracles::prisma_tree decodes it.
    for d, dirs, _ in sorted(os.walk(FIX)):
        if os.path.basename(d) != "migrations":
            continue
        lock = os.path.join(d, "migration_lock.toml")
        out = read(lock) if os.path.exists(lock) else b""
        for name in sorted(dirs):
            script = os.path.join(d, name, "migration.sql")
            out += b"\0" + name.encode() + b"\0"
            out += read(script)[:MAX] if os.path.exists(script) else b"\x01"
        put("prisma_discover", out, rel(d))

    # Versions: first byte picks the reader (oracles::VERSION_SOURCES).
    for v in [b"^6.19.0", b"7.4.1", b"~7.3", b">=7.4.0 <8", b"npm:prisma@7.4.0", b"latest"]:
        put("prisma_version", b"\0" + v, "raw")
    for p in files(lambda p: p.endswith("package.json")):
        put("prisma_version", b"\1" + read(p), rel(p))
    put("prisma_version", b'\2{"packages":{"node_modules/prisma":{"version":"7.4.2"}},'
        b'"dependencies":{"@prisma/client":{"version":"6.19.0"}}}', "package-lock")
    put("prisma_version", b"\3lockfileVersion: '9.0'\npackages:\n\n  prisma@6.19.0:\n"
        b"    resolution: x\n  '@prisma/client@7.4.1(prisma@7.4.1)':\n", "pnpm")
    put("prisma_version", b"\4\"prisma@^7.4.0\":\n  version \"7.5.0\"\n"
        b"\"@prisma/client@npm:7.4.0\":\n  version: 7.4.0\n", "yarn")
    put("prisma_version", b'\5{"packages":{"prisma":["prisma@7.4.1","",{}]}}', "bun")


if __name__ == "__main__":
    main()
