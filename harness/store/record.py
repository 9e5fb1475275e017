"""RunRecord: one row per run, stored before anything else happens with it, and what names what it measured."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 2  # 2: model_id, campaign and timing (columns and fields); v1 stores migrate on open

HEAD_LABELS = {"sequence_classification": "cls", "question_answering": "qa", "masked_lm": "mlm", "base": "base"}
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
    model: str | None = None  # preset name, "checkpoint", or a foreign program's file stem (as in the manifest)
    model_id: str | None = None  # what the numbers are of: model_identity(); groups and comparisons key on it
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
    warmup_seconds: float | None = None  # the warmup's time floor (0 or None: iterations only)
    max_seconds: float | None = None  # the timed loop's cap (None: none)
    load_ms: float | None = None
    first_inference_ms: float | None = None
    latencies_ms: list[float] = field(default_factory=list)  # raw samples, kept
    latency: dict[str, Any] = field(default_factory=dict)  # harness.run.stats.summarize(...)
    memory: dict[str, Any] = field(default_factory=dict)  # peak_rss_mb, pss_mb, method, arena_mb, program_mb
    accuracy: dict[str, Any] | None = None  # task, n, metric, value, agreement_fp32, max_rel_logit_error, gate
    flags: list[str] = field(default_factory=list)  # validity flags: "emulated", "high_cv", "throttled", ...
    profile: dict[str, Any] | None = None  # ETDump summary for profiled runs
    tags: dict[str, Any] = field(default_factory=dict)
    campaign: str | None = None  # runs that belong together: one `harness run` invocation unless --campaign names it
    timing: str | None = None  # the timing preset (quick, default, mlperf), or "custom" when flags changed it
    schedule: dict[str, Any] | None = None  # {"schedule": interleaved|blocks, "seed", "round", "position"} of a plan

    def to_dict(self) -> dict[str, Any]:
        # asdict deep-copies float by float: 0.9 s for the 90,000 samples of an interrupted run, which Ctrl-C waited
        # for twice. The samples are a flat list of numbers: a list copy is the same copy.
        samples, self.latencies_ms = self.latencies_ms, []
        try:
            d = dataclasses.asdict(self)
        finally:
            self.latencies_ms = samples
        d["latencies_ms"] = list(samples)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunRecord":
        return cls(**{k: v for k, v in d.items() if k in _FIELDS})


_FIELDS = frozenset(f.name for f in dataclasses.fields(RunRecord))  # what from_dict keeps (newer fields dropped)


def model_identity(manifest: dict[str, Any] | None, model: str | None = None, program_sha256: str | None = None) -> str:
    """The model a run measured, by name: the preset, or the checkpoint's folder name plus a short sha256, plus its
    head and labels ("mobilebert cls2", "sst2-student@3f2a9c1b cls2", "mobilebert-tiny qa"). Two checkpoints
    never share a name: the sha256 of the weights is part of it.

    A program without a manifest is named by its file stem and a short sha256 of the program itself.
    """
    m = manifest or {}
    if m.get("checkpoint"):
        folder = m["checkpoint"].rstrip("/").rsplit("/", 1)[-1]
        name = f"{folder}@{(m.get('checkpoint_sha256') or '?')[:8]}"
    elif m.get("model"):
        name = m["model"]
    else:
        name = f"{model or 'program'}" + (f"@{program_sha256[:8]}" if program_sha256 else "")
    head = m.get("head")
    if head not in HEAD_LABELS:
        return name
    labels = m.get("num_labels") or len((m.get("config") or {}).get("id2label") or {})  # v1 manifests: config only
    label = HEAD_LABELS[head] + (str(labels) if head == "sequence_classification" and labels else "")
    return f"{name} {label}"


def recipe_label(recipe: str | None, options: dict[str, Any] | None) -> str:
    """A recipe with the options that change its program: "int4 g64 emb4w keep:classifier", "int8", "fp32"."""
    o = options or {}
    parts = [recipe or "?"]
    if recipe and recipe.startswith("int4") and o.get("group_size"):
        parts.append(f"g{o['group_size']}")
    if o.get("quant_embedding"):
        parts.append(f"emb{o['quant_embedding']}")
    if o.get("keep_fp32"):
        parts.append("keep:" + ",".join(o["keep_fp32"]))
    if recipe == "int8-static" and o.get("calibration_examples"):
        parts.append(f"cal{o['calibration_examples']}")
    return " ".join(parts)

