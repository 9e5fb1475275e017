"""Reports over stored runs: one row per group of harness/reports/grouping.py (model identity x recipe and options x
device x seq_len x runner x threads x affinity x timing preset x campaign).

Fields this module reads from a RunRecord (besides the plain ones):
    latency   harness.run.stats.summarize(...) of the run's samples (recomputed from latencies_ms when those exist)
    memory    {"peak_rss_mb" (kB / 1024 as the OS reports it), "peak_rss_method", "pss_mb", "pss_method",
              "program_mb" (MiB, 2**20 bytes, as harness/run/measure.py writes it, like peak RSS), "arena_mb", "arena_method"};
              program size falls back to manifest["program_bytes"] / 2**20
    accuracy  {"task", "n", "metric", "value", "agreement_fp32", "max_rel_logit_error", "reference_value",
              "gate": {"ratio", "passed": bool}} (harness/run/accuracy.py; a bare bool or "pass"/"fail" gate is read too)
    profile   {"ops": [{"name", "ms", "backend": "XNNPACK" | "portable"}]} (harness/reports/plots.py draws it)

A group's latency pools the samples of its "ok" runs (its "invalid" runs when no run is ok), less the runs the
runner saw disturbed and those slowed throughout while two quiet ones remain (harness/run/pooling.py; n_left_out,
slowed; every run stays stored and listed); its flags are those of the pooled runs; failed runs only count and show
their error. With two or more runs the p50 CI is p50 +- Student's t over the runs' medians
(stats.replications_ci, never narrower than the pooled plain bootstrap), so it carries the run-to-run spread; from a
single run it covers that run's noise and drift only (ci_scope says which). run_cv is the CV of the runs' medians;
above stats.MAX_RUN_CV the row is flagged runs_disagree. Speed-up and accuracy delta are against the fp32 group of
the same model (identity), device, seq_len, runner, threads, affinity and timing preset: of the row's own campaign,
else the only such fp32 row of another campaign (named in fp32_campaign), else none; an accuracy delta also needs
the same task, metric and number of examples. Emulated groups get their own section and are never ranked or
compared with hardware.
"""

from __future__ import annotations

import math
from statistics import median
from typing import Any, Iterable

from harness.reports.grouping import BASELINE_MAY_DIFFER, KEY, Group, disturbed_runs, group_runs, random_weights
from harness.run.stats import MAX_RUN_CV, summarize
from harness.store.record import Accuracy, RunRecord

BASELINE_RECIPE = "fp32"
PROGRAM_MB = 2**20  # bytes per MB (MiB) for program sizes, matching harness/run/measure.py and peak RSS


