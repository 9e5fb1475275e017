"""`harness compare A B`: is B faster than A, by how much, and can we tell? A and B are runs or campaigns.

Two runs: their samples, side by side. Two campaigns (or a campaign against one in a baseline store): every group
of B (grouping.KEY but the campaign) against the same group of A, samples pooled per group. Only like with like:
runs of different models, devices or sequence lengths, or hardware against an emulator, are refused.
"""

from __future__ import annotations

from typing import Any

from common.errors import BadInput
from harness.store.record import NOT_MEASURED, Accuracy, RunRecord
from harness.reports.grouping import KEY, Group, disturbed_runs, group_runs, identity, random_weights
from harness.reports.markdown import fmt_ms, md_table
from harness.run.pooling import run_median
from harness.run.stats import MIN_GATE_RUNS, compare_runs_of, compare_samples

SAME = ("model", "device", "seq_len", "runner", "threads")  # what a caveat names when two runs differ in it
MUST_MATCH = {"model": "model", "device": "device", "seq_len": "seq_len"}  # what makes two runs incomparable
MATCH = tuple(k for k in KEY if k != "campaign")  # what pairs a group of campaign B with one of campaign A


def _describe(r: RunRecord) -> dict[str, Any]:
    return {k: getattr(r, k) for k in ("run_id", "status", "recipe", "device", "seq_len", "runner", "threads",
                                       "emulated", "created_at", "campaign", "timing")} | {
        "model": identity(r), "flags": list(r.flags)}


