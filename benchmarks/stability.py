"""Numbers that hold still (issue #25): the demo's campaign (student and full-size MobileBERT, fp32/int8/int4, its
interleaved rounds, time floors, disturbance evidence and extra rounds) run several times back to back, and per
report row: in how many campaigns it was `ok` with no noisy/disagree flag, the CV of the campaign medians, and the
spread of its x fp32 ratio.

Goals on the 2-core development machine with nothing else running: every row clean in at least 4 of 5 campaigns;
CV of campaign medians <= 2% for the full-size programs and <= 5% for the sub-millisecond student; the full-size
int8 x fp32 ratio within +-3% across the five. The demo's programs and student come from the results folder's
cache (the first campaign makes them; its wall time is not the run phase's).

    .venv/bin/python benchmarks/stability.py [--campaigns 5] [--results results] [--table NAME] [-- DEMO FLAGS...]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_table  # noqa: E402

NOISY = {"high_cv", "runs_disagree"}


def _campaign_rows(results: Path, campaign: str) -> list[dict]:
    from harness.reports.table import build_rows
    from harness.store.db import ResultsStore, Selection

    runs = ResultsStore(results).runs(selection=Selection(campaign=campaign))
    return [r for r in build_rows(runs) if r["status"] != "failed"]


def _run_phase_s(results: Path, campaign: str) -> float:
    import datetime as dt

    from harness.store.db import ResultsStore, Selection

    runs = ResultsStore(results).runs(selection=Selection(campaign=campaign))
    start = min(dt.datetime.fromisoformat(r.created_at) for r in runs)
    end = max(dt.datetime.fromisoformat(r.finished_at or r.created_at) for r in runs)
    return (end - start).total_seconds()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--campaigns", type=int, default=5)
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--table", default="stability", help="results/TABLE.md (another name keeps the committed one)")
    ap.add_argument("demo_args", nargs="*", help="extra `harness demo` flags (after --)")
    a = ap.parse_args()
    from harness.store.db import ResultsStore

    names, walls = [], []
    for k in range(a.campaigns):
        before = set(ResultsStore(a.results).known("campaign", limit=10**6)) if (a.results / "runs.sqlite").exists() \
            else set()
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "harness.cli", "--results", str(a.results), "demo", *a.demo_args],
                              capture_output=True, text=True)
        walls.append(time.monotonic() - t0)
        if proc.returncode != 0:
            sys.exit(f"demo {k + 1} failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
        [name] = [c for c in ResultsStore(a.results).known("campaign", limit=10**6) if c not in before and
                  c.startswith("demo-")]
        names.append(name)
        print(f"campaign {k + 1}/{a.campaigns}: {name}, {walls[-1]:.0f} s", flush=True)

    per_row: dict[tuple, list[dict]] = {}
    for name in names:
        for r in _campaign_rows(a.results, name):
            per_row.setdefault((r["model"], r["recipe"]), []).append(r)
    rows, goals = [], []
    for (model, recipe), rs in per_row.items():
        clean = sum(r["status"] == "ok" and not NOISY & set(r["flags"].split(", ")) for r in rs)
        meds = [r["p50_ms"] for r in rs]
        cv = statistics.stdev(meds) / statistics.mean(meds) if len(meds) > 1 else float("nan")
        ratios = [r["speedup_vs_fp32"] for r in rs if r.get("speedup_vs_fp32")]
        spread = (max(ratios) / min(ratios) - 1) if len(ratios) > 1 and recipe != "fp32" else None
        student = "student" in model or "demo-" in model or "@" in model
        cv_goal = 0.05 if student else 0.02
        rows.append([model, recipe, f"{clean}/{len(rs)}", " ".join(f"{m:.3f}" for m in meds), f"{cv:.2%}",
                     f"<= {cv_goal:.0%}: {'met' if cv <= cv_goal else 'NOT met'}",
                     " ".join(f"{x:.3f}" for x in ratios) if recipe != "fp32" else "-",
                     "-" if spread is None else f"{spread:.1%}",
                     "; ".join(sorted({r["flags"] for r in rs if r["flags"]})) or "-",
                     sum(r["n_runs"] for r in rs)])
        goals.append(clean >= len(rs) - 1 and cv <= cv_goal)
        if not student and recipe == "int8" and spread is not None:
            goals.append(spread <= 0.06)  # within +-3%: max/min at most 1.06
    runs_s = [_run_phase_s(a.results, n) for n in names]
    canaries = [_campaign_canary(a.results, n) for n in names]
    timings = sorted({r["timing"] for rs in per_row.values() for r in rs})  # the rows' own: no second read
    notes = [f"{a.campaigns} campaigns of `harness demo {' '.join(a.demo_args)}` (timing {', '.join(timings)}): "
             f"{', '.join(names)}",
             "clean: status ok with no noisy (high_cv) or disagree (runs_disagree) flag; x fp32 spread: max/min - 1 of "
             "the campaigns' ratios (+-3% is at most 6%)",
             "demo wall time per campaign (s): " + ", ".join(f"{w:.0f}" for w in walls)
             + "; run phase (first run's start to last run's end, s): " + ", ".join(f"{s:.0f}" for s in runs_s),
             "clock canary per campaign (median over its native runs, ns per dependent multiply-add step; "
             "docs/statistics.md): " + ", ".join("-" if c is None else f"{c:.4f}" for c in canaries)
             + "; a campaign whose canary is slower ran on a slower machine",
             f"goals: {'all met' if all(goals) else 'NOT all met'}"]
    command = " ".join(["python benchmarks/stability.py", f"--campaigns {a.campaigns}",
                        *([f"--table {a.table}"] if a.table != "stability" else []),
                        *(["--", *a.demo_args] if a.demo_args else [])])
    write_table(a.table, "Numbers that hold still: the demo's campaign, back to back", command,
                ["model", "recipe", "clean campaigns", "campaign medians ms", "CV", "goal", "x fp32 per campaign",
                 "x fp32 spread", "flags seen", "runs"], rows, notes,
                ratios={f"{r[0]} {r[1]} CV": (float(r[4].rstrip("%")) / 100, "lower") for r in rows
                        if r[4] != "nan%"})


def _campaign_canary(results: Path, name: str) -> float | None:
    """The median clock canary of a campaign's native runs (harness/run/disturbance.py), or None before it existed."""
    from harness.run.disturbance import run_canary
    from harness.store.db import ResultsStore

    values = [c for r in ResultsStore(results).runs() if r.campaign == name and r.runner == "native"
              for c in [run_canary(r)] if c]
    return statistics.median(values) if values else None


if __name__ == "__main__":
    main()
