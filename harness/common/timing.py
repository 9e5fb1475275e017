"""Timing presets: how many warmup and timed iterations, and for how long at least. Records name the one they used."""

from __future__ import annotations

from dataclasses import dataclass

from harness.common.errors import BadInput


@dataclass(frozen=True)
class TimingPreset:
    name: str
    warmup: int
    iterations: int
    min_seconds: float


PRESETS: dict[str, TimingPreset] = {
    "quick": TimingPreset("quick", warmup=3, iterations=20, min_seconds=0.0),
    "default": TimingPreset("default", warmup=10, iterations=50, min_seconds=0.0),
    # MLPerf mobile's single-stream floor: at least 1024 queries and at least 60 s.
    "mlperf": TimingPreset("mlperf", warmup=10, iterations=1024, min_seconds=60.0),
}


def preset(name: str) -> TimingPreset:
    """The named timing preset; an unknown name is a BadInput listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise BadInput(f"unknown timing preset {name!r}: choose one of {', '.join(PRESETS)}") from None


def timing_name(warmup: int | None, iterations: int | None, min_seconds: float | None) -> str:
    """The preset whose settings these are, or "custom" (flags changed one of them)."""
    for p in PRESETS.values():
        if (warmup, iterations, float(min_seconds or 0.0)) == (p.warmup, p.iterations, p.min_seconds):
            return p.name
    return "custom"
