"""Runs in the ExecuTorch benchmark result format v3 (the PyTorch OSS benchmark database rows).

Shape as pytorch/executorch .github/scripts/extract_benchmark_results.py writes it: one dict per metric,
{benchmark: {name, mode, extra_info}, model: {name, type, backend}, metric: {name, benchmark_values, target_value,
extra_info}, runners: [{name, type, avail_mem_in_gb, total_mem_in_gb}]}. Metric names follow the ExecuTorch
benchmark apps' ("avg_inference_latency(ms)", "model_load_time(ms)", "peak_inference_mem_usage(mb)"); the p50/p90,
first-inference, accuracy and "top1_agreement_fp32" metrics are this harness's additions in the same naming style. A failed run becomes
one "FAILURE_REPORT" row, as in that script.
"""

from __future__ import annotations

from typing import Any, Iterable

from harness.store.record import NOT_MEASURED, Accuracy, RunRecord


def _runner(r: RunRecord) -> dict[str, Any]:
    info = r.device_info_before or {}
    mem_kb = info.get("mem_total_kb")
    avail_kb = info.get("mem_available_kb")
    return {
        "name": r.device,
        "type": info.get("os") or r.device_abi or "",
        "avail_mem_in_gb": round(avail_kb / (1 << 20), 2) if isinstance(avail_kb, (int, float)) else "",
        "total_mem_in_gb": round(mem_kb / (1 << 20), 2) if isinstance(mem_kb, (int, float)) else "",
        "extra_info": {"abi": r.device_abi, "cpu": info.get("cpu"), "transport": r.transport,
                       "emulated": bool(r.emulated)},
    }


def _metrics(r: RunRecord) -> list[tuple[str, float, str]]:
    lat, mem = r.latency, r.memory
    rows = [
        ("model_load_time(ms)", r.load_ms, "load"),
        ("first_inference_latency(ms)", r.first_inference_ms, "forward"),
        ("avg_inference_latency(ms)", lat.mean, "forward"),
        ("p50_inference_latency(ms)", lat.p50, "forward"),
        ("p90_inference_latency(ms)", lat.p90, "forward"),
        ("trimmean_inference_latency(ms)", lat.trimmed_mean, "forward"),
        ("peak_inference_mem_usage(mb)", mem.peak_rss_mb, "forward"),
    ]
    acc = r.accuracy or Accuracy()
    if acc.value is not None:
        rows.append((f"{acc.metric if acc.metric is not None else 'accuracy'}", acc.value, "accuracy"))
    rows.append(("top1_agreement_fp32", acc.agreement_fp32, "accuracy"))
    return [(name, float(v), method) for name, v, method in rows if isinstance(v, (int, float))]


def benchmark_v3(records: Iterable[RunRecord]) -> list[dict[str, Any]]:
    """One v3 row per metric of each measured run, one FAILURE_REPORT row per failed run."""
    out = []
    for r in records:
        benchmark = {
            "name": "ExecuTorch",
            "mode": "inference",
            "extra_info": {
                "app_type": "harness",
                "run_id": r.run_id,
                "status": r.status,
                "flags": list(r.flags),
                "runner": r.runner,
                "threads": r.threads,
                "seq_len": r.seq_len,
                "random_weights": r.random_weights,
                "harness_version": r.harness_version,
                "harness_git_sha": r.harness_git_sha,
                "program_sha256": r.program_sha256,
                "created_at": r.created_at,
            },
        }
        model = {"name": r.model or "unknown", "type": "OSS model", "backend": r.recipe or ""}
        if r.status in NOT_MEASURED:
            benchmark["extra_info"]["job_conclusion"] = "failure"
            benchmark["extra_info"]["error"] = r.error
            metrics = [("FAILURE_REPORT", 0, "")]
        else:
            metrics = _metrics(r)
        for name, value, method in metrics:
            out.append({
                "benchmark": benchmark,
                "model": model,
                "metric": {"name": name, "benchmark_values": [value], "target_value": 0,
                           "extra_info": {"method": method}},
                "runners": [_runner(r)],
            })
    return out
