"""What the machine did to a runner while it timed (the Python runner's twin of native/evidence.h): each thread's
CPU time and the time it was runnable but waited for a CPU (schedstat), involuntary context switches and migrations, and the machine's CPU steal and iowait, sampled around the
timed loop. Files that cannot be read are left out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _field(text: str, key: str) -> int | None:
    at = text.find(key)
    if at < 0:
        return None
    digits = "".join(c for c in text[at + len(key):].split("\n", 1)[0] if c.isdigit())
    return int(digits) if digits else None


def sample() -> dict[str, Any]:
    threads = {}
    for task in Path("/proc/self/task").glob("[0-9]*"):
        stat = _read(task / "stat")
        rest = stat.rsplit(")", 1)[-1].split()
        if len(rest) < 13:
            continue
        cpu_s, wait_s = (int(rest[11]) + int(rest[12])) / _HZ, None
        sched = _read(task / "schedstat").split()
        if len(sched) >= 2 and (int(sched[0]) or int(sched[1])):  # ns on a CPU, ns runnable but waiting for one
            cpu_s, wait_s = int(sched[0]) / 1e9, int(sched[1]) / 1e9
        threads[int(task.name)] = {
            "cpu_s": cpu_s, "wait_s": wait_s,
            "nivcsw": _field(_read(task / "status"), "nonvoluntary_ctxt_switches:"),
            "migrations": _field(_read(task / "sched"), "se.nr_migrations"),
        }
    cpu = _read("/proc/stat").split("\n", 1)[0].split()
    machine = None
    if len(cpu) >= 9 and cpu[0] == "cpu":
        v = [int(x) for x in cpu[1:9]]
        machine = {"total": sum(v), "iowait": v[4], "steal": v[7]}
    return {"threads": threads, "machine": machine}


def canary_ns_per_step() -> float:
    """The machine's speed, measured as native/evidence.h does: a fixed chain of dependent multiply-adds, best of
    three short tries, in ns per step (here through the interpreter: compare it with this runner's own runs only)."""
    import time

    best = float("inf")
    for attempt in range(3):
        x, a, b = 1.0 + attempt * 1e-9, 0.9999999, 1e-7
        t0 = time.perf_counter_ns()
        for _ in range(1 << 14):
            x = x * a + b
        best = min(best, (time.perf_counter_ns() - t0) / (1 << 14))
    return best


def diff(a: dict[str, Any], b: dict[str, Any], wall_s: float, canary: tuple[float, float] | None = None
         ) -> dict[str, Any]:
    """The evidence dict both runners write as `timing_evidence` (canary: ns per step before and after the loop)."""
    threads = []
    for tid, tb in sorted(b["threads"].items()):
        ta = a["threads"].get(tid)
        if ta is None:
            continue
        threads.append({"tid": tid, "cpu_s": tb["cpu_s"] - ta["cpu_s"],
                        **{k: (tb[k] - ta[k] if tb[k] is not None and ta[k] is not None else None)
                           for k in ("wait_s", "nivcsw", "migrations")}})
    out: dict[str, Any] = {"wall_s": wall_s, "threads": threads, "steal_share": None, "iowait_share": None}
    ma, mb = a["machine"], b["machine"]
    if ma and mb and mb["total"] > ma["total"]:
        dt = mb["total"] - ma["total"]
        out.update(steal_share=(mb["steal"] - ma["steal"]) / dt, iowait_share=(mb["iowait"] - ma["iowait"]) / dt)
    out["procs_running"] = _field(_read("/proc/stat"), "procs_running")
    if canary:
        out["canary"] = {"before_ns": canary[0], "after_ns": canary[1]}
    out["loadavg"] = " ".join(_read("/proc/loadavg").split()[:3])
    return out
