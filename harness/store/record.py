"""RunRecord: one row per run, stored before anything else happens with it, and what names what it measured.

Its measurements are typed parts (Latency, Memory, Accuracy), each read and written as the JSON object the store has
always held: `from_json` takes an older record's object with keys missing, and keeps the keys a newer harness wrote
(in `extra`, written back as they came), so a record survives a round trip through any harness of this schema.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, TypeVar

SCHEMA_VERSION = 2  # 2: model_id, campaign and timing (columns and fields); v1 stores migrate on open

HEAD_LABELS = {"sequence_classification": "cls", "question_answering": "qa", "masked_lm": "mlm", "base": "base"}
# Statuses of runs with no measurement a report may pool: counted and listed, never averaged into a latency.
NOT_MEASURED = ("failed", "interrupted")


_P = TypeVar("_P", bound="_Part")


@dataclass
class _Part:
    """A record's JSON object as a dataclass: its known keys as fields (None: absent), any other key in `extra`.

    to_json writes a field when it holds a value, or always (even None) for the fields in ALWAYS of a part that holds
    anything: the keys the harness has always written, so what a run stores now reads as it did before."""

    ALWAYS: ClassVar[tuple[str, ...]] = ()
    extra: dict[str, Any] = field(default_factory=dict, kw_only=True)  # keys of a newer harness, kept as they came

    @classmethod
    def from_json(cls: type[_P], d: Mapping[str, Any] | "_Part" | None) -> _P:
        if isinstance(d, cls):
            return d
        names = _names(cls)
        d = d or {}
        return cls(**{k: v for k, v in d.items() if k in names},
                   extra={k: v for k, v in d.items() if k not in names})

    def to_json(self) -> dict[str, Any]:
        empty = self.empty()
        out = {k: getattr(self, k) for k in _names(type(self))
               if getattr(self, k) is not None or (k in self.ALWAYS and not empty)}
        out.update(self.extra)
        return _copy(out)

    def empty(self) -> bool:
        """Nothing measured: written as {}."""
        return not self.extra and all(getattr(self, k) is None for k in _names(type(self)))

    def __bool__(self) -> bool:
        return not self.empty()


def _names(cls: type) -> dict[str, None]:
    """A part's field names, in order, as dict keys: `in` is a hash lookup (every record read asks it per key)."""
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = dict.fromkeys(f.name for f in dataclasses.fields(cls) if f.name != "extra")
    return names


_NAMES: dict[type, dict[str, None]] = {}


@dataclass
class Latency(_Part):
    """harness.run.stats.summarize(...) of a run's samples, in ms (that module's docstring says what each field is);
    empty for a run with none."""

    ALWAYS: ClassVar[tuple[str, ...]] = ("n", "mean", "median", "p50", "p90", "p99", "std", "min", "max",
                                         "trimmed_mean", "cv", "robust_cv", "ci95_median", "run_cv")
    n: int | None = None
    mean: float | None = None
    median: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    trimmed_mean: float | None = None
    cv: float | None = None
    robust_cv: float | None = None
    ci95_median: list[float] | None = None  # [low, high]
    run_cv: float | None = None  # CV of the runs' medians (pooled summaries only)
    bootstrap: dict[str, Any] | None = None  # {"resamples", "seed", "method", "block", "clusters"}


@dataclass
class Memory(_Part):
    """What the runner process held (MiB: kB / 1024 as the OS reports it, program bytes / 2**20), each figure with
    how it was measured: memory figures must say which runner and what they measure."""

    ALWAYS: ClassVar[tuple[str, ...]] = ("peak_rss_mb", "peak_rss_method", "pss_mb", "pss_method", "program_mb",
                                         "arena_mb", "arena_method")
    peak_rss_mb: float | None = None
    peak_rss_method: str | None = None
    pss_mb: float | None = None
    pss_method: str | None = None
    program_mb: float | None = None
    arena_mb: float | None = None  # the program's planned activation buffers
    arena_method: str | None = None
    phys_footprint_mb: float | None = None  # iOS: the app's footprint as sysmontap saw it (not RSS)
    phys_footprint_method: str | None = None
    method: str | None = None  # records from before peak_rss_method

    @property
    def rss_method(self) -> str | None:
        return self.peak_rss_method or self.method


