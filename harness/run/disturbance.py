"""What disturbed a run, read from the evidence the runner took around its timed loop (`timing_evidence`:
device_runners/native/evidence.h and device_runners/evidence.py): a timed thread that was runnable but waited for
a CPU, CPU steal from a neighbouring VM, iowait, a clock that moved (the canary before and after the loop). Each
reason is one phrase a report can print next to `noisy`."""

from __future__ import annotations

from typing import Any

# A timed thread that waited for a CPU more than this share of the run lacked a core for part of it (quiet runs
# here wait well under 1%; one CPU hog beside a 2-thread run makes both threads wait 33-37%).
WAIT_SHARE = 0.05
STEAL_SHARE = 0.02  # of the whole machine's CPU time during the run
IOWAIT_SHARE = 0.10
# The clock canary (a fixed chain of dependent multiply-adds timed before and after the loop) taking this much
# longer on one side than the other: the machine's clock moved during the run. Quiet runs here differ by under 2%.
CANARY_SHARE = 0.05
# A core-to-core round trip (evidence.h core_round_trip_ns) this many times the near level (near_level): the
# run's two CPUs were far apart (here 60-120 ns near, 400-500 ns far: another CCD or socket), and a 2-thread
# program whose threads meet after every operator ran 10-35% slower for it (docs/statistics.md#far-cores).
FAR_FACTOR = 2.0
FAR_RUN_SHARE = 0.1  # a run that spent more than this share of its probes far apart says so
BUSY_SHARE = 0.2  # a thread on a CPU or waiting for one this share of the run is one of the timed threads


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def timed_threads(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """The threads that worked during the timed loop (the caller thread and the pool's workers), not the idle ones."""
    wall = _num(evidence.get("wall_s")) or 0.0
    out = []
    for t in evidence.get("threads") or []:
        if not isinstance(t, dict):
            continue
        busy = (_num(t.get("cpu_s")) or 0.0) + (_num(t.get("wait_s")) or 0.0)
        if wall > 0 and busy >= BUSY_SHARE * wall:
            out.append(t)
    return out


def _contention(evidence: dict[str, Any], wall: float) -> list[str]:
    """The reasons that say other work took CPU time from the run: a timed thread waited for a CPU, steal, iowait."""
    found = []
    threads = timed_threads(evidence)
    waits = [(_num(t.get("wait_s")), _num(t.get("cpu_s")) or 0.0) for t in threads]
    waits = [(w, c) for w, c in waits if w is not None]
    if waits:
        w, c = max(waits)
        if w / wall > WAIT_SHARE:
            n = sum(1 for x, _ in waits if x / wall > WAIT_SHARE)
            found.append(f"{n} of {len(threads)} timed threads waited for a CPU, up to {w / wall:.0%} of the run "
                         f"(that one got {c / wall:.0%} of a core)")
    steal = _num(evidence.get("steal_share"))
    if steal is not None and steal > STEAL_SHARE:
        found.append(f"CPU steal {steal:.0%} (a neighbouring VM took the host's CPUs)")
    iowait = _num(evidence.get("iowait_share"))
    if iowait is not None and iowait > IOWAIT_SHARE:
        found.append(f"iowait {iowait:.0%} of the machine's time")
    return found


def contended(evidence: dict[str, Any] | None) -> bool | None:
    """Whether other work took CPU time from the run's timed threads (waits for a CPU, steal, iowait); None without
    evidence to say (no timed loop, the Python runner, a kernel without schedstat's wait times)."""
    if not isinstance(evidence, dict) or all(_num(t.get("wait_s")) is None for t in timed_threads(evidence)):
        return None
    wall = _num(evidence.get("wall_s"))
    return bool(_contention(evidence, wall)) if wall and wall > 0 else None


def reasons(evidence: dict[str, Any] | None) -> list[str]:
    """Why this run's timings were disturbed, one phrase each; [] for a quiet run or no evidence."""
    if not isinstance(evidence, dict):
        return []
    wall = _num(evidence.get("wall_s"))
    if not wall or wall <= 0:
        return []
    found = _contention(evidence, wall)
    before, after = canary(evidence)
    if before and after and max(before, after) / min(before, after) - 1 > CANARY_SHARE:
        found.append(f"the CPU's clock moved during the run: the canary took {after / before - 1:+.0%} "
                     "after the timed loop against before it")
    settle = evidence.get("settle")
    if isinstance(settle, dict) and settle.get("passed") is False and _num(settle.get("waited_s")):
        found.append(f"its two CPUs stayed far apart through a {_num(settle['waited_s']):.0f} s wait for them to come "
                     f"close (a core round trip of {_num(settle.get('first_ns')) or 0:.0f} ns against the campaign's "
                     f"near level {_num(settle.get('near_ns')) or 0:.0f} ns)")
    probes = core_probes(evidence)
    share = far_share(probes)
    if share is not None and share > FAR_RUN_SHARE:
        found.append(_far_phrase(probes, near_level(probes), "near"))
    return found


def canary(evidence: dict[str, Any] | None) -> tuple[float | None, float | None]:
    """The clock canary's ns per step before and after the timed loop, or None where the runner did not time it."""
    c = evidence.get("canary") if isinstance(evidence, dict) else None
    if not isinstance(c, dict):
        return None, None
    before, after = _num(c.get("before_ns")), _num(c.get("after_ns"))
    return (before if before and before > 0 else None), (after if after and after > 0 else None)


def summary(evidence: dict[str, Any] | None) -> dict[str, Any] | None:
    """The figures a record keeps of the evidence: per timed thread its core and wait shares, steal, iowait."""
    if not isinstance(evidence, dict) or not _num(evidence.get("wall_s")):
        return None
    wall = _num(evidence["wall_s"])
    threads = [{"core_share": round((_num(t.get("cpu_s")) or 0.0) / wall, 3),
                "wait_share": round(_num(t.get("wait_s")) / wall, 3) if _num(t.get("wait_s")) is not None else None,
                "nivcsw": t.get("nivcsw"), "migrations": t.get("migrations")} for t in timed_threads(evidence)]
    return {"wall_s": round(wall, 3), "threads": threads, "steal_share": evidence.get("steal_share"),
            "iowait_share": evidence.get("iowait_share"), "procs_running": evidence.get("procs_running"),
            "loadavg": evidence.get("loadavg"), "canary_ns": [round(x, 4) if x else None for x in canary(evidence)],
            "cores_ns": _thin([round(x, 1) for x in core_probes(evidence)], 121),
            "settle": evidence.get("settle") if isinstance(evidence.get("settle"), dict) else None,
            "reasons": reasons(evidence), "contended": contended(evidence)}


def kept(rec) -> dict[str, Any]:
    """The disturbance summary a stored run keeps (summary() of its runner's evidence), or {} when it has none."""
    found = ((getattr(rec, "device_info_after", None) or {}).get("during") or {}).get("disturbance")
    return found if isinstance(found, dict) else {}


def run_canary(rec) -> float | None:
    """A run's clock canary (the mean of before and after, ns per step), or None when its runner did not time one."""
    found = kept(rec)
    values = [_num(x) for x in (found.get("canary_ns") or []) if _num(x)]
    return sum(values) / len(values) if values else None


def core_probes(evidence: dict[str, Any] | None) -> list[float]:
    """The core-to-core round trips (ns) the native runner measured before, during (about 4 a second) and after the
    timed loop (evidence.h core_round_trip_ns), in time order; [] where it measured none (one thread, one CPU
    allowed, the Python runner)."""
    c = evidence.get("cores") if isinstance(evidence, dict) else None
    if not isinstance(c, dict):
        return []
    during = [_num(p[1]) for p in c.get("during") or [] if isinstance(p, list) and len(p) == 2]
    values = [_num(c.get("before_ns"))] + during + [_num(c.get("after_ns"))]
    return [x for x in values if x and x > 0]


def near_level(probes: list[float]) -> float | None:
    """The round trip of near CPUs: the median of the probes within FAR_FACTOR of the fastest (near probes spread
    60-130 ns here, so the fastest alone would make a slow near probe look far)."""
    if not probes:
        return None
    near = sorted(x for x in probes if x <= FAR_FACTOR * min(probes))
    return near[len(near) // 2]


def far_share(probes: list[float], near: float | None = None) -> float | None:
    """The share of the probes over FAR_FACTOR times the near level (the probes' own, or a given one); None with
    fewer than two probes."""
    if len(probes) < 2:
        return None
    bar = FAR_FACTOR * (near or near_level(probes))
    return sum(1 for x in probes if x > bar) / len(probes)


def _thin(values: list, at_most: int) -> list:
    """Every k-th value, first and last kept, so that at most `at_most` remain (a long run's probes, summarised)."""
    if len(values) <= at_most:
        return values
    step = (len(values) - 1) / (at_most - 1)
    return [values[round(i * step)] for i in range(at_most)]


def _far_phrase(probes: list[float], near: float, against: str) -> str:
    """'its two CPUs were far apart for 56% of the timed loop (a core-to-core round trip of 460 ns against 99 ns
    near ...)': the share of probes over FAR_FACTOR x near, and the median of those far probes."""
    far = sorted(x for x in probes if x > FAR_FACTOR * near)
    return (f"its two CPUs were far apart for {len(far) / len(probes):.0%} of the timed loop (a core-to-core round "
            f"trip of {far[len(far) // 2]:.0f} ns against {near:.0f} ns {against}; docs/statistics.md#far-cores)")


def run_core_probes(rec) -> list[float]:
    """A stored run's core round trips (ns), as its disturbance summary kept them."""
    values = kept(rec).get("cores_ns")
    return [x for x in (_num(v) for v in values) if x and x > 0] if isinstance(values, list) else []


def far_core_runs(runs: list) -> dict[str, str]:
    """Runs whose two CPUs were far apart for much of the timed loop against the near level of all the runs' probes,
    on the same device and runner (a run near for part of its loop says so in its own reasons). run_id -> phrase."""
    pooled: dict[tuple, list[float]] = {}
    for r in runs:
        pooled.setdefault((r.device, r.runner), []).extend(run_core_probes(r))
    levels = {k: near_level(v) for k, v in pooled.items()}
    out = {}
    for r in runs:
        probes, ref = run_core_probes(r), levels.get((r.device, r.runner))
        share = far_share(probes, ref) if ref else None
        own = far_share(probes)
        if share is not None and share > FAR_RUN_SHARE and (own is None or own <= FAR_RUN_SHARE):
            out[r.run_id] = _far_phrase(probes, ref, "near in these runs")
    return out


def slow_clock_runs(runs: list, reference: list | None = None) -> dict[str, str]:
    """Runs whose machine ran slower than the reference runs' (default: the runs themselves): their clock canary
    took more than CANARY_SHARE longer than the reference median, on the same device and runner. run_id -> phrase."""
    import statistics

    def key(r):
        return (r.device, r.runner)

    base: dict[tuple, list[float]] = {}
    for r in reference if reference is not None else runs:
        c = run_canary(r)
        if c:
            base.setdefault(key(r), []).append(c)
    out = {}
    for r in runs:
        c, ref = run_canary(r), base.get(key(r))
        if c and ref and len(ref) >= (1 if reference is not None else 3):
            med = statistics.median(ref)
            if c / med - 1 > CANARY_SHARE:
                out[r.run_id] = (f"the machine ran slower: the clock canary took {c / med - 1:+.0%} against the "
                                 f"median of {len(ref)} {'reference ' if reference is not None else ''}runs")
    return out