def _refuse_unlike(a: RunRecord, b: RunRecord) -> None:
    for what, va, vb in (("models", identity(a), identity(b)), ("devices", a.device, b.device),
                         ("sequence lengths", a.seq_len, b.seq_len)):
        if va != vb:
            raise BadInput(f"runs {a.run_id} and {b.run_id} are of different {what} ({va} vs {vb}): "
                           "a comparison needs the same model, device and seq_len")


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
    _refuse_unlike(a, b)
    caveats = [f"different {k}: {getattr(a, k)} vs {getattr(b, k)}" for k in SAME if getattr(a, k) != getattr(b, k)]
    if a.timing != b.timing:
        caveats.append(f"different timing presets: {a.timing} vs {b.timing}")
    else:
        floors = [(r.warmup_seconds or 0.0, r.min_seconds or 0.0) for r in (a, b)]
        if floors[0] != floors[1]:  # one preset name, redefined between them (time floors came in 2026-12)
            caveats.append(f"different time floors (warmup, timing seconds): {floors[0]} vs {floors[1]}")
    caveats += [f"run {r.run_id} is {r.status} ({', '.join(r.flags)})" for r in (a, b) if r.status == "invalid"]
    if a.emulated:
        caveats.append("both runs are emulated: functional timings only")
    if random_weights(a) or random_weights(b):
        caveats.append("untrained (random) weights: accuracy deltas mean nothing")
    acc_a, acc_b = a.accuracy or Accuracy(), b.accuracy or Accuracy()
    same_metric = acc_a.metric == acc_b.metric
    return {
        "a": _describe(a),
        "b": _describe(b),
        "latency": compare_samples(a.latencies_ms, b.latencies_ms),
        "load_ms": _delta(a.load_ms, b.load_ms),
        "first_inference_ms": _delta(a.first_inference_ms, b.first_inference_ms),
        "peak_rss_mb": _delta(a.memory.peak_rss_mb, b.memory.peak_rss_mb),
        "accuracy": ({"metric": acc_a.metric, **(_delta(acc_a.value, acc_b.value) or {})}
                     if same_metric and _delta(acc_a.value, acc_b.value) else None),
        "gate": {"a": acc_a.gate_result(), "b": acc_b.gate_result()},
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


# -- campaigns ------------------------------------------------------------------------------------------------------

def _match_key(g: Group) -> tuple:
    return (g.emulated,) + tuple(g.fields[k] for k in MATCH)


def _run_medians(runs: list[RunRecord]) -> list[float]:
    return [run_median(r) for r in runs if r.latencies_ms]


def _quiet(g: Group) -> tuple[list[RunRecord], list[RunRecord]]:
    """A group's measured runs split into those its report row pools and those left out, disturbed or slowed
    throughout (harness/run/pooling.py): the gate compares what the reports show."""
    return g.pooling.kept, g.pooling.left_out


def _unjudged(kept: list[RunRecord], left_out: list[RunRecord]) -> bool:
    """Fewer than two of a side's pooled runs are free of disturbance evidence, and some run had it."""
    return sum("disturbed" not in r.flags for r in kept) < 2 and any("disturbed" in r.flags for r in kept + left_out)


def _compare_groups(ga: Group, gb: Group) -> dict[str, Any]:
    """Runs as the replications when both sides have two or more (stats.compare_runs_of); else the pooled samples,
    with a warning that the spread between runs is then unknown. Each side pools the runs its report row pools
    (harness/run/pooling.py); a side with fewer than two runs free of disturbance evidence makes the comparison
    inconclusive (shown, but the gate does not fail on it: the evidence says the machine, not the program, was
    slow)."""
    (qa, da), (qb, db) = _quiet(ga), _quiet(gb)
    inconclusive = _unjudged(qa, da) or _unjudged(qb, db)
    use_a, use_b = (qa if len(qa) >= 2 else ga.measured), (qb if len(qb) >= 2 else gb.measured)
    ma, mb = _run_medians(use_a), _run_medians(use_b)
    if len(ma) >= 2 and len(mb) >= 2:
        lat = compare_runs_of(ma, mb)
    else:
        lat = compare_samples([x for r in use_a for x in r.latencies_ms], [x for r in use_b for x in r.latencies_ms])
    few = min(len(ma), len(mb))
    notes = []
    if few < MIN_GATE_RUNS:
        notes.append(f"{few} run{'s' if few != 1 else ''} on one side: fewer than {MIN_GATE_RUNS}, so the run-to-run "
                     "spread is barely known" + ("" if few >= 2 else " (compared sample by sample)"))
    left = [r.run_id for r in (da if use_a is qa else []) + (db if use_b is qb else [])]
    if left:
        notes.append(f"run{'s' if len(left) > 1 else ''} {', '.join(left)} left out (disturbed, or slowed throughout: "
                     "docs/statistics.md#pooling)")
    if inconclusive:
        notes.append("inconclusive: too few undisturbed runs to judge (re-run on a quiet machine)")
    lat["warning"], lat["inconclusive"] = "; ".join(notes), inconclusive
    return lat


def _clock_against(a: list[RunRecord], b: list[RunRecord]) -> list[str]:
    """B's runs whose machine ran slower than A's did (their clock canary against the median of A's runs), and B's
    runs whose CPUs were far apart against the near level of A's and B's probes (docs/statistics.md#far-cores): a
    regression there may be the machine's, not the program's."""
    from harness.run.disturbance import far_core_runs, slow_clock_runs

    own = far_core_runs(b)  # already named among B's own disturbances
    ids_b = {r.run_id for r in b}
    far = {rid: why for rid, why in far_core_runs(a + b).items() if rid in ids_b and rid not in own}
    return ([f"run {rid}: {why} of A" for rid, why in slow_clock_runs(b, reference=a).items()]
            + [f"run {rid}: {why.replace('near in these runs', 'near in the runs of A and B')}"
               for rid, why in far.items()])


def compare_campaigns(a: list[RunRecord], b: list[RunRecord], name_a: str, name_b: str) -> dict[str, Any]:
    """Each group of B against the same group (all of KEY but the campaign) of A, on their pooled samples."""
    groups_a = {_match_key(g): g for g in group_runs(a)}
    groups_b = {_match_key(g): g for g in group_runs(b)}
    pairs, unmatched = [], []
    for key, gb in groups_b.items():
        ga = groups_a.get(key)
        if ga is None or len(ga.samples) < 2 or len(gb.samples) < 2:
            unmatched.append(gb.label + ("" if ga is None else " (too few samples)"))
            continue
        lat = _compare_groups(ga, gb)
        pairs.append({"group": gb.label, **{k: gb.fields[k] for k in MATCH}, "emulated": gb.emulated,
                      "runs_a": [r.run_id for r in ga.measured], "runs_b": [r.run_id for r in gb.measured],
                      "random_weights": bool(ga.random_weights or gb.random_weights), "latency": lat,
                      "disturbed_b": disturbed_runs(gb.measured) + _clock_against(ga.measured, gb.measured)})
    if not pairs:
        only_a = sorted(g.label for k, g in groups_a.items() if k not in groups_b)
        raise BadInput(f"campaigns {name_a} and {name_b} share no model x recipe x device x seq_len x runner x threads "
                       f"x timing: nothing to compare (A has {', '.join(only_a[:3]) or 'no measured runs'}; "
                       f"B has {', '.join(unmatched[:3]) or 'no measured runs'})")
    return {"a": name_a, "b": name_b, "pairs": pairs, "unmatched": unmatched}


def regressions(result: dict[str, Any], threshold: float) -> list[str]:
    """One line per pair where B is significantly slower than A by more than threshold (0.05 = 5%)."""
    pairs = result["pairs"] if "pairs" in result else [{"group": f"run {result['b']['run_id']}",
                                                       "latency": result["latency"]}]
    out = []
    for p in pairs:
        lat = p["latency"]
        lo, hi = lat["ratio_ci"]
        if lo > 1 + threshold and not lat.get("inconclusive"):  # wholly above: the spread cannot explain it
            line = (f"regression: {p['group']}: B is {lat['ratio'] - 1:.1%} slower than A (median B/A "
                    f"{lat['ratio']:.3f}, 95% CI [{lo:.3f}, {hi:.3f}] over {lat.get('unit', 'samples')}, "
                    f"p={lat['p_value']:.2g}), wholly over the {threshold:.0%} threshold")
            if p.get("disturbed_b"):
                line += "; B's runs were disturbed: " + " | ".join(p["disturbed_b"])
            out.append(line)
    return out


def render_campaigns(result: dict[str, Any]) -> str:
    rows = []
    for p in result["pairs"]:
        lat = p["latency"]
        lo, hi = lat["ratio_ci"]
        verdict = "same" if lat["verdict"] == "no significant difference" else lat["verdict"]
        rows.append([p["group"], fmt_ms(lat["median_a"]), fmt_ms(lat["median_b"]), f"{lat['ratio']:.3f}",
                     f"[{lo:.3f}, {hi:.3f}]", verdict, f"{lat['p_value']:.2g}",
                     f"{len(p['runs_a'])}/{len(p['runs_b'])}"])
    lines = [f"A: campaign {result['a']}", f"B: campaign {result['b']}", "",
             md_table(["group", "A p50 ms", "B p50 ms", "B/A", "95% CI", "B is", "p", "runs A/B"], rows)]
    if result["unmatched"]:
        lines += ["", "In B only (not compared): " + "; ".join(result["unmatched"])]
    units = {p["latency"].get("unit", "samples") for p in result["pairs"]}
    lines += ["", "The 95% CI is over " + (
        "the runs' medians (Welch t on their logs): runs, not samples, are the replications" if units == {"runs"}
        else "runs where both sides have two or more, else over the pooled samples") + " (docs/statistics.md)"]
    warnings = [f"{p['group']}: {p['latency']['warning']}" for p in result["pairs"] if p["latency"].get("warning")]
    if warnings:
        lines += ["", "Warnings:"] + [f"- {w}" for w in warnings]
    if any(p["random_weights"] for p in result["pairs"]):
        lines += ["", "untrained (random) weights in some groups: latency is real, accuracy is not compared"]
    return "\n".join(lines) + "\n"
