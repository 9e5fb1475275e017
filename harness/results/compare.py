"""`harness compare A B`: is run B faster than run A, by how much, and can we tell?"""

from __future__ import annotations

from typing import Any

from harness.common.errors import BadInput
from harness.store.record import NOT_MEASURED, RunRecord
from harness.results.grouping import gate_result, random_weights
from harness.results.markdown import fmt_ms, md_table
from harness.run.stats import compare_samples

SAME = ("model", "device", "seq_len", "runner", "threads")


def _describe(r: RunRecord) -> dict[str, Any]:
    return {k: getattr(r, k) for k in ("run_id", "status", "model", "recipe", "device", "seq_len", "runner",
                                       "threads", "emulated", "created_at")} | {"flags": list(r.flags)}


def _delta(a: Any, b: Any) -> dict[str, Any] | None:
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)):
        return None
    return {"a": a, "b": b, "diff": b - a, "ratio": b / a if a else None}


def compare_runs(a: RunRecord, b: RunRecord) -> dict[str, Any]:
    """Latency verdict (stats.compare_samples) plus load, memory and accuracy deltas, and what makes it unfair."""
    for r in (a, b):
        if r.status in NOT_MEASURED:
            raise BadInput(f"run {r.run_id} {r.status} ({(r.error or 'no error text').splitlines()[0]}): nothing to compare")
        if len(r.latencies_ms) < 2:
            raise BadInput(f"run {r.run_id} has {len(r.latencies_ms)} latency samples: need at least 2 to compare")
    if bool(a.emulated) != bool(b.emulated):
        emu, hw = (a, b) if a.emulated else (b, a)
        raise BadInput(f"run {emu.run_id} is emulated and {hw.run_id} ran on hardware: their timings are not comparable")
    caveats = [f"different {k}: {getattr(a, k)} vs {getattr(b, k)}" for k in SAME if getattr(a, k) != getattr(b, k)]
    caveats += [f"run {r.run_id} is {r.status} ({', '.join(r.flags)})" for r in (a, b) if r.status == "invalid"]
    if a.emulated:
        caveats.append("both runs are emulated: functional timings only")
    if random_weights(a) or random_weights(b):
        caveats.append("untrained (random) weights: accuracy deltas mean nothing")
    acc_a, acc_b = a.accuracy or {}, b.accuracy or {}
    same_metric = acc_a.get("metric") == acc_b.get("metric")
    return {
        "a": _describe(a),
        "b": _describe(b),
        "latency": compare_samples(a.latencies_ms, b.latencies_ms),
        "load_ms": _delta(a.load_ms, b.load_ms),
        "first_inference_ms": _delta(a.first_inference_ms, b.first_inference_ms),
        "peak_rss_mb": _delta((a.memory or {}).get("peak_rss_mb"), (b.memory or {}).get("peak_rss_mb")),
        "accuracy": ({"metric": acc_a.get("metric"), **(_delta(acc_a.get("value"), acc_b.get("value")) or {})}
                     if same_metric and _delta(acc_a.get("value"), acc_b.get("value")) else None),
        "gate": {"a": gate_result(acc_a), "b": gate_result(acc_b)},
        "caveats": caveats,
    }


def _fmt(v: Any, digits: int = 3) -> str:
    return "" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))


def render_comparison(result: dict[str, Any]) -> str:
    """A comparison as terminal-friendly markdown, verdict first."""
    a, b, lat = result["a"], result["b"], result["latency"]
    lo, hi = lat["ratio_ci"]
    name = lambda d: f"{d['run_id']} ({d['model']} {d['recipe']} on {d['device']})"  # noqa: E731
    if lat["verdict"] == "no significant difference":
        head = f"B is not measurably different from A (p={lat['p_value']:.3g})"
    else:
        head = f"B is {lat['verdict']}: {lat['speedup']:.2f}x the speed of A (p={lat['p_value']:.3g})"
    lines = [
        f"A: {name(a)}", f"B: {name(b)}", "", f"**{head}**", "",
        f"median latency B/A = {lat['ratio']:.3f}, {lat['ci_level']:.0%} bootstrap CI [{lo:.3f}, {hi:.3f}];"
        f" {lat['test']} on {lat['n_a']} vs {lat['n_b']} samples", "",
    ]
    rows = [["p50 latency ms", fmt_ms(lat["median_a"]), fmt_ms(lat["median_b"]), _fmt(lat["ratio"])]]
    for key, label in (("load_ms", "load ms"), ("first_inference_ms", "first inference ms"),
                       ("peak_rss_mb", "peak RSS MB")):
        d = result[key]
        if d:
            rows.append([label, fmt_ms(d["a"]), fmt_ms(d["b"]), _fmt(d["ratio"])])
    if result["accuracy"]:
        acc = result["accuracy"]
        rows.append([f"{acc['metric']}", _fmt(acc["a"], 4), _fmt(acc["b"], 4), f"{acc['diff']:+.4f} (diff)"])
    if any(result["gate"].values()):
        rows.append(["accuracy gate", result["gate"]["a"], result["gate"]["b"], ""])
    lines.append(md_table(["", "A", "B", "B/A"], rows))
    if result["caveats"]:
        lines += ["", "Caveats:"] + [f"- {c}" for c in result["caveats"]]
    return "\n".join(lines) + "\n"
