"""Issue #5 proof: back-to-back runs of the same program on the host. Their medians' coefficient of variation should
stay below 3%, and the report's CIs should contain each other.

Two batches of `--runs` back-to-back runs (what `harness run --repeat N` does, twice). Shown per run: its median and
its own CI (circular block bootstrap: drift inside the run widens it). Shown per batch: the report row that pools the
batch's runs, whose CI is Student's t over the runs' medians (docs/statistics.md). The checks: the two batches' report
CIs overlap and each contains the other's p50; the per-run CIs are counted too, because a single run cannot see the
machine shifting between runs and the numbers say how often that matters here.

    .venv/bin/python benchmarks/stability.py [--model mobilebert] [--quant fp32] [--runs 5] [--batches 2]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_table  # noqa: E402
from harness.common.console import silence_libraries  # noqa: E402


def overlap(a: list[float], b: list[float]) -> bool:
    return max(a[0], b[0]) <= min(a[1], b[1])


def measure(program: Path, threads: int, a) -> tuple[list[list], list[str]]:
    """Two batches of back-to-back runs at one thread count: table rows and notes."""
    from harness.run import measure
    from harness.results.table import build_table

    batches = [[measure.run(measure.RunRequest(program=program, device="host", warmup=10, iterations=a.iterations,
                                           threads=threads, tags={"benchmark": "stability", "batch": k}), a.results)
                for _ in range(a.runs)] for k in range(a.batches)]
    rows = []
    for k, recs in enumerate(batches):
        for r in recs:
            ci, boot = r.latency["ci95_median"], r.latency["bootstrap"]
            rows.append([f"{threads}t batch {k + 1}, run {r.run_id}", r.status, f"{r.latency['median']:.2f}",
                         f"{ci[0]:.2f}-{ci[1]:.2f}", boot.get("block") or 1, f"{r.latency['cv']:.3f}",
                         ", ".join(r.flags) or "-"])
    tables = [build_table(recs).iloc[0] for recs in batches]
    for k, row in enumerate(tables):
        rows.append([f"**{threads}t batch {k + 1} report row** ({row['n_runs']} runs pooled)", row["status"],
                     f"{row['p50_ms']:.2f}", f"{row['p50_ci_low']:.2f}-{row['p50_ci_high']:.2f}", "t over runs",
                     f"{row['cv']:.3f}", row["flags"] or "-"])

    recs = [r for b in batches for r in b]
    medians = [r.latency["median"] for r in recs]
    cv = statistics.stdev(medians) / statistics.mean(medians)
    batch_cvs = [statistics.stdev(m) / statistics.mean(m) for m in ([r.latency["median"] for r in b] for b in batches)]
    pairs = list(itertools.combinations(recs, 2))
    run_overlaps = sum(overlap(x.latency["ci95_median"], y.latency["ci95_median"]) for x, y in pairs)
    cis = [[t["p50_ci_low"], t["p50_ci_high"]] for t in tables]
    report_overlap = all(overlap(x, y) for x, y in itertools.combinations(cis, 2))
    contain = all(ci[0] <= t["p50_ms"] <= ci[1] for ci, t in itertools.product(cis, tables))
    in_row = sum(ci[0] <= r.latency["median"] <= ci[1] for ci, b in zip(cis, batches) for r in b)
    notes = [f"**{threads} thread(s)**: CV of all {len(recs)} run medians: {cv * 100:.2f}%; per batch: "
             + ", ".join(f"{c * 100:.2f}%" for c in batch_cvs) + f" (goal < 3%: {'met' if cv < 0.03 else 'NOT met'})",
             f"report rows (runs pooled, t over run medians): CIs overlap: {'yes' if report_overlap else 'NO'}; each "
             f"contains the other batch's p50: {'yes' if contain else 'NO'}; they contain {in_row} of {len(recs)} "
             f"of their own runs' medians",
             f"single-run CIs (block bootstrap, within one run): {run_overlaps} of {len(pairs)} pairs overlap"]
    return rows, notes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mobilebert")
    ap.add_argument("--quant", default="fp32")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--batches", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--threads", default="1,2", help="runner thread counts, one measurement each (comma list)")
    ap.add_argument("--results", type=Path, default=Path("results"))
    a = ap.parse_args()
    silence_libraries()
    from harness.export.exporter import ExportRequest, export

    res = export(ExportRequest(model=a.model, recipe=a.quant, seq_len=a.seq_len), a.results)
    rows, notes = [], [f"program {res.program.name} ({a.model}, {a.quant}, seq {a.seq_len}, untrained random weights), "
                       f"native runner, {a.iterations} iterations per run, {a.batches} batches of {a.runs} runs"]
    for threads in [int(t) for t in a.threads.split(",")]:
        r, n = measure(res.program, threads, a)
        rows += r
        notes += n
    notes.append("a single run cannot see the machine shift between runs, so its CI misses other runs' medians; the "
                 "report marks such CIs 'within one run' and asks for --repeat, whose pooled rows reproduce")
    write_table("stability", "Back-to-back runs of one program", "python benchmarks/stability.py",
                ["run", "status", "median ms", "95% CI of median", "block", "cv within run", "flags"], rows, notes)


if __name__ == "__main__":
    main()
