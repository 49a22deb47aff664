"""Turn a benches/run.sh results file (JSON lines) into BENCHMARKS.md.

    python report.py RESULTS.jsonl OUT.md

Everything between `<!-- generated:begin -->` and `<!-- generated:end -->` is rewritten; a
hand-written block between `<!-- analysis:begin -->` and `<!-- analysis:end -->` in an existing
OUT.md is kept as is (it explains the numbers of a given run, so it names that run's stamp).
"""

import json
import os
import platform
import re
import statistics
import subprocess
import sys

# Phases of `verify` that run one after the other (src/pipeline.rs). provision and discover run
# at the same time; `total` is the whole. Any other key a newer ci-gate reports is counted as one
# more sequential phase.
PARALLEL = ("provision", "discover")
ORDER = ["provision", "discover", "base", "clone", "incremental", "trace", "scratch", "inspect", "static", "live"]
STATIC_KEYS = ("static", "lint", "squawk")


def load(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    return rows


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt_ms(ms):
    if ms is None:
        return "–"
    if ms >= 10_000:
        return f"{ms / 1000:.1f} s"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    return f"{ms:.0f} ms"


def fmt_x(r):
    return "–" if r is None else f"{r:.2f}×"


def fmt_mb(kb):
    return "–" if not kb else f"{kb / 1024:.0f} MB"


def n_fmt(n):
    return f"{n:,}"


def phase_medians(runs):
    """Median of each timings_ms key, plus `_untimed` (inside `total` but in no phase: git, plan,
    checks, report) and `_exit` (wall − total: server shutdown, cleanup, process start and exit)."""
    phases = {}
    for r in runs:
        t = dict(r.get("timings_ms") or {})
        for k, v in t.items():
            phases.setdefault(k, []).append(v)
        seq = sum(v for k, v in t.items() if k not in PARALLEL and k != "total")
        par = max([t.get(k, 0) for k in PARALLEL] or [0])
        if "total" in t:
            phases.setdefault("_untimed", []).append(t["total"] - seq - par)
            phases.setdefault("_exit", []).append(r["wall_ms"] - t["total"])
    return {k: med(v) for k, v in phases.items()}


def machine():
    cpu = "unknown"
    try:
        m = re.search(r"^model name\s*:\s*(.+)$", open("/proc/cpuinfo").read(), re.M)
        cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    mem_kb = 0
    try:
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1))
    except (OSError, AttributeError):
        pass

    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "unknown"

    return {
        "cores": os.cpu_count(),
        "mem_gib": mem_kb / 1024 / 1024,
        "cpu": cpu,
        "kernel": platform.release(),
        "rustc": out(["rustc", "--version"]),
    }


DOCKER_KINDS = [
    ("docker_first", "1st run on the engine"),
    ("docker_second", "2nd run (commits the pre-initialised image)"),
    ("docker", "later runs"),
    ("docker_cache_first", "--cache-dir, 1st"),
    ("docker_cache_second", "--cache-dir, 2nd"),
]


def paired_ratio(num, den):
    """Median of the per-repetition ratios num/den (runs of the same repetition)."""
    d = {r["rep"]: r["wall_ms"] for r in den}
    return med([r["wall_ms"] / d[r["rep"]] for r in num if d.get(r["rep"])])


