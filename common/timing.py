"""Timing presets: how many warmup and timed iterations, and for how long at least. Records name the one they used."""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import BadInput


@dataclass(frozen=True)
class TimingPreset:
    """Warmup and timing each have an iteration floor and a time floor (both must pass), as LiteRT's benchmark_model
    (--num_runs with --min_secs) and MLPerf (1,024 queries and 60 s) do: a 0.4 ms program timed for 50 iterations
    is timed for 20 ms, and one scheduler hiccup moves its median (docs/statistics.md, "Presets")."""

    name: str
    warmup: int
    iterations: int
    min_seconds: float
    warmup_seconds: float = 0.0


PRESETS: dict[str, TimingPreset] = {
    "quick": TimingPreset("quick", warmup=3, iterations=20, min_seconds=0.5, warmup_seconds=0.2),
    # Short runs of a campaign of interleaved rounds, the rounds carrying the spread between runs (pyperf's design:
    # many short worker processes); the demo's. Its rows held as still as `default`'s in half the time (measured:
    # docs/statistics.md, "Presets").
    "rounds": TimingPreset("rounds", warmup=5, iterations=20, min_seconds=0.75, warmup_seconds=0.2),
    "default": TimingPreset("default", warmup=10, iterations=50, min_seconds=2.0, warmup_seconds=0.5),
    # MLPerf mobile's single-stream floor: at least 1024 queries and at least 60 s.
    "mlperf": TimingPreset("mlperf", warmup=10, iterations=1024, min_seconds=60.0, warmup_seconds=0.5),
    # An emulated device's default (qemu-aarch64 runs a full-size model at seconds per inference): a functional check
    # of the program on the ABI, its timings never ranked; docs/statistics.md, "Presets".
    "emulated": TimingPreset("emulated", warmup=1, iterations=3, min_seconds=0.0, warmup_seconds=0.0),
}


# The presets before they had time floors (2026-12): a record of that time is named by these when it is migrated.
LEGACY_PRESETS: dict[str, TimingPreset] = {
    "quick": TimingPreset("quick", warmup=3, iterations=20, min_seconds=0.0),
    "default": TimingPreset("default", warmup=10, iterations=50, min_seconds=0.0),
    "mlperf": TimingPreset("mlperf", warmup=10, iterations=1024, min_seconds=60.0),
}


HARDWARE = ("quick", "rounds", "default", "mlperf")  # the presets a user picks for a device that is not emulated


def preset(name: str) -> TimingPreset:
    """The named timing preset; an unknown name is a BadInput listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise BadInput(f"unknown timing preset {name!r}: choose one of {', '.join(PRESETS)}") from None


def timing_name(warmup: int | None, iterations: int | None, min_seconds: float | None,
                warmup_seconds: float | None = 0.0, presets: dict[str, TimingPreset] = PRESETS) -> str:
    """The preset whose settings these are, or "custom" (flags changed one of them)."""
    for p in presets.values():
        if ((warmup, iterations, float(min_seconds or 0.0), float(warmup_seconds or 0.0))
                == (p.warmup, p.iterations, p.min_seconds, p.warmup_seconds)):
            return p.name
    return "custom"
