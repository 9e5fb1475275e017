"""Which of a group's runs its latency pools: those as fast as its fastest, less the runs slowed throughout, whether
or not the runner saw what slowed them. Every run stays stored, counted and listed.

Interference on a shared machine only ever adds time, and on the 2-core AVX2 EPYC where this was measured it comes
in epochs of seconds to tens of seconds: one process timing the demo student's int8 program for 40 s ran at 0.91 ms
for 7 s, at 1.20 ms for 24 s, then at 0.89 ms again, while each timed thread had 95-99% of a core, no CPU steal and
an unchanged clock canary (1-thread runs of the same program did not jump). A run that falls in such an epoch is slow throughout, so a group's run medians split
into a fast cluster and a slowed one (docs/statistics.md). Taking the fast cluster is the run-level form of the
minimum estimator of Chen & Revels, "Robust benchmarking in noisy environments" (2016): under additive,
non-negative noise the fastest consistent measurements estimate the program's own time.

    kept       the runs the latency pools
    slowed     left out: its median lies more than SLOWED_BAND above the second-fastest run's, with no evidence
               the runner could see
    disturbed  left out: the runner's evidence says what took its CPU time (harness/run/disturbance.py) and its
               median lies more than SLOWED_BAND above the fastest run's

The bar for a run without evidence is the second-fastest run, not the fastest, so a single freak fast run never
sets it and at least two runs stay; a group whose runs all fell in one epoch keeps them all. A run the runner saw
disturbed is left out on less (even when that leaves one run: compare then calls the pair inconclusive), but only
when it was slower: one as fast as the others is kept, whatever disturbed it cost no measurable time (on this host
the runs flagged disturbed were as often the fast ones).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from harness.store.record import RunRecord

SLOWED_BAND = 0.06  # within one epoch run medians spread by up to ~5% here; the slowed ones sat 10-35% above


def run_median(r: RunRecord) -> float | None:
    """A run's median latency (its summary's p50, else the median of its samples), or None when it measured none."""
    v = r.latency.p50
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
        return float(v)
    return float(statistics.median(r.latencies_ms)) if r.latencies_ms else None


@dataclass
class Pooling:
    kept: list[RunRecord]
    disturbed: list[RunRecord] = field(default_factory=list)
    slowed: list[RunRecord] = field(default_factory=list)
    reference: float | None = None  # the second-fastest run's median, which the bar is set from; None: not judged

    @property
    def judged(self) -> bool:
        """False when fewer than two runs had a median: nothing was judged and every run is kept."""
        return self.reference is not None

    @property
    def left_out(self) -> list[RunRecord]:
        return self.disturbed + self.slowed

    def slowed_note(self) -> str:
        """`2 of 6 runs slowed throughout (runs 3f2a…, 9c1d…: medians 19-33% above the quiet runs'), left out of the
        latency`, or "" when none were."""
        if not self.slowed:
            return ""
        over = sorted(run_median(r) / self.reference - 1 for r in self.slowed)
        span = f"{over[0]:.0%}" if len(over) == 1 or f"{over[0]:.0%}" == f"{over[-1]:.0%}" \
            else f"{over[0]:.0%}-{over[-1]:.0%}"
        n = len(self.kept) + len(self.left_out)
        ids = ", ".join(r.run_id for r in self.slowed)
        return (f"{len(self.slowed)} of {n} runs slowed throughout (run{'s' if len(over) > 1 else ''} {ids}: "
                f"median{'s' if len(over) > 1 else ''} {span} above the quiet runs'), left out of the latency")


def pool(runs: list[RunRecord]) -> Pooling:
    """Split a group's measured runs (see the module doc)."""
    meds = [run_median(r) for r in runs]
    fastest = sorted(m for m in meds if m is not None)
    if len(fastest) < 2:
        return Pooling(list(runs))
    out = Pooling([], reference=fastest[1])
    bar, seen_bar = fastest[1] * (1 + SLOWED_BAND), fastest[0] * (1 + SLOWED_BAND)
    for r, m in zip(runs, meds):
        seen = "disturbed" in r.flags
        if m is None or m <= (seen_bar if seen else bar):
            out.kept.append(r)
        else:
            (out.disturbed if seen else out.slowed).append(r)
    return out
