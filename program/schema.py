"""What a program manifest and a run record may hold: types, ranges, sizes. Checked at every door they come
through (a manifest read for `run`, `results import`, the store's writer and reader), so one poisoned value is
refused, or skipped with a warning, in one line naming it instead of failing every report that meets it.

Plain functions over JSON-shaped dicts (ProgramManifest.to_dict(), RunRecord.to_dict()): the store and the export
layers both use them, and neither may import the other. Fields the schema does not name pass: a newer harness may
write them. A problem is returned as a short sentence ("seq_len is 'abc', not a whole number from 1 to 65536").
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any, Callable

MAX_MANIFEST_BYTES = 1 << 20  # a manifest is a few kB; this one is copied into every record of its program
MAX_RECORD_BYTES = 64 << 20  # a record of a million kept samples is ~20 MB
MAX_LATENCIES = 4_000_000  # the runners keep at most 2 x --iterations (at most 1,000,000) samples
MAX_SEQ_LEN = 1 << 16
MAX_VOCAB = 10_000_000
MAX_TEXT = 4096  # paths, names, notes
MAX_ERROR = 64 << 10
STATUSES = ("ok", "invalid", "failed", "interrupted")
DTYPES = ("uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "bool", "bfloat16")

Check = Callable[[Any, str], "str | None"]
_FLOAT_MAX = sys.float_info.max


def shown(value: Any, limit: int = 60, quote: bool = True) -> str:
    """A value as a message may quote it: its repr (quote=False: str), cut to `limit` characters (a 10,000-character
    name is not echoed whole)."""
    text = repr(value) if quote else str(value)
    return text if len(text) <= limit else f"{text[:limit - 15]}... ({len(text):,} chars)"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def whole(lo: int, hi: int, optional: bool = True) -> Check:
    def check(v, where):
        if v is None and optional:
            return None
        if not (_is_int(v) and lo <= v <= hi):
            return f"{where} is {shown(v)}, not a whole number from {lo:,} to {hi:,}"
    return check


def number(lo: float = 0.0, hi: float = math.inf, optional: bool = True, finite: bool = True) -> Check:
    def check(v, where):
        if v is None and optional:
            return None
        if not _is_number(v):
            return f"{where} is {shown(v)}, not a number"
        if isinstance(v, int) and not -_FLOAT_MAX <= v <= _FLOAT_MAX:  # would overflow every float() after it
            return f"{where} is {shown(v)}, not a number from {lo:g} to {hi:g}"
        if isinstance(v, float) and not math.isfinite(v):
            return None if not finite else f"{where} is {v}, not a finite number"
        if not lo <= v <= hi:
            return f"{where} is {shown(v)}, not a number from {lo:g} to {hi:g}"
    check.bounds = (lo, hi) if finite else None  # items() checks a list of such numbers at C speed
    return check


def _finite_numbers_within(v: list, lo: float, hi: float) -> bool:
    """Every value of v an int or float (never bool or None), finite, from lo to hi: a few C-level passes. False
    means "look at each": the caller's loop then names the first value that fails, or passes them all."""
    if not set(map(type, v)) <= {int, float}:
        return False
    try:
        return not v or (math.isfinite(sum(v)) and max(lo, -_FLOAT_MAX) <= min(v) and max(v) <= min(hi, _FLOAT_MAX))
    except OverflowError:  # an int past float's range
        return False


def text(limit: int = 256, optional: bool = True, choices: tuple[str, ...] | None = None,
         pattern: str | None = None) -> Check:
    def check(v, where):
        if v is None and optional:
            return None
        if not isinstance(v, str):
            return f"{where} is {shown(v)}, not text"
        if choices is not None and v not in choices:
            return f"{where} is {shown(v)}, not one of {', '.join(choices)}"
        if len(v) > limit:
            return f"{where} is {len(v):,} characters long (at most {limit:,})"
        if pattern is not None and not re.fullmatch(pattern, v):
            return f"{where} is {shown(v)}, not {pattern}"
    return check


def flag(optional: bool = True) -> Check:
    def check(v, where):
        if v is None and optional:
            return None
        if not isinstance(v, bool):
            return f"{where} is {shown(v)}, not true or false"
    return check


def items(of: Check, limit: int, optional: bool = False, exact: int | None = None) -> Check:
    """A list of at most `limit` values each passing `of` (`exact`: of exactly that many)."""
    bounds = getattr(of, "bounds", None)

    def check(v, where):
        if v is None and optional:
            return None
        if not isinstance(v, list):
            return f"{where} is {shown(v)}, not a list"
        if len(v) > limit or (exact is not None and len(v) != exact):
            return f"{where} holds {len(v):,} values ({exact if exact is not None else f'at most {limit:,}'})"
        if bounds is not None and _finite_numbers_within(v, *bounds):
            return None
        for i, x in enumerate(v):
            problem = of(x, f"{where}[{i}]")
            if problem:
                return problem
    return check


def mapping(fields: dict[str, Check] | None = None, optional: bool = True, max_bytes: int | None = None,
            values: Check | None = None, required: tuple[str, ...] = ()) -> Check:
    """An object whose named `fields` pass their checks (others pass, unless `values` checks every value)."""
    rules = fields or {}

    def check(v, where):
        if v is None and optional:
            return None
        if not isinstance(v, dict):
            return f"{where} is {shown(v)}, not an object"
        if max_bytes is not None:
            size = len(json.dumps(v, default=str))
            if size > max_bytes:
                return f"{where} is {size / 2**20:.1f} MiB (at most {max_bytes / 2**20:g} MiB)"
        for name in required:
            if name not in v:
                return f"{_join(where, name)} is missing"
        prefix = f"{where}." if where else ""  # _join, hoisted: this loop runs for every field of every record read
        for k, x in v.items():
            if not isinstance(k, str):
                return f"{where} has a key {shown(k)} that is not text"
            rule = rules.get(k, values)
            if rule is not None:
                problem = rule(x, prefix + k)
                if problem:
                    return problem
    return check


