"""Which runs belong together: a group is the runs that share every KEY field (and a section, hardware or emulated).

A row pools only runs of one kind: the same model (by identity, so two checkpoints never share a row), recipe and
its options, device, seq_len, runner, threads and affinity, timing preset, and campaign (one `harness run`
invocation unless --campaign names it), so an unrelated run never moves a row's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable

from harness.run.pooling import Pooling, pool
from harness.store.record import NOT_MEASURED, RunRecord, model_identity, recipe_label

NO_RUNS = "no runs yet: measure one with `harness run` (or `harness demo`), then run `harness report` again"
KEY = ("model", "recipe", "device", "seq_len", "runner", "threads", "affinity", "timing", "campaign")
# what may differ between a row and the fp32 row it is compared with ("speed-up vs fp32", "Δ vs fp32")
BASELINE_MAY_DIFFER = ("recipe", "campaign")


@dataclass
class Group:
    """Runs that share a KEY and a section; `samples` pools the latencies the row is computed from."""

    key: tuple
    emulated: bool
    runs: list[RunRecord] = field(default_factory=list)

    @property
    def measured(self) -> list[RunRecord]:
        ok = [r for r in self.runs if r.status == "ok"]
        return ok or [r for r in self.runs if r.status == "invalid"]

    @cached_property
    def pooling(self) -> Pooling:
        """The measured runs split into those the row's latency pools and those left out, disturbed or slowed
        throughout (harness/run/pooling.py). Every run stays stored and listed."""
        return pool(self.measured)

    @property
    def pooled(self) -> list[RunRecord]:
        return self.pooling.kept

    @property
    def failed(self) -> list[RunRecord]:
        return [r for r in self.runs if r.status in NOT_MEASURED]

    @property
    def samples(self) -> list[float]:
        return [float(x) for r in self.pooled for x in r.latencies_ms]

    @property
    def random_weights(self) -> bool:
        return any(random_weights(r) for r in self.runs)

    @property
    def fields(self) -> dict:
        return dict(zip(KEY, self.key))

    @property
    def label(self) -> str:
        f = self.fields
        return f"{f['model']} {f['recipe']} s{f['seq_len']} {f['runner']} t{f['threads']} @{f['device']}"


def disturbed_runs(runs: list[RunRecord], pooling: Pooling | None = None) -> list[str]:
    """What the runners saw disturb each run (harness/run/disturbance.py), one phrase per disturbed run:
    `run 3f2a…: 2 of 2 timed threads waited for a CPU, up to 35% of the run`; given the row's pooling, each phrase
    ends with whether the run was left out of the latency or kept (no slower than the others)."""
    from harness.run.disturbance import far_core_runs, kept, slow_clock_runs

    slow = slow_clock_runs(runs)  # a run whose machine was slower than its siblings' (clock canary)
    far = far_core_runs(runs)  # a run whose two CPUs were far apart throughout (core round trip)
    left_out = {r.run_id for r in pooling.left_out} if pooling is not None else set()
    out = []
    for r in runs:
        reasons = list(kept(r).get("reasons") or [])
        reasons += [slow[r.run_id]] if r.run_id in slow else []
        reasons += [far[r.run_id]] if r.run_id in far else []
        if reasons:
            fate = "" if pooling is None or not pooling.judged else (
                " (left out)" if r.run_id in left_out else " (kept: no slower than the others)")
            out.append(f"run {r.run_id}: " + "; ".join(str(x) for x in reasons) + fate)
    return out


def random_weights(r: RunRecord) -> bool | None:
    """True when the program was exported without a trained checkpoint (record field, else its manifest)."""
    if r.random_weights is not None:
        return bool(r.random_weights)
    return (r.manifest or {}).get("random_weights")


def identity(r: RunRecord) -> str:
    """The model a run measured (RunRecord.model_id; derived from its manifest for records that predate it)."""
    return r.model_id or model_identity(r.manifest, r.model, r.program_sha256)


def key_of(r: RunRecord) -> tuple:
    """The values of KEY for one run: model identity and the recipe with its options stand for model and recipe."""
    values = {"model": identity(r), "recipe": recipe_label(r.recipe, (r.manifest or {}).get("recipe_options"))}
    return tuple(values[k] if k in values else getattr(r, k) for k in KEY)


def group_runs(records: Iterable[RunRecord]) -> list[Group]:
    groups: dict[tuple, Group] = {}
    for r in records:
        key = key_of(r)
        g = groups.setdefault((bool(r.emulated),) + key, Group(key, bool(r.emulated)))
        g.runs.append(r)
    return list(groups.values())




