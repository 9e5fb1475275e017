"""A campaign plan and the scheduler that executes it: the public way to measure several programs or settings.

    plan = CampaignPlan([RunRequest.of(a, "host", iterations=20), RunRequest.of(b, "host")], rounds=3)
    records = run_plan(plan, results)

MLPerf's LoadGen separates what is measured from how a test is run; here a RunRequest says what one run is and the
plan says how a campaign of them is scheduled. `interleaved` (the default) runs rounds A B C, A B C, ..., in a new
shuffled order each round (the seed is recorded), so a slow minute on a shared machine falls on every program alike
instead of on one recipe's block; `blocks` keeps the old order (A A A, B B B, ...). With a `target_ci`, programs
whose pooled runs (harness/run/pooling.py) disagree (their medians' CV above stats.MAX_RUN_CV) or whose interval
across them is wider than the target get further rounds, up to `max_rounds` or `max_seconds`; every run is stored whatever happens. Each device
is reached through one DeviceSession for the whole campaign (harness/run/session.py). A request's
`wait_for_quiet` is honoured until the device once stays busy through a whole wait: the campaign then stops waiting.
Each request is scored once (accuracy, agreement with fp32: its first run that scores) and only timed after that,
as MLPerf's LoadGen separates its accuracy mode from its performance mode; those runs name the scored run
(`schedule["accuracy_from"]`), and the report's row takes its accuracy from it.
A quiet reading is reused rather than taken again (half a second each) by the runs that start within QUIET_REUSE_S of
it on the same device while every run since found no other work on its CPUs (disturbance.contended); the record's
quiet_gate names the run whose reading it took.
The same limit bounds the near-cores gate (docs/statistics.md#far-cores), which likewise stops for the rest of the
campaign once a device's CPUs stay far apart through a whole wait (or its probes are contended: a busy machine).
"""

from __future__ import annotations

import dataclasses
import math
import random
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from common.errors import BadInput
from harness.run import disturbance, pooling, stats
from harness.run.request import RunRequest, new_campaign
from harness.run.session import DeviceSession
from harness.store.record import RunRecord

SCHEDULES = ("interleaved", "blocks")
MAX_ROUNDS = 1000
# a device whose quiet gate passed this recently, with no run since finding other work on its CPUs, is not probed
# again: back-to-back runs of a campaign are seconds apart, and each run's own evidence watched the CPUs meanwhile
QUIET_REUSE_S = 10.0


@dataclass
class CampaignPlan:
    requests: list[RunRequest]
    rounds: int = 1  # runs of each request, at least
    schedule: str = "interleaved"
    seed: int | None = None  # the interleaving's shuffle; None: a fresh one (recorded on every run)
    target_ci: float | None = None  # half-width of the CI across runs, relative to the median; None: no extra rounds
    max_rounds: int | None = None  # with target_ci: at most this many rounds in all (default: 3 x rounds, >= 5)
    max_seconds: float | None = None  # with target_ci: no extra round starts after this much wall time
    campaign: str | None = None  # None: one fresh campaign for the whole plan


def validate_plan(plan: CampaignPlan) -> None:
    """One line naming the flag and its range for anything out of bounds; nothing runs."""
    if plan.schedule not in SCHEDULES:
        raise BadInput(f"--schedule {plan.schedule!r}: one of {', '.join(SCHEDULES)}")
    if not 1 <= plan.rounds <= MAX_ROUNDS:
        raise BadInput(f"--repeat {plan.rounds}: between 1 and {MAX_ROUNDS}")
    if plan.target_ci is not None and not (math.isfinite(plan.target_ci) and 0.001 <= plan.target_ci <= 0.5):
        raise BadInput(f"--target-ci {plan.target_ci:g}: a share of the median between 0.001 (0.1%) and 0.5 (50%)")
    if plan.max_rounds is not None and not plan.rounds <= plan.max_rounds <= MAX_ROUNDS:
        raise BadInput(f"--max-repeats {plan.max_rounds}: between --repeat ({plan.rounds}) and {MAX_ROUNDS}")
    if plan.max_seconds is not None and not (math.isfinite(plan.max_seconds) and 0 < plan.max_seconds <= 7 * 86400):
        raise BadInput(f"--max-campaign-seconds {plan.max_seconds:g}: a positive number of seconds (at most a week)")


