"""Which runs belong together: a group is the runs that share a KEY (and a section, hardware or emulated)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from harness.store.record import NOT_MEASURED, RunRecord

NO_RUNS = "no runs yet: measure one with `harness run` (or `harness demo`), then run `harness report` again"
KEY = ("model", "recipe", "device", "seq_len", "runner", "threads")


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

    @property
    def failed(self) -> list[RunRecord]:
        return [r for r in self.runs if r.status in NOT_MEASURED]

    @property
    def samples(self) -> list[float]:
        return [float(x) for r in self.measured for x in r.latencies_ms]

    @property
    def random_weights(self) -> bool:
        return any(random_weights(r) for r in self.runs)

    @property
    def label(self) -> str:
        model, recipe, device, seq_len, runner, threads = self.key
        return f"{model} {recipe} s{seq_len} {runner} t{threads} @{device}"


def random_weights(r: RunRecord) -> bool | None:
    """True when the program was exported without a trained checkpoint (record field, else its manifest)."""
    if r.random_weights is not None:
        return bool(r.random_weights)
    return (r.manifest or {}).get("random_weights")


def group_runs(records: Iterable[RunRecord]) -> list[Group]:
    groups: dict[tuple, Group] = {}
    for r in records:
        key = tuple(getattr(r, k) for k in KEY)
        g = groups.setdefault((bool(r.emulated),) + key, Group(key, bool(r.emulated)))
        g.runs.append(r)
    return list(groups.values())


def gate_result(accuracy: dict | None) -> str:
    """"pass" / "fail" / "" from an accuracy dict's gate, whichever shape it has."""
    gate = (accuracy or {}).get("gate")
    if isinstance(gate, dict):
        gate = gate.get("passed", gate.get("pass", gate.get("status")))
    if isinstance(gate, bool):
        return "pass" if gate else "fail"
    if isinstance(gate, str) and gate.lower() in ("pass", "passed", "ok", "fail", "failed"):
        return "pass" if gate.lower() in ("pass", "passed", "ok") else "fail"
    return ""


