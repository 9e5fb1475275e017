"""Issue #5 proof: five back-to-back runs of the same program on the host. Their medians' coefficient of variation
should stay below 3%, and each run's 95% CI of the median should overlap the others'.

    .venv/bin/python benchmarks/stability.py [--model mobilebert] [--quant fp32] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import write_table  # noqa: E402
from harness.console import silence_libraries  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mobilebert")
    ap.add_argument("--quant", default="fp32")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--results", type=Path, default=Path("results"))
    a = ap.parse_args()
    silence_libraries()
    from harness import bench
    from harness.export import ExportRequest, export

    res = export(ExportRequest(model=a.model, recipe=a.quant, seq_len=a.seq_len), a.results)
    recs = [bench.run(bench.RunRequest(program=res.program, device="host", warmup=10, iterations=a.iterations,
                                       tags={"benchmark": "stability"}), a.results) for _ in range(a.runs)]
    rows = []
    for r in recs:
        ci = r.latency["ci95_median"]
        rows.append([r.run_id, r.status, r.latency["median"], f"{ci[0]:.3f}-{ci[1]:.3f}", r.latency["cv"],
                     ", ".join(r.flags) or "-"])
    medians = [r.latency["median"] for r in recs]
    cv = statistics.stdev(medians) / statistics.mean(medians)
    overlap = all(max(x.latency["ci95_median"][0], y.latency["ci95_median"][0])
                  <= min(x.latency["ci95_median"][1], y.latency["ci95_median"][1]) for x in recs for y in recs)
    notes = [f"program {res.program.name} ({a.model}, {a.quant}, seq {a.seq_len}, untrained random weights), "
             f"native runner, 2 threads, {a.iterations} iterations per run",
             f"CV of the {a.runs} medians: {cv * 100:.2f}% (goal < 3%: {'met' if cv < 0.03 else 'NOT met'})",
             f"every pair of 95% CIs overlaps: {'yes' if overlap else 'NO'}"]
    write_table("stability", "Back-to-back runs of one program", "python benchmarks/stability.py",
                ["run", "status", "median ms", "95% CI of median", "cv within run", "flags"], rows, notes)


if __name__ == "__main__":
    main()