def docker_section(w, run, by, sizes):
    """The docker provider against the local one (issue 14), when run.sh measured it."""
    if not run.get("docker"):
        w("## Docker provider vs local (issue 14)")
        w("")
        w(f"Not measured in this run: {run.get('docker_why') or 'no Docker engine answered'}.")
        w("")
        return

    def kind(n, k):
        return by.get((n, k), [])

    projects = [(0, "examples/prisma-saas, from scratch", "example_local")]
    projects += [(n, f"{n_fmt(n)} migrations + 5, `--base main`", "verify") for n in sizes]
    w("## Docker provider vs local (issue 14)")
    w("")
    w(f"The same verify with `--provider docker --image {run.get('image')}` (this machine's server "
      f"binaries in a `FROM scratch` image, `docker/test-postgres/build.sh`, as no registry is "
      f"reachable here; Docker Engine {run.get('engine') or '?'}), alternated with the local "
      "provider's runs. A container's first run on an engine runs initdb in it; the second also "
      "commits the fresh cluster as a pre-initialised image (once per image and engine); later "
      "runs copy that cluster into the container's tmpfs. A GitHub-hosted runner starts every job "
      "with a fresh engine, so there every run is a first run.")
    w("")
    head = " | ".join(label for _, label in DOCKER_KINDS)
    w(f"| project | local | {head} | later / local | 1st / local |")
    w("|---|---:|" + "---:|" * (len(DOCKER_KINDS) + 2))
    goals = {}
    for n, label, local_kind in projects:
        local = kind(n, local_kind)
        if not local or not kind(n, "docker"):
            continue
        cells = [fmt_ms(med([r["wall_ms"] for r in kind(n, k)])) if kind(n, k) else "–" for k, _ in DOCKER_KINDS]
        later = paired_ratio(kind(n, "docker"), local)
        first = paired_ratio(kind(n, "docker_first"), local)
        goals[n] = (later, first)
        w(f"| {label} | {fmt_ms(med([r['wall_ms'] for r in local]))} | " + " | ".join(cells) +
          f" | **{fmt_x(later)}** | {fmt_x(first)} |")
    w("")
    w("Where the docker runs' time goes (median `timings_ms`; `provision` is the container's "
      "create, start and readiness, `shutdown + exit` its removal):")
    w("")
    keys = ["provision", "base", "trace", "scratch"]
    w("| project | run | " + " | ".join(keys) + " | shutdown + exit | wall |")
    w("|---|---|" + "---:|" * (len(keys) + 2))
    for n, label, local_kind in projects:
        for k, run_label in [(local_kind, "local")] + DOCKER_KINDS:
            runs = kind(n, k)
            if not runs:
                continue
            ph = phase_medians(runs)
            w(f"| {label} | {run_label} | " + " | ".join(fmt_ms(ph.get(p)) for p in keys) +
              f" | {fmt_ms(ph.get('_exit'))} | {fmt_ms(med([r['wall_ms'] for r in runs]))} |")
    w("")
    judged = {n: v for n, v in goals.items() if n in (0, 1000)}
    met = bool(judged) and all((later or 99) <= 1.5 for later, _ in judged.values())
    w(f"### docker ≤ 1.5× local on the example and at 1,000 migrations: **{'met' if met else 'not met'}**"
      + ("" if 1000 in judged else " (1,000 not measured in this run)"))
    w("")
    w("Later runs / local: " + ", ".join(
        f"{'example' if n == 0 else 'N=' + n_fmt(n)} {fmt_x(v[0])}" for n, v in goals.items()) +
      ". First run on a fresh engine / local: " + ", ".join(
        f"{'example' if n == 0 else 'N=' + n_fmt(n)} {fmt_x(v[1])}" for n, v in goals.items()) + ".")
    w("")