@dataclass
class Accuracy(_Part):
    """Task metric and agreement with the fp32 eager model (harness/run/accuracy.py); None on a record: not scored."""

    n: int | None = None
    metric: str | None = None
    predicted_share: dict[str, float] | None = None  # what the program answered, class by class
    value: float | None = None  # the task metric (absent: untrained weights or no labels)
    label_share: dict[str, float] | None = None
    one_class: dict[str, Any] | None = None
    one_class_note: str | None = None
    agreement_fp32: float | None = None
    max_rel_logit_error: float | None = None
    reference_value: float | None = None
    gate: Any = None  # {"ratio", "passed": bool}; older records: a bool or "pass"/"fail"
    task: str | None = None
    windows: int | None = None  # SQuAD: the windows the examples were cut into
    squad_version: str | None = None
    exact_match: float | None = None
    reference_exact_match: float | None = None
    note: str | None = None
    samples: list[dict[str, Any]] | None = None  # SQuAD: the first predictions, to read

    def gate_result(self) -> str:
        """"pass" / "fail" / "" whichever shape the gate has."""
        gate = self.gate
        if isinstance(gate, dict):
            gate = gate.get("passed", gate.get("pass", gate.get("status")))
        if isinstance(gate, bool):
            return "pass" if gate else "fail"
        if isinstance(gate, str) and gate.lower() in ("pass", "passed", "ok", "fail", "failed"):
            return "pass" if gate.lower() in ("pass", "passed", "ok") else "fail"
        return ""


_PARTS = {"latency": Latency, "memory": Memory, "accuracy": Accuracy}


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
    latency: Latency = field(default_factory=Latency)
    memory: Memory = field(default_factory=Memory)
    accuracy: Accuracy | None = None
    flags: list[str] = field(default_factory=list)  # validity flags: "emulated", "high_cv", "throttled", ...
    profile: dict[str, Any] | None = None  # ETDump summary for profiled runs
    tags: dict[str, Any] = field(default_factory=dict)
    campaign: str | None = None  # runs that belong together: one `harness run` invocation unless --campaign names it
    timing: str | None = None  # the timing preset (quick, default, mlperf), or "custom" when flags changed it
    schedule: dict[str, Any] | None = None  # {"schedule": interleaved|blocks, "seed", "round", "position"} of a plan

    def __post_init__(self) -> None:
        # the parts as JSON objects (an older caller, a stored record) are read into their types here, once
        self.latency = Latency.from_json(self.latency)
        self.memory = Memory.from_json(self.memory)
        if self.accuracy is not None:
            self.accuracy = Accuracy.from_json(self.accuracy)

    def to_dict(self) -> dict[str, Any]:
        """The record as the JSON object the store and the runs files hold."""
        out = {}
        for name in _FIELDS:
            v = getattr(self, name)
            out[name] = v.to_json() if isinstance(v, _Part) else _copy(v)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunRecord":
        """A record from its JSON object: fields of a newer harness are dropped (its parts keep their new keys)."""
        return cls(**{k: v for k, v in d.items() if k in _FIELD_SET})


_FIELDS = tuple(f.name for f in dataclasses.fields(RunRecord))  # to_dict's order
_FIELD_SET = frozenset(_FIELDS)  # what from_dict keeps (newer fields dropped); a set: a report reads every record


def _copy(v: Any) -> Any:
    """A deep copy of JSON-shaped data (what dataclasses.asdict gave to_dict before the parts had types)."""
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_copy(x) for x in v)
    return v


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
    if recipe and recipe.startswith("int4") and o.get("group_size") is not None:
        parts.append(f"g{o['group_size']}" if o["group_size"] else "per-row")
    if o.get("quant_embedding"):
        parts.append(f"emb{o['quant_embedding']}")
    if o.get("keep_fp32"):
        parts.append("keep:" + ",".join(o["keep_fp32"]))
    if recipe == "int8-static" and o.get("calibration_examples"):
        parts.append(f"cal{o['calibration_examples']}")
    return " ".join(parts)

