"""Run one command under `/usr/bin/time -v` and report its wall time and peak memory.

    python measure.py [--interval 0.1] -- CMD ARGS...

Prints one JSON line:
  rc              the command's exit code
  wall_ms         wall time, fork to exit (monotonic clock)
  self_hwm_kb     the command's own peak RSS: VmHWM of its process, read from /proc while it runs
                  (a high-water mark, so sampling cannot miss the peak except in its last interval)
  time_maxrss_kb  /usr/bin/time -v "Maximum resident set size": the largest peak of ANY single
                  process in the tree it reaped (the command, or a postgres backend it started)
  pg_pss_peak_kb  peak over samples of the summed PSS of the command's descendant processes
                  (the throwaway PostgreSQL server: shared memory counted once, proportionally)
  pg_rss_peak_kb  same with RSS (shared buffers counted once per process that touched them)
  samples         number of samples taken
The command's stdout/stderr go to --log (default: discarded).
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time


def read(path: str) -> str:
    try:
        with open(path, "r") as f:
            return f.read()
    except OSError:
        return ""


def status_kb(pid: int, field: str) -> int:
    m = re.search(rf"^{field}:\s+(\d+) kB", read(f"/proc/{pid}/status"), re.M)
    return int(m.group(1)) if m else 0


def children_map() -> dict:
    kids = {}
    for e in os.scandir("/proc"):
        if not e.name.isdigit():
            continue
        stat = read(f"/proc/{e.name}/stat")
        if not stat:
            continue
        try:
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(e.name))
    return kids


def descendants(root: int, kids: dict) -> list:
    out, todo = [], list(kids.get(root, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def rollup_kb(pid: int) -> tuple:
    txt = read(f"/proc/{pid}/smaps_rollup")
    rss = re.search(r"^Rss:\s+(\d+) kB", txt, re.M)
    pss = re.search(r"^Pss:\s+(\d+) kB", txt, re.M)
    return (int(rss.group(1)) if rss else 0, int(pss.group(1)) if pss else 0)


def main() -> int:
    args = sys.argv[1:]
    interval, log = 0.1, os.devnull
    while args and args[0] != "--":
        if args[0] == "--interval":
            interval = float(args[1])
            args = args[2:]
        elif args[0] == "--log":
            log = args[1]
            args = args[2:]
        else:
            print(f"measure.py: unknown option {args[0]}", file=sys.stderr)
            return 2
    cmd = args[1:]
    fd, timefile = tempfile.mkstemp(prefix="measure-time-")
    os.close(fd)
    try:
        with open(log, "ab") as logf:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                ["/usr/bin/time", "-v", "-o", timefile] + cmd,
                stdout=logf,
                stderr=logf,
                stdin=subprocess.DEVNULL,
            )
            main_pid = None
            self_hwm = pss_peak = rss_peak = samples = 0
            while proc.poll() is None:
                kids = children_map()
                if main_pid is None:
                    c = kids.get(proc.pid, [])
                    main_pid = c[0] if c else None
                if main_pid is not None:
                    self_hwm = max(self_hwm, status_kb(main_pid, "VmHWM"))
                    rss = pss = 0
                    for p in descendants(main_pid, kids):
                        r, s = rollup_kb(p)
                        rss += r
                        pss += s
                    rss_peak, pss_peak = max(rss_peak, rss), max(pss_peak, pss)
                    samples += 1
                time.sleep(interval)
            rc = proc.wait()
            wall = time.perf_counter() - t0
        tv = read(timefile)
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", tv)
        st = re.search(r"Exit status: (\d+)", tv)
        if st:
            rc = int(st.group(1))
        print(
            json.dumps(
                {
                    "rc": rc,
                    "wall_ms": round(wall * 1e3, 1),
                    "self_hwm_kb": self_hwm,
                    "time_maxrss_kb": int(m.group(1)) if m else None,
                    "pg_pss_peak_kb": pss_peak,
                    "pg_rss_peak_kb": rss_peak,
                    "samples": samples,
                }
            )
        )
        return 0
    finally:
        os.unlink(timefile)


if __name__ == "__main__":
    sys.exit(main())