def main():
    res_path, out_path = sys.argv[1], sys.argv[2]
    rows = load(res_path)
    run = next((r for r in rows if r["kind"] == "run"), {})
    sizes = sorted({r["n"] for r in rows if r["kind"] == "meta"})
    by = {}
    for r in rows:
        by.setdefault((r["n"], r["kind"]), []).append(r)

    def kind(n, k):
        return by.get((n, k), [])

    mach = machine()
    pg_version = out = None
    for r in rows:
        if r["kind"] == "verify" and r.get("server"):
            pg_version = r["server"].get("version")
            break
    server_start = med([r["wall_ms"] for r in kind(0, "server_start")])

    # ---------------------------------------------------------------- per size
    S = {}
    for n in sizes:
        meta = kind(n, "meta")[0]
        end = (kind(n, "meta_end") or [{}])[0]
        lim = kind(n, "limit")
        ver = kind(n, "verify")
        sq = kind(n, "squawk")
        st = kind(n, "static")
        c1, c2 = kind(n, "cache_first"), kind(n, "cache_second")
        ph = phase_medians(ver)
        phc1, phc2 = phase_medians(c1), phase_medians(c2)
        limp = kind(n, "limit_prisma")
        probe = next((r for r in limp if "db_bytes" in r), {})
        static_phase_key = next((k for k in ph if any(s in k for s in STATIC_KEYS)), None)
        s = {
            "files": meta["files"],
            "load_before": meta.get("load_before"),
            "load_after": end.get("load_after"),
            "reps": len(ver),
            "limit": med([r["apply_ms"] for r in lim]),
            "limit_create": med([r["create_ms"] for r in lim]),
            "limit_all": [r["apply_ms"] for r in lim],
            "verify": med([r["wall_ms"] for r in ver]),
            "verify_all": [r["wall_ms"] for r in ver],
            "verify_total": med([r["timings_ms"].get("total") for r in ver]),
            "ratio": med(
                [v["wall_ms"] / l["apply_ms"] for v, l in zip(ver, lim) if l["apply_ms"]]
            ),
            "phases": ph,
            "phases_cache_first": phc1,
            "phases_cache_second": phc2,
            "other": ph.get("_untimed"),
            "limit_prisma": med([r["apply_ms"] for r in limp]) if limp else None,
            "probe": probe,
            "hwm": max([r["self_hwm_kb"] for r in ver] or [0]),
            "tree_maxrss": max([r["time_maxrss_kb"] or 0 for r in ver] or [0]),
            "pg_pss": max([r["pg_pss_peak_kb"] for r in ver] or [0]),
            "pg_rss": max([r["pg_rss_peak_kb"] for r in ver] or [0]),
            "verdict": sorted({r.get("verdict") for r in ver}),
            "checks": ver[0].get("checks") if ver else {},
            "squawk": med([r["wall_ms"] for r in sq]),
            "squawk_violations": med([r.get("violations") for r in sq]),
            "squawk_rss": max([r["time_maxrss_kb"] or 0 for r in sq] or [0]),
            "static": med([r["wall_ms"] for r in st]) if st else None,
            "static_lint": med([r["inner"]["lint_ms"] for r in st]) if st else None,
            "static_read": med([r["inner"]["read_ms"] for r in st]) if st else None,
            "static_raw": med([r["inner"]["raw"] for r in st]) if st else None,
            "static_findings": med([r["inner"]["findings"] for r in st]) if st else None,
            "static_rss": max([r["time_maxrss_kb"] or 0 for r in st] or [0]),
            "static_ratio": med(
                [a["wall_ms"] / b["wall_ms"] for a, b in zip(st, sq) if b["wall_ms"]]
            )
            if st
            else None,
            "static_phase_key": static_phase_key,
            "breakdown": (kind(n, "static_breakdown") or [None])[0],
            "cache_first": med([r["wall_ms"] for r in c1]) if c1 else None,
            "cache_second": med([r["wall_ms"] for r in c2]) if c2 else None,
            "cache_ratio": med(
                [b["wall_ms"] / a["wall_ms"] for a, b in zip(c1, c2) if a["wall_ms"]]
            )
            if c1 and c2
            else None,
        }
        S[n] = s

    big = max(sizes) if sizes else None
    L = []
    w = L.append
    w("<!-- generated:begin -->")
    if run.get("quick"):
        label = "quick run"
    elif sizes == [100, 1000, 5000] and run.get("tmp", "/tmp") in ("/tmp", "/dev/shm"):
        label = "full run"
    else:
        label = f"custom run: sizes {', '.join(n_fmt(n) for n in sizes)}, temp dirs in {run.get('tmp')}"
    w(f"_Generated by `benches/report.py` from `benches/out/results-{run.get('stamp', '?')}.jsonl` "
      f"({label}, {run.get('seconds', '?')} s)._")
    w("")
    w("## Machine")
    w("")
    w(f"- {mach['cores']} cores ({mach['cpu']}), {mach['mem_gib']:.0f} GiB RAM, Linux {mach['kernel']}")
    w(f"- PostgreSQL {pg_version or '?'} (`{run.get('pg_bin', '?')}`), a throwaway cluster as ci-gate's "
      "`local` provider makes it: `initdb --no-sync`, unix socket only, `fsync=off`, "
      "`synchronous_commit=off`, `full_page_writes=off`, `wal_level=minimal`, autovacuum and JIT off; "
      f"server start (initdb + start until it answers): {fmt_ms(server_start)} (median of 3)")
    w(f"- data directories, ci-gate's `TMPDIR` and the repositories under `{run.get('tmp', '/tmp')}` "
      f"({run.get('tmp_fs', '?')})")
    w(f"- ci-gate: {run.get('profile', '?')}, {mach['rustc']}; squawk-cli {run.get('squawk_version', '?')} "
      "from PyPI (the squawk-linter release ci-gate links)")
    loads = ", ".join(
        f"N={n_fmt(n)}: {S[n]['load_before']} → {S[n]['load_after']}" for n in sizes
    )
    during = [r["load1"] for r in rows if "load1" in r and r["kind"] in ("limit", "verify")]
    w(f"- load average (1 min) before → after each size: {loads}"
      + (f"; over the limit and verify measurements: median {statistics.median(during):.2f}, max {max(during):.2f}"
         if during else "")
      + " (other engineers' builds and tests share the 2 cores and the disk)")
    w("")
    w("## Results (medians)")
    w("")
    w("| migrations | files applied | limit | verify | verify / limit | ci-gate static | squawk | static / squawk | 2nd run with cache / 1st | ci-gate peak RSS | postgres peak (PSS) |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        s = S[n]
        cache = fmt_x(s["cache_ratio"]) if s["cache_ratio"] is not None else "n/a"
        w(f"| {n_fmt(n)} | {n_fmt(s['files'])} | {fmt_ms(s['limit'])} | {fmt_ms(s['verify'])} | "
          f"**{fmt_x(s['ratio'])}** | {fmt_ms(s['static'])} | {fmt_ms(s['squawk'])} | "
          f"**{fmt_x(s['static_ratio'])}** | {cache} | {fmt_mb(s['hwm'])} | {fmt_mb(s['pg_pss'])} |")
    w("")
    w("- **limit**: the same N + 5 files applied back to back on one connection by a minimal libpq loop "
      "(`benches/limit.py`: each file as one simple-query message, as Prisma ≤ 7.3 sends it; connect, "
      "read and apply timed; server already running, database already created) on the same server "
      "binaries and settings. No history table, no checks.")
    w("- **verify**: `ci-gate verify REPO --base main --provider local` end to end, wall time of the "
      "process (server start, base, the 5-migration pull request incrementally, seeded trace, drift, "
      "report), base = the N-migration `main`, head = the `pr` branch. Ratios are medians of the "
      "per-repetition ratios (limit and verify interleaved).")
    w("- **static / squawk**: process wall time over the N + 5 `migration.sql` files: "
      "`squawk --pg-version 15 --assume-in-transaction` vs `benches/static_layer.rs` (reads the "
      "files as verify does, then `ci_gate::check::squawk::lint_all` over them, in one process, on "
      "all cores as verify does; squawk-cli is one process too).")
    w("- **peak RSS**: ci-gate's own high-water mark (VmHWM); **postgres peak**: the summed PSS of the "
      "server processes ci-gate started, sampled every 100 ms (shared buffers counted once).")
    w("")
    reps = ", ".join(f"{n_fmt(n)}: {S[n]['reps']}" for n in sizes)
    w(f"Repetitions per size: {reps}. Spread (min–max) of the verify and limit times:")
    w("")
    w("| migrations | verify min–max | limit min–max |")
    w("|---:|---:|---:|")
    for n in sizes:
        s = S[n]
        w(f"| {n_fmt(n)} | {fmt_ms(min(s['verify_all']))} – {fmt_ms(max(s['verify_all']))} | "
          f"{fmt_ms(min(s['limit_all']))} – {fmt_ms(max(s['limit_all']))} |")
    w("")

    # ---------------------------------------------------------------- phases
    def phase_keys(*dicts):
        ks = [k for k in ORDER if any(k in d for d in dicts)]
        ks += sorted({k for d in dicts for k in d if k not in ORDER and k != "total" and not k.startswith("_")})
        return ks

    all_ph = [S[n][f] for n in sizes for f in ("phases", "phases_cache_first", "phases_cache_second")]
    keys = phase_keys(*all_ph)
    w("## Where verify's time goes (median `timings_ms`)")
    w("")
    w("| migrations | run | " + " | ".join(keys) + " | untimed | shutdown + exit | wall | limit |")
    w("|---:|---|" + "---:|" * (len(keys) + 4))
    for n in sizes:
        s = S[n]
        runs = [("verify", s["phases"], s["verify"])]
        if s["phases_cache_first"]:
            runs.append(("1st, --cache-dir", s["phases_cache_first"], s["cache_first"]))
            runs.append(("2nd, same cache", s["phases_cache_second"], s["cache_second"]))
        for label, ph, wall in runs:
            cells = [fmt_ms(ph.get(k)) for k in keys]
            w(f"| {n_fmt(n)} | {label} | " + " | ".join(cells) +
              f" | {fmt_ms(ph.get('_untimed'))} | {fmt_ms(ph.get('_exit'))} | {fmt_ms(wall)} | {fmt_ms(s['limit'])} |")
    w("")
    w("`provision` (initdb + server start) runs while `discover` reads the files (head from disk, base "
      "from git objects); `base` builds the N base migrations once (applied with Prisma's "
      "`_prisma_migrations` rows written together, or restored from the cache: with `--cache-dir` and "
      "the local provider the whole cluster is unpacked during `provision`, and `base` only checks "
      "its history); `clone` is `CREATE DATABASE … TEMPLATE`; `incremental` applies the 5 new ones "
      "in place; `trace` clones base (FILE_COPY), fills the tables the new migrations reach with "
      "synthetic rows and runs the 5 new migrations statement by statement; `scratch` and "
      "`inspect` are skipped when the pull request only adds migrations (same sequence); `static` is "
      "squawk on the new and edited migrations; `untimed` is inside verify's `total` but in no phase "
      "(config, git base resolution, plan, checks, report); `shutdown + exit` is the wall time after "
      "`total` (server stop, temp dir removal, process exit).")
    w("")
    w("Evidence from the same run (the limit's server, the same files):")
    w("")
    has_clone = any("clone" in S[n]["phases"] for n in sizes)
    w("| migrations | limit | limit + Prisma history rows | verify `base` | database size after N + 5 | clone, WAL_LOG (PG 15 default) | clone, FILE_COPY | "
      + ("verify `clone` | " if has_clone else "") + "tables | ANALYZE (empty tables) | verify `trace` |")
    w("|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if has_clone else "") + "---:|---:|---:|")
    for n in sizes:
        s = S[n]
        pr = s["probe"]
        size = f"{pr['db_bytes'] / 1024 / 1024:.0f} MB" if pr.get("db_bytes") else "–"
        w(f"| {n_fmt(n)} | {fmt_ms(s['limit'])} | {fmt_ms(s['limit_prisma'])} | {fmt_ms(s['phases'].get('base'))} | "
          f"{size} | {fmt_ms(pr.get('clone_wal_log_ms'))} | {fmt_ms(pr.get('clone_file_copy_ms'))} | "
          + (f"{fmt_ms(s['phases'].get('clone'))} | " if has_clone else "") +
          f"{pr.get('tables', '–')} | {fmt_ms(pr.get('analyze_ms'))} | "
          f"{fmt_ms(s['phases'].get('trace'))} |")
    w("")
    w("The history-rows loop sends, per migration, the INSERT before and the two UPDATEs after as "
      "prepared statements, as ci-gate's apply loop does (`src/run/prisma.rs`); the clone probe "
      "(first repetition only) clones the applied database both ways.")
    checks = S[big]["checks"] if big else {}
    if checks:
        w("")
        w(f"What verify reported at N={n_fmt(big)}: " + "; ".join(f"{k}: {v}" for k, v in checks.items() if v) +
          f"; verdict {', '.join(str(v) for v in S[big]['verdict'])}.")
    w("")

    # ---------------------------------------------------------------- linearity
    w("## Cost per migration")
    w("")
    w("| migrations | limit / file | verify `base` / migration | verify wall / migration | marginal verify cost (from previous size) | marginal limit cost |")
    w("|---:|---:|---:|---:|---:|---:|")
    prev = None
    for n in sizes:
        s = S[n]
        base = s["phases"].get("base")
        marg_v = marg_l = "–"
        if prev is not None:
            p = S[prev]
            marg_v = f"{(s['verify'] - p['verify']) / (n - prev):.2f} ms"
            marg_l = f"{(s['limit'] - p['limit']) / (n - prev):.2f} ms"
        w(f"| {n_fmt(n)} | {s['limit'] / s['files']:.2f} ms | "
          f"{(base / n if base else 0):.2f} ms | {s['verify'] / s['files']:.2f} ms | {marg_v} | {marg_l} |")
        prev = n
    w("")

    # ---------------------------------------------------------------- goals
    w("## Goals (issue 6)")
    w("")
    if big is None:
        w("No sizes measured.")
    else:
        b = S[big]
        # 1. verify <= 1.3x limit
        worst = max(sizes, key=lambda n: S[n]["ratio"] or 0)
        met = all((S[n]["ratio"] or 99) <= 1.3 for n in sizes)
        w(f"### verify ≤ 1.3× the limit: **{'met' if met else 'not met'}**")
        w("")
        w("Ratios: " + ", ".join(f"N={n_fmt(n)} {fmt_x(S[n]['ratio'])}" for n in sizes) + ".")
        if not met:
            for n in sizes:
                s = S[n]
                if (s["ratio"] or 0) <= 1.3:
                    continue
                gap = s["verify"] - s["limit"]
                ph = s["phases"]
                base_over = (ph.get("base") or 0) - s["limit"] * n / s["files"]
                parts = [
                    ("server start (provision; the limit's server was already running)", ph.get("provision")),
                    ("base replay beyond the limit's time for the same N files (per-migration bookkeeping)", base_over),
                    ("seeded trace of the 5 new migrations", ph.get("trace")),
                    ("clone", ph.get("clone")),
                    ("incremental (5 new)", ph.get("incremental")),
                    ("scratch", ph.get("scratch")),
                    ("inspect", ph.get("inspect")),
                    ("static lint", ph.get("static")),
                    ("untimed inside verify (git, plan, checks, report)", ph.get("_untimed")),
                    ("server shutdown and exit", ph.get("_exit")),
                ]
                parts = [(k, v) for k, v in parts if v and v > 0]
                if base_over <= 0:
                    parts.append(("base replay (with its history rows) no slower than the limit's loop", 0))
                parts.sort(key=lambda kv: -kv[1])
                w(f"- N={n_fmt(n)}: verify spends {fmt_ms(gap)} more than the limit ({fmt_ms(s['verify'])} vs "
                  f"{fmt_ms(s['limit'])}); " + ", ".join(f"{k}: {fmt_ms(v)}" if v else k for k, v in parts) + ".")
        w("")
        # 2. static vs squawk
        if b["static"] is None:
            w("### ci-gate's static layer at least as fast as squawk-cli: **not measured**")
            w("")
            w(f"{run.get('static_why') or 'the static-layer probe did not run'}.")
        else:
            met = all((S[n]["static_ratio"] or 99) <= 1.0 for n in sizes)
            w(f"### ci-gate's static layer at least as fast as squawk-cli: **{'met' if met else 'not met'}**")
            w("")
            w("static / squawk: " + ", ".join(
                f"N={n_fmt(n)} {fmt_x(S[n]['static_ratio'])} ({fmt_ms(S[n]['static'])} vs {fmt_ms(S[n]['squawk'])}; "
                f"reading {fmt_ms(S[n]['static_read'])}, linting {fmt_ms(S[n]['static_lint'])})"
                for n in sizes) + ".")
            w("")
            w(f"Same files, same rules: at N={n_fmt(big)} squawk prints {b['squawk_violations']:.0f} violations and "
              f"ci-gate's layer counts {b['static_raw']:.0f} raw squawk violations, of which it reports "
              f"{b['static_findings']:.0f} with its Prisma-aware defaults and dismissals. Peak RSS: "
              f"static {fmt_mb(b['static_rss'])}, squawk {fmt_mb(b['squawk_rss'])}.")
            bds = [(n, S[n]["breakdown"]) for n in sizes if S[n]["breakdown"]]
            if bds:
                w("")
                w("In process, same files (one pass each, `static_layer --breakdown`): " + "; ".join(
                    f"N={n_fmt(n)}: squawk-syntax parse {fmt_ms(bd['parse_ms'])}, parse + squawk-linter with "
                    f"squawk's default rules {fmt_ms(bd['squawk_lib_ms'])}, ci-gate's `lint` "
                    f"{fmt_ms(bd['cigate_lint_ms'])} ({bd['cigate_lint_ms'] / bd['squawk_lib_ms']:.2f}× the library)"
                    for n, bd in bds) + ".")
                w("")
            if b["static_phase_key"]:
                w(f"Inside verify the static layer is the `{b['static_phase_key']}` phase: "
                  f"{fmt_ms(b['phases'].get(b['static_phase_key']))} at N={n_fmt(big)}.")
            else:
                w("`verify` does not time (or does not yet run) the static layer as a phase of its own.")
        w("")
        # 3. memory
        met = b["hwm"] < 200 * 1024
        w(f"### Peak memory under 200 MB at {n_fmt(big)} migrations: **{'met' if met else 'not met'}**"
          + ("" if big >= 5000 else f" (largest size measured: {n_fmt(big)})"))
        w("")
        w("ci-gate's own peak RSS: " + ", ".join(f"N={n_fmt(n)} {fmt_mb(S[n]['hwm'])}" for n in sizes) +
          ". The PostgreSQL server it starts (summed PSS, sampled): " +
          ", ".join(f"N={n_fmt(n)} {fmt_mb(S[n]['pg_pss'])}" for n in sizes) +
          f"; `/usr/bin/time -v` on the whole tree (largest single process) at N={n_fmt(big)}: "
          f"{fmt_mb(b['tree_maxrss'])}.")
        w("")
        # 4. linear
        if len(sizes) >= 2:
            a, z = sizes[-2], sizes[-1]
            sa = (S[a]["verify"] - S[sizes[0]]["verify"]) / (a - sizes[0]) if a != sizes[0] else None
            sz = (S[z]["verify"] - S[a]["verify"]) / (z - a)
            la = S[a]["limit"] / S[a]["files"]
            lz = S[z]["limit"] / S[z]["files"]
            if sa:
                growth = sz / sa
                linear = growth <= 1.25
                w(f"### Cost linear in N: **{'met' if linear else 'not met'}**")
                w("")
                w(f"Marginal verify cost per migration: {sa:.2f} ms between {n_fmt(sizes[0])} and {n_fmt(a)}, "
                  f"{sz:.2f} ms between {n_fmt(a)} and {n_fmt(z)} ({growth:.2f}×; linear = within 1.25×). "
                  f"The limit's own cost per file: {la:.2f} ms at {n_fmt(a)}, {lz:.2f} ms at {n_fmt(z)}.")
            else:
                w("### Cost linear in N: needs three sizes")
        w("")
        # 5. cache
        if b["cache_ratio"] is None:
            w("### Base cache, second run ≤ 0.2× the first: **not available**")
            w("")
            w("This build's `ci-gate verify --help` lists no `--cache-dir`; the harness measures first vs "
              "second run with the same `--cache-dir` as soon as it does.")
        else:
            met = b["cache_ratio"] <= 0.2
            w(f"### Base cache, second run ≤ 0.2× the first: **{'met' if met else 'not met'}** (at N={n_fmt(big)})")
            w("")
            w("second / first: " + ", ".join(
                f"N={n_fmt(n)} {fmt_x(S[n]['cache_ratio'])} ({fmt_ms(S[n]['cache_second'])} vs {fmt_ms(S[n]['cache_first'])})"
                for n in sizes) + ".")
            if not met:
                p2 = b["phases_cache_second"]
                parts = [(k, v) for k, v in p2.items() if k not in ("total", "discover") and v]
                parts = [("untimed" if k == "_untimed" else "shutdown + exit" if k == "_exit" else k, v) for k, v in parts]
                parts.sort(key=lambda kv: -kv[1])
                w("")
                w(f"What the second run still spends at N={n_fmt(big)} ({fmt_ms(b['cache_second'])}): " +
                  ", ".join(f"{k} {fmt_ms(v)}" for k, v in parts) +
                  f". The first run's `base` is {fmt_ms(b['phases_cache_first'].get('base'))} "
                  f"(replay + writing the entry), the second's {fmt_ms(p2.get('base'))} (restoring it).")
        w("")
    docker_section(w, run, by, sizes)
    w("<!-- generated:end -->")
    generated = "\n".join(L)

    analysis = (
        "<!-- analysis:begin -->\n"
        "## Analysis\n\n_Not written yet for this run._\n"
        "<!-- analysis:end -->"
    )
    if os.path.exists(out_path):
        old = open(out_path).read()
        m = re.search(r"<!-- analysis:begin -->.*?<!-- analysis:end -->", old, re.S)
        if m:
            analysis = m.group(0)
    head = (
        "# Benchmarks\n\n"
        "How fast `ci-gate verify` is against the physical limit (applying the same SQL with nothing "
        "else), how its static layer compares with squawk-cli, how the cost grows with the length of "
        "the history (issue 6), and how the docker provider compares with the local one (issue 14). Reproduce "
        "with one command (about 20 minutes here with the docker runs, plus the release build; on "
        "`/dev/shm` when ci-gate itself would use it, `--tmp /tmp` to measure on disk, `--no-docker` "
        "to leave the docker provider out):\n\n"
        "```sh\nbash benches/run.sh            # 100, 1,000 and 5,000 migrations → BENCHMARKS.md\n"
        "bash benches/run.sh --quick    # 100 and 1,000 only → benches/out/BENCHMARKS.quick.md\n```\n\n"
        "Histories come from the test suite's generator (`tests/common/history.rs`, a Prisma 6.19 "
        "SaaS-style history: tables, enums, relations, indexes, column additions and type changes, "
        "backfills, a `CREATE INDEX CONCURRENTLY` file every 50), committed to a git repository as "
        "`main`, with a `pr` branch adding the next 5 migrations. Absolute times are context; the "
        "ratios, measured in the same run, are the result.\n"
    )
    with open(out_path, "w") as f:
        f.write(head + "\n" + generated + "\n\n" + analysis + "\n")


if __name__ == "__main__":
    main()
