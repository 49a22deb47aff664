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
import threading
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
            state = {"main": None, "hwm": 0, "pss": 0, "rss": 0, "samples": 0}
            done = threading.Event()

            def sample(time_pid: int) -> None:
                # Runs beside the command; the main thread only waits, so the wall time is exact.
                while not done.is_set():
                    kids = children_map()
                    if state["main"] is None:
                        c = kids.get(time_pid, [])
                        state["main"] = c[0] if c else None
                    if state["main"] is not None:
                        hwm = status_kb(state["main"], "VmHWM")
                        state["hwm"] = max(state["hwm"], hwm)
                        rss = pss = 0
                        for p in descendants(state["main"], kids):
                            r, s_ = rollup_kb(p)
                            rss += r
                            pss += s_
                        state["rss"], state["pss"] = max(state["rss"], rss), max(state["pss"], pss)
                        state["samples"] += 1
                    done.wait(interval)

            t0 = time.perf_counter()
            proc = subprocess.Popen(
                ["/usr/bin/time", "-v", "-o", timefile] + cmd,
                stdout=logf,
                stderr=logf,
                stdin=subprocess.DEVNULL,
            )
            sampler = threading.Thread(target=sample, args=(proc.pid,), daemon=True)
            sampler.start()
            rc = proc.wait()
            wall = time.perf_counter() - t0
            done.set()
            sampler.join()
            self_hwm, pss_peak, rss_peak, samples = state["hwm"], state["pss"], state["rss"], state["samples"]
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
