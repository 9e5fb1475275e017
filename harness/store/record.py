"""RunRecord: one row per run, stored before anything else happens with it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1
# Statuses of runs with no measurement a report may pool: counted and listed, never averaged into a latency.
NOT_MEASURED = ("failed", "interrupted")


@dataclass
class RunRecord:
    run_id: str
    created_at: str  # ISO-8601 UTC
    status: str  # "ok" | "invalid" (measured but flagged) | "failed" | "interrupted" (Ctrl-C/SIGTERM; samples partial)
    device: str
    error: str | None = None
    finished_at: str | None = None
    # what ran
    harness_version: str = ""
    harness_git_sha: str | None = None
    program_path: str | None = None
    program_sha256: str | None = None
    manifest: dict[str, Any] | None = None  # ProgramManifest.to_dict(), or None for foreign programs
    model: str | None = None
    recipe: str | None = None
    seq_len: int | None = None
    random_weights: bool | None = None
    # where it ran
    device_abi: str | None = None
    transport: str | None = None
    emulated: bool = False
    device_info_before: dict[str, Any] = field(default_factory=dict)
    device_info_after: dict[str, Any] = field(default_factory=dict)
    runner: str | None = None  # "native" | "python" | "executor_runner"
    runner_version: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    affinity: str | None = None
    # how it was timed
    warmup: int | None = None
    iterations: int | None = None
    min_seconds: float | None = None
    load_ms: float | None = None
    first_inference_ms: float | None = None
    latencies_ms: list[float] = field(default_factory=list)  # raw samples, kept
    latency: dict[str, Any] = field(default_factory=dict)  # harness.run.stats.summarize(...)
    memory: dict[str, Any] = field(default_factory=dict)  # peak_rss_mb, pss_mb, method, arena_mb, program_mb
    accuracy: dict[str, Any] | None = None  # task, n, metric, value, agreement_fp32, max_rel_logit_error, gate
    flags: list[str] = field(default_factory=list)  # validity flags: "emulated", "high_cv", "throttled", ...
    profile: dict[str, Any] | None = None  # ETDump summary for profiled runs
    tags: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunRecord":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
