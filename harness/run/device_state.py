"""What changes a device's speed around one run: the model check, the thermal gate before it, and the state sampled
during it (frequency caps and clocks, time_in_state, temperatures, battery, screen), with the evidence of throttling.

Read as the shell user, without root: a file SELinux denies is recorded as unreadable and never fails a run.
Under dynamic governors (schedutil, sched_pixel) the current clock follows load and cpuinfo_max_freq is a
constant, so throttling shows as a lower scaling_max_freq (a cap) or as time moving to lower frequencies in
cpufreq/stats/time_in_state; both are compared against the state at the start of the run.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from typing import Any, Callable

from device_runners.base import Transport, TransportError
from device_runners.devinfo import LIGHT_STATE_SCRIPT, STATE_SCRIPT, _cpus, parse_light_state, parse_state
from common.errors import DeviceError

SAMPLE_INTERVAL_S = 5.0  # light samples (caps and clocks) while the runner runs
GATE_POLL_S = 5.0  # how often the thermal gate reads the temperatures
LOW_FREQ_SHARE = 0.5  # a pinned cluster spending more of the run than this below 90% of its cap is throttled


def read_state(transport: Transport) -> dict[str, Any]:
    """One full state snapshot; {"error": ...} when the device cannot be asked (never raises)."""
    try:
        rc, out, err = transport.shell(STATE_SCRIPT, timeout=60)
    except (TransportError, TimeoutError, OSError) as e:
        return {"error": str(e)}
    return parse_state(out)


def check_model(profile, info: dict[str, Any], enabled: bool = True) -> None:
    """Refuse a device whose reported model is not the profile's (a Pixel 8 run as `pixel7` would be mislabelled).
    The profile's model may be a glob or several separated by |."""
    if not enabled or not profile.model:
        return
    reported = (info or {}).get("model")
    if not reported:
        return  # the device does not say: nothing to compare (the snapshot records that)
    if not any(fnmatch.fnmatchcase(reported, pat.strip()) for pat in profile.model.split("|")):
        where = info.get("serial") or info.get("address") or ""
        raise DeviceError(f"device {profile.name} expects model {profile.model!r} but {where or 'the device'} "
                          f"reports {reported!r}: choose the right --serial/--address or profile, or pass "
                          "--no-check-model")


def _gate_temps(state: dict[str, Any]) -> dict[str, float]:
    temps = {}
    if (state.get("battery") or {}).get("temp_c") is not None:
        temps["battery"] = state["battery"]["temp_c"]
    temps.update({k: v for k, v in (state.get("thermal_c") or {}).items() if "skin" in k.lower()})
    return temps