def order(plan: CampaignPlan, rng: random.Random) -> list[tuple[int, int, int, int]]:
    """The plan's first `rounds` rounds as (request index, round, position in its round, runs in its round), in the
    order they run: `blocks` runs each request's rounds back to back; `interleaved` runs every request once a round,
    in an order rng shuffles anew each round. run_plan executes it here; a device farm runs it on every phone."""
    n = len(plan.requests)
    if plan.schedule == "blocks":
        return [(i, rnd, 0, 1) for i in range(n) for rnd in range(1, plan.rounds + 1)]
    slots = []
    for rnd in range(1, plan.rounds + 1):
        shuffled = list(range(n))
        rng.shuffle(shuffled)
        slots += [(i, rnd, pos, n) for pos, i in enumerate(shuffled)]
    return slots


def new_seed(plan: CampaignPlan) -> int:
    """The plan's shuffle seed: its own, or a fresh one (recorded on every run either way)."""
    return plan.seed if plan.seed is not None else secrets.randbelow(2**31)


def _p50(rec: RunRecord) -> float | None:
    v = rec.latency.p50
    return float(v) if rec.status in ("ok", "invalid") and isinstance(v, (int, float)) and v > 0 else None


def needs_more(records: list[RunRecord], target_ci: float) -> str | None:
    """Why a request's runs call for another round (the runs its report row would pool disagree, or the CI across
    them is wider than target_ci of their median), or None when they are settled. The row pools as
    harness/run/pooling.py says, so two quiet runs that agree settle it however many slowed ones sit beside them."""
    measured = [r for r in records if _p50(r) is not None]
    kept = pooling.pool(measured).kept
    meds = [_p50(r) for r in kept]
    if len(meds) < 2:
        return "fewer than 2 measured runs"
    mean = sum(meds) / len(meds)
    cv = math.sqrt(sum((m - mean) ** 2 for m in meds) / (len(meds) - 1)) / mean
    if cv > stats.MAX_RUN_CV:
        return f"run medians disagree (CV {cv:.1%} > {stats.MAX_RUN_CV:.0%})"
    center = sorted(meds)[len(meds) // 2]
    lo, hi = stats.replications_ci(meds, center=center)
    half = (hi - lo) / 2 / center
    if half > target_ci:
        return f"CI across runs +-{half:.1%} > +-{target_ci:.1%}"
    return None


def run_plan(plan: CampaignPlan, results: Path, measure: Callable[..., RunRecord] | None = None,
             say: Callable[[str], None] = lambda s: None) -> list[RunRecord]:
    """Run every request of the plan in rounds and store each run; returns the records in request order.

    measure(request, results, label, session) runs one request (default: harness.run.measure.run without a status
    line) through the campaign's session of its device; say(text) is told about each extra round. A RunInterrupted
    from measure ends the plan (what ran is stored); every session is closed however the plan ends."""
    from harness.run import measure as measuring

    validate_plan(plan)
    if not plan.requests:
        raise BadInput("nothing to run: the plan has no programs")
    measure = measure or (lambda req, res, label, session: measuring.run(req, res, session=session))
    seed = new_seed(plan)
    rng = random.Random(seed)
    campaign = plan.campaign or plan.requests[0].campaign or new_campaign()
    done: list[list[RunRecord]] = [[] for _ in plan.requests]
    n = len(plan.requests)
    busy = False  # a device that stayed busy through one whole quiet wait is not waited for again in this campaign
    sessions: dict = {}  # DeviceTarget -> DeviceSession: one connection per device for the whole campaign
    nearest: dict = {}  # DeviceTarget -> near CPUs' round trip (ns) in its runs so far: the near-cores gate's bar
    probes: dict = {}  # DeviceTarget -> every core round trip its runs measured
    far_for_good: set = set()  # devices whose CPUs stayed far through one whole wait: not waited for again
    quiet_seen: dict = {}  # DeviceTarget -> (monotonic time of its last quiet reading, the run that took it)

    def one(i: int, rnd: int, pos: int, total: int) -> None:
        nonlocal busy
        req = plan.requests[i]
        near = None if req.device in far_for_good else req.gates.near_cores_ns or nearest.get(req.device)
        seen, now = quiet_seen.get(req.device), time.monotonic()
        reuse = ({"from_run": seen[1], "age_s": round(now - seen[0], 1)}
                 if seen and not busy and now - seen[0] <= QUIET_REUSE_S else None)
        gates = dataclasses.replace(req.gates, wait_for_quiet=0.0 if busy else req.gates.wait_for_quiet,
                                    near_cores_ns=near, quiet_seen=reuse)
        where = {"schedule": plan.schedule, "seed": seed, "round": rnd, "position": pos}
        scored = next((r for r in done[i] if r.accuracy), None)
        settings = req.settings
        if scored is not None:  # accuracy once, performance after (MLPerf's two modes): the same outputs again
            settings = dataclasses.replace(settings, score=False)
            where["accuracy_from"] = scored.run_id
        req = dataclasses.replace(req, campaign=campaign, tags={**req.tags}, gates=gates, settings=settings,
                                  schedule=where)
        label = f"running {Path(req.program).name} on {req.device.name} (round {rnd}, {pos + 1}/{total})"
        session = sessions.setdefault(req.device, DeviceSession(req.device))
        rec = measure(req, results, label, session)
        done[i].append(rec)
        gate = (rec.device_info_before or {}).get("quiet_gate") or {}
        if gate.get("passed") is not True or disturbance.kept(rec).get("contended") is not False:
            quiet_seen.pop(req.device, None)  # busy, or nothing to say it stayed quiet: the next run probes
        elif "reused" not in gate:
            quiet_seen[req.device] = (now, rec.run_id)
        probes.setdefault(req.device, []).extend(disturbance.run_core_probes(rec))
        if probes[req.device]:  # near CPUs' round trip on this device so far: the next runs wait for theirs to be near
            nearest[req.device] = disturbance.near_level(probes[req.device])
        settle = disturbance.kept(rec).get("settle") or {}
        if settle.get("passed") is False and req.device not in far_for_good:
            far_for_good.add(req.device)
            say(f"{req.device.name}'s CPUs stayed far apart for {req.gates.wait_for_quiet:g} s: the rest of this "
                "campaign does not wait for them (each run's evidence says how far apart they were)")
        wait = req.gates.wait_for_quiet
        if wait and ((rec.device_info_before or {}).get("quiet_gate") or {}).get("passed") is False:
            busy = True
            say(f"{req.device.name} stayed busy for {wait:g} s: the rest of this campaign runs without "
                "waiting (each run's evidence says what it shared the CPUs with)")

    try:
        for slot in order(plan, rng):
            one(*slot)
        if plan.target_ci is not None:
            start, rnd = time.monotonic(), plan.rounds
            cap = plan.max_rounds or max(5, 3 * plan.rounds)
            while rnd < cap and (plan.max_seconds is None or time.monotonic() - start < plan.max_seconds):
                why = {i: needs_more(done[i], plan.target_ci) for i in range(n)}
                more = [i for i in range(n) if why[i]]
                if not more:
                    break
                rnd += 1
                say(f"round {rnd}: {len(more)} of {n} programs need more runs ("
                    + "; ".join(f"{Path(plan.requests[i].program).name}: {why[i]}" for i in more[:3]) + ")")
                rng.shuffle(more)
                for pos, i in enumerate(more):
                    one(i, rnd, pos, len(more))
            left = [i for i in range(n) if needs_more(done[i], plan.target_ci)]
            if left:
                say(f"stopped after {rnd} rounds: {len(left)} program{'s' if len(left) != 1 else ''} still short of "
                    "the target (their rows' intervals say by how much)")
    finally:
        for session in sessions.values():
            session.close()
    return [r for recs in done for r in recs]