def anything(v, where):
    return None


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


_NAME = text(256)
_SHA256 = text(64, pattern="[0-9a-f]{64}")
_SCALAR = (lambda v, where: None if v is None or isinstance(v, (str, bool, int, float)) and len(str(v)) <= MAX_TEXT
           else f"{where} is {shown(v)}, not a short text, number or true/false")

INPUT_SPEC = mapping({"name": text(256, optional=False), "dtype": text(16, optional=False, choices=DTYPES),
                      "shape": items(whole(0, 1 << 31, optional=False), 16)},
                     optional=False, required=("name", "dtype", "shape"))

# ProgramManifest (program/manifest.py), field by field
MANIFEST_FIELDS: dict[str, Check] = {
    "name": _NAME, "model": _NAME, "head": text(64), "recipe": text(128),
    "seq_len": whole(1, MAX_SEQ_LEN, optional=False),
    "inputs": items(INPUT_SPEC, 64), "outputs": items(text(256, optional=False), 64),
    "program_bytes": whole(0, 1 << 40, optional=False), "program_sha256": text(64, optional=False,
                                                                                pattern="[0-9a-f]{64}"),
    "checkpoint": text(MAX_TEXT), "checkpoint_sha256": text(128), "checkpoint_source": mapping(values=_SCALAR),
    "tokenizer": text(MAX_TEXT), "random_weights": flag(), "weights_source": text(MAX_TEXT), "vocab_size": whole(1, MAX_VOCAB),
    "num_labels": whole(1, 1_000_000), "config": mapping(), "versions": mapping(values=_SCALAR),
    "recipe_options": mapping({"group_size": whole(0, 1 << 20),  # 0: one group per row
                               "quant_embedding": _SCALAR,
                               "keep_fp32": items(text(MAX_TEXT, optional=False), 10_000, optional=True),
                               "calibration_examples": whole(0, 10_000_000)}),
    "delegation": mapping(), "numerics": mapping(), "status": text(32), "status_reason": text(MAX_TEXT),
    "export_seconds": number(), "export_peak_rss_mb": number(), "created_at": text(64), "cache_key": text(256),
}
MANIFEST_REQUIRED = ("name", "model", "head", "recipe", "seq_len", "inputs", "outputs", "program_bytes",
                     "program_sha256")
_MANIFEST = mapping(MANIFEST_FIELDS, optional=False, required=MANIFEST_REQUIRED)
# the copy inside a record: older records and foreign programs may carry only some fields, each of its type
_RECORD_MANIFEST = mapping(MANIFEST_FIELDS, max_bytes=MAX_MANIFEST_BYTES)

_STATS = number(lo=-math.inf, finite=False)  # summaries may hold NaN (an empty or degenerate run); never text
# RunRecord (harness/store/record.py), field by field
RECORD_FIELDS: dict[str, Check] = {
    "run_id": text(128, optional=False, pattern=r"[^\s/\\]+"), "created_at": text(64, optional=False),
    "status": text(16, optional=False, choices=STATUSES), "device": text(256, optional=False),
    "error": text(MAX_ERROR), "finished_at": text(64), "harness_version": text(64), "harness_git_sha": text(128),
    "program_path": text(MAX_TEXT), "program_sha256": text(128), "manifest": _RECORD_MANIFEST,
    "model": text(MAX_TEXT), "model_id": text(MAX_TEXT), "recipe": text(256), "seq_len": whole(1, MAX_SEQ_LEN),
    "random_weights": flag(), "device_abi": text(64), "transport": text(64), "emulated": flag(optional=False),
    "device_info_before": mapping(), "device_info_after": mapping(), "runner": text(64),
    "runner_version": mapping(), "threads": whole(1, 4096), "affinity": text(MAX_TEXT),
    "warmup": whole(0, 1 << 40), "iterations": whole(0, 1 << 40), "min_seconds": number(),
    "warmup_seconds": number(), "max_seconds": number(), "load_ms": number(), "first_inference_ms": number(),
    "latencies_ms": items(number(optional=False), MAX_LATENCIES),
    "latency": mapping({"n": whole(0, 1 << 40), "ci95_median": items(_STATS, 2, optional=True),
                        "bootstrap": mapping(), "method": text(MAX_TEXT)}, values=_STATS),
    "memory": mapping(values=lambda v, where: (text(MAX_TEXT) if where.endswith("method") else _STATS)(v, where)),
    "accuracy": mapping({"task": text(256), "n": whole(0, 1 << 40), "windows": whole(0, 1 << 40),
                         "metric": text(64), "value": _STATS, "agreement_fp32": _STATS,
                         "max_rel_logit_error": _STATS, "reference_value": _STATS, "exact_match": _STATS,
                         "reference_exact_match": _STATS, "gate": mapping(), "note": text(MAX_TEXT)}),
    "flags": items(text(256, optional=False), 256), "profile": mapping(),
    "tags": mapping(), "campaign": text(256), "timing": text(64), "schedule": mapping(),
}
_RECORD = mapping(RECORD_FIELDS, optional=False, required=("run_id", "created_at", "status", "device"))


def manifest_problem(d: Any) -> str | None:
    """Why a program manifest (as read from NAME.json) cannot be trusted, or None."""
    return _MANIFEST(d, "")


def record_problem(d: Any) -> str | None:
    """Why a run record (RunRecord.to_dict() or a stored/imported one) cannot be used, or None."""
    return _RECORD(d, "")