def thermal_gate(transport: Transport, limit_c: float, cooldown_s: float, device: str,
                 progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Wait until the battery and skin temperatures are at or below limit_c, for at most cooldown_s.
    Returns what it saw; raises DeviceError when they never settle."""
    start = time.monotonic()
    readings = []
    while True:
        temps = _gate_temps(read_state(transport))
        waited = round(time.monotonic() - start, 1)
        readings.append({"t_s": waited, **temps})
        gate = {"limit_c": limit_c, "cooldown_s": cooldown_s, "waited_s": waited, "readings": readings[-20:]}
        if not temps:
            return {**gate, "passed": None, "note": "no battery or skin temperature readable: gate not applied"}
        hot = {k: v for k, v in temps.items() if v > limit_c}
        if not hot:
            return {**gate, "passed": True}
        if waited >= cooldown_s:
            what = ", ".join(f"{k} {v:.1f} °C" for k, v in sorted(hot.items()))
            raise DeviceError(f"device {device}: {what} still above --max-start-temp {limit_c:g} after "
                              f"--cooldown {cooldown_s:g} s")
        progress(f"cooling down: {', '.join(f'{k} {v:.1f} C' for k, v in hot.items())} > {limit_c:g} C")
        time.sleep(min(GATE_POLL_S, max(cooldown_s - waited, 0.05)))


QUIET_BUSY = 0.15  # share of the device's CPU time others use, above which a host is not quiet enough to time on
QUIET_PROBE = "head -n 1 /proc/stat; sleep 0.5; head -n 1 /proc/stat"


def busy_share(transport: Transport) -> float | None:
    """The share of all CPUs' time that was busy (not idle, not iowait) over half a second, before our runner
    starts (so: everything else); None where /proc/stat cannot be read."""
    try:
        rc, out, _ = transport.shell(QUIET_PROBE, timeout=30)
    except (TransportError, TimeoutError, OSError):
        return None
    rows = [ln.split()[1:] for ln in out.splitlines() if ln.startswith("cpu ")]
    if rc != 0 or len(rows) != 2:
        return None
    try:
        a, b = ([int(x) for x in r[:8]] for r in rows)
    except ValueError:
        return None
    total = sum(b) - sum(a)
    idle = (b[3] + b[4]) - (a[3] + a[4])
    return max(0.0, 1 - idle / total) if total > 0 else None


def quiet_gate(transport: Transport, wait_s: float, device: str,
               progress: Callable[[str], None] = lambda s: None, seen: dict | None = None) -> dict[str, Any]:
    """Wait, up to wait_s, until other processes use at most QUIET_BUSY of the device's CPUs, as the thermal gate
    waits for temperatures. It never fails a run: it records what it saw, and a run that starts on a busy device
    shows it in its own evidence (harness/run/disturbance.py). `seen`: a passed reading of this device moments ago
    ({"from_run", "age_s"}, from the campaign's scheduler) that is recorded as this run's, without probing."""
    if seen:
        return {"limit": QUIET_BUSY, "wait_s": wait_s, "waited_s": 0.0, "passed": True, "reused": dict(seen)}
    start, readings = time.monotonic(), []
    while True:
        busy = busy_share(transport)
        waited = round(time.monotonic() - start, 1)
        readings.append({"t_s": waited, "busy_share": None if busy is None else round(busy, 3)})
        gate = {"limit": QUIET_BUSY, "wait_s": wait_s, "waited_s": waited, "readings": readings[-20:]}
        if busy is None:
            return {**gate, "passed": None, "note": "/proc/stat unreadable: gate not applied"}
        if busy <= QUIET_BUSY:
            return {**gate, "passed": True}
        if waited >= wait_s:
            progress(f"{device} still busy ({busy:.0%} of its CPUs) after {wait_s:g} s: running anyway")
            return {**gate, "passed": False}
        progress(f"waiting for {device} to be quiet: {busy:.0%} of its CPUs busy with other work")
        time.sleep(min(2.0, max(wait_s - waited, 0.05)))


class Sampler:
    """Light samples of every policy's cap and clock in a thread, from start() until stop()."""

    def __init__(self, transport: Transport, interval_s: float | None = None):
        self.transport = transport
        self.interval = SAMPLE_INTERVAL_S if interval_s is None else interval_s
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._t0 = 0.0

    def start(self) -> "Sampler":
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                rc, out, _ = self.transport.shell(LIGHT_STATE_SCRIPT, timeout=30)
            except (TransportError, TimeoutError, OSError):
                return  # the device went away: the run itself will say so
            if rc == 0:
                self.samples.append({"t_s": round(time.monotonic() - self._t0, 2), **parse_light_state(out)})

    def stop(self) -> list[dict[str, Any]]:
        self._stop.set()
        self._thread.join(timeout=35)
        return self.samples


def _pinned_policies(before: dict[str, Any], affinity: str | None) -> list[str]:
    """The policies whose CPUs the run was pinned to (all of them when unpinned)."""
    policies = before.get("policies") or {}
    if not affinity:
        return []
    cpus = set(_cpus(affinity))
    return [name for name, p in policies.items() if cpus & set(p.get("cpus") or [])]


def throttle_evidence(before: dict[str, Any], samples: list[dict[str, Any]], after: dict[str, Any],
                      affinity: str | None) -> list[str]:
    """Why the run looks throttled, one phrase per reason: a cap below its value at the start (in a sample or at
    the end), or a pinned cluster spending most of the run below 90% of its cap."""
    reasons = []
    policies = (before or {}).get("policies") or {}
    for name, p in sorted(policies.items()):
        start = p.get("cap_khz")
        if not start:
            continue
        seen = [(s["t_s"], s[name]["cap_khz"]) for s in samples if (s.get(name) or {}).get("cap_khz")]
        end = (((after or {}).get("policies") or {}).get(name) or {}).get("cap_khz")
        if end:
            seen.append(("end", end))
        low = min(seen, key=lambda x: x[1], default=None)
        if low and low[1] < start:
            at = f"at {low[0]} s" if low[0] != "end" else "at the end"
            reasons.append(f"{name} (cpus {_span(p.get('cpus'))}) cap {start // 1000} -> {low[1] // 1000} MHz {at}")
    for name in _pinned_policies(before or {}, affinity):
        b = policies[name].get("time_in_state")
        a = ((((after or {}).get("policies") or {}).get(name)) or {}).get("time_in_state")
        cap = policies[name].get("cap_khz") or policies[name].get("max_khz")
        if not b or not a or not cap:
            continue
        delta = {int(f): a.get(f, 0) - b.get(f, 0) for f in a}
        total = sum(v for v in delta.values() if v > 0)
        if total <= 0:
            continue
        low = sum(v for f, v in delta.items() if v > 0 and f < 0.9 * cap)
        if low / total > LOW_FREQ_SHARE:
            reasons.append(f"{name} (cpus {_span(policies[name].get('cpus'))}) spent {100 * low / total:.0f}% of "
                           f"the run below {0.9 * cap / 1000:.0f} MHz (time_in_state)")
    return reasons


def _span(cpus) -> str:
    cpus = list(cpus or [])
    if cpus and cpus == list(range(cpus[0], cpus[-1] + 1)) and len(cpus) > 1:
        return f"{cpus[0]}-{cpus[-1]}"
    return ",".join(map(str, cpus)) or "?"