def _med(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    return median(vals) if vals else None


def _or(v: Any, default: Any) -> Any:
    """A key's value as dict.get(key, default) read it: the default only when the record has no such key."""
    return default if v is None else v


def _program_mb(r: RunRecord) -> float | None:
    if isinstance(r.memory.program_mb, (int, float)):
        return float(r.memory.program_mb)
    size = (r.manifest or {}).get("program_bytes")
    return size / PROGRAM_MB if isinstance(size, (int, float)) and size > 0 else None


SUMMARY_VERSION = "2"  # bump when summarize() changes what it returns: cached pooled summaries are then redone


def pool_key(measured: list[RunRecord]) -> str:
    """Names the runs a row pools (ids and sample counts, in order): the key of its cached summary."""
    import hashlib

    text = SUMMARY_VERSION + "|" + ",".join(f"{r.run_id}:{len(r.latencies_ms)}" for r in measured)
    return hashlib.sha1(text.encode()).hexdigest()


def _pooled(g: Group, sizes: list[int], cache=None) -> dict[str, Any]:
    """summarize() of a group's samples. A one-run group reuses the summary stored with the run (the same call, made
    at run time); a pooled group's comes from the cache when these runs were summarised before (stored runs never
    change), so a report's cost does not grow with the raw samples it has already seen (nor are they copied)."""
    measured = g.pooled
    if len(measured) == 1:
        own = measured[0].latency
        if own.n == sum(sizes) and own.ci95_median and (own.bootstrap or {}).get("seed") == 0:
            return own.to_json()
    key = pool_key(measured) if cache is not None else None
    hit = cache.get(key) if key else None
    if hit is not None:
        return hit
    out = summarize(g.samples, clusters=sizes)
    if key:
        cache.put(key, out)
    return out


def _row(g: Group, cache=None) -> dict[str, Any]:
    f = g.fields
    measured = g.measured
    sizes = [len(r.latencies_ms) for r in g.pooled if r.latencies_ms]
    lat = _pooled(g, sizes, cache) if sizes else {}
    p50 = lat.get("p50") if lat else _med(r.latency.p50 for r in measured)
    ci = lat.get("ci95_median") or [None, None]
    acc_run = next((r for r in reversed(measured) if r.accuracy), None)
    acc = acc_run.accuracy if acc_run else Accuracy()
    last_failed = g.failed[-1] if g.failed else None
    weights = {True: "random", False: _weights_source(g.runs), None: ""}[
        True if g.random_weights else (False if all(random_weights(r) is False for r in g.runs) else None)
    ]
    status = "ok" if any(r.status == "ok" for r in g.runs) else ("invalid" if measured else "failed")
    run_cv = lat.get("run_cv")
    pooling = g.pooling  # the flags are those of the runs the latency pools; the left-out runs are named in notes
    # a pooled run flagged disturbed was judged no slower than the others: what disturbed it cost no time
    flags = {f for r in pooling.kept for f in r.flags if not (f == "disturbed" and pooling.judged)}
    flags |= {"runs_disagree"} if run_cv and run_cv > MAX_RUN_CV else set()
    return {
        "section": "emulated" if g.emulated else "hardware",
        "model": f["model"], "recipe": f["recipe"], "device": f["device"], "seq_len": f["seq_len"],
        "runner": f["runner"], "threads": f["threads"], "affinity": f["affinity"] or "", "timing": f["timing"] or "",
        "campaign": f["campaign"] or "", "weights": weights, "status": status,
        "n_runs": len(measured), "n_failed": len(g.failed), "n_samples": sum(sizes),
        "n_left_out": len(pooling.left_out),  # disturbed or slowed runs kept out of the latency (listed, stored)
        "slowed": pooling.slowed_note(),
        "p50_ms": p50, "p50_ci_low": ci[0], "p50_ci_high": ci[1],
        "ci_scope": ("" if ci[0] is None else f"across {len(sizes)} runs" if len(sizes) >= 2
                     else "within the one run kept" if len(measured) >= 2 else "within one run"),
        "p90_ms": lat.get("p90") if lat else _med(r.latency.p90 for r in measured),
        "cv": lat.get("cv") if lat else None,
        "speedup_vs_fp32": None, "rank": None,
        "program_mb": _med(_program_mb(r) for r in g.runs),
        "peak_rss_mb": _med(r.memory.peak_rss_mb for r in measured),
        "rss_method": next((r.memory.rss_method for r in measured if r.memory.rss_method), ""),
        "load_ms": _med(r.load_ms for r in measured),
        "first_inference_ms": _med(r.first_inference_ms for r in measured),
        "accuracy_metric": _or(acc.metric, ""), "accuracy": acc.value, "accuracy_delta_vs_fp32": None,
        "accuracy_task": _or(acc.task, ""), "accuracy_n": acc.n,
        "agreement_fp32": acc.agreement_fp32, "accuracy_gate": acc.gate_result(),
        "run_cv": run_cv,
        "flags": ", ".join(sorted(flags)),
        "disturbance": " | ".join(disturbed_runs(measured, pooling)),
        "error": (last_failed.error or "failed").splitlines()[0] if last_failed else "",
        "run_ids": " ".join(r.run_id for r in g.runs),
        # the program files the runs measured: one, unless the same options were exported again with other bytes
        "program_sha256": " ".join(sorted({r.program_sha256 for r in measured if r.program_sha256})),
        "fp32_campaign": "",  # the fp32 row's campaign when it is another one than this row's
    }


def _comparable_key(row: dict) -> tuple:
    """Rows with the same key may be compared: same model, device, seq_len, runner, threads, affinity and timing
    preset, and both hardware or both emulated (recipe and campaign may differ)."""
    return (row["section"],) + tuple(row[k] for k in KEY if k not in BASELINE_MAY_DIFFER)


def _baseline(row: dict, fp32_rows: dict[tuple, list[dict]]) -> dict | None:
    """The fp32 row this row is compared with: of its own campaign, else the only comparable one, else none.
    fp32_rows is keyed by _comparable_key, and by that key plus the campaign."""
    key = _comparable_key(row)
    same = fp32_rows.get(key + (row["campaign"],), [])
    fp32 = fp32_rows.get(key, [])
    return same[0] if same else (fp32[0] if len(fp32) == 1 else None)


def _weights_source(runs) -> str:
    """"trained here" or "from checkpoint" (the manifest's weights_source, short: the model column names the
    checkpoint and its sha): what is known of trained weights, never more."""
    sources = {((r.manifest or {}).get("weights_source") or "from checkpoint") for r in runs}
    return "trained here" if sources and all(s.startswith("trained here") for s in sources) else "from checkpoint"


def build_rows(records: Iterable[RunRecord], cache=None) -> list[dict[str, Any]]:
    """One row (a dict of COLUMNS) per group (see the module docstring), hardware first, fastest first per device.
    cache: a store's SummaryCache, for the summaries of rows that pool several runs."""
    groups = group_runs(records)
    if cache is not None:
        cache.prefetch([pool_key(g.pooled) for g in groups if len(g.pooled) > 1])
    rows = [_row(g, cache) for g in groups]
    if cache is not None:
        cache.flush()
    fp32_rows: dict[tuple, list[dict]] = {}
    for row in rows:
        if row["recipe"] == BASELINE_RECIPE and row["p50_ms"]:
            fp32_rows.setdefault(_comparable_key(row), []).append(row)
            fp32_rows.setdefault(_comparable_key(row) + (row["campaign"],), []).append(row)
    for row in rows:
        base = _baseline(row, fp32_rows)
        if base and row["p50_ms"]:
            if row["section"] != "emulated":  # an emulator's relative kernel costs are not a device's: no x fp32
                row["speedup_vs_fp32"] = base["p50_ms"] / row["p50_ms"]
            row["fp32_campaign"] = base["campaign"] if base["campaign"] != row["campaign"] else ""
            if base["accuracy"] is not None and row["accuracy"] is not None and all(
                    base[k] == row[k] for k in ("accuracy_metric", "accuracy_task", "accuracy_n")):
                row["accuracy_delta_vs_fp32"] = row["accuracy"] - base["accuracy"]
    ranked: dict[tuple, list[dict]] = {}
    for row in rows:
        if row["section"] == "hardware" and row["status"] == "ok" and row["p50_ms"]:
            ranked.setdefault(_comparable_key(row), []).append(row)
    for peers in ranked.values():
        for i, row in enumerate(sorted(peers, key=lambda r: r["p50_ms"]), 1):
            row["rank"] = i
    rows.sort(key=lambda r: (r["section"] != "hardware", str(r["device"]), str(r["model"]), r["seq_len"] or 0,
                             r["p50_ms"] if r["p50_ms"] is not None else math.inf))
    return rows


def columns() -> list[str]:
    """The table's column names, in order (also for an empty table)."""
    return list(_row(Group(KEY, False)))


def json_safe(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with every column of columns(), in order, and NaN or infinity as None (JSON has neither)."""
    names = columns()
    return [{k: _finite(row.get(k)) for k in names} for row in rows]


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV: a header of columns(), then one line per row; missing values empty, text quoted as needed."""
    import csv
    import io

    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns())
    w.writerows([("" if v is None else v) for v in row.values()] for row in json_safe(rows))
    return out.getvalue()


def _finite(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v




def fill_summaries(store, campaigns: Iterable[str | None]) -> None:
    """Compute the pooled summaries of these campaigns' rows now and keep them in the store's summary cache, so the
    first report after a campaign reads them instead of bootstrapping them (issue #27: a cold report of 10,000
    runs in 2 s). A row pools runs of one campaign only (KEY), so a campaign's runs are all it needs. Best effort,
    as the cache is: a store that cannot take them only means the report computes them."""
    from harness.store.db import Selection

    for name in sorted({c for c in campaigns if c}):
        build_rows(store.runs(Selection(campaign=name)), store.summary_cache())
